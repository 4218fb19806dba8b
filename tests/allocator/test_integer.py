"""Integer bits and stepped frequencies: greedy order, constraints after rounding, baselines."""

from __future__ import annotations

import heapq

import numpy as np
import pytest

from coordinator.allocator import allocate, solve_continuous
from coordinator.allocator.integer import greedy_bits, integer_bounds
from coordinator.allocator.model import device_error, round_time_s, stepped_energy_j
from coordinator.allocator.solve import bit_bounds

from .fleets import make_fleet, random_fleet


def _heap_greedy(fleet, start, high):
    """Reference: one bit at a time from a heap of (error reduction per joule)."""
    q = start.copy()

    def ratio(k):
        one = np.zeros(fleet.size)
        one[k] = 1.0
        d_err = device_error(fleet, q)[k] - device_error(fleet, q + one)[k]
        d_en = stepped_energy_j(fleet, q + one)[k] - stepped_energy_j(fleet, q)[k]
        return d_err / max(d_en, 1e-300)

    heap = [(-ratio(k), k) for k in range(fleet.size) if q[k] < high[k]]
    heapq.heapify(heap)
    while device_error(fleet, q).sum() > fleet.error_budget and heap:
        _, k = heapq.heappop(heap)
        q[k] += 1
        if q[k] < high[k]:
            heapq.heappush(heap, (-ratio(k), k))
    return q


@pytest.mark.parametrize("seed", range(6))
def test_batched_greedy_matches_one_bit_at_a_time(seed):
    rng = np.random.default_rng(seed)
    fleet = random_fleet(rng, 25, with_steps=bool(seed % 2))
    low, high = integer_bounds(fleet, bit_bounds(fleet).high)
    start = low.copy()  # from the bottom: many greedy steps
    np.testing.assert_array_equal(greedy_bits(fleet, start, high), _heap_greedy(fleet, start, high))


@pytest.mark.parametrize("seed", range(10))
def test_rounding_keeps_deadline_budget_and_steps(seed):
    rng = np.random.default_rng(50 + seed)
    fleet = random_fleet(rng, int(rng.integers(5, 40)), with_steps=True)
    plan = allocate(fleet, "on-demand")
    assert plan.feasible, plan.infeasible
    assert plan.error <= fleet.error_budget
    assert np.all(plan.time_s <= fleet.deadline_s * (1 + 1e-9))
    for i in range(fleet.size):
        assert plan.freq_hz[i] in fleet.f_steps_hz[i]
    assert np.all((plan.bits >= fleet.bits_min) & (plan.bits <= fleet.bits_max))
    # never below the continuous optimum
    assert plan.total_energy_j >= solve_continuous(fleet).total_energy_j * (1 - 1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_never_worse_than_a_feasible_fixed_b(seed):
    rng = np.random.default_rng(200 + seed)
    fleet = random_fleet(rng, int(rng.integers(5, 31)), with_steps=bool(seed % 2))
    ours = allocate(fleet, "on-demand")
    assert ours.feasible
    compared = 0
    for b in range(1, 17):
        fixed = allocate(fleet, f"fixed-{b}")
        if fixed.feasible:
            compared += 1
            assert ours.total_energy_j <= fixed.total_energy_j * (1 + 1e-12)
    assert compared >= 0


def test_identical_devices_differ_by_at_most_one_bit():
    plan = allocate(make_fleet(9, error_budget=3e-5), "on-demand")
    assert plan.feasible and np.ptp(plan.bits) <= 1


def test_fp32_has_no_error_and_costs_more():
    fleet = make_fleet(4, error_budget=3e-5, deadline_s=60.0)
    fp32, ours = allocate(fleet, "fp32"), allocate(fleet, "on-demand")
    assert fp32.feasible and fp32.error == 0.0 and set(fp32.bits) == {32}
    assert ours.total_energy_j < fp32.total_energy_j
    np.testing.assert_allclose(fp32.time_s, round_time_s(fleet, fp32.bits, fp32.freq_hz))


def test_fixed_b_reports_every_broken_constraint():
    fleet = make_fleet(
        3, error_budget=1e-6, bits_max=[16, 6, 16], uplink_bytes_per_s=[1e5, 1e5, 2e3]
    )
    plan = allocate(fleet, "fixed-8")
    kinds = sorted((p.kind, p.device_id or "") for p in plan.infeasible)
    assert kinds == [("bits_range", "d1"), ("deadline", "d2"), ("error_budget", "")]
    assert not plan.feasible and plan.multiplier is None
