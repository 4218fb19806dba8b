"""A fleet's cgroups on the real kernel: created, joined, removed on close and after a SIGKILL.

Skipped with the reason where this process cannot create cgroups (not root, no CPU controller).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from coordinator.boards import BoardSet, fleet_scale, groups, registry
from coordinator.cli import main
from coordinator.links.registry import alive
from greenfed.boards import get_profile
from tests.boards.conftest import skip_unless_cgroups

REPO = Path(__file__).resolve().parents[2]


def new_set(run_dir: Path) -> BoardSet:
    skip_unless_cgroups()
    hierarchy, _ = groups.probe()
    assert hierarchy is not None
    return BoardSet(run_dir, hierarchy, fleet_scale([get_profile("rpi4")], budget_cpus=1.0))


def test_a_board_holds_its_process_tree_and_close_removes_everything(tmp_path: Path) -> None:
    boards = new_set(tmp_path)
    try:
        board = boards.attach("board-1", get_profile("rpi4"))
        assert board.group.limits_us() == (10000, 50000)  # 0.2 CPU at the top step
        # the shell joins the group, then becomes a sleeper that starts a child of its own
        proc = subprocess.Popen([*board.argv_prefix, "sh", "-c", "sleep 60 & exec sleep 60"])
        children = groups._pids([board.group.cpu_dir])
        while len(children) < 2:  # both processes appear (bounded by the sleeps themselves)
            children = groups._pids([board.group.cpu_dir])
        assert proc.pid in children and set(board.group.pids()) == set(children)
        assert boards.record.path.is_file()
        with pytest.raises(Exception, match="already has a board"):
            boards.attach("board-1", get_profile("rpi4"))
    finally:
        boards.close()
    assert proc.wait(timeout=10) == -signal.SIGTERM  # stopped by close()
    assert not any(Path(d).exists() for d in boards.record.directories)
    assert not boards.record.path.exists()
    summary = json.loads((tmp_path / "boards" / "boards.json").read_text())
    assert summary["board-1"]["profile"] == "rpi4" and "cpu_s" in summary["board-1"]
    boards.close()  # twice is fine


def test_cleanup_after_the_owner_was_killed(tmp_path: Path) -> None:
    skip_unless_cgroups()
    owner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import subprocess, sys, time
            from pathlib import Path
            from coordinator.boards import BoardSet, fleet_scale, groups
            from greenfed.boards import get_profile
            h, _ = groups.probe()
            boards = BoardSet(Path({str(tmp_path)!r}), h, fleet_scale([get_profile("rpi5")]))
            board = boards.attach("board-1", get_profile("rpi5"))
            agent = subprocess.Popen([*board.argv_prefix, "sleep", "120"])
            print(boards.prefix, agent.pid, flush=True)
            time.sleep(120)
        """)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert owner.stdout is not None
    with owner.stdout:
        prefix, agent_pid = owner.stdout.readline().split()
    owner.send_signal(signal.SIGKILL)  # no tear-down: the group and the "agent" stay
    owner.wait()
    rec = next(r for r in registry.records() if r.prefix == prefix)
    assert all(Path(d).is_dir() for d in rec.directories)
    assert main(["links", "cleanup"]) in (0, 1, 2)  # links' own part needs iproute2
    assert not any(Path(d).exists() for d in rec.directories)
    assert prefix not in {r.prefix for r in registry.records()}
    assert not alive(int(agent_pid), None)  # stopped (a zombie until init reaps it)


def test_cleanup_leaves_live_runs_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    boards = new_set(tmp_path)
    try:
        assert main(["boards", "cleanup", "--dry-run"]) == 0
        assert boards.prefix in capsys.readouterr().out  # "left alone ... <prefix>"
        assert all(Path(d).is_dir() for d in boards.record.directories)
    finally:
        boards.close()
