"""The emulated boards of one local run: a cgroup and a profile per agent, removed at the end.

:class:`BoardSet` is to boards what a ``LinkSet`` is to links: the launcher asks it, per agent,
for an :class:`AgentBoard` (an argv prefix that starts the agent inside its group, and the
``[sensing.emulated]`` table that tells the agent which board it is) and closes it when the run
ends: the agents still inside are stopped, the groups and the run's record removed. ``close``
is safe to call twice and after a failure; after a SIGKILL, ``boards cleanup`` (or
``links cleanup``) does it.

:func:`boards_for_run` picks: ``emulated`` (or fail, saying why), ``none`` (today's plain
agents), or ``auto``: emulated where this machine allows it (root and a CPU controller),
else plain agents with the reason, which demo and experiment print.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from coordinator.boards import groups
from coordinator.boards.errors import BoardError, BoardsUnavailable
from coordinator.boards.fleet import FleetScale
from coordinator.boards.registry import BoardRecord
from greenfed.boards import BoardProfile, CpuGroup, Hierarchy

log = logging.getLogger(__name__)

MODES = ("auto", "emulated", "none")
DEFAULT_PERIOD_US = 50_000  # CFS period: 50 ms keeps the slowest step's quota above 1 ms


@dataclass
class AgentBoard:
    """One device's board as attached: how to start its agent, what its config must say."""

    device_id: str
    profile: BoardProfile
    cpus: float  # host CPUs at the top step
    group: CpuGroup
    argv_prefix: List[str] = field(default_factory=list)
    agent_values: Dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return (f"emulated board {self.profile.name} ({self.cpus:.2f} host CPUs at "
                f"{self.profile.f_max_hz / 1e9:.2f} GHz)")  # fmt: skip


class BoardSet:
    """The emulated boards of one local run (module docstring)."""

    def __init__(
        self,
        run_dir: Path,
        hierarchy: Hierarchy,
        scale: FleetScale,
        weight: int = groups.MAX_WEIGHT,
        period_us: int = DEFAULT_PERIOD_US,
    ) -> None:
        self.hierarchy = hierarchy
        self.scale = scale
        self.period_us = period_us
        self.prefix = "gf" + secrets.token_hex(3)
        self.name = f"greenfed-{self.prefix}"
        self.dir = Path(run_dir) / "boards"
        self.boards: Dict[str, AgentBoard] = {}
        self.note = scale.note
        self._closed = False
        dirs = groups.run_dirs(hierarchy, self.name)
        self.record = BoardRecord.create(  # before any mkdir: a kill leaves nothing unclaimed
            self.prefix, str(run_dir), directories=[str(d) for d in dirs]
        )
        try:
            groups.create_run(hierarchy, self.name, weight)
        except BaseException:
            self.close()
            raise
        log.info("emulated boards: run %s under %s", self.name, hierarchy.describe())

    @property
    def label(self) -> str:
        return f"emulated boards ({self.hierarchy.describe()})"

    def attach(self, device_id: str, profile: BoardProfile, threads: int = 1) -> AgentBoard:
        """Create ``device_id``'s group at ``profile``'s top step; raises BoardError."""
        if self._closed:
            raise BoardError("these boards are closed")
        if device_id in self.boards:
            raise BoardError(f"{device_id} already has a board in this run")
        cpus = self.scale.cpus(profile)
        if cpus > threads:
            raise BoardError(
                f"{device_id}: {profile.name} would get {cpus:.2f} host CPUs but trains with "
                f"{threads} thread(s): give it more threads or a smaller --board-cpus"
            )
        group = groups.create_board(self.hierarchy, self.name, device_id, cpus, self.period_us)
        emulated = {
            "profile": profile.name,
            "cpu_share": cpus,
            "cgroup": str(group.cpu_dir),
            "period_us": self.period_us,
        }
        if group.acct_dir != group.cpu_dir:
            emulated["cgroup_acct"] = str(group.acct_dir)
        board = AgentBoard(
            device_id,
            profile,
            cpus,
            group,
            argv_prefix=groups.enter_prefix(group),
            agent_values={"sensing": {"emulated": emulated}},
        )
        self.boards[device_id] = board
        log.info("%s: %s", device_id, board.label)
        return board

    def close(self) -> None:
        """Stop what is left in the groups, remove them and the record; write boards.json."""
        if self._closed:
            return
        self._closed = True
        summary = {d: self._summary(b) for d, b in self.boards.items()}
        errors = groups.remove_run([Path(d) for d in self.record.directories])
        if summary:
            with contextlib.suppress(OSError):
                self.dir.mkdir(parents=True, exist_ok=True)
                (self.dir / "boards.json").write_text(json.dumps(summary, indent=1) + "\n")
        if errors:
            log.error("emulated boards of %s not fully removed: %s", self.name, "; ".join(errors))
            return  # the record stays, so `boards cleanup` can finish the job
        self.record.remove()

    @staticmethod
    def _summary(board: AgentBoard) -> Dict[str, Any]:
        """What the board's cgroup counted over the run (read before it is removed)."""
        out: Dict[str, Any] = {
            "profile": board.profile.name,
            "cpus_at_top_step": board.cpus,
            "cgroup": str(board.group.cpu_dir),
        }
        with contextlib.suppress(Exception):
            t = board.group.throttling()
            out.update(cpu_s=board.group.usage_s(), periods=t.periods,
                       throttled_periods=t.throttled, throttled_s=t.throttled_s)  # fmt: skip
        return out

    def __enter__(self) -> BoardSet:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def boards_for_run(run_dir: Path, mode: str, scale: FleetScale) -> Tuple[Optional[BoardSet], str]:
    """(the run's boards or None, the reason when none): ``emulated`` raises
    :class:`BoardsUnavailable` where it cannot work; ``auto`` falls back to plain agents."""
    if mode not in MODES:
        raise BoardError(f"boards must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "none":
        return None, "plain agents (--boards none)"
    hierarchy, why = groups.probe()
    if hierarchy is None:
        if mode == "emulated":
            raise BoardsUnavailable(why)
        return None, f"plain agents: emulated boards unavailable ({why})"
    try:
        return BoardSet(run_dir, hierarchy, scale), ""
    except BoardsUnavailable as e:
        if mode == "emulated":
            raise
        return None, f"plain agents: {e}"
