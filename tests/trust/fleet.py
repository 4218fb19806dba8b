"""Test helpers: a raw gRPC device, forged codec frames, and a snapshot of coordinator state.

A :class:`RawDevice` speaks the wire protocol from the test process (no torch, no agent), so a
test can send exactly the bytes it wants. Frames are forged from valid ones by patching fields
of the layout in docs/codec.md and re-sealing the sha256 trailer, so every refusal tested is the
coordinator's own check, not a trailer mismatch.
"""

from __future__ import annotations

import hashlib
import math
import struct
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import grpc
import numpy as np
import pytest
import zstandard

from greenfed import codec
from greenfed.v1 import fleet_pb2 as pb
from greenfed.v1 import fleet_pb2_grpc as pb_grpc
from tests.e2e.conftest import PROFILE, rows, wait_for


class RawDevice:
    """One device's calls over a real channel; ``refused(...)`` expects a gRPC error."""

    def __init__(
        self,
        port: int,
        device_id: str,
        channel: Optional[grpc.Channel] = None,
        metadata_id: Optional[str] = None,
    ) -> None:
        self.device_id = device_id
        self.channel = channel or grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = pb_grpc.FleetStub(self.channel)
        claimed = device_id if metadata_id is None else metadata_id
        self.metadata: Tuple[Tuple[str, str], ...] = (
            (("greenfed-device-id", claimed),) if claimed else ()
        )

    def close(self) -> None:
        self.channel.close()

    def call(self, method: str, request: Any, timeout: float = 30.0) -> Any:
        return getattr(self.stub, method)(request, metadata=self.metadata, timeout=timeout)

    def refused(self, method: str, request: Any, timeout: float = 30.0) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as e:
            out = self.call(method, request, timeout)
            if method == "DownloadModel":
                list(out)
        return e.value

    def register(self, samples: int = 100, **fields: Any) -> pb.RegisterReply:
        return self.call("Register", pb.RegisterRequest(samples=samples, profile=PROFILE, **fields))

    def assignment(self, timeout_s: float = 120.0) -> pb.Assignment:
        def poll() -> Optional[pb.Assignment]:
            a = self.call("WaitAssignment", pb.WaitRequest(last_round=-1))
            return a if a.status == pb.Assignment.ASSIGNED else None

        return wait_for(f"an assignment for {self.device_id}", poll, timeout_s)

    def download(self, round_no: int) -> bytes:
        stream = self.call("DownloadModel", pb.DownloadRequest(round=round_no))
        return b"".join(c.data for c in stream)

    def upload_messages(
        self,
        a: pb.Assignment,
        frame: bytes,
        *,
        data: Optional[bytes] = None,
        **manifest: Any,
    ) -> List[pb.UploadMessage]:
        fields: Dict[str, Any] = {
            "round": a.round,
            "total_bytes": len(frame),
            "sha256": hashlib.sha256(frame).hexdigest(),
            "samples": 100,
            "bits": a.bits,
            "mode": a.mode,
        }
        fields.update(manifest)
        payload = frame[fields.get("offset", 0) :] if data is None else data
        msgs = [pb.UploadMessage(manifest=pb.UploadManifest(**fields))]
        step = 256 * 1024
        msgs += [
            pb.UploadMessage(chunk=pb.UploadChunk(data=payload[i : i + step]))
            for i in range(0, len(payload), step)
        ]
        return msgs

    def upload(self, a: pb.Assignment, frame: bytes, **kw: Any) -> pb.UploadReply:
        return self.call("UploadUpdate", iter(self.upload_messages(a, frame, **kw)))

    def upload_refused(self, a: pb.Assignment, frame: bytes, **kw: Any) -> grpc.RpcError:
        return self.refused("UploadUpdate", iter(self.upload_messages(a, frame, **kw)))

    def report(self, round_no: int, energy_j: float = 12.0, **fields: Any) -> pb.ReportReply:
        return self.call("ReportRound", report_msg(round_no, energy_j, **fields))


