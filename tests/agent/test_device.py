"""The training device: auto / cpu / cuda, resolved with clear errors; the round and the
calibration workload run there; the compute clock follows it; a profile calibrated on another
device is refused with the command that fixes it.

Tests marked ``cuda`` run only where torch sees a GPU (skipped here: this machine has none);
scripts/check_cuda.py measures the same paths with figures on a GPU machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict

import numpy as np
import pytest
import torch

from edge_agent.config import AgentConfig
from edge_agent.sensing import CalibrationError, CalibrationProfile, CpuFreq, GpuFreq
from edge_agent.training import LocalPlan, make_training
from edge_agent.training.device import compute_clock, resolve_device, torch_report
from edge_agent.training.workloads import default_workload
from greenfed import ddpm
from greenfed.errors import ConfigError

FIXTURES = Path(__file__).resolve().parents[1] / "sensing" / "fixtures"


def fake_torch(built: Any, available: bool) -> Any:
    """A torch as NVIDIA's and the registry's builds present themselves (only what is read)."""
    return SimpleNamespace(
        __version__="2.1.0a0+41361538.nv23.06",
        version=SimpleNamespace(cuda=built),
        cuda=SimpleNamespace(is_available=lambda: available, get_device_name=lambda i: "Orin"),
        distributed=SimpleNamespace(is_available=lambda: False),
    )


def _model_config() -> Dict[str, Any]:
    cfg = {"unet": ddpm.preset("pi-small").to_dict(), "schedule": ddpm.ScheduleConfig().to_dict()}
    return dict(json.loads(json.dumps(cfg)))


def test_cpu_and_auto_resolve_to_the_cpu_here() -> None:
    assert not torch.cuda.is_available()  # this machine: torch 2.13.0+cpu
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ConfigError, match=r"device = 'cuda'.*CPU-only build.*JetPack wheel"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda"):
        resolve_device("gpu")


def test_auto_takes_cuda_where_torch_has_it_and_says_why_not_otherwise() -> None:
    jetson = fake_torch("11.4", True)
    assert resolve_device("auto", jetson) == "cuda" == resolve_device("cuda", jetson)
    no_gpu = fake_torch("12.2", False)
    assert resolve_device("auto", no_gpu) == "cpu"
    with pytest.raises(ConfigError, match=r"CUDA 12.2\) sees no GPU.*group video"):
        resolve_device("cuda", no_gpu)
    rep = torch_report(jetson)
    assert rep["cuda_available"] and rep["cuda_device"] == "cuda:0 Orin"
    assert not rep["distributed"] and "built without torch.distributed" in rep["distributed_reason"]


def test_the_config_and_the_cli_take_the_device() -> None:
    assert AgentConfig(device_id="a").device == "auto"
    with pytest.raises(ConfigError, match="device must be auto, cpu or cuda"):
        AgentConfig(device_id="a", device="gpu")
    from edge_agent.cli import build_parser

    args = build_parser().parse_args(["run", "--device", "cuda"])
    assert args.device == "cuda"
    assert build_parser().parse_args(["calibrate"]).device == "auto"


def test_the_compute_clock_follows_the_device() -> None:
    root = FIXTURES / "orin_nano_jp6"
    assert isinstance(compute_clock("cpu", root), CpuFreq)
    gpu = compute_clock("cuda", root)
    assert isinstance(gpu, GpuFreq) and gpu.read().freq_hz == 612e6
    assert gpu.name == "gpu-devfreq"


def test_a_round_on_the_cpu_device_trains_and_returns_host_arrays() -> None:
    images = ddpm.load_data("digits:shard=1/4").images
    trainer = make_training(_model_config(), images, "cpu")
    start = ddpm.get_state_arrays(ddpm.build_model(ddpm.preset("pi-small")))
    trainer.load_global(start)
    plan = LocalPlan(steps=2, batch_size=8, learning_rate=1e-3, seed=4, max_seconds=60)
    res = trainer.train(plan)
    assert res.steps == 2 and all(isinstance(v, np.ndarray) for v in res.update.values())
    assert next(trainer.model.parameters()).device.type == "cpu"  # type: ignore[attr-defined]


def test_the_calibration_workload_names_its_device() -> None:
    step, name = default_workload("torch-conv", 8, device="cpu")
    assert step() == 8 and "on cpu" in name


def test_a_profile_calibrated_on_another_device_is_refused(tmp_path: Path) -> None:
    from edge_agent.daemon import Agent

    profile = tmp_path / "calibration.json"
    CalibrationProfile(
        idle_power_w=5.0, kappa=1e-27, cycles_per_sample=2e6, uplink_bytes_per_s=1e7,
        energy_per_byte_j=1e-7, f_min_hz=306e6, f_max_hz=1020e6, f_steps_hz=[306e6, 1020e6],
        source="ina3221-hwmon", scope="VDD_IN", estimated=False, clock="gpu-devfreq",
        device="cuda",
    ).save(profile)  # fmt: skip
    cfg = AgentConfig(device_id="a", state_dir=tmp_path, profile=profile, device="cpu",
                      sysfs_root=tmp_path)  # fmt: skip
    agent = Agent(cfg)
    with pytest.raises(CalibrationError, match=r"calibrated on cuda.*calibrate --device cpu"):
        agent._load_profile()


# -- on a CUDA machine only ----------------------------------------------------------------
@pytest.mark.cuda
def test_cuda_round_matches_the_cpu_round_and_comes_back_to_host_memory() -> None:
    images = ddpm.load_data("digits:shard=1/4").images
    start = ddpm.get_state_arrays(ddpm.build_model(ddpm.preset("pi-small")))
    plan = LocalPlan(steps=5, batch_size=32, learning_rate=1e-3, seed=7, max_seconds=120)
    results = {}
    for device in ("cpu", "cuda"):
        trainer = make_training(_model_config(), images, device)
        trainer.load_global(start)
        results[device] = trainer.train(plan)
    cpu, gpu = results["cpu"], results["cuda"]
    assert all(isinstance(v, np.ndarray) for v in gpu.update.values())
    # the same batches, timesteps and noise (drawn on the CPU generator): the same losses
    # up to the GPU kernels' rounding
    np.testing.assert_allclose(gpu.losses, cpu.losses, rtol=2e-2)
    for k, v in cpu.update.items():
        np.testing.assert_allclose(gpu.update[k], v, atol=5e-3)


@pytest.mark.cuda
def test_cuda_is_chosen_by_auto_and_the_workload_runs_there() -> None:
    assert resolve_device("auto") == "cuda"
    step, name = default_workload("ddpm", 16, device="cuda")
    assert step() == 5 * 16 and "on cuda" in name
