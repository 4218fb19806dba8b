"""The pool planner: pure numpy, tested on the presets' real layer profiles (fixture) and
against brute force. Cycles and boards are the fixture Pi 4 of tests/pool/layers.py."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import List

import numpy as np
import pytest

from greenfed.pool import (
    DATA,
    PIPELINE,
    SINGLE,
    LayerProfile,
    LayerSums,
    MemberSpec,
    PoolPlanError,
    PoolWork,
    best_cuts,
    evaluate_data,
    evaluate_pipeline,
    evaluate_single,
    plan_pool,
)
from tests.pool.layers import layers, pi4


def alone_at_top_s(preset: str, batch: int, steps: int) -> float:
    top = replace(pi4("top"), f_steps_hz=(1.5e9,))
    return evaluate_single(LayerSums(layers(preset)), top, PoolWork(batch, steps, 1e9)).round_time_s


def tight(preset: str, batch: int, steps: int = 20, factor: float = 1.1) -> PoolWork:
    """A deadline that one board meets only near its top clock."""
    return PoolWork(batch, steps, factor * alone_at_top_s(preset, batch, steps))


def test_data_parallel_for_pi_small_on_two_members_with_fast_links() -> None:
    work = tight("pi-small", 64)
    plan = plan_pool(layers("pi-small"), [pi4("a"), pi4("b")], work)
    assert plan.kind == DATA and [m.id for m in plan.members] == ["a", "b"]
    assert plan.feasible and plan.round_time_s <= work.deadline_s
    single = evaluate_single(LayerSums(layers("pi-small")), pi4("a"), work)
    assert plan.energy_j < 0.5 * single.energy_j  # both halves run far below the top clock
    assert all(m.freq_hz < single.members[0].freq_hz for m in plan.members)
    assert [a[0] for a in plan.alternatives] == ["single", "data x2", plan.alternatives[2][0]]


def test_slow_links_keep_the_round_on_one_board_where_exchange_outweighs_the_saving() -> None:
    """Sweep the link rate of a 2 W radio (energy per byte = 2 W / rate): the pool wins on
    fast links, one board wins on slow ones, and at the crossover the pool could still meet
    the deadline: what tips it is the exchange energy, not time."""
    pi_small, work = layers("pi-small"), tight("pi-small", 64)
    sums = LayerSums(pi_small)
    single = evaluate_single(sums, pi4("a"), work)
    rates = np.geomspace(1e8, 1e6, 41)
    kinds: List[str] = []
    for r in rates:
        pair = [pi4("a", rate=r, link_w=2.0), pi4("b", rate=r, link_w=2.0)]
        kinds.append(plan_pool(pi_small, pair, work).kind)
    assert kinds[0] == DATA and kinds[-1] == SINGLE
    first_single = kinds.index(SINGLE)
    assert all(k == SINGLE for k in kinds[first_single:]), kinds  # one crossover, no flapping
    r = rates[first_single]
    pair = [pi4("a", rate=r, link_w=2.0), pi4("b", rate=r, link_w=2.0)]
    data = evaluate_data(sums, pair, work)
    compute = sum(m.compute_energy_j for m in data.members)
    exchange = sum(m.exchange_energy_j for m in data.members)
    assert data.feasible  # the deadline still holds: energy decides
    assert compute < single.energy_j < compute + exchange
    before = [
        pi4("a", rate=rates[first_single - 1], link_w=2.0),
        pi4("b", rate=rates[first_single - 1], link_w=2.0),
    ]
    assert plan_pool(pi_small, before, work).energy_j < single.energy_j


@pytest.mark.parametrize("preset, batch, cap", [("pi-small", 8, 3.5e6), ("pi-base", 16, 14e6)])
def test_pipeline_when_memory_is_below_model_plus_optimizer_state(
    preset: str, batch: int, cap: float
) -> None:
    lp = layers(preset)
    sums = LayerSums(lp)
    model_and_optimizer = sums.range("param", 0, sums.n) * (1 + PoolWork(1, 1, 1).optimizer_factor)
    assert cap < model_and_optimizer
    members = [pi4(n, memory_bytes=cap) for n in ("a", "b", "c")]
    plan = plan_pool(lp, members, tight(preset, batch, factor=1.5))
    assert plan.kind == PIPELINE and plan.feasible
    assert all(m.memory_bytes <= cap for m in plan.members)
    starts = [m.units[0] for m in plan.members] + [sums.n]
    assert starts[0] == 0 and all(a < b for a, b in zip(starts, starts[1:]))
    assert {a[0].split(" ")[0]: a[3] for a in plan.alternatives}["single"] is False


def test_the_stage_that_is_not_the_bottleneck_runs_at_a_lower_clock() -> None:
    """A 2-stage pipeline cut early (stage 0: 3 units, stage 1: the other 8) under a tight
    deadline: stage 1 is the bottleneck and needs a high clock; stage 0 runs at the lowest
    step that keeps up with it, and one step lower it would not."""
    sums = LayerSums(layers("pi-small"))
    members = [pi4("light"), pi4("heavy")]
    work = tight("pi-small", 32, factor=1.3)
    bounds, micro = [0, 3, sums.n], 8
    plan = evaluate_pipeline(sums, members, work, bounds, micro)
    light, heavy = plan.members
    assert plan.feasible and heavy.freq_hz > light.freq_hz
    slower = [f for f in members[0].f_steps_hz if f < light.freq_hz]
    if slower:  # the next step down misses the stage's bound
        capped = replace(members[0], f_steps_hz=tuple(slower))
        assert not evaluate_pipeline(sums, [capped, members[1]], work, bounds, micro).feasible
    # The planner's own choice obeys the same rule: every stage runs at the lowest step that
    # meets its bound (one step lower would miss it), so the stages' clocks differ.
    small = tight("pi-small", 8, factor=1.05)
    members3 = [pi4(n, memory_bytes=3.5e6) for n in "abc"]
    chosen = plan_pool(layers("pi-small"), members3, small)
    assert chosen.kind == PIPELINE and chosen.feasible
    cuts = [m.units[0] for m in chosen.members] + [sums.n]
    assert min(m.freq_hz for m in chosen.members) < max(m.freq_hz for m in chosen.members)
    for s, m in enumerate(chosen.members):
        below = tuple(f for f in members3[s].f_steps_hz if f < m.freq_hz)
        if below:
            capped = list(members3[:3])
            capped[s] = replace(members3[s], f_steps_hz=below)
            assert not evaluate_pipeline(sums, capped, small, cuts, chosen.micro_batches).feasible


def test_best_cuts_is_the_least_energy_split_by_brute_force() -> None:
    rng = np.random.default_rng(7)
    lp = [
        LayerProfile(
            f"l{i}",
            cycles_per_sample=float(rng.uniform(1e6, 8e6)),
            cycles_per_call=float(rng.uniform(0, 2e6)),
            update_cycles=float(rng.uniform(0, 1e6)),
            param_bytes=float(rng.uniform(1e4, 3e5)),
            act_bytes_per_sample=float(rng.uniform(1e3, 5e4)),
            out_bytes_per_sample=float(rng.uniform(1e3, 2e4)),
        )
        for i in range(7)
    ]
    sums = LayerSums(lp)
    members = [
        pi4("a", speed=1.0),
        replace(pi4("b", speed=1.3, rate=3e7), link_energy_per_message_j=2e-3),
        replace(pi4("c", speed=0.8, memory_bytes=6e6), link_latency_s=2e-3),
    ]
    work = PoolWork(batch_size=16, steps=10, deadline_s=30.0)
    for S in (2, 3):
        for M in (1, 2, 4):
            found = best_cuts(sums, members[:S], work, M)
            best = None
            for inner in itertools.combinations(range(1, sums.n), S - 1):
                bounds = [0, *inner, sums.n]
                p = evaluate_pipeline(sums, members[:S], work, bounds, M)
                if p.feasible and (best is None or p.energy_j < best[0]):
                    best = (p.energy_j, bounds)
            assert (found is None) == (best is None)
            if best is not None and found is not None:
                got = evaluate_pipeline(sums, members[:S], work, found, M).energy_j
                assert got == pytest.approx(best[0], rel=1e-9), (S, M, found, best)


def test_one_member_trains_alone_and_an_impossible_deadline_says_why() -> None:
    lp = layers("pi-small")
    plan = plan_pool(lp, [pi4("a")], PoolWork(64, 20, 1e6))
    assert plan.kind == SINGLE and plan.members[0].freq_hz == 6e8  # the lowest clock
    late = plan_pool(lp, [pi4("a"), pi4("b")], PoolWork(64, 20, 0.01))
    assert not late.feasible and "deadline" in late.reason


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda: MemberSpec("a", 1e-27, (2e9, 1e9), 1e9, 1e8, 1e-9), "ascending"),
        (lambda: MemberSpec("a", -1.0, (1e9,), 1e9, 1e8, 1e-9), "kappa"),
        (lambda: MemberSpec("a", 1e-27, (1e9,), 1e9, 0.0, 1e-9), "link_bytes_per_s"),
        (lambda: PoolWork(0, 1, 1.0), "batch_size"),
        (lambda: plan_pool([], [pi4("a")], PoolWork(8, 1, 1.0)), "layers"),
        (
            lambda: plan_pool(layers("pi-small"), [pi4("a"), pi4("a")], PoolWork(8, 1, 1.0)),
            "unique",
        ),
        (
            lambda: plan_pool(layers("pi-small"), [pi4("a")], PoolWork(8, 1, 1.0), kinds=("ring",)),
            "kinds",
        ),
    ],
)
def test_bad_input_names_the_field(bad: object, match: str) -> None:
    with pytest.raises(PoolPlanError, match=match):
        bad()  # type: ignore[operator]


def test_each_tensor_a_cut_moves_is_a_message_with_its_latency() -> None:
    """A cut that carries n tensors (the UNet's skips cross it) costs n latencies per
    micro-batch and direction, and n messages: each tensor is its own isend."""
    many = layers("pi-small")
    one = [replace(lp, out_tensors=1) for lp in many]
    n = many[6].out_tensors  # the carry after unit 7 crosses the cut before unit 7
    assert n == 5
    latency = 1e-3
    members = [replace(pi4(x), link_latency_s=latency) for x in ("a", "b")]
    work = PoolWork(batch_size=64, steps=10, deadline_s=1e6)
    M, bounds = 4, [0, 7, len(many)]
    with_skips = evaluate_pipeline(LayerSums(many), members, work, bounds, M)
    as_one = evaluate_pipeline(LayerSums(one), members, work, bounds, M)
    assert [m.freq_hz for m in with_skips.members] == [m.freq_hz for m in as_one.members]
    # Every stage's micro-batch slot grows by 2 (n - 1) latencies; GPipe's makespan has
    # M + S - 1 of them.
    slots = M + len(members) - 1
    extra = with_skips.step_time_s - as_one.step_time_s
    assert extra == pytest.approx(slots * 2 * (n - 1) * latency, rel=1e-9)
    for a, b in zip(with_skips.members, as_one.members):
        assert a.messages - b.messages == pytest.approx(work.steps * M * 2 * (n - 1))
