"""End-to-end: real coordinator and agent processes over gRPC on loopback (slow)."""

from __future__ import annotations

import hashlib
import os
import signal
from typing import Any, Callable, Dict

import grpc
import pytest

from greenfed.v1 import fleet_pb2 as pb
from greenfed.v1 import fleet_pb2_grpc as pb_grpc
from tests.e2e.conftest import PROFILE, Cluster, rows, spooling, wait_for

pytestmark = pytest.mark.slow


def _assert_round_records(c: Cluster, round_no: int, devices: int) -> None:
    reps = rows(c.db, "SELECT * FROM reports WHERE round = ?", (round_no,))
    assert len(reps) == devices
    for r in reps:
        assert r["compute_energy_j"] > 0 and r["comm_energy_j"] > 0
        assert r["power_source"] == "estimated" and r["estimated"] == 1
        assert r["bytes_up"] > 0 and r["samples"] > 0


def test_full_round_and_agent_started_before_coordinator(
    cluster_factory: Callable[..., Cluster],
) -> None:
    c = cluster_factory(rounds=2, min_devices=2)
    # The first agent dials a coordinator that is not there yet: it must back off and retry.
    from coordinator.launcher import LocalRun

    early = LocalRun(run_dir=c.root, coordinator=None, port=c.port)  # type: ignore[arg-type]
    c.run = early
    c.agent("early", "shard=1/2", uplink_mbps=20.0)
    log = c.root / "logs" / "early.log"
    wait_for(
        "the early agent to report the coordinator unreachable",
        lambda: log.exists() and "retrying with backoff" in log.read_text(),
    )
    c.start()
    c.agent("late", "shard=2/2")
    assert c.run.wait(timeout_s=180) == 0, c.logs()
    done = c.rounds()
    assert [r["status"] for r in done] == ["completed", "completed"], c.logs()
    for r in done:
        assert r["arrived"] == 2 and r["quality_fd"] is not None
        assert r["result_sha256"] != r["start_sha256"]
    _assert_round_records(c, 0, 2)
    emulated = rows(c.db, "SELECT emulated_link, link_mbps FROM reports WHERE device_id='early'")
    assert all(e["emulated_link"] == 1 and e["link_mbps"] == 20.0 for e in emulated)
    # Both agents exit by themselves once told the run is finished.
    for p in c.run.agents.values():
        assert p.wait(timeout=30) == 0


def test_agent_killed_during_upload_then_rejoins(cluster_factory: Callable[..., Cluster]) -> None:
    c = cluster_factory(rounds=2, min_devices=2, deadline_s=25.0, min_fraction=0.5)
    c.start()
    c.agent("steady", "shard=1/2")
    # ~40 kB/s: the victim's upload of ~100 kB takes seconds, long enough to kill it mid-way.
    c.agent("victim", "shard=2/2", uplink_mbps=0.3)
    spool = c.root / "state" / "spool"
    wait_for(
        "the victim's upload to be in flight",
        lambda: spooling(spool, "victim"),
    )
    victim = c.run.agents["victim"]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    r0 = wait_for(
        "round 0 to close",
        lambda: [r for r in c.rounds() if r["round"] == 0 and r["status"] != "open"],
    )[0]
    assert r0["status"] == "completed" and r0["arrived"] == 1, c.logs()
    late = rows(c.db, "SELECT status FROM assignments WHERE round=0 AND device_id='victim'")
    assert late == [{"status": "late"}]
    # The victim comes back (same state dir) and takes part in the next round.
    c.agent("victim", "shard=2/2", uplink_mbps=20.0)
    assert c.run.wait(timeout_s=180) == 0, c.logs()
    r1 = next(r for r in c.rounds() if r["round"] == 1)
    assert r1["status"] == "completed" and r1["arrived"] == 2, c.logs()


