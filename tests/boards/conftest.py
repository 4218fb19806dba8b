"""Copied cgroup trees (fixtures/README.md) and the skip for tests that need the real kernel."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
V1_BOARD = ("sys/fs/cgroup/cpu/greenfed-gfcafe01/board-1",
            "sys/fs/cgroup/cpuacct/greenfed-gfcafe01/board-1")  # fmt: skip
V2_BOARD = "sys/fs/cgroup/greenfed-gfcafe01/board-1"


def tree(tmp_path: Path, name: str) -> Path:
    """A writable copy of fixture tree ``name``."""
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    return root


def skip_unless_cgroups() -> None:
    """Skip with the reason where this process cannot create cgroups (not root, no cpu
    controller): the kernel tests need the real thing."""
    from coordinator.boards import groups

    hierarchy, why = groups.probe()
    if hierarchy is None:
        pytest.skip(f"emulated boards unavailable here: {why}")
