"""Aggregation of adapters: ffa is exact (the mean of B is the mean ΔW), fedit is not."""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import pytest
import torch

from coordinator.aggregation import adapter_parts, make_aggregator, template_of
from coordinator.aggregation.adapters import fedit_gap
from greenfed.ddpm import build_model, lora, preset
from greenfed.errors import ConfigError

SCALING = 8.0 / 4
WEIGHTS = [300, 120, 580]


def _start() -> Tuple[torch.nn.Module, Dict[str, np.ndarray]]:
    """A pi-small UNet with a global adapter whose B is already away from zero."""
    model = build_model(preset("pi-small"))
    lora.apply_lora(model, lora.LoraConfig(rank=4, alpha=8.0, seed=7))
    arrays = lora.adapter_arrays(model)
    rs = np.random.RandomState(0)
    for k in arrays:
        if k.endswith(".B"):
            arrays[k] = (0.05 * rs.standard_normal(arrays[k].shape)).astype(np.float32)
    return model, arrays


def _client_updates(
    start: Dict[str, np.ndarray], parts: Tuple[str, ...], scale: float = 0.02
) -> List[Dict[str, np.ndarray]]:
    rs = np.random.RandomState(1)
    return [
        {
            k: (scale * rs.standard_normal(v.shape)).astype(np.float32)
            for k, v in start.items()
            if k.rpartition(".")[2] in parts
        }
        for _ in WEIGHTS
    ]


def _delta_w(arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    layers = sorted({k.rpartition(".")[0] for k in arrays})
    return {n: lora.delta_weight(arrays[f"{n}.A"], arrays[f"{n}.B"], SCALING) for n in layers}


def _aggregate(rule: str, start: Dict[str, np.ndarray], updates: List[Dict[str, np.ndarray]]):
    params = {k: v for k, v in start.items() if k.rpartition(".")[2] in adapter_parts(rule)}
    agg = make_aggregator(rule, template_of(params))
    for u, w in zip(updates, WEIGHTS):
        agg.add(u, w)
    new, _ = agg.apply(params)
    return {**start, **new}


def _fleet_mean_delta_w(start, updates) -> Dict[str, np.ndarray]:
    total = float(sum(WEIGHTS))
    clients = [_delta_w({k: v + u.get(k, 0.0) for k, v in start.items()}) for u in updates]
    return {n: sum(w / total * c[n] for c, w in zip(clients, WEIGHTS)) for n in clients[0]}


def test_ffa_aggregates_the_weighted_mean_delta_w_exactly() -> None:
    _, start = _start()
    updates = _client_updates(start, ("B",))
    got = _delta_w(_aggregate("ffa", start, updates))
    want = _fleet_mean_delta_w(start, updates)
    worst = max(float(np.abs(got[n] - want[n]).max()) for n in want)
    assert worst <= 1e-6, worst


def test_ffa_exact_through_the_merged_model_too() -> None:
    """The same through the UNet: the merged weights of the aggregate equal the backbone plus
    the clients' weighted mean ΔW."""
    model, start = _start()
    updates = _client_updates(start, ("B",))
    backbone = lora.merged_state_arrays(model, adapters=())
    lora.set_adapter_arrays(model, _aggregate("ffa", start, updates))
    merged = lora.merged_state_arrays(model)
    for name, dw in _fleet_mean_delta_w(start, updates).items():
        w = f"{name}.weight"
        np.testing.assert_allclose(merged[w] - backbone[w], dw, atol=1e-6)


def test_fedit_misses_the_cross_terms_and_the_gap_formula_says_by_how_much() -> None:
    """FedIT averages A and B apart: mean(B)·mean(A) != mean(B·A). The gap is not zero, and it
    is exactly s·[(Σw b)(Σw a) − Σ w b a] (the terms linear in the updates cancel)."""
    _, start = _start()
    updates = _client_updates(start, ("A", "B"))
    got = _delta_w(_aggregate("fedit", start, updates))
    want = _fleet_mean_delta_w(start, updates)
    gap = fedit_gap(dict(zip("xyz", updates)), dict(zip("xyz", WEIGHTS)), SCALING)
    sizes = {n: float(np.linalg.norm(gap[n])) for n in gap}
    assert max(sizes.values()) > 1e-5  # not zero: documented, not hidden
    for n in want:
        np.testing.assert_allclose(got[n] - want[n], gap[n], atol=1e-6)


def test_fedit_is_exact_when_every_client_sends_the_same_update() -> None:
    _, start = _start()
    one = _client_updates(start, ("A", "B"))[0]
    same = [one, one, one]
    got = _delta_w(_aggregate("fedit", start, same))
    want = _fleet_mean_delta_w(start, same)
    assert max(float(np.abs(got[n] - want[n]).max()) for n in want) <= 1e-6


def test_adapter_rules_refuse_a_full_model_template() -> None:
    model = build_model(preset("pi-small"))
    full = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    for rule in ("fedit", "ffa"):
        with pytest.raises(ConfigError, match="adapter factors"):
            make_aggregator(rule, template_of(full))
    _, start = _start()
    with pytest.raises(ConfigError, match="B only"):
        make_aggregator("ffa", template_of(start))  # ffa never receives A
    assert adapter_parts("fedavg") == () and adapter_parts("ffa") == ("B",)
