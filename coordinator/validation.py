"""What the coordinator accepts from a device: every plausibility check of incoming values.

One place per kind of message (:func:`check_registration`, :func:`check_manifest`,
:func:`check_report`, :func:`check_sha256`), called by the handlers before the engine sees
anything, and the checks of an upload against its frozen assignment
(:func:`check_manifest_assignment`, :func:`check_frame_assignment`), called by the engine
where the assignment is at hand. A refusal is an :class:`~coordinator.errors.InvalidRequest`
(``InvalidUpdate`` for a frame, ``UploadTooLarge`` for sizes) whose message names the field and
the accepted range.

Every number has a physical range, not only a sign: a value can be finite and positive and
still absurd (a 5e-324 B/s uplink gives an infinite round time). The ranges are wide enough
for any edge board or development machine and are stated in docs/security.md. Zero means
"not measured" where the protocol says so (profile coefficients, frequencies, link rates).
"""

from __future__ import annotations

import math
import re
from typing import Any, Mapping, Optional, Sequence, Tuple

from coordinator.errors import InvalidRequest, InvalidUpdate, UploadTooLarge
from coordinator.messages import Manifest, PoolRound, Registration, Report, Window
from greenfed import codec

MAX_TEXT = 256  # longest free-text field a device may send (board names, reasons)
# Plausibility limits for reported figures: anything outside is a broken or hostile report.
MAX_POWER_W = 2e3  # more than any board, laptop or workstation draws at the wall
MAX_ENERGY_J = 1e7  # ~2.8 kWh for one window of one board
MAX_DURATION_S = 7 * 24 * 3600.0
MAX_SAMPLES = 10**9
MAX_STEPS = 10**9
MAX_WINDOWS = 16
MAX_FREQ_STEPS = 256
MAX_POOL_MEMBERS = 64
MAX_BYTES = 1e15  # bytes a pool member may say it moved in one round
MAX_LINK_MBPS = 1e5  # 100 Gbit/s
MAX_UPDATE_STAT = 1e30  # norms, ranges and squared errors of an update: finite, >= 0, below this
MAX_LOSS = 1e30
MAX_FD = 1e6  # a Fréchet distance of z-scored features; noise images score tens
# Calibration profile: field -> (lowest, highest) plausible value; 0 always means "unknown".
PROFILE_RANGES: Mapping[str, Tuple[float, float]] = {
    "idle_power_w": (1e-3, MAX_POWER_W),  # W
    "kappa": (1e-40, 1e-18),  # W/Hz^3: 1e-27 gives ~1 W at 1 GHz
    "cycles_per_sample": (1.0, 1e13),  # cycles per training sample
    "uplink_bytes_per_s": (1e2, 1.25e10),  # 100 B/s .. 100 Gbit/s
    "energy_per_byte_j": (1e-15, 1e-3),  # J/B
    "f_min_hz": (1e6, 1e11),  # 1 MHz .. 100 GHz
    "f_max_hz": (1e6, 1e11),
}
FREQ_RANGE_HZ = PROFILE_RANGES["f_max_hz"]
PROFILE_TEXTS = ("source", "scope", "created_at", "workload", "clock")
_SHA_RE = re.compile(r"[0-9a-f]{64}")


def text(value: str, limit: int, name: str) -> str:
    if len(value) > limit:
        raise InvalidRequest(f"{name} is {len(value)} characters long; the limit is {limit}")
    return value


def finite(value: float, name: str, lo: float, hi: float) -> float:
    if not math.isfinite(value) or value < lo or value > hi:
        raise InvalidRequest(f"{name} = {value!r} is outside the plausible range [{lo}, {hi}]")
    return float(value)


def zero_or(value: float, name: str, lo: float, hi: float) -> float:
    """0 (not measured) or a finite value in [lo, hi]."""
    if value == 0:
        return 0.0
    if not math.isfinite(value) or value < lo or value > hi:
        raise InvalidRequest(
            f"{name} = {value!r} is outside the plausible range [{lo:g}, {hi:g}] (0: unknown)"
        )
    return float(value)


def whole(value: int, name: str, lo: int, hi: int) -> int:
    if value < lo or value > hi:
        raise InvalidRequest(f"{name} = {value} is outside the plausible range [{lo}, {hi}]")
    return int(value)


def _number(value: Any, name: str) -> float:
    """A profile number as JSON gave it (protobuf writes NaN/Infinity as strings)."""
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{name} is not a number: {str(value)[:32]!r}") from None


def check_sha256(value: str, name: str = "sha256", allow_empty: bool = False) -> str:
    """Exactly 64 lowercase hex characters (the whole string: nothing cut, nothing after)."""
    if allow_empty and value == "":
        return value
    if not _SHA_RE.fullmatch(value):
        raise InvalidRequest(
            f"{name} must be exactly 64 lowercase hex characters, got {len(value)} characters"
        )
    return value


