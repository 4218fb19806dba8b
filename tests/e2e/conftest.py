"""Helpers for end-to-end tests: real coordinator and agent processes on loopback."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, TypeVar

import pytest

from coordinator.launcher import AgentSpec, LocalRun, start_coordinator
from coordinator.links.base import LinkSet
from edge_agent.sensing import CalibrationProfile
from greenfed.v1 import fleet_pb2 as pb

T = TypeVar("T")

# Small and quick: the point is the protocol, not the model.
FAST: Dict[str, Any] = {
    "local_steps": 8,
    "batch_size": 32,
    "eval_samples": 16,
    "eval_ddim_steps": 4,
    "poll_interval_s": 1.0,
    "grace_s": 1.0,
    "deadline_s": 60.0,
}


# The calibration profile raw test clients register with: fixture values, labelled as such.
PROFILE = pb.CalibrationProfile(
    idle_power_w=5,
    kappa=1e-27,
    cycles_per_sample=2e6,
    uplink_bytes_per_s=1e7,
    energy_per_byte_j=1e-7,
    source="estimated",
    scope="test",
    estimated=True,
)


def wait_for(what: str, fn: Callable[[], Optional[T]], timeout_s: float = 90.0) -> T:
    """Poll ``fn`` until it returns something truthy (bounded; fails the test on timeout)."""
    end = time.monotonic() + timeout_s
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.1)


def spooling(spool: Path, device_id: str) -> bool:
    """Whether ``device_id`` has upload bytes in the coordinator's spool (a stream's own file,
    or a held part; files come and go, so a vanished one counts as none)."""
    for p in spool.glob(f"*{device_id}*"):
        try:
            if p.stat().st_size > 0:
                return True
        except FileNotFoundError:
            continue
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rows(db: Path, sql: str, params: tuple = ()) -> List[Dict[str, Any]]:
    """Read the coordinator's store from the test process (WAL allows concurrent readers)."""
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params).fetchall()]
    except sqlite3.OperationalError:
        return []  # schema not created yet
    finally:
        con.close()


def fixture_profile(**changes: Any) -> CalibrationProfile:
    """A calibration profile of fixture values, labelled as such; real agents measure theirs."""
    values: Dict[str, Any] = {
        "idle_power_w": 5.0,
        "kappa": 1e-27,
        "cycles_per_sample": 2e6,
        "uplink_bytes_per_s": 1e7,
        "energy_per_byte_j": 1e-7,
        "f_min_hz": None,
        "f_max_hz": None,
        "f_steps_hz": [],
        "source": "estimated",
        "scope": "test fixture",
        "estimated": True,
        "workload": "test fixture (not measured)",
    }
    return CalibrationProfile(**{**values, **changes})


@pytest.fixture(scope="session")
def profile_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A calibration profile for test agents, so each skips its quick calibration."""
    path = tmp_path_factory.mktemp("profile") / "calibration.json"
    fixture_profile().save(path)
    return path


class Cluster:
    """One coordinator (restartable on the same port) and its agents."""

    def __init__(self, root: Path, profile: Path, values: Dict[str, Any]) -> None:
        self.root = root
        self.profile = profile
        self.port = free_port()
        self.values = {**FAST, "listen": f"127.0.0.1:{self.port}", **values}
        self.run: Optional[LocalRun] = None
        self.db = root / "state" / "greenfed.sqlite"
        self.links: Optional[LinkSet] = None  # shaped links: set before start(), owned by the run

    def start(self) -> LocalRun:
        old_agents = self.run.agents if self.run is not None else {}
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "coordinator.log", "ab") as out:  # the child keeps its copy
            self.run = start_coordinator(self.root, self.values, stdout=out, links=self.links)
        self.run.agents.update(old_agents)
        return self.run

    def agent(self, device_id: str, shard: str, **extra: Any) -> None:
        assert self.run is not None
        spec = AgentSpec(device_id, f"digits:{shard}", extra.pop("uplink_mbps", None))
        self.run.start_agent(spec, {"profile": str(self.profile), **extra})

    def rounds(self) -> List[Dict[str, Any]]:
        return rows(self.db, "SELECT * FROM rounds ORDER BY round")

    def completed(self) -> int:
        return sum(1 for r in self.rounds() if r["status"] == "completed")

    def close(self) -> None:
        if self.run is not None:
            self.run.close()

    def logs(self) -> str:
        parts = []
        for p in sorted(self.root.rglob("*.log")):
            parts.append(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


@pytest.fixture
def cluster_factory(tmp_path: Path, profile_path: Path) -> Iterator[Callable[..., Cluster]]:
    made: List[Cluster] = []

    def make(**values: Any) -> Cluster:
        c = Cluster(tmp_path / f"run{len(made)}", profile_path, values)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
