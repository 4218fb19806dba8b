from __future__ import annotations

import json
from typing import Any, Dict

import numpy as np
import pytest

from coordinator.config import CoordinatorConfig
from coordinator.planning import derive_deadline, device_coeffs, error_budget, plan_round

PARAMS = {"w": np.zeros((100, 100), np.float32), "b": np.zeros(100, np.float32)}
D = 10_100


def row(dev: str, **profile: Any) -> Dict[str, Any]:
    p = {
        "kappa": 1e-28,
        "cycles_per_sample": 1e6,
        "uplink_bytes_per_s": 1e6,
        "energy_per_byte_j": 1e-6,
        "f_min_hz": 6e8,
        "f_max_hz": 1.5e9,
        "f_steps_hz": [6e8, 1e9, 1.5e9],
    }
    p.update(profile)
    return {
        "id": dev,
        "profile_json": json.dumps(p),
        "coeffs_json": "{}",
        "link_mbps": 0.0,
        "samples": 100,
        "bits_min": 0,
        "bits_max": 0,
    }


def cfg(**kw: Any) -> CoordinatorConfig:
    return CoordinatorConfig(local_steps=10, batch_size=10, **kw)


def test_error_budget_prior_then_relative() -> None:
    c = cfg(error_budget_rel=0.01, prior_update_range=0.04)
    assert error_budget(c, D, None) == pytest.approx(0.01 * D * 0.01**2)
    assert error_budget(c, D, 2.0) == pytest.approx(0.02)
    assert error_budget(cfg(error_budget=0.5), D, 2.0) == 0.5


def test_deadline_is_factor_times_slowest_fastest_round() -> None:
    c = cfg(deadline_factor=2.0, deadline_min_s=0.1)
    notes: list = []
    coeffs = [
        device_coeffs(row("a"), c, notes),
        device_coeffs(row("b", f_max_hz=5e8, f_steps_hz=[]), c, notes),
    ]
    slow = 1e6 * 100 / 5e8 + (D * 1 / 8 + 64) / 1e6
    assert derive_deadline(c, coeffs, D, 64) == pytest.approx(2 * slow)
    assert derive_deadline(cfg(deadline_s=7.0), coeffs, D, 64) == 7.0


def test_configured_link_rate_is_a_prior_the_measured_rate_replaces() -> None:
    r = row("a", uplink_bytes_per_s=1e9)  # a calibration's loopback upload: far too fast
    r["link_mbps"] = 8.0
    assert device_coeffs(r, cfg(), []).uplink_bytes_per_s == pytest.approx(1e6)
    r["coeffs_json"] = json.dumps({"uplink_bytes_per_s": 2.5e5})  # measured over the link
    assert device_coeffs(r, cfg(), []).uplink_bytes_per_s == pytest.approx(2.5e5)


def test_on_demand_plan_respects_steps_and_budget() -> None:
    c = cfg(deadline_s=5.0, error_budget=1e-4)
    plan = plan_round(c, [row("a"), row("b", uplink_bytes_per_s=1e7)], PARAMS, None)
    assert {d.device_id for d in plan.devices} == {"a", "b"}
    for d in plan.devices:
        assert d.mode == "stochastic" and 1 <= d.bits <= 16
        assert d.freq_hz in (6e8, 1e9, 1.5e9)
        assert d.time_s <= 5.0 + 1e-9
    assert plan.error <= 1e-4 * (1 + 1e-9)


def test_device_too_slow_for_the_deadline_is_excluded_with_a_reason() -> None:
    c = cfg(deadline_s=1.0, error_budget=1.0)
    plan = plan_round(c, [row("a"), row("slow", cycles_per_sample=1e9)], PARAMS, None)
    assert [d.device_id for d in plan.devices] == ["a"]
    assert "slow" in plan.excluded and "slow" in plan.excluded["slow"]


def test_fp32_scheme_assigns_32_bits() -> None:
    plan = plan_round(cfg(scheme="fp32", deadline_s=10.0), [row("a")], PARAMS, None)
    assert [(d.mode, d.bits) for d in plan.devices] == [("fp32", 32)]


def test_profile_without_range_plans_at_its_measured_frequency() -> None:
    # Machines without cpufreq report only the frequency they measured at (psutil).
    notes: list = []
    c = device_coeffs(row("a", f_min_hz=None, f_max_hz=None, f_steps_hz=[2.1e9]), cfg(), notes)
    assert (c.f_min_hz, c.f_max_hz, c.f_steps_hz) == (2.1e9, 2.1e9, (2.1e9,))
    assert notes == []
    bare = device_coeffs(row("b", f_min_hz=None, f_max_hz=None, f_steps_hz=[]), cfg(), notes)
    assert bare.f_max_hz == 1e9 and "nominal" in notes[0]


