"""Energy sensing for the edge agent: power sources, the compute clock + DVFS, windows.

Entry points the agent daemon calls (docs/architecture.md, docs/sensing.md)::

    cfg = SensingConfig()
    source = detect_power_source(cfg, sysfs_root=Path("/"))   # never None: estimated last
    clock = CpuFreq(Path("/"))       # or GpuFreq(Path("/")) when training on a Jetson's GPU,
                                     # EmulatedClock on an emulated board (docs/emulated.md)
    monitor = PowerMonitor(source, clock, cfg, idle_power_w=profile.idle_power_w)
    monitor.start()
    monitor.begin_window("compute"); ...; result = monitor.end_window("compute")
    monitor.stop()

Errors: see :mod:`edge_agent.sensing.errors`.
"""

from __future__ import annotations

from .base import PowerReading, PowerSource, Probe, SourceContext
from .calibrate import calibrate, calibrate_on_loopback, fit_kappa
from .clock import ComputeClock, DvfsResult
from .config import EmulatedBoardConfig, Ina2xxConfig, SensingConfig
from .cpufreq import CpuFreq, CpuFreqReading
from .devfreq import GpuFreq
from .emulated_board import EmulatedBoardSource
from .emulated_clock import BoardCgroup, EmulatedClock
from .errors import (
    CalibrationError,
    CommandError,
    MonitorError,
    SensingError,
    SensorPermissionError,
    SensorReadError,
    SourceUnavailable,
)
from .estimated import BOARD_CLASSES, EstimatedSource, detect_board_class
from .factory import BACKENDS, detect_power_source, make_context, probe_sources
from .loopback import LoopbackSink
from .monitor import PowerMonitor, Sample, WindowResult
from .profile import NOMINAL_CLOCK_HZ, CalibrationProfile, KappaPoint
from .sysfs import CommandRunner, FakeRunner

__all__ = [
    "BACKENDS",
    "BOARD_CLASSES",
    "NOMINAL_CLOCK_HZ",
    "BoardCgroup",
    "CalibrationError",
    "CalibrationProfile",
    "CommandError",
    "CommandRunner",
    "ComputeClock",
    "CpuFreq",
    "CpuFreqReading",
    "DvfsResult",
    "EmulatedBoardConfig",
    "EmulatedBoardSource",
    "EmulatedClock",
    "EstimatedSource",
    "FakeRunner",
    "GpuFreq",
    "Ina2xxConfig",
    "KappaPoint",
    "LoopbackSink",
    "MonitorError",
    "PowerMonitor",
    "PowerReading",
    "PowerSource",
    "Probe",
    "Sample",
    "SensingConfig",
    "SensingError",
    "SensorPermissionError",
    "SensorReadError",
    "SourceContext",
    "SourceUnavailable",
    "WindowResult",
    "calibrate",
    "calibrate_on_loopback",
    "detect_board_class",
    "detect_power_source",
    "fit_kappa",
    "make_context",
    "probe_sources",
]
