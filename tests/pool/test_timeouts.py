"""A member that stalls mid-round makes the leader's transfer fail after the pool's timeout
(real processes; a member that dies is tested end to end in tests/e2e/test_pool.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.pool.comm import start_store
from tests.pool.conftest import child_env

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 3.0


@pytest.mark.parametrize("kind", ["all_reduce", "recv"])
def test_a_stalled_member_fails_the_transfer_after_the_timeout(kind: str) -> None:
    store, port = start_store("127.0.0.1", 2, 60.0)
    cmd = [sys.executable, "-m", "tests.pool.stall_main"]
    procs = [
        subprocess.Popen(
            [*cmd, str(rank), str(port), str(TIMEOUT_S), kind],
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    try:
        out, err = procs[0].communicate(timeout=120)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
        del store
    assert procs[0].returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["outcome"].startswith("failed: rank 0:"), result
    assert "Timed out" in result["outcome"]
    assert result["after_s"] >= TIMEOUT_S * 0.9  # it waited for the pool.timeout_s
