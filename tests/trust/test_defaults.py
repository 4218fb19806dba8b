"""What the defaults protect, and the robust rule, against a real coordinator on loopback.

``defaults``: a coordinator with the shipped settings (on-demand scheme, derived deadline with
its ceiling, the update-norm check on at its default ratio): a device whose registered uplink is
plausible but hopeless sits the round out instead of stretching its deadline, and a +50 per
value update is refused; the round completes with the honest updates only.

``robust``: ``aggregation = "trimmed-mean"`` on an fp32 round: NaN/Inf values are refused, and
an update inside the norm bound (8x the honest ones) still cannot pull any value outside the
honest updates' range: the result is exactly the coordinate-wise trimmed mean.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Dict, List

import grpc
import numpy as np
import pytest

from coordinator.config import CoordinatorConfig
from greenfed import codec
from greenfed.v1 import fleet_pb2 as pb
from tests.e2e.conftest import Cluster, rows, wait_for
from tests.trust import fleet as F

pytestmark = pytest.mark.slow
OK = grpc.StatusCode
DEADLINE_MAX_S = 60.0


def decode(frame: bytes) -> Dict[str, np.ndarray]:
    return dict(codec.decode(frame, max_frame_bytes=64 << 20, max_decoded_bytes=64 << 20))


def completed(c: Cluster) -> Dict:
    return wait_for(
        "round 0 to close",
        lambda: [r for r in c.rounds() if r["round"] == 0 and r["status"] != "open"],
    )[0]


def test_defaults_protect_the_round(cluster_factory: Callable[..., Cluster]) -> None:
    c = cluster_factory(rounds=1, min_devices=4, deadline_max_s=DEADLINE_MAX_S)
    del c.values["deadline_s"]  # FAST fixes it; here it is derived, as by default
    c.start()
    cfg = CoordinatorConfig()
    assert cfg.max_update_norm_ratio > 0 and cfg.deadline_max_s > 0  # what this test relies on
    alice, bob, eve = (F.RawDevice(c.port, n) for n in ("alice", "bob", "eve"))
    crawl = F.RawDevice(c.port, "crawl")
    for d in (alice, bob, eve):
        d.register(samples=100)
    # Plausible (validation accepts 100 B/s) but hopeless: its fastest round is minutes long.
    slow = pb.CalibrationProfile()
    slow.CopyFrom(F.PROFILE)
    slow.uplink_bytes_per_s = 100.0
    crawl.call("Register", pb.RegisterRequest(samples=100, profile=slow))
    a = {d.device_id: d.assignment() for d in (alice, bob, eve)}
    # The derived deadline stops at its ceiling; the slow device sits the round out.
    assert {x.deadline_s for x in a.values()} == {DEADLINE_MAX_S}
    assert crawl.call("WaitAssignment", pb.WaitRequest(last_round=-1)).status == pb.Assignment.WAIT
    excluded = rows(c.db, "SELECT device_id, message FROM events WHERE kind='excluded'")
    assert [e["device_id"] for e in excluded] == ["crawl"]
    assert rows(c.db, "SELECT deadline_s FROM rounds")[0]["deadline_s"] == DEADLINE_MAX_S

    start_frame = alice.download(a["alice"].round)
    params = decode(start_frame)
    honest: List = []
    for d, seed in ((alice, 1), (bob, 2)):
        x = a[d.device_id]
        frame = F.encode(F.small_update(params, seed), mode=x.mode, bits=x.bits)
        assert d.upload(x, frame).accepted
        honest.append((decode(frame), 100))
    before = F.snapshot(c.db, alice.download(0))
    # +50 per value: refused by the default norm check (not averaged in).
    x = a["eve"]
    shove = {k: np.full_like(v, 50.0) if v.dtype.kind == "f" else v for k, v in params.items()}
    err = eve.upload_refused(x, F.encode(shove, mode=x.mode, bits=x.bits))
    F.expect(err, OK.INVALID_ARGUMENT, "norm", "max_update_norm_ratio = 10")
    assert F.snapshot(c.db, alice.download(0)) == before
    # Eve may still send an honest update: the refusal cost her nothing but the shove.
    frame = F.encode(F.small_update(params, 3), mode=x.mode, bits=x.bits)
    assert eve.upload(x, frame).accepted
    honest.append((decode(frame), 100))
    for d in (alice, bob, eve):
        assert d.report(0, bits=a[d.device_id].bits).recorded
    done = completed(c)
    assert done["status"] == "completed" and done["arrived"] == 3
    want = codec.encode(F.fedavg(params, honest), codec.CodecConfig(mode="fp32")).sha256
    assert done["result_sha256"] == want
    assert done["start_sha256"] == hashlib.sha256(start_frame).hexdigest()


def test_trimmed_mean_keeps_a_hostile_update_from_pulling_the_model(
    cluster_factory: Callable[..., Cluster],
) -> None:
    c = cluster_factory(
        rounds=1, min_devices=5, scheme="fp32", aggregation="trimmed-mean", deadline_s=600.0
    )
    c.start()
    devs = [F.RawDevice(c.port, n) for n in ("h1", "h2", "h3", "h4", "eve")]
    for d in devs:
        d.register(samples=100)
    a = {d.device_id: d.assignment() for d in devs}
    assert {(x.mode, x.bits) for x in a.values()} == {("fp32", 32)}
    eve = devs[-1]
    start_frame = devs[0].download(0)
    params = decode(start_frame)
    before = F.snapshot(c.db, start_frame)
    # NaN/Inf values (an fp32 frame carries them as sent): refused, naming the tensor.
    name = next(k for k, v in params.items() if v.dtype.kind == "f")
    for bad in (np.nan, np.inf, -np.inf):
        u = F.small_update(params, 5)
        u[name].reshape(-1)[0] = bad
        err = eve.upload_refused(a["eve"], F.encode(u, mode="fp32"))
        F.expect(err, OK.INVALID_ARGUMENT, "NaN or Inf", name)
    assert F.snapshot(c.db, devs[0].download(0)) == before
    updates = []
    for i, d in enumerate(devs[:-1]):
        frame = F.encode(F.small_update(params, 10 + i), mode="fp32")
        assert d.upload(a[d.device_id], frame).accepted
        updates.append(decode(frame))
    # Inside the norm bound (8x the honest norm < 10x), so FedAvg would average it in.
    push = {k: np.full_like(v, 8e-3) if v.dtype.kind == "f" else v for k, v in params.items()}
    assert F.update_norm(push) < 10 * F.update_norm(updates[0])
    assert eve.upload(a["eve"], F.encode(push, mode="fp32")).accepted
    updates.append(decode(F.encode(push, mode="fp32")))
    for d in devs:
        assert d.report(0, bits=32).recorded
    done = completed(c)
    assert done["status"] == "completed" and done["arrived"] == 5
    k = 1  # ceil(0.2 x 5) at each end
    mean = trimmed_update(updates, k)
    applied = {
        key: (v.astype(np.float64) + mean[key]).astype(v.dtype) if key in mean else v.copy()
        for key, v in params.items()
    }
    assert done["result_sha256"] == codec.encode(applied, codec.CodecConfig(mode="fp32")).sha256
    # With at most k hostile devices every value stays within the honest updates' own range,
    # whatever the hostile one sent; FedAvg's does not.
    fedavg = trimmed_update(updates, 0)
    outside = 0
    for key, m in mean.items():
        honest = np.stack([u[key] for u in updates[:-1]]).astype(np.float64)
        lo, hi = honest.min(axis=0), honest.max(axis=0)
        assert np.all(m >= lo) and np.all(m <= hi), key
        outside += int(np.sum((fedavg[key] < lo) | (fedavg[key] > hi)))
    assert outside > 0


def trimmed_update(updates: List[Dict], k: int) -> Dict[str, np.ndarray]:
    """What coordinator/aggregation/trimmed.py computes (float64), same order and precision;
    k = 0 is the plain (unweighted) mean."""
    n = len(updates)
    out = {}
    for key, v in updates[0].items():
        if v.dtype.kind != "f":
            continue
        stack = np.sort(np.stack([u[key] for u in updates]).astype(np.float64), axis=0)
        out[key] = stack[k : n - k].mean(axis=0)
    return out