def test_coordinator_killed_and_restarted_loses_no_round(
    cluster_factory: Callable[..., Cluster],
) -> None:
    c = cluster_factory(rounds=3, min_devices=2)
    c.start()
    c.agent("a", "shard=1/2")
    c.agent("b", "shard=2/2", uplink_mbps=1.0)
    wait_for(
        "round 1 to open",
        lambda: any(r["round"] == 1 and r["status"] == "open" for r in c.rounds()),
    )
    before = [r for r in c.rounds() if r["status"] == "completed"]
    assert len(before) == 1
    c.run.coordinator.send_signal(signal.SIGKILL)
    c.run.coordinator.wait()
    c.start()  # same port, same state dir; agents reconnect by themselves
    assert c.run.wait(timeout_s=240) == 0, c.logs()
    after = c.rounds()
    completed = [r for r in after if r["status"] == "completed"]
    assert len(completed) == 3, c.logs()
    # The round completed before the crash is untouched; the interrupted one was aborted.
    assert {k: completed[0][k] for k in ("round", "result_sha256", "checkpoint_path")} == {
        k: before[0][k] for k in ("round", "result_sha256", "checkpoint_path")
    }
    assert [r["status"] for r in after if r["round"] == 1] == ["aborted"]
    assert os.path.exists(completed[-1]["checkpoint_path"])


def _call(stub_fn: Any, req: Any, device: str, **kw: Any) -> Any:
    return stub_fn(req, metadata=(("greenfed-device-id", device),), timeout=30, **kw)


def test_bad_uploads_are_refused_while_the_round_goes_on(
    cluster_factory: Callable[..., Cluster],
) -> None:
    c = cluster_factory(
        rounds=1, min_devices=2, deadline_s=20.0, min_fraction=0.5, max_update_bytes=4 * 1024 * 1024
    )
    c.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{c.port}")
    stub = pb_grpc.FleetStub(channel)
    _call(stub.Register, pb.RegisterRequest(samples=100, profile=PROFILE), "mallory")
    c.agent("honest", "shard=1/2")
    a = wait_for(
        "mallory's assignment",
        lambda: (lambda x: x if x.status == x.ASSIGNED else None)(
            _call(stub.WaitAssignment, pb.WaitRequest(last_round=-1), "mallory")
        ),
    )

    def upload(frame: bytes, declared: Dict[str, Any]) -> grpc.RpcError:
        manifest = pb.UploadManifest(
            round=a.round, samples=100, bits=a.bits, mode=a.mode, **declared
        )
        msgs = [
            pb.UploadMessage(manifest=manifest),
            pb.UploadMessage(chunk=pb.UploadChunk(data=frame)),
        ]
        with pytest.raises(grpc.RpcError) as e:
            _call(stub.UploadUpdate, iter(msgs), "mallory")
        return e.value

    frame = os.urandom(50_000)
    wrong = upload(frame, {"total_bytes": len(frame), "sha256": "0" * 64})
    assert wrong.code() == grpc.StatusCode.DATA_LOSS and "sha256" in wrong.details()
    big = upload(
        frame, {"total_bytes": 5 * 1024 * 1024, "sha256": hashlib.sha256(frame).hexdigest()}
    )
    assert big.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit" in big.details()
    junk = upload(frame, {"total_bytes": len(frame), "sha256": hashlib.sha256(frame).hexdigest()})
    assert junk.code() == grpc.StatusCode.INVALID_ARGUMENT and "codec" in junk.details()
    assert c.run.wait(timeout_s=120) == 0, c.logs()
    channel.close()
    r = c.rounds()
    assert [x["status"] for x in r] == ["completed"] and r[0]["arrived"] == 1, c.logs()
    refused = rows(c.db, "SELECT message FROM events WHERE kind='refused'")
    assert len(refused) >= 3


def test_agent_exits_cleanly_on_sigterm_and_health_is_served(
    cluster_factory: Callable[..., Cluster],
) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    c = cluster_factory(rounds=1, min_devices=2)  # one agent only: it idles in its long poll
    c.start()
    c.agent("idle", "shard=1/2")
    wait_for("the agent to register", lambda: rows(c.db, "SELECT id FROM devices"))
    with grpc.insecure_channel(f"127.0.0.1:{c.port}") as ch:
        health = health_pb2_grpc.HealthStub(ch)
        reply = health.Check(health_pb2.HealthCheckRequest(service="greenfed.v1.Fleet"), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    agent = c.run.agents["idle"]
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=30) == 0, c.logs()
