"""Board profiles: sane figures, each with its source; κ is what the model says."""

from __future__ import annotations

import pytest

from greenfed.boards import PROFILES, get_profile
from greenfed.errors import ConfigError


def test_every_profile_is_sane_and_says_where_its_figures_come_from() -> None:
    for p in PROFILES.values():
        assert 0 < p.idle_w < p.peak_w and p.radio_w > 0 and p.relative_speed > 0
        assert list(p.steps_hz) == sorted(set(p.steps_hz)) and p.f_min_hz < p.f_max_hz
        assert {"steps", "power", "speed"} <= set(p.basis)
        assert p.kappa == pytest.approx((p.peak_w - p.idle_w) / p.f_max_hz**3)
        # full load at the top step is the peak; half the clock, an eighth of the dynamic power
        assert p.idle_w + p.dynamic_power_w(p.f_max_hz, 1.0) == pytest.approx(p.peak_w)
        assert p.dynamic_power_w(p.f_max_hz / 2, 1.0) == pytest.approx((p.peak_w - p.idle_w) / 8)


def test_known_boards_and_their_clock_ranges() -> None:
    assert (get_profile("rpi4").f_min_hz, get_profile("rpi4").f_max_hz) == (600e6, 1800e6)
    assert len(get_profile("rpi5").steps_hz) == 10
    assert get_profile("orin-nano-cpu").f_max_hz == pytest.approx(1510.4e6)
    assert get_profile("rpi4").f_max_hz / 2 in get_profile("rpi4").steps_hz  # half-clock test


def test_an_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known: rpi4, rpi5, orin-nano-cpu"):
        get_profile("pi-zero")
