"""Hostile input against a real coordinator process over real sockets.

One coordinator serves the whole module: four devices hold assignments in round 0 (carol, who
uploads an honest update at once; trent, who tests resumes and duplicates; dave, who uploads
on two streams at once; mallory, who sends everything hostile). Each test asserts the status
and its message (never a server path or a traceback), and that the store, the checkpoints, the
global model and the other devices' round are unchanged. The last test completes the round and
checks that the global model moved by exactly the honest updates, with the weights fixed when
the round opened, and that nothing sent after can rewrite the round.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from concurrent import futures as cf
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

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
IDLE_S = 3.0


class Hostile:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        port = cluster.port
        self.carol = F.RawDevice(port, "carol")
        self.trent = F.RawDevice(port, "trent")
        self.dave = F.RawDevice(port, "dave")
        self.mallory = F.RawDevice(port, "mallory")
        self.devices = (self.carol, self.trent, self.dave, self.mallory)
        # Different data sizes: FedAvg weighs by these (as registered when the round opened),
        # whatever an upload declares or a later registration says.
        self.data_size = {"carol": 120, "trent": 80, "dave": 60, "mallory": 100}
        for d in self.devices:
            d.register(samples=self.data_size[d.device_id])
        self.a = {d.device_id: d.assignment() for d in self.devices}
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
            "min_devices": 4,
            "scheme": "fixed-8",
            "deadline_s": 600.0,
            "max_update_bytes": MAX_UPDATE,
            "max_update_norm_ratio": NORM_RATIO,
            "stream_idle_s": IDLE_S,
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


def test_nan_and_inf_scales(h: Hostile) -> None:
    # NaN/Inf values ride fp32/fp16 frames only: tests/trust/test_defaults.py (an fp32 round).
    before = h.state()
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


# ------------------------------------------------------------ 1. plausible numbers
@pytest.mark.parametrize(
    "profile, field",
    [
        ({"uplink_bytes_per_s": 5e-324}, "uplink_bytes_per_s"),  # denormal: an infinite round
        ({"uplink_bytes_per_s": float("inf")}, "uplink_bytes_per_s"),
        ({"kappa": float("nan")}, "kappa"),
        ({"cycles_per_sample": 1e300}, "cycles_per_sample"),
        ({"f_steps_hz": [6e8, float("nan")]}, "f_steps_hz[1]"),
        ({"f_steps_hz": [float("inf")]}, "f_steps_hz[0]"),
        ({"f_max_hz": 1e-300}, "f_max_hz"),
    ],
)
def test_implausible_coefficients_are_refused_at_registration(
    h: Hostile, profile: Dict[str, Any], field: str
) -> None:
    before = h.state()
    row = F.rows(h.c.db, "SELECT * FROM devices WHERE id='mallory'")
    p = pb.CalibrationProfile()
    p.CopyFrom(F.PROFILE)
    for k, v in profile.items():
        if isinstance(v, list):
            getattr(p, k).extend(v)
        else:
            setattr(p, k, v)
    err = h.mallory.refused("Register", pb.RegisterRequest(samples=100, profile=p))
    F.expect(err, OK.INVALID_ARGUMENT, f"profile.{field}", "plausible range")
    for link in (float("nan"), float("inf"), -1.0):
        err = h.mallory.refused("Register", pb.RegisterRequest(samples=100, link_mbps=link))
        F.expect(err, OK.INVALID_ARGUMENT, "link_mbps")
    assert h.state() == before
    assert F.rows(h.c.db, "SELECT * FROM devices WHERE id='mallory'") == row


# ------------------------------------------------------------ 2. fair share of the server
def test_long_poll_flood_leaves_the_server_answerable(h: Hostile) -> None:
    before = h.state()
    waiting = pb.WaitRequest(last_round=h.round)  # mallory holds round 0: each poll would wait
    # 150 polls over 10 connections (each under HTTP/2's 16 streams per connection).
    own = [("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per channel
    channels = [
        F.RawDevice(h.c.port, "mallory", grpc.insecure_channel(f"127.0.0.1:{h.c.port}", own))
        for _ in range(10)
    ]
    flood = [
        ch.stub.WaitAssignment.future(waiting, metadata=ch.metadata, timeout=30)
        for ch in channels
        for _ in range(15)
    ]
    try:
        refused = wait_for(
            "all but one poll refused",
            lambda: [f for f in flood if f.done()] if sum(f.done() for f in flood) >= 149 else None,
            timeout_s=30,
        )
        codes = {f.code() for f in refused}
        assert codes == {OK.RESOURCE_EXHAUSTED}, {(f.code(), f.details()) for f in refused}
        ours = [f for f in refused if "per device" in (f.details() or "")]
        assert ours, "no refusal came from the per-device limit"
        F.expect(ours[0].exception(), OK.RESOURCE_EXHAUSTED, "WaitAssignment", "limit 1")
        # One poll still waits, and the health service and the other devices are answered.
        health = health_pb2_grpc.HealthStub(h.carol.channel)
        for _ in range(6):
            req = health_pb2.HealthCheckRequest(service="greenfed.v1.Fleet")
            assert health.Check(req, timeout=2).status == health_pb2.HealthCheckResponse.SERVING
        st = h.carol.call("UploadStatus", pb.UploadStatusRequest(round=h.round), timeout=2)
        assert st.complete
    finally:
        for f in flood:
            f.cancel()
        for ch in channels:
            ch.close()
    # The cancelled poll gives its slot back (within a second): mallory may poll again.
    wait_for(
        "mallory's poll slot",
        lambda: poll_or_none(h.mallory),
        timeout_s=10,
    )
    assert h.state() == before
    # The flood is a few counted rows, not 149 events.
    counted = wait_for(
        "the refusal count to be written",
        lambda: (
            F.rows(
                h.c.db,
                "SELECT COUNT(*) AS n, SUM(count) AS total FROM events "
                "WHERE kind='refused' AND device_id='mallory' AND message LIKE 'TooManyStreams%'",
            )
            or None
        ),
    )
    assert counted[0]["n"] <= 2 and counted[0]["total"] >= len(ours)


def test_stalled_downloads_are_cut_and_free_their_slots(h: Hostile) -> None:
    before = h.state()
    req = pb.DownloadRequest(round=h.round)
    # A small fixed receive window (no BDP growth): the client really stops taking bytes.
    tight = [("grpc.http2.bdp_probe", 0), ("grpc.use_local_subchannel_pool", 1)]
    staller = F.RawDevice(
        h.c.port, "mallory", grpc.insecure_channel(f"127.0.0.1:{h.c.port}", tight)
    )
    stalled = [staller.call("DownloadModel", req) for _ in range(2)]
    try:
        for s_ in stalled:
            next(s_)  # take one piece, then read nothing more
        third = h.mallory.refused("DownloadModel", req)
        F.expect(third, OK.RESOURCE_EXHAUSTED, "download", "per device")
        # The watchdog cuts both after stream_idle_s without progress, and their slots are
        # free again: mallory's next download goes through.
        got = wait_for("a download after the cut", lambda: download_or_none(h.mallory, h.round))
        assert got == h.start_frame
    finally:
        for s_ in stalled:
            s_.cancel()
        staller.close()
    assert h.c.logs().count("cut the download stream of mallory") == 2
    assert h.state() == before


def test_empty_chunks_do_not_keep_an_upload_alive(h: Hostile) -> None:
    before = h.state()
    frame = h.valid_frame()
    first = h.mallory.upload_messages(h.ma, frame)[0]
    stop = threading.Event()
    sent: List[int] = [0]

    def empty_chunks() -> Iterator[pb.UploadMessage]:
        yield first
        while not stop.wait(0.2):  # a keep-alive every 0.2 s, never a byte
            sent[0] += 1
            yield pb.UploadMessage(chunk=pb.UploadChunk(data=b""))

    try:
        call = h.mallory.stub.UploadUpdate.future(
            empty_chunks(), metadata=h.mallory.metadata, timeout=60
        )
        err = call.exception(timeout=30)
    finally:
        stop.set()
    assert err is not None and err.code() == OK.CANCELLED  # type: ignore[attr-defined]
    assert sent[0] >= IDLE_S / 0.2 - 1  # it kept sending empty chunks until it was cut
    assert h.state() == before


# ------------------------------------------------------------ 3. two streams, one device
def test_two_concurrent_uploads_from_one_device(h: Hostile) -> None:
    """Both streams carry the same frame, interleaved: exactly one is accepted, the other is
    told so; neither sees INTERNAL or a path, and the spool holds nothing after."""
    da = h.a["dave"]
    update = F.small_update(h.params, 41)
    frame = F.encode(update)
    manifest = h.dave.upload_messages(da, frame)[0]
    step = 32 * 1024
    msgs = [manifest] + [
        pb.UploadMessage(chunk=pb.UploadChunk(data=frame[i : i + step]))
        for i in range(0, len(frame), step)
    ]
    assert len(msgs) >= 4
    half = len(msgs) // 2
    a_half, b_half = threading.Event(), threading.Event()

    def stream(mine: threading.Event, other: threading.Event, wait_first: bool):
        if wait_first:
            assert other.wait(20)
        yield from msgs[:half]
        mine.set()
        assert other.wait(20)
        yield from msgs[half:]

    with cf.ThreadPoolExecutor(2) as pool:
        calls = [
            pool.submit(
                lambda m=m, o=o, w=w: h.dave.call("UploadUpdate", stream(m, o, w))  # type: ignore[misc]
            )
            for m, o, w in ((a_half, b_half, False), (b_half, a_half, True))
        ]
        outcomes: List[Any] = []
        for c in calls:
            try:
                outcomes.append(c.result(timeout=60))
            except grpc.RpcError as e:
                outcomes.append(e)
    accepted = [o for o in outcomes if isinstance(o, pb.UploadReply)]
    refused = [o for o in outcomes if isinstance(o, grpc.RpcError)]
    assert len(accepted) == 1 and accepted[0].accepted, outcomes
    assert len(refused) == 1
    F.expect(refused[0], OK.ALREADY_EXISTS, "was accepted")
    h.accepted.append(
        (
            codec.decode(frame, max_frame_bytes=64 << 20, max_decoded_bytes=64 << 20),
            h.data_size["dave"],
        )
    )
    assert F.rows(h.c.db, "SELECT COUNT(*) AS n FROM uploads WHERE device_id='dave'")[0]["n"] == 1
    assert not list((h.c.db.parent / "spool").glob("*dave*"))


# ------------------------------------------------------------ 4. what the round fixed
def test_frames_must_carry_the_assigned_mode_and_bits(h: Hostile) -> None:
    before = h.state()
    update = F.small_update(h.params, 43)
    # The manifest says what was assigned (stochastic, 8 bits); the frames say otherwise.
    for frame, says in (
        (F.encode(update, bits=1), "stochastic at 1 bits"),
        (F.encode(update, bits=4), "stochastic at 4 bits"),
        (F.encode(update, mode="fp16"), "fp16 at 16 bits"),
    ):
        err = h.mallory.upload_refused(h.ma, frame)
        F.expect(err, OK.INVALID_ARGUMENT, f"frame is {says}", "assigned stochastic at 8 bits")
    err = h.mallory.upload_refused(h.ma, h.valid_frame(), mode="fp32", bits=32)
    F.expect(err, OK.INVALID_ARGUMENT, "assigned stochastic at 8 bits", "fp32 at 32 bits")
    assert h.state() == before
    assert not list((h.c.db.parent / "spool").glob("*mallory*"))


def test_re_registering_mid_round_changes_only_the_next_round(h: Hostile) -> None:
    before = h.state()
    h.mallory.register(samples=10**9)  # valid, but after the round opened
    assert F.rows(h.c.db, "SELECT samples FROM devices WHERE id='mallory'")[0]["samples"] == 10**9
    again = h.mallory.call("WaitAssignment", pb.WaitRequest(last_round=-1))
    assert again.round == h.round and again.bits == h.ma.bits  # the assignment stands
    after = h.state()
    assert {k: v for k, v in after.items() if k != "devices"} == {
        k: v for k, v in before.items() if k != "devices"
    }
    # Its weight in round 0 stays 100: the last test checks the aggregate.


# ------------------------------------------------------------ 5. one truth per round
@pytest.mark.parametrize(
    "fields, name",
    [
        ({"link_mbps": float("nan")}, "link_mbps"),
        ({"bits": -3}, "bits"),
        ({"bytes_up": 2**62}, "bytes_up"),
        ({"update_norm": -1.0}, "update_norm"),
        ({"samples": -5}, "samples"),
        ({"steps": -1}, "steps"),
    ],
)
def test_implausible_report_figures_are_refused(
    h: Hostile, fields: Dict[str, Any], name: str
) -> None:
    before = h.state()
    err = h.mallory.refused("ReportRound", F.report_msg(h.round, **fields))
    F.expect(err, OK.INVALID_ARGUMENT, name)
    assert h.state() == before


def test_negative_dynamic_energy_is_refused(h: Hostile) -> None:
    before = h.state()
    msg = F.report_msg(h.round)
    msg.windows[0].dynamic_energy_j = -1e7
    F.expect(h.mallory.refused("ReportRound", msg), OK.INVALID_ARGUMENT, "dynamic_energy_j")
    assert h.state() == before


def test_sha256_with_trailing_junk_is_refused(h: Hostile) -> None:
    before = h.state()
    frame = h.valid_frame()
    sha = hashlib.sha256(frame).hexdigest()
    for junk in (sha + "junk", sha + "0", sha + "\n", sha.upper()):
        err = h.mallory.upload_refused(h.ma, frame, sha256=junk)
        F.expect(err, OK.INVALID_ARGUMENT, "sha256", "exactly 64")
        err = h.mallory.refused("UploadStatus", pb.UploadStatusRequest(round=h.round, sha256=junk))
        F.expect(err, OK.INVALID_ARGUMENT, "sha256", "exactly 64")
    err = h.mallory.upload_refused(h.ma, frame, mode="stochastic" + "x" * 8)
    F.expect(err, OK.INVALID_ARGUMENT, "mode")
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
    # Mallory declares 50x its registered data size, and re-registered with 1e9 samples after
    # the round opened: its weight stays the 100 it had registered when the round opened.
    h.accept(h.mallory, F.small_update(h.params, 31), 5000)
    assert h.carol.report(h.round).recorded
    first = report_row(h, "carol")
    # A second report for the round is refused and rewrites nothing.
    err = h.carol.refused("ReportRound", F.report_msg(h.round, energy_j=99.0))
    F.expect(err, OK.ALREADY_EXISTS, "report", "final")
    assert report_row(h, "carol") == first
    for d in (h.trent, h.dave, h.mallory):
        assert d.report(h.round).recorded
    done = wait_for(
        "round 0 to complete",
        lambda: [r for r in h.c.rounds() if r["round"] == h.round and r["status"] != "open"],
    )[0]
    assert done["status"] == "completed" and done["arrived"] == 4
    assert done["start_sha256"] == hashlib.sha256(h.start_frame).hexdigest()
    expected = F.fedavg(h.params, h.accepted)
    want = codec.encode(expected, codec.CodecConfig(mode="fp32")).sha256
    assert done["result_sha256"] == want
    assert Path(done["checkpoint_path"]).exists()
    final = F.snapshot(h.c.db)
    assert (final["uploads"], final["reports"], final["rounds"]) == (4, 4, 1)

    # One truth per round: the closed (early: every update arrived) round takes nothing more.
    err = h.carol.upload_refused(h.a["carol"], F.encode(h.carol_update))
    F.expect(err, OK.ALREADY_EXISTS, "was accepted")  # not "late": its first upload counted
    err = h.trent.refused("ReportRound", F.report_msg(h.round, energy_j=1.0))
    F.expect(err, OK.FAILED_PRECONDITION, "completed", "final")
    assert report_row(h, "carol") == first
    assert F.snapshot(h.c.db) == final

    # Refusals are counted, not one row each (class 7): far fewer rows than refusals.
    refused = rows(
        h.c.db, "SELECT COUNT(*) AS n, SUM(count) AS total FROM events WHERE kind='refused'"
    )[0]
    assert refused["total"] >= 200 and refused["n"] <= refused["total"] // 4
    # Cancelled and cut streams are not errors: no ERROR line, no traceback in the log.
    log = (h.c.root / "coordinator.log").read_text(errors="replace")
    assert "Traceback" not in log
    assert not [line for line in log.splitlines() if " ERROR " in line or "ERROR:" in line]
    assert "cut the upload stream of mallory" in log


def download_or_none(dev: F.RawDevice, round_no: int) -> Optional[bytes]:
    try:
        return dev.download(round_no)
    except grpc.RpcError as e:
        if e.code() != OK.RESOURCE_EXHAUSTED:  # type: ignore[attr-defined]
            raise
        return None


def poll_or_none(dev: F.RawDevice) -> Optional[pb.Assignment]:
    try:
        return dev.call("WaitAssignment", pb.WaitRequest(last_round=-1), timeout=5)
    except grpc.RpcError as e:
        if e.code() != OK.RESOURCE_EXHAUSTED:  # type: ignore[attr-defined]
            raise
        return None


def report_row(h: Hostile, device: str) -> Optional[Dict[str, Any]]:
    got = rows(h.c.db, "SELECT * FROM reports WHERE device_id = ?", (device,))
    return json.loads(json.dumps(got[0], default=str)) if got else None
