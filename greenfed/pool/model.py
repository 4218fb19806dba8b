"""The pool's time and energy model (DESIGN.md §8): inputs, result types, one structure costed.

Pure numpy, no I/O, no clock; board-valid (the pool's leader plans on a board). Units are in
the names. A member ``m`` at clock ``f`` spends ``kappa_m * C * f**2`` joules of dynamic
energy on ``C`` cycles in ``C / f`` seconds; over the pool's links it spends ``e_m`` joules
per byte and ``e_msg,m`` per message it moves (sent plus received: the per-message cost is
what a pipeline's many small transfers pay on a CPU), each transfer taking
``bytes / r + n * latency`` for a cut's ``n`` tensors (each tensor is its own message: one
``isend`` each, and gloo moves them one after another on a pair's connection).

Per-layer cycles are linear in the batch: ``cycles_per_call + b * cycles_per_sample`` for a
forward and backward pass over ``b`` samples (small convolutions pay a large fixed cost per
call, which is what makes many small micro-batches slow), plus ``update_cycles`` per
optimizer step. ``speed_scale`` scales a member's cycles against the profiling board.

Structures (the leader is always rank 0; it holds the data set and uploads the update):

``single``    the leader trains alone.
``data``      k members split each batch's rows; one ring all-reduce of the gradients per
              step moves ``4 (k-1)/k * N`` bytes per member (N: gradient bytes), taking
              ``2 (k-1)/k * N / r + 2 (k-1) * latency``; the leader broadcasts the weights
              at the start of the round.
``pipeline``  S members each run a contiguous run of layers on M micro-batches (GPipe). A
              cut moves the carry (activations *and* the skip tensors crossing it) forward
              and its gradients back. Frequencies are planned with the sufficient bound
              ``(M+S-1) * tau_s + update_s <= step budget`` per stage (``tau_s``: a micro-
              batch's compute plus transfers); the step time predicted is the GPipe makespan
              ``sum(tau) + (M-1) * max(tau) + max(update)``. The leader sends each stage its
              weights at the start and gets them back at the end.

A member's clock is the lowest available step that meets its share of the deadline, so a
stage that is not the bottleneck runs slower than the one that is — the pool's saving.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from .errors import PoolPlanError

SINGLE = "single"
DATA = "data"
PIPELINE = "pipeline"
KINDS = (SINGLE, DATA, PIPELINE)
#: Extra floats that travel with the gradients in a data-parallel all-reduce (loss, stop flag).
DATA_EXTRA_BYTES = 8.0
#: A pipeline's per-step all-reduce: squared gradient norm, loss, stop flag.
PIPELINE_SYNC_BYTES = 12.0


@dataclass(frozen=True)
class LayerProfile:
    """One layer (a unit of the UNet) as the planner sees it; cycles on the profiling board."""

    name: str
    cycles_per_sample: float  # forward + backward, per sample
    cycles_per_call: float = 0.0  # forward + backward, fixed per (micro-)batch
    update_cycles: float = 0.0  # optimizer step over this layer's weights, per step
    param_bytes: float = 0.0  # fp32 weights
    act_bytes_per_sample: float = 0.0  # activations kept for backward, per sample
    out_bytes_per_sample: float = 0.0  # the carry after this layer (what a cut here moves)
    out_tensors: int = 1  # the tensors in that carry (each crosses a cut as its own message)


@dataclass(frozen=True)
class MemberSpec:
    """One board of the pool (units in the names; ``f_steps_hz`` ascending; one value when
    its clock cannot be set)."""

    id: str
    kappa: float  # W/Hz^3: dynamic power kappa * f^3
    f_steps_hz: Tuple[float, ...]
    memory_bytes: float  # memory it can give to training
    link_bytes_per_s: float
    link_energy_per_byte_j: float  # dynamic energy per byte moved (sent or received)
    link_latency_s: float = 1e-4  # per message
    speed_scale: float = 1.0  # its cycles / the profiling board's cycles
    link_energy_per_message_j: float = 0.0  # dynamic energy per message sent or received

    def __post_init__(self) -> None:
        steps = tuple(float(f) for f in self.f_steps_hz)
        if not steps or any(not (f > 0 and math.isfinite(f)) for f in steps):
            raise PoolPlanError(f"members[{self.id}].f_steps_hz: positive frequencies needed")
        if list(steps) != sorted(steps):
            raise PoolPlanError(f"members[{self.id}].f_steps_hz: must be ascending")
        object.__setattr__(self, "f_steps_hz", steps)
        for name in ("kappa", "memory_bytes", "link_bytes_per_s", "speed_scale"):
            v = float(getattr(self, name))
            if not (v > 0 and math.isfinite(v)):
                raise PoolPlanError(f"members[{self.id}].{name}: must be > 0, got {v!r}")
        for name in ("link_energy_per_byte_j", "link_latency_s", "link_energy_per_message_j"):
            v = float(getattr(self, name))
            if not (v >= 0 and math.isfinite(v)):
                raise PoolPlanError(f"members[{self.id}].{name}: must be >= 0, got {v!r}")


@dataclass(frozen=True)
class PoolWork:
    """One round's training work: ``steps`` steps of ``batch_size`` samples within
    ``deadline_s`` seconds."""

    batch_size: int
    steps: int
    deadline_s: float
    optimizer_factor: float = 3.0  # bytes of gradients + AdamW moments per weight byte
    max_micro_batches: int = 16

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.steps < 1:
            raise PoolPlanError("work: batch_size and steps must be >= 1")
        if not self.deadline_s > 0:
            raise PoolPlanError(f"work.deadline_s: must be > 0, got {self.deadline_s!r}")


@dataclass(frozen=True)
class MemberPlan:
    """What one member does in the round and what it is predicted to cost (per round)."""

    id: str
    rank: int
    freq_hz: float
    units: Tuple[int, int]  # layers [start, stop) it runs
    rows: int  # samples per step it computes
    compute_energy_j: float
    exchange_energy_j: float
    bytes_moved: float  # sent + received
    messages: float  # sent + received
    compute_time_s: float
    memory_bytes: float

    @property
    def energy_j(self) -> float:
        return self.compute_energy_j + self.exchange_energy_j


@dataclass(frozen=True)
class PoolPlan:
    """A structure for the round: ``kind``, its members in rank order, the micro-batch count,
    the predicted step and round times and energies; ``feasible`` False with ``reason`` when
    it misses the deadline or a member's memory."""

    kind: str
    members: Tuple[MemberPlan, ...]
    micro_batches: int
    step_time_s: float
    round_time_s: float
    feasible: bool
    reason: str = ""
    alternatives: Tuple[Tuple[str, float, float, bool], ...] = field(default=(), compare=False)

    @property
    def energy_j(self) -> float:
        return float(sum(m.energy_j for m in self.members))

    @property
    def label(self) -> str:
        if self.kind == PIPELINE:
            cuts = ",".join(str(m.units[1]) for m in self.members[:-1])
            return f"pipeline x{len(self.members)} (cuts {cuts}, {self.micro_batches} micro)"
        if self.kind == DATA:
            return f"data x{len(self.members)}"
        return SINGLE

    def to_dict(self) -> Dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "micro_batches": self.micro_batches,
            "step_time_s": self.step_time_s,
            "round_time_s": self.round_time_s,
            "energy_j": self.energy_j,
            "feasible": self.feasible,
            "reason": self.reason,
            "members": [dict(m.__dict__, energy_j=m.energy_j) for m in self.members],
            "alternatives": [
                {"label": a[0], "energy_j": a[1], "round_time_s": a[2], "feasible": a[3]}
                for a in self.alternatives
            ],
        }


