"""Replaying bandwidth traces: one thread applies every link's rate changes at their times.

The replayer knows nothing about tc: it calls ``apply(device_id, mbps)`` at each step's
wall-clock time (a :class:`~greenfed.linktrace.RateSchedule`) and the shaped backend turns that
into ``tc class change``. A step whose time has passed is applied at once (a late start or a
busy machine never skips the latest rate, only intermediate ones that are already stale).
A failing ``apply`` is logged and counted; replay goes on with the next step.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from greenfed.linktrace import RateSchedule

log = logging.getLogger(__name__)


class TraceReplayer:
    def __init__(
        self,
        apply: Callable[[str, float], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._apply = apply
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._steps: List[Tuple[float, int, str, float]] = []  # (time, seq, device, mbps)
        self._seq = 0
        self._thread: Optional[threading.Thread] = None
        self.applied: Dict[str, int] = {}
        self.failures = 0

    def add(self, device_id: str, schedule: RateSchedule) -> None:
        """Queue the schedule's steps after its first (the first is the link's initial rate)."""
        with self._lock:
            for t, mbps in zip(schedule.times[1:], schedule.mbps[1:]):
                self._seq += 1
                heapq.heappush(self._steps, (t, self._seq, device_id, mbps))
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="trace-replay", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def _due(self) -> Tuple[Dict[str, float], Optional[float]]:
        """The latest due rate per device, and the time of the next pending step."""
        now = self._clock()
        due: Dict[str, float] = {}
        with self._lock:
            while self._steps and self._steps[0][0] <= now:
                _, _, device, mbps = heapq.heappop(self._steps)
                due[device] = mbps
            nxt = self._steps[0][0] if self._steps else None
        return due, nxt

    def _run(self) -> None:
        while not self._stop.is_set():
            due, nxt = self._due()
            for device, mbps in due.items():
                try:
                    self._apply(device, mbps)
                    self.applied[device] = self.applied.get(device, 0) + 1
                except Exception as e:  # one bad step must not end the replay
                    self.failures += 1
                    log.warning("trace step for %s (%g Mbit/s) failed: %s", device, mbps, e)
            wait = 1.0 if nxt is None else max(0.0, nxt - self._clock())
            self._wake.wait(min(wait, 1.0))
            self._wake.clear()
