"""Per-device energy, time and quantization-error model (DESIGN.md §2), vectorised over a fleet.

All functions take a :class:`FleetArrays` (one numpy array per coefficient, one entry per device)
and a bits array, and return numpy arrays; nothing here does I/O or reads a clock.

Model for device k with q bits and compute-clock frequency f (the clock the device trains on:
its CPU's, or its GPU's under CUDA; units in the names)::

    update_bytes   S_k(q)  = d*q/8 + h                       (h: codec headers, bytes)
    energy_j       E_k     = kappa_k*C_k*f**2 + e_k*S_k(q)   (compute + upload, dynamic part)
    time_s         t_k     = C_k/f + S_k(q)/r_k              (must be <= deadline T)
    error          e(q)    = sum_k w_k**2 * d * R_k**2 / (4*(2**q_k - 1)**2),  w_k = D_k/sum(D)

The cheapest frequency meeting the deadline is ``f_k(q) = max(f_min, C/(T - S(q)/r))``; the
highest usable frequency ``f_top`` is the largest available step when steps are listed, else
``f_max``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Tuple

import numpy as np

try:  # the codec's exact frame overhead (numpy only, no torch); optional for the allocator
    from greenfed.codec import header_bytes as _codec_header_bytes
except ImportError:  # pragma: no cover - a checkout without the codec
    _codec_header_bytes = None  # type: ignore[assignment]

#: Fallback header estimate when the codec is not importable and the fleet gives no
#: ``header_bytes``: per quantized tensor a scale, an offset, a shape and a name (~64 bytes),
#: plus a fixed frame overhead (magic, version, sizes, checksum, ~96 bytes). Both are above the
#: codec's own figures (122 bytes for 1 tensor, 1604 for 40 with 16-byte names).
HEADER_BYTES_PER_TENSOR = 64.0
FRAME_OVERHEAD_BYTES = 96.0
#: Bits per value of an unquantized update (the ``fp32`` scheme).
FP32_BITS = 32


def default_header_bytes(tensors: int) -> float:
    """Header bytes h of one update frame with ``tensors`` tensors: ``greenfed.codec``'s
    ``header_bytes`` (one scale group per tensor, 16-byte names) when importable, else the
    conservative fallback above."""
    if _codec_header_bytes is not None:
        return float(_codec_header_bytes([1] * tensors))
    return HEADER_BYTES_PER_TENSOR * tensors + FRAME_OVERHEAD_BYTES


@dataclass(frozen=True)
class FleetArrays:
    """A fleet as one array per coefficient (struct of arrays), the allocator's input.

    ``f_steps_hz`` is an ``(N, M)`` array of available frequencies sorted ascending, padded with
    ``inf``; ``M`` is 0 when no device lists steps, and a row of ``inf`` means "continuous".
    """

    ids: Tuple[str, ...]
    params: int
    deadline_s: float
    error_budget: float
    header_bytes: float
    kappa: np.ndarray
    cycles: np.ndarray
    f_min_hz: np.ndarray
    f_max_hz: np.ndarray
    f_steps_hz: np.ndarray
    uplink_bytes_per_s: np.ndarray
    energy_per_byte_j: np.ndarray
    weight_range: np.ndarray
    samples: np.ndarray
    bits_min: np.ndarray
    bits_max: np.ndarray

    @property
    def size(self) -> int:
        return len(self.ids)

    @cached_property
    def has_steps(self) -> np.ndarray:
        if self.f_steps_hz.shape[1] == 0:
            return np.zeros(self.size, dtype=bool)
        return np.isfinite(self.f_steps_hz[:, 0])

    @cached_property
    def f_top_hz(self) -> np.ndarray:
        """Highest usable frequency: the top available step, else ``f_max_hz``."""
        if self.f_steps_hz.shape[1] == 0:
            return self.f_max_hz
        masked = np.where(np.isfinite(self.f_steps_hz), self.f_steps_hz, -np.inf)
        top = masked.max(axis=1)
        return np.where(self.has_steps, top, self.f_max_hz)

    @cached_property
    def weights(self) -> np.ndarray:
        """Aggregation weights w_k = D_k / sum(D)."""
        return self.samples / self.samples.sum()

    @cached_property
    def error_coef(self) -> np.ndarray:
        """c_k = w_k**2 * d * R_k**2 / 4, so that device k's error is c_k / (2**q - 1)**2."""
        return self.weights**2 * self.params * self.weight_range**2 / 4.0


