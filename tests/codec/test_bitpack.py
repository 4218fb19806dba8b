from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfed.codec.bitpack import pack, packed_nbytes, unpack


def reference_stream(symbols: np.ndarray, k: int) -> np.ndarray:
    """MSB-first bit stream, one bit at a time (slow, obviously right)."""
    shifts = np.arange(k - 1, -1, -1, dtype=np.uint32)
    bits = (symbols.astype(np.uint32)[:, None] >> shifts) & 1
    return np.packbits(bits.astype(np.uint8).ravel())


def reference_pack(symbols: np.ndarray, q: int) -> np.ndarray:
    if q <= 8:
        return reference_stream(symbols, q)
    high = reference_stream(symbols.astype(np.uint32) >> 8, q - 8)
    low = (symbols & 0xFF).astype(np.uint8)
    return np.concatenate([high, low])


def symbols_for(q: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1 << q, n).astype(np.uint8 if q <= 8 else np.uint16)


@pytest.mark.parametrize("q", range(1, 17))
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1000, 70_001])
def test_pack_matches_reference_layout_and_round_trips(q: int, n: int) -> None:
    sym = symbols_for(q, n, seed=q * 100 + n)
    packed = pack(sym, q)
    assert packed.dtype == np.uint8
    assert packed.size == packed_nbytes(n, q)
    np.testing.assert_array_equal(packed, reference_pack(sym, q))
    out = unpack(packed, q, n)
    assert out.dtype == sym.dtype
    np.testing.assert_array_equal(out, sym)


def test_packed_size_is_d_q_over_8() -> None:
    assert packed_nbytes(1000, 4) == 500
    assert packed_nbytes(1001, 4) == 501
    assert packed_nbytes(8, 3) == 3
    assert packed_nbytes(10, 12) == 10 + 5  # low-byte plane + 4-bit high plane


def test_all_ones_and_zeros_extremes() -> None:
    for q in range(1, 17):
        top = (1 << q) - 1
        sym = np.full(33, top, dtype=np.uint8 if q <= 8 else np.uint16)
        np.testing.assert_array_equal(unpack(pack(sym, q), q, 33), sym)


@settings(max_examples=60, deadline=None)
@given(q=st.integers(1, 16), n=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_round_trip_property(q: int, n: int, seed: int) -> None:
    sym = symbols_for(q, n, seed)
    np.testing.assert_array_equal(unpack(pack(sym, q), q, n), sym)
