"""Protobuf messages <-> the coordinator's values: pure conversions (no checks, no I/O).

Incoming messages become :mod:`coordinator.messages` values, checked next by
:mod:`coordinator.validation`; outgoing ones are built from the engine's values. Strings are
copied whole, as sent (never cut: validation judges the whole string, so trailing junk after
a valid prefix is refused, not silently dropped).
"""

from __future__ import annotations

from typing import Any, Dict

from google.protobuf import json_format

from coordinator.messages import Manifest, PoolMember, PoolRound, Registration, Report, Window
from greenfed.v1 import fleet_pb2 as pb


def profile_dict(p: pb.CalibrationProfile) -> Dict[str, Any]:
    return json_format.MessageToDict(
        p, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def registration_from_pb(req: pb.RegisterRequest) -> Registration:
    return Registration(
        samples=int(req.samples),
        board=req.board,
        profile=profile_dict(req.profile),
        dvfs_available=bool(req.dvfs_available),
        dvfs_reason=req.dvfs_reason,
        bits_min=int(req.bits_min),
        bits_max=int(req.bits_max),
        link_mbps=float(req.link_mbps),
        agent_version=req.agent_version,
        train_device=req.train_device,
        device_name=req.device_name,
    )


def manifest_from_pb(m: pb.UploadManifest) -> Manifest:
    return Manifest(
        round=int(m.round),
        total_bytes=int(m.total_bytes),
        sha256=m.sha256,
        offset=int(m.offset),
        samples=int(m.samples),
        bits=int(m.bits),
        mode=m.mode,
    )


def window_from_pb(w: pb.EnergyWindow) -> Window:
    return Window(
        name=w.name,
        energy_j=w.energy_j,
        dynamic_energy_j=w.dynamic_energy_j,
        duration_s=w.duration_s,
        mean_power_w=w.mean_power_w,
        peak_power_w=w.peak_power_w,
        samples=int(w.samples),
        mean_freq_hz=w.mean_freq_hz,
        source=w.source,
        scope=w.scope,
        estimated=bool(w.estimated),
        gpu_energy_j=w.gpu_energy_j,
        gpu_rail=w.gpu_rail,
    )


def pool_from_pb(p: pb.PoolReport) -> PoolRound:
    return PoolRound(
        parallelism=p.parallelism,
        plan=p.plan,
        engine=p.engine,
        micro_batches=int(p.micro_batches),
        members=tuple(
            PoolMember(
                member_id=m.member_id,
                rank=int(m.rank),
                windows=tuple(window_from_pb(w) for w in m.windows),
                bytes_sent=int(m.bytes_sent),
                bytes_received=int(m.bytes_received),
                freq_hz=m.freq_hz,
                dvfs_applied=bool(m.dvfs_applied),
                stage_start=int(m.stage_start),
                stage_stop=int(m.stage_stop),
                compute_s=m.compute_s,
                exchange_s=m.exchange_s,
                predicted_energy_j=m.predicted_energy_j,
            )
            for m in p.members
        ),
        energy_j=p.energy_j,
        dynamic_energy_j=p.dynamic_energy_j,
        predicted_energy_j=p.predicted_energy_j,
        predicted_step_s=p.predicted_step_s,
        measured_step_s=p.measured_step_s,
    )


def report_from_pb(req: pb.RoundReport) -> Report:
    return Report(
        round=int(req.round),
        windows=tuple(window_from_pb(w) for w in req.windows),
        train_time_s=req.train_time_s,
        upload_time_s=req.upload_time_s,
        download_time_s=req.download_time_s,
        bytes_up=int(req.bytes_up),
        bits=int(req.bits),
        samples=int(req.samples),
        steps=int(req.steps),
        loss_first=req.loss_first,
        loss_last=req.loss_last,
        update_sq_error=req.update_sq_error,
        update_error_bound=req.update_error_bound,
        update_range=req.update_range,
        update_norm=req.update_norm,
        applied_freq_hz=req.applied_freq_hz,
        dvfs_applied=bool(req.dvfs_applied),
        dvfs_reason=req.dvfs_reason,
        emulated_link=bool(req.emulated_link),
        link_mbps=req.link_mbps,
        error=req.error,
        train_device=req.train_device,
        link_kind=req.link_kind,
        link_profile=req.link_profile,
        personal_fd=req.personal_fd if req.HasField("personal_fd") else None,
        global_fd_own=req.global_fd_own if req.HasField("global_fd_own") else None,
        own_eval_images=int(req.own_eval_images) if req.HasField("own_eval_images") else None,
        raw_json=json_format.MessageToJson(req, preserving_proto_field_name=True, indent=None),
        pool=pool_from_pb(req.pool) if req.HasField("pool") else None,
    )


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