def update_bytes(fleet: FleetArrays, bits: np.ndarray) -> np.ndarray:
    """Update size S(q) = d*q/8 + h in bytes."""
    return fleet.params * np.asarray(bits, dtype=float) / 8.0 + fleet.header_bytes


def device_error(fleet: FleetArrays, bits: np.ndarray) -> np.ndarray:
    """Per-device share of the aggregated quantization error; 0 for ``FP32_BITS``."""
    q = np.asarray(bits, dtype=float)
    out = fleet.error_coef / np.expm1(q * np.log(2.0)) ** 2
    return np.where(q >= FP32_BITS, 0.0, out)


def quantization_error(fleet: FleetArrays, bits: np.ndarray) -> float:
    """Aggregated error bound e(q) = sum_k c_k / (2**q_k - 1)**2."""
    return float(device_error(fleet, bits).sum())


def cheapest_freq_hz(fleet: FleetArrays, bits: np.ndarray) -> np.ndarray:
    """Lowest frequency meeting the deadline, max(f_min, C/(T - S/r)); inf where none does.

    Not capped at ``f_top``: a value above it means the deadline cannot be met with these bits.
    """
    slack_s = fleet.deadline_s - update_bytes(fleet, bits) / fleet.uplink_bytes_per_s
    with np.errstate(divide="ignore"):
        f = np.where(slack_s > 0, fleet.cycles / np.where(slack_s > 0, slack_s, 1.0), np.inf)
    return np.maximum(fleet.f_min_hz, f)


def max_bits_for_deadline(fleet: FleetArrays) -> np.ndarray:
    """Largest (real) q with C/f_top + S(q)/r <= T; may be below 1 or negative."""
    comm_s = fleet.deadline_s - fleet.cycles / fleet.f_top_hz
    return (comm_s * fleet.uplink_bytes_per_s - fleet.header_bytes) * 8.0 / fleet.params


def round_freq_up(fleet: FleetArrays, freq_hz: np.ndarray) -> np.ndarray:
    """Round each frequency up to the device's next available step (inf where none is high
    enough); devices without steps keep the value, inf above ``f_max_hz``.

    A relative slack of 1e-12 absorbs floating-point noise in ``freq_hz``.
    """
    f = np.asarray(freq_hz, dtype=float)
    target = f * (1.0 - 1e-12)
    out = np.where(f <= fleet.f_max_hz * (1.0 + 1e-12), np.minimum(f, fleet.f_max_hz), np.inf)
    if fleet.f_steps_hz.shape[1] == 0:
        return out
    steps = fleet.f_steps_hz
    ok = steps >= target[:, None]
    idx = np.argmax(ok, axis=1)
    stepped = steps[np.arange(len(f)), idx]
    stepped = np.where(ok.any(axis=1), stepped, np.inf)
    return np.where(fleet.has_steps, stepped, out)


def compute_energy_j(fleet: FleetArrays, freq_hz: np.ndarray) -> np.ndarray:
    """Dynamic compute energy kappa*C*f**2 of one round."""
    return fleet.kappa * fleet.cycles * np.asarray(freq_hz, dtype=float) ** 2


def comm_energy_j(fleet: FleetArrays, bits: np.ndarray) -> np.ndarray:
    """Dynamic upload energy e*S(q) of one round."""
    return fleet.energy_per_byte_j * update_bytes(fleet, bits)


def round_time_s(fleet: FleetArrays, bits: np.ndarray, freq_hz: np.ndarray) -> np.ndarray:
    """Round time C/f + S(q)/r."""
    return fleet.cycles / np.asarray(freq_hz, dtype=float) + (
        update_bytes(fleet, bits) / fleet.uplink_bytes_per_s
    )


def stepped_energy_j(fleet: FleetArrays, bits: np.ndarray) -> np.ndarray:
    """Energy with integer-ready frequencies: cheapest deadline frequency rounded up to a step
    (inf where the deadline cannot be met)."""
    f = round_freq_up(fleet, cheapest_freq_hz(fleet, bits))
    with np.errstate(invalid="ignore"):
        energy = compute_energy_j(fleet, f) + comm_energy_j(fleet, bits)
    return np.where(np.isfinite(f), energy, np.inf)