def test_unreadable_clock_plans_and_refits_in_seconds_per_sample() -> None:
    """A board whose clock cannot be read (calibration declared a nominal 1 GHz reference):
    predictions equal the measured time and dynamic energy, and measured rounds that carry
    no frequency still refit it (the issue's board: 35-39 s measured vs 0.3 s predicted)."""
    from coordinator.allocator import RoundMeasurement, refit
    from coordinator.allocator.refit import predict_round as predict

    nominal, s_per_sample, dyn_w = 1e9, 0.005, 4.0
    profile = {
        "clock": "nominal",
        "f_min_hz": nominal,
        "f_max_hz": nominal,
        "f_steps_hz": [nominal],
        "cycles_per_sample": nominal * s_per_sample,
        "kappa": dyn_w / nominal**3,
    }
    notes: list = []
    c = device_coeffs(row("vm", **profile), cfg(), notes)  # 10 steps x 10 = 100 samples
    assert "clock unreadable" in notes[0] and "seconds per sample" in notes[0]
    p = predict(c, bits=8, freq_hz=nominal, params=D)
    assert p.compute_time_s == pytest.approx(100 * s_per_sample)
    assert p.compute_energy_j == pytest.approx(dyn_w * 100 * s_per_sample)
    # The board really needs 0.36 s per sample at 3.1 W: three rounds without a frequency.
    measured = RoundMeasurement(
        compute_energy_dynamic_j=3.1 * 36.0,
        compute_time_s=36.0,
        mean_freq_hz=0.0,
        samples=100,
        bytes_up=1e5,
        comm_time_s=1.0,
        comm_energy_dynamic_j=0.1,
    )
    fitted = refit(c, [measured] * 3, samples_per_round=100)
    again = predict(fitted, bits=8, freq_hz=nominal, params=D)
    assert again.compute_time_s == pytest.approx(36.0)
    assert again.compute_energy_j == pytest.approx(3.1 * 36.0)


def test_derived_deadline_has_a_ceiling_and_the_slow_device_sits_out() -> None:
    # A plausible but very slow uplink (100 B/s): its fastest round takes ~14 s (1-bit upload).
    c = cfg(deadline_factor=2.0, deadline_min_s=1.0, deadline_max_s=10.0, error_budget=1.0)
    rows = [row("a"), row("crawl", uplink_bytes_per_s=100.0)]
    plan = plan_round(c, rows, PARAMS, None)
    assert plan.deadline_s == 10.0
    assert [d.device_id for d in plan.devices] == ["a"]
    assert "crawl" in plan.excluded


@pytest.mark.parametrize(
    "bad",
    [
        {"uplink_bytes_per_s": 5e-324},
        {"f_steps_hz": [float("nan"), float("inf")], "f_min_hz": 0, "f_max_hz": 0},
        {"kappa": float("inf")},
        {"cycles_per_sample": 1e300},
        {"f_min_hz": 1e-300, "f_max_hz": 1e-300, "f_steps_hz": []},
    ],
)
def test_stored_coefficients_out_of_range_never_give_an_infinite_plan(bad: Dict) -> None:
    # Rows can predate a validation rule: planning treats such values as unknown (noted).
    c = cfg(deadline_min_s=1.0, deadline_max_s=60.0, error_budget=1.0)
    rows = [row("a"), row("odd", **bad)]
    rows[1]["profile_json"] = json.dumps({**json.loads(rows[1]["profile_json"]), **bad})
    plan = plan_round(c, rows, PARAMS, None)
    assert np.isfinite(plan.deadline_s) and plan.deadline_s <= 60.0
    assert np.isfinite(plan.total_energy_j)
    for d in plan.devices:
        assert all(np.isfinite([d.freq_hz, d.energy_j, d.time_s]))


def test_refitted_coefficients_out_of_range_fall_back_to_the_profile() -> None:
    r = row("a")
    r["coeffs_json"] = json.dumps(
        {"uplink_bytes_per_s": 1e-300, "kappa": 2e-28, "cycles": float("inf")}
    )
    got = device_coeffs(r, cfg(), [])
    assert got.uplink_bytes_per_s == 1e6 and got.kappa == 2e-28
    assert got.cycles == pytest.approx(1e6 * 100)
