"""FedAvg over model *updates* with a running sum: memory is one model, whatever the fleet.

Each accepted update Δ_k (decoded, float64 accumulators) is added as n_k·Δ_k as soon as it
arrives, with n_k the samples the device trained on; at the round's close the global model
moves by Σ n_k Δ_k / Σ n_k. Pure computation: no I/O, no clock.
"""

from __future__ import annotations

import math
from typing import Dict, Mapping, Tuple

import numpy as np

from coordinator.errors import InvalidUpdate

Template = Mapping[str, Tuple[Tuple[int, ...], np.dtype]]


def template_of(params: Mapping[str, np.ndarray]) -> Dict[str, Tuple[Tuple[int, ...], np.dtype]]:
    """Names, shapes and dtypes an update must match."""
    return {k: (tuple(v.shape), v.dtype) for k, v in params.items()}


def check_update(update: Mapping[str, np.ndarray], template: Template) -> float:
    """Validate an update against the template; returns its squared L2 norm.

    Raises :class:`InvalidUpdate` naming the first offending tensor.
    """
    missing = sorted(set(template) - set(update))
    extra = sorted(set(update) - set(template))
    if missing or extra:
        raise InvalidUpdate(
            f"update tensors do not match the model: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    sq = 0.0
    for name, (shape, dtype) in template.items():
        arr = update[name]
        if tuple(arr.shape) != tuple(shape):
            raise InvalidUpdate(f"tensor {name}: shape {tuple(arr.shape)}, expected {shape}")
        if np.dtype(arr.dtype) != np.dtype(dtype):
            raise InvalidUpdate(f"tensor {name}: dtype {arr.dtype}, expected {np.dtype(dtype)}")
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                raise InvalidUpdate(f"tensor {name}: update holds NaN or Inf values")
            sq += float(np.dot(arr.ravel().astype(np.float64), arr.ravel().astype(np.float64)))
    if not math.isfinite(sq):
        raise InvalidUpdate("update norm is not finite")
    return sq


class RunningFedAvg:
    """Σ n_k Δ_k and Σ n_k over the float tensors of a template."""

    def __init__(self, template: Template) -> None:
        self._template = dict(template)
        self._sum: Dict[str, np.ndarray] = {
            k: np.zeros(shape, dtype=np.float64)
            for k, (shape, dtype) in template.items()
            if np.dtype(dtype).kind == "f"
        }
        self.total_samples = 0
        self.count = 0

    def add(self, update: Mapping[str, np.ndarray], samples: int) -> float:
        """Add one device's update with weight ``samples``; returns its squared norm."""
        if samples <= 0:
            raise InvalidUpdate(f"an update must declare a positive sample count, got {samples}")
        sq = check_update(update, self._template)
        for k, acc in self._sum.items():
            acc += update[k].astype(np.float64) * float(samples)
        self.total_samples += int(samples)
        self.count += 1
        return sq

    def mean_update(self) -> Dict[str, np.ndarray]:
        """The sample-weighted mean update (float64)."""
        if self.total_samples <= 0:
            raise ValueError("no update was added")
        return {k: v / self.total_samples for k, v in self._sum.items()}

    def apply(self, params: Mapping[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray], float]:
        """New global parameters and the squared norm of the applied mean update."""
        mean = self.mean_update()
        out: Dict[str, np.ndarray] = {}
        sq = 0.0
        for k, v in params.items():
            if k in mean:
                out[k] = (v.astype(np.float64) + mean[k]).astype(v.dtype)
                sq += float(np.sum(mean[k] * mean[k]))
            else:
                out[k] = v.copy()
        return out, sq
