"""The adapter training mode, built from the coordinator's own model configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest

from coordinator.backbone_host import AdapterHost, make_host
from coordinator.config import CoordinatorConfig, LoraSettings
from edge_agent.errors import AgentError
from edge_agent.training import LocalPlan, make_training
from edge_agent.training.lora import holdout_split
from greenfed import ddpm
from greenfed.ddpm import lora

PLAN = LocalPlan(steps=3, batch_size=16, learning_rate=5e-3, seed=1, max_seconds=60)


def _host(aggregation: str, tmp_path: Path, **lora_values: Any) -> AdapterHost:
    cfg = CoordinatorConfig(
        aggregation=aggregation,
        backbone="pi-small-digits",
        eval_data="mnist8:split=test",
        eval_samples=0,
        state_dir=tmp_path,
        lora=LoraSettings(**lora_values),
    )
    host = make_host(cfg)
    assert isinstance(host, AdapterHost)
    return host


def _config(host: AdapterHost) -> Dict[str, Any]:
    return dict(json.loads(host.config_json()))  # as it arrives in the RegisterReply


@pytest.mark.parametrize("aggregation,parts", [("fedit", {"A", "B"}), ("ffa", {"B"})])
def test_only_the_adapter_trains_and_its_update_is_what_travels(
    aggregation: str, parts: set, tmp_path: Path
) -> None:
    host = _host(aggregation, tmp_path)
    trainer = make_training(_config(host), ddpm.load_data("mnist8:shard=1/4").images)
    start = host.init_params(0)
    assert {k.rpartition(".")[2] for k in start} == parts
    assert trainer.num_values == sum(v.size for v in start.values())
    trainer.load_global(start)
    backbone = lora.merged_state_arrays(trainer.model, adapters=())  # type: ignore[attr-defined]
    res = trainer.train(PLAN)
    assert set(res.update) == set(start) and res.steps == 3
    assert any(np.abs(u).max() > 0 for k, u in res.update.items() if k.endswith(".B"))
    after = lora.merged_state_arrays(trainer.model, adapters=())  # type: ignore[attr-defined]
    assert all(np.array_equal(after[k], v) for k, v in backbone.items())
    assert trainer.evaluate() == {} and not trainer.evaluates


def test_a_different_backbone_is_refused(tmp_path: Path) -> None:
    cfg = _config(_host("ffa", tmp_path))
    cfg["backbone"]["sha256"] = "f" * 64
    with pytest.raises(AgentError, match="install the coordinator's greenfed"):
        make_training(cfg, ddpm.load_data("mnist8:shard=1/4").images)


def test_personal_adapter_is_the_tuned_copy_scored_on_held_out_images(tmp_path: Path) -> None:
    host = _host("ffa", tmp_path, personal=True, personal_eval_samples=16)
    cfg = _config(host)
    assert cfg["personal"]["metric"] == "mnist8"
    images = ddpm.load_data("mnist8:shard=1/4").images
    trainer = make_training(cfg, images)
    assert trainer.evaluates and trainer.evaluate() == {}  # nothing tuned yet
    held = trainer.heldout  # type: ignore[attr-defined]
    assert len(trainer.images) + len(held) == len(images)  # type: ignore[attr-defined]
    start = host.init_params(0)
    trainer.load_global(start)
    res = trainer.train(PLAN)
    assert set(res.update) == set(start)  # what travels is the global adapter's update only
    kept = trainer.personal_adapter  # type: ignore[attr-defined]
    for k in start:  # the personal adapter: global + this device's update
        np.testing.assert_allclose(kept[k], start[k] + res.update[k], atol=1e-7)
    scores = trainer.evaluate()
    assert set(scores) == {"personal_fd", "global_fd_own", "own_eval_images"}
    assert scores["own_eval_images"] == 16 and scores["personal_fd"] != scores["global_fd_own"]


def test_holdout_split_is_seeded_and_refuses_too_few_images() -> None:
    train, held = holdout_split(100, 0.2, seed=3)
    assert len(held) == 20 and not set(train) & set(held)
    again = holdout_split(100, 0.2, seed=3)
    assert np.array_equal(held, again[1])
    with pytest.raises(AgentError, match="at least 8 needed"):
        holdout_split(20, 0.2, seed=0)
