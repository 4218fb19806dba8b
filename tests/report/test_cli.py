"""The report and experiment commands' error paths, and experiment setup checks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from coordinator.cli import main
from coordinator.errors import ExperimentError
from coordinator.experiment import ExperimentSetup, local_agents, prepare_out
from tests.report.conftest import make_store, two_rounds


def test_report_missing_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no such file or directory" in err and "nope" in err


def test_report_directory_without_stores_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "not a greenfed run directory" in capsys.readouterr().err


def test_report_on_a_non_sqlite_file_exits_2_and_leaves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bogus = tmp_path / "notes.sqlite"
    bogus.write_bytes(b"just some text, not a database\n" * 10)
    before = bogus.read_bytes()
    assert main(["report", str(bogus)]) == 2
    assert "not a greenfed store" in capsys.readouterr().err
    assert bogus.read_bytes() == before


def test_report_on_another_sqlite_db_exits_2_without_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    assert main(["report", str(other)]) == 2
    assert "missing tables" in capsys.readouterr().err
    with sqlite3.connect(other) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert names == {"t"}  # read-only: no greenfed tables were created


def test_report_on_a_store_writes_next_to_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = make_store(tmp_path / "state" / "greenfed.sqlite", "on-demand",
                       two_rounds(4, 1.0, 1.0, 10, (1.0, 1.0)))  # fmt: skip
    assert main(["report", str(store), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "ESTIMATED" in out and "CANNOT SAY" in out
    assert (tmp_path / "rep" / "report.html").is_file()


def test_experiment_rejects_unknown_scheme(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["experiment", "--schemes", "fp32,fixed-99", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "unknown scheme 'fixed-99'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_prepare_out_refuses_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ExperimentError, match=r"no experiment\.json"):
        prepare_out(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_local_agents_differ_in_uplink_and_shard_size() -> None:
    agents = local_agents(4)
    assert [a.uplink_mbps for a in agents] == [2.0, 5.0, 10.0, 20.0]
    limits = [int(a.data.split("limit=")[1]) for a in agents]
    assert limits == sorted(limits) and len(set(limits)) == 4
    assert [a.data.split(",")[0] for a in agents] == [f"digits:shard={i}/4" for i in range(1, 5)]


def test_every_scheme_gets_the_same_deadline_and_budget() -> None:
    setup = ExperimentSetup(["fp32", "fixed-8", "on-demand"], 5, local_agents(2), 90.0, 0.25,
                            20, 64)  # fmt: skip
    values = [setup.coordinator_values(s) for s in setup.schemes]
    assert {v["deadline_s"] for v in values} == {90.0}
    assert {v["error_budget"] for v in values} == {0.25}
    assert {v["seed"] for v in values} == {0}
    assert [v["scheme"] for v in values] == setup.schemes
    with pytest.raises(ExperimentError):
        ExperimentSetup(["fp32", "fp32"], 5, local_agents(2), 90.0, 0.25, 20, 64)


def test_adapter_runs_cross_every_rule_with_every_scheme() -> None:
    agents = local_agents(4, task="mnist8", seed=3)
    assert [a.data for a in agents][:2] == [
        "mnist8:shard=1/4,alpha=0.5,seed=3",
        "mnist8:shard=2/4,alpha=0.5,seed=3",
    ]
    setup = ExperimentSetup(["fp32", "on-demand"], 3, agents, 90.0, 0.25, 20, 64,
                            aggregations=["fedavg", "ffa"], task="mnist8", personal=True,
                            error_budgets={"fedavg": 0.25, "ffa": 0.002})  # fmt: skip
    labels = [r["label"] for r in setup.runs()]
    assert labels == ["fp32", "on-demand", "ffa-fp32", "ffa-on-demand"]
    full = setup.coordinator_values("fp32", "fedavg")
    ffa = setup.coordinator_values("on-demand", "ffa")
    assert full["backbone"] == ffa["backbone"] == "pi-small-digits"
    assert full["eval_data"] == ffa["eval_data"] == "mnist8:split=test"
    assert "aggregation" not in full and ffa["aggregation"] == "ffa"
    assert (full["error_budget"], ffa["error_budget"]) == (0.25, 0.002)
    assert ffa["lora"]["personal"] is True and ffa["learning_rate"] > 2e-3
    assert setup.to_json()["runs"][3]["label"] == "ffa-on-demand"
    with pytest.raises(ExperimentError, match="--task mnist8"):
        ExperimentSetup(["fp32"], 3, local_agents(2), 90.0, 0.25, 20, 64, aggregations=["ffa"])
