"""What the coordinator accepts from a device: every plausibility check of incoming values.

One place per kind of message (:func:`check_registration`, :func:`check_manifest`,
:func:`check_report`), called by the handlers before the engine sees anything. A refusal is
an :class:`~coordinator.errors.InvalidRequest` (or ``UploadTooLarge``) whose message names the
field and the accepted range. Checks that depend on the open round (the assignment's bits and
mode) live in the engine.
"""

from __future__ import annotations

import math
import re

from coordinator.errors import InvalidRequest, UploadTooLarge
from coordinator.messages import Manifest, Registration, Report
from greenfed import codec

MAX_TEXT = 256  # longest free-text field a device may send (board names, reasons)
# Plausibility limits for reported figures: anything outside is a broken or hostile report.
MAX_ENERGY_J = 1e7  # ~2.8 kWh for one round of one board
MAX_DURATION_S = 7 * 24 * 3600.0
MAX_POWER_W = 1e4
MAX_FREQ_HZ = 1e11
MAX_SAMPLES = 10**9
MAX_WINDOWS = 16
MAX_FD = 1e6  # a Fréchet distance of z-scored features; noise images score tens
PROFILE_NUMBERS = (
    "idle_power_w",
    "kappa",
    "cycles_per_sample",
    "uplink_bytes_per_s",
    "energy_per_byte_j",
    "f_min_hz",
    "f_max_hz",
)
PROFILE_TEXTS = ("source", "scope", "created_at", "workload", "clock")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def text(value: str, limit: int, name: str) -> str:
    if len(value) > limit:
        raise InvalidRequest(f"{name} is {len(value)} characters long; the limit is {limit}")
    return value


def finite(value: float, name: str, lo: float, hi: float) -> float:
    if not math.isfinite(value) or value < lo or value > hi:
        raise InvalidRequest(f"{name} = {value!r} is outside the plausible range [{lo}, {hi}]")
    return float(value)


def check_registration(reg: Registration, limit: int = MAX_TEXT) -> None:
    if reg.samples <= 0 or reg.samples > MAX_SAMPLES:
        raise InvalidRequest(f"samples must be in 1..1e9, got {reg.samples}")
    for name in ("bits_min", "bits_max"):
        v = getattr(reg, name)
        if v < 0 or v > 16:
            raise InvalidRequest(f"{name} must be 0 (any) or in 1..16, got {v}")
    if reg.bits_min and reg.bits_max and reg.bits_min > reg.bits_max:
        raise InvalidRequest("bits_min must be <= bits_max")
    p = reg.profile
    for name in PROFILE_NUMBERS:
        finite(float(p.get(name) or 0.0), f"profile.{name}", 0.0, 1e12)
    f_min, f_max = float(p.get("f_min_hz") or 0.0), float(p.get("f_max_hz") or 0.0)
    if f_max and f_min > f_max:
        raise InvalidRequest("profile.f_min_hz must be <= profile.f_max_hz")
    if len(p.get("f_steps_hz") or ()) > 256:
        raise InvalidRequest("profile.f_steps_hz lists more than 256 steps")
    for name in PROFILE_TEXTS:
        text(str(p.get(name) or ""), limit, f"profile.{name}")
    text(reg.board, limit, "board")
    text(reg.dvfs_reason, limit, "dvfs_reason")
    finite(reg.link_mbps, "link_mbps", 0.0, 1e6)


def check_manifest(m: Manifest, max_bytes: int) -> None:
    if m.total_bytes <= 0:
        raise InvalidRequest(f"manifest total_bytes must be > 0, got {m.total_bytes}")
    if m.total_bytes > max_bytes:
        raise UploadTooLarge(
            f"declared update size {m.total_bytes} B exceeds the limit of {max_bytes} B"
        )
    if not _SHA_RE.match(m.sha256):
        raise InvalidRequest("manifest sha256 must be 64 lowercase hex characters")
    if m.offset < 0 or m.offset > m.total_bytes:
        raise InvalidRequest(f"manifest offset {m.offset} outside 0..{m.total_bytes}")
    if m.samples <= 0 or m.samples > MAX_SAMPLES:
        raise InvalidRequest(f"manifest samples must be in 1..1e9, got {m.samples}")
    if m.mode not in codec.MODES:
        raise InvalidRequest(f"manifest mode {m.mode!r} is not one of {', '.join(codec.MODES)}")


def check_report(rep: Report, limit: int = MAX_TEXT) -> None:
    if len(rep.windows) > MAX_WINDOWS:
        raise InvalidRequest(f"a report may hold at most {MAX_WINDOWS} windows")
    for w in rep.windows:
        name = text(w.name, 32, "window name")
        finite(w.energy_j, f"windows[{name}].energy_j", 0.0, MAX_ENERGY_J)
        finite(w.dynamic_energy_j, f"windows[{name}].dynamic_energy_j", -MAX_ENERGY_J, MAX_ENERGY_J)
        finite(w.duration_s, f"windows[{name}].duration_s", 0.0, MAX_DURATION_S)
        finite(w.mean_power_w, f"windows[{name}].mean_power_w", 0.0, MAX_POWER_W)
        finite(w.peak_power_w, f"windows[{name}].peak_power_w", 0.0, MAX_POWER_W)
        finite(w.mean_freq_hz, f"windows[{name}].mean_freq_hz", 0.0, MAX_FREQ_HZ)
        text(w.source, limit, "source")
        text(w.scope, limit, "scope")
    for name in ("train_time_s", "upload_time_s", "download_time_s"):
        finite(getattr(rep, name), name, 0.0, MAX_DURATION_S)
    for name in (
        "loss_first",
        "loss_last",
        "update_sq_error",
        "update_error_bound",
        "update_range",
        "update_norm",
    ):
        if not math.isfinite(getattr(rep, name)):
            raise InvalidRequest(f"{name} is not finite")
    if rep.bytes_up < 0 or rep.samples < 0 or rep.steps < 0:
        raise InvalidRequest("bytes_up, samples and steps must be >= 0")
    finite(rep.applied_freq_hz, "applied_freq_hz", 0.0, MAX_FREQ_HZ)
    for name in ("personal_fd", "global_fd_own"):
        value = getattr(rep, name)
        if value is not None:
            finite(value, name, 0.0, MAX_FD)
    if rep.own_eval_images is not None and not 2 <= rep.own_eval_images <= MAX_SAMPLES:
        raise InvalidRequest(f"own_eval_images must be in 2..1e9, got {rep.own_eval_images}")
    text(rep.error, 4 * limit, "error")
    text(rep.dvfs_reason, limit, "dvfs_reason")
