"""Vectorised packing of the q-bit symbols of a whole update into bytes, for every q in 1..16.

Two layouts (the frame's manifest says which; see docs/codec.md):

* ``DENSE`` (stored payloads): for ``q <= 8`` one MSB-first bit stream, symbol 0 in the top
  ``q`` bits of byte 0, the last byte zero-padded: ``ceil(n * q / 8)`` bytes.
* ``ALIGNED`` (zstd payloads): for ``q <= 8``, ``m = 8 // q`` whole symbols per byte, the first
  in the high bits (``byte = s0 << q*(m-1) | ... | s_{m-1}``): ``ceil(n / m)`` bytes. No symbol
  straddles a byte, so zstd's byte-wise Huffman stage sees one symbol (or one fixed tuple of
  symbols) per code unit and lands near the entropy for every q. For q = 1, 2, 4, 8 it is the
  same bytes as ``DENSE``; q = 3 puts two symbols in the low six bits; q = 5, 6, 7 one per byte.
* ``q > 8``, both layouts: the **top plane**, one byte per symbol (``s >> (q - 8)``), then the
  **low bits** (``s & (2**(q-8) - 1)``) as a ``q - 8``-bit MSB-first stream:
  ``n + ceil(n * (q - 8) / 8)`` bytes. The top byte carries the shape of the distribution (zstd
  codes it near its entropy); the low bits of a smooth distribution are close to uniform, so
  storing them densely loses next to nothing.

How: eight symbols of ``k <= 8`` bits make exactly ``k`` bytes. The eight uint8 symbols are read as
one little-endian uint64 and merged pairwise in three SWAR steps (16-, 32-, 64-bit lanes), giving
the 8k-bit group value; its big-endian bytes, minus the ``8 - k`` leading zero bytes, are the
packed group. Unpacking runs the same steps backwards. ``k == 1`` uses ``np.packbits`` and
``k == 8`` is a copy. Every step is a numpy ufunc over whole arrays; no Python loop per symbol.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ALIGNED", "DENSE", "LAYOUTS", "pack", "packed_nbytes", "unpack", "unpack_chunk"]

DENSE, ALIGNED = 0, 1
LAYOUTS = (DENSE, ALIGNED)

_M16 = np.uint64(0x00FF00FF00FF00FF)
_M32 = np.uint64(0x0000FFFF0000FFFF)
_M64 = np.uint64(0x00000000FFFFFFFF)


def _stream_nbytes(n: int, k: int) -> int:
    return (n * k + 7) // 8


def _lane_mask(width: int, lane: int) -> np.uint64:
    """A uint64 with the low ``width`` bits of every ``lane``-bit lane set."""
    one = (1 << width) - 1
    value = 0
    for shift in range(0, 64, lane):
        value |= one << shift
    return np.uint64(value)


def _pack_stream(sym: np.ndarray, k: int) -> np.ndarray:
    """Pack uint8 symbols (each < 2**k) into an MSB-first bit stream of ``k`` bits per symbol."""
    n = sym.size
    if k == 8:
        return np.array(sym, dtype=np.uint8)
    if k == 1:
        return np.packbits(sym)
    groups = (n + 7) // 8
    if n % 8:
        padded = np.zeros(groups * 8, dtype=np.uint8)
        padded[:n] = sym
        sym = padded
    sym = np.ascontiguousarray(sym, dtype=np.uint8)
    if k == 4:  # byte = s0 << 4 | s1, from little-endian uint16 pairs
        w = sym.view("<u2")
        t = w << np.uint16(4)
        t |= w >> np.uint16(8)
        return t.astype(np.uint8)[: _stream_nbytes(n, k)]
    if k == 2:  # byte = s0 << 6 | s1 << 4 | s2 << 2 | s3, from little-endian uint32 quads
        w = sym.view("<u4")
        t = w << np.uint32(6)
        t |= w >> np.uint32(4)
        t |= w >> np.uint32(14)
        t |= w >> np.uint32(24)
        return t.astype(np.uint8)[: _stream_nbytes(n, k)]
    v = sym.view("<u8")
    sk = np.uint64(k)
    # 16-bit lanes: s0 << k | s1
    t = v & _M16
    t <<= sk
    v = v >> np.uint64(8)
    v &= _M16
    v |= t
    # 32-bit lanes: (s0 s1) << 2k | (s2 s3)
    t = v & _M32
    t <<= np.uint64(2 * k)
    v >>= np.uint64(16)
    v &= _M32
    v |= t
    # 64-bit: (s0..s3) << 4k | (s4..s7): 8k bits, symbol 0 most significant
    t = v & _M64
    t <<= np.uint64(4 * k)
    v >>= np.uint64(32)
    v |= t
    be = v.astype(">u8").view(np.uint8).reshape(groups, 8)
    out = np.ascontiguousarray(be[:, 8 - k :]).reshape(-1)
    return out[: _stream_nbytes(n, k)]


def _unpack_stream(buf: np.ndarray, k: int, n: int) -> np.ndarray:
    """Inverse of :func:`_pack_stream`: ``n`` uint8 symbols from a ``k``-bit stream."""
    if k == 8:
        return np.array(buf[:n], dtype=np.uint8)
    if k == 1:
        return np.unpackbits(buf, count=n)
    if k == 4:  # little-endian uint16 lanes: (byte >> 4) | (byte & 0xF) << 8
        w = buf[: _stream_nbytes(n, k)].astype(np.uint16)
        out16 = w >> np.uint16(4)
        w &= np.uint16(0xF)
        w <<= np.uint16(8)
        out16 |= w
        return out16.view(np.uint8)[:n]
    if k == 2:  # little-endian uint32 lanes, one byte per symbol
        w = buf[: _stream_nbytes(n, k)].astype(np.uint32)
        out32 = w >> np.uint32(6)
        for shift, lane in ((4, 8), (2, 16), (0, 24)):
            t = w >> np.uint32(shift)
            t &= np.uint32(3)
            t <<= np.uint32(lane)
            out32 |= t
        return out32.view(np.uint8)[:n]
    groups = (n + 7) // 8
    grid = np.zeros((groups, 8), dtype=np.uint8)
    flat = grid[:, 8 - k :]
    nbytes = _stream_nbytes(n, k)
    if nbytes == groups * k:
        flat[...] = buf[:nbytes].reshape(groups, k)
    else:  # the last group is short: copy byte by byte into the zero-padded grid
        tmp = np.zeros(groups * k, dtype=np.uint8)
        tmp[:nbytes] = buf[:nbytes]
        flat[...] = tmp.reshape(groups, k)
    g = grid.view(">u8").reshape(-1).astype("<u8")
    # 32-bit lanes: lane 0 = first four symbols (the high 4k bits)
    m = np.uint64((1 << (4 * k)) - 1)
    t = g & m
    t <<= np.uint64(32)
    g >>= np.uint64(4 * k)
    g |= t
    # 16-bit lanes
    m = _lane_mask(2 * k, 32)
    t = g & m
    t <<= np.uint64(16)
    g >>= np.uint64(2 * k)
    g &= m
    g |= t
    # 8-bit lanes
    m = _lane_mask(k, 16)
    t = g & m
    t <<= np.uint64(8)
    g >>= np.uint64(k)
    g &= m
    g |= t
    return g.view(np.uint8)[:n]


_CHUNK = 1 << 16  # symbols per step: keeps the temporaries in L2 cache


def _pack_stream_chunked(sym: np.ndarray, k: int, out: np.ndarray) -> None:
    n = sym.size
    if k == 8:
        out[...] = sym
        return
    if k == 1 or n <= _CHUNK:
        out[...] = _pack_stream(sym, k)
        return
    step_bytes = _CHUNK * k // 8
    for i, start in enumerate(range(0, n, _CHUNK)):
        part = _pack_stream(sym[start : start + _CHUNK], k)
        out[i * step_bytes : i * step_bytes + part.size] = part


def packed_nbytes(n: int, bits: int, layout: int = DENSE) -> int:
    """Bytes that ``n`` symbols of ``bits`` bits take once packed (see the module layout)."""
    if bits > 8:
        return n + _stream_nbytes(n, bits - 8)
    if layout == ALIGNED:
        per_byte = 8 // bits
        return (n + per_byte - 1) // per_byte
    return _stream_nbytes(n, bits)


def _aligned_kind(bits: int) -> int:
    """How ALIGNED packs ``bits <= 8``: as the dense stream (q = 1, 2, 4, 8), in pairs of
    3-bit symbols (q = 3), or one symbol per byte (q = 5, 6, 7: returned as 8)."""
    return 3 if bits == 3 else (bits if 8 % bits == 0 else 8)


def _pack_pairs3(sym: np.ndarray) -> np.ndarray:
    """byte = s0 << 3 | s1, from little-endian uint16 pairs (3-bit symbols)."""
    n = sym.size
    if n % 2:
        sym = np.concatenate([sym, np.zeros(1, dtype=np.uint8)])
    w = np.ascontiguousarray(sym, dtype=np.uint8).view("<u2")
    t = w << np.uint16(3)
    t |= w >> np.uint16(8)
    return t.astype(np.uint8)


def _unpack_pairs3(buf: np.ndarray, n: int) -> np.ndarray:
    w = buf[: (n + 1) // 2].astype(np.uint16)
    out16 = w >> np.uint16(3)
    w &= np.uint16(7)
    w <<= np.uint16(8)
    out16 |= w
    return out16.view(np.uint8)[:n]


def _pack_small(sym: np.ndarray, bits: int, layout: int, out: np.ndarray) -> None:
    k = _aligned_kind(bits) if layout == ALIGNED else bits
    if k == 3 and layout == ALIGNED:
        for start in range(0, sym.size, _CHUNK):
            part = _pack_pairs3(sym[start : start + _CHUNK])
            out[start // 2 : start // 2 + part.size] = part
    else:
        _pack_stream_chunked(sym, k, out)


def pack(symbols: np.ndarray, bits: int, layout: int = DENSE) -> np.ndarray:
    """Pack symbols (uint8 for ``bits <= 8``, uint16 above; each ``< 2**bits``) into bytes.

    Returns a uint8 array of :func:`packed_nbytes` bytes. Values at or above ``2**bits`` are
    not checked (the quantizer never produces them) and corrupt their neighbours.
    """
    sym = np.asarray(symbols).reshape(-1)
    n = sym.size
    out = np.empty(packed_nbytes(n, bits, layout), dtype=np.uint8)
    if bits <= 8:
        _pack_small(sym.astype(np.uint8, copy=False), bits, layout, out)
        return out
    k = bits - 8
    top, low = out[:n], out[n:]
    scratch = np.empty(min(n, _CHUNK), dtype=np.uint16)
    mask = np.uint8((1 << k) - 1)
    for start in range(0, n, _CHUNK):
        part = sym[start : start + _CHUNK]
        shifted = scratch[: part.size]
        np.right_shift(part, np.uint16(k), out=shifted)
        top[start : start + part.size] = shifted
    lows = sym.astype(np.uint8)  # the low byte; the top bits are masked off next
    if k < 8:
        lows &= mask
    _pack_stream_chunked(lows, k, low)
    return out


def unpack_chunk(
    packed: np.ndarray, bits: int, n: int, layout: int, start: int, count: int
) -> np.ndarray:
    """Symbols ``start .. start + count`` of the ``n`` that ``packed`` holds; ``start`` must be a
    multiple of 8 (every layout puts such a symbol at a byte boundary)."""
    if bits > 8:
        k = bits - 8
        low = _unpack_stream(packed[n + start * k // 8 :], k, count)
        out = np.left_shift(packed[start : start + count], np.uint16(k), dtype=np.uint16)
        out |= low
        return out
    if layout == ALIGNED:
        k = _aligned_kind(bits)
        if k == 3:
            return _unpack_pairs3(packed[start // 2 :], count)
        if k == 8:
            return packed[start : start + count]
    else:
        k = bits
    return _unpack_stream(packed[start * k // 8 :], k, count)


def unpack(packed: np.ndarray, bits: int, n: int, layout: int = DENSE) -> np.ndarray:
    """Inverse of :func:`pack`: ``n`` symbols (uint8 or uint16) from ``packed_nbytes(n, bits,
    layout)`` bytes. The caller guarantees the length (the frame decoder checks it first)."""
    buf = np.asarray(packed, dtype=np.uint8).reshape(-1)
    out = np.empty(n, dtype=np.uint8 if bits <= 8 else np.uint16)
    for start in range(0, n, _CHUNK):
        count = min(_CHUNK, n - start)
        out[start : start + count] = unpack_chunk(buf, bits, n, layout, start, count)
    return out
