"""A pool's report: parsed, checked, stored member by member (migration 2 on a v1 store)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from coordinator import serde, validation
from coordinator.errors import InvalidRequest
from coordinator.store import _SCHEMA_V1, Store, pool_member_rows, report_columns
from greenfed.v1 import fleet_pb2 as pb


def window(name: str, energy: float, source: str = "estimated-process") -> pb.EnergyWindow:
    return pb.EnergyWindow(
        name=name, energy_j=energy, dynamic_energy_j=energy / 4, duration_s=2.0,
        mean_power_w=energy / 2, peak_power_w=energy, samples=5, source=source,
        scope="estimated: this member process's CPU time", estimated=True,
    )  # fmt: skip


def pool_report(**member_changes: object) -> pb.RoundReport:
    members = [
        pb.PoolMemberReport(
            member_id=m,
            rank=r,
            windows=[window("compute", 10.0 + r), window("exchange", 1.0)],
            bytes_sent=1_000_000,
            bytes_received=900_000,
            freq_hz=1.2e9,
            stage_start=0,
            stage_stop=0,
            compute_s=1.5,
            exchange_s=0.5,
            predicted_energy_j=2.0,
        )
        for r, m in enumerate(("lead", "m1", "m2"))
    ]
    for k, v in member_changes.items():
        setattr(members[1], k, v)
    return pb.RoundReport(
        round=3,
        windows=[window("compute", 36.0, "pool(estimated-process)")],
        samples=64,
        pool=pb.PoolReport(
            parallelism="data",
            plan="data x3",
            engine="all-reduce",
            micro_batches=1,
            members=members,
            energy_j=36.0,
            dynamic_energy_j=9.0,
            predicted_energy_j=6.0,
            predicted_step_s=0.05,
            measured_step_s=0.06,
            feasible=True,
        ),
    )


def test_a_pool_report_is_stored_member_by_member(tmp_path: Path) -> None:
    rep = serde.report_from_pb(pool_report())
    validation.check_report(rep)
    assert rep.pool is not None and [m.member_id for m in rep.pool.members] == ["lead", "m1", "m2"]
    store = Store(tmp_path / "s.sqlite")
    store.upsert_device("pool", {"samples": 100})
    store.record_report(3, "pool", report_columns(rep))
    store.record_pool_members(3, "pool", pool_member_rows(rep))
    row = store.reports(3)[0]
    assert row["pool_parallelism"] == "data" and row["pool_predicted_energy_j"] == 6.0
    assert row["compute_energy_j"] == 36.0  # the pool's sum, as the leader reported it
    members = store.pool_members(3)
    assert [m["member_id"] for m in members] == ["lead", "m1", "m2"]
    assert [m["compute_energy_j"] for m in members] == [10.0, 11.0, 12.0]
    assert all(m["exchange_energy_j"] == 1.0 and m["estimated"] == 1 for m in members)
    assert members[1]["power_source"] == "estimated-process" and members[1]["bytes_sent"] == 1e6
    store.record_pool_members(3, "pool", pool_member_rows(rep))  # a re-sent report replaces
    assert store.count("pool_members") == 3


def test_a_plain_report_has_no_pool_rows() -> None:
    rep = serde.report_from_pb(pb.RoundReport(round=1, windows=[window("compute", 3.0)]))
    assert rep.pool is None and pool_member_rows(rep) == []
    assert report_columns(rep)["pool_parallelism"] is None


@pytest.mark.parametrize(
    "change, field",
    [
        ({"windows": [window("compute", -1.0)]}, "pool.members[m1][compute].energy_j"),
        ({"member_id": "lead"}, "unique"),
        ({"exchange_s": float("nan")}, "pool.members[m1].exchange_s"),
        ({"member_id": "x" * 100}, "pool member id"),
    ],
)
def test_implausible_member_figures_are_refused(change: dict, field: str) -> None:
    msg = pool_report()
    member = msg.pool.members[1]
    for k, v in change.items():
        if k == "windows":
            del member.windows[:]
            member.windows.extend(v)
        else:
            setattr(member, k, v)
    with pytest.raises(InvalidRequest, match=field.replace("[", r"\[").replace("]", r"\]")):
        validation.check_report(serde.report_from_pb(msg))


def test_too_many_members_are_refused() -> None:
    msg = pool_report()
    extra = [pb.PoolMemberReport(member_id=f"x{i}") for i in range(70)]
    msg.pool.members.extend(extra)
    with pytest.raises(InvalidRequest, match="members"):
        validation.check_report(serde.report_from_pb(msg))


def test_a_first_release_store_gains_the_pool_table(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_V1)
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO reports (round, device_id, received_at, report_json) VALUES (0, 'a', 0, '{}')"
    )
    db.commit()
    db.close()
    store = Store(path)
    assert store.count("pool_members") == 0
    assert store.reports(0)[0]["pool_parallelism"] is None  # old rows keep their values
