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

LN2 = np.log(2.0)


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


class _Reference:
    """The joint (q, f) problem for a generic solver, f in GHz; smooth and convex.

    Convex means a converged local optimum is the global one, so a converged reference is a
    fair yardstick. A solver that gives up (SLSQP's "positive directional derivative", an
    iteration limit) says nothing about our answer: such runs are discarded, never compared.
    """

    def __init__(self, fleet):
        self.fleet, self.n = fleet, fleet.size
        self.a, self.h, self.T = fleet.params / 8, fleet.header_bytes, fleet.deadline_s
        self.bounds = [(lo, hi) for lo, hi in zip(fleet.bits_min, fleet.bits_max)]
        self.bounds += [(lo / 1e9, hi / 1e9) for lo, hi in zip(fleet.f_min_hz, fleet.f_max_hz)]

    def split(self, x):
        return x[: self.n], x[self.n :] * 1e9

    def energy(self, x):
        fl, (q, f) = self.fleet, self.split(x)
        upload_j = fl.energy_per_byte_j * (self.a * q + self.h)
        return float(np.sum(fl.kappa * fl.cycles * f**2 + upload_j))

    def energy_grad(self, x):
        fl, f = self.fleet, self.split(x)[1]
        return np.concatenate([fl.energy_per_byte_j * self.a, 2 * fl.kappa * fl.cycles * f * 1e9])

    def deadline(self, x):
        fl, (q, f) = self.fleet, self.split(x)
        return 1.0 - (fl.cycles / f + (self.a * q + self.h) / fl.uplink_bytes_per_s) / self.T

    def deadline_jac(self, x):
        fl, f = self.fleet, self.split(x)[1]
        dq = np.diag(-self.a / (fl.uplink_bytes_per_s * self.T))
        return np.hstack([dq, np.diag(fl.cycles / (f**2 * self.T) * 1e9)])

    def budget(self, x):
        c, q = self.fleet.error_coef, x[: self.n]
        return np.log(self.fleet.error_budget) - np.log(np.sum(c / np.expm1(q * LN2) ** 2))

    def budget_jac(self, x):
        c, q = self.fleet.error_coef, x[: self.n]
        err = np.sum(c / np.expm1(q * LN2) ** 2)
        dq = 2 * c * LN2 * np.exp(q * LN2) / np.expm1(q * LN2) ** 3 / err
        return np.concatenate([dq, np.zeros(self.n)])

    def feasible(self, x, tol=1e-7):
        lo, hi = np.array(self.bounds).T
        inside = np.all(x >= lo - tol) and np.all(x <= hi + tol)
        return bool(inside and self.deadline(x).min() > -tol and self.budget(x) > -tol)

    def starts(self, rng, count):
        """Interior points: half a bit under the deadline's cap at f_max, then random ones."""
        fl, b = self.fleet, bit_bounds(self.fleet)
        yield np.concatenate([np.maximum(b.low, b.high - 0.5), fl.f_max_hz / 1e9])
        for _ in range(count - 1):
            q = rng.uniform(np.maximum(b.low, b.high - 2.0), b.high)
            f = rng.uniform(0.5 * (fl.f_min_hz + fl.f_max_hz), fl.f_max_hz) / 1e9
            yield np.concatenate([q, f])

    def solve(self, x0, method):
        scale = self.energy(x0)
        constraints = [
            {"type": "ineq", "fun": self.deadline, "jac": self.deadline_jac},
            {"type": "ineq", "fun": self.budget, "jac": self.budget_jac},
        ]
        options = {"ftol": 1e-14, "maxiter": 2000} if method == "SLSQP" else {"maxiter": 3000}
        res = minimize(
            lambda x: self.energy(x) / scale,
            x0,
            jac=lambda x: self.energy_grad(x) / scale,
            bounds=self.bounds,
            method=method,
            constraints=constraints,
            options=options,
        )
        ok = res.success and self.feasible(res.x)
        return self.energy(res.x) if ok else None


def _converged_reference(fleet, rng):
    """The first SLSQP run, of up to four starts, that converged to a feasible point (the
    problem is convex: one is enough); trust-constr, a second (interior-point) method, when
    every start gave up; None when no run converged at all."""
    ref = _Reference(fleet)
    for x0 in ref.starts(rng, 4):
        energy = ref.solve(x0, "SLSQP")
        if energy is not None:
            return energy, ref
    return ref.solve(next(ref.starts(rng, 1)), "trust-constr"), ref


def test_matches_a_generic_solver_on_50_fleets():
    """Never worse than a converged generic solver, on at least 50 random fleets.

    Fleets whose reference did not converge by any start or method are replaced by new ones
    (and counted): the verdict never rests on the reference's luck.
    """
    rng = np.random.default_rng(100)
    compared, unconverged = 0, 0
    while compared < 50:
        assert unconverged <= 20, f"the reference failed on {unconverged} fleets"
        fleet = random_fleet(rng, int(rng.integers(5, 31)))
        ours = solve_continuous(fleet)
        assert ours.feasible
        # ours is feasible: bits within range, error within budget, frequencies within range
        assert ours.error <= fleet.error_budget * (1 + 1e-9)
        f = cheapest_freq_hz(fleet, ours.bits)
        assert np.all(f <= fleet.f_max_hz * (1 + 1e-12))
        reference, ref = _converged_reference(fleet, rng)
        # the energy we report is the objective the reference minimises, at our point
        x_ours = np.concatenate([ours.bits, ours.freq_hz / 1e9])
        assert ours.total_energy_j == pytest.approx(ref.energy(x_ours), rel=1e-9)
        assert ref.feasible(x_ours, tol=1e-9)
        if reference is None:
            unconverged += 1
            continue
        assert ours.total_energy_j <= reference * (1 + 1e-4)
        compared += 1


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
