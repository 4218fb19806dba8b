"""A device's link profile: rate (or a bandwidth trace), round-trip time, jitter, loss.

Text form (``--link`` on the command line, ``experiment.json``)::

    rate=5,rtt=40,jitter=2,loss=1            5 Mbit/s, RTT 40 ms, jitter 2 ms, 1 % loss
    trace=lte-walk,rtt=50                    the shipped trace lte-walk (see traces/README.md)
    trace=lte-walk@120,rtt=50                the same trace started 120 s in
    trace=/path/to/my.csv                    any time_s,mbps CSV

Units: rate Mbit/s, rtt and jitter milliseconds, loss percent. The rate and the loss apply to
the uplink (device to coordinator); the round-trip time is split half each way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, Optional

from coordinator.links.errors import ProfileError
from greenfed.linktrace import Trace, TraceError, load_trace

TRACES_DIR = Path(__file__).resolve().parent / "traces"
MAX_RATE_MBPS = 10_000.0
MAX_RTT_MS = 10_000.0


def shipped_traces() -> Dict[str, Path]:
    """Names of the traces shipped with greenfed and their CSV files."""
    return {p.stem: p for p in sorted(TRACES_DIR.glob("*.csv"))}


def trace_path(name: str) -> Path:
    """A shipped trace's file, or ``name`` itself when it is an existing CSV file."""
    shipped = shipped_traces()
    if name in shipped:
        return shipped[name]
    path = Path(name).expanduser()
    if path.is_file():
        return path.resolve()
    raise ProfileError(
        f"trace {name!r}: neither a shipped trace ({', '.join(shipped)}) nor a CSV file"
    )


@dataclass(frozen=True)
class LinkProfile:
    """What a device's uplink should look like (units in the names)."""

    rate_mbps: Optional[float] = None  # fixed rate; None when a trace sets it
    rtt_ms: float = 0.0  # added round-trip time, split half each way
    jitter_ms: float = 0.0  # +- per packet on each half (needs rtt_ms)
    loss_pct: float = 0.0  # uplink packet loss, percent
    trace: Optional[str] = None  # shipped trace name or CSV path; sets the rate over time
    trace_offset_s: float = 0.0  # start the trace this far in

    def __post_init__(self) -> None:
        if self.trace is None and self.rate_mbps is None:
            raise ProfileError("a link profile needs a rate (rate=MBIT/S) or a trace (trace=NAME)")
        if self.trace is not None and self.rate_mbps is not None:
            raise ProfileError("give a rate or a trace, not both: the trace sets the rate")
        if self.rate_mbps is not None and not 0.0 < self.rate_mbps <= MAX_RATE_MBPS:
            raise ProfileError(f"rate must be in (0, {MAX_RATE_MBPS:g}] Mbit/s")
        if not 0.0 <= self.rtt_ms <= MAX_RTT_MS:
            raise ProfileError(f"rtt must be in [0, {MAX_RTT_MS:g}] ms")
        if not 0.0 <= self.jitter_ms <= self.rtt_ms / 2.0:
            raise ProfileError("jitter must be in [0, rtt/2] ms (it applies to each half)")
        if not 0.0 <= self.loss_pct < 100.0:
            raise ProfileError("loss must be in [0, 100) percent")
        if self.trace_offset_s < 0:
            raise ProfileError("a trace offset must be >= 0 s")

    @property
    def impaired(self) -> bool:
        """True when delay, jitter or loss is asked for (beyond the rate)."""
        return self.rtt_ms > 0 or self.jitter_ms > 0 or self.loss_pct > 0

    def load_trace(self) -> Optional[Trace]:
        if self.trace is None:
            return None
        try:
            return load_trace(trace_path(self.trace))
        except TraceError as e:
            raise ProfileError(str(e)) from e

    def initial_mbps(self) -> float:
        """The rate at the start (the trace's rate at its offset)."""
        trace = self.load_trace()
        if trace is None:
            assert self.rate_mbps is not None
            return self.rate_mbps
        return trace.schedule(0.0, self.trace_offset_s).mbps[0]

    def steady(self) -> LinkProfile:
        """The same link at a fixed rate: the trace's time-weighted mean (or this rate)."""
        trace = self.load_trace()
        if trace is None:
            return self
        return replace(self, rate_mbps=round(trace.mean_mbps(), 3), trace=None, trace_offset_s=0)

    def describe(self) -> str:
        """e.g. ``5 Mbit/s, RTT 40 ms, loss 1%`` or ``trace lte-walk (mean 12.0 Mbit/s)``."""
        if self.trace is not None:
            trace = self.load_trace()
            assert trace is not None
            at = f" from {self.trace_offset_s:g} s" if self.trace_offset_s else ""
            parts = [f"trace {self.trace}{at} (mean {trace.mean_mbps():.1f} Mbit/s)"]
        else:
            parts = [f"{self.rate_mbps:g} Mbit/s"]
        if self.rtt_ms:
            parts.append(f"RTT {self.rtt_ms:g} ms")
        if self.jitter_ms:
            parts.append(f"jitter {self.jitter_ms:g} ms")
        if self.loss_pct:
            parts.append(f"loss {self.loss_pct:g}%")
        return ", ".join(parts)

    def to_spec(self) -> str:
        """The text form (parse_link_spec's inverse)."""
        parts = []
        if self.trace is not None:
            at = f"@{self.trace_offset_s:g}" if self.trace_offset_s else ""
            parts.append(f"trace={self.trace}{at}")
        else:
            parts.append(f"rate={self.rate_mbps:g}")
        for key, value in (
            ("rtt", self.rtt_ms),
            ("jitter", self.jitter_ms),
            ("loss", self.loss_pct),
        ):
            if value:
                parts.append(f"{key}={value:g}")
        return ",".join(parts)

    def to_json(self) -> Dict[str, Any]:
        return {"spec": self.to_spec(), "describe": self.describe()}


_KEYS = {"rate": "rate_mbps", "rtt": "rtt_ms", "jitter": "jitter_ms", "loss": "loss_pct"}


def parse_link_spec(text: str) -> LinkProfile:
    """``rate=5,rtt=40,jitter=2,loss=1`` or ``trace=NAME[@OFFSET_S],...`` -> LinkProfile."""
    values: Dict[str, Any] = {}
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or not value.strip():
            raise ProfileError(f"link spec {text!r}: expected key=value, got {item!r}")
        if key == "trace":
            name, at, offset = value.strip().partition("@")
            values["trace"] = name
            if at:
                values["trace_offset_s"] = _number(offset, "trace offset", text)
            trace_path(name)  # fail early on an unknown trace
        elif key in _KEYS:
            values[_KEYS[key]] = _number(value, key, text)
        else:
            raise ProfileError(
                f"link spec {text!r}: unknown key {key!r} (known: rate, rtt, jitter, loss, trace)"
            )
    return LinkProfile(**values)


def _number(value: str, name: str, text: str) -> float:
    try:
        return float(value)
    except ValueError as e:
        raise ProfileError(f"link spec {text!r}: {name} {value!r} is not a number") from e
