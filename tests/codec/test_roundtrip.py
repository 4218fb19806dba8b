from __future__ import annotations

from typing import Dict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from greenfed.codec import (
    CodecConfig,
    ConfigError,
    EncodeInputError,
    FrameDecoder,
    decode,
    encode,
    frame_size,
    header_bytes,
    iter_chunks,
)

from .frames import LIMITS, small_state

ALL_DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
              "float16", "float32", "float64"]  # fmt: skip


def mixed_state() -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    sd: Dict[str, np.ndarray] = {}
    for i, name in enumerate(ALL_DTYPES):
        dt = np.dtype(name)
        if dt.kind == "f":
            sd[f"t{i}.{name}"] = rng.standard_normal((3, 5)).astype(dt)
        elif dt.kind == "b":
            sd[f"t{i}.{name}"] = rng.integers(0, 2, (2, 7)).astype(bool)
        else:
            info = np.iinfo(dt)
            sd[f"t{i}.{name}"] = rng.integers(info.min, info.max, (4,), dtype=dt, endpoint=True)
    sd["scalar"] = np.array(2.5, dtype=np.float32)
    sd["empty"] = np.zeros((0, 3), dtype=np.float32)
    sd["ünïcode name/∆"] = np.arange(6, dtype=np.int32).reshape(2, 3)
    sd["fortran"] = np.asfortranarray(rng.standard_normal((4, 6)).astype(np.float32))
    sd["big-endian"] = np.arange(5, dtype=">i4")
    return sd


@pytest.mark.parametrize("zstd_level", [None, 1, 3])
def test_fp32_mode_is_exact_for_every_dtype(zstd_level: int) -> None:
    sd = mixed_state()
    res = encode(sd, CodecConfig(mode="fp32", zstd_level=zstd_level))
    out = decode(res.frame, **LIMITS)
    assert list(out) == list(sd)
    for name, value in sd.items():
        assert out[name].shape == value.shape
        assert out[name].dtype == value.dtype.newbyteorder("=")
        np.testing.assert_array_equal(out[name], value)
        assert out[name].flags.writeable
    assert res.total_sq_error == 0.0 and res.total_bound == 0.0
    assert res.raw_bytes == sum(v.nbytes for v in sd.values())
    assert res.frame_bytes == len(res.frame)


def test_stochastic_mode_keeps_integers_exact_and_float_dtypes() -> None:
    sd = mixed_state()
    out = decode(encode(sd, CodecConfig(bits=6, seed=0)).frame, **LIMITS)
    for name, value in sd.items():
        assert out[name].dtype == value.dtype.newbyteorder("=") and out[name].shape == value.shape
        if value.dtype.kind != "f":
            np.testing.assert_array_equal(out[name], value)


def test_fp16_mode_rounds_to_nearest_half() -> None:
    sd = small_state()
    res = encode(sd, CodecConfig(mode="fp16"))
    out = decode(res.frame, **LIMITS)
    for name, value in sd.items():
        if value.dtype.kind == "f":
            expect = value.astype(np.float16).astype(value.dtype)
            np.testing.assert_array_equal(out[name], expect)
            assert res.tensor_stats[name].encoding == "fp16"
            assert res.tensor_stats[name].sq_error <= res.tensor_stats[name].bound
        else:
            np.testing.assert_array_equal(out[name], value)
    assert 0 < res.total_sq_error <= res.total_bound
    with pytest.raises(EncodeInputError, match="float16 range"):
        encode({"x": np.array([1e6], dtype=np.float32)}, CodecConfig(mode="fp16"))


def test_chunks_and_incremental_decoder_agree_with_decode() -> None:
    sd = small_state()
    res = encode(sd, CodecConfig(bits=5, block_size=7, seed=3))
    chunks = list(iter_chunks(res.frame, chunk_size=13))
    assert all(len(c) <= 13 for c in chunks) and b"".join(chunks) == res.frame
    assert len(list(iter_chunks(res.frame))) == 1  # default 1 MiB
    dec = FrameDecoder(**LIMITS, expected_sha256=res.sha256)
    for c in chunks:
        dec.feed(c)
    assert dec.received_bytes == dec.expected_bytes == len(res.frame)
    out = dec.finish()
    assert dec.sha256 == res.sha256
    ref = decode(res.frame, **LIMITS)
    for name in sd:
        np.testing.assert_array_equal(out[name], ref[name])
    with pytest.raises(ConfigError):
        list(iter_chunks(res.frame, chunk_size=0))


