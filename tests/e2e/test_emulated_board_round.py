"""Rounds of an emulated board through a real coordinator (slow: real processes).

The coordinator is a real ``greenfed-coordinator serve`` process; the agent runs in this
process with ``[sensing.emulated]`` pointing at a writable copy of a cgroup v1 tree
(tests/boards/fixtures), so its clock and power go through the same code as in a local run's
cgroup: it registers the profile's steps, is assigned one, writes the quota and reads it back,
and restores it after each round. What this does NOT exercise: the kernel itself (this
process is not in that cgroup, so the tree's CPU time stays still and the power is the idle
model); tests/boards/test_board_clock.py runs a board in a real cgroup.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Callable, List

import pytest

from coordinator.launcher import LocalRun
from edge_agent.config import AgentConfig
from edge_agent.daemon import Agent
from edge_agent.sensing import EmulatedBoardConfig, SensingConfig
from greenfed.boards import get_profile
from greenfed.v1 import fleet_pb2 as pb
from tests.boards.conftest import V1_BOARD, tree
from tests.e2e.conftest import Cluster, rows

pytestmark = pytest.mark.slow

STEPS = set(get_profile("rpi4").steps_hz)


def test_rounds_of_an_emulated_board_apply_and_restore_its_clock(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    root = tree(tmp_path, "cgroup_v1")
    quota = root / V1_BOARD[0] / "cpu.cfs_quota_us"
    c = cluster_factory(rounds=2, min_devices=1)
    run: LocalRun = c.start()
    board = EmulatedBoardConfig(profile="rpi4", cpu_share=0.2, cgroup="/" + V1_BOARD[0],
                                cgroup_acct="/" + V1_BOARD[1])  # fmt: skip
    cfg = AgentConfig(
        coordinator=f"127.0.0.1:{run.port}",
        device_id="pi",
        data="digits:shard=1/4",
        state_dir=tmp_path / "state",  # no profile: the quick calibration, on the board's clock
        device="cpu",
        sysfs_root=root,
        sensing=SensingConfig(emulated=board),
    )
    agent = Agent(cfg, threading.Event())
    after_round: List[str] = []
    run_round = agent.run_round

    def spy(a: pb.Assignment) -> None:
        run_round(a)
        after_round.append(quota.read_text().strip())

    agent.run_round = spy  # type: ignore[method-assign]
    assert agent.run() == 0, c.logs()
    assert run.wait(timeout_s=120) == 0, c.logs()

    assert after_round == ["10000", "10000"]  # the top step's quota, back after every round
    (dev,) = rows(c.db, "SELECT * FROM devices")
    assert dev["board"] == "emulated board rpi4" and dev["dvfs_available"] == 1
    profile = json.loads(dev["profile_json"])
    assert profile["clock"] == "emulated" and set(profile["f_steps_hz"]) == STEPS
    for a, rep in zip(
        rows(c.db, "SELECT * FROM assignments ORDER BY round"),
        rows(c.db, "SELECT * FROM reports ORDER BY round"),
    ):
        assert a["freq_hz"] in STEPS  # the allocator chose among the board's steps
        assert rep["dvfs_applied"] == 1 and rep["applied_freq_hz"] == a["freq_hz"]
        assert rep["mean_freq_hz"] == pytest.approx(a["freq_hz"])  # it ran at that clock
        assert rep["power_source"] == "emulated-board" and rep["estimated"] == 1
        assert rep["power_scope"].startswith("emulated board rpi4 (")
