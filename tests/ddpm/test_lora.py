"""LoRA layers: zero-initialised B, merge/unmerge, named arrays, freezing, shared seeded A."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from greenfed.ddpm import (
    CheckpointError,
    ModelConfigError,
    NoiseSchedule,
    TrainConfig,
    build_model,
    get_state_arrays,
    lora,
    preset,
    set_state_arrays,
    train_local,
)

TARGETS = ("*.conv1", "*.conv2", "*.time")


def _adapted(seed: int = 0, targets=TARGETS) -> torch.nn.Module:
    model = build_model(preset("pi-small"), seed=3)
    lora.apply_lora(model, lora.LoraConfig(rank=4, alpha=8.0, targets=targets, seed=seed))
    return model


def _randomise_b(model: torch.nn.Module, adapter: str = lora.GLOBAL, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora.lora_layers(model).values():
            b = layer.branch(adapter).B
            b.copy_(0.05 * torch.randn(b.shape, generator=gen))


def _out(model: torch.nn.Module) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 8, 8, generator=gen)
    with torch.no_grad():
        return model(x, torch.tensor([0, 10, 50, 100, 150, 199]))


def test_zero_b_leaves_the_backbone_unchanged() -> None:
    plain = build_model(preset("pi-small"), seed=3)
    adapted = _adapted()
    assert torch.equal(_out(plain), _out(adapted))
    names = lora.adapter_arrays(adapted)
    assert all(not v.any() for k, v in names.items() if k.endswith(".B"))
    assert any(v.any() for k, v in names.items() if k.endswith(".A"))


def test_merge_unmerge_and_merged_state_match_the_adapter_branches() -> None:
    model = _adapted()
    _randomise_b(model)
    with_branches = _out(model)
    assert not torch.allclose(with_branches, _out(build_model(preset("pi-small"), seed=3)))
    lora.merge(model)
    assert torch.allclose(_out(model), with_branches, atol=1e-5)
    lora.unmerge(model)
    assert torch.allclose(_out(model), with_branches, atol=1e-5)
    # The merged state loads into a plain UNet (checkpoints, ONNX) and computes the same.
    plain = build_model(preset("pi-small"), seed=9)
    set_state_arrays(plain, lora.merged_state_arrays(model))
    assert torch.allclose(_out(plain), with_branches, atol=1e-5)


def test_delta_weight_is_the_layer_update_for_convs_and_linears() -> None:
    model = _adapted()
    _randomise_b(model)
    before = get_state_arrays(build_model(preset("pi-small"), seed=3))
    merged = lora.merged_state_arrays(model)
    arrays = lora.adapter_arrays(model)
    for name in ("down.1.0.conv1", "mid.time"):
        expected = merged[f"{name}.weight"] - before[f"{name}.weight"]
        got = lora.delta_weight(arrays[f"{name}.A"], arrays[f"{name}.B"], 8.0 / 4)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_arrays_round_trip_and_refuse_what_does_not_fit() -> None:
    model = _adapted()
    _randomise_b(model)
    arrays = lora.adapter_arrays(model)
    other = _adapted()
    lora.set_adapter_arrays(other, arrays)
    assert torch.equal(_out(other), _out(model))
    b_only = lora.adapter_arrays(model, parts=("B",))
    assert set(b_only) == {k for k in arrays if k.endswith(".B")}
    with pytest.raises(CheckpointError, match="not in the model"):
        lora.set_adapter_arrays(other, {"nope.B": np.zeros(1, np.float32)})
    key = next(iter(b_only))
    with pytest.raises(CheckpointError, match="shape"):
        lora.set_adapter_arrays(other, {key: np.zeros((1, 1), np.float32)})


def test_every_device_draws_the_same_a_from_the_shared_seed() -> None:
    a1 = lora.adapter_arrays(_adapted(seed=5), parts=("A",))
    a2 = lora.adapter_arrays(_adapted(seed=5), parts=("A",))
    a3 = lora.adapter_arrays(_adapted(seed=6), parts=("A",))
    assert all(np.array_equal(a1[k], a2[k]) for k in a1)
    assert not all(np.array_equal(a1[k], a3[k]) for k in a1)


def test_only_the_chosen_factors_train() -> None:
    model = _adapted()
    trainable = lora.set_trainable(model, lora.GLOBAL, ("B",))
    assert trainable and all(p.requires_grad for p in trainable)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if ".adapters." not in k}
    a_before = lora.adapter_arrays(model, parts=("A",))
    images = (np.random.RandomState(0).rand(64, 1, 8, 8) * 255).astype(np.uint8)
    train_local(model, NoiseSchedule(50), images, TrainConfig(steps=3, batch_size=16, lr=1e-2))
    after = lora.adapter_arrays(model)
    assert any(np.abs(v).sum() > 0 for k, v in after.items() if k.endswith(".B"))
    assert all(np.array_equal(a_before[k], after[k]) for k in a_before)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in frozen.items())  # the backbone stayed


def test_targets_that_match_nothing_and_bad_ranks_are_refused() -> None:
    with pytest.raises(ModelConfigError, match="matches no"):
        _adapted(targets=("*.nothing",))
    with pytest.raises(ModelConfigError, match="rank"):
        lora.LoraConfig(rank=0)
    with pytest.raises(ModelConfigError, match="unknown"):
        lora.LoraConfig.from_dict({"rank": 2, "colour": "red"})
