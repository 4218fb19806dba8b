"""SIGTERM while DVFS limits are being written: no deadlock, the limits come back.

A real process (the agent's start-up on a copied Orin tree) clamps once, as calibration's
first step does, then is paused inside the next ``apply()`` between two sysfs writes, at the
one file-opening seam; the test then sends SIGTERM. Before the fix the handler (installed by
the first clamp) waited for the lock that ``apply()`` held on the same thread: the process
hung until systemd's kill and the CPU stayed clamped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[2]
POLICY0 = "sys/devices/system/cpu/cpufreq/policy0"

CHILD = textwrap.dedent(
    """
    import sys, signal, threading
    from pathlib import Path
    from edge_agent.config import AgentConfig
    from edge_agent.daemon import Agent
    from edge_agent.sensing import sysfs

    root, state, chain = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    stop = threading.Event()
    if chain == "agent":  # what `greenfed-agent run` installs before the agent starts
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    agent = Agent(AgentConfig(device_id="board", state_dir=state, sysfs_root=root), stop)
    real_open, paused = sysfs._open, []

    def pausing_open(path, mode="r", *a, **kw):
        if "w" in mode and not paused:  # the first limit write of apply(): wait here
            paused.append(path)
            print("in-apply", flush=True)
            sys.stdin.readline()  # SIGTERM arrives during this read
        return real_open(path, mode, *a, **kw)

    agent.cpu.apply(1.2e9)  # a first step, as calibration walks its steps: guard installed
    sysfs._open = pausing_open
    res = agent.cpu.apply(1.0e9)
    limit = (root / "POLICY0/scaling_max_freq").read_text().strip()
    print(f"applied={res.applied} stop={stop.is_set()} limit={limit}", flush=True)
    agent.close()
    """
).replace("POLICY0", POLICY0)


def _run(tmp_path: Path, chain: str) -> subprocess.CompletedProcess:
    root = tmp_path / "orin"
    shutil.copytree(FIXTURES / "orin_nano_jp6", root)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(tmp_path / "state"), chain],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "in-apply", proc.stderr.read()  # type: ignore[union-attr]
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate("go\n", timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the process hung in the SIGTERM handler (lock re-entry)")
    for policy in ("policy0", "policy4"):
        limit = (root / POLICY0.replace("policy0", policy) / "scaling_max_freq").read_text()
        assert limit.strip() == "1510400", f"{policy} left clamped"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.skipif(os.geteuid() != 0, reason="DVFS writes need root (the tree is writable)")
def test_agent_signalled_during_apply_restores_and_stops(tmp_path: Path) -> None:
    done = _run(tmp_path, "agent")
    assert done.returncode == 0, done.stderr
    # apply() finished its writes, restored, then the agent's own handler asked it to stop
    assert "applied=False stop=True limit=1510400" in done.stdout, done.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="DVFS writes need root (the tree is writable)")
def test_default_sigterm_during_apply_restores_then_dies_by_the_signal(tmp_path: Path) -> None:
    done = _run(tmp_path, "default")
    assert done.returncode == -signal.SIGTERM, (done.stdout, done.stderr)
    assert "applied=" not in done.stdout  # died the way SIGTERM kills, after restoring
