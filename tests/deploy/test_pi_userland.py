"""scripts/pi-userland-check end to end: greenfed flashed into an emulated Pi 5 userland.

Not part of the 10-minute suite: under qemu-user the first install alone takes tens of
minutes. Run it on purpose, as root, with network access to Debian's mirror and the registry:

    GREENFED_EMULATION=1 .venv/bin/python -m pytest -q -m emulation tests/deploy/test_pi_userland.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO

pytestmark = [
    pytest.mark.emulation,
    pytest.mark.skipif(
        not os.environ.get("GREENFED_EMULATION"),
        reason="emulated Pi 5 userland: set GREENFED_EMULATION=1 (tens of minutes, network)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap, chroot and mounts need root"),
]


@pytest.mark.timeout(3 * 3600)
def test_a_pi_userland_installs_a_cpu_torch_and_runs_two_rounds(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    cmd = [sys.executable, str(REPO / "scripts" / "pi-userland-check"), "--json-out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3 * 3600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())

    first, again = r["flash"]["steps"], r["flash_again"]["steps"]
    assert first["install"].startswith("changed: torch 2.10"), first
    assert r["cuda_packages"] == [] and "nvidia-cublas-cu12" not in r["packages"]
    assert first["pip"].startswith(("changed: pip", "unchanged: pip")), first
    assert all(not v.startswith("changed") for v in again.values()), again

    assert r["probe"]["chosen"]["name"] == "estimated"  # no sensor under emulation
    assert r["calibration"]["workload"]  # calibrate ran in the root and wrote a profile
    run = r["run"]
    assert [x["status"] for x in run["rounds"]] == ["completed", "completed"], run["rounds"]
    assert [x["round"] for x in run["reports"]] == [0, 1]
    assert all(not x["error"] and x["samples"] > 0 for x in run["reports"]), run["reports"]
    (device,) = run["device"]
    assert json.loads(device["profile_json"])["created_at"] == r["calibration"]["created_at"]
