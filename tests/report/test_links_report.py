"""The link study's report: steady vs traces per scheme, from stores with known rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from coordinator.report import ReportError
from coordinator.report.links import build_link_report
from coordinator.store import Store
from tests.report.conftest import make_store, two_rounds


def _condition(root: Path, comm: float, late: bool) -> None:
    specs = {
        "fp32": two_rounds(32, 40.0, comm, 1000, (4.0, 2.0)),
        "on-demand": two_rounds(4, 42.0, comm / 4, 150, (4.4, 2.3)),
    }
    for scheme, rounds in specs.items():
        db = make_store(root / scheme / "state" / "greenfed.sqlite", scheme, rounds)
        if late and scheme == "fp32":
            store = Store(db)
            store.set_assignment_status(1, "b", "late")  # a completed round
            store.set_assignment_status(2, "a", "late")  # the failed round
            store.set_assignment_status(2, "b", "late")
            store.event("excluded", "device c: 20 s at f_max, over the deadline", "c", 1)
            store.close()
    agents = [{"device_id": "a", "link": {"describe": "trace congested"}}]
    doc = {"schemes": list(specs), "agents": agents}
    (root / "experiment.json").write_text(json.dumps(doc))


def test_steady_vs_traces_table_csv_and_page(tmp_path: Path) -> None:
    study = tmp_path / "study"
    _condition(study / "steady", comm=1.0, late=False)
    _condition(study / "traces", comm=3.0, late=True)
    report = build_link_report(study, study / "report")
    rows = {(r.condition, r.scheme): r for r in report.rows}
    assert set(rows) == {(c, s) for c in ("steady", "traces") for s in ("fp32", "on-demand")}
    fp32 = rows[("traces", "fp32")]
    assert (fp32.missed_rounds, fp32.late_device_rounds, fp32.excluded_device_rounds) == (2, 3, 1)
    assert (
        rows[("steady", "fp32")].missed_rounds,
        rows[("steady", "fp32")].late_device_rounds,
    ) == (
        0,
        0,
    )
    # Upload energy per completed round: 2 devices x comm x 2 (total = 2 x dynamic) per round.
    assert fp32.comm_energy_per_round_j == pytest.approx(2 * 3.0 * 2)
    assert rows[("steady", "fp32")].comm_energy_per_round_j == pytest.approx(2 * 1.0 * 2)
    assert fp32.bytes_per_round == pytest.approx(2000) and fp32.final_fd == 2.0
    with open(study / "report" / "links.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
    page = report.html_path.read_text()
    assert "steady links vs bandwidth traces" in page and "trace congested" in page
    assert page.count("<img") == 2 and "missed rounds" in report.text
    assert all(p.is_file() for p in report.plots.values())


def test_a_folder_without_conditions_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no steady/ or traces/"):
        build_link_report(tmp_path, tmp_path / "report")
