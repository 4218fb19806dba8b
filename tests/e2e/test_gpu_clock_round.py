"""A round record of a device whose compute clock is the Jetson GPU's (slow: real coordinator).

The coordinator is a real ``greenfed-coordinator serve`` process; the agent runs in this
process on a writable copy of the Orin Nano (JetPack 6) tree: its power comes from the tree's
INA3221 (VDD_IN total, VDD_CPU_GPU_CV the GPU's rail) and its compute clock is the tree's GPU
devfreq node, through the same code as on a board. What this does NOT exercise: CUDA itself.
This machine has no GPU, so the round trains with torch on the CPU while the agent registers,
is assigned, applies (a real clamp of the tree's ``max_freq``) and reports the GPU clock, as
it does when ``device = "cuda"`` picks that clock on a Jetson (tests/agent/test_device.py
checks that choice; scripts/check_cuda.py runs the CUDA round on a GPU machine).
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Callable

import pytest

from coordinator.launcher import LocalRun
from edge_agent.config import AgentConfig
from edge_agent.daemon import Agent
from edge_agent.sensing import GpuFreq
from tests.e2e.conftest import Cluster, rows

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "sensing" / "fixtures"
NODE = "sys/class/devfreq/17000000.gpu"
GPU_STEPS = {306e6, 408e6, 510e6, 612e6, 714e6, 816e6, 918e6, 1020e6}


def test_round_record_carries_the_gpu_clock_and_the_gpu_rail(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    root = tmp_path / "orin"
    shutil.copytree(FIXTURES / "orin_nano_jp6", root)
    c = cluster_factory(rounds=1, min_devices=1)
    run: LocalRun = c.start()
    cfg = AgentConfig(
        coordinator=f"127.0.0.1:{run.port}",
        device_id="orin",
        data="digits:shard=1/4",
        state_dir=tmp_path / "state",  # no profile: the agent's quick calibration, on the GPU clock
        device="cpu",
        sysfs_root=root,
    )
    agent = Agent(cfg, threading.Event(), clock=GpuFreq(root))
    assert agent.run() == 0, c.logs()
    assert run.wait(timeout_s=120) == 0, c.logs()

    (dev,) = rows(c.db, "SELECT * FROM devices")
    profile = json.loads(dev["profile_json"])
    assert profile["clock"] == "gpu-devfreq"
    assert (profile["f_min_hz"], profile["f_max_hz"]) == (306e6, 1020e6)
    assert set(profile["f_steps_hz"]) == GPU_STEPS and dev["dvfs_available"] == 1
    assert dev["train_device"] == "cpu"

    (a,) = rows(c.db, "SELECT * FROM assignments WHERE round = 0")
    assert a["freq_hz"] in GPU_STEPS  # the allocator chose among the GPU's steps
    (rep,) = rows(c.db, "SELECT * FROM reports WHERE round = 0")
    assert rep["dvfs_applied"] == 1 and rep["applied_freq_hz"] == a["freq_hz"]
    assert rep["mean_freq_hz"] == pytest.approx(612e6)  # the GPU cur_freq, not a CPU clock
    assert rep["power_source"] == "ina3221-hwmon" and rep["estimated"] == 0
    assert rep["gpu_rail"] == "VDD_CPU_GPU_CV (CPU, GPU and CV combined)"
    # the tree's rails are constant: the GPU rail's share of the total is theirs
    assert rep["compute_gpu_energy_j"] == pytest.approx(
        rep["compute_energy_j"] * 1.61792 / 5.66272, rel=1e-6
    )
    assert rep["train_device"] == "cpu"
    # the clamp written during the round is gone
    assert (root / NODE / "max_freq").read_text().strip() == "1020000000"
    assert (root / NODE / "min_freq").read_text().strip() == "306000000"
