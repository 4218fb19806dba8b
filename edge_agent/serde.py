"""Protobuf <-> the agent's own values: pure conversions, nothing else (the coordinator's
counterpart is coordinator/serde.py)."""

from __future__ import annotations

from typing import Any, Dict

from edge_agent.sensing import CalibrationProfile, WindowResult
from edge_agent.training import LocalResult
from greenfed import codec
from greenfed.updates import max_range, sq_norm
from greenfed.v1 import fleet_pb2 as pb


def codec_config_of(a: pb.Assignment) -> codec.CodecConfig:
    """What the assignment asks this device to encode with (bits are ignored by fp32)."""
    return codec.CodecConfig(mode=a.mode, bits=int(a.bits), block_size=int(a.block_size) or None)


def window_pb(w: WindowResult) -> pb.EnergyWindow:
    return pb.EnergyWindow(
        name=w.name,
        energy_j=w.energy_j,
        dynamic_energy_j=w.dynamic_energy_j,
        duration_s=w.duration_s,
        mean_power_w=w.mean_power_w,
        peak_power_w=w.peak_power_w,
        samples=w.samples,
        mean_freq_hz=w.mean_freq_hz or 0.0,
        source=w.source,
        scope=w.scope,
        estimated=w.estimated,
        gpu_energy_j=w.gpu_energy_j or 0.0,
        gpu_rail=w.gpu_rail[:256],
    )


def profile_pb(p: CalibrationProfile) -> pb.CalibrationProfile:
    return pb.CalibrationProfile(
        idle_power_w=p.idle_power_w,
        kappa=p.kappa or 0.0,
        cycles_per_sample=p.cycles_per_sample or 0.0,
        uplink_bytes_per_s=p.uplink_bytes_per_s or 0.0,
        energy_per_byte_j=p.energy_per_byte_j or 0.0,
        f_min_hz=p.f_min_hz or 0.0,
        f_max_hz=p.f_max_hz or 0.0,
        f_steps_hz=list(p.f_steps_hz),
        source=p.source,
        scope=p.scope[:256],
        estimated=p.estimated,
        created_at=p.created_at,
        single_point=p.kappa_single_point,
        workload=p.workload[:256],
        clock=p.clock,
    )


def round_fields(result: LocalResult, enc: codec.EncodeResult) -> Dict[str, Any]:
    """The RoundReport fields of a trained and encoded update (kept with a pending upload)."""
    losses = result.losses
    return {
        "samples": int(result.samples),
        "steps": int(result.steps),
        "loss_first": losses[0] if losses else 0.0,
        "loss_last": losses[-1] if losses else 0.0,
        "update_sq_error": float(enc.total_sq_error),
        "update_error_bound": float(enc.total_bound),
        "update_range": float(max_range(result.update)),
        "update_norm": float(sq_norm(result.update)) ** 0.5,
    }
