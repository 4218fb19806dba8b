"""``greenfed-agent pool-study`` end to end: a leader and a member process, each structure
run on the same work, predicted beside measured (slow; the figures are not judged here:
timing belongs to the benchmark, see docs/pools.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pool.conftest import child_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_pool_study_runs_every_structure_and_reports_predicted_beside_measured(
    tmp_path: Path,
) -> None:
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "edge_agent.cli", "pool-study", "--out", str(out)]
    cmd += ["--steps", "2", "--warmup-steps", "0", "--batch-size", "16"]
    done = subprocess.run(
        cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sharing this machine's" in done.stdout and "none is claimed" in done.stdout
    results = json.loads((out / "results.json").read_text())
    kinds = [c["kind"] for c in results["cases"]]
    assert kinds == ["single", "data", "pipeline"]
    for c in results["cases"]:
        assert c["measured_step_s"] > 0 and c["predicted_step_s"] > 0
        assert len(c["members"]) == (1 if c["kind"] == "single" else 2)
        for m in c["members"]:
            assert m["measured_dynamic_j"] > 0 and m["predicted_dynamic_j"] > 0
    data = results["cases"][1]
    assert data["measured_bytes"] == pytest.approx(data["predicted_bytes"], rel=1e-6)
    pipeline = results["cases"][2]
    assert pipeline["measured_bytes"] == pytest.approx(pipeline["predicted_bytes"], rel=1e-6)
    report = (out / "report.md").read_text()
    assert "none is claimed" in report and "pool-study.png" in report
    assert (out / "pool-study.png").stat().st_size > 0


def test_cpu_shares_of_busy_processes() -> None:
    """What time_plan divides the profile's speed by: whole cores while there are enough, the
    session's share split under autogroup, and the measured speed of processes running
    together; a near-whole core measured alone is a whole core, not another session."""
    from edge_agent.pool.study import Sharing

    quiet = Sharing(cores=2, background=0.0, share_alone=0.99, autogroup=True, speed=(1.0, 0.9))
    assert quiet.share(1.0) == pytest.approx(1.0)
    assert quiet.share(2.0) == pytest.approx(0.9)  # two on their own cores, each 0.9 as fast
    assert quiet.share(1.5) == pytest.approx(0.95)  # interpolated between 1 and 2 at once
    assert quiet.share(3.0) == pytest.approx(2 / 3 * 0.9)  # three split two cores
    crowded = Sharing(cores=2, background=0.0, share_alone=0.5, autogroup=True, speed=(1.0, 0.9))
    assert crowded.share(2.0) == pytest.approx(0.25 * 0.9)  # the session gets half a core
    plain = Sharing(cores=2, background=1.0, share_alone=0.67, autogroup=False)
    assert plain.share(2.0) == pytest.approx(2 / 3)  # processor sharing with the background