class LayerSums:
    """Prefix sums of the layer columns: ``x.range(i, j)`` sums layers ``[i, j)``."""

    def __init__(self, layers: Sequence[LayerProfile]) -> None:
        if not layers:
            raise PoolPlanError("layers: at least one layer profile is needed")
        cols = {
            "cps": [lp.cycles_per_sample for lp in layers],
            "cpc": [lp.cycles_per_call for lp in layers],
            "upd": [lp.update_cycles for lp in layers],
            "param": [lp.param_bytes for lp in layers],
            "act": [lp.act_bytes_per_sample for lp in layers],
        }
        self.n = len(layers)
        self.prefix: Dict[str, np.ndarray] = {}
        for k, v in cols.items():
            a = np.asarray(v, dtype=float)
            if not np.all(np.isfinite(a)) or np.any(a < 0):
                raise PoolPlanError(f"layers: {k} must be finite and >= 0")
            self.prefix[k] = np.concatenate([[0.0], np.cumsum(a)])
        self.out_bytes = np.asarray([lp.out_bytes_per_sample for lp in layers], dtype=float)
        self.out_tensors = np.asarray([max(1, int(lp.out_tensors)) for lp in layers], dtype=float)

    def range(self, key: str, i: int, j: int) -> float:
        p = self.prefix[key]
        return float(p[j] - p[i])

    def table(self, key: str) -> np.ndarray:
        """``t[i, j]`` = sum over layers [i, j) (meaningful for i < j)."""
        p = self.prefix[key]
        return p[None, :] - p[:, None]

    def cut_bytes(self, cut: int) -> float:
        """Carry bytes per sample at a cut before layer ``cut`` (0 at either end)."""
        return 0.0 if cut <= 0 or cut >= self.n else float(self.out_bytes[cut - 1])

    def cut_tensors(self, cut: int) -> float:
        """Tensors (messages) a cut before layer ``cut`` moves each way (0 at either end)."""
        return 0.0 if cut <= 0 or cut >= self.n else float(self.out_tensors[cut - 1])


