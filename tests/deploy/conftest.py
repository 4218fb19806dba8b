"""Shared helpers of the deployment tests: a wheel built once per session from a clean copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def copy_sources(dest: Path) -> Path:
    """Copy the files git would ship (tracked + untracked, not ignored) into ``dest``.

    Building from a copy keeps the shared checkout's build/ and egg-info out of the test (other
    builds may be writing them) and makes stale build/lib files impossible.
    """
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for rel in filter(None, out.split("\0")):
        src = REPO / rel
        if not src.is_file():  # deleted but still tracked
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return dest


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """greenfed's wheel, built like scripts/flash builds it (no deps, reproducible zip times)."""
    base = tmp_path_factory.mktemp("wheel")
    src = copy_sources(base / "src")
    dist = base / "dist"
    env = dict(os.environ, SOURCE_DATE_EPOCH="315532800")
    cmd = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*cmd, "-q", "-w", str(dist)],
        check=True,
        env=env,
        timeout=120,
    )
    (whl,) = dist.glob("greenfed-*.whl")
    return whl
