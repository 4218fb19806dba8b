"""Board code (edge_agent and what it imports from greenfed) must run on Python 3.8.

JetPack 5 ships Python 3.8. ruff (target-version py38) checks syntax; vermin also checks the
standard-library APIs and runtime-evaluated annotations we use.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOARD_PATHS = ["edge_agent", "greenfed"]


def test_board_code_needs_at_most_python_3_8() -> None:
    vermin = shutil.which("vermin", path=str(Path(sys.executable).parent))
    if vermin is None:
        pytest.skip("vermin is not installed (pip install 'greenfed[dev]')")
    out = subprocess.run(
        [
            vermin,
            "--no-tips",
            "-t=3.8-",
            "--backport",
            "dataclasses",
            "--no-parse-comments",
            "--violations",
            *BOARD_PATHS,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