def test_sha256_is_of_the_whole_frame() -> None:
    import hashlib

    res = encode(small_state(), CodecConfig(bits=4, seed=0))
    assert res.sha256 == hashlib.sha256(res.frame).hexdigest()


@pytest.mark.parametrize("bits", [1, 4, 8, 13, 16])
@pytest.mark.parametrize("block_size", [None, 3, 64])
def test_frame_size_estimate_is_exact_when_stored(bits: int, block_size: int) -> None:
    sd = small_state()
    shapes = {k: v.shape for k, v in sd.items() if v.dtype.kind == "f"}
    floats = {k: v for k, v in sd.items() if v.dtype.kind == "f"}
    cfg = CodecConfig(bits=bits, block_size=block_size, zstd_level=None, seed=0)
    res = encode(floats, cfg)
    assert frame_size(shapes, bits, block_size) == res.frame_bytes
    assert header_bytes(shapes, bits, block_size) == res.frame_bytes - res.packed_bytes
    # by element counts only: 16-byte names assumed; S(q) grows by d/8 per bit
    d = sum(v.size for v in floats.values())
    by_count = [v.size for v in floats.values()]
    assert frame_size(by_count, 9, block_size) - frame_size(by_count, 8, block_size) >= d // 8


def test_bad_config_is_refused() -> None:
    for kwargs in ({"bits": 0}, {"bits": 17}, {"mode": "int4"}, {"block_size": -1},
                   {"zstd_level": 23}, {"seed": -1}, {"bits": True}):  # fmt: skip
        with pytest.raises(ConfigError):
            CodecConfig(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(EncodeInputError, match="dtype"):
        encode({"c": np.zeros(2, dtype=np.complex64)}, CodecConfig())
    with pytest.raises(EncodeInputError, match="str"):
        encode({1: np.zeros(2)}, CodecConfig())  # type: ignore[dict-item]


float_dtypes = st.sampled_from([np.float16, np.float32, np.float64])
any_dtypes = st.sampled_from([np.dtype(d) for d in ALL_DTYPES])


@st.composite
def tensors(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(any_dtypes)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9))
    if dtype.kind == "f":
        elements = st.floats(-1e4, 1e4, allow_nan=False, width=min(32, 8 * dtype.itemsize))
    elif dtype.kind == "b":
        elements = st.booleans()
    else:
        elements = None
    return draw(hnp.arrays(dtype, shape, elements=elements))


@settings(max_examples=120, deadline=None)
@given(
    sd=st.dictionaries(st.text(min_size=1, max_size=12), tensors(), min_size=0, max_size=4),
    bits=st.integers(1, 16),
    block=st.one_of(st.none(), st.integers(1, 40)),
    mode=st.sampled_from(["stochastic", "stochastic", "fp32", "fp16"]),
    level=st.sampled_from([None, 1, 3]),
)
def test_round_trip_property(
    sd: Dict[str, np.ndarray], bits: int, block: int, mode: str, level: int
) -> None:
    cfg = CodecConfig(mode=mode, bits=bits, block_size=block, zstd_level=level, seed=0)
    if mode == "fp16" and any(
        v.dtype.kind == "f" and v.size and np.abs(v.astype(np.float64)).max() > 65504
        for v in sd.values()
    ):
        return  # covered by test_fp16_mode_rounds_to_nearest_half
    res = encode(sd, cfg)
    template = {k: (v.shape, v.dtype) for k, v in sd.items()}
    out = decode(res.frame, **LIMITS, template=template, expected_sha256=res.sha256)
    assert list(out) == list(sd)
    for name, value in sd.items():
        got = out[name]
        assert got.shape == value.shape and got.dtype == value.dtype
        stats = res.tensor_stats[name]
        if value.dtype.kind != "f" or mode == "fp32" or value.size == 0:
            np.testing.assert_array_equal(got, value)
            continue
        x = value.astype(np.float64)
        err = np.abs(got.astype(np.float64) - x)
        if mode == "fp16":
            assert np.all(err <= np.spacing(np.abs(x).astype(np.float16)).astype(np.float64))
            continue
        span = float(x.max() - x.min())
        step = span / ((1 << bits) - 1) * (1 + 2**-19)
        out_ulp = np.spacing(np.abs(x).max().astype(value.dtype)).astype(np.float64)
        assert np.all(err <= step + 2 * out_ulp + 1e-30)
        # each error is at most one step, so the sum is at most 4x the (expected-error) bound
        assert stats.sq_error <= 4 * stats.bound * (1 + 1e-5) + 1e-30
