"""scripts/flash for real: over ssh to an OpenSSH server started on a loopback port.

The "board" is this machine (root@127.0.0.1); everything is installed under a temporary
prefix with a user-level unit (written, not started: no systemd runs here). To stay fast the
venv is made by this test's Python and greenfed is installed with --no-deps; its
dependencies come from the test's own environment only when the installed commands run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from tests.deploy.conftest import REPO
from tests.deploy.sshd import SSHD, SshServer, start_sshd
from tests.deploy.test_units import verify

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SSHD.exists(), reason="openssh-server not installed (.ci/run does)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the loopback sshd logs in as root"),
]

FLASH = REPO / "scripts" / "flash"
DEVICE = "pi-7"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    (d / f"{DEVICE}.crt").write_text("-----BEGIN CERTIFICATE-----\ndevice\n")
    (d / f"{DEVICE}.key").write_text("-----BEGIN PRIVATE KEY-----\nsecret\n")
    (d / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nca\n")
    return d


def flash(
    sshd: SshServer,
    prefix: Path,
    wheel: Path,
    certs: Optional[Path],
    *extra: str,
    coordinator: str = "10.1.2.3:50051",
    no_deps: bool = True,
    expect: int = 0,
) -> str:
    """scripts/flash to root@127.0.0.1 with a user unit (the board's Python is this one).

    Its output (stdout, then stderr); the exit status must be ``expect``.
    """
    cmd = [
        sys.executable,
        str(FLASH),
        "root@127.0.0.1",
        "--device-id",
        DEVICE,
        "--coordinator",
        coordinator,
        *(["--cert-dir", str(certs)] if certs is not None else []),
        "--prefix",
        str(prefix),
        "--user-unit",
        "--wheel",
        str(wheel),
        "--python",
        sys.executable,
        *(["--no-deps"] if no_deps else []),
        *sshd.ssh_options(),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == expect, out + sshd.log.read_text()
    return out


def step_results(out: str) -> Dict[str, str]:
    """{step name: its result word} from flash's output."""
    results: Dict[str, str] = {}
    name = ""
    for line in out.splitlines():
        if line.startswith("["):
            name = line.split("]", 1)[1].split()[0]
        elif line.startswith("    ") and not line.startswith(("    $", "    |")) and name:
            results.setdefault(name, line.strip().split(":")[0])
    return results


def tree(root: Path) -> List[Tuple[str, str]]:
    """(path, sha256 or 'dir') of everything under root, for before/after comparisons."""
    out = []
    for p in sorted(root.rglob("*")):
        digest = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_symlink():
            digest = "link:" + os.readlink(p)
        out.append((str(p.relative_to(root)), digest))
    return out


def unit_path() -> Path:
    return Path.home() / ".config" / "systemd" / "user" / "greenfed-agent.service"


@contextlib.contextmanager
def unit_kept() -> Iterator[None]:
    """Put back root's real user unit (~/.config/systemd/user) after flashing over it."""
    unit = unit_path()
    saved = unit.read_bytes() if unit.exists() else None
    try:
        yield
    finally:
        if saved is None:
            unit.unlink(missing_ok=True)
        else:
            unit.write_bytes(saved)


@pytest.fixture(scope="module")
def flashed(
    sshd: SshServer, wheel: Path, certs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tuple[Path, str]]:
    prefix = tmp_path_factory.mktemp("board") / "greenfed"
    with unit_kept():
        yield prefix, flash(sshd, prefix, wheel, certs)


def test_first_run_installs_everything(flashed: Tuple[Path, str]) -> None:
    prefix, out = flashed
    results = step_results(out)
    for step in ("dirs", "copy", "venv", "install", "certs", "config", "unit"):
        assert results[step] == "changed", out
    assert results["pip"] == "skipped", out  # --no-deps: nothing to resolve
    assert "no nvidia-*/triton package; venv " in out  # the CPU-only check ran
    assert results["enable"] == "skipped", out  # no systemd running in this container
    assert "systemctl --user status greenfed-agent" in out
    assert "greenfed-agent probe" in out

    agent = prefix / "venv" / "bin" / "greenfed-agent"
    assert os.access(agent, os.X_OK)
    text = (prefix / "agent.toml").read_text()
    assert f'device_id = "{DEVICE}"' in text
    assert 'coordinator = "10.1.2.3:50051"' in text
    assert (prefix / "certs" / "device.key").stat().st_mode & 0o777 == 0o600
    assert (prefix / "certs" / "ca.crt").read_text().endswith("ca\n")


def test_agent_config_loads_with_the_agent_itself(flashed: Tuple[Path, str]) -> None:
    from edge_agent.config import AgentConfig
    from greenfed.config import load_dataclass

    prefix, _ = flashed
    cfg = load_dataclass(AgentConfig, prefix / "agent.toml")
    assert cfg.device_id == DEVICE
    assert cfg.state_dir == prefix / "state"
    assert cfg.profile_path == prefix / "state" / "calibration.json"  # where calibrate writes
    assert cfg.tls.key == prefix / "certs" / "device.key"
    assert cfg.exit_when_finished is False


def test_installed_commands_run_from_the_venv(flashed: Tuple[Path, str]) -> None:
    prefix, _ = flashed
    # --no-deps: greenfed's dependencies come from this test's environment (PYTHONPATH puts
    # them after nothing that holds greenfed: the editable install there needs its .pth).
    env = dict(os.environ, PYTHONPATH=sysconfig.get_paths()["purelib"])
    py = prefix / "venv" / "bin" / "python"
    where = subprocess.run(
        [str(py), "-c", "import edge_agent; print(edge_agent.__file__)"],
        env=env,
        cwd=prefix,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(prefix / "venv")), where
    help_out = subprocess.run(
        [str(prefix / "venv" / "bin" / "greenfed-agent"), "run", "--help"],
        env=env,
        cwd=prefix,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--config" in help_out


def test_unit_file_is_valid(flashed: Tuple[Path, str], tmp_path: Path) -> None:
    prefix, _ = flashed
    text = unit_path().read_text()
    assert f"ExecStart={prefix}/venv/bin/greenfed-agent run --config {prefix}/agent.toml" in text
    assert "User=" not in text and "SupplementaryGroups=" not in text  # user manager: none
    assert "WantedBy=default.target" in text
    assert "Restart=on-failure" in text and "KillSignal=SIGTERM" in text
    assert "@" not in text.replace("@SYSTEM@", "")
    verify(unit_path(), tmp_path, user=True)


def test_second_run_changes_nothing(
    flashed: Tuple[Path, str], sshd: SshServer, wheel: Path, certs: Path
) -> None:
    prefix, _ = flashed
    before = tree(prefix)
    unit_before = unit_path().read_bytes()
    out = flash(sshd, prefix, wheel, certs)
    results = step_results(out)
    for step in ("dirs", "copy", "venv", "install", "certs", "config", "unit"):
        assert results[step] == "unchanged", out
    assert "done: everything unchanged" in out
    assert tree(prefix) == before
    assert unit_path().read_bytes() == unit_before


def test_changed_input_changes_only_its_step(
    flashed: Tuple[Path, str], sshd: SshServer, wheel: Path, certs: Path
) -> None:
    prefix, _ = flashed
    out = flash(sshd, prefix, wheel, certs, "--coordinator", "10.9.9.9:50051")
    results = step_results(out)
    assert results["config"] == "changed", out
    assert {s for s, r in results.items() if r == "changed"} == {"config"}, out
    assert 'coordinator = "10.9.9.9:50051"' in (prefix / "agent.toml").read_text()
    flash(sshd, prefix, wheel, certs)  # back to the module's inputs for the other tests


def test_dry_run_runs_nothing(
    sshd: SshServer, wheel: Path, certs: Path, tmp_path: Path, flashed: Tuple[Path, str]
) -> None:
    fresh = tmp_path / "never"
    unit_before = unit_path().read_bytes()
    out = flash(sshd, fresh, wheel, certs, "--dry-run")
    assert not fresh.exists()
    assert unit_path().read_bytes() == unit_before
    assert "dry run: nothing was run" in out
    commands = [line for line in out.splitlines() if line.startswith("    $ ssh ")]
    assert any(f"-m venv {fresh}/venv" in c for c in commands), out
    assert any("pip install" in c and "--no-deps" in c for c in commands), out
    assert f'    | device_id = "{DEVICE}"' in out  # the files it would write are shown
    assert "changed" not in step_results(out).values()


def test_dry_run_for_a_pi_caps_torch_and_upgrades_pip(
    sshd: SshServer, wheel: Path, tmp_path: Path
) -> None:
    out = flash(sshd, tmp_path / "pi", wheel, None, "--dry-run", "--board", "rpi", no_deps=False)
    results = step_results(out)
    assert results["pip"] == "dry run" and results["install"] == "dry run", out
    commands = [line for line in out.splitlines() if line.startswith("    $ ssh ")]
    dist = f"{tmp_path}/pi/dist"
    assert any(f"{dist}/aarch64-cpu.txt" in c and "cat >" in c for c in commands), out
    upgrade = [c for c in commands if "--upgrade pip" in c]
    install = [c for c in commands if f"-c {dist}/aarch64-cpu.txt" in c]
    assert upgrade and install, out
    assert commands.index(upgrade[0]) < commands.index(install[0])  # pip first
    assert "x86-cpu.txt" not in out  # the development pin never reaches a board
    assert "torch<2.11" in (REPO / "constraints" / "aarch64-cpu.txt").read_text()


def fake_cuda_wheel(tmp_path: Path) -> Path:
    """A wheel named like one of CUDA torch's libraries (a stand-in: it holds one module)."""
    src = tmp_path / "src"
    (src / "fake_cublas").mkdir(parents=True)
    (src / "fake_cublas" / "__init__.py").write_text("")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "nvidia-cublas-cu12"\nversion = "12.0.0"\n'
        '[tool.setuptools]\npackages = ["fake_cublas"]\n'
    )
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, "-w", str(tmp_path / "w"), str(src)], check=True, timeout=120)
    (whl,) = (tmp_path / "w").glob("*.whl")
    return whl


def test_a_cuda_package_in_the_venv_fails_the_install(
    sshd: SshServer, wheel: Path, tmp_path: Path, flashed: Tuple[Path, str]
) -> None:
    prefix = tmp_path / "board"
    with unit_kept():
        flash(sshd, prefix, wheel, None)
        venv_py = str(prefix / "venv" / "bin" / "python")
        pip = [venv_py, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
        subprocess.run([*pip, str(fake_cuda_wheel(tmp_path))], check=True, timeout=120)
        stamp = prefix / "venv" / ".greenfed-flash"
        stamp.unlink()  # as if greenfed had never been installed there
        out = flash(sshd, prefix, wheel, None, expect=1)
    assert "holds CUDA packages this board cannot use: nvidia-cublas-cu12 12.0.0" in out
    assert f"Remove {prefix}/venv and flash again" in out
    assert not stamp.exists()  # the next run tries again instead of trusting this venv
