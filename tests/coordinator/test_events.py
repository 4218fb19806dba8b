"""Repeated events are one counted row per device, kind and window."""

from __future__ import annotations

from pathlib import Path
from typing import List

from coordinator.events import EventLog
from coordinator.store import Store


def test_a_flood_of_refusals_is_one_counted_row_per_window(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    now: List[float] = [0.0]
    log = EventLog(store, window_s=60.0, flush_s=1.0, clock=lambda: now[0])
    for i in range(10_000):
        log.record("refused", f"TooManyStreams: call {i}", device_id="mallory", key="TooMany")
    log.record("refused", "StaleRound: old", device_id="mallory", key="StaleRound")
    log.record("refused", "UnknownDevice: ghost", device_id=None, key="UnknownDevice")
    log.flush()
    rows = store.events("refused")
    assert len(rows) == 3
    flood = next(r for r in rows if "TooManyStreams" in r["message"])
    assert flood["count"] == 10_000 and flood["message"].endswith("call 9999")
    assert store.totals()["refusals"] == 10_002
    now[0] = 61.0  # a new window: a new row, the old one keeps its count
    log.record("refused", "TooManyStreams: again", device_id="mallory", key="TooMany")
    log.flush()
    assert len(store.events("refused")) == 4
    assert store.totals()["refusals"] == 10_003


def test_counts_are_written_at_most_every_flush_interval(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    now: List[float] = [0.0]
    log = EventLog(store, window_s=60.0, flush_s=1.0, clock=lambda: now[0])
    for _ in range(5):
        log.record("register", "device a registered", device_id="a")
    assert store.events("register")[0]["count"] == 1  # repeats not written yet
    now[0] = 1.5
    log.record("register", "device a registered", device_id="a")
    assert store.events("register")[0]["count"] == 6
