"""The compute clock: the frequency the energy model's f is, and DVFS on it, restored safely.

Two backends share this interface: :class:`~edge_agent.sensing.cpufreq.CpuFreq` (the CPU
clusters, when the agent trains on the CPU) and :class:`~edge_agent.sensing.devfreq.GpuFreq`
(the Jetson GPU's devfreq node, when it trains on CUDA). Whichever trains is the one the
agent registers, is assigned, applies and reports: the allocator's f is "the compute clock
this device reported", never assumed to be a CPU's.

DVFS clamps a backend's limits (root) and this base class keeps them safe: the original
limits are saved once, written back by :meth:`ComputeClock.restore`, at interpreter exit
(atexit) and on SIGTERM (a handler that restores, then chains to the previous handler).
A board is never left clamped by a clean exit or a SIGTERM; SIGKILL cannot be caught. The
handler runs on the main thread between two bytecodes, possibly inside :meth:`apply` on that
same thread: it then never waits for the lock that ``apply`` holds (that would deadlock until
systemd's kill, leaving the clock clamped); it marks the signal pending, ``apply`` finishes
its writes, restores, and the signal is handled as it would have been.
"""

from __future__ import annotations

import abc
import atexit
import logging
import os
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Iterator, List, Optional, Protocol, Sequence

from .errors import SensingError
from .sysfs import write_text

log = logging.getLogger(__name__)


@dataclass
class DvfsResult:
    """Outcome of :meth:`ComputeClock.apply`: ``applied`` or the ``reason`` why not."""

    applied: bool
    reason: str = ""
    requested_hz: Optional[float] = None
    freq_hz: Optional[float] = None

    def __str__(self) -> str:
        if self.applied:
            return f"dvfs: clamped to {self.freq_hz / 1e6:.0f} MHz" if self.freq_hz else "dvfs: ok"
        return f"dvfs: unavailable ({self.reason})"


class ClockReading(Protocol):
    """What every backend's ``read()`` returns: ``freq_hz`` (None: unknown) and how it was
    known (``source``: "sysfs", "psutil", "gpu-devfreq" or "none")."""

    freq_hz: Optional[float]
    source: str


def next_step(steps: Sequence[int], want: float, lo: int, hi: int) -> int:
    """The next available step ≥ ``want`` (the top step when above all); without steps,
    ``want`` clamped to [lo, hi]. Units are the caller's (kHz for cpufreq, Hz for devfreq)."""
    if steps:
        above = [s for s in steps if s >= want - 0.5]
        return above[0] if above else steps[-1]
    return int(min(max(want, lo), hi))


def write_limits(min_file: Path, max_file: Path, new_min: int, new_max: int, cur_max: int) -> None:
    """Write a min/max pair in an order the kernel accepts: raising the maximum goes first,
    lowering it goes last, so min ≤ max holds after every single write."""
    if new_max >= cur_max:
        write_text(max_file, str(new_max))
        write_text(min_file, str(new_min))
    else:
        write_text(min_file, str(new_min))
        write_text(max_file, str(new_max))


