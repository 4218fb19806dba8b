"""The estimated model's busy fraction: this agent's process tree, or the whole machine."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from edge_agent.sensing import BOARD_CLASSES, EstimatedSource, SensingConfig, make_context
from edge_agent.sensing.utilisation import (
    ProcessTreeUtilisation,
    SystemUtilisation,
    make_utilisation,
)
from tests.sensing.conftest import FIXTURES, FakeClock


def burn_cpu(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_own_cpu_time_per_wall_second_over_the_cpus() -> None:
    t = FakeClock()
    util = ProcessTreeUtilisation(clock=t, cpus=2)
    burn_cpu(0.3)  # at least 0.3 CPU-seconds of this process (psutil counts 10 ms ticks)
    t.advance(1.0)
    u = util()
    assert 0.12 <= u <= 0.5  # ~0.3 s over 1 s and 2 CPUs; less than the whole machine
    t.advance(1.0)
    assert util() < 0.05  # idle since (only the test's own bookkeeping)


def test_a_child_counts_another_process_does_not() -> None:
    code = "import time; e = time.process_time() + 0.3\nwhile time.process_time() < e: pass"
    t = FakeClock()
    util = ProcessTreeUtilisation(clock=t, cpus=1)
    subprocess.run([sys.executable, "-c", code], check=True)  # a child, reaped
    t.advance(1.0)
    assert util() >= 0.3  # its 0.3 CPU-seconds are this tree's (children_user/system)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        t2 = FakeClock()
        theirs = ProcessTreeUtilisation(pid=other.pid, clock=t2, cpus=1)
        burn_cpu(0.2)  # this process works; the sleeping process's tree does not
        t2.advance(1.0)
        assert theirs() < 0.05
    finally:
        other.kill()
        other.wait()


def test_the_scope_says_which_utilisation_was_used() -> None:
    own = EstimatedSource.open(make_context(SensingConfig(), FIXTURES / "bare"))
    assert "utilisation: this agent's process tree (psutil)" in own.scope
    ctx = make_context(SensingConfig(utilisation="system"), FIXTURES / "bare")
    system = EstimatedSource.open(ctx)
    assert "utilisation: all CPUs of the machine" in system.scope
    assert isinstance(make_utilisation("system"), SystemUtilisation)
    given = EstimatedSource(BOARD_CLASSES["rpi4"], 0.1, utilisation=lambda: 0.5)
    assert "utilisation: a given reader" in given.scope
    with pytest.raises(ValueError, match="utilisation must be one of process, system"):
        SensingConfig(utilisation="cgroup")
