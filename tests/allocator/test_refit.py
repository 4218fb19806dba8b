"""Closed loop: refit from measured reports, robustness to an outlier, predicted vs measured."""

from __future__ import annotations

from dataclasses import replace

import pytest

from coordinator.allocator import DeviceCoeffs, RoundMeasurement, compare, predict_round, refit
from coordinator.allocator.refit import observe

TRUE = {"kappa": 8e-28, "cps": 2e7, "rate": 1.5e6, "epb": 4e-7}


def measured(samples=1000, freq=1.2e9, bytes_up=3e5, scale=1.0) -> RoundMeasurement:
    cycles = TRUE["cps"] * samples
    t = cycles / freq
    return RoundMeasurement(
        compute_energy_dynamic_j=TRUE["kappa"] * cycles * freq**2 * scale,
        compute_time_s=t,
        mean_freq_hz=freq,
        samples=samples,
        bytes_up=bytes_up,
        comm_time_s=bytes_up / TRUE["rate"] / scale,
        comm_energy_dynamic_j=TRUE["epb"] * bytes_up * scale,
    )


PRIOR = DeviceCoeffs(
    id="pi",
    kappa=3e-28,
    cycles=1e10,
    f_min_hz=6e8,
    f_max_hz=1.5e9,
    uplink_bytes_per_s=1e6,
    energy_per_byte_j=1e-6,
    weight_range=0.02,
    samples=500,
)


def test_one_report_gives_exact_estimates():
    obs = observe(measured())
    assert obs["kappa"] == pytest.approx(TRUE["kappa"])
    assert obs["cycles_per_sample"] == pytest.approx(TRUE["cps"])
    assert obs["uplink_bytes_per_s"] == pytest.approx(TRUE["rate"])
    assert obs["energy_per_byte_j"] == pytest.approx(TRUE["epb"])


def test_converges_and_ignores_an_outlier():
    reports = [measured(freq=f) for f in (1.0e9, 1.2e9, 1.4e9, 1.1e9)]
    reports.append(measured(scale=10.0))  # a broken meter: 10x energy, 10x faster link
    reports.append(measured(freq=1.3e9))
    fit = refit(PRIOR, reports)
    assert fit.kappa == pytest.approx(TRUE["kappa"], rel=1e-9)
    assert fit.energy_per_byte_j == pytest.approx(TRUE["epb"], rel=1e-9)
    assert fit.uplink_bytes_per_s == pytest.approx(TRUE["rate"], rel=1e-9)
    assert fit.cycles == pytest.approx(TRUE["cps"] * 1000)
    assert (fit.id, fit.f_max_hz, fit.weight_range) == ("pi", 1.5e9, 0.02)


def test_a_wild_first_report_is_anchored_by_the_prior():
    fit = refit(PRIOR, measured(scale=100.0))
    assert fit.kappa < 100 * TRUE["kappa"] / 1.9  # median of prior and outlier, not the outlier


def test_invalid_observations_keep_the_prior():
    broken = replace(measured(), comm_time_s=0.0, bytes_up=0.0, compute_energy_dynamic_j=-1.0)
    fit = refit(PRIOR, [broken])
    assert fit.uplink_bytes_per_s == PRIOR.uplink_bytes_per_s
    assert fit.energy_per_byte_j == PRIOR.energy_per_byte_j
    assert fit.kappa == PRIOR.kappa
    assert refit(PRIOR, []) is PRIOR


def test_predicted_vs_measured():
    m = measured(freq=1.2e9, bytes_up=1e6 * 8 / 8 + 160)
    good = DeviceCoeffs(
        id="pi",
        kappa=TRUE["kappa"],
        cycles=TRUE["cps"] * 1000,
        f_min_hz=6e8,
        f_max_hz=1.5e9,
        uplink_bytes_per_s=TRUE["rate"],
        energy_per_byte_j=TRUE["epb"],
        weight_range=0.02,
        samples=500,
    )
    pred = predict_round(good, bits=8, freq_hz=1.2e9, params=1_000_000, header_bytes=160)
    cmp = compare(pred, m)
    for value in (cmp.compute_energy, cmp.comm_energy, cmp.energy, cmp.compute_time):
        assert value == pytest.approx(0.0, abs=1e-12)
    off = compare(replace(pred, comm_energy_j=pred.comm_energy_j * 1.1), m)
    assert off.comm_energy == pytest.approx(0.1)
    assert compare(pred, replace(m, comm_time_s=0.0)).comm_time is None


def test_uplink_rate_follows_a_sag_at_once_and_a_recovery_after_two_rounds():
    def at(rate_scale):  # the same round over a link rate_scale times as fast
        m = measured()
        return replace(m, comm_time_s=m.comm_time_s / rate_scale)

    fit = refit(PRIOR, [at(1.0), at(1.0), at(1.0), at(1.0), at(0.1)])
    assert fit.uplink_bytes_per_s == pytest.approx(0.1 * TRUE["rate"])  # the sag, at once
    back = [at(1.0)] * 4 + [at(0.1), at(1.0)]
    assert refit(PRIOR, back).uplink_bytes_per_s == pytest.approx(0.1 * TRUE["rate"])
    back.append(at(1.0))  # a second round at the recovered rate confirms it
    assert refit(PRIOR, back).uplink_bytes_per_s == pytest.approx(TRUE["rate"])
    # Compute coefficients keep their robust median over the same reports.
    assert refit(PRIOR, back).cycles == pytest.approx(TRUE["cps"] * 1000)
