"""The pool planner: single board, data parallel or pipeline, and a clock per member.

A pure function (numpy in, numpy out, no I/O, no clock), like the coordinator's allocator::

    plan = plan_pool(layers, members, work)    # members[0] is the leader

It costs every structure with :mod:`greenfed.pool.model` and returns the feasible one of
least predicted energy (``plan.alternatives`` lists the best of each kind), or, when none is
feasible, the fastest one that fits in memory, flagged ``feasible=False`` with the reason.

- ``single``: the leader alone.
- ``data``: the leader plus the k-1 most frugal other members (lowest ``kappa *
  speed_scale**3``: the energy of a fixed amount of work in a fixed time), k = 2..n.
- ``pipeline``: S stages on the leader and the S-1 most frugal members, for every S and
  micro-batch count M (powers of two up to ``work.max_micro_batches``). The cut points come
  from a dynamic programme over layers: ``best[s][j]`` is the least energy of stages
  ``0..s`` covering layers ``[0, j)``, each stage at the lowest clock that meets its share
  of the step budget, infeasible cells (too slow at the top clock, or over the member's
  memory) at infinity. The transfer of the weights at the start and end of the round is
  planned at its upper bound (every weight moves) and costed exactly for the chosen cuts.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from .errors import PoolPlanError
from .model import (
    DATA,
    KINDS,
    PIPELINE,
    SINGLE,
    LayerProfile,
    LayerSums,
    MemberSpec,
    PoolPlan,
    PoolWork,
    cut_link,
    evaluate_data,
    evaluate_pipeline,
    evaluate_single,
)


def frugal_order(members: Sequence[MemberSpec]) -> List[MemberSpec]:
    """The leader first, then the others from least to most energy per unit of work."""
    rest = sorted(members[1:], key=lambda m: m.kappa * m.speed_scale**3)
    return [members[0], *rest]


def micro_batch_counts(work: PoolWork, forced: int = 0) -> List[int]:
    """Powers of two up to the batch and ``work.max_micro_batches``; ``forced`` alone if set."""
    if forced:
        return [min(forced, work.batch_size)]
    counts, m = [], 1
    while m <= min(work.batch_size, work.max_micro_batches):
        counts.append(m)
        m *= 2
    return counts


def _round_up(steps: np.ndarray, f_req: np.ndarray) -> np.ndarray:
    """Each required frequency rounded up to a step; inf where none is high enough."""
    idx = np.searchsorted(steps, f_req * (1.0 - 1e-12), side="left")
    padded = np.append(steps, np.inf)
    return padded[np.minimum(idx, len(steps))]


def _stage_costs(
    sums: LayerSums, members: Sequence[MemberSpec], work: PoolWork, s: int, M: int,
    budget: float,
) -> np.ndarray:  # fmt: skip
    """``cost[i, j]``: predicted energy of stage ``s`` running layers ``[i, j)`` (inf where
    impossible), including its half of every transfer it takes part in."""
    m, S, L, B = members[s], len(members), sums.n, work.batch_size
    bmax = -(-B // M)
    cuts = np.arange(L + 1)
    cut_bytes = np.array([sums.cut_bytes(c) for c in range(L + 1)])
    cut_tensors = np.array([sums.cut_tensors(c) for c in range(L + 1)])
    comm = np.zeros((L + 1, L + 1))
    per_sample = np.zeros((L + 1, L + 1))
    messages = np.zeros((L + 1, L + 1))  # per micro-batch: each cut's tensors, both ways
    if s > 0:
        rate, lat = cut_link(members, s - 1)
        comm += (2 * (cut_bytes * bmax / rate + cut_tensors * lat))[:, None]
        per_sample += (2 * cut_bytes)[:, None]
        messages += (2 * cut_tensors)[:, None]
    if s < S - 1:
        rate, lat = cut_link(members, s)
        comm += (2 * (cut_bytes * bmax / rate + cut_tensors * lat))[None, :]
        per_sample += (2 * cut_bytes)[None, :]
        messages += (2 * cut_tensors)[None, :]
    cpc, cps, upd = sums.table("cpc"), sums.table("cps"), sums.table("upd")
    param = sums.table("param")
    cyc_mb = m.speed_scale * (cpc + bmax * cps)
    spare = budget - (M + S - 1) * comm
    with np.errstate(divide="ignore", invalid="ignore"):
        f_req = np.where(spare > 0, ((M + S - 1) * cyc_mb + m.speed_scale * upd) / spare, np.inf)
    f = _round_up(np.asarray(m.f_steps_hz), f_req)
    cycles = work.steps * m.speed_scale * (M * cpc + B * cps + upd)
    moved = work.steps * B * per_sample
    sent = work.steps * (M * messages + 4 * (S - 1))
    # The weights' trip to this stage and back, at both ends (the leader's side too).
    lead = members[0]
    energy_dist = 0.0 if s == 0 else 2 * param * (
        m.link_energy_per_byte_j + lead.link_energy_per_byte_j
    ) + 2 * (m.link_energy_per_message_j + lead.link_energy_per_message_j)  # fmt: skip
    memory = param * (1 + work.optimizer_factor) + B * (
        sums.table("act") + cut_bytes[:, None] + cut_bytes[None, :]
    )
    with np.errstate(invalid="ignore"):
        cost = (
            m.kappa * cycles * f * f
            + m.link_energy_per_byte_j * moved
            + m.link_energy_per_message_j * sent
            + energy_dist
        )
    valid = (cuts[:, None] < cuts[None, :]) & np.isfinite(f) & (memory <= m.memory_bytes)
    if s == 0:
        valid &= (cuts == 0)[:, None]
    if s == S - 1:
        valid &= (cuts == L)[None, :]
    return np.where(valid, cost, np.inf)


def best_cuts(
    sums: LayerSums, members: Sequence[MemberSpec], work: PoolWork, M: int
) -> Optional[List[int]]:
    """The cut points of least energy for ``len(members)`` stages and ``M`` micro-batches,
    or None when no split is feasible."""
    S, L = len(members), sums.n
    if S > L:
        return None
    rate = min(m.link_bytes_per_s for m in members)
    latency = max(m.link_latency_s for m in members)
    t_dist = 2 * sums.range("param", 0, L) / rate + 2 * (S - 1) * latency
    budget = (work.deadline_s - t_dist) / work.steps - 2 * (S - 1) * latency
    if budget <= 0:
        return None
    best = _stage_costs(sums, members, work, 0, M, budget)[0]
    back: List[np.ndarray] = []
    for s in range(1, S):
        total = best[:, None] + _stage_costs(sums, members, work, s, M, budget)
        back.append(np.argmin(total, axis=0))
        best = total.min(axis=0)
    if not np.isfinite(best[L]):
        return None
    bounds = [L]
    for arg in reversed(back):
        bounds.append(int(arg[bounds[-1]]))
    bounds.append(0)
    return bounds[::-1]


def _choose(plans: Sequence[PoolPlan]) -> PoolPlan:
    feasible = [p for p in plans if p.feasible]
    if feasible:
        return min(feasible, key=lambda p: (p.energy_j, len(p.members)))
    return min(plans, key=lambda p: p.round_time_s)


def plan_pool(
    layers: Sequence[LayerProfile],
    members: Sequence[MemberSpec],
    work: PoolWork,
    kinds: Sequence[str] = KINDS,
    micro_batches: int = 0,
    width: int = 0,
) -> PoolPlan:
    """The least-energy structure for the round (see the module docstring); ``kinds``
    restricts the structures considered, ``micro_batches`` forces the count, ``width``
    the number of members a data-parallel or pipeline round uses (0: any)."""
    if not members:
        raise PoolPlanError("members: at least the leader is needed")
    unknown = set(kinds) - set(KINDS)
    if unknown or not kinds:
        raise PoolPlanError(f"kinds: choose among {', '.join(KINDS)}")
    ids = [m.id for m in members]
    if len(set(ids)) != len(ids):
        raise PoolPlanError("members: ids must be unique")
    sums = LayerSums(layers)
    ordered = frugal_order(members)
    best_of = {}
    if SINGLE in kinds or len(members) == 1:
        best_of[SINGLE] = evaluate_single(sums, members[0], work)
    # ``width`` members when that many answer, else all of them
    widths = [min(width, len(ordered))] if width else list(range(2, len(ordered) + 1))
    widths = [w for w in widths if w >= 2]
    data_plans = [evaluate_data(sums, ordered[:k], work) for k in widths]
    if data_plans and DATA in kinds:
        best_of[DATA] = _choose(data_plans)
    pipe_plans: List[PoolPlan] = []
    for S in (w for w in widths if w <= sums.n and PIPELINE in kinds):
        for M in micro_batch_counts(work, micro_batches):
            bounds = best_cuts(sums, ordered[:S], work, M)
            if bounds is not None:
                pipe_plans.append(evaluate_pipeline(sums, ordered[:S], work, bounds, M))
    if pipe_plans:
        best_of[PIPELINE] = _choose(pipe_plans)
    if not best_of:  # the kind asked for has no candidate with these members
        best_of[SINGLE] = evaluate_single(sums, members[0], work)
    chosen = _choose(list(best_of.values()))
    alternatives: Tuple[Tuple[str, float, float, bool], ...] = tuple(
        (p.label, p.energy_j, p.round_time_s, p.feasible) for p in best_of.values()
    )
    return PoolPlan(
        chosen.kind,
        chosen.members,
        chosen.micro_batches,
        chosen.step_time_s,
        chosen.round_time_s,
        chosen.feasible,
        chosen.reason,
        alternatives,
    )
