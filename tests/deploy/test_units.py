"""The systemd unit templates, rendered as scripts/flash renders them, checked by systemd."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import REPO
from tests.deploy.test_config import load_script

UNITS = REPO / "deploy" / "systemd"


def render(name: str, prefix: Path, system: bool, groups: str = "") -> str:
    flash = load_script("flash")
    values = {
        "PREFIX": str(prefix),
        "USER": "root",
        "GROUPS": groups,
        "WANTED_BY": "multi-user.target" if system else "default.target",
    }
    return str(flash.render_unit((UNITS / name).read_text(), values, system=system))


def fake_prefix(tmp_path: Path) -> Path:
    """A prefix whose venv/bin holds the real console scripts (systemd checks ExecStart)."""
    prefix = tmp_path / "opt" / "greenfed"
    (prefix / "venv" / "bin").mkdir(parents=True)
    for script in ("greenfed-agent", "greenfed-coordinator"):
        (prefix / "venv" / "bin" / script).symlink_to(REPO / ".venv" / "bin" / script)
    return prefix


def verify(path: Path, tmp_path: Path, user: bool) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime))
    cmd = [analyze, "verify", *(["--user"] if user else []), str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    if "Failed to initialize manager" in proc.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {proc.stderr.strip()}")
    about_us = [line for line in proc.stderr.splitlines() if path.name in line]
    assert proc.returncode == 0 and not about_us, proc.stderr


@pytest.mark.parametrize(
    "name, system, groups",
    [
        ("greenfed-agent.service", True, "video i2c"),
        ("greenfed-agent.service", True, ""),
        ("greenfed-agent.service", False, ""),
        ("greenfed-coordinator.service", True, ""),
        ("greenfed-coordinator.service", False, ""),
    ],
)
def test_rendered_units_verify(name: str, system: bool, groups: str, tmp_path: Path) -> None:
    prefix = fake_prefix(tmp_path)
    text = render(name, prefix, system, groups)
    assert "@" not in text
    assert ("User=root" in text) == system
    assert ("SupplementaryGroups=" in text) == bool(groups and system)
    assert "Restart=on-failure" in text and "After=network-online.target" in text
    assert "KillSignal=SIGTERM" in text and "TimeoutStopSec=" in text
    unit = tmp_path / name
    unit.write_text(text)
    verify(unit, tmp_path, user=not system)


def test_unknown_placeholder_is_an_error() -> None:
    flash = load_script("flash")
    with pytest.raises(flash.FlashError, match="@NOPE@"):
        flash.render_unit("[Service]\nUser=@NOPE@\n", {}, system=True)


def test_broken_unit_fails_verify(tmp_path: Path) -> None:
    # The check above can fail: a unit with a relative ExecStart is rejected.
    unit = tmp_path / "greenfed-broken.service"
    unit.write_text("[Service]\nExecStart=venv/bin/greenfed-agent\n")
    with pytest.raises(AssertionError):
        verify(unit, tmp_path, user=False)


def test_find_certs_in_make_certs_layout(tmp_path: Path) -> None:
    flash = load_script("flash")
    (tmp_path / "devices").mkdir()
    for name in ("ca.pem", "ca.key", "devices/pi-1.pem", "devices/pi-1.key", "devices/pi-2.pem"):
        (tmp_path / name).write_text(name)
    for given in (tmp_path, tmp_path / "devices"):
        found = flash.find_certs(given, "pi-1")
        assert found == {
            "device.crt": tmp_path / "devices" / "pi-1.pem",
            "device.key": tmp_path / "devices" / "pi-1.key",
            "ca.crt": tmp_path / "ca.pem",
        }
    with pytest.raises(flash.FlashError, match=r"pi-2\.key"):
        flash.find_certs(tmp_path, "pi-2")
