from __future__ import annotations

import math

import numpy as np
import pytest

from greenfed.codec import CodecConfig, EncodeInputError, decode, encode

from .frames import LIMITS


def test_unbiased_over_many_encodings() -> None:
    """Mean of K decodings converges to the input.

    Each decoded value is x + e with E[e] = 0 (if unbiased) and Var[e] <= Δ²/4, independent
    across encodings. Over K encodings the per-value mean error has standard deviation at most
    Δ/(2√K), the grand mean over n values at most Δ/(2√(nK)). Tolerances: 6 standard deviations
    per value (union over n values: false alarm < 1e-5) and 5 for the grand mean. A rounder with
    a constant bias of 0.05 Δ (e.g. round-to-nearest on these values) would fail both.
    """
    rng = np.random.default_rng(7)
    n, k_runs, bits = 512, 400, 2
    x = rng.uniform(-1.0, 1.0, n).astype(np.float32)
    x[0], x[1] = -1.0, 1.0  # pin the range: Δ = 2/3
    delta = 2.0 / ((1 << bits) - 1)
    total = np.zeros(n, dtype=np.float64)
    for k in range(k_runs):
        res = encode({"x": x}, CodecConfig(bits=bits, seed=k))
        total += decode(res.frame, **LIMITS)["x"]
    mean_err = total / k_runs - x
    per_value_tol = 6 * delta / (2 * math.sqrt(k_runs))
    grand_tol = 5 * delta / (2 * math.sqrt(n * k_runs))
    assert per_value_tol < 0.2 * delta and grand_tol < 0.05 * delta  # the test can see a bias
    assert np.max(np.abs(mean_err)) < per_value_tol
    assert abs(float(mean_err.mean())) < grand_tol
    # and not a tautology: decoded values really are on the 4-level grid, not the input
    one = decode(encode({"x": x}, CodecConfig(bits=bits, seed=0)).frame, **LIMITS)["x"]
    levels = np.round((one + 1.0) / delta, 4)
    assert set(np.unique(levels)) <= {0.0, 1.0, 2.0, 3.0}


@pytest.mark.parametrize("bits", range(1, 17))
@pytest.mark.parametrize("block_size", [None, 256])
def test_error_under_bound_and_reported_exactly(bits: int, block_size: int) -> None:
    rng = np.random.default_rng(bits)
    x = (rng.standard_normal(5000) * 0.03 + 0.01).astype(np.float32)
    res = encode({"w": x}, CodecConfig(bits=bits, block_size=block_size, seed=bits))
    out = decode(res.frame, **LIMITS)["w"]
    err = out.astype(np.float64) - x
    measured = float(np.dot(err, err))
    stats = res.tensor_stats["w"]
    delta = (float(x.max()) - float(x.min())) / ((1 << bits) - 1)
    assert stats.numel == 5000
    assert stats.range == pytest.approx(float(x.max()) - float(x.min()))
    if block_size is None:
        assert stats.bound == pytest.approx(5000 * delta**2 / 4, rel=1e-5)
    else:
        assert stats.bound <= 5000 * delta**2 / 4 * (1 + 1e-5)  # blocks: smaller ranges
    assert measured <= stats.bound
    assert np.max(np.abs(err)) <= delta * (1 + 1e-5) + 1e-7
    # the reported error is the grid error; float32 rounding of lo + step*s is tiny next to it
    assert stats.sq_error == pytest.approx(measured, rel=1e-3 if bits < 14 else 3e-2)
    assert res.total_sq_error == stats.sq_error and res.total_bound == stats.bound


def test_blocks_lower_the_error_for_mixed_scales() -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_normal(4096) * 1e-3, rng.standard_normal(4096)])
    x = x.astype(np.float32)
    per_tensor = encode({"w": x}, CodecConfig(bits=4, seed=0)).total_sq_error
    per_block = encode({"w": x}, CodecConfig(bits=4, block_size=4096, seed=0)).total_sq_error
    assert per_block < 0.6 * per_tensor


def test_seed_reproducible_and_default_random() -> None:
    x = np.linspace(-1, 1, 1001, dtype=np.float32)
    a = encode({"x": x}, CodecConfig(bits=3, seed=5))
    b = encode({"x": x}, CodecConfig(bits=3, seed=5))
    c = encode({"x": x}, CodecConfig(bits=3))
    d = encode({"x": x}, CodecConfig(bits=3))
    assert a.frame == b.frame and a.sha256 == b.sha256
    assert c.frame != d.frame


def test_constant_and_extreme_tensors() -> None:
    sd = {
        "const": np.full(100, 3.25, dtype=np.float32),
        "tiny": np.array([0.0, 1e-42, 2e-42], dtype=np.float32),  # subnormal range
        "wide": np.array([-5e37, 5e37], dtype=np.float32),
    }
    for bits in (1, 8, 16):
        res = encode(sd, CodecConfig(bits=bits, seed=0))
        out = decode(res.frame, **LIMITS)
        np.testing.assert_array_equal(out["const"], sd["const"])
        assert res.tensor_stats["const"].sq_error == 0.0
        for name in ("tiny", "wide"):
            assert np.all(np.isfinite(out[name]))
            # the grid's step is inflated by 2**-20 so the top level may pass max by that much
            lo, hi = float(sd[name].min()), float(sd[name].max())
            slack = (hi - lo) * 2.0**-19
            assert np.all(out[name] >= lo) and np.all(out[name] <= hi + slack)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused_with_advice(bad: float) -> None:
    x = np.array([0.0, bad, 1.0], dtype=np.float32)
    with pytest.raises(EncodeInputError, match="fp32"):
        encode({"x": x}, CodecConfig(bits=4))
    with pytest.raises(EncodeInputError):
        encode({"x": x}, CodecConfig(bits=4, block_size=2))
    exact = decode(encode({"x": x}, CodecConfig(mode="fp32")).frame, **LIMITS)["x"]
    np.testing.assert_array_equal(exact, x)
