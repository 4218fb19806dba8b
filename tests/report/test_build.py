"""The report folder: CSV traceable to the records, HTML with every plot embedded."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from coordinator.report import build_report
from coordinator.report.export import read_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    # Build once per module: matplotlib makes the plots the slow part of these tests.
    from tests.report.conftest import make_store, two_rounds

    root = tmp_path_factory.mktemp("exp")
    for scheme, bits in (("fp32", 32), ("fixed-8", 8), ("on-demand", 4)):
        rounds = two_rounds(bits, 40.0 + bits / 8, 3.0 * bits / 32, 30 * bits, (4.0, 2.0))
        make_store(root / scheme / "state" / "greenfed.sqlite", scheme, rounds)
    (root / "experiment.json").write_text('{"schemes": ["fp32", "fixed-8", "on-demand"]}')
    return root, build_report(root, root / "report")


def _f(v: str) -> float:
    return float(v) if v else 0.0


def test_summary_figure_recomputed_from_csv(built: tuple) -> None:
    _, result = built
    rows = read_csv(result.out / "device_rounds.csv")
    mine = [
        r
        for r in rows
        if r["scheme"] == "on-demand" and r["round_status"] == "completed" and r["compute_energy_j"]
    ]
    total = sum(_f(r["compute_energy_j"]) + _f(r["comm_energy_j"]) for r in mine)
    od = next(s for s in result.summaries if s.scheme == "on-demand")
    assert total == pytest.approx(od.total_energy_j)
    summary = {r["scheme"]: r for r in read_csv(result.out / "summary.csv")}
    assert float(summary["on-demand"]["total_energy_j"]) == pytest.approx(total)
    # The failed round's device-rounds are in the CSV, but not in the figure.
    assert any(r["round_status"] == "failed" for r in rows)


def test_csv_holds_every_device_round(built: tuple) -> None:
    _, result = built
    rows = read_csv(result.out / "device_rounds.csv")
    assert len(rows) == 3 * 3 * 2  # schemes x rounds (incl. the failed one) x devices
    assert {"power_source", "power_scope", "estimated", "emulated_link"} <= set(rows[0])
    assert len(read_csv(result.out / "rounds.csv")) == 9


def test_html_embeds_every_plot_as_png(built: tuple) -> None:
    _, result = built
    page = result.html_path.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(result.plots) == 5  # no fleet study in this folder
    assert len(images) == len(result.plots)
    for data in images:
        png = base64.b64decode(data, validate=True)
        assert png.startswith(PNG_MAGIC) and len(png) > 5000
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "ESTIMATED, NOT MEASURED" in page and "LINKS ARE EMULATED" in page


def test_text_and_html_state_the_answers(built: tuple) -> None:
    _, result = built
    page = result.html_path.read_text(encoding="utf-8")
    for f in result.findings:
        assert f.question in result.text
        assert f"{f.question} {f.outcome}." in result.text
        assert f.detail.split(" vs ")[0] in page or f.outcome == "CANNOT SAY"
    assert (result.out / "summary.txt").read_text().strip() == result.text.strip()


def test_fleet_study_plot_included_when_present(built: tuple, tmp_path: Path) -> None:
    root, _ = built
    study = root / "fleet-study"
    study.mkdir(exist_ok=True)
    (study / "simulate.csv").write_text(
        "devices,scheme,energy_per_device_j\n10,fp32,0.2\n100,fp32,0.22\n"
        "10,on-demand,0.05\n100,on-demand,0.06\n"
    )
    try:
        result = build_report(root, tmp_path / "r")
        assert "fleet_study" in result.plots
        assert result.plots["fleet_study"].read_bytes().startswith(PNG_MAGIC)
    finally:
        (study / "simulate.csv").unlink()
