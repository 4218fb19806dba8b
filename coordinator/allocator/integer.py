"""Integer bits from the continuous solution, with frequencies on the devices' available steps.

1. Round every device's real bits down (never below ``bits_min``).
2. Greedy repair: while the error exceeds the budget, add one bit to the device whose next bit
   buys the most error reduction per joule (energy with the frequency rounded up to a step).
   The greedy runs in vectorised batches that reproduce the one-bit-at-a-time heap order
   exactly: sort the candidates by ratio, and take the longest prefix in which no device already
   taken would, with its following bit, outrank the next candidate; stop inside the prefix where
   the cumulative reduction covers the deficit. 10^5 devices need a handful of batches.
3. Trim: remove single bits while the budget still holds, the most joules saved per unit of
   error first (at most ``TRIM_MAX_STEPS`` removals), which repairs the last greedy step's
   overshoot.
4. Safeguard: the rounded-up continuous bits and every uniform B (clipped to each device's range)
   are also feasible candidates; the cheapest feasible candidate wins. So the result is never
   worse than a fixed-B plan that satisfies the same constraints.

Frequencies are the cheapest deadline frequency rounded up to the next available step; the
deadline and the budget are verified afterwards (:func:`verify`).
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from .model import (
    FleetArrays,
    cheapest_freq_hz,
    device_error,
    round_freq_up,
    round_time_s,
    stepped_energy_j,
)
from .plan import ROUNDING, Infeasibility
from .solve import over_budget

#: Relative slack for the deadline check after rounding (floating-point noise only).
DEADLINE_RTOL = 1e-9
MAX_BATCHES = 10_000
#: Single-bit removals tried after the greedy (each is one vectorised pass over the fleet).
TRIM_MAX_STEPS = 32


def integer_bounds(fleet: FleetArrays, high_real: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Integer bit range: [bits_min, floor(real high)] (a tiny epsilon absorbs float noise)."""
    low = fleet.bits_min.astype(float)
    high = np.floor(high_real + 1e-9)
    return low, high


def _ratio(fleet: FleetArrays, q: np.ndarray, high: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Error reduction per joule of the next bit, and the same for the bit after it."""
    e0, e1, e2 = (stepped_energy_j(fleet, np.minimum(q + k, high)) for k in (0, 1, 2))
    r0, r1, r2 = (device_error(fleet, np.minimum(q + k, 16.0)) for k in (0, 1, 2))
    tiny = 1e-300
    with np.errstate(invalid="ignore", divide="ignore"):
        first = np.where(q < high, (r0 - r1) / np.maximum(e1 - e0, tiny), -np.inf)
        second = np.where(q + 1 < high, (r1 - r2) / np.maximum(e2 - e1, tiny), -np.inf)
    return first, second


def greedy_bits(fleet: FleetArrays, start: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Add bits to ``start`` greedily until the budget holds (or no device can take more)."""
    q = start.astype(float).copy()
    eps = fleet.error_budget
    for _ in range(MAX_BATCHES):
        dev_err = device_error(fleet, q)
        deficit = float(dev_err.sum()) - eps
        if deficit <= 0:
            break
        first, second = _ratio(fleet, q, high)
        cand = np.flatnonzero(first > -np.inf)
        if cand.size == 0:
            break
        order = cand[np.argsort(-first[cand], kind="stable")]
        s = first[order]
        prior_best = np.maximum.accumulate(np.concatenate(([-np.inf], second[order][:-1])))
        broken = np.flatnonzero(s < prior_best)
        limit = int(broken[0]) if broken.size else order.size
        gain = (dev_err - device_error(fleet, np.minimum(q + 1.0, 16.0)))[order]
        reach = int(np.searchsorted(np.cumsum(gain), deficit)) + 1
        take = max(1, min(limit, reach))
        q[order[:take]] += 1.0
    return q


def trim_bits(
    fleet: FleetArrays, bits: np.ndarray, low: np.ndarray, max_steps: int = TRIM_MAX_STEPS
) -> np.ndarray:
    """Remove single bits while the budget still holds, most joules saved per unit of error
    first (repairs the greedy's overshoot on its last, coarse step).

    Each pass scores every device once and removes at most one bit per device; passes repeat
    while a removal happened (``max_steps`` removals in all).
    """
    q = bits.astype(float).copy()
    steps = 0
    while steps < max_steps:
        err = device_error(fleet, q)
        down = np.maximum(q - 1.0, low)
        added = device_error(fleet, down) - err
        saved = stepped_energy_j(fleet, q) - stepped_energy_j(fleet, down)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where((q > low) & (saved > 0), saved / np.maximum(added, 1e-300), -np.inf)
        slack = fleet.error_budget - float(err.sum())
        removed = 0
        while steps < max_steps:
            ok = (score > -np.inf) & (added <= slack)
            if not ok.any():
                break
            k = int(np.argmax(np.where(ok, score, -np.inf)))
            q[k] -= 1.0
            slack -= added[k]
            score[k] = -np.inf
            removed += 1
            steps += 1
        if removed == 0:
            break
    while device_error(fleet, q).sum() > fleet.error_budget:  # float drift in ``slack``
        q = np.minimum(q + (q < bits), bits)
    return q


def best_integer_bits(
    fleet: FleetArrays, bits_real: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """The cheapest feasible integer bits among greedy repair and the safeguard candidates."""
    start = np.clip(np.floor(bits_real + 1e-9), low, high)
    candidates: List[np.ndarray] = [trim_bits(fleet, greedy_bits(fleet, start, high), low)]
    candidates.append(trim_bits(fleet, np.clip(np.ceil(bits_real - 1e-9), low, high), low))
    candidates.extend(np.clip(np.full_like(low, b), low, high) for b in range(1, 17))
    best, best_energy = candidates[0], np.inf
    for q in candidates:
        if device_error(fleet, q).sum() > fleet.error_budget:
            continue
        energy = float(stepped_energy_j(fleet, q).sum())
        if energy < best_energy:
            best, best_energy = q, energy
    return best


def stepped_freq_hz(fleet: FleetArrays, bits: np.ndarray) -> np.ndarray:
    """Cheapest deadline frequency rounded up to a step, capped at ``f_top`` (best effort)."""
    f = round_freq_up(fleet, cheapest_freq_hz(fleet, bits))
    return np.where(np.isfinite(f), f, fleet.f_top_hz)


def verify(fleet: FleetArrays, bits: np.ndarray, freq_hz: np.ndarray) -> List[Infeasibility]:
    """Check the deadline and the budget of a rounded plan; empty when both hold."""
    out: List[Infeasibility] = []
    t_s = round_time_s(fleet, bits, freq_hz)
    for i in np.flatnonzero(t_s > fleet.deadline_s * (1.0 + DEADLINE_RTOL)):
        out.append(
            Infeasibility(
                kind=ROUNDING,
                device_id=fleet.ids[i],
                value=float(t_s[i]),
                limit=fleet.deadline_s,
                unit="s",
                message=f"device {fleet.ids[i]}: {t_s[i]:.9g} s after rounding exceeds the "
                f"deadline {fleet.deadline_s:g} s",
            )
        )
    over = over_budget(fleet, bits, "of the integer bits")
    if over is not None:
        out.append(over)
    return out
