"""What devices send, as the coordinator's own values (no protobuf, no SQL, no checks).

:mod:`coordinator.serde` builds these from protobuf messages, :mod:`coordinator.validation`
checks them (the one place that decides what is plausible), the engine acts on them and
:mod:`coordinator.store` turns them into rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple


@dataclass(frozen=True)
class Registration:
    """A device's RegisterRequest: its data size D_k, board, calibration profile and demands."""

    samples: int
    board: str
    profile: Dict[str, Any]  # the calibration profile, field name -> value (units in names)
    dvfs_available: bool
    dvfs_reason: str
    bits_min: int  # 0: any
    bits_max: int  # 0: any
    link_mbps: float  # the agent's emulated uplink rate, 0 when none
    agent_version: str = ""


@dataclass(frozen=True)
class Manifest:
    """The first message of an upload stream: what the device promises to send."""

    round: int
    total_bytes: int
    sha256: str
    offset: int
    samples: int
    bits: int
    mode: str


@dataclass(frozen=True)
class Window:
    """One measurement window of a round (energies J, powers W, durations s, frequency Hz)."""

    name: str
    energy_j: float
    dynamic_energy_j: float
    duration_s: float
    mean_power_w: float
    peak_power_w: float
    samples: int
    mean_freq_hz: float
    source: str
    scope: str
    estimated: bool


@dataclass(frozen=True)
class Report:
    """A device's RoundReport: windows and figures of one round (``raw_json``: the message as
    received, kept for audit)."""

    round: int
    windows: Tuple[Window, ...]
    train_time_s: float
    upload_time_s: float
    download_time_s: float
    bytes_up: int
    bits: int
    samples: int
    steps: int
    loss_first: float
    loss_last: float
    update_sq_error: float
    update_error_bound: float
    update_range: float
    update_norm: float
    applied_freq_hz: float
    dvfs_applied: bool
    dvfs_reason: str
    emulated_link: bool
    link_mbps: float
    error: str
    # Personal LoRA adapters: the device's own models on its held-out images (None: not
    # measured).
    personal_fd: Optional[float] = None
    global_fd_own: Optional[float] = None
    own_eval_images: Optional[int] = None
    raw_json: str = field(default="{}", compare=False)

    def window(self, name: str) -> Optional[Window]:
        return next((w for w in self.windows if w.name == name), None)