def check_registration(reg: Registration, limit: int = MAX_TEXT) -> None:
    whole(reg.samples, "samples", 1, MAX_SAMPLES)
    for name in ("bits_min", "bits_max"):
        v = getattr(reg, name)
        if v < 0 or v > 16:
            raise InvalidRequest(f"{name} must be 0 (any) or in 1..16, got {v}")
    if reg.bits_min and reg.bits_max and reg.bits_min > reg.bits_max:
        raise InvalidRequest("bits_min must be <= bits_max")
    p = reg.profile
    for name, (lo, hi) in PROFILE_RANGES.items():
        zero_or(_number(p.get(name), f"profile.{name}"), f"profile.{name}", lo, hi)
    f_min = _number(p.get("f_min_hz"), "profile.f_min_hz")
    f_max = _number(p.get("f_max_hz"), "profile.f_max_hz")
    if f_max and f_min > f_max:
        raise InvalidRequest("profile.f_min_hz must be <= profile.f_max_hz")
    steps = p.get("f_steps_hz") or ()
    if len(steps) > MAX_FREQ_STEPS:
        raise InvalidRequest(f"profile.f_steps_hz lists more than {MAX_FREQ_STEPS} steps")
    for i, s in enumerate(steps):
        finite(_number(s, f"profile.f_steps_hz[{i}]"), f"profile.f_steps_hz[{i}]", *FREQ_RANGE_HZ)
    for name in PROFILE_TEXTS:
        text(str(p.get(name) or ""), limit, f"profile.{name}")
    text(reg.board, limit, "board")
    text(reg.dvfs_reason, limit, "dvfs_reason")
    text(reg.agent_version, 64, "agent_version")
    text(reg.train_device, 16, "train_device")
    text(reg.device_name, limit, "device_name")
    zero_or(reg.link_mbps, "link_mbps", 1e-3, MAX_LINK_MBPS)


def check_manifest(m: Manifest, max_bytes: int) -> None:
    if m.total_bytes <= 0:
        raise InvalidRequest(f"manifest total_bytes must be > 0, got {m.total_bytes}")
    if m.total_bytes > max_bytes:
        raise UploadTooLarge(
            f"declared update size {m.total_bytes} B exceeds the limit of {max_bytes} B"
        )
    check_sha256(m.sha256, "manifest sha256")
    if m.offset < 0 or m.offset > m.total_bytes:
        raise InvalidRequest(f"manifest offset {m.offset} outside 0..{m.total_bytes}")
    if m.samples <= 0 or m.samples > MAX_SAMPLES:
        raise InvalidRequest(f"manifest samples must be in 1..1e9, got {m.samples}")
    if m.mode not in codec.MODES:
        shown = m.mode if len(m.mode) <= 32 else m.mode[:32] + "…"
        raise InvalidRequest(
            f"manifest mode {shown!r} ({len(m.mode)} characters) is not one of "
            f"{', '.join(codec.MODES)}"
        )


def _assigned(mode: str, bits: int) -> str:
    return f"{mode} at {bits} bits"


def check_manifest_assignment(m: Manifest, mode: str, bits: int) -> None:
    """The manifest's mode and bits are the ones the round assigned (fixed at its opening)."""
    if m.mode != mode or m.bits != bits:
        raise InvalidRequest(
            f"round {m.round} assigned {_assigned(mode, bits)}, the manifest says "
            f"{_assigned(m.mode, m.bits)}: encode with the assignment's codec parameters"
        )


def check_frame_assignment(info: codec.FrameInfo, mode: str, bits: int, round_no: int) -> None:
    """The frame itself (its header, not only the manifest) carries the assigned mode and bits."""
    if info.mode != mode or info.bits != bits:
        raise InvalidUpdate(
            f"the frame is {_assigned(info.mode, info.bits)} but round {round_no} assigned "
            f"{_assigned(mode, bits)}: refused (encode with the assignment's codec parameters)"
        )


