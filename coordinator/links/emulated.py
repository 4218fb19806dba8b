"""The fallback without root or iproute2: each agent paces its own uploads (token bucket).

This is the ``--uplink-mbps`` emulation of edge_agent/link.py: bytes still cross loopback at
memory speed, paced by the agent; with a trace the bucket's rate follows it. Round-trip time,
jitter and loss cannot be emulated this way: the profile recorded with every report says so
(``... (RTT, loss not applied: in-process emulation)``), and every record says
``emulated link (in-process)``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict

from coordinator.links.base import EMULATED, AgentLink, LinkSet
from coordinator.links.profile import LinkProfile, trace_path

log = logging.getLogger(__name__)


class EmulatedLinks(LinkSet):
    kind = EMULATED

    def __init__(self, reason: str = "") -> None:  # reason: why not shaped (a fallback)
        super().__init__()
        self.note = f"fallback: {reason}" if reason else ""

    def start_traces(self) -> None:
        """The agents' buckets count trace time from ``t0_unix``: move it to now."""
        if not self.links:
            self.t0_unix = time.time()

    def close(self) -> None:
        """Nothing to remove: the agents pace their own uploads and exit with the run."""
        self.links.clear()

    def attach(self, device_id: str, profile: LinkProfile) -> AgentLink:
        link = AgentLink(device_id, EMULATED, profile, "127.0.0.1", detail="token bucket")
        missing = [
            name
            for name, value in (
                ("RTT", profile.rtt_ms),
                ("jitter", profile.jitter_ms),
                ("loss", profile.loss_pct),
            )
            if value
        ]
        text = profile.describe()
        if missing:
            text += f" ({', '.join(missing)} not applied: in-process emulation)"
            log.warning(
                "%s: %s cannot be emulated in-process; only the rate is", device_id, missing
            )
        extra: Dict[str, Any] = {"profile": text}
        if profile.trace is not None:
            extra["trace"] = str(trace_path(profile.trace))
            extra["trace_t0_unix"] = self.t0_unix
            extra["trace_offset_s"] = profile.trace_offset_s
        link.agent_values = {
            "uplink_mbps": float(profile.initial_mbps()),
            "link": self.agent_link_table(link, extra),
        }
        self.links[device_id] = link
        return link
