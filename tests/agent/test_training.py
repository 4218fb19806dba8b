"""The local-training interface: the full-model mode, and a clear refusal of unknown modes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_agent.errors import AgentError
from edge_agent.training import MODES, LocalPlan, make_training
from greenfed import ddpm


def _model_config() -> dict:
    cfg = {"unet": ddpm.preset("pi-small").to_dict(), "schedule": ddpm.ScheduleConfig().to_dict()}
    return dict(json.loads(json.dumps(cfg)))  # as it arrives in the RegisterReply


def test_full_model_training_returns_trained_minus_global() -> None:
    images = ddpm.load_data("digits:shard=1/4").images
    trainer = make_training(_model_config(), images)
    assert trainer.name == "full" and MODES["full"] is type(trainer)
    start = ddpm.get_state_arrays(ddpm.build_model(ddpm.preset("pi-small")))
    trainer.load_global(start)
    res = trainer.train(
        LocalPlan(steps=3, batch_size=16, learning_rate=1e-3, seed=1, max_seconds=60)
    )
    assert (res.steps, res.samples, res.stopped_early) == (3, 48, False)
    assert set(res.update) == set(start)
    assert trainer.num_values == sum(v.size for v in start.values())
    after = ddpm.get_state_arrays(trainer.model)  # type: ignore[attr-defined]
    name = next(k for k, v in start.items() if v.dtype.kind == "f")
    np.testing.assert_allclose(res.update[name], after[name] - start[name], atol=1e-7)
    assert any(np.abs(u).max() > 0 for u in res.update.values())


def test_an_unknown_training_mode_is_refused_with_what_to_do() -> None:
    cfg = dict(_model_config(), training_mode="telepathy")
    with pytest.raises(AgentError, match=r"training mode 'telepathy'.*knows full"):
        make_training(cfg, np.zeros((4, 1, 8, 8), np.uint8))