def step_up(member: MemberSpec, freq_hz: float) -> Tuple[float, bool]:
    """The lowest available step >= ``freq_hz`` and True; the top step and False if none."""
    for f in member.f_steps_hz:
        if f >= freq_hz * (1.0 - 1e-12):
            return f, True
    return member.f_steps_hz[-1], False


def _clock_for(m: MemberSpec, f_req: float) -> Tuple[float, str]:
    """The member's clock for a required frequency, and why it is too slow ("" if not)."""
    f, ok = step_up(m, f_req)
    if ok:
        return f, ""
    need = "more time than the deadline leaves" if not math.isfinite(f_req) else (
        f"{f_req / 1e6:.0f} MHz"
    )  # fmt: skip
    return f, f"{m.id} would need {need} (top {m.f_steps_hz[-1] / 1e6:.0f} MHz)"


def _member(
    m: MemberSpec, rank: int, f: float, units: Tuple[int, int], rows: int, cycles: float,
    exchange_bytes: float, messages: float, memory: float,
) -> MemberPlan:  # fmt: skip
    return MemberPlan(
        id=m.id,
        rank=rank,
        freq_hz=f,
        units=units,
        rows=rows,
        compute_energy_j=m.kappa * cycles * f * f,
        exchange_energy_j=m.link_energy_per_byte_j * exchange_bytes
        + m.link_energy_per_message_j * messages,
        bytes_moved=exchange_bytes,
        messages=messages,
        compute_time_s=cycles / f,
        memory_bytes=memory,
    )


def _verdict(
    late: str, round_time: float, work: PoolWork, plans: List[MemberPlan],
    members: Sequence[MemberSpec],
) -> Tuple[bool, str]:  # fmt: skip
    for p, m in zip(plans, members):
        if p.memory_bytes > m.memory_bytes:
            return False, (
                f"{m.id} needs {p.memory_bytes / 1e6:.1f} MB, has {m.memory_bytes / 1e6:.1f} MB"
            )
    if late:
        return False, f"deadline {work.deadline_s:.3g} s: {late}"
    if round_time > work.deadline_s * (1 + 1e-9):
        return False, f"needs {round_time:.3g} s, deadline {work.deadline_s:.3g} s"
    return True, ""


