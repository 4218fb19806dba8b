"""Model: shapes for the presets, determinism, config validation and round trip."""

from __future__ import annotations

import typing

import pytest
import torch

from greenfed.ddpm.unet import (
    PRESETS,
    ModelConfigError,
    UNetConfig,
    build_model,
    num_parameters,
    preset,
)


@pytest.mark.parametrize(
    ("name", "channels", "size"), [("pi-small", 1, 8), ("pi-small", 3, 16), ("pi-base", 1, 8)]
)
def test_shapes(name: str, channels: int, size: int) -> None:
    m = build_model(preset(name, in_channels=channels, image_size=size))
    x = torch.randn(3, channels, size, size)
    with torch.no_grad():
        y = m(x, torch.tensor([0, 5, 199]))
        y_float = m(x, torch.tensor([0.0, 5.0, 199.0]))
    assert y.shape == x.shape
    torch.testing.assert_close(y, y_float)


def test_preset_sizes() -> None:
    small = num_parameters(build_model(PRESETS["pi-small"]))
    base = num_parameters(build_model(PRESETS["pi-base"]))
    assert 200_000 <= small <= 300_000
    assert 800_000 <= base <= 1_200_000


def test_deterministic_init_and_forward() -> None:
    cfg = preset("pi-small")
    a, b = build_model(cfg, seed=7), build_model(cfg, seed=7)
    c = build_model(cfg, seed=8)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert any(
        not torch.equal(va, vc) for va, vc in zip(a.state_dict().values(), c.state_dict().values())
    )
    x, t = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(4)
    with torch.no_grad():
        assert torch.equal(a(x, t), b(x, t))
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    build_model(cfg)  # must not consume the caller's global RNG stream
    assert torch.equal(torch.rand(1), before)


def test_config_validation_and_round_trip() -> None:
    with pytest.raises(ModelConfigError, match="divisible"):
        UNetConfig(image_size=10, channel_mults=[1, 2, 2])
    with pytest.raises(ModelConfigError, match="in_channels"):
        UNetConfig(in_channels=2)
    with pytest.raises(ModelConfigError, match="unknown"):
        UNetConfig.from_dict({"bogus": 1})
    with pytest.raises(ModelConfigError, match="unknown preset"):
        preset("pi-huge")
    cfg = PRESETS["pi-base"]
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    hints = typing.get_type_hints(UNetConfig)  # loaders rely on resolvable hints (Python 3.8)
    assert hints["channel_mults"] == typing.List[int]
