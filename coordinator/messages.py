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
    train_device: str = ""  # where it trains: "cpu" or "cuda" ("" from older agents: cpu)
    device_name: str = ""  # e.g. "cuda:0 Orin"


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
    """One measurement window of a round (energies J, powers W, durations s, frequency Hz).

    ``mean_freq_hz`` is the compute clock's (the GPU's when the device trains on CUDA);
    ``gpu_energy_j`` is the GPU rail's part of ``energy_j`` (0 with ``gpu_rail`` "": none)."""

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
    gpu_energy_j: float = 0.0
    gpu_rail: str = ""


@dataclass(frozen=True)
class PoolMember:
    """One member of a pool in a round, as its leader reported it (its own windows)."""

    member_id: str
    rank: int
    windows: Tuple[Window, ...]
    bytes_sent: int
    bytes_received: int
    freq_hz: float
    dvfs_applied: bool
    stage_start: int
    stage_stop: int
    compute_s: float
    exchange_s: float
    predicted_energy_j: float

    def window(self, name: str) -> Optional[Window]:
        return next((w for w in self.windows if w.name == name), None)


@dataclass(frozen=True)
class PoolRound:
    """How a pool trained the round (docs/pools.md): its structure, plan and members."""

    parallelism: str
    plan: str
    engine: str
    micro_batches: int
    members: Tuple[PoolMember, ...]
    energy_j: float
    dynamic_energy_j: float
    predicted_energy_j: float
    predicted_step_s: float
    measured_step_s: float


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
    train_device: str = ""  # where this round trained: "cpu" or "cuda" ("": an older agent)
    link_kind: str = ""  # "shaped" (netns/tc) or "emulated" (in-process); "" from older agents
    link_profile: str = ""  # the link the device had, as configured (rate, RTT, loss, trace)

    @property
    def goodput_mbps(self) -> Optional[float]:
        """Measured upload goodput (Mbit/s): bytes sent over the upload's duration."""
        if self.bytes_up <= 0 or self.upload_time_s <= 0:
            return None
        return self.bytes_up * 8.0 / self.upload_time_s / 1e6

    pool: Optional[PoolRound] = None  # set when the participant is a pool of boards

    def window(self, name: str) -> Optional[Window]:
        return next((w for w in self.windows if w.name == name), None)
