"""The thin gRPC layer: resolve identity, hold the call limits, map domain errors to statuses.

Identity: under mutual TLS the device id is the client certificate's common name; on an
insecure (loopback) server it is the ``greenfed-device-id`` metadata value. Request fields
never carry identity, so a device cannot speak for another.

What goes back to a device: a refusal's own message (coordinator.errors: it says what was
wrong and what to do), with anything that looks like a file path replaced; an unexpected
error is INTERNAL with an incident number only: the traceback and the exception's text stay
in the coordinator's log. A call the client cancelled, or the watchdog cut, is not an error:
one line at INFO (the watchdog says WARNING when it cuts).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any, Callable, Iterator, Optional, TypeVar

import grpc

from coordinator import handlers
from coordinator.engine import Engine
from coordinator.errors import CoordinatorError, TooManyStreams, UnknownDevice
from coordinator.limits import CallLimits, StreamSlots, StreamWatchdog
from greenfed.v1 import fleet_pb2 as pb
from greenfed.v1 import fleet_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

DEVICE_ID_KEY = "greenfed-device-id"
MAX_DETAILS = 1000  # characters of a status message
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
# Two or more "/name" parts not glued to a word: an absolute or relative file path.
_PATH_RE = re.compile(r"(?<![\w.])\.{0,2}(?:/[^\s/:'\"]+){2,}/?")
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


def public_message(text: str) -> str:
    """A status message safe to send: no file paths, bounded length."""
    text = _PATH_RE.sub("<path>", text)
    return text if len(text) <= MAX_DETAILS else text[: MAX_DETAILS - 1] + "…"


def _with_progress(
    messages: Iterator[pb.UploadMessage], progress: Callable[[], None]
) -> Iterator[pb.UploadMessage]:
    """Upload messages, reporting real progress: a chunk that carries bytes (or the manifest)."""
    for msg in messages:
        if msg.WhichOneof("kind") != "chunk" or msg.chunk.data:
            progress()
        yield msg


class FleetServicer(pb_grpc.FleetServicer):
    def __init__(self, engine: Engine, tls: bool) -> None:
        self.engine = engine
        self.tls = tls
        cfg = engine.cfg
        self.limits = CallLimits.for_workers(cfg.max_workers)
        lim = self.limits
        self.poll_slots = StreamSlots("WaitAssignment long polls", lim.polls, lim.polls_per_device)
        self.download_slots = StreamSlots("download streams", lim.downloads, lim.streams_per_device)
        self.upload_slots = StreamSlots("upload streams", lim.uploads, lim.streams_per_device)
        self.watchdog = StreamWatchdog(cfg.stream_idle_s, on_tick=engine.events.flush)

    def _call(self, context: grpc.ServicerContext, what: str, fn: Callable[[str], R]) -> R:
        device: Optional[str] = None
        try:
            device = device_identity(context, self.tls)
            return fn(device)
        except CoordinatorError as e:
            self._refuse(context, e, device)
            raise AssertionError("unreachable") from e  # context.abort raises
        except grpc.RpcError as e:
            if not context.is_active():  # the client cancelled, or the watchdog cut the call
                log.info("%s of %s ended early: the call was cancelled", what, device)
                raise
            self._internal(context, what, device, e)
            raise
        except Exception as e:
            self._internal(context, what, device, e)
            raise

    def _refuse(
        self, context: grpc.ServicerContext, e: CoordinatorError, device: Optional[str]
    ) -> None:
        code = getattr(grpc.StatusCode, e.code_name)
        message = public_message(str(e))
        # A call that may not come from an enrolled device is counted under none: its claimed
        # id is the caller's choice and must not mint event rows. (Over its own call cap a
        # device holds a slot it took after the enrolment check: it is known.)
        unsure = isinstance(e, UnknownDevice) or (
            isinstance(e, TooManyStreams) and not e.per_device
        )
        known = None if unsure else device
        try:
            self.engine.events.record(
                "refused", f"{type(e).__name__}: {message}", device_id=known, key=type(e).__name__
            )
        except Exception:
            log.exception("could not record a refusal")
        context.abort(code, message)

    def _internal(
        self, context: grpc.ServicerContext, what: str, device: Optional[str], e: BaseException
    ) -> None:
        incident = uuid.uuid4().hex[:8]
        log.error(
            "internal error %s in %s of %s: %s: %s",
            incident,
            what,
            device,
            type(e).__name__,
            e,
            exc_info=e,
        )
        context.abort(
            grpc.StatusCode.INTERNAL,
            f"internal error (incident {incident}): the coordinator's log has the details; "
            "retry later",
        )

    def Register(self, request: pb.RegisterRequest, context: grpc.ServicerContext) -> Any:
        return self._call(
            context, "Register", lambda dev: handlers.register(request, dev, self.engine)
        )

    def WaitAssignment(self, request: pb.WaitRequest, context: grpc.ServicerContext) -> Any:
        def poll(dev: str) -> pb.Assignment:
            # The slot first (memory only: a flood of polls is refused without touching the
            # store), then the enrolment check (unknown or revoked: refused, slot given back).
            with self.poll_slots.hold(dev):
                self.engine.check_device(dev)
                return handlers.wait_assignment(request, dev, self.engine, context.is_active)

        return self._call(context, "WaitAssignment", poll)

    def DownloadModel(self, request: pb.DownloadRequest, context: grpc.ServicerContext) -> Any:
        def start(dev: str) -> tuple:
            release = self.download_slots.take(dev)  # then the enrolment check, as for polls
            try:
                self.engine.check_device(dev)
                # Materialised inside _call so refusals become status codes.
                return dev, release, list(handlers.download_model(request, dev, self.engine))
            except BaseException:
                release()
                raise

        dev, release, chunks = self._call(context, "DownloadModel", start)
        try:
            with self.watchdog.watch(context, "download", dev) as watched:
                for chunk in chunks:
                    yield chunk  # returns once the transport took the previous chunk
                    watched.progress()
        finally:
            release()

    def UploadUpdate(
        self, request_iterator: Iterator[pb.UploadMessage], context: grpc.ServicerContext
    ) -> Any:
        def upload(dev: str) -> pb.UploadReply:
            self.engine.check_device(dev)  # unknown or revoked: refused before any read
            slot, watch = self.upload_slots.hold(dev), self.watchdog.watch(context, "upload", dev)
            with slot, watch as watched:
                messages = _with_progress(request_iterator, watched.progress)
                return handlers.upload_update(messages, dev, self.engine)

        return self._call(context, "UploadUpdate", upload)

    def UploadStatus(self, request: pb.UploadStatusRequest, context: grpc.ServicerContext) -> Any:
        return self._call(
            context, "UploadStatus", lambda dev: handlers.upload_status(request, dev, self.engine)
        )

    def ReportRound(self, request: pb.RoundReport, context: grpc.ServicerContext) -> Any:
        return self._call(
            context, "ReportRound", lambda dev: handlers.report_round(request, dev, self.engine)
        )