def report_msg(round_no: int, energy_j: float = 12.0, **fields: Any) -> pb.RoundReport:
    windows = [
        pb.EnergyWindow(
            name=n,
            energy_j=energy_j,
            dynamic_energy_j=energy_j / 2,
            duration_s=2.0,
            mean_power_w=energy_j / 2,
            peak_power_w=energy_j,
            samples=10,
            source="estimated",
            scope="test",
            estimated=True,
        )
        for n in ("compute", "communicate")
    ]
    base: Dict[str, Any] = {"bytes_up": 1000, "samples": 100, "steps": 8, "bits": 8}
    base.update(fields)
    return pb.RoundReport(round=round_no, windows=windows, **base)


def expect(err: grpc.RpcError, code: grpc.StatusCode, *words: str) -> None:
    """The status and an actionable message (it names what was wrong), which never carries a
    server path or a traceback."""
    details = err.details() or ""  # type: ignore[attr-defined]
    assert err.code() == code, f"{err.code()}: {details}"  # type: ignore[attr-defined]
    for w in words:
        assert w.lower() in details.lower(), f"{w!r} not in {details!r}"
    assert_public(details)


def assert_public(details: str) -> None:
    """No server path (test state dirs live under /tmp) and no traceback text."""
    for leak in ("/tmp/", "Traceback", 'File "', str(Path.cwd())):
        assert leak not in details, f"{leak!r} leaked in {details!r}"


# ---------------------------------------------------------------- updates and forged frames
def small_update(params: Mapping[str, np.ndarray], seed: int, scale: float = 1e-3) -> Dict:
    rng = np.random.default_rng(seed)
    return {
        k: (rng.standard_normal(v.shape) * scale).astype(v.dtype)
        if v.dtype.kind == "f"
        else np.zeros_like(v)
        for k, v in params.items()
    }


def encode(update: Mapping[str, np.ndarray], mode: str = "stochastic", bits: int = 8) -> bytes:
    cfg = codec.CodecConfig(mode=mode, bits=bits, seed=7) if mode == "stochastic" else None
    return codec.encode(update, cfg or codec.CodecConfig(mode=mode)).frame


def encode_for(a: pb.Assignment, update: Mapping[str, np.ndarray]) -> bytes:
    """An honest frame for assignment ``a``: its codec mode and bits."""
    return encode(update, mode=a.mode, bits=a.bits)


def reseal(frame: bytes) -> bytes:
    """Recompute the frame's sha256 trailer after a patch."""
    body = bytes(frame[:-32])
    return body + hashlib.sha256(body).digest()


def _header(frame: bytes) -> Dict[str, int]:
    _, _, _, frame_bytes, manifest_bytes, _, raw, stored = struct.unpack_from(
        "<4sHHQIIQQ", frame, 0
    )
    return {"frame": frame_bytes, "manifest": manifest_bytes, "raw": raw, "stored": stored}


def with_bits(frame: bytes, bits: int) -> bytes:
    b = bytearray(frame)
    b[41] = bits  # manifest: u8 mode, u8 bits
    return reseal(bytes(b))


def scale_offsets(frame: bytes) -> Tuple[int, int]:
    """Byte offsets of the first scale group's float32 offset and of its step (codec frame
    version 2: a table row of 8 bytes per tensor, the names, the dims, then the offsets of every
    group followed by their steps)."""
    h = _header(frame)
    n = struct.unpack_from("<I", frame, 48)[0]  # n_tensors, after mode, bits, layout, block
    rows = [struct.unpack_from("<HBBB", frame, 52 + 8 * i) for i in range(n)]
    if not any(enc == 2 for _, _, enc, _ in rows):
        raise AssertionError("no quantized tensor in the frame")
    scales = 52 + 8 * n + sum(r[0] for r in rows) + 8 * sum(r[3] for r in rows)
    groups = (40 + h["manifest"] - scales) // 8
    return scales, scales + 4 * groups


def with_scale(frame: bytes, value: float, which: str = "offset") -> bytes:
    offset, step = scale_offsets(frame)
    b = bytearray(frame)
    struct.pack_into("<f", b, step if which == "step" else offset, value)
    return reseal(bytes(b))


