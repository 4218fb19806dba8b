from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfed.codec.bitpack import ALIGNED, DENSE, pack, packed_nbytes, unpack


def reference_stream(symbols: np.ndarray, k: int) -> np.ndarray:
    """MSB-first bit stream, one bit at a time (slow, obviously right)."""
    shifts = np.arange(k - 1, -1, -1, dtype=np.uint32)
    bits = (symbols.astype(np.uint32)[:, None] >> shifts) & 1
    return np.packbits(bits.astype(np.uint8).ravel())


def reference_tuples(symbols: np.ndarray, q: int) -> np.ndarray:
    """m = 8 // q whole symbols per byte, the first in the high bits, the last byte padded."""
    m = 8 // q
    padded = np.zeros(-(-symbols.size // m) * m, dtype=np.uint32)
    padded[: symbols.size] = symbols
    rows = padded.reshape(-1, m)
    out = np.zeros(rows.shape[0], dtype=np.uint32)
    for i in range(m):
        out = (out << q) | rows[:, i]
    return out.astype(np.uint8)


def reference_pack(symbols: np.ndarray, q: int, layout: int) -> np.ndarray:
    if q <= 8:
        return reference_tuples(symbols, q) if layout == ALIGNED else reference_stream(symbols, q)
    top = (symbols.astype(np.uint32) >> (q - 8)).astype(np.uint8)
    low = reference_stream(symbols.astype(np.uint32) & ((1 << (q - 8)) - 1), q - 8)
    return np.concatenate([top, low])


def symbols_for(q: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1 << q, n).astype(np.uint8 if q <= 8 else np.uint16)


@pytest.mark.parametrize("layout", [DENSE, ALIGNED])
@pytest.mark.parametrize("q", range(1, 17))
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1000, 70_001, 131_075])
def test_pack_matches_reference_layout_and_round_trips(layout: int, q: int, n: int) -> None:
    sym = symbols_for(q, n, seed=q * 100 + n)
    packed = pack(sym, q, layout)
    assert packed.dtype == np.uint8
    assert packed.size == packed_nbytes(n, q, layout)
    np.testing.assert_array_equal(packed, reference_pack(sym, q, layout))
    out = unpack(packed, q, n, layout)
    assert out.dtype == sym.dtype
    np.testing.assert_array_equal(out, sym)


def test_packed_sizes() -> None:
    assert packed_nbytes(1000, 4) == 500
    assert packed_nbytes(1001, 4) == 501
    assert packed_nbytes(8, 3) == 3
    assert packed_nbytes(10, 12) == 10 + 5  # top-byte plane + 4-bit low stream
    # aligned: whole symbols per byte (q = 3: two; 5..7: one), the same as dense elsewhere
    assert packed_nbytes(9, 3, ALIGNED) == 5
    assert packed_nbytes(9, 5, ALIGNED) == 9
    for q in (1, 2, 4, 8, 9, 12, 16):
        assert packed_nbytes(1001, q, ALIGNED) == packed_nbytes(1001, q, DENSE)


def test_all_ones_and_zeros_extremes() -> None:
    for layout in (DENSE, ALIGNED):
        for q in range(1, 17):
            top = (1 << q) - 1
            sym = np.full(33, top, dtype=np.uint8 if q <= 8 else np.uint16)
            np.testing.assert_array_equal(unpack(pack(sym, q, layout), q, 33, layout), sym)


@settings(max_examples=60, deadline=None)
@given(
    q=st.integers(1, 16),
    n=st.integers(0, 300),
    seed=st.integers(0, 2**32 - 1),
    layout=st.sampled_from([DENSE, ALIGNED]),
)
def test_round_trip_property(q: int, n: int, seed: int, layout: int) -> None:
    sym = symbols_for(q, n, seed)
    np.testing.assert_array_equal(unpack(pack(sym, q, layout), q, n, layout), sym)
