"""Sampling with the torch model (DDPM ancestral, or DDIM with fewer steps).

The loop itself is ``schedule.denoise`` (numpy); this module only wraps the torch network as a
noise predictor, so torch and onnxruntime sampling differ only in the network's arithmetic.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from .schedule import NoiseSchedule, denoise, to_uint8


def sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    n: int,
    *,
    steps: Optional[int] = None,
    eta: float = 0.0,
    seed: int = 0,
    num_threads: Optional[int] = None,
    x_T: Optional[np.ndarray] = None,
    as_uint8: bool = True,
) -> np.ndarray:
    """``n`` images: uint8 N×C×H×W (or float32 in [-1, 1] with ``as_uint8=False``).

    ``steps`` None or T: DDPM ancestral; fewer: DDIM (``eta`` 0 deterministic given ``seed``).
    """
    cfg: Any = model.config
    shape = (n, cfg.in_channels, cfg.image_size, cfg.image_size)
    prev_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    was_training = model.training
    model.eval()

    def eps_fn(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        out: torch.Tensor = model(torch.from_numpy(x), torch.from_numpy(t))
        return out.numpy()

    try:
        with torch.inference_mode():
            x = denoise(eps_fn, schedule, shape, seed=seed, steps=steps, eta=eta, x_T=x_T)
    finally:
        model.train(was_training)
        if num_threads is not None:
            torch.set_num_threads(prev_threads)
    return to_uint8(x) if as_uint8 else x
