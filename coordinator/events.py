"""Events that repeat (refusals, re-registrations), kept as one counted row per window.

A device that is refused a thousand times a second must not write a thousand rows a second:
the first event of a ``(kind, device, key)`` in a window of ``window_s`` inserts a row, the
repeats only raise its ``count`` (and ``last_at``, and the latest message), written to the
store at most every ``flush_s`` and by :meth:`EventLog.flush` (the servicer calls it every
second and at shutdown). The table therefore grows by at most one row per window for each
kind of event of each device, whatever the rate of calls; a refusal of a call that named no
enrolled device is counted under no device (its claimed id, chosen by the caller, would let
it mint rows).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from coordinator.store import Store

log = logging.getLogger(__name__)

Key = Tuple[str, Optional[str], str]


@dataclass
class _Open:
    row_id: int
    started: float  # monotonic
    count: int
    written: int
    last_write: float  # monotonic
    last_at: float  # wall clock of the latest repeat
    message: str


class EventLog:
    """Counted events over a :class:`~coordinator.store.Store` (thread-safe)."""

    def __init__(
        self,
        store: Store,
        window_s: float = 60.0,
        flush_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.window_s = window_s
        self.flush_s = flush_s
        self.clock = clock
        self._open: Dict[Key, _Open] = {}
        self._lock = threading.Lock()

    def record(
        self, kind: str, message: str, device_id: Optional[str] = None, key: str = ""
    ) -> None:
        """One occurrence of ``kind`` for ``device_id`` (``key`` splits a kind, e.g. by error)."""
        now = self.clock()
        k: Key = (kind, device_id, key)
        with self._lock:
            e = self._open.get(k)
            if e is not None and now - e.started < self.window_s:
                e.count += 1
                e.last_at = time.time()
                e.message = message
                if now - e.last_write >= self.flush_s:
                    self._write(e, now)
                return
            if e is not None:
                self._write(e, now)
            self._sweep(now)
            row = self.store.event(kind, message, device_id=device_id)
            self._open[k] = _Open(row, now, 1, 1, now, time.time(), message)

    def flush(self) -> None:
        """Write every pending count (and forget windows that have ended)."""
        now = self.clock()
        with self._lock:
            for e in self._open.values():
                if e.count != e.written:
                    self._write(e, now)
            self._sweep(now)

    def _write(self, e: _Open, now: float) -> None:
        try:
            self.store.bump_event(e.row_id, e.count, e.last_at, e.message)
        except Exception:  # a closed store at shutdown: the count is lost, nothing else
            log.warning("could not update an event count", exc_info=True)
        e.written = e.count
        e.last_write = now

    def _sweep(self, now: float) -> None:
        ended = [
            k
            for k, e in self._open.items()
            if now - e.started >= self.window_s and e.count == e.written
        ]
        for k in ended:
            del self._open[k]
