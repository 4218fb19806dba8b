"""Stochastic, unbiased uniform quantization of float tensors to q bits (q in 1..16).

A group of values (a whole tensor, or one block of ``block_size`` values) with minimum ``lo`` and
maximum ``hi`` is mapped onto the grid ``lo + step * s``, ``s`` in ``0 .. L`` with ``L = 2**q - 1``
and ``step ≈ (hi - lo) / L``. Each value rounds to the grid point above with probability equal to
its remainder, so ``E[Q(x)] = x`` and ``E[(Q(x) - x)**2] <= step**2 / 4``.

Numerics (float32 throughout, as stored in the frame):

* ``lo`` is the group minimum (exact in float32); ``step`` is ``(hi - lo) / L`` inflated by
  ``2**-20`` relative, then rounded to float32. The inflation guarantees that the scaled value
  ``x' = (x - lo) * (1 / step)`` stays strictly below ``L`` despite float32 rounding, so no
  clipping (and no clipping bias) is ever needed. A constant group has ``step = 0``.
* Rounding: ``f = trunc(x')``, remainder ``r = x' - f`` (exact), ``s = f + (u < r)`` with ``u``
  uniform on the 2**-23 grid in [0, 1). The noise comes from ``SFC64.random_raw``: each 64-bit
  draw gives two 23-bit mantissas turned into floats in [1, 2) by bit operations, which is about
  six times faster than ``Generator.random(dtype=float32)``. The probability of rounding up is
  therefore ``r`` to within 2**-23, a bias far below float32 resolution of the values.
* The squared error is measured during encoding from the remainders: ``step**2 * sum((b - r)**2)``
  (``b`` the round-up bit), i.e. the error on the grid; the decoded values differ from the grid
  only by float32 rounding of ``lo + step * s``.

Work runs in chunks of :data:`CHUNK` values so every temporary stays in the L2 cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .errors import EncodeInputError

__all__ = ["CHUNK", "QuantizedTensor", "dequantize", "group_count", "quantize"]

CHUNK = 1 << 16  # values per step
_INFLATE = 1.0 + 2.0**-20
_MIN_STEP = 2.0**-100  # keeps 1/step finite in float32 for (sub)normal-tiny ranges
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass
class QuantizedTensor:
    """Symbols (uint8 for q <= 8, uint16 above) and the float32 grid of every group."""

    symbols: np.ndarray
    offsets: np.ndarray  # float32, one per group: lo
    steps: np.ndarray  # float32, one per group: step (>= 0)
    sq_error: float  # measured sum of squared errors, in the tensor's units
    bound: float  # sum over groups of n_g * step**2 / 4
    value_range: float  # max - min over the whole tensor


def group_count(numel: int, block_size: int) -> int:
    """Scale/offset pairs of a tensor: 1 per tensor, or one per block (the last may be short)."""
    if block_size <= 0 or numel == 0:
        return 1
    return (numel + block_size - 1) // block_size


def _grid(lo: np.ndarray, hi: np.ndarray, bits: int, name: str) -> Tuple[np.ndarray, np.ndarray]:
    """float32 (offset, step) per group from float32 minima and maxima."""
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise EncodeInputError(
            f"tensor {name!r} holds NaN or infinite values; stochastic quantization needs finite "
            "values (check the update for divergence, or send it with mode='fp32')"
        )
    levels = (1 << bits) - 1
    span = hi.astype(np.float64) - lo.astype(np.float64)
    step64 = span / levels * _INFLATE
    if np.any(step64 > _F32_MAX / 2):
        raise EncodeInputError(
            f"tensor {name!r} spans {float(span.max()):.3g}, too wide for float32 scales; "
            "send it with mode='fp32'"
        )
    step64 = np.where(span > 0, np.maximum(step64, _MIN_STEP), 0.0)
    if np.any(lo.astype(np.float64) + step64 * levels * (1 + 2.0**-20) > _F32_MAX):
        raise EncodeInputError(
            f"tensor {name!r} reaches the float32 maximum; send it with mode='fp32'"
        )
    steps = step64.astype(np.float32)
    # make sure rounding to float32 did not shrink the step below span / levels
    short = steps.astype(np.float64) * levels < span
    if np.any(short):
        steps[short] = np.nextafter(steps[short], np.float32(np.inf))
    return lo.astype(np.float32), steps


def _grid_scalar(
    lo: float, hi: float, bits: int, name: str
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_grid` and :func:`_inverse` for one group, on Python floats (small tensors are
    common in state dicts; array set-up would dominate their cost). Same results."""
    levels = (1 << bits) - 1
    span = hi - lo
    step = span / levels * _INFLATE
    if step > _F32_MAX / 2:
        raise EncodeInputError(
            f"tensor {name!r} spans {span:.3g}, too wide for float32 scales; send it with "
            "mode='fp32'"
        )
    step = max(step, _MIN_STEP) if span > 0 else 0.0
    if lo + step * levels * (1 + 2.0**-20) > _F32_MAX:
        raise EncodeInputError(
            f"tensor {name!r} reaches the float32 maximum; send it with mode='fp32'"
        )
    step32 = np.float32(step)
    if float(step32) * levels < span:
        step32 = np.nextafter(step32, np.float32(np.inf))
    inv32 = np.float32(1.0 / float(step32)) if step32 > 0 else np.float32(0.0)
    return (
        np.array([lo], dtype=np.float32),
        np.array([step32], dtype=np.float32),
        np.array([inv32], dtype=np.float32),
    )


