"""Simulated fleets: reproducible, physically sensible, all schemes feasible by construction."""

from __future__ import annotations

import numpy as np
import pytest

from coordinator.allocator import allocate
from coordinator.allocator.wireless import (
    WirelessConfig,
    channel_gain,
    shannon_bytes_per_s,
    to_fleet,
    virtual_fleet,
)


def test_same_seed_same_fleet():
    a, b, c = virtual_fleet(50, seed=4), virtual_fleet(50, seed=4), virtual_fleet(50, seed=5)
    np.testing.assert_array_equal(a.uplink_bytes_per_s, b.uplink_bytes_per_s)
    assert not np.array_equal(a.uplink_bytes_per_s, c.uplink_bytes_per_s)


def test_path_loss_and_shannon_rate():
    cfg = WirelessConfig()
    gain = channel_gain(np.array([1000.0]), np.array([0.0]), cfg)
    assert 10 * np.log10(gain[0]) == pytest.approx(-128.1)
    # SNR 1 (0 dB): rate = B bit/s
    n0 = 10 ** ((-174 - 30) / 10)
    rate = shannon_bytes_per_s(np.array([n0 * 1e6 / 0.2]), 0.2, 1e6, -174.0)
    assert rate[0] == pytest.approx(1e6 / 8)


def test_schemes_on_a_simulated_fleet():
    fleet = virtual_fleet(300, seed=1)
    plans = {s: allocate(fleet, s) for s in ("on-demand", "fp32", "fixed-8")}
    assert all(p.feasible for p in plans.values())
    assert plans["on-demand"].total_energy_j <= plans["fixed-8"].total_energy_j
    assert plans["fixed-8"].total_energy_j < plans["fp32"].total_energy_j
    assert len(to_fleet(virtual_fleet(3)).devices) == 3
