"""Errors raised by :mod:`edge_agent.sensing`.

OS, subprocess and vendor errors are translated at the boundary where they happen
(``raise ... from e``), so callers only ever catch these::

    SensingError                    base: anything the sensing layer cannot do
    ├── SourceUnavailable           a power source is absent on this board (probe says why)
    │   └── SensorPermissionError   present, but this user may not read it (RAPL root-only,
    │                               group jtop, group video for vcgencmd)
    ├── SensorReadError             a present, readable sensor returned garbage or failed mid-run
    │   └── SensorBusy              the kernel answered EBUSY: the object is inactive (a cpufreq
    │                               policy whose CPUs an nvpmodel mode took offline)
    ├── CommandError                an external command (vcgencmd) failed or timed out
    ├── MonitorError                misuse of PowerMonitor (unknown window, not started)
    └── CalibrationError            calibration could not produce a profile

DVFS never raises: ``CpuFreq.apply`` returns a ``DvfsResult`` that says whether the clamp
holds and why not, since a board without DVFS is a normal board, not a failure.
"""

from __future__ import annotations


class SensingError(Exception):
    """Base class: the sensing layer could not do what was asked; the message says why."""


class SourceUnavailable(SensingError):
    """A power source is not present on this machine (no driver, no file, no service)."""


class SensorPermissionError(SourceUnavailable):
    """A power source exists but the current user may not read it."""


class SensorReadError(SensingError):
    """A sensor that should work returned an unreadable value or failed during a read."""


class SensorBusy(SensorReadError):
    """The kernel answered EBUSY: the object exists but is inactive (e.g. an offline cluster)."""


class CommandError(SensingError):
    """An external command failed, timed out, or is not installed."""


class MonitorError(SensingError):
    """PowerMonitor was used out of order (unknown window name, window already open)."""


class CalibrationError(SensingError):
    """Calibration could not complete; the profile was not written."""
