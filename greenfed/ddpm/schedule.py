"""The noise schedule: a model-free object, like diffusers' ``DDPMScheduler``.

This module imports numpy only (never torch), so a board can sample through onnxruntime without
torch installed. The tables are computed once in float64; ``add_noise``, ``step`` and
``ddim_step`` work on numpy arrays *and* torch tensors alike (the per-step coefficients are Python
floats, and ``add_noise`` gathers from a table converted lazily to the input's type), so the
torch trainer, the torch sampler and the onnxruntime sampler share one copy of the math.

Notation (Ho et al. 2020; Song et al. 2021): ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``,
timesteps ``t = 0 .. T-1`` (index 0 is the least noisy), images scaled to [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .errors import ScheduleError

KINDS = ("linear", "cosine")


@dataclass(frozen=True)
class ScheduleConfig:
    """What defines a schedule; stored inside every checkpoint and ONNX file.

    ``beta_start``/``beta_end`` apply to ``linear`` only; when None they default to Ho et al.'s
    1e-4 and 0.02 scaled by 1000/T, so that T = 200 still ends in (almost) pure noise.
    """

    num_steps: int = 200
    kind: str = "cosine"
    beta_start: Optional[float] = None
    beta_end: Optional[float] = None
    clip_sample: bool = True

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> ScheduleConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ScheduleError(f"unknown schedule config keys: {sorted(unknown)}")
        return cls(**d)


def linear_betas(num_steps: int, beta_start: float, beta_end: float) -> np.ndarray:
    return np.linspace(beta_start, beta_end, num_steps, dtype=np.float64)


def cosine_betas(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal (2021): abar(t) = cos²((t/T + s)/(1 + s) · π/2), betas clipped."""

    def f(t: float) -> float:
        return math.cos((t / num_steps + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - f(i + 1) / f(i), max_beta) for i in range(num_steps)]
    return np.asarray(betas, dtype=np.float64)


