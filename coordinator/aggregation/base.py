"""The aggregation-rule interface: how one round's accepted updates move the global model.

A rule is one :class:`Aggregator` subclass, registered by name in
:data:`coordinator.aggregation.RULES` and chosen by the coordinator's ``aggregation`` key.
One aggregator lives for one round: the engine ``add``s each accepted update (decoded, checked
against the model's template) with the device's weight, and the round driver ``apply``s the
result at close. Pure computation: no I/O, no clock.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Dict, Mapping, Tuple

import numpy as np

from coordinator.errors import InvalidUpdate

Template = Mapping[str, Tuple[Tuple[int, ...], np.dtype]]


@dataclass(frozen=True)
class RuleOptions:
    """What a rule may read from the coordinator's configuration."""

    trim_fraction: float = 0.2  # trimmed-mean: share of the updates dropped at each end


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


class Aggregator(abc.ABC):
    """One round's aggregation of device updates over the float tensors of ``template``."""

    name = "abstract"

    def __init__(self, template: Template, options: RuleOptions = RuleOptions()) -> None:
        self.template = dict(template)
        self.options = options
        self.total_weight = 0
        self.count = 0

    def add(self, update: Mapping[str, np.ndarray], weight: int) -> float:
        """Add one device's update with its weight (D_k); returns the update's squared norm."""
        if weight <= 0:
            raise InvalidUpdate(f"an update must declare a positive sample count, got {weight}")
        sq = check_update(update, self.template)
        self._add(update, weight)
        self.total_weight += int(weight)
        self.count += 1
        return sq

    @abc.abstractmethod
    def _add(self, update: Mapping[str, np.ndarray], weight: int) -> None:
        """Take a checked update into the rule's state."""

    @abc.abstractmethod
    def mean_update(self) -> Dict[str, np.ndarray]:
        """The aggregated update (float64) over the float tensors."""

    def apply(self, params: Mapping[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray], float]:
        """New global parameters and the squared norm of the applied update."""
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
