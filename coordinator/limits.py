"""Each device's fair share of the server: caps on long-lived calls and an idle watchdog.

Every long-lived call holds one of the server's ``max_workers`` threads while it runs: a long
poll (WaitAssignment, up to ``poll_interval_s``), a download or an upload stream. Each kind has
an overall cap and a per-device cap (:class:`CallLimits`), and the caps together leave a
reserve of threads that only short calls use (health checks, registrations, reports, upload
status), so no device, and no number of devices short of the fleet's size, can make the
server unanswerable. Over a cap a call is refused at once (RESOURCE_EXHAUSTED: agents back off
and retry), never queued.

Streams must also move: :class:`StreamWatchdog` cancels a stream that makes no real progress
for ``stream_idle_s`` (an upload chunk that carries bytes, a download chunk the client has
taken); empty chunks and keep-alives do not count.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional

import grpc

from coordinator.errors import TooManyStreams

log = logging.getLogger(__name__)

# A device uses one long poll at a time; a poll it abandoned (a dropped connection) is noticed
# within a second, so one per device is enough.
POLLS_PER_DEVICE = 1
# An agent uses one stream of each kind; two let a resume overlap the stream it replaces while
# the server notices that the old one died.
STREAMS_PER_DEVICE = 2


@dataclass(frozen=True)
class CallLimits:
    """Concurrent calls allowed per kind (overall and per device) for a thread pool."""

    polls: int
    downloads: int
    uploads: int
    reserve: int  # threads left to short calls and health checks whatever the others do
    polls_per_device: int = POLLS_PER_DEVICE
    streams_per_device: int = STREAMS_PER_DEVICE

    @classmethod
    def for_workers(cls, max_workers: int) -> CallLimits:
        """Uploads and downloads a quarter of the threads each, a reserve of 4 to 8 (short calls
        are short), long polls the rest: 2 x devices + 16 threads poll for every device."""
        streams = max(2, max_workers // 4)
        reserve = max(4, min(8, max_workers // 16))
        polls = max(1, max_workers - 2 * streams - reserve)
        return cls(polls=polls, downloads=streams, uploads=streams, reserve=reserve)


class StreamSlots:
    """Caps on concurrent calls of one kind, overall and per device.

    Over either cap a call is refused at once with :class:`TooManyStreams`
    (RESOURCE_EXHAUSTED): agents back off and retry.
    """

    def __init__(self, what: str, total: int, per_device: int) -> None:
        self.what = what
        self.total = max(1, total)
        self.per_device = max(1, per_device)
        self._open: Dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, device_id: str) -> Callable[[], None]:
        """Take a slot for ``device_id``; returns the function that gives it back."""
        with self._lock:
            mine = self._open.get(device_id, 0)
            if mine >= self.per_device:
                raise TooManyStreams(
                    f"device {device_id} already has {mine} {self.what} open (limit "
                    f"{self.per_device} per device); finish or cancel one first",
                    per_device=True,
                )
            if sum(self._open.values()) >= self.total:
                raise TooManyStreams(
                    f"the coordinator has {self.total} {self.what} open, its limit; "
                    "retry with backoff"
                )
            self._open[device_id] = mine + 1
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._lock:
                left = self._open.get(device_id, 1) - 1
                if left > 0:
                    self._open[device_id] = left
                else:
                    self._open.pop(device_id, None)

        return release

    @contextmanager
    def hold(self, device_id: str) -> Iterator[None]:
        release = self.take(device_id)
        try:
            yield
        finally:
            release()

    def open_count(self) -> int:
        with self._lock:
            return sum(self._open.values())


class _Watched:
    def __init__(self, context: grpc.ServicerContext, what: str, device: str) -> None:
        self.context = context
        self.what = what
        self.device = device
        self.last = time.monotonic()
        self.cut = False

    def progress(self) -> None:
        self.last = time.monotonic()


class StreamWatchdog:
    """Cancels streams without progress for ``idle_s``; runs ``on_tick`` about every second."""

    def __init__(self, idle_s: float, on_tick: Optional[Callable[[], None]] = None) -> None:
        self.idle_s = idle_s
        self.on_tick = on_tick
        self._active: Dict[int, _Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stream-watchdog", daemon=True)
        self._thread.start()

    @contextmanager
    def watch(self, context: grpc.ServicerContext, what: str, device: str) -> Iterator[_Watched]:
        """Watch one stream; call ``.progress()`` on the yielded handle at each real step."""
        entry = _Watched(context, what, device)
        with self._lock:
            self._active[id(entry)] = entry
        try:
            yield entry
        finally:
            with self._lock:
                self._active.pop(id(entry), None)

    def _loop(self) -> None:
        while not self._stop.wait(min(1.0, self.idle_s / 4)):
            now = time.monotonic()
            with self._lock:
                stale: List[_Watched] = [
                    e for e in self._active.values() if not e.cut and now - e.last > self.idle_s
                ]
            for e in stale:
                e.cut = True
                log.warning(
                    "cut the %s stream of %s: no progress for %.0f s (stream_idle_s = %g)",
                    e.what,
                    e.device,
                    now - e.last,
                    self.idle_s,
                )
                e.context.cancel()
            if self.on_tick is not None:
                try:
                    self.on_tick()
                except Exception:
                    log.warning("watchdog tick failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self.on_tick is not None:
            self.on_tick()
