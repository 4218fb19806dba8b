"""Traces and rate schedules (greenfed.linktrace) and the shipped trace files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coordinator.links.profile import TRACES_DIR, shipped_traces
from greenfed.linktrace import (
    RateSchedule,
    TraceError,
    format_steps,
    load_trace,
    parse_steps,
    parse_trace,
    read_rate_log,
)

ROOT = Path(__file__).resolve().parents[2]


def test_schedule_steps_and_time_weighted_mean() -> None:
    s = RateSchedule((0.0, 10.0, 20.0), (20.0, 2.0, 10.0))
    assert s.rate_at(-1.0) == 20.0 and s.rate_at(10.0) == 2.0 and s.rate_at(99.0) == 10.0
    assert s.mean_mbps(5.0, 15.0) == pytest.approx(11.0)  # 5 s at 20, 5 s at 2
    assert s.mean_mbps(15.0, 30.0) == pytest.approx((5 * 2 + 10 * 10) / 15)
    assert s.mean_mbps(12.0, 12.0) == 2.0


def test_trace_placed_at_an_offset_on_the_wall_clock() -> None:
    t = parse_trace("time_s,mbps\n0,20\n10,2\n20,10\n", "step")
    assert t.mean_mbps() == pytest.approx(11.0)
    s = t.schedule(t0=1000.0, offset_s=15.0)
    assert s.times == (1000.0, 1005.0) and s.mbps == (2.0, 10.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time_s,mbps\n", "no 'time_s,mbps' rows"),
        ("0,20\n5,abc\n", "not a number"),
        ("0,20\n5,0\n", "outside"),
        ("0,20\n5,3\n5,4\n", "does not increase"),
        ("1,20\n", "first row must be at time 0"),
        ("0,20\nnan,3\n", "not finite"),
        ("0\n", "expected"),
    ],
)
def test_malformed_traces_name_the_line(text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        parse_trace(text, "bad")


def test_rate_log_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "d.rates.csv"
    path.write_text(format_steps([(100.0, 20.0), (105.5, 2.0)], "time_unix"))
    log = read_rate_log(path)
    assert log.mbps == (20.0, 2.0) and log.times == (100.0, 105.5)
    assert parse_steps("# comment\n\ntime_unix,mbps\n1,2\n", "x", "time_unix") == ([1.0], [2.0])
    with pytest.raises(TraceError, match="cannot read"):
        read_rate_log(tmp_path / "missing.csv")


def test_shipped_traces_are_what_the_generator_makes() -> None:
    assert set(shipped_traces()) == {"wifi-steady", "congested", "lte-walk"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_link_traces.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    readme = (TRACES_DIR / "README.md").read_text().splitlines()
    for name, path in shipped_traces().items():
        trace = load_trace(path)
        assert trace.duration_s == 900 and len(trace.mbps) == 901
        row = next(line for line in readme if line.startswith(f"| `{name}` |"))
        mean, span = (cell.strip() for cell in row.split("|")[3:5])
        assert float(mean) == pytest.approx(trace.mean_mbps(), abs=0.05), name
        assert float(span.split("–")[0]) == pytest.approx(min(trace.mbps), abs=0.05), name
