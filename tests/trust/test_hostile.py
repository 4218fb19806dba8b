"""Hostile input against a real coordinator process over real sockets.

One coordinator serves the whole module: three devices hold assignments in round 0 (carol, who
uploads an honest update at once; trent, who tests resumes and duplicates; mallory, who sends
everything hostile). Each test asserts the status and its message, and that the store, the
global model and the other devices' round are unchanged. The last test completes the round and
checks that the global model moved by exactly the honest updates.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from greenfed import codec
from greenfed.v1 import fleet_pb2 as pb
from tests.e2e.conftest import FAST, Cluster, rows, wait_for
from tests.trust import fleet as F

pytestmark = pytest.mark.slow
OK = grpc.StatusCode
MAX_UPDATE = 1024 * 1024
NORM_RATIO = 10.0


class Hostile:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        port = cluster.port
        self.carol = F.RawDevice(port, "carol")
        self.trent = F.RawDevice(port, "trent")
        self.mallory = F.RawDevice(port, "mallory")
        # Different data sizes: FedAvg weighs by these, whatever an upload declares.
        self.data_size = {"carol": 120, "trent": 80, "mallory": 100}
        for d in (self.carol, self.trent, self.mallory):
            d.register(samples=self.data_size[d.device_id])
        self.a = {d.device_id: d.assignment() for d in (self.carol, self.trent, self.mallory)}
        assert len({a.round for a in self.a.values()}) == 1
        self.round = self.a["carol"].round
        start = self.carol.download(self.round)
        self.start_frame = start
        self.params = codec.decode(start, max_frame_bytes=64 << 20, max_decoded_bytes=64 << 20)
        self.template = {k: (v.shape, v.dtype) for k, v in self.params.items()}
        self.accepted: List[Tuple[Dict[str, np.ndarray], int]] = []
        self.carol_update = self.accept(self.carol, F.small_update(self.params, 1), 120)

    def accept(self, dev: F.RawDevice, update: Dict, samples: int, **kw: Any) -> Dict:
        frame = F.encode(update)
        reply = dev.upload(self.a[dev.device_id], frame, samples=samples, **kw)
        assert reply.accepted
        decoded = codec.decode(frame, max_frame_bytes=64 << 20, max_decoded_bytes=64 << 20)
        self.accepted.append((decoded, self.data_size[dev.device_id]))
        return decoded

    def state(self) -> Dict[str, Any]:
        return F.snapshot(self.c.db, self.carol.download(self.round))

    @property
    def ma(self) -> pb.Assignment:
        return self.a["mallory"]

    def valid_frame(self, seed: int = 5) -> bytes:
        return F.encode(F.small_update(self.params, seed))


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    root = tmp_path_factory.mktemp("hostile")
    c = Cluster(
        root,
        root / "no-profile.json",
        {
            **FAST,
            "rounds": 1,
            "min_devices": 3,
            "scheme": "fixed-8",
            "deadline_s": 600.0,
            "max_update_bytes": MAX_UPDATE,
            "max_update_norm_ratio": NORM_RATIO,
            "stream_idle_s": 2.0,
            "max_workers": 16,
            "tls": {"revoked": ["eve"]},
        },
    )
    c.start()
    try:
        yield Hostile(c)
    finally:
        c.close()


def test_unknown_device_is_refused_everywhere(h: Hostile) -> None:
    before = h.state()
    ghost = F.RawDevice(h.c.port, "ghost")
    calls = [
        ("WaitAssignment", pb.WaitRequest(last_round=-1)),
        ("DownloadModel", pb.DownloadRequest(round=h.round)),
        ("UploadStatus", pb.UploadStatusRequest(round=h.round, sha256="0" * 64)),
        ("ReportRound", F.report_msg(h.round)),
    ]
    for method, req in calls:
        F.expect(ghost.refused(method, req), OK.PERMISSION_DENIED, "not registered", "Register")
    F.expect(ghost.upload_refused(h.ma, h.valid_frame()), OK.PERMISSION_DENIED, "Register")
    anonymous = F.RawDevice(h.c.port, "", metadata_id="")
    F.expect(
        anonymous.refused("WaitAssignment", pb.WaitRequest()),
        OK.PERMISSION_DENIED,
        "greenfed-device-id",
    )
    bad_id = F.RawDevice(h.c.port, "x", metadata_id="../../etc/passwd")
    with pytest.raises(grpc.RpcError) as e:
        bad_id.register()
    F.expect(e.value, OK.PERMISSION_DENIED, "device id must be")
    assert h.state() == before


def test_revoked_device_is_refused_on_every_call(h: Hostile) -> None:
    eve = F.RawDevice(h.c.port, "eve")  # revoked in the coordinator's config
    with pytest.raises(grpc.RpcError) as e:
        eve.register()
    F.expect(e.value, OK.PERMISSION_DENIED, "revoked")
    trudy = F.RawDevice(h.c.port, "trudy")
    trudy.register()  # after round 0 opened: not part of it
    before = h.state()
    state_dir = str(h.c.db.parent)
    out = subprocess.run(
        [sys.executable, "-m", "coordinator.cli", "revoke", "trudy", "--state-dir", state_dir],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and "revoked" in out.stdout, out.stderr
    calls = [
        ("Register", pb.RegisterRequest(samples=10, profile=F.PROFILE)),
        ("WaitAssignment", pb.WaitRequest(last_round=-1)),
        ("DownloadModel", pb.DownloadRequest(round=h.round)),
        ("UploadStatus", pb.UploadStatusRequest(round=h.round, sha256="0" * 64)),
        ("ReportRound", F.report_msg(h.round)),
    ]
    for method, req in calls:
        F.expect(trudy.refused(method, req), OK.PERMISSION_DENIED, "revoked")
    F.expect(trudy.upload_refused(h.ma, h.valid_frame()), OK.PERMISSION_DENIED, "revoked")
    assert rows(h.c.db, "SELECT revoked FROM devices WHERE id='trudy'") == [{"revoked": 1}]
    assert h.state() == before


def test_stale_and_future_rounds(h: Hostile) -> None:
    before = h.state()
    frame = h.valid_frame()
    for r in (h.round - 1, h.round + 7):
        F.expect(h.mallory.upload_refused(h.ma, frame, round=r), OK.FAILED_PRECONDITION, "not open")
        F.expect(
            h.mallory.refused("DownloadModel", pb.DownloadRequest(round=r)),
            OK.FAILED_PRECONDITION,
            "not open",
        )
        F.expect(
            h.mallory.refused("ReportRound", F.report_msg(r)), OK.FAILED_PRECONDITION, "no part"
        )
    assert h.state() == before


def test_manifest_over_the_limit_and_stream_longer_than_its_manifest(h: Hostile) -> None:
    before = h.state()
    frame = h.valid_frame()
    err = h.mallory.upload_refused(h.ma, frame, total_bytes=MAX_UPDATE + 1)
    F.expect(err, OK.RESOURCE_EXHAUSTED, "exceeds the limit", str(MAX_UPDATE))
    err = h.mallory.upload_refused(h.ma, frame, total_bytes=len(frame) - 100)
    F.expect(err, OK.RESOURCE_EXHAUSTED, "more than its declared")
    assert h.state() == before
    assert not list((h.c.db.parent / "spool").glob("*mallory*"))


def test_wrong_sha256(h: Hostile) -> None:
    before = h.state()
    err = h.mallory.upload_refused(h.ma, h.valid_frame(), sha256="ab" * 32)
    F.expect(err, OK.DATA_LOSS, "sha256", "upload it again")
    assert h.state() == before


def test_corrupt_zstd_with_matching_sha256(h: Hostile) -> None:
    before = h.state()
    err = h.mallory.upload_refused(h.ma, F.corrupt_zstd(h.valid_frame()))
    F.expect(err, OK.INVALID_ARGUMENT, "rejected by the codec", "zstd")
    assert h.state() == before


def test_zstd_bombs_are_refused_without_decompressing(h: Hostile) -> None:
    pid = h.c.run.coordinator.pid  # type: ignore[union-attr]
    hwm = F.vm_hwm_kib(pid)
    before = h.state()
    bomb = F.zstd_bomb(h.valid_frame(), decoded_mib=256)
    assert len(bomb) < 64 * 1024
    err = h.mallory.upload_refused(h.ma, bomb)
    F.expect(err, OK.INVALID_ARGUMENT, "rejected by the codec")
    err = h.mallory.upload_refused(h.ma, F.declared_huge(h.valid_frame()))
    F.expect(err, OK.INVALID_ARGUMENT, "rejected by the codec")
    assert h.state() == before
    assert F.vm_hwm_kib(pid) - hwm < 64 * 1024, "the coordinator's peak memory grew by > 64 MiB"


def test_bits_outside_1_to_16(h: Hostile) -> None:
    before = h.state()
    for bits in (0, 17, 255):
        err = h.mallory.upload_refused(h.ma, F.with_bits(h.valid_frame(), bits))
        F.expect(err, OK.INVALID_ARGUMENT, "bits")
    err = h.mallory.upload_refused(h.ma, h.valid_frame(), bits=17)
    F.expect(err, OK.INVALID_ARGUMENT, "assigned", "17 bits")
    assert h.state() == before


def test_wrong_tensor_names_shapes_and_dtypes(h: Hostile) -> None:
    before = h.state()
    good = F.small_update(h.params, 9)
    name = next(k for k, v in good.items() if v.dtype.kind == "f" and v.ndim >= 1)
    renamed = {("evil." + k if k == name else k): v for k, v in good.items()}
    reshaped = {**good, name: good[name].reshape(-1)[:-1].copy()}
    retyped = {**good, name: good[name].astype(np.float64)}
    for bad in (renamed, reshaped, retyped):
        err = h.mallory.upload_refused(h.ma, F.encode(bad))
        F.expect(err, OK.INVALID_ARGUMENT, "rejected by the codec")
    assert h.state() == before


def test_nan_and_inf_values_or_scales(h: Hostile) -> None:
    before = h.state()
    good = F.small_update(h.params, 11)
    name = next(k for k, v in good.items() if v.dtype.kind == "f")
    for bad_value in (np.nan, np.inf, -np.inf):
        u = {k: v.copy() for k, v in good.items()}
        u[name].reshape(-1)[0] = bad_value
        err = h.mallory.upload_refused(h.ma, F.encode(u, mode="fp32"))
        F.expect(err, OK.INVALID_ARGUMENT, "NaN or Inf")
    frame = h.valid_frame()
    for value, which in ((float("nan"), "offset"), (float("inf"), "step"), (-1.0, "step")):
        err = h.mallory.upload_refused(h.ma, F.with_scale(frame, value, which))
        F.expect(err, OK.INVALID_ARGUMENT, "rejected by the codec")
    assert h.state() == before


def test_update_norm_out_of_line_is_refused_from_round_0(h: Hostile) -> None:
    before = h.state()
    huge = F.small_update(h.params, 13, scale=1e-3 * NORM_RATIO * 20)
    assert F.update_norm(huge) > NORM_RATIO * F.update_norm(h.carol_update)
    err = h.mallory.upload_refused(h.ma, F.encode(huge))
    words = ("norm", "this round's accepted updates", "max_update_norm_ratio")
    F.expect(err, OK.INVALID_ARGUMENT, *words)
    assert h.state() == before


def test_oversized_metadata_strings(h: Hostile) -> None:
    before = h.state()
    oversized: List[Dict[str, Any]] = [{"board": "b" * 10_000}, {"dvfs_reason": "r" * 300}]
    for fields in oversized:
        with pytest.raises(grpc.RpcError) as e:
            h.mallory.register(**fields)
        F.expect(e.value, OK.INVALID_ARGUMENT, "characters long", "limit")
    err = h.mallory.refused("ReportRound", F.report_msg(h.round, error="e" * 100_000))
    F.expect(err, OK.INVALID_ARGUMENT, "error is", "limit")
    long_id = F.RawDevice(h.c.port, "x", metadata_id="a" * 65)
    F.expect(long_id.refused("WaitAssignment", pb.WaitRequest()), OK.PERMISSION_DENIED, "1-64")
    huge_md = F.RawDevice(h.c.port, "mallory")
    huge_md.metadata = (*huge_md.metadata, ("x-junk", "j" * 64_000))
    err = huge_md.refused("WaitAssignment", pb.WaitRequest(last_round=h.round))
    assert err.code() != OK.OK  # type: ignore[attr-defined]
    mode = h.mallory.upload_refused(h.ma, h.valid_frame(), mode="stochastic" * 1000)
    F.expect(mode, OK.INVALID_ARGUMENT, "mode")
    assert h.state() == before


def test_reports_with_negative_or_absurd_energy(h: Hostile) -> None:
    before = h.state()
    for energy in (-1.0, 1e12, float("nan"), float("inf")):
        err = h.mallory.refused("ReportRound", F.report_msg(h.round, energy_j=energy))
        F.expect(err, OK.INVALID_ARGUMENT, "energy_j", "plausible range")
    err = h.mallory.refused("ReportRound", F.report_msg(h.round, train_time_s=-5.0))
    F.expect(err, OK.INVALID_ARGUMENT, "train_time_s")
    assert h.state() == before
    assert not rows(h.c.db, "SELECT * FROM reports WHERE device_id='mallory'")


def test_slow_loris_streams_are_bounded_and_cut(h: Hostile) -> None:
    before = h.state()
    stop = threading.Event()
    futures = [
        h.mallory.stub.UploadUpdate.future(F.idle_stream(stop), metadata=h.mallory.metadata)
        for _ in range(12)
    ]
    ghosts = [
        F.RawDevice(h.c.port, "ghost").stub.UploadUpdate.future(
            F.idle_stream(stop), metadata=(("greenfed-device-id", "ghost"),), timeout=30
        )
        for _ in range(6)
    ]
    try:
        # Over the per-device limit: refused at once, not queued.
        refused = wait_for(
            "refusals of the excess streams",
            lambda: (
                [f for f in futures if f.done() and f.code() == OK.RESOURCE_EXHAUSTED]
                if sum(f.done() for f in futures) >= 10
                else None
            ),
            timeout_s=10,
        )
        assert len(refused) == 10
        F.expect(refused[0].exception(), OK.RESOURCE_EXHAUSTED, "streams open", "limit")
        for g in ghosts:
            F.expect(g.exception(timeout=10), OK.PERMISSION_DENIED, "Register")
        # While two idle streams hold their slots the server answers everything else.
        health = health_pb2_grpc.HealthStub(h.carol.channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service="greenfed.v1.Fleet"), timeout=2)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        st = h.carol.call("UploadStatus", pb.UploadStatusRequest(round=h.round), timeout=2)
        assert st.complete
        # The watchdog cuts idle streams after stream_idle_s (2 s).
        idle = [f for f in futures if f not in refused]
        for f in idle:
            assert f.exception(timeout=15).code() == OK.CANCELLED  # type: ignore[union-attr]
    finally:
        stop.set()
    # The slots are free again: mallory may open a stream (and is refused for its content).
    err = h.mallory.upload_refused(h.ma, h.valid_frame(), sha256="cd" * 32)
    F.expect(err, OK.DATA_LOSS, "sha256")
    assert h.state() == before


def test_truncated_stream_resumes_then_duplicate_is_refused(h: Hostile) -> None:
    ta = h.a["trent"]
    update = F.small_update(h.params, 21)
    frame = F.encode(update)
    before = h.state()
    half = len(frame) // 2
    err = h.trent.upload_refused(ta, frame, data=frame[:half])
    F.expect(err, OK.FAILED_PRECONDITION, f"resume from byte {half}")
    assert h.state() == before
    sha = hashlib.sha256(frame).hexdigest()
    st = h.trent.call("UploadStatus", pb.UploadStatusRequest(round=h.round, sha256=sha))
    assert st.received_bytes == half and not st.complete
    # A resume from the wrong offset is refused with the way out.
    err = h.trent.upload_refused(ta, frame, offset=half // 2)
    F.expect(err, OK.FAILED_PRECONDITION, "ask UploadStatus")
    reply = h.trent.upload(ta, frame, offset=half, samples=80)
    assert reply.accepted
    h.accepted.append(
        (
            codec.decode(frame, max_frame_bytes=64 << 20, max_decoded_bytes=64 << 20),
            h.data_size["trent"],
        )
    )
    after = h.state()
    assert after["uploads"] == before["uploads"] + 1
    err = h.trent.upload_refused(ta, frame)
    F.expect(err, OK.ALREADY_EXISTS, "was accepted")
    assert h.state() == after
    st = h.trent.call("UploadStatus", pb.UploadStatusRequest(round=h.round, sha256=sha))
    assert st.complete


def test_round_completes_with_exactly_the_honest_updates(h: Hostile) -> None:
    # Mallory declares 50x its registered data size: the weight stays what it registered.
    h.accept(h.mallory, F.small_update(h.params, 31), 5000)
    for d in (h.carol, h.trent, h.mallory):
        assert d.report(h.round).recorded
    done = wait_for(
        "round 0 to complete",
        lambda: [r for r in h.c.rounds() if r["round"] == h.round and r["status"] != "open"],
    )[0]
    assert done["status"] == "completed" and done["arrived"] == 3
    assert done["start_sha256"] == hashlib.sha256(h.start_frame).hexdigest()
    expected = F.fedavg(h.params, h.accepted)
    want = codec.encode(expected, codec.CodecConfig(mode="fp32")).sha256
    assert done["result_sha256"] == want
    assert Path(done["checkpoint_path"]).exists()
    state = F.snapshot(h.c.db)
    assert (state["uploads"], state["reports"], state["rounds"]) == (3, 3, 1)
    refusals = rows(h.c.db, "SELECT COUNT(*) AS n FROM events WHERE kind='refused'")[0]["n"]
    assert refusals >= 40
