"""Conversions between protobuf messages and the coordinator's records (no logic, no I/O)."""

from __future__ import annotations

import json
import math
from typing import Any, Dict

from google.protobuf import json_format

from coordinator.errors import InvalidRequest
from greenfed.v1 import fleet_pb2 as pb

# Plausibility limits for reported figures: anything outside is a broken or hostile report.
MAX_ENERGY_J = 1e7  # ~2.8 kWh for one round of one board
MAX_DURATION_S = 7 * 24 * 3600.0
MAX_POWER_W = 1e4
MAX_FREQ_HZ = 1e11


def _text(value: str, limit: int, name: str) -> str:
    if len(value) > limit:
        raise InvalidRequest(f"{name} is {len(value)} characters long; the limit is {limit}")
    return value


def _finite(value: float, name: str, lo: float, hi: float) -> float:
    if not math.isfinite(value) or value < lo or value > hi:
        raise InvalidRequest(f"{name} = {value!r} is outside the plausible range [{lo}, {hi}]")
    return float(value)


def profile_dict(p: pb.CalibrationProfile) -> Dict[str, Any]:
    return json_format.MessageToDict(
        p, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def register_fields(req: pb.RegisterRequest, limit: int) -> Dict[str, Any]:
    if req.samples <= 0 or req.samples > 10**9:
        raise InvalidRequest(f"samples must be in 1..1e9, got {req.samples}")
    for name in ("bits_min", "bits_max"):
        v = getattr(req, name)
        if v < 0 or v > 16:
            raise InvalidRequest(f"{name} must be 0 (any) or in 1..16, got {v}")
    if req.bits_min and req.bits_max and req.bits_min > req.bits_max:
        raise InvalidRequest("bits_min must be <= bits_max")
    p = req.profile
    for name in (
        "idle_power_w",
        "kappa",
        "cycles_per_sample",
        "uplink_bytes_per_s",
        "energy_per_byte_j",
        "f_min_hz",
        "f_max_hz",
    ):
        _finite(getattr(p, name), f"profile.{name}", 0.0, 1e12)
    if p.f_max_hz and p.f_min_hz > p.f_max_hz:
        raise InvalidRequest("profile.f_min_hz must be <= profile.f_max_hz")
    if len(p.f_steps_hz) > 256:
        raise InvalidRequest("profile.f_steps_hz lists more than 256 steps")
    for name in ("source", "scope", "created_at", "workload", "clock"):
        _text(getattr(p, name), limit, f"profile.{name}")
    return {
        "samples": int(req.samples),
        "board": _text(req.board, limit, "board"),
        "profile_json": json.dumps(profile_dict(p)),
        "dvfs_available": int(req.dvfs_available),
        "dvfs_reason": _text(req.dvfs_reason, limit, "dvfs_reason"),
        "bits_min": int(req.bits_min),
        "bits_max": int(req.bits_max),
        "link_mbps": _finite(req.link_mbps, "link_mbps", 0.0, 1e6),
        "revoked": 0,
    }


def report_fields(req: pb.RoundReport, limit: int) -> Dict[str, Any]:
    """Flatten a RoundReport into the reports table's columns, refusing absurd figures."""
    windows = {}
    for w in req.windows:
        name = _text(w.name, 32, "window name")
        _finite(w.energy_j, f"windows[{name}].energy_j", 0.0, MAX_ENERGY_J)
        _finite(
            w.dynamic_energy_j, f"windows[{name}].dynamic_energy_j", -MAX_ENERGY_J, MAX_ENERGY_J
        )
        _finite(w.duration_s, f"windows[{name}].duration_s", 0.0, MAX_DURATION_S)
        _finite(w.mean_power_w, f"windows[{name}].mean_power_w", 0.0, MAX_POWER_W)
        _finite(w.peak_power_w, f"windows[{name}].peak_power_w", 0.0, MAX_POWER_W)
        _finite(w.mean_freq_hz, f"windows[{name}].mean_freq_hz", 0.0, MAX_FREQ_HZ)
        _text(w.source, limit, "source")
        _text(w.scope, limit, "scope")
        windows[name] = w
    if len(req.windows) > 16:
        raise InvalidRequest("a report may hold at most 16 windows")
    for name in ("train_time_s", "upload_time_s", "download_time_s"):
        _finite(getattr(req, name), name, 0.0, MAX_DURATION_S)
    for name in (
        "loss_first",
        "loss_last",
        "update_sq_error",
        "update_error_bound",
        "update_range",
        "update_norm",
    ):
        v = getattr(req, name)
        if not math.isfinite(v):
            raise InvalidRequest(f"{name} is not finite")
    if req.bytes_up < 0 or req.samples < 0 or req.steps < 0:
        raise InvalidRequest("bytes_up, samples and steps must be >= 0")
    _finite(req.applied_freq_hz, "applied_freq_hz", 0.0, MAX_FREQ_HZ)
    _text(req.error, 4 * limit, "error")
    _text(req.dvfs_reason, limit, "dvfs_reason")
    _text(req.link_kind, 16, "link_kind")
    _text(req.link_profile, limit, "link_profile")
    _finite(req.link_mbps, "link_mbps", 0.0, 1e6)
    comp = windows.get("compute")
    comm = windows.get("communicate")
    ref = comp or comm
    goodput = req.bytes_up * 8.0 / req.upload_time_s / 1e6 if req.upload_time_s > 0 else None
    return {
        "compute_energy_j": comp.energy_j if comp else None,
        "compute_dynamic_j": comp.dynamic_energy_j if comp else None,
        "compute_time_s": comp.duration_s if comp else None,
        "comm_energy_j": comm.energy_j if comm else None,
        "comm_dynamic_j": comm.dynamic_energy_j if comm else None,
        "comm_time_s": comm.duration_s if comm else None,
        "power_source": ref.source if ref else "",
        "power_scope": ref.scope if ref else "",
        "estimated": int(any(w.estimated for w in req.windows)),
        "mean_freq_hz": comp.mean_freq_hz if comp else None,
        "applied_freq_hz": req.applied_freq_hz,
        "dvfs_applied": int(req.dvfs_applied),
        "bytes_up": int(req.bytes_up),
        "bits": int(req.bits),
        "samples": int(req.samples),
        "steps": int(req.steps),
        "loss_first": req.loss_first,
        "loss_last": req.loss_last,
        "emulated_link": int(req.emulated_link),
        "link_mbps": req.link_mbps,
        "link_kind": req.link_kind,
        "link_profile": req.link_profile,
        "goodput_mbps": goodput if req.bytes_up > 0 else None,
        "update_sq_error": req.update_sq_error,
        "update_error_bound": req.update_error_bound,
        "update_range": req.update_range,
        "update_norm": req.update_norm,
        "error": req.error or None,
        "report_json": json_format.MessageToJson(
            req, preserving_proto_field_name=True, indent=None
        ),
    }


def assignment_to_pb(a: Any) -> pb.Assignment:
    return pb.Assignment(
        status=pb.Assignment.ASSIGNED,
        round=a.round,
        mode=a.mode,
        bits=a.bits,
        block_size=a.block_size,
        freq_hz=a.freq_hz,
        local_steps=a.local_steps,
        batch_size=a.batch_size,
        learning_rate=a.learning_rate,
        deadline_unix=a.deadline_unix,
        deadline_s=a.deadline_s,
        model_sha256=a.model_sha256,
        seed=a.seed,
        predicted_energy_j=a.predicted_energy_j,
        scheme=a.scheme,
    )
