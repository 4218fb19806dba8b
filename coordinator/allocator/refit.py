"""Closed loop: refit a device's coefficients from measured round reports; predicted vs measured.

Each report gives one estimate per coefficient (DESIGN.md §2)::

    cycles_per_sample  = mean_freq_hz * compute_time_s / samples
    kappa              = compute_energy_dynamic_j / (mean_freq_hz**3 * compute_time_s)
                         (E = kappa*C*f**2 with C = f*t cycles)
    uplink_bytes_per_s = bytes_up / comm_time_s
    energy_per_byte_j  = comm_energy_dynamic_j / bytes_up

A device whose clock cannot be read reports no frequency (0): it runs at one fixed clock
(f_min = f_max in its coefficients, a nominal reference declared by its profile), and that
clock stands in for the reading, so the fit works in seconds per sample at that clock.

Robust running estimate: per coefficient, the **median of the last ``window`` valid estimates**
(default 8). Estimates that are not finite and positive (a zero duration, no bytes sent, a
negative dynamic energy when idle power was overestimated) are skipped. While fewer than three
valid estimates exist, the current coefficient (the calibration profile or the previous fit) is
counted as one more observation, so one wild first report cannot move a coefficient far: with
three or more values a single outlier never sets the median. The round's cycles ``C_k`` are
``cycles_per_sample`` times the samples of a round (the latest report's unless given).

The uplink rate is the exception: a link moves (a trace, congestion, a walk away from the
access point) while a board's compute does not, and a median over eight rounds would follow a
drop from 20 to 2 Mbit/s only after four or five of them. It is the **lower of the last two**
measured rates (:data:`LINK_WINDOW`): a sag is believed at once, so the next round's deadline is
planned for it; a recovery after a second round confirms it, and one wild fast measurement
never raises it. Before any measurement the prior (a test link's configured rate, else the
calibration's) stands.

All functions are pure: the coordinator passes the device's stored reports in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Union

from .fleet import DeviceCoeffs
from .model import FP32_BITS, default_header_bytes

DEFAULT_WINDOW = 8
MIN_OBSERVATIONS = 3
LINK_WINDOW = 2


@dataclass(frozen=True)
class RoundMeasurement:
    """What an agent's RoundReport says about one round (dynamic = above idle power)."""

    compute_energy_dynamic_j: float
    compute_time_s: float
    mean_freq_hz: float
    samples: float
    bytes_up: float
    comm_time_s: float
    comm_energy_dynamic_j: float


@dataclass(frozen=True)
class RoundPrediction:
    """The model's prediction for one device and round."""

    compute_energy_j: float
    comm_energy_j: float
    compute_time_s: float
    comm_time_s: float

    @property
    def energy_j(self) -> float:
        return self.compute_energy_j + self.comm_energy_j

    @property
    def time_s(self) -> float:
        return self.compute_time_s + self.comm_time_s


@dataclass(frozen=True)
class Comparison:
    """Relative errors (predicted - measured) / measured; None where measured is zero."""

    compute_energy: Optional[float]
    comm_energy: Optional[float]
    energy: Optional[float]
    compute_time: Optional[float]
    comm_time: Optional[float]


def _valid(x: float) -> Optional[float]:
    return x if math.isfinite(x) and x > 0 else None


def _div(num: float, den: float) -> Optional[float]:
    return _valid(num / den) if den > 0 and math.isfinite(den) else None


def observe(
    report: RoundMeasurement, fixed_freq_hz: Optional[float] = None
) -> Dict[str, Optional[float]]:
    """One report's estimate of each coefficient (None where the report cannot give it).

    ``fixed_freq_hz``: the device's one clock, used when the report carries no frequency.
    """
    f, t = report.mean_freq_hz, report.compute_time_s
    if not f > 0 and fixed_freq_hz is not None:
        f = fixed_freq_hz
    return {
        "cycles_per_sample": _div(f * t, report.samples),
        "kappa": _div(report.compute_energy_dynamic_j, f**3 * t),
        "uplink_bytes_per_s": _div(report.bytes_up, report.comm_time_s),
        "energy_per_byte_j": _div(report.comm_energy_dynamic_j, report.bytes_up),
    }


