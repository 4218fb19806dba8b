"""Stochastic, unbiased uniform quantization of a whole update to q bits (q in 1..16).

The float tensors of an update are quantized as **one flat sequence** (tensors end to end, in
manifest order, each in C order), so the per-tensor cost of a state dict of many small tensors
is a few Python operations, not a dozen numpy calls each. The sequence is cut into **groups**
(one per tensor, or one per block of ``block_size`` values of a tensor), each with its own grid:
minimum ``lo``, maximum ``hi``, ``L = 2**q - 1`` and ``step ≈ (hi - lo) / L``; a value rounds to
the grid point above with probability equal to its remainder, so ``E[Q(x)] = x`` and
``E[(Q(x) - x)**2] <= step**2 / 4``.

Numerics (float32 throughout, as stored in the frame):

* ``lo`` is the group minimum (exact in float32); ``step`` is ``(hi - lo) / L`` inflated by
  ``2**-20`` relative, then rounded to float32. The inflation guarantees that the scaled value
  ``x' = (x - lo) * (1 / step)`` stays strictly below ``L`` despite float32 rounding, so no
  clipping (and no clipping bias) is ever needed. A constant group has ``step = 0``.
* Rounding: ``f = trunc(x')``, remainder ``r = x' - f`` (exact), ``s = f + (u < r)`` with ``u``
  uniform on the 2**-23 grid in [0, 1). The noise comes from ``SFC64.random_raw``: each 64-bit
  draw gives two 23-bit mantissas turned into floats in [1, 2) by bit operations, about six
  times faster than ``Generator.random(dtype=float32)``. The probability of rounding up is
  therefore ``r`` to within 2**-23, a bias far below float32 resolution of the values.
* The squared error is measured during encoding from the remainders: ``step**2 * sum((b - r)**2)``
  (``b`` the round-up bit), i.e. the error on the grid; decoded values differ from the grid only
  by float32 rounding of ``lo + step * s``.

Work runs in **windows** of at most :data:`CHUNK` values, so every temporary stays in the L2
cache: a window inside one group uses scalar ``lo``/``1/step``; a window of whole groups of one
length (blocks) broadcasts a column of them; a window of whole groups of mixed lengths (small
tensors) expands them with ``np.repeat``. Encoder and decoder derive the same windows from the
manifest (:func:`plan`).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Callable, List, Sequence, Tuple

import numpy as np

from .errors import EncodeInputError

__all__ = ["CHUNK", "Groups", "Quantized", "dequantize", "group_count", "plan", "quantize"]

CHUNK = 1 << 17  # values per window
_INFLATE = 1.0 + 2.0**-20
_MIN_STEP = 2.0**-100  # keeps 1/step finite in float32 for (sub)normal-tiny ranges
_F32_MAX = float(np.finfo(np.float32).max)
SCALAR, ROWS, MIXED = 0, 1, 2  # window kinds
# A group of at least this many values gets windows of its own: merged with its neighbours it
# would be copied (windows across tensors are gathered) for no saving in numpy calls.
_ALONE = 1 << 13
Window = Tuple[int, int, int, int, int]  # start, stop, first group, end group, kind


def group_count(numel: int, block_size: int) -> int:
    """Scale/offset pairs of a tensor: 1 per tensor, or one per block (the last may be short)."""
    if block_size <= 0 or numel == 0:
        return 1
    return (numel + block_size - 1) // block_size


@dataclass(frozen=True)
class Groups:
    """The scale groups of tensors laid end to end, and the windows that cover them.

    ``starts``/``counts``: each group's first value and length in the flat sequence;
    ``tensor_groups[t] : tensor_groups[t + 1]``: the groups of tensor ``t``;
    ``tensor_starts[t] : tensor_starts[t + 1]``: its values; ``windows``: see :func:`plan`.
    """

    starts: np.ndarray
    counts: np.ndarray
    tensor_groups: np.ndarray
    tensor_starts: np.ndarray
    windows: List[Window]

    @property
    def total(self) -> int:
        return int(self.tensor_starts[-1])

    def tensor_of_group(self, group: int) -> int:
        return int(np.searchsorted(self.tensor_groups, group, side="right")) - 1


def plan(numels: Sequence[int], block_size: int) -> Groups:
    """Groups and windows for non-empty tensors of ``numels`` values (block 0: per tensor)."""
    n = np.asarray(numels, dtype=np.int64).reshape(-1)
    tensor_starts = np.zeros(n.size + 1, dtype=np.int64)
    np.cumsum(n, out=tensor_starts[1:])
    if block_size <= 0:
        per_tensor = np.ones(n.size, dtype=np.int64)
        counts = n.copy()
    else:
        per_tensor = (n + block_size - 1) // block_size
        counts = np.full(int(per_tensor.sum()), block_size, dtype=np.int64)
    tensor_groups = np.zeros(n.size + 1, dtype=np.int64)
    np.cumsum(per_tensor, out=tensor_groups[1:])
    if block_size > 0 and n.size:
        counts[tensor_groups[1:] - 1] = n - block_size * (per_tensor - 1)
    starts = np.zeros(counts.size, dtype=np.int64)
    if counts.size:
        np.cumsum(counts[:-1], out=starts[1:])
    return Groups(starts, counts, tensor_groups, tensor_starts, _windows(starts, counts))


def _windows(starts: np.ndarray, counts: np.ndarray) -> List[Window]:
    """Cover the sequence with windows that never cross a multiple of CHUNK (so the decoder can
    unpack one chunk and scale every window in it): a piece of one group (always so for groups
    of _ALONE values or more), or whole consecutive smaller groups (ROWS when they share one
    length, else MIXED)."""
    out: List[Window] = []
    if not counts.size:
        return out
    ends = (starts + counts).tolist()
    first = starts.tolist()
    big = np.flatnonzero(counts >= _ALONE).tolist()
    total = ends[-1]
    pos = 0
    while pos < total:
        limit = min(total, (pos // CHUNK + 1) * CHUNK)
        g = bisect_right(ends, pos)
        if pos > first[g] or ends[g] > limit or ends[g] - first[g] >= _ALONE:
            out.append((pos, min(ends[g], limit), g, g + 1, SCALAR))
        else:
            g1 = bisect_right(ends, limit)
            after = bisect_right(big, g)
            if after < len(big):
                g1 = min(g1, big[after])
            if g1 - g == 1:
                kind = SCALAR
            else:
                part = counts[g:g1]
                kind = ROWS if int(part.min()) == int(part.max()) else MIXED
            out.append((pos, ends[g1 - 1], g, g1, kind))
        pos = out[-1][1]
    return out


@dataclass
class Quantized:
    """Symbols of the whole sequence (uint8 for q <= 8, uint16 above), the float32 grid of every
    group, and per tensor: measured squared error, expected-error bound, max - min."""

    symbols: np.ndarray
    offsets: np.ndarray
    steps: np.ndarray
    sq_error: np.ndarray
    bound: np.ndarray
    value_range: np.ndarray


class _Source:
    """The flat sequence as views of the tensors: a window inside one tensor costs no copy."""

    def __init__(self, arrays: Sequence[np.ndarray], tensor_starts: np.ndarray) -> None:
        self.arrays = arrays
        self.starts = tensor_starts.tolist()

    def values(self, start: int, stop: int) -> np.ndarray:
        t = bisect_right(self.starts, start) - 1
        a = start - self.starts[t]
        if stop <= self.starts[t + 1]:
            return self.arrays[t][a : stop - self.starts[t]]
        parts = [self.arrays[t][a:]]
        t += 1
        while self.starts[t + 1] < stop:
            parts.append(self.arrays[t])
            t += 1
        parts.append(self.arrays[t][: stop - self.starts[t]])
        return np.concatenate(parts)


def _min_max(src: _Source, groups: Groups) -> Tuple[np.ndarray, np.ndarray]:
    """Per-group minimum and maximum, window by window (NaN propagates)."""
    lo = np.empty(groups.counts.size, dtype=np.float32)
    hi = np.empty(groups.counts.size, dtype=np.float32)
    for start, stop, g0, g1, kind in groups.windows:
        x = src.values(start, stop)
        if kind == SCALAR:
            a, b = x.min(), x.max()
            if start == groups.starts[g0]:
                lo[g0], hi[g0] = a, b
            else:  # a later piece of a group larger than a window (NaN propagates)
                lo[g0], hi[g0] = np.minimum(lo[g0], a), np.maximum(hi[g0], b)
        elif kind == ROWS:
            rows = x.reshape(g1 - g0, -1)
            lo[g0:g1] = rows.min(axis=1)
            hi[g0:g1] = rows.max(axis=1)
        else:
            local = groups.starts[g0:g1] - start
            lo[g0:g1] = np.minimum.reduceat(x, local)
            hi[g0:g1] = np.maximum.reduceat(x, local)
    return lo, hi


def _grid(
    lo: np.ndarray, hi: np.ndarray, bits: int, groups: Groups, names: Sequence[str]
) -> Tuple[np.ndarray, np.ndarray]:
    """float32 (offset, step) per group from float32 minima and maxima."""

    def refuse(bad: np.ndarray, why: str) -> None:
        name = names[groups.tensor_of_group(int(np.argmax(bad)))]
        raise EncodeInputError(f"tensor {name!r} {why}; send it with mode='fp32'")

    finite = np.isfinite(lo) & np.isfinite(hi)
    if not finite.all():
        refuse(
            ~finite,
            "holds NaN or infinite values; stochastic quantization needs finite values (check "
            "the update for divergence, or",
        )
    levels = (1 << bits) - 1
    lo64 = lo.astype(np.float64)
    span = hi.astype(np.float64) - lo64
    step64 = span / levels * _INFLATE
    wide = step64 > _F32_MAX / 2
    if wide.any():
        refuse(wide, f"spans {float(span.max()):.3g}, too wide for float32 scales")
    step64 = np.where(span > 0, np.maximum(step64, _MIN_STEP), 0.0)
    top = lo64 + step64 * levels * (1 + 2.0**-20) > _F32_MAX
    if top.any():
        refuse(top, "reaches the float32 maximum")
    steps = step64.astype(np.float32)
    # make sure rounding to float32 did not shrink the step below span / levels
    short = steps.astype(np.float64) * levels < span
    if short.any():
        steps[short] = np.nextafter(steps[short], np.float32(np.inf))
    return lo.astype(np.float32), steps


class _Rounder:
    """Scratch buffers and the noise source for one encode call."""

    def __init__(self, bitgen: np.random.BitGenerator, size: int) -> None:
        self.bitgen = bitgen
        self.scaled = np.empty(min(size, CHUNK), dtype=np.float32)
        self.mask = np.empty(min(size, CHUNK), dtype=np.bool_)

    def round(self, x: np.ndarray, lo: Any, inv: Any, sym: np.ndarray) -> np.ndarray:
        """Quantize ``x`` (float32, any shape) into ``sym`` (same shape); returns the signed
        rounding error ``r - b`` in grid units (a scratch view, valid until the next call)."""
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
        np.subtract(xp, bit, out=xp)
        return xp


def _inverse(steps: np.ndarray) -> np.ndarray:
    inv = np.zeros(steps.shape, dtype=np.float64)
    np.divide(1.0, steps.astype(np.float64), out=inv, where=steps > 0)
    return inv.astype(np.float32)


def quantize(
    arrays: Sequence[np.ndarray],
    names: Sequence[str],
    groups: Groups,
    bits: int,
    bitgen: np.random.BitGenerator,
) -> Quantized:
    """Stochastically quantize non-empty 1-D float32 ``arrays`` (laid out as ``groups``) to
    ``bits`` bits. Raises :class:`EncodeInputError` naming the tensor for NaN/inf values or
    ranges float32 scales cannot hold."""
    src = _Source(arrays, groups.tensor_starts)
    lo, hi = _min_max(src, groups)
    offsets, steps = _grid(lo, hi, bits, groups, names)
    inv = _inverse(steps)
    symbols = np.empty(groups.total, dtype=np.uint8 if bits <= 8 else np.uint16)
    sq_units = np.zeros(steps.size, dtype=np.float64)
    rounder = _Rounder(bitgen, groups.total)
    lo_list, inv_list = offsets.tolist(), inv.tolist()
    for start, stop, g0, g1, kind in groups.windows:
        x = src.values(start, stop)
        sym = symbols[start:stop]
        if kind == SCALAR:
            err = rounder.round(x, np.float32(lo_list[g0]), np.float32(inv_list[g0]), sym)
            sq_units[g0] += float(np.dot(err, err))
        elif kind == ROWS:
            shape = (g1 - g0, (stop - start) // (g1 - g0))
            err = rounder.round(
                x.reshape(shape), offsets[g0:g1, None], inv[g0:g1, None], sym.reshape(shape)
            )
            sq_units[g0:g1] += np.einsum("ij,ij->i", err, err)
        else:
            counts = groups.counts[g0:g1]
            err = rounder.round(
                x, np.repeat(offsets[g0:g1], counts), np.repeat(inv[g0:g1], counts), sym
            )
            np.multiply(err, err, out=err)
            sq_units[g0:g1] += np.add.reduceat(err, groups.starts[g0:g1] - start)
    step2 = steps.astype(np.float64) ** 2
    per_tensor = groups.tensor_groups[:-1]
    return Quantized(
        symbols,
        offsets,
        steps,
        np.add.reduceat(sq_units * step2, per_tensor) if per_tensor.size else sq_units,
        np.add.reduceat(groups.counts * step2, per_tensor) / 4.0 if per_tensor.size else sq_units,
        (
            np.maximum.reduceat(hi.astype(np.float64), per_tensor)
            - np.minimum.reduceat(lo.astype(np.float64), per_tensor)
            if per_tensor.size
            else sq_units
        ),
    )


def dequantize(
    symbols: Callable[[int, int], np.ndarray],
    offsets: np.ndarray,
    steps: np.ndarray,
    groups: Groups,
    out: np.ndarray,
) -> np.ndarray:
    """float32 values ``offset + step * symbol`` per group into ``out`` (the inverse grid of
    :func:`quantize`). ``symbols(start, stop)`` returns the symbols of one chunk (``start`` a
    multiple of CHUNK); ``offsets``/``steps`` hold one entry per group (the decoder checks).

    Chunk by chunk, so the symbols and the values stay in cache: the symbols are cast to
    float32 into ``out``, then every window of the chunk is scaled and shifted in place (the
    same float32 products as ``multiply(symbol, step, dtype=float32)``).
    """
    lo_list, step_list = offsets.tolist(), steps.tolist()
    windows = groups.windows
    w = 0
    for c0 in range(0, groups.total, CHUNK):
        c1 = min(groups.total, c0 + CHUNK)
        np.copyto(out[c0:c1], symbols(c0, c1))
        while w < len(windows) and windows[w][0] < c1:
            start, stop, g0, g1, kind = windows[w]
            w += 1
            part = out[start:stop]
            if kind == SCALAR:
                part *= np.float32(step_list[g0])
                part += np.float32(lo_list[g0])
            elif kind == ROWS:
                rows = part.reshape(g1 - g0, -1)
                rows *= steps[g0:g1, None]
                rows += offsets[g0:g1, None]
            else:
                counts = groups.counts[g0:g1]
                part *= np.repeat(steps[g0:g1], counts)
                part += np.repeat(offsets[g0:g1], counts)
    return out
