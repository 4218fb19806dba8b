from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from edge_agent.client import Backoff
from edge_agent.config import AgentConfig
from edge_agent.pending import Pending, PendingStore


def test_pending_update_survives_a_restart_and_is_checked(tmp_path: Path) -> None:
    store = PendingStore(tmp_path)
    frame = b"frame-bytes" * 100
    p = Pending(3, frame, hashlib.sha256(frame).hexdigest(), {"samples": 64, "steps": 2})
    store.save(p)
    again = PendingStore(tmp_path).load(3)
    assert again is not None and again.frame == frame and again.meta["samples"] == 64
    assert store.load(4) is None
    # A corrupted file is not resumed (the agent trains again instead).
    (tmp_path / "pending-3.gfz").write_bytes(b"garbage")
    assert store.load(3) is None


def test_clear_keeps_only_the_current_round(tmp_path: Path) -> None:
    store = PendingStore(tmp_path)
    for r in (1, 2):
        store.save(Pending(r, b"x", "0" * 64, {}))
    store.clear(keep_round=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pending-2.gfz", "pending-2.json"]


def test_backoff_is_jittered_and_capped() -> None:
    b = Backoff(0.5, 4.0, random.Random(1))
    delays = [b.next_delay() for _ in range(12)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) == len(delays)  # jitter: no two retries in lockstep
    assert max(delays[:2]) <= 1.0  # first attempts stay near the base
    b.reset()
    assert b.next_delay() <= 0.5


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"device_id": ""}, "device_id is required"),
        ({"device_id": "a b"}, "device_id is required"),
        ({"device_id": "ok", "uplink_mbps": 0.0}, "uplink_mbps"),
        ({"device_id": "ok", "bits_max": 17}, "bits_max"),
        ({"device_id": "ok", "num_threads": 0}, "num_threads"),
    ],
)
def test_agent_config_errors(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AgentConfig(**kw)


def test_profile_defaults_to_the_state_dir(tmp_path: Path) -> None:
    cfg = AgentConfig(device_id="pi-1", state_dir=tmp_path)
    assert cfg.profile_path == tmp_path / "calibration.json"


def test_training_budget_leaves_time_for_the_upload(tmp_path: Path) -> None:
    import time
    from types import SimpleNamespace

    from edge_agent.daemon import Agent
    from greenfed.v1 import fleet_pb2 as pb

    cfg = AgentConfig(
        device_id="pi-1", state_dir=tmp_path, uplink_mbps=8.0, sysfs_root=tmp_path
    )  # bare tree: estimated power, no cpufreq
    agent = Agent(cfg)
    agent.trainer = SimpleNamespace(num_values=1_001_000)  # type: ignore[assignment]
    agent._round_deadline = time.monotonic() + 30.0
    a = pb.Assignment(mode="stochastic", bits=8, deadline_s=30.0)
    # 1 MB at 1 MB/s (8 Mbit/s) with a 20% margin and 1 s of slack: about 27.8 s left.
    assert agent._training_budget_s(a) == pytest.approx(30.0 - 1.2 * 1.001 - 1.0, abs=0.2)
    fp32 = pb.Assignment(mode="fp32", bits=32, deadline_s=30.0)
    assert agent._training_budget_s(fp32) < agent._training_budget_s(a)
    agent._round_deadline = time.monotonic() + 1.0  # already too late: train briefly anyway
    assert agent._training_budget_s(a) == 1.0
