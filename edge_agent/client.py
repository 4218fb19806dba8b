"""The agent's gRPC client: channel, identity, retries with jittered backoff, resumable streams.

The agent always dials out. Transient failures (coordinator away, connection reset) are
retried forever with exponential backoff and full jitter; refusals (the coordinator said no)
are raised as :class:`~edge_agent.errors.Refused` with the coordinator's message.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from typing import Callable, Iterator, List, Optional, Tuple, TypeVar

import grpc

from edge_agent.config import AgentConfig
from edge_agent.errors import AgentError, Refused, Stopped
from edge_agent.link import TokenBucket, shaped
from greenfed.v1 import fleet_pb2 as pb
from greenfed.v1 import fleet_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNKNOWN,
}


class Backoff:
    """Exponential backoff with full jitter (delay uniform in [0, min(cap, base·2^n)])."""

    def __init__(self, base_s: float, cap_s: float, rng: Optional[random.Random] = None) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        delay = self._rng.uniform(0.0, min(self.cap_s, self.base_s * (2**self.attempt)))
        self.attempt = min(self.attempt + 1, 30)
        return delay

    def reset(self) -> None:
        self.attempt = 0


def _channel_options(max_message: int) -> List[Tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", max_message),
        ("grpc.max_send_message_length", max_message),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        # Reconnect quickly when the coordinator comes back.
        ("grpc.initial_reconnect_backoff_ms", 500),
        ("grpc.max_reconnect_backoff_ms", 5_000),
    ]


def make_channel(cfg: AgentConfig, max_message: int = 8 * 1024 * 1024) -> grpc.Channel:
    options = _channel_options(max_message)
    tls = cfg.tls
    if tls.cert is None and tls.key is None and tls.ca is None:
        return grpc.insecure_channel(cfg.coordinator, options=options)
    if tls.cert is None or tls.key is None or tls.ca is None:
        raise AgentError("tls needs all of cert, key and ca (PEM files)")
    creds = grpc.ssl_channel_credentials(
        root_certificates=tls.ca.read_bytes(),
        private_key=tls.key.read_bytes(),
        certificate_chain=tls.cert.read_bytes(),
    )
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))  # type: ignore[arg-type]
    return grpc.secure_channel(cfg.coordinator, creds, options=options)


class FleetClient:
    """Typed calls to the coordinator with identity metadata and retries."""

    def __init__(
        self, cfg: AgentConfig, stop: threading.Event, channel: Optional[grpc.Channel] = None
    ) -> None:
        self.cfg = cfg
        self.stop = stop
        self.channel = channel or make_channel(cfg)
        self.stub = pb_grpc.FleetStub(self.channel)
        self.metadata = (("greenfed-device-id", cfg.device_id),)
        self.backoff = Backoff(cfg.backoff_initial_s, cfg.backoff_max_s)
        self.chunk_bytes = 1024 * 1024
        self.poll_interval_s = 10.0
        # Bytes of the last upload handed to gRPC (over all its attempts), and whether the
        # last attempt's stream ran to its end: a refused late upload still measured the link.
        self.streamed_bytes = 0
        self.stream_ended = False

    def close(self) -> None:
        self.channel.close()

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopped("stop requested")

    def retrying(self, what: str, fn: Callable[[], T]) -> T:
        """Call ``fn`` until it succeeds or is refused; transient errors back off."""
        announced = False
        while True:
            if self.stop.is_set():
                raise Stopped("stop requested")
            try:
                out = fn()
                if announced:
                    log.info("%s: coordinator reachable again", what)
                self.backoff.reset()
                return out
            except grpc.RpcError as e:
                code = e.code()  # type: ignore[attr-defined]
                if code not in RETRYABLE:
                    raise Refused(code, e.details() or "") from e  # type: ignore[attr-defined]
                delay = self.backoff.next_delay()
                if not announced:
                    log.warning("%s: %s (%s); retrying with backoff", what, code.name, e.details())  # type: ignore[attr-defined]
                    announced = True
                self._sleep(delay)

    # ---------------------------------------------------------------- calls
    def register(self, req: pb.RegisterRequest) -> pb.RegisterReply:
        reply = self.retrying(
            "register",
            lambda: self.stub.Register(req, metadata=self.metadata, timeout=self.cfg.rpc_timeout_s),
        )
        self.chunk_bytes = int(reply.chunk_bytes) or self.chunk_bytes
        self.poll_interval_s = float(reply.poll_interval_s) or self.poll_interval_s
        return reply

    def wait_assignment(self, last_round: int) -> pb.Assignment:
        return self.retrying(
            "wait for assignment",
            lambda: self.stub.WaitAssignment(
                pb.WaitRequest(last_round=last_round),
                metadata=self.metadata,
                timeout=self.poll_interval_s + self.cfg.rpc_timeout_s,
            ),
        )

    def report(self, report: pb.RoundReport) -> pb.ReportReply:
        return self.retrying(
            "report",
            lambda: self.stub.ReportRound(
                report, metadata=self.metadata, timeout=self.cfg.rpc_timeout_s
            ),
        )

    def download(self, round_no: int, expected_sha256: str) -> bytes:
        """The round's global model frame, resuming after transient errors, sha256-checked."""
        buf = bytearray()

        def attempt() -> None:
            for chunk in self.stub.DownloadModel(
                pb.DownloadRequest(round=round_no, offset=len(buf)),
                metadata=self.metadata,
                timeout=self.cfg.rpc_timeout_s * 4,
            ):
                if chunk.total_bytes > self.cfg.max_model_bytes:
                    raise AgentError(
                        f"global model of {chunk.total_bytes} B exceeds max_model_bytes"
                    )
                if chunk.offset != len(buf):
                    raise AgentError(f"download out of order at byte {chunk.offset}")
                buf.extend(chunk.data)

        self.retrying("download", attempt)
        digest = hashlib.sha256(buf).hexdigest()
        if digest != expected_sha256:
            raise AgentError(
                f"downloaded model sha256 {digest[:16]}… does not match the assignment's "
                f"{expected_sha256[:16]}…"
            )
        return bytes(buf)

    def upload(
        self, manifest: pb.UploadManifest, frame: bytes, bucket: Optional[TokenBucket]
    ) -> pb.UploadReply:
        """Stream ``frame``; after a transient failure ask how much arrived and resume."""
        offset = 0
        first = True
        self.streamed_bytes = 0
        while True:
            if self.stop.is_set():
                raise Stopped("stop requested")
            if not first:
                status = self.retrying(
                    "upload status",
                    lambda: self.stub.UploadStatus(
                        pb.UploadStatusRequest(round=manifest.round, sha256=manifest.sha256),
                        metadata=self.metadata,
                        timeout=self.cfg.rpc_timeout_s,
                    ),
                )
                if status.complete:
                    return pb.UploadReply(
                        round=manifest.round, accepted=True, received_bytes=manifest.total_bytes
                    )
                offset = int(status.received_bytes)
                log.info(
                    "resuming upload of round %d at byte %d of %d",
                    manifest.round,
                    offset,
                    len(frame),
                )
            first = False
            m = pb.UploadManifest()
            m.CopyFrom(manifest)
            m.offset = offset
            try:
                return self.stub.UploadUpdate(
                    self._messages(m, frame, offset, bucket),
                    metadata=self.metadata,
                    timeout=self.cfg.rpc_timeout_s + len(frame) / 1e4,
                )
            except grpc.RpcError as e:
                code = e.code()  # type: ignore[attr-defined]
                details = e.details() or ""  # type: ignore[attr-defined]
                resumable = code in RETRYABLE or (
                    code == grpc.StatusCode.FAILED_PRECONDITION and "resume" in details
                )
                if not resumable:
                    raise Refused(code, details) from e
                log.warning("upload interrupted (%s: %s)", code.name, details)
                self._sleep(self.backoff.next_delay())

    def _messages(
        self, manifest: pb.UploadManifest, frame: bytes, offset: int, bucket: Optional[TokenBucket]
    ) -> Iterator[pb.UploadMessage]:
        self.stream_ended = False
        yield pb.UploadMessage(manifest=manifest)
        pieces = (
            frame[i : i + self.chunk_bytes] for i in range(offset, len(frame), self.chunk_bytes)
        )
        # On an emulated link, bytes trickle out in small paced pieces, as on a slow radio.
        for part in shaped(pieces, bucket):
            if self.stop.is_set():
                return
            yield pb.UploadMessage(chunk=pb.UploadChunk(data=part))
            self.streamed_bytes += len(part)
        self.stream_ended = True
