"""Trainer: the loss falls for pi-small, runs are reproducible, lengths and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from greenfed.ddpm import (
    NoiseSchedule,
    TrainConfig,
    TrainError,
    build_model,
    load_data,
    preset,
    train_local,
)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_data("digits").images


def test_loss_falls_for_pi_small(digits: np.ndarray) -> None:
    model = build_model(preset("pi-small"))
    cfg = TrainConfig(steps=120, batch_size=64, seed=0, num_threads=1, log_every=20)
    res = train_local(model, NoiseSchedule(), digits, cfg)
    assert res.steps == 120 and res.samples == 120 * 64 and len(res.losses) == 6
    assert res.losses[-1] < 0.6 * res.losses[0], res.losses
    assert res.wall_s > 0 and not res.stopped_early


def test_deterministic_on_cpu(digits: np.ndarray) -> None:
    cfg = TrainConfig(steps=5, batch_size=32, seed=3, num_threads=1, ema_decay=0.9)
    states, losses = [], []
    for _ in range(2):
        m = build_model(preset("pi-small"))
        r = train_local(m, NoiseSchedule(), digits[:100], cfg)
        states.append(m.state_dict())
        losses.append(r.losses)
        assert r.ema_state is not None
    assert losses[0] == losses[1]
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


def test_epochs_threads_and_budget(digits: np.ndarray) -> None:
    before = torch.get_num_threads()
    m = build_model(preset("pi-small"))
    r = train_local(
        m, NoiseSchedule(), digits[:100], TrainConfig(epochs=1.0, batch_size=32, num_threads=1)
    )
    assert r.steps == 4  # ceil(100 / 32)
    assert torch.get_num_threads() == before
    r = train_local(
        m, NoiseSchedule(), digits[:100], TrainConfig(steps=10_000, max_seconds=0.2, num_threads=1)
    )
    assert r.stopped_early and r.steps < 10_000


def test_errors(digits: np.ndarray) -> None:
    m = build_model(preset("pi-small"))
    with pytest.raises(TrainError, match="exactly one"):
        train_local(m, NoiseSchedule(), digits, TrainConfig())
    with pytest.raises(TrainError, match="uint8"):
        train_local(m, NoiseSchedule(), digits.astype(np.float32), TrainConfig(steps=1))
