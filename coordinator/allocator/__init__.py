"""The energy allocator: per device quantization bits and compute-clock frequency for one round.

f is "the compute clock this device reported": its CPU's, or its GPU's when it trains on CUDA
(a Jetson registers its GPU's devfreq range and steps then); nothing here assumes a CPU range.

Pure functions (numpy in, numpy out, no I/O, no clock); see docs/allocator.md and DESIGN.md §3.

Entry points the coordinator calls every round::

    fleet = parse_fleet(json_obj)             # or Fleet(...) built from stored coefficients
    plan = allocate(fleet, "on-demand")       # also "fp32", "fixed-8"
    coeffs = refit(coeffs, reports)           # robust update from measured round reports
    cmp = compare(predict_round(...), report) # predicted vs measured, relative errors

Modules: ``model`` (energy/time/error), ``solve`` (continuous KKT + search on mu), ``integer``
(rounding), ``schemes`` (allocate and baselines), ``refit`` (closed loop), ``wireless``
(simulated fleets), ``fleet`` (FLEET.json), ``plan`` (result types), ``errors``.
"""

from __future__ import annotations

from .errors import AllocatorError, FleetError, SchemeError
from .fleet import DeviceCoeffs, Fleet, fleet_to_dict, parse_fleet
from .model import FleetArrays, default_header_bytes
from .plan import DevicePlan, Infeasibility, Plan
from .refit import (
    Comparison,
    RoundMeasurement,
    RoundPrediction,
    compare,
    predict_round,
    refit,
    relative_error,
)
from .schemes import allocate
from .solve import ContinuousSolution, bits_for_multiplier, solve_continuous

__all__ = [
    "AllocatorError",
    "Comparison",
    "ContinuousSolution",
    "DeviceCoeffs",
    "DevicePlan",
    "Fleet",
    "FleetArrays",
    "FleetError",
    "Infeasibility",
    "Plan",
    "RoundMeasurement",
    "RoundPrediction",
    "SchemeError",
    "allocate",
    "bits_for_multiplier",
    "compare",
    "default_header_bytes",
    "fleet_to_dict",
    "parse_fleet",
    "predict_round",
    "refit",
    "relative_error",
    "solve_continuous",
]
