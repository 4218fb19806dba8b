"""What an agent knows and says about its uplink: kind, configured profile, configured rate.

Three cases, from the agent's configuration (``uplink_mbps`` and the ``[link]`` table):

- **emulated** (``uplink_mbps`` set): this process paces its uploads with a token bucket, at a
  fixed rate or following ``link.trace``; the configured rate over an upload is known exactly;
- **shaped** (``link.kind = "shaped"``): the coordinator's testbed put this agent in a network
  namespace whose uplink the kernel shapes; the configured rate is ``link.rate_mbps``, or, when
  a trace is replayed, what the testbed's log (``link.rate_log``) says it applied;
- **none**: the board's own network; nothing is configured, only the measurement counts.

Either way the coordinator plans from the *measured* throughput (bytes / upload time); the
configured rate is a prior before the first measurement and a record of what was asked for.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from edge_agent.config import AgentConfig
from edge_agent.link import ScheduledBucket, TokenBucket, mbps_to_bytes_per_s
from greenfed.linktrace import RateSchedule, TraceError, load_trace, read_rate_log

log = logging.getLogger(__name__)

LABELS = {"shaped": "shaped link (netns/tc)", "emulated": "emulated link (in-process)"}


class LinkRecord:
    def __init__(self, cfg: AgentConfig, wall: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self._wall = wall
        link = cfg.link
        self.kind = "emulated" if cfg.uplink_mbps else link.kind
        self.profile = link.profile or (f"{cfg.uplink_mbps:g} Mbit/s" if cfg.uplink_mbps else "")
        self._schedule: Optional[RateSchedule] = None
        self.bucket: Optional[TokenBucket] = None
        if self.kind == "emulated":
            assert cfg.uplink_mbps is not None
            if link.trace is not None:
                t0 = link.trace_t0_unix or wall()
                self._schedule = load_trace(link.trace).schedule(t0, link.trace_offset_s)
                self.bucket = ScheduledBucket(self._schedule.rate_at, wall=wall)
            else:
                self._schedule = RateSchedule((0.0,), (float(cfg.uplink_mbps),))
                self.bucket = TokenBucket(mbps_to_bytes_per_s(cfg.uplink_mbps))
        elif self.kind == "shaped":
            self._schedule = RateSchedule((0.0,), (float(link.rate_mbps),))

    @property
    def label(self) -> str:
        return LABELS.get(self.kind, "")

    @property
    def prior_mbps(self) -> float:
        """The configured rate at registration (0: none): the planner's first guess."""
        if self._schedule is None:
            return 0.0
        return float(self._schedule.rate_at(self._wall()))

    def configured_mbps(self, start_unix: float, end_unix: float) -> float:
        """Time-weighted configured rate over [start, end] (0: the board's own network)."""
        schedule = self._schedule
        if self.kind == "shaped" and self.cfg.link.rate_log is not None:
            try:
                schedule = read_rate_log(self.cfg.link.rate_log)
            except TraceError as e:  # the record loses a detail; the round goes on
                log.warning("link rate log unreadable: %s", e)
        if schedule is None:
            return 0.0
        return float(schedule.mean_mbps(start_unix, end_unix))
