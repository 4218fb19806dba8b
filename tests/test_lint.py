"""The tree stays ruff-clean (py38 target for board code) and mypy-clean, checked in CI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(tool: str, args: List[str]) -> None:
    exe = shutil.which(tool, path=str(BIN))
    if exe is None:
        pytest.skip(f"{tool} is not installed (pip install 'greenfed[dev]')")
    out = subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_ruff_lint() -> None:
    _run("ruff", ["check", "."])


def test_ruff_format() -> None:
    _run("ruff", ["format", "--check", "."])


def test_mypy() -> None:
    _run("mypy", ["greenfed", "edge_agent", "coordinator"])
