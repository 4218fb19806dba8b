"""Reports of full-model and adapter runs side by side, with personal-adapter scores."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Dict, List

from coordinator.report import build_report, load_run, summarize
from coordinator.store import Store
from tests.report.conftest import make_store, report_fields


def _rounds(bytes_up: int, fds: tuple, personal: bool) -> List[Dict[str, Any]]:
    def dev(own_global: float, own_personal: float) -> Any:
        rep = report_fields(40.0, 20.0, 2.0, 1.0, bytes_up, 32)
        if personal:
            rep.update(global_fd_own=own_global, personal_fd=own_personal, own_eval_images=16)
        return (32, 5.0, rep)

    return [
        {"fd": fds[0], "devices": {"a": dev(9.0, 8.0), "b": dev(9.0, 9.5)}},
        {"fd": fds[1], "devices": {"a": dev(7.0, 5.0), "b": dev(6.0, 4.0)}},
    ]


def _set_aggregation(path: Path, rule: str) -> None:
    db = sqlite3.connect(path)
    db.execute("UPDATE rounds SET aggregation = ?", (rule,))
    db.commit()
    db.close()


def test_adapter_runs_are_named_compared_and_their_personal_scores_counted(
    tmp_path: Path,
) -> None:
    root = tmp_path / "exp"
    make_store(root / "fp32" / "state" / "greenfed.sqlite", "fp32", _rounds(100_000, (9, 6), False))
    ffa = make_store(
        root / "ffa-fp32" / "state" / "greenfed.sqlite", "fp32", _rounds(850, (10, 6.5), True)
    )
    _set_aggregation(ffa, "ffa")
    runs = [
        {"label": "fp32", "scheme": "fp32", "aggregation": "fedavg"},
        {"label": "ffa-fp32", "scheme": "fp32", "aggregation": "ffa"},
    ]
    (root / "experiment.json").write_text(json.dumps({"schemes": ["fp32"], "runs": runs}))
    run = load_run(root)
    sums = {s.scheme: summarize(s) for s in run.schemes}
    assert list(sums) == ["fp32", "ffa-fp32"]
    s = sums["ffa-fp32"]
    assert s.aggregation == "ffa" and sums["fp32"].aggregation == "fedavg"
    # Last scored round: a 5.0 < 7.0 and b 4.0 < 6.0.
    assert (s.personal_round, s.personal_devices, s.personal_wins) == (1, 2, 2)
    assert s.personal_fd_mean == 4.5 and s.global_fd_own_mean == 6.5
    report = build_report(root, tmp_path / "out")
    assert "== full model and adapters ==" in report.text
    assert "0.85%" in report.text  # 850 B against 100 000 B per round
    found = {f.key: f for f in report.findings}
    assert found["adapter_bytes:ffa-fp32"].outcome == "YES"
    assert found["adapter_quality:ffa-fp32"].outcome == "YES"  # 6.5 <= 1.2 x 6
    assert found["personal:ffa-fp32"].outcome == "YES"
    assert "personal_vs_global" in report.plots and report.plots["personal_vs_global"].is_file()
    assert "Full model and adapters" in report.html_path.read_text()


def test_stores_written_before_adapters_still_load(tmp_path: Path) -> None:
    """A store from before the adapters migration (no aggregation, no personal columns) reads
    as fedavg, unscored, and the coordinator migrates it."""
    from coordinator.store import MIGRATIONS, SCHEMA_VERSION

    assert "personal_fd" in MIGRATIONS[-1]  # the adapters' migration is the newest
    path = tmp_path / "old" / "state" / "greenfed.sqlite"
    make_store(path, "fp32", _rounds(1000, (5, 4), False))
    db = sqlite3.connect(path)
    for col in ("personal_fd", "global_fd_own", "own_eval_images"):
        db.execute(f"ALTER TABLE reports DROP COLUMN {col}")
    db.execute("ALTER TABLE rounds DROP COLUMN aggregation")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    db.commit()
    db.close()
    records = load_run(path).schemes[0]
    summary = summarize(records)
    assert summary.aggregation == "fedavg" and summary.personal_devices == 0
    assert all(r["personal_fd"] is None for r in records.device_rounds)
    Store(path).close()  # the coordinator migrates it to the current version
    cols = {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(reports)")}
    assert {"personal_fd", "global_fd_own", "own_eval_images"} <= cols