def check_windows(windows: Sequence[Window], where: str, limit: int = MAX_TEXT) -> None:
    """Ranges of measurement windows (a report's, or a pool member's): ``where`` names them."""
    if len(windows) > MAX_WINDOWS:
        raise InvalidRequest(f"{where}: a report may hold at most {MAX_WINDOWS} windows")
    for w in windows:
        name = f"{where}[{text(w.name, 32, 'window name')}]"
        duration = finite(w.duration_s, f"{name}.duration_s", 0.0, MAX_DURATION_S)
        # Energy is power over time: bound it by the most power a machine draws over the
        # window (at least one second of it, so short windows keep some slack).
        most_j = min(MAX_ENERGY_J, MAX_POWER_W * max(duration, 1.0))
        energy = finite(w.energy_j, f"{name}.energy_j", 0.0, most_j)
        # Dynamic = energy - idle power x duration: never above the energy, and never below it
        # by more than the highest plausible idle power over the window.
        finite(w.dynamic_energy_j, f"{name}.dynamic_energy_j", energy - most_j, energy)
        finite(w.mean_power_w, f"{name}.mean_power_w", 0.0, MAX_POWER_W)
        finite(w.peak_power_w, f"{name}.peak_power_w", 0.0, MAX_POWER_W)
        zero_or(w.mean_freq_hz, f"{name}.mean_freq_hz", *FREQ_RANGE_HZ)
        whole(w.samples, f"{name}.samples", 0, MAX_SAMPLES)
        # the GPU rail is a part of the window's total, never more than it
        finite(w.gpu_energy_j, f"{name}.gpu_energy_j", 0.0, w.energy_j * (1 + 1e-6))
        text(w.gpu_rail, limit, "gpu_rail")
        text(w.source, limit, "source")
        text(w.scope, limit, "scope")


def check_pool(pool: PoolRound, limit: int = MAX_TEXT) -> None:
    """A pool's part of a report: its members' windows and figures (docs/pools.md)."""
    if not pool.members or len(pool.members) > MAX_POOL_MEMBERS:
        raise InvalidRequest(f"pool: 1..{MAX_POOL_MEMBERS} members, got {len(pool.members)}")
    for name in ("parallelism", "plan", "engine"):
        text(getattr(pool, name), limit, f"pool.{name}")
    for name in ("energy_j", "dynamic_energy_j", "predicted_energy_j"):
        finite(getattr(pool, name), f"pool.{name}", -MAX_ENERGY_J, MAX_ENERGY_J)
    for name in ("predicted_step_s", "measured_step_s"):
        finite(getattr(pool, name), f"pool.{name}", 0.0, MAX_DURATION_S)
    ids = [m.member_id for m in pool.members]
    if len(set(ids)) != len(ids):
        raise InvalidRequest("pool: member ids must be unique")
    for m in pool.members:
        where = f"pool.members[{text(m.member_id, 64, 'pool member id')}]"
        check_windows(m.windows, where, limit)
        finite(float(m.bytes_sent), f"{where}.bytes_sent", 0.0, MAX_BYTES)
        finite(float(m.bytes_received), f"{where}.bytes_received", 0.0, MAX_BYTES)
        zero_or(m.freq_hz, f"{where}.freq_hz", *FREQ_RANGE_HZ)
        finite(m.compute_s, f"{where}.compute_s", 0.0, MAX_DURATION_S)
        finite(m.exchange_s, f"{where}.exchange_s", 0.0, MAX_DURATION_S)
        finite(m.predicted_energy_j, f"{where}.predicted_energy_j", 0.0, MAX_ENERGY_J)


def check_report(rep: Report, max_bytes: Optional[int] = None, limit: int = MAX_TEXT) -> None:
    """Ranges of every figure of a round report (``max_bytes``: the largest accepted frame)."""
    check_windows(rep.windows, "windows", limit)
    if rep.pool is not None:
        check_pool(rep.pool, limit)
    for name in ("train_time_s", "upload_time_s", "download_time_s"):
        finite(getattr(rep, name), name, 0.0, MAX_DURATION_S)
    for name in ("loss_first", "loss_last"):
        finite(getattr(rep, name), name, -MAX_LOSS, MAX_LOSS)
    for name in ("update_sq_error", "update_error_bound", "update_range", "update_norm"):
        finite(getattr(rep, name), name, 0.0, MAX_UPDATE_STAT)
    whole(rep.bytes_up, "bytes_up", 0, max_bytes if max_bytes is not None else 1 << 40)
    whole(rep.samples, "samples", 0, MAX_SAMPLES)
    whole(rep.steps, "steps", 0, MAX_STEPS)
    if rep.bits not in (0, 32) and not 1 <= rep.bits <= 16:
        raise InvalidRequest(f"bits = {rep.bits}: must be 0 (none), 1..16 or 32")
    zero_or(rep.applied_freq_hz, "applied_freq_hz", *FREQ_RANGE_HZ)
    zero_or(rep.link_mbps, "link_mbps", 1e-3, MAX_LINK_MBPS)
    for name in ("personal_fd", "global_fd_own"):
        value = getattr(rep, name)
        if value is not None:
            finite(value, name, 0.0, MAX_FD)
    if rep.own_eval_images is not None and not 2 <= rep.own_eval_images <= MAX_SAMPLES:
        raise InvalidRequest(f"own_eval_images must be in 2..1e9, got {rep.own_eval_images}")
    text(rep.error, 4 * limit, "error")
    text(rep.dvfs_reason, limit, "dvfs_reason")
    text(rep.train_device, 16, "train_device")
    text(rep.link_kind, 16, "link_kind")
    text(rep.link_profile, limit, "link_profile")
