"""Plausibility of what devices send: every coefficient and figure has a physical range."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Dict

import numpy as np
import pytest

from coordinator.errors import InvalidRequest, InvalidUpdate
from coordinator.messages import Manifest, Registration, Report, Window
from coordinator.validation import (
    check_frame_assignment,
    check_manifest,
    check_manifest_assignment,
    check_registration,
    check_report,
    check_sha256,
)
from greenfed import codec

PROFILE: Dict[str, Any] = {
    "idle_power_w": 5.0,
    "kappa": 1e-27,
    "cycles_per_sample": 2e6,
    "uplink_bytes_per_s": 1e7,
    "energy_per_byte_j": 1e-7,
    "f_min_hz": 6e8,
    "f_max_hz": 1.5e9,
    "f_steps_hz": [6e8, 1e9, 1.5e9],
}


def registration(**kw: Any) -> Registration:
    profile = {**PROFILE, **kw.pop("profile", {})}
    base = dict(
        samples=100,
        board="rpi5",
        profile=profile,
        dvfs_available=True,
        dvfs_reason="",
        bits_min=0,
        bits_max=0,
        link_mbps=0.0,
    )
    base.update(kw)
    return Registration(**base)  # type: ignore[arg-type]


def window(**kw: Any) -> Window:
    base = dict(
        name="compute",
        energy_j=12.0,
        dynamic_energy_j=6.0,
        duration_s=2.0,
        mean_power_w=6.0,
        peak_power_w=12.0,
        samples=10,
        mean_freq_hz=1.2e9,
        source="rpi5-pmic",
        scope="PMIC rails",
        estimated=False,
    )
    base.update(kw)
    return Window(**base)  # type: ignore[arg-type]


def report(**kw: Any) -> Report:
    base = dict(
        round=0,
        windows=(window(), window(name="communicate")),
        train_time_s=10.0,
        upload_time_s=1.0,
        download_time_s=1.0,
        bytes_up=1000,
        bits=8,
        samples=6400,
        steps=100,
        loss_first=0.9,
        loss_last=0.2,
        update_sq_error=1e-6,
        update_error_bound=1e-5,
        update_range=0.05,
        update_norm=0.3,
        applied_freq_hz=1.2e9,
        dvfs_applied=True,
        dvfs_reason="",
        emulated_link=False,
        link_mbps=0.0,
        error="",
    )
    base.update(kw)
    return Report(**base)  # type: ignore[arg-type]


def test_honest_messages_pass() -> None:
    check_registration(registration())
    check_registration(registration(profile={k: 0 for k in PROFILE if k != "f_steps_hz"}))
    check_report(report(), max_bytes=1 << 20)
    check_report(report(bits=32, link_mbps=8.0, loss_first=-3.0), max_bytes=1 << 20)


@pytest.mark.parametrize(
    "profile, field",
    [
        ({"uplink_bytes_per_s": 5e-324}, "uplink_bytes_per_s"),  # denormal: infinite round
        ({"uplink_bytes_per_s": 1.0}, "uplink_bytes_per_s"),
        ({"uplink_bytes_per_s": "NaN"}, "uplink_bytes_per_s"),  # protobuf JSON writes NaN so
        ({"kappa": "Infinity"}, "kappa"),
        ({"kappa": 1e-300}, "kappa"),
        ({"cycles_per_sample": 1e20}, "cycles_per_sample"),
        ({"idle_power_w": 1e6}, "idle_power_w"),
        ({"energy_per_byte_j": 5.0}, "energy_per_byte_j"),
        ({"f_max_hz": 1e-300}, "f_max_hz"),
        ({"f_steps_hz": [6e8, "NaN"]}, "f_steps_hz[1]"),
        ({"f_steps_hz": ["Infinity"]}, "f_steps_hz[0]"),
        ({"f_steps_hz": [-1e9]}, "f_steps_hz[0]"),
    ],
)
def test_implausible_coefficients_are_refused(profile: Dict, field: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(f"profile.{field}")) as e:
        check_registration(registration(profile=profile))
    assert "plausible range" in str(e.value) or "not a number" in str(e.value)


@pytest.mark.parametrize("link", [float("nan"), float("inf"), -1.0, 1e-9, 1e9])
def test_implausible_link_rates_are_refused(link: float) -> None:
    with pytest.raises(InvalidRequest, match="link_mbps"):
        check_registration(registration(link_mbps=link))
    with pytest.raises(InvalidRequest, match="link_mbps"):
        check_report(report(link_mbps=link))


@pytest.mark.parametrize(
    "fields, name",
    [
        ({"bits": -3}, "bits"),
        ({"bits": 17}, "bits"),
        ({"bytes_up": 2**62}, "bytes_up"),
        ({"bytes_up": -1}, "bytes_up"),
        ({"update_norm": -1.0}, "update_norm"),
        ({"update_range": float("nan")}, "update_range"),
        ({"update_sq_error": -1e-9}, "update_sq_error"),
        ({"samples": -5}, "samples"),
        ({"steps": -1}, "steps"),
        ({"loss_last": float("inf")}, "loss_last"),
        ({"applied_freq_hz": float("nan")}, "applied_freq_hz"),
        ({"windows": (window(dynamic_energy_j=-1e7),)}, "dynamic_energy_j"),
        ({"windows": (window(dynamic_energy_j=13.0),)}, "dynamic_energy_j"),
        ({"windows": (window(energy_j=1e6, duration_s=2.0),)}, "energy_j"),
        ({"windows": (window(mean_freq_hz=float("inf")),)}, "mean_freq_hz"),
        ({"windows": (window(samples=-1),)}, "samples"),
    ],
)
def test_implausible_report_figures_are_refused(fields: Dict, name: str) -> None:
    with pytest.raises(InvalidRequest, match=name):
        check_report(report(**fields), max_bytes=1 << 20)


def test_sha256_is_judged_whole() -> None:
    good = "ab" * 32
    assert check_sha256(good) == good
    for bad in (good + "junk", good + "\n", good.upper(), good[:63], ""):
        with pytest.raises(InvalidRequest, match="exactly 64"):
            check_sha256(bad)
    assert check_sha256("", allow_empty=True) == ""
    m = Manifest(0, 100, good + "00", 0, 10, 8, "stochastic")
    with pytest.raises(InvalidRequest, match="sha256"):
        check_manifest(m, 1 << 20)
    with pytest.raises(InvalidRequest, match="mode 'stochasticXX'"):
        check_manifest(dataclasses.replace(m, sha256=good, mode="stochasticXX"), 1 << 20)


def test_upload_must_match_the_assignment_in_manifest_and_frame() -> None:
    m = Manifest(3, 100, "ab" * 32, 0, 10, 8, "stochastic")
    check_manifest_assignment(m, "stochastic", 8)
    with pytest.raises(InvalidRequest, match=r"assigned stochastic at 8 bits.*fp32 at 32"):
        check_manifest_assignment(dataclasses.replace(m, mode="fp32", bits=32), "stochastic", 8)
    update = {"w": np.linspace(-1, 1, 64, dtype=np.float32)}
    one_bit = codec.frame_info(codec.encode(update, codec.CodecConfig(bits=1, seed=0)).frame)
    fp32 = codec.frame_info(codec.encode(update, codec.CodecConfig(mode="fp32")).frame)
    check_frame_assignment(fp32, "fp32", 32, 3)
    with pytest.raises(InvalidUpdate, match="frame is stochastic at 1 bits but round 3 assigned"):
        check_frame_assignment(one_bit, "fp32", 32, 3)
    with pytest.raises(InvalidUpdate, match="frame is fp32 at 32 bits"):
        check_frame_assignment(fp32, "stochastic", 8, 3)
