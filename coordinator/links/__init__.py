"""The link testbed: each local agent behind its own kernel-shaped network, or an honest fallback.

Pieces (one responsibility each)::

    profile.py    LinkProfile: rate or trace, RTT, jitter, loss; the "rate=5,rtt=40" text form
    traces/       shipped bandwidth traces (CSV time_s,mbps) and their provenance (README.md)
    base.py       LinkSet, the small interface the launcher uses; AgentLink, one device's link
    shaped.py     ShapedLinks: network namespaces, veth or TUN pairs, tc htb (+ netem)
    delayline.py  the user-space delay line for kernels without sch_netem
    replay.py     TraceReplayer: applies a trace's steps at their times
    emulated.py   EmulatedLinks: the in-process token bucket (no root, no iproute2)
    kernel.py     ip/tc commands, namespaces, setns, the capability probe
    registry.py   which run owns which namespaces; cleanup after a SIGKILL
    measure.py    goodput and RTT of a shaped link, measured over real sockets

Records say ``shaped link (netns/tc)`` or ``emulated link (in-process)`` (base.LABELS). The
trace format lives in :mod:`greenfed.linktrace` because agents read it too.

Errors::

    LinkError
    ├── ProfileError          (also a ValueError) a bad profile, spec or trace
    ├── ShapingUnavailable    not root / no iproute2 / no namespaces / no TUN; ``reason`` says
    ├── KernelCommandError    an ip or tc command failed: the command and its stderr
    └── DelayLineError        the user-space delay line did not start
"""

from __future__ import annotations

from coordinator.links.base import EMULATED, LABELS, SHAPED, AgentLink, LinkSet
from coordinator.links.emulated import EmulatedLinks
from coordinator.links.errors import (
    DelayLineError,
    KernelCommandError,
    LinkError,
    ProfileError,
    ShapingUnavailable,
)
from coordinator.links.profile import LinkProfile, parse_link_spec, shipped_traces
from coordinator.links.shaped import ShapedLinks, shaped_or_emulated

__all__ = [
    "EMULATED",
    "LABELS",
    "SHAPED",
    "AgentLink",
    "DelayLineError",
    "EmulatedLinks",
    "KernelCommandError",
    "LinkError",
    "LinkProfile",
    "LinkSet",
    "ProfileError",
    "ShapedLinks",
    "ShapingUnavailable",
    "parse_link_spec",
    "shaped_or_emulated",
    "shipped_traces",
]
