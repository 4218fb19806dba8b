"""What the agent daemon adds when it leads a pool (``[pool]`` in agent.toml).

The daemon stays one participant: it registers the pool's calibration profile instead of its
own board's, trains with :class:`~edge_agent.training.pool.PoolTraining`, leaves the clocks to
the pool's planner, and reports the pool's sum in its "compute" window with every member's
figures beside it (:mod:`.report`).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Optional

import numpy as np

from edge_agent.config import AgentConfig
from edge_agent.sensing import CalibrationProfile, ComputeClock, PowerMonitor, WindowResult
from edge_agent.training.pool import PoolResult, PoolTraining
from greenfed.v1 import fleet_pb2 as pb

from .calibration import calibrate_pool
from .leader import LeaderSelf, PoolLeader
from .member import available_memory_bytes, gate_tls
from .report import PoolRound
from .shared_host import ProcessShareSource

log = logging.getLogger(__name__)

DVFS_REASON = "a pool: its planner sets each member's clock"


class LeaderSession:
    """The leader, its calibration and its training, for one daemon run."""

    def __init__(
        self,
        cfg: AgentConfig,
        images: np.ndarray,
        own_profile: CalibrationProfile,
        monitor: PowerMonitor,
        cpu: ComputeClock,
    ) -> None:
        assert cfg.pool is not None
        self.cfg = cfg
        self._own_monitor: Optional[PowerMonitor] = None
        rank0 = monitor
        if cfg.pool.shared_host:  # the daemon's source would count every member's work
            source = ProcessShareSource.for_host(cfg.sensing, cfg.pool.host_cores, cfg.sysfs_root)
            self._own_monitor = PowerMonitor(source, cpu, cfg.sensing)
            self._own_monitor.start()
            rank0 = self._own_monitor
        me = LeaderSelf(
            member_id=cfg.device_id,
            profile=own_profile,
            monitor=rank0,
            cpu=cpu,
            memory_bytes=available_memory_bytes(cfg.pool.memory_bytes),
            num_threads=cfg.num_threads,
        )
        try:
            tls = gate_tls(cfg.tls.cert, cfg.tls.key, cfg.tls.ca)
            self.leader = PoolLeader(cfg.pool, me, images, tls)
        except BaseException:
            if self._own_monitor is not None:
                self._own_monitor.stop()
            raise
        self.profile: Optional[CalibrationProfile] = None

    def calibrate(self) -> CalibrationProfile:
        assert self.cfg.pool is not None
        self.profile = calibrate_pool(
            self.leader, self.cfg.pool.calibration_steps, self.cfg.num_threads
        )
        return self.profile

    def board(self, own_board: str) -> str:
        return f"pool:{1 + len(self.leader.gate.joined())}:{own_board}"[:256]

    def training(self, model_config: Mapping[str, Any], images: np.ndarray) -> PoolTraining:
        return PoolTraining(model_config, images, self.leader)

    def report(
        self, result: Any, leader_window: WindowResult, report: pb.RoundReport
    ) -> WindowResult:
        """The pool's fields of ``report``; returns the pool's "compute" window (the
        leader's own when the round was not a pool round)."""
        pool = result.pool if isinstance(result, PoolResult) else None
        if not isinstance(pool, PoolRound):
            return leader_window
        report.pool.CopyFrom(pool.to_pb())
        ref = self.profile.f_max_hz if self.profile is not None else None
        return pool.compute_window(leader_window, float(ref or leader_window.mean_freq_hz or 0.0))

    def close(self) -> None:
        self.leader.close()
        if self._own_monitor is not None:
            self._own_monitor.stop()
