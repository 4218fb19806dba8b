"""The transport benchmark still runs against today's servicer and client (a smoke run: 1 MB,
one round, on loopback). It measures nothing here; speed belongs in the benchmark itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_transport_benchmark_runs_every_path_end_to_end() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_transport.py"), "--mb", "1",
         "--repeats", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for path in ("gRPC (agent client", "raw TCP -> memory", "raw TCP -> spool", "old spool"):
        assert path in done.stdout, done.stdout
    assert "loopback, not shaped" in done.stdout
