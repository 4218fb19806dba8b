"""The thin gRPC layer: resolve identity, call a handler, map domain errors to status codes.

Identity: under mutual TLS the device id is the client certificate's common name; on an
insecure (loopback) server it is the ``greenfed-device-id`` metadata value. Request fields
never carry identity, so a device cannot speak for another.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Callable, Dict, Iterator, Optional, TypeVar

import grpc

from coordinator import handlers
from coordinator.engine import Engine
from coordinator.errors import CoordinatorError, UnknownDevice
from coordinator.uploads import StreamSlots
from greenfed.v1 import fleet_pb2 as pb
from greenfed.v1 import fleet_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

DEVICE_ID_KEY = "greenfed-device-id"
# Streams one device may hold open at once: an agent uses one; two let a resume overlap the
# stream it replaces while the server notices the old one died.
STREAMS_PER_DEVICE = 2
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
R = TypeVar("R")


def device_identity(context: grpc.ServicerContext, tls: bool) -> str:
    """The caller's device id, from its certificate (TLS) or metadata (loopback)."""
    if tls:
        names = context.auth_context().get("x509_common_name") or []
        if not names:
            raise UnknownDevice("no client certificate: enrol this device to get one")
        device_id = names[0].decode("utf-8", "replace")
    else:
        values = [v for k, v in context.invocation_metadata() if k == DEVICE_ID_KEY]
        if not values:
            raise UnknownDevice(f"missing {DEVICE_ID_KEY} metadata: who is calling?")
        device_id = str(values[0])
    if not _ID_RE.match(device_id):
        raise UnknownDevice(
            "device id must be 1-64 characters of letters, digits, '_', '.', ':' or '-'"
        )
    return device_id


class StreamWatchdog:
    """Cancels client streams that send nothing for ``idle_s`` (slow-loris protection)."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self._active: Dict[int, list] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stream-watchdog", daemon=True)
        self._thread.start()

    def watch(self, context: grpc.ServicerContext, it: Iterator[Any]) -> Iterator[Any]:
        key = id(context)
        entry = [time.monotonic(), context]
        with self._lock:
            self._active[key] = entry
        try:
            for item in it:
                entry[0] = time.monotonic()
                yield item
        finally:
            with self._lock:
                self._active.pop(key, None)

    def _loop(self) -> None:
        while not self._stop.wait(min(1.0, self.idle_s / 4)):
            now = time.monotonic()
            with self._lock:
                stale = [e for e in self._active.values() if now - e[0] > self.idle_s]
            for e in stale:
                log.warning("cancelling an upload stream idle for %.0f s", now - e[0])
                e[1].cancel()

    def stop(self) -> None:
        self._stop.set()


class FleetServicer(pb_grpc.FleetServicer):
    def __init__(self, engine: Engine, tls: bool) -> None:
        self.engine = engine
        self.tls = tls
        self.watchdog = StreamWatchdog(engine.cfg.stream_idle_s)
        # Uploads and downloads each may take at most a quarter of the worker threads, so
        # half the pool always serves unary calls (long polls, reports, health checks).
        share = max(2, engine.cfg.max_workers // 4)
        self.upload_slots = StreamSlots("upload", share, STREAMS_PER_DEVICE)
        self.download_slots = StreamSlots("download", share, STREAMS_PER_DEVICE)

    def _call(self, context: grpc.ServicerContext, fn: Callable[[str], R]) -> R:
        device: Optional[str] = None
        try:
            device = device_identity(context, self.tls)
            return fn(device)
        except CoordinatorError as e:
            self._refuse(context, e, device)
            raise AssertionError("unreachable") from e  # context.abort raises
        except Exception as e:
            log.exception("internal error")
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(e).__name__}: {e}")
            raise

    def _refuse(
        self, context: grpc.ServicerContext, e: CoordinatorError, device: Optional[str] = None
    ) -> None:
        code = getattr(grpc.StatusCode, e.code_name)
        try:
            self.engine.store.event("refused", f"{type(e).__name__}: {e}", device_id=device)
        except Exception:
            log.exception("could not record a refusal")
        context.abort(code, str(e))

    def Register(self, request: pb.RegisterRequest, context: grpc.ServicerContext) -> Any:
        return self._call(context, lambda dev: handlers.register(request, dev, self.engine))

    def WaitAssignment(self, request: pb.WaitRequest, context: grpc.ServicerContext) -> Any:
        return self._call(context, lambda dev: handlers.wait_assignment(request, dev, self.engine))

    def DownloadModel(self, request: pb.DownloadRequest, context: grpc.ServicerContext) -> Any:
        release = self._call(context, self.download_slots.take)
        try:
            # Materialise the chunks inside _call so refusals become status codes.
            chunks = self._call(
                context, lambda dev: list(handlers.download_model(request, dev, self.engine))
            )
            yield from chunks
        finally:
            release()

    def UploadUpdate(
        self, request_iterator: Iterator[pb.UploadMessage], context: grpc.ServicerContext
    ) -> Any:
        watched = self.watchdog.watch(context, request_iterator)

        def upload(dev: str) -> pb.UploadReply:
            self.engine.check_device(dev)  # unknown or revoked: refused before any read
            with self.upload_slots.hold(dev):
                return handlers.upload_update(watched, dev, self.engine)

        return self._call(context, upload)

    def UploadStatus(self, request: pb.UploadStatusRequest, context: grpc.ServicerContext) -> Any:
        return self._call(context, lambda dev: handlers.upload_status(request, dev, self.engine))

    def ReportRound(self, request: pb.RoundReport, context: grpc.ServicerContext) -> Any:
        return self._call(context, lambda dev: handlers.report_round(request, dev, self.engine))
