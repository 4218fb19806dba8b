"""Schedule: golden values (seeded), each checked against an independent closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from greenfed.ddpm.schedule import (
    NoiseSchedule,
    ScheduleConfig,
    ScheduleError,
    denoise,
    from_uint8,
    to_uint8,
)


def test_linear_golden_and_closed_form() -> None:
    s = NoiseSchedule(200, "linear")
    # Golden values, computed once from this implementation ...
    assert s.betas[0] == pytest.approx(5e-4, rel=1e-12)
    assert s.betas[-1] == pytest.approx(0.1, rel=1e-12)
    assert s.alphas_cumprod[-1] == pytest.approx(3.0318371672319075e-05, rel=1e-9)
    assert s.alphas_cumprod[99] == pytest.approx(0.07665890493502028, rel=1e-9)
    # ... and against the product written out in plain Python (betas scaled by 1000/T).
    betas = [5e-4 + (0.1 - 5e-4) * i / 199 for i in range(200)]
    assert s.alphas_cumprod[-1] == pytest.approx(math.prod(1 - b for b in betas), rel=1e-12)
    assert s.alphas_cumprod[99] == pytest.approx(math.prod(1 - b for b in betas[:100]), rel=1e-12)


def test_cosine_golden_and_closed_form() -> None:
    s = NoiseSchedule(200, "cosine")
    assert s.alphas_cumprod[99] == pytest.approx(0.4938435904406378, rel=1e-9)
    assert s.betas[-1] == pytest.approx(0.999)  # clipped, as Nichol & Dhariwal do
    assert s.alphas_cumprod[-1] == pytest.approx(6.071799308549566e-08, rel=1e-6)

    def f(t: float) -> float:
        return math.cos((t / 200 + 0.008) / 1.008 * math.pi / 2) ** 2

    for t in (0, 10, 99, 150):  # unclipped region: abar after t+1 steps = f(t+1)/f(0)
        assert s.alphas_cumprod[t] == pytest.approx(f(t + 1) / f(0), rel=1e-10)


def test_add_noise_golden_numpy_and_torch_agree() -> None:
    s = NoiseSchedule(200, "cosine")
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, (2, 1, 2, 2)).astype(np.float32)
    eps = rng.standard_normal((2, 1, 2, 2)).astype(np.float32)
    t = np.array([10, 150])
    out = s.add_noise(x0, eps, t)
    golden = [0.20420226, -0.58128041, -0.97430348, -0.95834541,
              -1.92414260, 0.10455938, -1.07672203, -0.50850850]  # fmt: skip
    np.testing.assert_allclose(out.ravel(), golden, rtol=1e-6)
    for i, ti in enumerate(t):  # the formula itself
        ab = s.alphas_cumprod[ti]
        np.testing.assert_allclose(
            out[i], math.sqrt(ab) * x0[i] + math.sqrt(1 - ab) * eps[i], rtol=1e-6
        )
    out_t = s.add_noise(torch.from_numpy(x0), torch.from_numpy(eps), torch.from_numpy(t))
    np.testing.assert_allclose(out_t.numpy(), out, rtol=1e-6)


def test_ddpm_step_is_the_posterior_mean_of_ho_et_al() -> None:
    s = NoiseSchedule(100, "linear", clip_sample=False)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 1, 4, 4))
    eps = rng.standard_normal((3, 1, 4, 4))
    for t in (99, 50, 1):
        b, a, ab = s.betas[t], s.alphas[t], s.alphas_cumprod[t]
        mu = (x - b / math.sqrt(1 - ab) * eps) / math.sqrt(a)  # Ho et al. eq. 11
        np.testing.assert_allclose(s.step(eps, t, x), mu, rtol=1e-9, atol=1e-12)
        z = rng.standard_normal(x.shape)
        var = b * (1 - s.alphas_cumprod[t - 1]) / (1 - ab)
        np.testing.assert_allclose(s.step(eps, t, x, z), mu + math.sqrt(var) * z, rtol=1e-9)


def test_ddim_recovers_x0_from_true_noise_and_matches_ddpm_variance() -> None:
    s = NoiseSchedule(50, "cosine")
    rng = np.random.default_rng(2)
    x0 = rng.uniform(-1, 1, (2, 1, 4, 4))
    eps = rng.standard_normal(x0.shape)
    x_t = s.add_noise(x0, eps, np.array([30, 30]))
    np.testing.assert_allclose(s.ddim_step(eps, 30, -1, x_t), x0, atol=1e-9)
    # eta = 1 between consecutive steps: DDIM's sigma² is DDPM's posterior variance.
    t = 30
    ab, abp = s.alphas_cumprod[t], s.alphas_cumprod[t - 1]
    sigma2 = (1 - abp) / (1 - ab) * (1 - ab / abp)
    assert sigma2 == pytest.approx(s.posterior_variance[t], rel=1e-10)
    assert s.ddim_timesteps(5) == [49, 37, 24, 12, 0]
    assert s.ddim_timesteps(50) == list(range(49, -1, -1))


def test_errors_and_config_round_trip() -> None:
    with pytest.raises(ScheduleError, match="kind"):
        NoiseSchedule(10, "quadratic")
    with pytest.raises(ScheduleError, match="num_steps"):
        NoiseSchedule(1)
    with pytest.raises(ScheduleError, match="outside"):
        NoiseSchedule(10).step(np.zeros(1), 10, np.zeros(1))
    with pytest.raises(ScheduleError, match="num_inference_steps"):
        NoiseSchedule(10).ddim_timesteps(11)
    cfg = ScheduleConfig(300, "linear", 1e-4, 0.03, False)
    assert NoiseSchedule.from_config(ScheduleConfig.from_dict(cfg.to_dict())).config == cfg
    with pytest.raises(ScheduleError, match="unknown"):
        ScheduleConfig.from_dict({"num_steps": 5, "bogus": 1})


def test_denoise_is_deterministic_and_perfect_predictor_lands_on_data() -> None:
    s = NoiseSchedule(20, "cosine")
    target = np.full((4, 1, 2, 2), 0.5, dtype=np.float32)

    def oracle(x: np.ndarray, t: np.ndarray) -> np.ndarray:  # the true eps for a point mass
        ti = int(t[0])
        return (x - s.sqrt_alphas_cumprod[ti] * target) / s.sqrt_one_minus_alphas_cumprod[ti]

    for steps in (None, 5):
        a = denoise(oracle, s, target.shape, seed=3, steps=steps)
        b = denoise(oracle, s, target.shape, seed=3, steps=steps)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, target, atol=1e-4)
    img = np.array([[[[0, 1, 127, 128, 255]]]], dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8(from_uint8(img)), img)
