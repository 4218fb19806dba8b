"""Request handlers: plain functions of (request, identity, engine), no gRPC in sight.

The servicer resolves the caller's identity and maps :mod:`coordinator.errors` to status
codes; these functions hold the logic and are tested directly: convert (serde), check
(validation), act (engine).
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Iterator

from coordinator import serde, validation
from coordinator.engine import FINISHED, Engine
from coordinator.errors import InvalidRequest
from greenfed.v1 import fleet_pb2 as pb

DOWNLOAD_PIECE_BYTES = 64 * 1024


def register(req: pb.RegisterRequest, device_id: str, engine: Engine) -> pb.RegisterReply:
    reg = serde.registration_from_pb(req)
    validation.check_registration(reg)
    engine.register(device_id, reg)
    return pb.RegisterReply(
        device_id=device_id,
        model_config_json=engine.host.config_json(),
        run_id=engine.store.get_meta("run_id") or "",
        poll_interval_s=engine.cfg.poll_interval_s,
        max_update_bytes=engine.cfg.max_update_bytes,
        chunk_bytes=engine.cfg.chunk_bytes,
    )


def wait_assignment(
    req: pb.WaitRequest,
    device_id: str,
    engine: Engine,
    alive: Callable[[], bool] = lambda: True,
) -> pb.Assignment:
    """The device's assignment, WAIT after the poll interval (or once ``alive`` says the caller
    is gone), or FINISHED."""
    got = engine.wait_assignment(
        device_id, int(req.last_round), engine.cfg.poll_interval_s, alive=alive
    )
    if got is None:
        return pb.Assignment(status=pb.Assignment.WAIT)
    if got == FINISHED:
        return pb.Assignment(status=pb.Assignment.FINISHED)
    return serde.assignment_to_pb(got)


def download_model(
    req: pb.DownloadRequest, device_id: str, engine: Engine
) -> Iterator[pb.ModelChunk]:
    frame = engine.model_for(device_id, int(req.round))
    if req.offset < 0 or req.offset > len(frame):
        raise InvalidRequest(f"download offset {req.offset} outside 0..{len(frame)}")
    sha = hashlib.sha256(frame).hexdigest()
    # Small pieces: each one the client takes is progress the stream watchdog can see, so a
    # slow link keeps its download and a stalled one is cut after stream_idle_s.
    step = min(engine.cfg.chunk_bytes, DOWNLOAD_PIECE_BYTES)
    for off in range(int(req.offset), len(frame), step):
        yield pb.ModelChunk(
            round=req.round,
            offset=off,
            total_bytes=len(frame),
            sha256=sha,
            data=frame[off : off + step],
        )


def upload_update(
    messages: Iterable[pb.UploadMessage], device_id: str, engine: Engine
) -> pb.UploadReply:
    it = iter(messages)
    first = next(it, None)
    if first is None or first.WhichOneof("kind") != "manifest":
        raise InvalidRequest("an upload stream must start with an UploadManifest")
    manifest = serde.manifest_from_pb(first.manifest)
    validation.check_manifest(manifest, engine.cfg.max_update_bytes)

    def chunks() -> Iterator[bytes]:
        for msg in it:
            if msg.WhichOneof("kind") != "chunk":
                raise InvalidRequest("only UploadChunk messages may follow the manifest")
            yield msg.chunk.data

    received = engine.receive_upload(device_id, manifest, chunks())
    return pb.UploadReply(round=manifest.round, received_bytes=received, accepted=True)


def upload_status(
    req: pb.UploadStatusRequest, device_id: str, engine: Engine
) -> pb.UploadStatusReply:
    sha = validation.check_sha256(req.sha256, "sha256", allow_empty=True)
    received, complete = engine.upload_status(device_id, int(req.round), sha)
    return pb.UploadStatusReply(received_bytes=received, complete=complete)


def report_round(req: pb.RoundReport, device_id: str, engine: Engine) -> pb.ReportReply:
    rep = serde.report_from_pb(req)
    validation.check_report(rep, engine.cfg.max_update_bytes)
    engine.record_report(device_id, rep)
    return pb.ReportReply(recorded=True)
