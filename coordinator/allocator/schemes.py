"""Schemes: what every device sends each round, and the planner that decides it.

    on-demand   the allocator picks each device's bits (stochastic quantization)
    fp32        full-precision FedAvg: updates unquantized, 32 bits per value
    fixed-B     every device B bits, 1 <= B <= 16 (``fixed-8``)

:class:`Scheme` is the one value for a scheme across the coordinator (configuration, command
lines, planning): :meth:`Scheme.parse` is the one parser, and the codec configuration a device
encodes with follows from the scheme and its assigned bits (:meth:`Scheme.codec_config`; bits
per value from the codec's ``CodecConfig.frame_bits``). :func:`allocate` is the entry point the
coordinator calls every round. All schemes use the same inputs and the same frequency rule
(cheapest frequency meeting the deadline, rounded up to an available step), so their predicted
energies compare like with like.

- ``on-demand``: continuous KKT solution (:mod:`.solve`), integer bits (:mod:`.integer`).
- ``fp32``: no quantization; error 0. Infeasible where a device misses the deadline even at
  its top frequency.
- ``fixed-<B>``: every device B bits. The plan is returned as computed and every broken
  constraint is listed: deadline, error budget, and B outside a device's [bits_min, bits_max].

Add a scheme: its planner ``(FleetArrays, Scheme) -> Plan`` in a file of this package, and one
line in :data:`KINDS` (its name, the codec mode its devices use, whether it takes ``-B``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Union

import numpy as np

from greenfed.codec import CodecConfig

from .errors import SchemeError
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

ON_DEMAND = "on-demand"
FP32 = "fp32"
FIXED = "fixed"
_WITH_BITS = re.compile(r"^([a-z][a-z0-9-]*?)-b?(\d+)$")
Planner = Callable[[FleetArrays, "Scheme"], Plan]


def allocate(fleet: Union[Fleet, FleetArrays], scheme: Union[str, Scheme] = ON_DEMAND) -> Plan:
    """Bits and compute-clock frequency per device for one round under ``scheme``; pure."""
    arrays = fleet.to_arrays() if isinstance(fleet, Fleet) else fleet
    parsed = scheme if isinstance(scheme, Scheme) else Scheme.parse(scheme)
    return KINDS[parsed.kind].planner(arrays, parsed)


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


def _on_demand(fleet: FleetArrays, scheme: Scheme) -> Plan:
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


def _uniform(fleet: FleetArrays, scheme: Scheme) -> Plan:
    bits_value = float(scheme.uniform_bits or 0)
    bits = np.full(fleet.size, bits_value)
    freq = stepped_freq_hz(fleet, bits)
    problems = deadline_infeasibilities(fleet, bits)
    if scheme.kind != FP32:
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
    return _plan(fleet, str(scheme), bits, freq, None, problems)


@dataclass(frozen=True)
class SchemeKind:
    """A registered scheme: the codec mode its devices encode with, whether its name takes
    ``-B`` (bits for every device), and the planner that assigns bits and frequencies."""

    codec_mode: str
    takes_bits: bool
    planner: Planner


#: Every scheme the coordinator knows, by name (a new scheme is one more line).
KINDS: Dict[str, SchemeKind] = {
    ON_DEMAND: SchemeKind("stochastic", False, _on_demand),
    FP32: SchemeKind("fp32", False, _uniform),
    FIXED: SchemeKind("stochastic", True, _uniform),
}


def schemes_help() -> str:
    names = [f"{k}-B with B in 1..16" if v.takes_bits else k for k, v in KINDS.items()]
    return ", ".join(names[:-1]) + " or " + names[-1]


@dataclass(frozen=True)
class Scheme:
    """``kind``: ``on-demand``, ``fp32`` or ``fixed``; ``fixed_bits``: B for ``fixed``."""

    kind: str
    fixed_bits: Optional[int] = None

    def __post_init__(self) -> None:
        kind = KINDS.get(self.kind)
        if kind is None:
            raise SchemeError(f"unknown scheme kind {self.kind!r}: use {schemes_help()}")
        if kind.takes_bits != (self.fixed_bits is not None):
            raise SchemeError(f"{self.kind}: bits are given exactly for the '<name>-B' schemes")
        if self.fixed_bits is not None and not 1 <= self.fixed_bits <= 16:
            raise SchemeError(f"{self.kind}-{self.fixed_bits}: B must be in 1..16")

    @classmethod
    def parse(cls, text: str) -> Scheme:
        """A registered name (``on-demand``, ``fp32``) or ``<name>-B`` (``fixed-8``;
        ``fixed-b8`` is accepted); :class:`SchemeError` names the choices."""
        name = str(text).strip().lower()
        kind = KINDS.get(name)
        if kind is not None and not kind.takes_bits:
            return cls(name)
        m = _WITH_BITS.match(name)
        bits_kind = m is not None and m.group(1) in KINDS and KINDS[m.group(1)].takes_bits
        if m is not None and bits_kind and 1 <= int(m.group(2)) <= 16:
            return cls(m.group(1), int(m.group(2)))
        raise SchemeError(f"unknown scheme {text!r}: use {schemes_help()}")

    def __str__(self) -> str:
        return self.kind if self.fixed_bits is None else f"{self.kind}-{self.fixed_bits}"

    @property
    def codec_mode(self) -> str:
        """The codec mode every device of this scheme encodes with."""
        return KINDS[self.kind].codec_mode

    @property
    def uniform_bits(self) -> Optional[int]:
        """Bits every device gets (32 for fp32, B for fixed-B); None where the allocator picks."""
        if self.kind == ON_DEMAND:
            return None
        return self.codec_config(self.fixed_bits or 1).frame_bits

    @property
    def header_bits(self) -> int:
        """Bits to size frame headers with before the allocator has picked (B, else 8)."""
        return self.fixed_bits or 8

    def codec_config(self, bits: int, block_size: int = 0) -> CodecConfig:
        """What a device assigned ``bits`` encodes with (bits are ignored by fp32)."""
        return CodecConfig(mode=self.codec_mode, bits=int(bits), block_size=block_size or None)

    def assigned_bits(self, allocated: int) -> int:
        """Bits per value written in an assignment: the codec's (32 for fp32), else allocated."""
        return self.codec_config(allocated).frame_bits
