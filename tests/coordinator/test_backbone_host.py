"""Hosts that start from the shipped backbone: fine-tuning and LoRA adapters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from coordinator.backbone_host import AdapterHost, FineTuneHost, make_host
from coordinator.config import CoordinatorConfig, LoraSettings
from coordinator.model_host import ModelHost
from greenfed import ddpm
from greenfed.config import ConfigError
from greenfed.ddpm.backbone import DEFAULT_BACKBONE, load_backbone


def _cfg(tmp_path: Path, **values: Any) -> CoordinatorConfig:
    base = {
        "backbone": DEFAULT_BACKBONE,
        "eval_data": "mnist8:split=test",
        "eval_samples": 0,
        "state_dir": tmp_path,
    }
    return CoordinatorConfig(**{**base, **values})


def test_the_configuration_picks_the_host(tmp_path: Path) -> None:
    assert type(make_host(_cfg(tmp_path, backbone=None))) is ModelHost
    tune = make_host(_cfg(tmp_path))
    assert type(tune) is FineTuneHost
    bb = load_backbone(DEFAULT_BACKBONE)
    start = tune.init_params(0)
    assert all(np.array_equal(start[k], v) for k, v in bb.arrays.items())
    assert json.loads(tune.config_json())["training_mode"] == "full"
    assert isinstance(make_host(_cfg(tmp_path, aggregation="ffa")), AdapterHost)


def test_adapter_host_tells_devices_what_to_build(tmp_path: Path) -> None:
    host = make_host(_cfg(tmp_path, aggregation="fedit", lora=LoraSettings(rank=2, alpha=4)))
    cfg = json.loads(host.config_json())
    assert cfg["training_mode"] == "lora" and cfg["adapter_parts"] == ["A", "B"]
    assert cfg["backbone"] == {
        "name": DEFAULT_BACKBONE,
        "sha256": load_backbone(DEFAULT_BACKBONE).sha256,
    }
    assert cfg["lora"]["rank"] == 2 and cfg["personal"] is None
    start = host.init_params(0)
    assert all(not v.any() for k, v in start.items() if k.endswith(".B"))
    assert sum(v.size for v in start.values()) < 0.1 * sum(
        v.size for v in load_backbone(DEFAULT_BACKBONE).arrays.values()
    )


def test_adapter_checkpoints_are_the_merged_model_beside_the_adapter(tmp_path: Path) -> None:
    host = make_host(_cfg(tmp_path, aggregation="ffa", eval_samples=8, eval_ddim_steps=4))
    params = host.init_params(0)
    rs = np.random.RandomState(0)
    params = {k: (0.05 * rs.standard_normal(v.shape)).astype(np.float32) for k, v in params.items()}
    assert "fd" in host.evaluate(params, seed=0)
    path = host.save_checkpoint(params, tmp_path / "ck", 3)
    assert path.name == "round-0003.pt"
    assert (tmp_path / "ck" / "round-0003.adapter.npz").is_file()
    assert not list((tmp_path / "ck").glob("*.tmp"))
    back = host.load_checkpoint(str(path))
    assert all(np.array_equal(back[k], v) for k, v in params.items())
    plain = ddpm.load_checkpoint(path)  # loads without LoRA: the merged model
    merged = host.merged(params)  # type: ignore[attr-defined]
    state = ddpm.get_state_arrays(plain.model)
    assert all(np.array_equal(state[k], v) for k, v in merged.items())
    other = make_host(_cfg(tmp_path, aggregation="ffa", lora=LoraSettings(rank=2)))
    with pytest.raises(ConfigError, match="does not fit"):
        other.load_checkpoint(str(path))


def test_unusable_adapter_configurations_fail_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backbone"):
        CoordinatorConfig(aggregation="fedit")
    with pytest.raises(ConfigError, match="another model"):
        make_host(_cfg(tmp_path, aggregation="ffa", model_preset="pi-base"))
    with pytest.raises(ConfigError, match="matches no"):
        make_host(_cfg(tmp_path, aggregation="ffa", lora=LoraSettings(targets=["*.nothing"])))
    faces = tmp_path / "faces.npz"
    np.savez(faces, images=np.zeros((20, 1, 8, 8), np.uint8))
    personal = LoraSettings(personal=True)
    with pytest.raises(ConfigError, match="shipped data set"):
        make_host(_cfg(tmp_path, aggregation="ffa", eval_data=str(faces), lora=personal))
