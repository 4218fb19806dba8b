"""The wheel as a user gets it: built, installed into a fresh venv, console scripts run.

The fresh venv has no system site packages: every dependency comes from the configured package
index (torch pinned to the CPU build by constraints/x86-cpu.txt on x86_64), as on a user's
machine. About a minute here, most of it torch.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO

pytestmark = pytest.mark.slow


def test_wheel_holds_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "greenfed/data/digits.npz",
        "greenfed/data/digits_classifier.npz",
        "greenfed/data/mnist8.npz",
        "greenfed/data/mnist8_classifier.npz",
        "greenfed/data/backbone-pi-small-digits.npz",
        "greenfed/py.typed",
        "coordinator/examples/fleet.json",
        "coordinator/links/traces/lte-walk.csv",
        "coordinator/links/traces/README.md",
        "greenfed/v1/fleet_pb2.py",
        "edge_agent/cli.py",
        "coordinator/metrics.py",
    ):
        assert required in names, f"{required} missing from {wheel.name}"
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "greenfed-agent = edge_agent.cli:main" in text
    assert "greenfed-coordinator = coordinator.cli:main" in text
    assert not any(n.startswith("tests/") for n in names)


def test_fresh_venv_runs_console_scripts(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    py = venv / "bin" / "python"
    constraints = ["-c", str(REPO / "constraints" / "x86-cpu.txt")]
    if platform.machine() != "x86_64":
        constraints = []
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, *constraints, str(wheel)],
        check=True,
        timeout=240,
    )
    # Run from an empty directory so nothing resolves to the repository's sources.
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    where = subprocess.run(
        [str(py), "-c", "import edge_agent, greenfed as g; print(edge_agent.__file__, g.__file__)"],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert str(REPO) not in where and str(venv) in where

    for script in ("greenfed-agent", "greenfed-coordinator"):
        out = subprocess.run(
            [str(venv / "bin" / script), "--help"],
            cwd=cwd,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        assert out.startswith(f"usage: {script}")

    probe = subprocess.run(
        [str(venv / "bin" / "greenfed-agent"), "probe", "--json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    report = json.loads(probe.stdout)
    names = [s["name"] for s in report["sources"]]
    assert names[-1] == "estimated"
    if not any(s["available"] for s in report["sources"][:-1]):
        # This CI machine has no power sensor: the fallback must say so, loudly.
        assert report["chosen"]["name"] == "estimated"
        assert report["chosen"]["estimated"] is True
        assert any("ESTIMATED" in n for n in report["notes"])
    else:  # pragma: no cover - a machine with RAPL or a battery readable by this user
        assert report["chosen"]["estimated"] is False
