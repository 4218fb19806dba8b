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


def test_emulated_link_rate_overrides_the_profile() -> None:
    r = row("a")
    r["link_mbps"] = 8.0
    assert device_coeffs(r, cfg(), []).uplink_bytes_per_s == pytest.approx(1e6)


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
