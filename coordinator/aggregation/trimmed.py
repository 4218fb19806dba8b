"""Coordinate-wise trimmed mean: a robust rule for fleets that may hold a faulty or hostile device.

For every value of the model, the round's n updates are sorted, the k lowest and the k highest
are dropped and the rest averaged (Yin et al., "Byzantine-robust distributed learning: towards
optimal statistical rates", ICML 2018), with k = ceil(trim_fraction x n), at most (n - 1) // 2.
Up to k devices per value can then send anything (a +50 per value update, a flipped sign, noise
within the norm check) and move the model at most as far as the honest updates' own spread.

What it costs, and when to use it (docs/security.md):
- It is unweighted: a device counts once, whatever its data size, so on fleets with very uneven
  data FedAvg's weighting D_k is lost (the data-rich devices pull less).
- It holds every accepted update of the round (n x the model in memory) until the round closes,
  where FedAvg keeps one running sum.
- With fewer than 3 updates nothing can be trimmed: it is the plain mean.
"""

from __future__ import annotations

import math
from typing import Dict, List, Mapping

import numpy as np

from .base import Aggregator, RuleOptions, Template


def trimmed_count(n: int, fraction: float) -> int:
    """Updates dropped at each end of every value's sorted list (0 when n < 3)."""
    if n < 3 or fraction <= 0:
        return 0
    return min(math.ceil(fraction * n), (n - 1) // 2)


class TrimmedMean(Aggregator):
    """Per value: sort the n updates, drop k at each end, average the rest (float64)."""

    name = "trimmed-mean"

    def __init__(self, template: Template, options: RuleOptions = RuleOptions()) -> None:
        super().__init__(template, options)
        self._floats = [k for k, (_, dtype) in self.template.items() if np.dtype(dtype).kind == "f"]
        self._updates: List[Dict[str, np.ndarray]] = []

    def _add(self, update: Mapping[str, np.ndarray], weight: int) -> None:
        self._updates.append({k: update[k] for k in self._floats})

    def mean_update(self) -> Dict[str, np.ndarray]:
        n = len(self._updates)
        if n == 0:
            raise ValueError("no update was added")
        k = trimmed_count(n, self.options.trim_fraction)
        out: Dict[str, np.ndarray] = {}
        for name in self._floats:
            stack = np.stack([u[name] for u in self._updates]).astype(np.float64)
            if k:
                stack = np.sort(stack, axis=0)[k : n - k]
            out[name] = stack.mean(axis=0)
        return out
