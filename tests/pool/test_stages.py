"""The UNet as units and stages: the same function as UNet.forward, its carry, its profile."""

from __future__ import annotations

import json

import pytest
import torch

from edge_agent.pool.stages import UNetStage, carry_shapes, unet_units
from greenfed.ddpm import PRESETS, build_model
from tests.pool.layers import FIXTURE, regenerate


@pytest.mark.parametrize(
    "config",
    [PRESETS["pi-small"], PRESETS["pi-base"].replace(num_res_blocks=2, image_size=16)],
    ids=["pi-small", "pi-base-2-blocks-16px"],
)
def test_stages_compute_the_unet_and_own_every_weight_once(config: object) -> None:
    unet = build_model(config, seed=1)  # type: ignore[arg-type]
    n = len(unet_units(unet.config))
    g = torch.Generator().manual_seed(0)
    size = unet.config.image_size
    x = torch.randn(3, 1, size, size, generator=g)
    t = torch.randint(0, 1000, (3,), generator=g)
    with torch.no_grad():
        ref = unet(x, t)
        for cuts in ([0, n], [0, 1, n], [0, n // 2, n - 1, n], list(range(n + 1))):
            stages = [UNetStage(unet, a, b) for a, b in zip(cuts, cuts[1:])]
            carry = (x, t)
            for s in stages:
                carry = s(*carry)
            assert torch.equal(carry[0], ref), cuts
            names = [name for s in stages for name, _ in s.named_global_parameters()]
            assert sorted(names) == sorted(k for k, _ in unet.named_parameters())


def test_a_cut_in_the_middle_carries_the_skips() -> None:
    shapes = carry_shapes(PRESETS["pi-small"], 2)
    names = [u.name for u in unet_units(PRESETS["pi-small"])]
    mid = names.index("mid")
    # h, temb and the three skips pushed on the way down (one per resolution level).
    assert shapes[mid] == [(2, 48, 2, 2), (2, 64), (2, 16, 8, 8), (2, 32, 4, 4), (2, 48, 2, 2)]
    assert shapes[-1] == [(2, 1, 8, 8)]


def test_layer_fixture_matches_the_models() -> None:
    assert json.loads(FIXTURE.read_text()) == regenerate(), "python -m tests.pool.layers"
