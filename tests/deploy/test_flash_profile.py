"""A flashed agent's first round uses the full calibration profile that ``calibrate`` wrote.

Through scripts/flash over the loopback sshd (as test_flash.py), then the board's workflow
from docs/boards.md: ``calibrate --config agent.toml`` in the flashed venv, then the agent
against a real coordinator. The registration the coordinator stored must carry that profile,
not a quick calibration's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sysconfig
from pathlib import Path
from typing import Iterator

import pytest

from coordinator.launcher import LocalRun, start_coordinator
from tests.deploy.sshd import SSHD, SshServer, start_sshd
from tests.deploy.test_flash import DEVICE, flash, unit_kept
from tests.e2e.conftest import FAST, rows, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SSHD.exists(), reason="openssh-server not installed (.ci/run does)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the loopback sshd logs in as root"),
]


@pytest.fixture()
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    server = start_sshd(tmp_path / "sshd")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def coordinator(tmp_path: Path) -> Iterator[LocalRun]:
    run_dir = tmp_path / "coordinator"
    run_dir.mkdir()
    with open(run_dir / "coordinator.log", "ab") as out:  # the child keeps its copy
        run = start_coordinator(run_dir, {**FAST, "rounds": 1, "min_devices": 1}, stdout=out)
    try:
        yield run
    finally:
        run.close()


def test_flashed_agent_registers_with_its_full_profile(
    sshd: SshServer, wheel: Path, coordinator: LocalRun, tmp_path: Path
) -> None:
    prefix = tmp_path / "board" / "greenfed"
    with unit_kept():
        flash(sshd, prefix, wheel, None, coordinator=f"127.0.0.1:{coordinator.port}")
    # --no-deps: greenfed's dependencies come from this test's environment (test_flash.py).
    env = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"])
    agent = str(prefix / "venv" / "bin" / "greenfed-agent")
    config = str(prefix / "agent.toml")
    short = ["--rest-s", "0.3", "--step-s", "0.5", "--max-steps", "1", "--upload-mib", "0.25"]
    short += ["--workload", "torch-conv", "--batch-size", "8", "--threads", "1"]
    done = subprocess.run(
        [agent, "calibrate", "--config", config, *short],
        env=env,
        cwd=prefix,
        capture_output=True,
        text=True,
        timeout=180,
    )
    written = prefix / "state" / "calibration.json"
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"profile written to {written}" in done.stdout
    full = json.loads(written.read_text())

    log_path = tmp_path / "agent.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [agent, "run", "--config", config], env=env, cwd=prefix, stdout=log, stderr=log
        )
    try:
        db = coordinator.run_dir / "state" / "greenfed.sqlite"
        wait_for(
            "the flashed agent's first round",
            lambda: rows(db, "SELECT * FROM reports WHERE device_id = ?", (DEVICE,)),
            timeout_s=240,
        )
        (device,) = rows(db, "SELECT profile_json FROM devices WHERE id = ?", (DEVICE,))
        (report,) = rows(db, "SELECT round, error FROM reports WHERE device_id = ?", (DEVICE,))
    finally:
        proc.send_signal(signal.SIGTERM)  # exit_when_finished = false: a service waits on
        proc.wait(timeout=60)
    registered = json.loads(device["profile_json"])
    assert (registered["created_at"], registered["workload"]) == (
        full["created_at"],
        full["workload"],
    )
    for key in ("idle_power_w", "uplink_bytes_per_s", "energy_per_byte_j"):
        assert registered[key] == pytest.approx(full[key], rel=1e-6), key
    assert registered["workload"].startswith("torch-conv")  # the quick one trains the DDPM
    assert report["round"] == 0 and not report["error"]  # rounds count from 0
    text = log_path.read_text()
    assert f"calibration profile {written} (`profile`)" in text, text
    assert "quick calibration" not in text, text
