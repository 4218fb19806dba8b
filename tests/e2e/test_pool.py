"""End-to-end: a participant that is a pool of 3 processes (the leader and two members) in a
real coordinator run over gRPC, members over torch.distributed (gloo) (slow).

Where this machine can shape links (root, iproute2), the coordinator sits in its run's hub
namespace and each participant behind its own tc-shaped link (coordinator/links): the pool's
three processes share one namespace, as boards on one LAN share one uplink, and talk over its
loopback. Elsewhere everything is on 127.0.0.1. Every member measures itself with the
per-process estimated source (``shared_host``), so every record says ``estimated``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from coordinator.launcher import write_toml
from coordinator.links import ShapedLinks, kernel
from tests.e2e.conftest import Cluster, free_port, rows, wait_for

pytestmark = pytest.mark.slow

MEMBERS = ("m1", "m2")
UPLINK_MBPS = 20.0  # each participant's shaped uplink, where links can be shaped


def start_pool(c: Cluster, pool: Dict[str, Any], **agent: Any) -> Dict[str, Path]:
    """The leader (an agent with a [pool] table) and its member processes; their logs."""
    assert c.run is not None
    gate = free_port()
    table = {
        "members": list(MEMBERS),
        "gate_port": gate,
        "shared_host": True,
        "wait_members_s": 120.0,
        "timeout_s": 15.0,
        "calibration_steps": 2,
        **pool,
    }
    shaped = c.links is not None
    c.agent("pool", "split=train", pool=table, uplink_mbps=UPLINK_MBPS if shaped else None, **agent)
    # Members join the leader's namespace (its LAN): the gate is on that namespace's loopback.
    prefix = list(c.run.links.links["pool"].argv_prefix) if c.run.links is not None else []
    logs = {"pool": c.root / "logs" / "pool.log"}
    for m in MEMBERS:
        cfg = c.root / f"member-{m}.toml"
        write_toml(
            cfg,
            {
                "leader": f"127.0.0.1:{gate}",
                "member_id": m,
                "data": "digits:split=train",
                "state_dir": str(c.root / "members" / m),
                "profile": str(c.profile),
                "shared_host": True,
            },
        )
        logs[m] = c.root / "logs" / f"{m}.log"
        with open(logs[m], "ab") as out:
            c.run.agents[m] = subprocess.Popen(
                [
                    *prefix,
                    sys.executable,
                    "-m",
                    "edge_agent.cli",
                    "pool-member",
                    "--config",
                    f"{cfg}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
    return logs


def members_of(c: Cluster, round_no: int) -> List[Dict[str, Any]]:
    return rows(
        c.db,
        "SELECT * FROM pool_members WHERE round = ? AND device_id = 'pool' ORDER BY rank",
        (round_no,),
    )


def test_a_pool_of_three_trains_as_one_participant_and_survives_losing_a_member(
    cluster_factory: Callable[..., Cluster],
) -> None:
    """Round 0: the pool of three trains a 3-stage pipeline, its report carries each
    member's energy. Round 1: member m2 is killed mid-round: the pool uploads nothing and
    the coordinator sees one late participant (the round completes with the plain agent).
    Round 2: the pool goes on with the two processes left."""
    c = cluster_factory(rounds=3, min_devices=2, deadline_s=20.0, min_fraction=0.5, local_steps=30)
    shaped = kernel.probe().shaped
    if shaped:
        c.links = ShapedLinks(c.root)
    c.start()
    c.agent("plain", "shard=1/2", uplink_mbps=UPLINK_MBPS if shaped else None)
    logs = start_pool(c, {"parallelism": "pipeline", "width": 3})
    wait_for(  # the pool's calibration round, round 0, then round 1
        "m2 to start round 1's training",
        lambda: logs["m2"].exists() and logs["m2"].read_text().count("as rank 2 of 3") >= 3,
        timeout_s=300,
    )
    victim = c.run.agents.pop("m2")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert c.run.wait(timeout_s=300) == 0, c.logs()
    r0, r1, r2 = c.rounds()
    assert [r0["arrived"], r1["arrived"], r2["arrived"]] == [2, 1, 2], c.logs()
    assert all(r["status"] == "completed" for r in (r0, r1, r2))

    device = rows(c.db, "SELECT board, profile_json FROM devices WHERE id = 'pool'")[0]
    assert device["board"].startswith("pool:3:") and '"clock": "nominal"' in device["profile_json"]
    rep = rows(c.db, "SELECT * FROM reports WHERE round = 0 AND device_id = 'pool'")[0]
    assert rep["pool_parallelism"] == "pipeline" and rep["estimated"] == 1
    assert rep["power_source"] == "pool(estimated-process)"
    if shaped:  # the pool's update went up its tc-shaped uplink
        assert rep["link_kind"] == "shaped", rep["link_kind"]
    members = members_of(c, 0)
    assert [m["member_id"] for m in members] == ["pool", "m1", "m2"], c.logs()
    for m in members:
        assert m["compute_energy_j"] > 0 and m["exchange_energy_j"] > 0
        assert m["bytes_sent"] > 0 and m["bytes_received"] > 0
        assert m["power_source"] == "estimated-process" and m["estimated"] == 1
    stages = [(m["stage_start"], m["stage_stop"]) for m in members]
    assert stages[0][0] == 0 and stages[-1][1] == 11  # three stages over the eleven units
    assert all(a[1] == b[0] for a, b in zip(stages, stages[1:]))
    total = sum(m["compute_energy_j"] + m["exchange_energy_j"] for m in members)
    assert rep["compute_energy_j"] == pytest.approx(total, rel=1e-6)

    late = rows(c.db, "SELECT status FROM assignments WHERE round = 1 AND device_id = 'pool'")
    assert late == [{"status": "late"}]
    assert rows(c.db, "SELECT * FROM reports WHERE round = 1 AND device_id = 'pool'") == []
    assert members_of(c, 1) == []
    assert "the pool's round failed; nothing sent" in logs["pool"].read_text()

    assert [m["member_id"] for m in members_of(c, 2)] == ["pool", "m1"]
    for p in c.run.agents.values():
        assert p.wait(timeout=60) == 0, c.logs()