def corrupt_zstd(frame: bytes) -> bytes:
    """Keep the zstd frame header (magic, sizes) intact; fill its blocks with 0xFF."""
    h = _header(frame)
    start = 40 + h["manifest"]
    fhd = frame[start + 4]
    single = (fhd >> 5) & 1
    fcs = [1 if single else 0, 2, 4, 8][fhd >> 6]
    did = [0, 1, 2, 4][fhd & 3]
    keep = start + 4 + 1 + (0 if single else 1) + did + fcs
    end = start + h["stored"]
    b = bytearray(frame)
    b[keep:end] = b"\xff" * (end - keep)
    return reseal(bytes(b))


def with_payload(frame: bytes, payload: bytes, raw_bytes: Optional[int] = None) -> bytes:
    """Replace the stored payload (sizes in the header follow; ``raw_bytes`` may lie)."""
    h = _header(frame)
    head = bytearray(frame[:40])
    manifest = frame[40 : 40 + h["manifest"]]
    total = 40 + len(manifest) + len(payload) + 32
    struct.pack_into("<Q", head, 8, total)
    struct.pack_into("<Q", head, 32, len(payload))
    if raw_bytes is not None:
        struct.pack_into("<Q", head, 24, raw_bytes)
    return reseal(bytes(head) + manifest + payload + b"\0" * 32)


def zstd_bomb(frame: bytes, decoded_mib: int = 128) -> bytes:
    """The frame's payload replaced by a zstd frame of ``decoded_mib`` MiB of zeros (~KiB)."""
    bomb = zstandard.ZstdCompressor(level=1).compress(b"\0" * (decoded_mib << 20))
    return with_payload(frame, bomb)


def declared_huge(frame: bytes) -> bytes:
    return with_payload(frame, frame[40 + _header(frame)["manifest"] : -32], raw_bytes=1 << 40)


def update_norm(update: Mapping[str, np.ndarray]) -> float:
    floats = [v.astype(np.float64) for v in update.values() if v.dtype.kind == "f"]
    return math.sqrt(sum(float(np.sum(v * v)) for v in floats))


def fedavg(params: Mapping[str, np.ndarray], updates: List[Tuple[Dict, int]]) -> Dict:
    """What the coordinator's FedAvg (aggregation/fedavg.py) computes, same order and precision."""
    acc = {k: np.zeros(v.shape, np.float64) for k, v in params.items() if v.dtype.kind == "f"}
    total = 0
    for u, n in updates:
        for k in acc:
            acc[k] += u[k].astype(np.float64) * float(n)
        total += n
    return {
        k: ((v.astype(np.float64) + acc[k] / total).astype(v.dtype) if k in acc else v.copy())
        for k, v in params.items()
    }


# ---------------------------------------------------------------- state snapshots
TABLES = ("devices", "rounds", "assignments", "uploads", "reports")


def snapshot(db: Path, model: Optional[bytes] = None) -> Dict[str, Any]:
    """Row counts, rounds' model hashes, uploads and assignment states (and a model's hash)."""
    out: Dict[str, Any] = {t: rows(db, f"SELECT COUNT(*) AS n FROM {t}")[0]["n"] for t in TABLES}
    out["rounds_state"] = rows(
        db, "SELECT round, status, start_sha256, result_sha256, arrived FROM rounds ORDER BY round"
    )
    out["uploads_state"] = rows(
        db, "SELECT round, device_id, sha256, total_bytes FROM uploads ORDER BY round, device_id"
    )
    out["assignments_state"] = rows(
        db, "SELECT round, device_id, status FROM assignments ORDER BY round, device_id"
    )
    checkpoints = db.parent / "checkpoints"
    out["checkpoints"] = sorted(
        (p.name, p.stat().st_size) for p in checkpoints.glob("*") if checkpoints.exists()
    )
    if model is not None:
        out["model_sha256"] = hashlib.sha256(model).hexdigest()
    return out


def idle_stream(stop: Any) -> Iterator[pb.UploadMessage]:
    """A request stream that sends nothing until ``stop`` is set (slow-loris)."""
    stop.wait(120)
    return
    yield  # pragma: no cover  (makes this a generator)


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")
