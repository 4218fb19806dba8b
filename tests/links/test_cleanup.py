"""Acceptance: after a SIGKILLed experiment, ``greenfed-coordinator links cleanup`` leaves
``ip netns list`` and ``tc qdisc`` as they were before it, and no process of it runs on."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from coordinator.links import kernel, registry
from tests.e2e.conftest import wait_for
from tests.links.conftest import skip_unless_shaping

pytestmark = pytest.mark.slow


def _state() -> tuple:
    return (sorted(kernel.netns_list()), kernel.run(["tc", "qdisc", "show"]).stdout)


def _mine(before: List[str]) -> List[str]:
    return [ns for ns in kernel.netns_list() if ns not in before and kernel.NS_PATTERN.match(ns)]


def test_cleanup_after_a_sigkilled_experiment(tmp_path: Path) -> None:
    skip_unless_shaping()
    before = _state()
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordinator.cli", "experiment", "--out", str(tmp_path / "exp"),
         "--schemes", "fp32", "--rounds", "50", "--devices", "2", "--links", "traces",
         "--link-backend", "shaped", "--local-steps", "2", "--eval-samples", "8",
         "--fleet-sizes", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # Wait until the run has its hub and both devices' namespaces, with agents inside.
        names = wait_for(
            "the experiment's namespaces and agents",
            lambda: (
                lambda ns: ns if len(ns) == 3 and all(kernel.netns_pids(n) for n in ns) else None
            )(_mine(before[0])),
            timeout_s=180,
        )
        inside = sorted({pid for ns in names for pid in kernel.netns_pids(ns)})
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # SIGKILL left everything behind: the namespaces, and the processes running in them.
    assert set(names) <= set(kernel.netns_list())
    # (a short-lived helper seen inside a namespace may have exited on its own meanwhile)
    survivors = [pid for pid in inside if registry.alive(pid, None)]
    assert survivors, "SIGKILL should have left the agents running in their namespaces"
    out = subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "links", "cleanup"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert names[0].split("-")[0] in out.stdout
    assert _state() == before
    assert not any(registry.alive(pid, None) for pid in survivors)
    assert not any(r.prefix == names[0].split("-")[0] for r in registry.records())