class NoiseSchedule:
    """Betas, cumulative alphas and the forward/reverse steps. Holds no model."""

    def __init__(
        self,
        num_steps: int = 200,
        kind: str = "cosine",
        beta_start: Optional[float] = None,
        beta_end: Optional[float] = None,
        clip_sample: bool = True,
    ) -> None:
        if num_steps < 2:
            raise ScheduleError(f"num_steps must be >= 2, got {num_steps}")
        if kind not in KINDS:
            raise ScheduleError(f"unknown schedule kind {kind!r}; expected one of {KINDS}")
        self.config = ScheduleConfig(num_steps, kind, beta_start, beta_end, clip_sample)
        if kind == "linear":
            scale = 1000.0 / num_steps
            b0 = beta_start if beta_start is not None else 1e-4 * scale
            b1 = beta_end if beta_end is not None else 0.02 * scale
            if not 0 < b0 <= b1 < 1:
                raise ScheduleError(f"need 0 < beta_start <= beta_end < 1, got {b0}, {b1}")
            self.betas = linear_betas(num_steps, b0, b1)
        else:
            self.betas = cosine_betas(num_steps)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = np.cumprod(self.alphas)
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        prev = np.concatenate([[1.0], self.alphas_cumprod[:-1]])
        self.alphas_cumprod_prev = prev
        # Posterior q(x_{t-1} | x_t, x_0): variance ("fixed small") and mean coefficients.
        self.posterior_variance = self.betas * (1.0 - prev) / (1.0 - self.alphas_cumprod)
        self.posterior_coef_x0 = self.betas * np.sqrt(prev) / (1.0 - self.alphas_cumprod)
        self.posterior_coef_xt = (1.0 - prev) * np.sqrt(self.alphas) / (1.0 - self.alphas_cumprod)
        self._torch_tables: Dict[Tuple[Any, Any], Tuple[Any, Any]] = {}

    @classmethod
    def from_config(cls, config: ScheduleConfig) -> NoiseSchedule:
        return cls(**asdict(config))

    @property
    def num_steps(self) -> int:
        return self.config.num_steps

    def __repr__(self) -> str:
        return f"NoiseSchedule({self.config})"

    # -- forward process -------------------------------------------------------------------
    def add_noise(self, x0: Any, noise: Any, t: Any) -> Any:
        """x_t for a batch: ``x0``, ``noise`` (N, ...), integer ``t`` (N,); numpy or torch."""
        a, b = self._gather(t, x0)
        shape = (-1,) + (1,) * (x0.ndim - 1)
        return a.reshape(shape) * x0 + b.reshape(shape) * noise

    def _gather(self, t: Any, like: Any) -> Tuple[Any, Any]:
        if isinstance(like, np.ndarray):
            idx = np.asarray(t)
            return (
                self.sqrt_alphas_cumprod[idx].astype(like.dtype),
                self.sqrt_one_minus_alphas_cumprod[idx].astype(like.dtype),
            )
        key = (like.dtype, like.device)  # a torch tensor; torch is already imported by the caller
        if key not in self._torch_tables:
            import torch

            self._torch_tables[key] = (
                torch.as_tensor(self.sqrt_alphas_cumprod, dtype=like.dtype, device=like.device),
                torch.as_tensor(
                    self.sqrt_one_minus_alphas_cumprod, dtype=like.dtype, device=like.device
                ),
            )
        a, b = self._torch_tables[key]
        return a[t], b[t]

    # -- reverse process (scalar t; works for numpy and torch) -------------------------------
    def predict_x0(self, eps: Any, t: int, x_t: Any) -> Any:
        x0 = (x_t - float(self.sqrt_one_minus_alphas_cumprod[t]) * eps) / float(
            self.sqrt_alphas_cumprod[t]
        )
        return x0.clip(-1.0, 1.0) if self.config.clip_sample else x0

    def step(self, eps: Any, t: int, x_t: Any, noise: Any = None) -> Any:
        """DDPM ancestral step x_t -> x_{t-1}; ``noise`` ~ N(0, I) like x_t (ignored at t = 0)."""
        self._check_t(t)
        x0 = self.predict_x0(eps, t, x_t)
        mean = float(self.posterior_coef_x0[t]) * x0 + float(self.posterior_coef_xt[t]) * x_t
        if t == 0 or noise is None:
            return mean
        return mean + math.sqrt(float(self.posterior_variance[t])) * noise

    def ddim_timesteps(self, num_inference_steps: int) -> List[int]:
        """Evenly spaced timesteps, descending, ending at 0 (``num_inference_steps`` of them)."""
        n = num_inference_steps
        if not 1 <= n <= self.num_steps:
            raise ScheduleError(f"num_inference_steps must be in 1..{self.num_steps}, got {n}")
        ts = np.round(np.linspace(0, self.num_steps - 1, n)).astype(np.int64)
        return sorted({int(v) for v in ts}, reverse=True)

    def ddim_step(
        self, eps: Any, t: int, t_prev: int, x_t: Any, eta: float = 0.0, noise: Any = None
    ) -> Any:
        """DDIM step x_t -> x_{t_prev} (t_prev -1: the clean image); eta 0 is deterministic."""
        self._check_t(t)
        ab_t = float(self.alphas_cumprod[t])
        ab_prev = float(self.alphas_cumprod[t_prev]) if t_prev >= 0 else 1.0
        x0 = self.predict_x0(eps, t, x_t)
        # Recompute eps from the (possibly clipped) x0, as diffusers does.
        eps = (x_t - math.sqrt(ab_t) * x0) / math.sqrt(1.0 - ab_t)
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev))
        dir_coef = math.sqrt(max(1.0 - ab_prev - sigma**2, 0.0))
        out = math.sqrt(ab_prev) * x0 + dir_coef * eps
        if sigma > 0 and noise is not None:
            out = out + sigma * noise
        return out

    def _check_t(self, t: int) -> None:
        if not 0 <= t < self.num_steps:
            raise ScheduleError(f"timestep {t} outside 0..{self.num_steps - 1}")


EpsFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def denoise(
    eps_fn: EpsFn,
    schedule: NoiseSchedule,
    shape: Tuple[int, ...],
    *,
    seed: int = 0,
    steps: Optional[int] = None,
    eta: float = 0.0,
    x_T: Optional[np.ndarray] = None,
) -> np.ndarray:
    """The reverse process in numpy for any noise predictor ``eps_fn(x, t_float) -> eps``.

    ``steps`` None or T: DDPM ancestral sampling; fewer: DDIM with ``eta``. All noise comes from
    ``np.random.default_rng(seed)`` in a fixed order (x_T first, then one draw per step), so a
    torch model and its ONNX export given the same seed see the same noise. Returns float32
    images in [-1, 1] (clipped), shape ``shape``.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32) if x_T is None else x_T.astype(np.float32)
    n = shape[0]
    T = schedule.num_steps
    if steps is None or steps == T:
        for t in range(T - 1, -1, -1):
            eps = eps_fn(x, np.full((n,), t, dtype=np.float32))
            z = rng.standard_normal(shape, dtype=np.float32) if t > 0 else None
            x = schedule.step(eps, t, x, z).astype(np.float32, copy=False)
    else:
        ts = schedule.ddim_timesteps(steps)
        for i, t in enumerate(ts):
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            eps = eps_fn(x, np.full((n,), t, dtype=np.float32))
            z = rng.standard_normal(shape, dtype=np.float32) if eta > 0 else None
            x = schedule.ddim_step(eps, t, t_prev, x, eta, z).astype(np.float32, copy=False)
    return np.clip(x, -1.0, 1.0)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[-1, 1] floats -> uint8 0..255 (rounded)."""
    return np.clip(np.rint((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def from_uint8(images: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> float32 in [-1, 1]."""
    return images.astype(np.float32) / 127.5 - 1.0
