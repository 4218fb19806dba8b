"""Aggregation of LoRA adapter updates: ``fedit`` (A and B averaged apart) and ``ffa`` (B only).

A device's adapter for one layer gives ΔW_k = s·B_k·A_k (s = α/r). What the fleet would want
is the weighted mean of those products, Σ w_k B_k A_k; what averaging the factors apart gives
is (Σ w_k B_k)(Σ w_k A_k). With round-start factors A₀, B₀ and updates a_k, b_k the two differ
by exactly

    gap = s·[(Σ w_k b_k)(Σ w_k a_k) − Σ w_k b_k a_k]

(the terms linear in the updates cancel): zero when one client or identical updates, not zero
otherwise, and second order in the update size (FedIT, Zhang et al. 2024, accepts it).
FFA-LoRA (Sun et al., ICLR 2024) freezes A at its seeded value on every device and trains and
sends B only: a_k = 0, the gap vanishes and the mean of B gives exactly the mean ΔW, at half
the uplink. Both rules are FedAvg over the arrays they receive (the template: ``<layer>.A`` and
``<layer>.B`` for fedit, ``<layer>.B`` for ffa); what differs is which arrays travel and
whether the average is exact. docs/lora.md measures the gap.
"""

from __future__ import annotations

from typing import Dict, Mapping, Tuple

import numpy as np

from greenfed.errors import ConfigError

from .base import RuleOptions, Template
from .fedavg import FedAvg


class AdapterAggregator(FedAvg):
    """FedAvg over adapter factors; ``parts`` says which factors devices train and send."""

    name = "adapters"
    parts: Tuple[str, ...] = ("A", "B")
    exact = False  # whether the mean of the factors is the mean of the devices' ΔW

    def __init__(self, template: Template, options: RuleOptions = RuleOptions()) -> None:
        wrong = sorted(k for k in template if k.rpartition(".")[2] not in self.parts)
        if wrong or not template:
            raise ConfigError(
                f"aggregation {self.name} takes adapter factors {'/'.join(self.parts)} only; "
                f"the model holds {wrong[:3] or 'nothing'}: it needs the LoRA model host"
            )
        super().__init__(template, options)


class FedIT(AdapterAggregator):
    """FedIT: A and B trained on every device and averaged apart (inexact, see the module)."""

    name = "fedit"
    parts = ("A", "B")
    exact = False


class FFA(AdapterAggregator):
    """FFA-LoRA: A frozen from the shared seed, only B trained, sent and averaged (exact)."""

    name = "ffa"
    parts = ("B",)
    exact = True


def fedit_gap(
    updates: Mapping[str, Mapping[str, np.ndarray]],
    weights: Mapping[str, float],
    scaling: float,
) -> Dict[str, np.ndarray]:
    """Per layer, the ΔW that averaging A and B apart misses (module docstring):
    s·[(Σ w_k b_k)(Σ w_k a_k) − Σ w_k b_k a_k], with w_k = n_k / Σ n.

    ``updates``: device -> {"<layer>.A": a_k, "<layer>.B": b_k} (fedit updates); ``weights``:
    device -> n_k. Pure numpy: the gap depends on the updates only, not on A₀ and B₀.
    """
    from greenfed.ddpm.lora import delta_weight  # torch: only where the gap is measured

    total = float(sum(weights.values()))
    share = {d: float(w) / total for d, w in weights.items()}
    first = next(iter(updates.values()))
    layers = sorted({k.rpartition(".")[0] for k in first})
    out: Dict[str, np.ndarray] = {}
    for layer in layers:
        a_key, b_key = f"{layer}.A", f"{layer}.B"
        mean_a = sum(share[d] * u[a_key].astype(np.float64) for d, u in updates.items())
        mean_b = sum(share[d] * u[b_key].astype(np.float64) for d, u in updates.items())
        mean_prod = sum(
            share[d] * delta_weight(u[a_key], u[b_key], 1.0) for d, u in updates.items()
        )
        out[layer] = scaling * (
            delta_weight(np.asarray(mean_a), np.asarray(mean_b), 1.0) - mean_prod
        )
    return out
