"""A pool's round as the coordinator sees it: members' figures, their sum, the plan.

The leader's RoundReport keeps its usual windows, except that its "compute" window becomes
the pool's: the sum of every member's own measured windows ("compute" + "exchange") over the
pool's training, at the pool's reference clock (the one its calibration profile uses), so the
coordinator's refit calibrates the pool as one device. The per-member figures travel in the
report's ``pool`` field, each with its own source label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

from edge_agent.sensing import WindowResult
from greenfed.pool import PoolPlan
from greenfed.v1 import fleet_pb2 as pb

from .worker import MemberOutcome

MAX_LABEL = 250  # the coordinator accepts 256 characters of source/scope text


@dataclass
class PoolRound:
    """One round of a pool: the plan it followed and what each member measured."""

    plan: PoolPlan
    outcomes: List[MemberOutcome]
    wall_s: float  # the pool's training, wall clock (the leader's), s
    engine: str  # "all-reduce", "p2p", "pipelining", or "local" (single board)
    steps: int

    def windows(self) -> List[WindowResult]:
        out: List[WindowResult] = []
        for o in self.outcomes:
            out.extend(WindowResult(**w) for w in o.windows)
        return out

    @property
    def energy_j(self) -> float:
        return float(sum(w.energy_j for w in self.windows()))

    @property
    def dynamic_energy_j(self) -> float:
        return float(sum(w.dynamic_energy_j or 0.0 for w in self.windows()))

    def source_label(self) -> str:
        sources = sorted({w.source for w in self.windows()})
        return f"pool({','.join(sources)})"[:MAX_LABEL]

    def compute_window(self, leader: WindowResult, ref_freq_hz: float) -> WindowResult:
        """The pool's "compute" window: members' windows summed, over the leader's
        compute duration, at the pool's reference clock."""
        ws = self.windows()
        energy = self.energy_j
        duration = max(leader.duration_s, 1e-9)
        return WindowResult(
            name=leader.name,
            energy_j=energy,
            dynamic_energy_j=self.dynamic_energy_j,
            duration_s=leader.duration_s,
            mean_power_w=energy / duration,
            peak_power_w=float(sum(w.peak_power_w for w in ws)),  # an upper bound
            samples=int(sum(w.samples for w in ws)),
            mean_freq_hz=ref_freq_hz,
            source=self.source_label(),
            scope=(
                f"pool of {len(self.outcomes)}: the sum of its members' own windows while it "
                "trained (each in the report's pool field); encoding on the leader not included"
            )[:MAX_LABEL],
            estimated=any(w.estimated for w in ws),
            idle_power_w=None,
        )

    def to_pb(self) -> pb.PoolReport:
        predicted = {m.id: m for m in self.plan.members}
        members: List[pb.PoolMemberReport] = []
        for o in self.outcomes:
            members.append(
                pb.PoolMemberReport(
                    member_id=o.member_id,
                    rank=o.rank,
                    windows=[_window_pb(WindowResult(**w)) for w in o.windows],
                    bytes_sent=o.bytes_sent,
                    bytes_received=o.bytes_received,
                    freq_hz=o.freq_hz,
                    dvfs_applied=o.dvfs_applied,
                    dvfs_reason=o.dvfs_reason[:MAX_LABEL],
                    stage_start=int(o.units[0]),
                    stage_stop=int(o.units[1]),
                    compute_s=float(o.seconds.get("compute", 0.0)),
                    exchange_s=float(o.seconds.get("exchange", 0.0)),
                    predicted_energy_j=predicted[o.member_id].energy_j
                    if o.member_id in predicted
                    else 0.0,
                )
            )
        return pb.PoolReport(
            parallelism=self.plan.kind,
            plan=self.plan.label[:MAX_LABEL],
            engine=self.engine,
            micro_batches=self.plan.micro_batches,
            members=members,
            energy_j=self.energy_j,
            dynamic_energy_j=self.dynamic_energy_j,
            predicted_energy_j=self.plan.energy_j,
            predicted_step_s=self.plan.step_time_s,
            measured_step_s=self.wall_s / max(self.steps, 1),
            feasible=self.plan.feasible,
            reason=self.plan.reason[:MAX_LABEL],
        )


def _window_pb(w: WindowResult) -> pb.EnergyWindow:
    from edge_agent.serde import window_pb

    return window_pb(w)


def member_dynamic_j(outcomes: Sequence[MemberOutcome]) -> List[float]:
    """Each member's measured dynamic energy (its windows summed), J."""
    return [
        float(sum(WindowResult(**w).dynamic_energy_j or 0.0 for w in o.windows)) for o in outcomes
    ]