def _median(values: Sequence[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else 0.5 * (s[mid - 1] + s[mid])


def robust_estimate(
    observations: Sequence[Optional[float]], prior: float, window: int = DEFAULT_WINDOW
) -> float:
    """Median of the last ``window`` valid observations, anchored by ``prior`` while few."""
    valid: List[float] = [x for x in observations if x is not None][-window:]
    if not valid:
        return prior
    if len(valid) < MIN_OBSERVATIONS and _valid(prior) is not None:
        valid = [prior, *valid]
    return _median(valid)


def link_estimate(observations: Sequence[Optional[float]], prior: float) -> float:
    """The lowest of the last :data:`LINK_WINDOW` valid rate observations; ``prior`` if none."""
    valid = [x for x in observations if x is not None][-LINK_WINDOW:]
    return min(valid) if valid else prior


def refit(
    coeffs: DeviceCoeffs,
    reports: Union[RoundMeasurement, Sequence[RoundMeasurement]],
    window: int = DEFAULT_WINDOW,
    samples_per_round: Optional[float] = None,
) -> DeviceCoeffs:
    """New coefficients for ``coeffs`` from its reports (oldest first); a pure function."""
    seq = [reports] if isinstance(reports, RoundMeasurement) else list(reports)
    if not seq:
        return coeffs
    fixed = coeffs.f_max_hz if coeffs.f_min_hz == coeffs.f_max_hz else None
    obs = [observe(r, fixed) for r in seq]
    round_samples = samples_per_round if samples_per_round is not None else seq[-1].samples
    prior_cps = coeffs.cycles / round_samples if round_samples > 0 else float("nan")
    cps = robust_estimate([o["cycles_per_sample"] for o in obs], prior_cps, window)
    fields = {
        name: robust_estimate([o[name] for o in obs], getattr(coeffs, name), window)
        for name in ("kappa", "energy_per_byte_j")
    }
    fields["uplink_bytes_per_s"] = link_estimate(
        [o["uplink_bytes_per_s"] for o in obs], coeffs.uplink_bytes_per_s
    )
    cycles = cps * round_samples if math.isfinite(cps) and round_samples > 0 else coeffs.cycles
    return replace(
        coeffs,
        cycles=cycles,
        kappa=fields["kappa"],
        uplink_bytes_per_s=fields["uplink_bytes_per_s"],
        energy_per_byte_j=fields["energy_per_byte_j"],
    )


def predict_round(
    coeffs: DeviceCoeffs,
    bits: int,
    freq_hz: float,
    params: int,
    header_bytes: Optional[float] = None,
) -> RoundPrediction:
    """Predicted dynamic energy and time of one round with ``bits`` and ``freq_hz``."""
    h = default_header_bytes(1) if header_bytes is None else header_bytes
    size = params * (FP32_BITS if bits >= FP32_BITS else bits) / 8.0 + h
    return RoundPrediction(
        compute_energy_j=coeffs.kappa * coeffs.cycles * freq_hz**2,
        comm_energy_j=coeffs.energy_per_byte_j * size,
        compute_time_s=coeffs.cycles / freq_hz,
        comm_time_s=size / coeffs.uplink_bytes_per_s,
    )


def relative_error(predicted: float, measured: float) -> Optional[float]:
    """(predicted - measured) / measured, None when measured is zero or not finite."""
    if measured == 0 or not math.isfinite(measured):
        return None
    return (predicted - measured) / measured


def compare(prediction: RoundPrediction, measured: RoundMeasurement) -> Comparison:
    """Relative errors of a prediction against the measured round."""
    m_energy = measured.compute_energy_dynamic_j + measured.comm_energy_dynamic_j
    return Comparison(
        compute_energy=relative_error(
            prediction.compute_energy_j, measured.compute_energy_dynamic_j
        ),
        comm_energy=relative_error(prediction.comm_energy_j, measured.comm_energy_dynamic_j),
        energy=relative_error(prediction.energy_j, m_energy),
        compute_time=relative_error(prediction.compute_time_s, measured.compute_time_s),
        comm_time=relative_error(prediction.comm_time_s, measured.comm_time_s),
    )
