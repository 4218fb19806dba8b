"""Schemes: ``on-demand`` (the allocator) and the baselines ``fp32`` and ``fixed-<B>``.

:func:`allocate` is the entry point the coordinator calls every round. All schemes use the same
inputs and the same frequency rule (cheapest frequency meeting the deadline, rounded up to an
available step), so their predicted energies compare like with like.

- ``on-demand``: continuous KKT solution (:mod:`.solve`), integer bits (:mod:`.integer`).
- ``fp32``: no quantization; 32 bits per value, error 0. Infeasible where a device misses the
  deadline even at its top frequency.
- ``fixed-<B>`` (e.g. ``fixed-8``): every device B bits (1..16). The plan is returned as computed
  and every broken constraint is listed: deadline, error budget, and B outside a device's own
  [bits_min, bits_max].
"""

from __future__ import annotations

from typing import List, Optional, Union

import numpy as np

from greenfed.scheme import FP32, ON_DEMAND, Scheme

from .fleet import Fleet
from .integer import best_integer_bits, integer_bounds, stepped_freq_hz, verify
from .model import (
    FleetArrays,
    comm_energy_j,
    compute_energy_j,
    device_error,
    round_time_s,
)
from .plan import BITS_RANGE, Infeasibility, Plan
from .solve import (
    bit_bounds,
    budget_infeasibility,
    deadline_infeasibilities,
    over_budget,
    solve_continuous,
)


def allocate(fleet: Union[Fleet, FleetArrays], scheme: Union[str, Scheme] = ON_DEMAND) -> Plan:
    """Bits and CPU frequency per device for one round under ``scheme``; a pure function."""
    arrays = fleet.to_arrays() if isinstance(fleet, Fleet) else fleet
    parsed = scheme if isinstance(scheme, Scheme) else Scheme.parse(scheme)
    if parsed.kind == ON_DEMAND:
        return _on_demand(arrays)
    bits = parsed.uniform_bits
    assert bits is not None
    return _uniform(arrays, str(parsed), float(bits))


def _plan(
    fleet: FleetArrays,
    scheme: str,
    bits: np.ndarray,
    freq_hz: np.ndarray,
    multiplier: Optional[float],
    problems: List[Infeasibility],
) -> Plan:
    return Plan(
        scheme=scheme,
        feasible=not problems,
        multiplier=multiplier if not problems else None,
        error=float(device_error(fleet, bits).sum()),
        error_budget=fleet.error_budget,
        ids=fleet.ids,
        bits=bits.astype(int),
        freq_hz=freq_hz,
        compute_energy_j=compute_energy_j(fleet, freq_hz),
        comm_energy_j=comm_energy_j(fleet, bits),
        time_s=round_time_s(fleet, bits, freq_hz),
        infeasible=problems,
    )


def _on_demand(fleet: FleetArrays) -> Plan:
    bounds = bit_bounds(fleet)
    low, high = integer_bounds(fleet, bounds.high)
    problems = deadline_infeasibilities(fleet, low)
    if not problems:
        over = budget_infeasibility(fleet, high)
        problems = [over] if over is not None else []
    if problems:
        bits = np.maximum(low, high)
        return _plan(fleet, ON_DEMAND, bits, stepped_freq_hz(fleet, bits), None, problems)
    cont = solve_continuous(fleet)
    bits = best_integer_bits(fleet, cont.bits, low, high)
    freq = stepped_freq_hz(fleet, bits)
    return _plan(fleet, ON_DEMAND, bits, freq, cont.multiplier, verify(fleet, bits, freq))


def _uniform(fleet: FleetArrays, scheme: str, bits_value: float) -> Plan:
    bits = np.full(fleet.size, bits_value)
    freq = stepped_freq_hz(fleet, bits)
    problems = deadline_infeasibilities(fleet, bits)
    if scheme != FP32:
        out = np.flatnonzero((bits < fleet.bits_min) | (bits > fleet.bits_max))
        for i in out:
            problems.append(
                Infeasibility(
                    kind=BITS_RANGE,
                    device_id=fleet.ids[i],
                    value=bits_value,
                    limit=float(
                        fleet.bits_max[i] if bits_value > fleet.bits_max[i] else fleet.bits_min[i]
                    ),
                    unit="bits",
                    message=f"device {fleet.ids[i]}: {bits_value:g} bits outside its range "
                    f"{fleet.bits_min[i]:g}..{fleet.bits_max[i]:g}",
                )
            )
        over = over_budget(fleet, bits, f"with {bits_value:g} bits")
        if over is not None:
            problems.append(over)
    return _plan(fleet, scheme, bits, freq, None, problems)