def evaluate_single(layers: LayerSums, leader: MemberSpec, work: PoolWork) -> PoolPlan:
    """The leader trains alone."""
    B, steps = work.batch_size, work.steps
    per_step = leader.speed_scale * (
        layers.range("cpc", 0, layers.n) + B * layers.range("cps", 0, layers.n)
        + layers.range("upd", 0, layers.n)
    )  # fmt: skip
    f, late = _clock_for(leader, per_step * steps / work.deadline_s)
    params = layers.range("param", 0, layers.n)
    memory = params * (1 + work.optimizer_factor) + layers.range("act", 0, layers.n) * B
    plan = _member(leader, 0, f, (0, layers.n), B, per_step * steps, 0.0, 0.0, memory)
    round_time = plan.compute_time_s
    feasible, reason = _verdict(late, round_time, work, [plan], [leader])
    return PoolPlan(SINGLE, (plan,), 1, round_time / steps, round_time, feasible, reason)


def evaluate_data(layers: LayerSums, members: Sequence[MemberSpec], work: PoolWork) -> PoolPlan:
    """Data parallel over ``members`` (rank order; the first is the leader)."""
    k, B, steps, n = len(members), work.batch_size, work.steps, layers.n
    rows = [B // k + (1 if r < B % k else 0) for r in range(k)]
    params = layers.range("param", 0, n)
    grad_bytes = params + DATA_EXTRA_BYTES
    rate = min(m.link_bytes_per_s for m in members)
    latency = max(m.link_latency_s for m in members)
    ring = 2.0 * (k - 1) / k
    t_exchange = ring * grad_bytes / rate + 2 * (k - 1) * latency
    t_dist = (k - 1) * params / rate + latency
    budget = (work.deadline_s - t_dist) / steps - t_exchange
    plans: List[MemberPlan] = []
    lates = []
    for r, (m, b) in enumerate(zip(members, rows)):
        per_step = m.speed_scale * (
            layers.range("cpc", 0, n) + b * layers.range("cps", 0, n) + layers.range("upd", 0, n)
        )
        f, late = _clock_for(m, per_step / budget if budget > 0 else math.inf)
        lates.append(late)
        dist = (k - 1) * params if r == 0 else params
        moved = steps * 2 * ring * grad_bytes + dist
        # a ring all-reduce: 2(k-1) sends and as many receives per step; the weights' broadcast
        messages = steps * 4 * (k - 1) + (k - 1 if r == 0 else 1)
        memory = params * (2 + work.optimizer_factor) + layers.range("act", 0, n) * b
        plans.append(_member(m, r, f, (0, n), b, per_step * steps, moved, messages, memory))
    step = max(p.compute_time_s for p in plans) / steps + t_exchange
    round_time = step * steps + t_dist
    feasible, reason = _verdict(_first(lates), round_time, work, plans, members)
    return PoolPlan(DATA, tuple(plans), 1, step, round_time, feasible, reason)


def evaluate_pipeline(
    layers: LayerSums,
    members: Sequence[MemberSpec],
    work: PoolWork,
    bounds: Sequence[int],
    micro_batches: int,
) -> PoolPlan:
    """A GPipe pipeline: stage ``s`` runs layers ``[bounds[s], bounds[s+1])`` on
    ``members[s]`` with ``micro_batches`` micro-batches."""
    S, B, M, steps = len(members), work.batch_size, micro_batches, work.steps
    if len(bounds) != S + 1 or bounds[0] != 0 or bounds[-1] != layers.n:
        raise PoolPlanError(f"bounds: {S + 1} cut points from 0 to {layers.n} needed")
    if any(b >= c for b, c in zip(bounds, bounds[1:])):
        raise PoolPlanError("bounds: every stage needs at least one layer")
    if not 1 <= M <= B:
        raise PoolPlanError(f"micro_batches: must be in 1..{B}")
    bmax = -(-B // M)
    t_dist, t_sync, dist_bytes = stage_overheads(layers, members, bounds)
    budget = (work.deadline_s - t_dist) / steps - t_sync
    plans: List[MemberPlan] = []
    taus, updates = [], []
    lates = []
    for s, m in enumerate(members):
        i, j = bounds[s], bounds[s + 1]
        comm, moved_per_sample, msgs_mb = stage_comm(layers, members, s, i, j, bmax)
        cyc_mb = m.speed_scale * (layers.range("cpc", i, j) + bmax * layers.range("cps", i, j))
        upd = m.speed_scale * layers.range("upd", i, j)
        spare = budget - (M + S - 1) * comm
        f_req = ((M + S - 1) * cyc_mb + upd) / spare if spare > 0 else math.inf
        f, late = _clock_for(m, f_req)
        lates.append(late)
        taus.append(cyc_mb / f + comm)
        updates.append(upd / f)
        cycles = steps * m.speed_scale * (
            M * layers.range("cpc", i, j) + B * layers.range("cps", i, j)
            + layers.range("upd", i, j)
        )  # fmt: skip
        ring = 2.0 * (S - 1) / S
        moved = steps * (B * moved_per_sample + 2 * ring * PIPELINE_SYNC_BYTES) + dist_bytes[s]
        # per step: every micro-batch's tensors both ways, and the clipping all-reduce
        messages = steps * (M * msgs_mb + 4 * (S - 1)) + (2 * (S - 1) if s == 0 else 2)
        memory = layers.range("param", i, j) * (1 + work.optimizer_factor) + B * (
            layers.range("act", i, j) + layers.cut_bytes(i) + layers.cut_bytes(j)
        )
        plans.append(_member(m, s, f, (i, j), B, cycles, moved, messages, memory))
    step = sum(taus) + (M - 1) * max(taus) + max(updates) + t_sync
    round_time = step * steps + t_dist
    feasible, reason = _verdict(_first(lates), round_time, work, plans, members)
    return PoolPlan(PIPELINE, tuple(plans), M, step, round_time, feasible, reason)


def _first(reasons: Sequence[str]) -> str:
    return next((r for r in reasons if r), "")


def cut_link(members: Sequence[MemberSpec], s: int) -> Tuple[float, float]:
    """Rate and latency of the link between stage ``s`` and ``s + 1``."""
    a, b = members[s], members[s + 1]
    return min(a.link_bytes_per_s, b.link_bytes_per_s), max(a.link_latency_s, b.link_latency_s)


def stage_comm(
    layers: LayerSums, members: Sequence[MemberSpec], s: int, i: int, j: int, rows: int
) -> Tuple[float, float, float]:
    """What stage ``s`` moves over its cuts for one micro-batch of ``rows`` samples
    (activations forward, gradients back): seconds, bytes per sample, messages."""
    seconds, per_sample, messages = 0.0, 0.0, 0.0
    # Per micro-batch and direction, each of the cut's tensors is a message with its latency.
    if s > 0:
        rate, lat = cut_link(members, s - 1)
        n = layers.cut_tensors(i)
        seconds += 2 * (layers.cut_bytes(i) * rows / rate + n * lat)
        per_sample += 2 * layers.cut_bytes(i)
        messages += 2 * n
    if s < len(members) - 1:
        rate, lat = cut_link(members, s)
        n = layers.cut_tensors(j)
        seconds += 2 * (layers.cut_bytes(j) * rows / rate + n * lat)
        per_sample += 2 * layers.cut_bytes(j)
        messages += 2 * n
    return seconds, per_sample, messages


def stage_overheads(
    layers: LayerSums, members: Sequence[MemberSpec], bounds: Sequence[int]
) -> Tuple[float, float, List[float]]:
    """Per round: the weights' trip (leader -> stage at the start and back at the end) in
    seconds and bytes per member; per step: the clipping all-reduce's latency."""
    S = len(members)
    sizes = [layers.range("param", bounds[s], bounds[s + 1]) for s in range(S)]
    rate = min(m.link_bytes_per_s for m in members)
    latency = max(m.link_latency_s for m in members)
    moved = [2.0 * x for x in sizes]
    moved[0] = 2.0 * sum(sizes[1:])
    t_dist = moved[0] / rate + 2 * (S - 1) * latency
    t_sync = 2 * (S - 1) * latency
    return t_dist, t_sync, moved
