"""End-to-end: LoRA adapters (ffa, personal) with real agents over gRPC on loopback (slow)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from coordinator.launcher import AgentSpec
from greenfed import codec
from greenfed.ddpm.backbone import DEFAULT_BACKBONE
from tests.e2e.conftest import Cluster, rows

pytestmark = pytest.mark.slow


def test_ffa_with_personal_adapters_over_grpc(cluster_factory: Callable[..., Cluster]) -> None:
    c = cluster_factory(
        rounds=2,
        min_devices=2,
        scheme="fp32",
        aggregation="ffa",
        backbone=DEFAULT_BACKBONE,
        eval_data="mnist8:split=test",
        grace_s=60.0,  # devices score their adapters after the upload, then report
        lora={"personal": True, "personal_eval_samples": 16},
    )
    run = c.start()
    for k in (1, 2):
        spec = AgentSpec(f"dev{k}", f"mnist8:shard={k}/2,alpha=0.5,seed=0")
        run.start_agent(spec, {"profile": str(c.profile)})
    assert run.wait(timeout_s=240) == 0, c.logs()
    done = c.rounds()
    assert [(r["status"], r["aggregation"]) for r in done] == [("completed", "ffa")] * 2, c.logs()
    assert all(r["quality_fd"] is not None for r in done)
    # What travelled is B only: its fp32 frame, a hundred times smaller than the model's.
    ckpt = Path(done[-1]["checkpoint_path"])
    with np.load(ckpt.with_name(ckpt.name.replace(".pt", ".adapter.npz"))) as f:
        shapes = {k: f[k].shape for k in f.files}
    assert shapes and all(k.endswith(".B") for k in shapes)
    limit = codec.frame_size(shapes, mode="fp32")
    reps = rows(c.db, "SELECT * FROM reports ORDER BY round, device_id")
    assert len(reps) == 4
    for r in reps:
        assert 0 < r["bytes_up"] <= limit < 20_000
        assert r["personal_fd"] > 0 and r["global_fd_own"] > 0 and r["own_eval_images"] == 16
    assert ckpt.is_file()
