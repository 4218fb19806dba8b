"""Continuous solution: analytic cases, KKT structure, scipy cross-check, infeasibility."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize import minimize

from coordinator.allocator import bits_for_multiplier, solve_continuous
from coordinator.allocator.model import cheapest_freq_hz, device_error, update_bytes
from coordinator.allocator.plan import DEADLINE, ERROR_BUDGET
from coordinator.allocator.solve import bit_bounds

from .fleets import make_fleet, random_fleet


def test_one_device_bits_meet_the_budget_exactly():
    fleet = make_fleet(1, error_budget=1e-4)
    sol = solve_continuous(fleet)
    c = fleet.error_coef[0]
    expected = np.log2(1.0 + np.sqrt(c / 1e-4))  # c / (2**q - 1)**2 = eps
    assert sol.feasible
    assert sol.bits[0] == pytest.approx(expected, rel=1e-9)
    assert sol.error == pytest.approx(1e-4, rel=1e-9)
    f = max(fleet.f_min_hz[0], fleet.cycles[0] / (30.0 - update_bytes(fleet, sol.bits)[0] / 1e5))
    assert sol.freq_hz[0] == pytest.approx(f, rel=1e-12)


def test_lowest_bits_enough_gives_zero_multiplier():
    fleet = make_fleet(3, error_budget=1e3, bits_min=[2, 3, 4])
    sol = solve_continuous(fleet)
    assert sol.multiplier == 0.0
    np.testing.assert_array_equal(sol.bits, [2, 3, 4])


def test_identical_devices_get_identical_bits():
    sol = solve_continuous(make_fleet(7, error_budget=3e-5))
    assert sol.feasible and sol.multiplier > 0
    assert np.ptp(sol.bits) < 1e-9


@pytest.mark.parametrize("column", ["energy_per_byte_j", "uplink_bytes_per_s"])
def test_ten_times_cheaper_link_gets_at_least_as_many_bits(column):
    values = {"energy_per_byte_j": [1e-6, 1e-7], "uplink_bytes_per_s": [1e5, 1e6]}[column]
    # deadline 10 s: the frequency is above f_min, so upload time costs compute energy too
    fleet = make_fleet(2, error_budget=3e-5, deadline_s=10.0, **{column: values})
    sol = solve_continuous(fleet)
    assert sol.bits[1] > sol.bits[0] + 1e-3
    slack = solve_continuous(replace(fleet, deadline_s=60.0))  # f_min: only e*S counts
    assert slack.bits[1] >= slack.bits[0] - 1e-9


def test_error_falls_as_the_multiplier_grows():
    rng = np.random.default_rng(3)
    for _ in range(5):
        fleet = random_fleet(rng, 20)
        mus = np.logspace(-6, 12, 200)
        bits = np.array([bits_for_multiplier(fleet, mu) for mu in mus])
        err = np.array([device_error(fleet, q).sum() for q in bits])
        assert np.all(np.diff(err) <= 1e-15 * err[:-1])
        assert np.all(np.diff(bits, axis=0) >= -1e-9)
        assert err[0] > err[-1]


def _scipy_optimum(fleet):
    """Generic solver on the joint (q, f) problem, f in GHz; smooth and convex."""
    n, a, h, T = fleet.size, fleet.params / 8, fleet.header_bytes, fleet.deadline_s
    eps = fleet.error_budget
    C, k, e, r = fleet.cycles, fleet.kappa, fleet.energy_per_byte_j, fleet.uplink_bytes_per_s
    c, ln2 = fleet.error_coef, np.log(2.0)

    def split(x):
        return x[:n], x[n:] * 1e9

    def energy(x):
        q, f = split(x)
        return float(np.sum(k * C * f**2 + e * (a * q + h)))

    def energy_grad(x):
        f = split(x)[1]
        return np.concatenate([e * a, 2 * k * C * f * 1e9])

    def deadline(x):
        q, f = split(x)
        return 1.0 - (C / f + (a * q + h) / r) / T

    def deadline_jac(x):
        f = split(x)[1]
        return np.hstack([np.diag(-a / (r * T)), np.diag(C / (f**2 * T) * 1e9)])

    def budget(x):
        q = x[:n]
        return np.log(eps) - np.log(np.sum(c / np.expm1(q * ln2) ** 2))

    def budget_jac(x):
        q = x[:n]
        err = np.sum(c / np.expm1(q * ln2) ** 2)
        xq = np.exp(q * ln2)
        return np.concatenate([2 * c * ln2 * xq / np.expm1(q * ln2) ** 3 / err, np.zeros(n)])

    # start half a bit below the deadline's cap at f_max: strictly inside the deadline
    b = bit_bounds(fleet)
    x0 = np.concatenate([np.maximum(b.low, b.high - 0.5), fleet.f_max_hz / 1e9])
    bounds = [(lo, hi) for lo, hi in zip(fleet.bits_min, fleet.bits_max)]
    bounds += [(lo / 1e9, hi / 1e9) for lo, hi in zip(fleet.f_min_hz, fleet.f_max_hz)]
    scale = energy(x0)
    res = minimize(
        lambda x: energy(x) / scale,
        x0,
        jac=lambda x: energy_grad(x) / scale,
        bounds=bounds,
        method="SLSQP",
        constraints=[
            {"type": "ineq", "fun": deadline, "jac": deadline_jac},
            {"type": "ineq", "fun": budget, "jac": budget_jac},
        ],
        options={"ftol": 1e-14, "maxiter": 2000},
    )
    assert res.success, res.message
    assert deadline(res.x).min() > -1e-7 and budget(res.x) > -1e-7
    return res.fun * scale


@pytest.mark.parametrize("seed", range(8))
def test_matches_a_generic_solver(seed):
    rng = np.random.default_rng(100 + seed)
    fleet = random_fleet(rng, int(rng.integers(5, 31)))
    ours = solve_continuous(fleet)
    assert ours.feasible
    reference = _scipy_optimum(fleet)
    assert ours.total_energy_j == pytest.approx(reference, rel=1e-4)
    # and ours is itself feasible
    assert ours.error <= fleet.error_budget * (1 + 1e-9)
    f = cheapest_freq_hz(fleet, ours.bits)
    assert np.all(f <= fleet.f_max_hz * (1 + 1e-12))


def test_deadline_infeasibility_names_devices_and_seconds():
    fleet = make_fleet(3, uplink_bytes_per_s=[1e5, 1e2, 1e5], deadline_s=30.0)
    sol = solve_continuous(fleet)
    assert not sol.feasible and sol.multiplier is None
    (p,) = sol.infeasible
    assert p.kind == DEADLINE and p.device_id == "d1"
    need = 1e10 / 2e9 + (100_000 * 1 / 8 + 160) / 1e2
    assert p.value == pytest.approx(need) and p.excess == pytest.approx(need - 30.0)
    assert "d1" in p.message and "over the deadline" in p.message


def test_budget_infeasibility_reports_the_gap():
    fleet = make_fleet(2, error_budget=1e-30, bits_max=[12, 16])
    sol = solve_continuous(fleet)
    (p,) = sol.infeasible
    best = device_error(fleet, np.array([12.0, 16.0])).sum()
    assert p.kind == ERROR_BUDGET and p.device_id is None
    assert p.value == pytest.approx(best) and p.excess == pytest.approx(best - 1e-30)


def test_deadline_caps_bits_below_bits_max():
    # a slow link: the deadline allows only a few bits at f_max
    fleet = make_fleet(1, uplink_bytes_per_s=2e3, deadline_s=60.0, error_budget=1e-12)
    sol = solve_continuous(fleet)
    cap = ((60.0 - 1e10 / 2e9) * 2e3 - 160.0) * 8 / 100_000
    assert not sol.feasible
    assert sol.bits[0] == pytest.approx(cap)
    feasible = solve_continuous(replace(fleet, error_budget=1.0))
    assert feasible.feasible and feasible.bits[0] <= cap + 1e-9
