"""FedAvg over model *updates* with a running sum: memory is one model, whatever the fleet.

Each accepted update Δ_k (decoded, float64 accumulators) is added as n_k·Δ_k as soon as it
arrives, with n_k the device's registered data size; at the round's close the global model
moves by Σ n_k Δ_k / Σ n_k (McMahan et al.).
"""

from __future__ import annotations

from typing import Dict, Mapping

import numpy as np

from .base import Aggregator, RuleOptions, Template


class FedAvg(Aggregator):
    """Σ n_k Δ_k and Σ n_k over the float tensors of a template."""

    name = "fedavg"

    def __init__(self, template: Template, options: RuleOptions = RuleOptions()) -> None:
        super().__init__(template, options)
        self._sum: Dict[str, np.ndarray] = {
            k: np.zeros(shape, dtype=np.float64)
            for k, (shape, dtype) in self.template.items()
            if np.dtype(dtype).kind == "f"
        }

    def _add(self, update: Mapping[str, np.ndarray], weight: int) -> None:
        for k, acc in self._sum.items():
            acc += update[k].astype(np.float64) * float(weight)

    def mean_update(self) -> Dict[str, np.ndarray]:
        """The sample-weighted mean update (float64)."""
        if self.total_weight <= 0:
            raise ValueError("no update was added")
        return {k: v / self.total_weight for k, v in self._sum.items()}