class ComputeClock(abc.ABC):
    """A clock the agent can read and clamp; subclasses say how (units Hz in the API).

    A subclass implements the reading side (``read``, ``steps_hz``, ``min_hz``, ``max_hz``,
    ``dvfs_status``) and two writes, both called with the lock held: ``_clamp_locked`` (save
    the originals once, write the clamp, return the frequency set or None when nothing could
    be clamped) and ``_restore_locked`` (write the originals back, forget them).
    """

    #: Names the clock in probe, logs and the calibration profile's ``clock`` field.
    name = "abstract"
    #: What a successful clamp wrote, for the DVFS result's reason.
    clamp_note = "clamped"
    #: Why a clamp wrote nothing (``_clamp_locked`` returned None).
    nothing_note = "nothing left to clamp"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock_owner: Optional[int] = None  # thread id holding _lock (signal safety)
        self._pending_signal: Optional[int] = None
        self._prev_handler: Any = None
        self._guarded = False

    # -- the backend's side ----------------------------------------------------------
    @abc.abstractmethod
    def read(self) -> ClockReading:
        """The clock now."""

    @property
    @abc.abstractmethod
    def steps_hz(self) -> List[float]:
        """Available steps, ascending; one value where no steps are known."""

    @property
    @abc.abstractmethod
    def min_hz(self) -> Optional[float]:
        """Lowest settable frequency (None: unknown)."""

    @property
    @abc.abstractmethod
    def max_hz(self) -> Optional[float]:
        """Highest settable frequency (None: unknown)."""

    @abc.abstractmethod
    def dvfs_status(self) -> DvfsResult:
        """Can :meth:`apply` work here? (``applied`` means "possible"; nothing is written.)"""

    @abc.abstractmethod
    def _clamp_locked(self, freq_hz: float) -> Optional[float]:
        """Write the clamp for ``freq_hz``; the frequency set (Hz), or None."""

    @abc.abstractmethod
    def _restore_locked(self) -> None:
        """Write back every saved limit and forget it (errors logged, never raised)."""

    @property
    @abc.abstractmethod
    def clamped(self) -> bool:
        """True while limits are saved (a clamp is in force)."""

    # -- DVFS ------------------------------------------------------------------------
    def apply(self, freq_hz: float) -> DvfsResult:
        """Clamp to the next available step ≥ ``freq_hz``; the originals are saved once."""
        status = self.dvfs_status()
        if not status.applied:
            return DvfsResult(False, status.reason, requested_hz=freq_hz)
        applied: Optional[float] = None
        failed = ""
        self._install_guards()  # before the first write: a SIGTERM from here on restores
        with self._locked():
            try:
                applied = self._clamp_locked(freq_hz)
            except SensingError as e:
                self._restore_locked()
                failed = f"write failed: {e}"
        self._deliver_pending_signal()
        if failed or applied is None:
            return DvfsResult(False, failed or self.nothing_note, requested_hz=freq_hz)
        if not self.clamped:  # a SIGTERM arrived meanwhile: its handler restored the limits
            return DvfsResult(False, "restored: SIGTERM arrived while applying", freq_hz)
        return DvfsResult(True, self.clamp_note, freq_hz, applied)

    def restore(self) -> None:
        """Write back the original limits (idempotent) and remove the SIGTERM guard."""
        with self._locked():
            self._restore_locked()
        self._remove_guards()
        self._deliver_pending_signal()  # a SIGTERM that arrived while the lock was held

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The lock, recording its owner so the SIGTERM handler can tell it may not wait."""
        with self._lock:
            self._lock_owner = threading.get_ident()
            try:
                yield
            finally:
                self._lock_owner = None

    # -- exit guards -----------------------------------------------------------------
    def _install_guards(self) -> None:
        if self._guarded:
            return
        atexit.register(self._atexit)
        self._guarded = True
        try:
            self._prev_handler = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread: atexit still restores on a clean exit
            log.warning("DVFS applied off the main thread: no SIGTERM restore guard")
            self._prev_handler = None

    def _remove_guards(self) -> None:
        if not self._guarded:
            return
        atexit.unregister(self._atexit)
        self._guarded = False
        try:
            if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
                signal.signal(
                    signal.SIGTERM,
                    self._prev_handler if self._prev_handler is not None else signal.SIG_DFL,
                )
        except ValueError:
            pass

    def _atexit(self) -> None:
        with self._locked():
            self._restore_locked()
        self._deliver_pending_signal()

    def _on_sigterm(self, signum: int, frame: Optional[FrameType]) -> None:
        if self._lock_owner == threading.get_ident():
            # Interrupted inside apply()/restore() on this thread: waiting for the lock would
            # deadlock. apply() restores and re-delivers the signal once its writes are done.
            self._pending_signal = signum
            return
        self._restore_and_chain(signum, frame)

    def _deliver_pending_signal(self) -> None:
        signum, self._pending_signal = self._pending_signal, None
        if signum is not None:
            self._restore_and_chain(signum, None)

    def _restore_and_chain(self, signum: int, frame: Optional[FrameType]) -> None:
        prev = self._prev_handler
        self.restore()
        if callable(prev):
            prev(signum, frame)
        elif prev == signal.SIG_IGN:
            return
        else:  # SIG_DFL (or unknown): die the way SIGTERM would have killed us
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
