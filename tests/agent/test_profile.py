"""One calibration-profile location: ``calibrate`` writes where ``run`` reads, and says so."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import List

import pytest

from edge_agent.calibration import QUICK_UPLINK_TARGET
from edge_agent.cli import main
from edge_agent.commands.calibrate import profile_keys
from edge_agent.config import AgentConfig
from edge_agent.daemon import Agent
from edge_agent.sensing import CalibrationProfile
from greenfed.config import ConfigError, load_dataclass
from tests.e2e.conftest import fixture_profile

BARE = Path(__file__).resolve().parents[1] / "sensing" / "fixtures" / "bare"
# The shortest calibration that still measures every coefficient (seconds, not minutes).
SHORT = ["--rest-s", "0.2", "--step-s", "0.3", "--max-steps", "1", "--upload-mib", "0.25"]
SHORT += ["--workload", "torch-conv", "--batch-size", "8", "--threads", "1"]


def calibrate(config: Path) -> List[str]:
    return ["calibrate", "--config", str(config), "--sysfs-root", str(BARE), *SHORT]


def agent_toml(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'device_id = "pi-1"\nstate_dir = "{tmp_path / "state"}"\n{extra}')
    return path


def test_calibrate_writes_where_run_reads_by_default(tmp_path: Path) -> None:
    config = agent_toml(tmp_path)
    assert main(calibrate(config)) == 0
    expected = tmp_path / "state" / "calibration.json"
    assert load_dataclass(AgentConfig, config).profile_path == expected
    assert json.loads(expected.read_text())["workload"].startswith("torch-conv")


def test_the_profile_key_moves_it_for_both(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "pi-1.json"
    config = agent_toml(tmp_path, f'profile = "{target}"\n')
    assert main(calibrate(config)) == 0
    assert load_dataclass(AgentConfig, config).profile_path == target
    assert target.is_file()  # the missing directory was made
    assert not (tmp_path / "state" / "calibration.json").exists()


def test_profile_keys_of_a_sensing_only_file_are_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "sensing.toml"
    path.write_text('source = "estimated"\n')
    assert profile_keys(path).path == AgentConfig(device_id="x").profile_path
    path.write_text("profile = 5\n")
    with pytest.raises(ConfigError, match="profile: expected a path string"):
        profile_keys(path)


def test_the_old_sensing_key_is_refused_by_name(tmp_path: Path) -> None:
    config = agent_toml(tmp_path, '[sensing]\nprofile_path = "/x.json"\n')
    with pytest.raises(ConfigError, match=r"unknown key sensing\.profile_path"):
        load_dataclass(AgentConfig, config)


def test_run_uses_the_profile_and_says_which(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = AgentConfig(device_id="pi-1", state_dir=tmp_path, sysfs_root=BARE)
    fixture_profile(idle_power_w=3.25).save(cfg.profile_path)
    with caplog.at_level(logging.INFO, logger="edge_agent.calibration"):
        got = Agent(cfg)._load_profile()
    assert got.idle_power_w == 3.25 and got.workload == "test fixture (not measured)"
    assert f"calibration profile {cfg.profile_path} (state_dir/calibration.json)" in caplog.text
    assert "quick calibration" not in caplog.text


def test_without_a_profile_run_says_why_and_calibrates_quickly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = AgentConfig(device_id="pi-1", state_dir=tmp_path, sysfs_root=BARE)
    with caplog.at_level(logging.INFO, logger="edge_agent.calibration"):
        got = Agent(cfg)._load_profile()
    warning = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "edge_agent.calibration"
    ]
    assert len(warning) == 1
    assert f"no calibration profile at {cfg.profile_path}" in warning[0].getMessage()
    assert "greenfed-agent calibrate --config" in warning[0].getMessage()
    assert got.uplink_target == QUICK_UPLINK_TARGET
    saved = CalibrationProfile.load(cfg.profile_path)  # kept for restarts, marked as quick
    assert saved.created_at == got.created_at
    assert "quick calibration at agent start: no profile existed" in saved.notes
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="edge_agent.calibration"):
        again = Agent(cfg)._load_profile()  # a restart: the same coefficients, and a warning
    assert again.created_at == got.created_at
    assert "holds a quick calibration's profile" in caplog.text


def test_an_unwritable_profile_place_does_not_stop_the_agent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = AgentConfig(
        device_id="pi-1", state_dir=tmp_path, profile=blocker / "p.json", sysfs_root=BARE
    )
    with caplog.at_level(logging.INFO, logger="edge_agent.calibration"):
        got = Agent(cfg)._load_profile()
    assert got.uplink_target == QUICK_UPLINK_TARGET
    assert "quick calibration not saved" in caplog.text


def test_quick_calibration_off_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    cfg = AgentConfig(
        device_id="pi-1", state_dir=tmp_path, sysfs_root=BARE, quick_calibration=False
    )
    with pytest.raises(FileNotFoundError, match="greenfed-agent calibrate --device cpu --out"):
        Agent(cfg)._load_profile()
