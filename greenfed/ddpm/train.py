"""The local trainer: ε-prediction MSE, AdamW, gradient clipping, optional EMA.

Separate from the model and the schedule (nanoGPT's ``train.py`` split). Deterministic on CPU for
a given seed, thread count and torch build: batches, timesteps and noise come from one seeded
``torch.Generator``. Threads are set for the call only (``TrainConfig.num_threads``) and restored
afterwards; nothing is set globally at import.

The round runs where the model is: move the model to a CUDA device and the images, noise and
optimizer state follow it. The random draws stay on the seeded CPU generator and are copied
over, so a CUDA round sees exactly the batches, timesteps and noise of a CPU round with the same
seed; only the kernels' rounding differs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

from .errors import TrainError
from .schedule import NoiseSchedule


@dataclass(frozen=True)
class TrainConfig:
    """One local training run. Exactly one of ``steps`` or ``epochs`` sets its length;
    ``max_seconds`` (optional) stops it early at a wall-clock budget."""

    steps: Optional[int] = None
    epochs: Optional[float] = None
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.0
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_steps: int = 0
    grad_clip: Optional[float] = 1.0
    ema_decay: Optional[float] = None
    seed: int = 0
    num_threads: Optional[int] = None
    max_seconds: Optional[float] = None
    log_every: int = 1

    def num_steps_for(self, num_images: int) -> int:
        if (self.steps is None) == (self.epochs is None):
            raise TrainError("set exactly one of TrainConfig.steps or TrainConfig.epochs")
        if self.steps is not None:
            if self.steps < 0:
                raise TrainError(f"steps must be >= 0, got {self.steps}")
            return self.steps
        assert self.epochs is not None
        return math.ceil(self.epochs * num_images / self.batch_size)


@dataclass
class TrainResult:
    """What one call did. ``samples``: images processed (steps × batch), for the energy model's
    cycles-per-sample; ``losses``: mean loss per ``log_every`` steps; ``wall_s``: training time."""

    samples: int
    steps: int
    losses: List[float]
    wall_s: float
    stopped_early: bool = False
    ema_state: Optional[Dict[str, torch.Tensor]] = None

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s if self.wall_s > 0 else float("nan")


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 N×C×H×W -> float32 in [-1, 1]."""
    if images.dtype != np.uint8 or images.ndim != 4:
        raise TrainError(f"expected uint8 N×C×H×W images, got {images.dtype} {images.shape}")
    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)


def _device_of(model: nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without any)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the parameters that train (frozen ones, e.g. a LoRA backbone, are left out)."""
    kwargs = dict(lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas))
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise TrainError("the model has no trainable parameter")
    try:  # fused AdamW on CPU (torch >= 2.4) is ~3× cheaper per step for small models
        return torch.optim.AdamW(params, fused=True, **kwargs)  # type: ignore[arg-type]
    except (RuntimeError, TypeError, ValueError):  # older torch: the default implementation
        return torch.optim.AdamW(params, **kwargs)  # type: ignore[arg-type]


def train_local(
    model: nn.Module,
    schedule: NoiseSchedule,
    images: np.ndarray,
    cfg: TrainConfig,
) -> TrainResult:
    """Train ``model`` in place on ``images`` (uint8 N×C×H×W), on the model's device.

    Batches are drawn epoch by epoch from a seeded permutation (every image once per epoch). A
    fresh optimizer per call: federated rounds start from the global weights anyway.
    """
    device = _device_of(model)
    data = images_to_tensor(images).to(device)
    n = data.shape[0]
    if n == 0:
        raise TrainError("no training images")
    total = cfg.num_steps_for(n)
    prev_threads = torch.get_num_threads()
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = _make_optimizer(model, cfg)
    ema: Optional[Dict[str, torch.Tensor]] = None
    if cfg.ema_decay is not None:
        ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    bs = min(cfg.batch_size, n)
    T = schedule.num_steps
    losses: List[float] = []
    acc, acc_n = 0.0, 0
    perm = torch.randperm(n, generator=gen)
    pos = 0
    step = 0
    stopped = False
    model.train()
    t0 = time.monotonic()
    try:
        for step in range(1, total + 1):
            if pos + bs > n:
                perm, pos = torch.randperm(n, generator=gen), 0
            x0 = data[perm[pos : pos + bs].to(device)]
            pos += bs
            t = torch.randint(0, T, (bs,), generator=gen).to(device)
            noise = torch.randn(x0.shape, generator=gen).to(device)
            x_t = schedule.add_noise(x0, noise, t)
            loss = torch.mean((model(x_t, t) - noise) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if cfg.warmup_steps:
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * min(1.0, step / cfg.warmup_steps)
            opt.step()
            if ema is not None:
                with torch.no_grad():
                    for k, v in model.state_dict().items():
                        ema[k].lerp_(v, 1.0 - cfg.ema_decay)  # type: ignore[operator]
            acc += float(loss.detach())
            acc_n += 1
            if acc_n == cfg.log_every:
                losses.append(acc / acc_n)
                acc, acc_n = 0.0, 0
            if cfg.max_seconds is not None and time.monotonic() - t0 >= cfg.max_seconds:
                stopped = step < total
                break
    finally:
        wall = time.monotonic() - t0
        if cfg.num_threads is not None:
            torch.set_num_threads(prev_threads)
    if acc_n:
        losses.append(acc / acc_n)
    model.eval()
    return TrainResult(
        samples=step * bs,
        steps=step,
        losses=losses,
        wall_s=wall,
        stopped_early=stopped,
        ema_state=ema,
    )
