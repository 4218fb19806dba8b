"""Bandwidth traces and rate schedules: a link's rate as a step function of time.

A trace file is a small CSV of ``time_s,mbps`` rows (a header line and ``#`` comments
allowed): from ``time_s`` on, the link's rate is ``mbps`` Mbit/s, until the next row. Times
start at 0 and increase strictly; the last rate holds after the last row. Both sides use it:
the coordinator's link testbed replays a trace with ``tc`` (coordinator/links), and an agent on
an emulated link paces its token bucket by it (edge_agent/link.py), so one parser serves both.

A :class:`RateSchedule` is the same step function on the wall clock (UNIX seconds): a trace
placed at a start time, or the log of the rates a testbed actually applied. Its
:meth:`~RateSchedule.mean_mbps` gives the configured rate a device had over an upload.

Errors: :class:`TraceError` (a ValueError) names the file and line of a malformed trace.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple, Union

MAX_ROWS = 100_000
MAX_MBPS = 100_000.0


class TraceError(ValueError):
    """A trace or rate log is malformed; the message names the source and the line."""


@dataclass(frozen=True)
class RateSchedule:
    """Rates (Mbit/s) that hold from each time in ``times`` (ascending) until the next."""

    times: Tuple[float, ...]
    mbps: Tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.times or len(self.times) != len(self.mbps):
            raise TraceError("a rate schedule needs one rate per time, at least one")

    def rate_at(self, t: float) -> float:
        """The rate in force at time ``t`` (the first rate before the first time)."""
        i = bisect.bisect_right(self.times, t) - 1
        return self.mbps[max(i, 0)]

    def mean_mbps(self, start: float, end: float) -> float:
        """Time-weighted mean rate over [start, end]; the rate at ``start`` if end <= start."""
        if end <= start:
            return self.rate_at(start)
        total = 0.0
        t = start
        i = max(bisect.bisect_right(self.times, start) - 1, 0)
        while t < end:
            nxt = self.times[i + 1] if i + 1 < len(self.times) else end
            stop = min(nxt, end)
            total += self.mbps[i] * (stop - t)
            t = stop
            i += 1
        return total / (end - start)

    def shifted(self, offset: float) -> RateSchedule:
        """The same steps ``offset`` seconds later (a trace placed on the wall clock)."""
        return RateSchedule(tuple(t + offset for t in self.times), self.mbps)


@dataclass(frozen=True)
class Trace:
    """A bandwidth trace: ``mbps[i]`` holds from ``times_s[i]`` (seconds from the start)."""

    name: str
    times_s: Tuple[float, ...]
    mbps: Tuple[float, ...]

    @property
    def duration_s(self) -> float:
        """Time of the last step (the last rate holds after it)."""
        return self.times_s[-1]

    def schedule(self, t0: float = 0.0, offset_s: float = 0.0) -> RateSchedule:
        """The trace started ``offset_s`` seconds in, at wall-clock time ``t0``.

        Steps before the offset are dropped; the rate in force at the offset starts at ``t0``.
        """
        base = RateSchedule(self.times_s, self.mbps)
        times = [0.0] + [t - offset_s for t in self.times_s if t > offset_s]
        rates = [base.rate_at(offset_s)] + [
            r for t, r in zip(self.times_s, self.mbps) if t > offset_s
        ]
        return RateSchedule(tuple(t0 + t for t in times), tuple(rates))

    def mean_mbps(self) -> float:
        """Time-weighted mean over [0, duration] (the first rate for a one-row trace)."""
        return RateSchedule(self.times_s, self.mbps).mean_mbps(0.0, self.duration_s)


def _rows(text: str, source: str) -> List[Tuple[int, List[str]]]:
    out = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        out.append((lineno, [c.strip() for c in row]))
        if len(out) > MAX_ROWS:
            raise TraceError(f"{source}: more than {MAX_ROWS} rows")
    return out


def parse_steps(
    text: str, source: str, time_name: str = "time_s"
) -> Tuple[List[float], List[float]]:
    """``(times, mbps)`` from CSV text with a ``<time_name>,mbps`` header or none."""
    rows = _rows(text, source)
    if rows and rows[0][1][:2] == [time_name, "mbps"]:
        rows = rows[1:]
    times: List[float] = []
    rates: List[float] = []
    for lineno, row in rows:
        where = f"{source}:{lineno}"
        if len(row) < 2:
            raise TraceError(f"{where}: expected '{time_name},mbps', got {','.join(row)!r}")
        try:
            t, r = float(row[0]), float(row[1])
        except ValueError as e:
            raise TraceError(f"{where}: not a number ({e})") from e
        if not 0.0 < r <= MAX_MBPS:
            raise TraceError(f"{where}: rate {r!r} Mbit/s outside (0, {MAX_MBPS:g}]")
        if not math.isfinite(t):
            raise TraceError(f"{where}: time {t!r} is not finite")
        if times and not t > times[-1]:
            raise TraceError(f"{where}: time {t!r} does not increase (previous {times[-1]!r})")
        times.append(t)
        rates.append(r)
    if not times:
        raise TraceError(f"{source}: no '{time_name},mbps' rows")
    return times, rates


def parse_trace(text: str, name: str) -> Trace:
    """A :class:`Trace` from CSV text; the first time must be 0."""
    times, rates = parse_steps(text, name)
    if times[0] != 0.0:
        raise TraceError(f"{name}: the first row must be at time 0, not {times[0]!r}")
    return Trace(name, tuple(times), tuple(rates))


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise TraceError(f"cannot read {what} {path}: {e}") from e


def load_trace(path: Union[str, Path]) -> Trace:
    path = Path(path)
    return parse_trace(_read(path, "trace"), path.stem)


def read_rate_log(path: Union[str, Path]) -> RateSchedule:
    """The ``time_unix,mbps`` log a testbed writes as it applies rates (see coordinator/links)."""
    path = Path(path)
    times, rates = parse_steps(_read(path, "rate log"), str(path), time_name="time_unix")
    return RateSchedule(tuple(times), tuple(rates))


def format_steps(steps: Sequence[Tuple[float, float]], time_name: str = "time_s") -> str:
    """CSV text of ``(time, mbps)`` rows with a header (the inverse of :func:`parse_steps`)."""
    lines = [f"{time_name},mbps"] + [f"{t:.3f},{r:.4g}" for t, r in steps]
    return "\n".join(lines) + "\n"
