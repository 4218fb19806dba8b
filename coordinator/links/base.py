"""The small interface every link backend implements, and what it hands the launcher.

A :class:`LinkSet` belongs to one local run (one coordinator and its agents). The launcher asks
it how to start the coordinator (an argv prefix, listen address and config keys) and, per
agent, :meth:`LinkSet.attach` returns an :class:`AgentLink`: how to start that agent and what
to put in its TOML so that its round reports say which link it had. ``close()`` removes
everything the set created; it is safe to call twice and after a failure.

Backends: :class:`~coordinator.links.shaped.ShapedLinks` (namespaces, veth or TUN pairs, tc)
and :class:`~coordinator.links.emulated.EmulatedLinks` (today's in-process token bucket).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from coordinator.links.profile import LinkProfile

SHAPED = "shaped"
EMULATED = "emulated"
LABELS = {SHAPED: "shaped link (netns/tc)", EMULATED: "emulated link (in-process)"}


@dataclass
class AgentLink:
    """One device's link as attached: how to start its agent, what its config must say."""

    device_id: str
    kind: str  # SHAPED or EMULATED
    profile: LinkProfile
    coordinator_host: str  # the address the agent dials (port added by the launcher)
    argv_prefix: List[str] = field(default_factory=list)  # run the agent under this
    agent_values: Dict[str, Any] = field(default_factory=dict)  # keys for the agent's TOML
    detail: str = ""  # how it was built, for logs (e.g. "veth + htb + netem")

    @property
    def label(self) -> str:
        return LABELS[self.kind]


class LinkSet(ABC):
    """The links of one local run."""

    kind: str = ""

    def __init__(self) -> None:
        self.t0_unix = time.time()  # time 0 of every trace of this run
        self.links: Dict[str, AgentLink] = {}
        self.note = ""  # why this backend, when it is a fallback

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    def coordinator_argv_prefix(self) -> List[str]:
        """argv prefix for the coordinator process (a namespace for shaped links)."""
        return []

    def coordinator_values(self) -> Dict[str, Any]:
        """Coordinator TOML keys this backend needs (listen address, TLS)."""
        return {}

    @abstractmethod
    def attach(self, device_id: str, profile: LinkProfile) -> AgentLink:
        """Build ``device_id``'s link; raises LinkError subclasses."""

    @abstractmethod
    def start_traces(self) -> None:
        """Time 0 of the links' traces is now (the launcher calls it once the coordinator is up)."""

    @abstractmethod
    def close(self) -> None:
        """Remove everything this set created (idempotent)."""

    def __enter__(self) -> LinkSet:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def agent_link_table(self, link: AgentLink, extra: Optional[Dict[str, Any]] = None) -> Dict:
        """The ``[link]`` table of an agent's TOML (edge_agent.config.LinkConfig)."""
        table: Dict[str, Any] = {
            "kind": link.kind,
            "profile": link.profile.describe(),
            "rate_mbps": float(link.profile.initial_mbps()),
        }
        table.update(extra or {})
        return table