def _inverse(steps: np.ndarray) -> np.ndarray:
    inv = np.zeros(steps.shape, dtype=np.float64)
    np.divide(1.0, steps.astype(np.float64), out=inv, where=steps > 0)
    return inv.astype(np.float32)


class _Rounder:
    """Scratch buffers and the noise source for one encode call."""

    def __init__(self, bitgen: np.random.BitGenerator, size: int) -> None:
        self.bitgen = bitgen
        self.scaled = np.empty(min(size, CHUNK), dtype=np.float32)
        self.mask = np.empty(min(size, CHUNK), dtype=np.bool_)

    def round_rows(
        self, x: np.ndarray, lo: np.ndarray, inv: np.ndarray, sym: np.ndarray
    ) -> np.ndarray:
        """Quantize ``x`` (rows × cols float32) into ``sym`` (same shape); per-row sum of r**2
        in grid units, ``r`` the signed rounding error."""
        n = x.size
        xp = self.scaled[:n].reshape(x.shape)
        np.subtract(x, lo, out=xp)
        np.multiply(xp, inv, out=xp)
        np.copyto(sym, xp, casting="unsafe")  # truncation == floor, since xp >= 0
        np.subtract(xp, sym, out=xp)  # remainder in [0, 1)
        raw = self.bitgen.random_raw((n + 1) // 2).view(np.uint32)[:n].reshape(x.shape)
        raw >>= np.uint32(9)
        raw |= np.uint32(0x3F800000)  # float32 in [1, 2) with a random 23-bit mantissa
        noise = raw.view(np.float32)
        noise -= np.float32(1.0)
        bit = self.mask[:n].reshape(x.shape)
        np.less(noise, xp, out=bit)
        np.add(sym, bit, out=sym, casting="unsafe")
        np.subtract(xp, bit, out=xp)  # r - b: the signed error in grid units
        if x.shape[0] == 1:
            return np.array([np.dot(xp[0], xp[0])], dtype=np.float64)
        return np.einsum("ij,ij->i", xp, xp).astype(np.float64)


def quantize(
    values: np.ndarray,
    bits: int,
    block_size: int,
    bitgen: np.random.BitGenerator,
    name: str = "",
) -> QuantizedTensor:
    """Stochastically quantize a float tensor (any float dtype) to ``bits`` bits.

    ``block_size <= 0`` uses one (offset, step) for the whole tensor; otherwise one per block of
    ``block_size`` consecutive values (in C order). Raises :class:`EncodeInputError` for NaN or
    infinite values.
    """
    x = np.ascontiguousarray(values).reshape(-1)
    if x.dtype != np.float32:
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)) and np.all(np.isfinite(values)):
            raise EncodeInputError(
                f"tensor {name!r} has values beyond the float32 range; send it with mode='fp32'"
            )
    n = x.size
    sym_dtype = np.uint8 if bits <= 8 else np.uint16
    symbols = np.empty(n, dtype=sym_dtype)
    rounder = _Rounder(bitgen, n)
    if n == 0:
        zero = np.zeros(1, dtype=np.float32)
        return QuantizedTensor(symbols, zero, zero.copy(), 0.0, 0.0, 0.0)

    if block_size <= 0 or block_size >= n:
        lo_s, hi_s = float(x.min()), float(x.max())
        if not (math.isfinite(lo_s) and math.isfinite(hi_s)):  # the array path words the error
            _grid(np.array([lo_s]), np.array([hi_s]), bits, name)
        offsets, steps, inv = _grid_scalar(lo_s, hi_s, bits, name)
        lo = offsets
        hi = np.array([hi_s], dtype=np.float32)
        sq_units = 0.0
        for start in range(0, n, CHUNK):
            stop = min(n, start + CHUNK)
            sq_units += float(
                rounder.round_rows(
                    x[start:stop].reshape(1, -1),
                    offsets.reshape(1, 1),
                    inv.reshape(1, 1),
                    symbols[start:stop].reshape(1, -1),
                )[0]
            )
        sq_err = sq_units * float(steps[0]) ** 2
        bound = n * float(steps[0]) ** 2 / 4.0
        return QuantizedTensor(symbols, offsets, steps, sq_err, bound, float(hi[0]) - float(lo[0]))

    full = n // block_size
    tail = n - full * block_size
    blocks = x[: full * block_size].reshape(full, block_size)
    lo_list = [blocks.min(axis=1)]
    hi_list = [blocks.max(axis=1)]
    if tail:
        lo_list.append(np.array([x[full * block_size :].min()], dtype=np.float32))
        hi_list.append(np.array([x[full * block_size :].max()], dtype=np.float32))
    lo = np.concatenate(lo_list)
    hi = np.concatenate(hi_list)
    offsets, steps = _grid(lo, hi, bits, name)
    inv = _inverse(steps)
    sq_rows = np.zeros(lo.size, dtype=np.float64)
    rows = max(1, CHUNK // block_size)
    sym_blocks = symbols[: full * block_size].reshape(full, block_size)
    for r0 in range(0, full, rows):
        r1 = min(full, r0 + rows)
        for c0 in range(0, block_size, CHUNK):  # blocks larger than a chunk: split columns
            c1 = min(block_size, c0 + CHUNK)
            sq_rows[r0:r1] += rounder.round_rows(
                blocks[r0:r1, c0:c1],
                offsets[r0:r1, None],
                inv[r0:r1, None],
                sym_blocks[r0:r1, c0:c1],
            )
    if tail:
        for start in range(full * block_size, n, CHUNK):
            stop = min(n, start + CHUNK)
            sq_rows[-1] += rounder.round_rows(
                x[start:stop].reshape(1, -1),
                offsets[-1:, None],
                inv[-1:, None],
                symbols[start:stop].reshape(1, -1),
            )[0]
    step2 = steps.astype(np.float64) ** 2
    counts = np.full(lo.size, block_size, dtype=np.float64)
    if tail:
        counts[-1] = tail
    return QuantizedTensor(
        symbols,
        offsets,
        steps,
        float(np.dot(sq_rows, step2)),
        float(np.dot(counts, step2)) / 4.0,
        float(hi.max()) - float(lo.min()),
    )


def dequantize(
    symbols: np.ndarray,
    offsets: np.ndarray,
    steps: np.ndarray,
    block_size: int,
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """float32 values ``offset + step * symbol`` per group (the inverse grid of :func:`quantize`).

    ``offsets`` and ``steps`` must hold :func:`group_count` entries (the frame decoder checks).
    """
    n = symbols.size
    if out is None:
        out = np.empty(n, dtype=np.float32)
    if n == 0:
        return out
    if block_size <= 0 or block_size >= n:
        step = np.float32(steps[0])
        lo = np.float32(offsets[0])
        for start in range(0, n, CHUNK):
            part = out[start : start + CHUNK]
            np.multiply(symbols[start : start + CHUNK], step, out=part, dtype=np.float32)
            part += lo
        return out
    full = n // block_size
    rows = max(1, CHUNK // block_size)
    out_blocks = out[: full * block_size].reshape(full, block_size)
    sym_blocks = symbols[: full * block_size].reshape(full, block_size)
    for r0 in range(0, full, rows):
        r1 = min(full, r0 + rows)
        part = out_blocks[r0:r1]
        np.multiply(sym_blocks[r0:r1], steps[r0:r1, None], out=part, dtype=np.float32)
        part += offsets[r0:r1, None]
    if full * block_size < n:
        part = out[full * block_size :]
        np.multiply(symbols[full * block_size :], steps[-1], out=part, dtype=np.float32)
        part += offsets[-1]
    return out
