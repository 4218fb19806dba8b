"""The agent daemon: register, wait, train, encode, upload, report; measure every phase.

One round on the board::

    apply CPU frequency (DVFS, if the OS allows)     -> dvfs_applied / reason in the report
    [window "download"]     global model, sha256-checked
    [window "compute"]      local DDPM training + stochastic quantization of the update
    [window "communicate"]  chunked upload (shaped by --uplink-mbps when set), resumable
    report (windows, bytes, bits, frequency, losses, quantization error)

An encoded update is written to ``state_dir`` before it is sent, so an agent restarted while
its round is still open resumes the upload instead of training again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import grpc
import numpy as np

from edge_agent.client import FleetClient, Refused, Stopped
from edge_agent.config import AgentConfig
from edge_agent.link import TokenBucket, mbps_to_bytes_per_s
from edge_agent.sensing import (
    CalibrationError,
    CalibrationProfile,
    CpuFreq,
    PowerMonitor,
    WindowResult,
    detect_power_source,
)
from greenfed import __version__, codec
from greenfed.updates import max_range, sq_norm, update_of
from greenfed.v1 import fleet_pb2 as pb

log = logging.getLogger(__name__)
# The uplink target a quick calibration names: how a quick profile is told from a full one.
QUICK_UPLINK_TARGET = "loopback (quick calibration)"


@dataclass
class Pending:
    """An encoded update waiting to be (re)sent."""

    round: int
    frame: bytes
    sha256: str
    meta: Dict[str, Any]


class PendingStore:
    """``pending-<round>.gfz`` + ``.json`` in the state directory (atomic writes)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def save(self, p: Pending) -> None:
        for suffix, data in (
            (".gfz", p.frame),
            (".json", json.dumps({"round": p.round, "sha256": p.sha256, "meta": p.meta}).encode()),
        ):
            path = self.root / f"pending-{p.round}{suffix}"
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)

    def load(self, round_no: int) -> Optional[Pending]:
        meta_path = self.root / f"pending-{round_no}.json"
        frame_path = self.root / f"pending-{round_no}.gfz"
        try:
            meta = json.loads(meta_path.read_text())
            frame = frame_path.read_bytes()
        except (OSError, ValueError):
            return None
        if hashlib.sha256(frame).hexdigest() != meta.get("sha256"):
            return None
        return Pending(round_no, frame, meta["sha256"], dict(meta.get("meta") or {}))

    def clear(self, keep_round: Optional[int] = None) -> None:
        for path in self.root.glob("pending-*"):
            if keep_round is not None and path.name.startswith(f"pending-{keep_round}."):
                continue
            path.unlink(missing_ok=True)


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
    )


class Agent:
    """The daemon. ``run()`` returns when the run is finished or ``stop`` is set."""

    def __init__(self, cfg: AgentConfig, stop: Optional[threading.Event] = None) -> None:
        self.cfg = cfg
        self.stop = stop or threading.Event()
        self.pending = PendingStore(cfg.state_dir)
        self.source = detect_power_source(cfg.sensing, cfg.sysfs_root)
        self.cpu = CpuFreq(cfg.sysfs_root)
        self.profile: Optional[CalibrationProfile] = None
        self.monitor: Optional[PowerMonitor] = None
        self.client: Optional[FleetClient] = None
        self.bucket = TokenBucket(mbps_to_bytes_per_s(cfg.uplink_mbps)) if cfg.uplink_mbps else None
        self.rounds_done = 0
        self._round_deadline = float("inf")

    # ------------------------------------------------------------------ setup
    def _load_profile(self) -> CalibrationProfile:
        """The profile at ``profile_path``, or a quick calibration; logged either way."""
        path = self.cfg.profile_path
        where = "`profile`" if self.cfg.profile is not None else "state_dir/calibration.json"
        if path.exists():
            profile = CalibrationProfile.load(path)
            log.info(
                "calibration profile %s (%s): measured %s, power %s%s, workload %s",
                path,
                where,
                profile.created_at,
                profile.source,
                " (estimated)" if profile.estimated else "",
                profile.workload,
            )
            if profile.uplink_target == QUICK_UPLINK_TARGET:
                log.warning(
                    "%s holds a quick calibration's profile (rough coefficients): stop the "
                    "agent and run `greenfed-agent calibrate --out %s` for measured ones",
                    path,
                    path,
                )
            return profile
        if not self.cfg.quick_calibration:
            raise FileNotFoundError(
                f"no calibration profile at {path} ({where}) and quick_calibration is off: "
                f"run `greenfed-agent calibrate --out {path}` (or calibrate --config with this "
                "agent's TOML)"
            )
        log.warning(
            "no calibration profile at %s (%s): running a quick calibration instead "
            "(1 s at rest, one 1.5 s training step, 1 MiB to a loopback sink), rougher than "
            "a full one; run `greenfed-agent calibrate --config <this agent's TOML>` and restart",
            path,
            where,
        )
        from edge_agent.sensing import LoopbackSink, calibrate
        from edge_agent.sensing.workloads import default_workload

        workload, name = default_workload("auto", 64)
        monitor = PowerMonitor(self.source, self.cpu, self.cfg.sensing)
        with monitor, LoopbackSink() as sink:
            profile = calibrate(
                monitor,
                self.cpu,
                workload,
                sink.send,
                workload_name=name,
                uplink_target=QUICK_UPLINK_TARGET,
                rest_s=1.0,
                step_s=1.5,
                max_steps=1,
                upload_bytes=1 << 20,
            )
        profile.notes.append("quick calibration at agent start: no profile existed")
        try:  # kept, so a restart plans with the same coefficients; calibrate overwrites it
            path.parent.mkdir(parents=True, exist_ok=True)
            profile.save(path)
            log.info("quick calibration saved to %s (calibrate replaces it)", path)
        except (OSError, CalibrationError) as e:
            log.warning("quick calibration not saved (%s): the next start calibrates again", e)
        return profile

    def _setup(self) -> None:
        import torch

        from greenfed import ddpm

        torch.set_num_threads(self.cfg.num_threads)
        self.data = ddpm.load_data(self.cfg.data)
        self.profile = self._load_profile()
        self.monitor = PowerMonitor(
            self.source, self.cpu, self.cfg.sensing, idle_power_w=self.profile.idle_power_w
        )
        self.monitor.start()
        self.client = FleetClient(self.cfg, self.stop)
        status = self.cpu.dvfs_status()
        reply = self.client.register(
            pb.RegisterRequest(
                agent_version=__version__,
                samples=len(self.data),
                profile=profile_pb(self.profile),
                board=getattr(getattr(self.source, "board", None), "name", "") or "",
                dvfs_available=status.applied,
                dvfs_reason=status.reason,
                bits_min=self.cfg.bits_min,
                bits_max=self.cfg.bits_max,
                link_mbps=self.cfg.uplink_mbps or 0.0,
            )
        )
        model_cfg = json.loads(reply.model_config_json)
        self.model = ddpm.build_model(ddpm.UNetConfig.from_dict(model_cfg["unet"]))
        self.schedule = ddpm.NoiseSchedule.from_config(
            ddpm.ScheduleConfig.from_dict(model_cfg["schedule"])
        )
        self.max_update_bytes = int(reply.max_update_bytes)
        log.info(
            "registered as %s with %d images; power: %s (%s)%s",
            reply.device_id,
            len(self.data),
            self.source.name,
            self.source.scope,
            " ESTIMATED" if self.source.estimated else "",
        )

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.stop()
        self.cpu.restore()
        if self.client is not None:
            self.client.close()

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        try:
            self._setup()
            assert self.client is not None
            last_round = -1
            while not self.stop.is_set():
                a = self.client.wait_assignment(last_round)
                if a.status == pb.Assignment.FINISHED:
                    log.info("coordinator: run finished after %d rounds here", self.rounds_done)
                    if self.cfg.exit_when_finished:
                        return 0
                    self.stop.wait(self.client.poll_interval_s)
                    continue
                if a.status != pb.Assignment.ASSIGNED:
                    continue
                try:
                    self.run_round(a)
                    self.rounds_done += 1
                except Refused as e:
                    log.warning("round %d: coordinator refused: %s", a.round, e)
                last_round = a.round
            return 0
        except Stopped:
            return 0
        finally:
            self.close()

    def run_round(self, a: pb.Assignment) -> None:
        assert self.client is not None and self.monitor is not None
        log.info(
            "round %d: %s, %s %d bits, %.0f MHz, %d steps, deadline %.0f s",
            a.round,
            a.scheme,
            a.mode,
            a.bits,
            a.freq_hz / 1e6,
            a.local_steps,
            a.deadline_s,
        )
        self.pending.clear(keep_round=a.round)
        # Measured from receipt, not from the coordinator's clock: boards' clocks drift.
        self._round_deadline = time.monotonic() + float(a.deadline_s)
        dvfs = self.cpu.apply(a.freq_hz) if a.freq_hz > 0 else None
        windows: List[WindowResult] = []
        report = pb.RoundReport(round=a.round, bits=a.bits)
        if dvfs is not None:
            report.dvfs_applied = dvfs.applied
            report.dvfs_reason = dvfs.reason
            report.applied_freq_hz = float(dvfs.freq_hz or 0.0)
        try:
            pending = self.pending.load(a.round)
            if pending is None:
                pending = self._train_and_encode(a, windows, report)
                self.pending.save(pending)
            else:
                log.info("round %d: resuming the upload of an update encoded earlier", a.round)
                for k, v in pending.meta.items():
                    setattr(report, k, v)
            self.monitor.begin_window("communicate")
            t0 = time.monotonic()
            try:
                self.client.upload(
                    pb.UploadManifest(
                        round=a.round,
                        total_bytes=len(pending.frame),
                        sha256=pending.sha256,
                        samples=int(pending.meta.get("samples", 1)),
                        bits=a.bits,
                        mode=a.mode,
                    ),
                    pending.frame,
                    self.bucket,
                )
            finally:
                report.upload_time_s = time.monotonic() - t0
                windows.append(self.monitor.end_window("communicate"))
            report.bytes_up = len(pending.frame)
            self.pending.clear()
        except Refused as e:
            report.error = str(e)[:1000]
            raise
        finally:
            if dvfs is not None and dvfs.applied:
                self.cpu.restore()
            report.emulated_link = self.bucket is not None
            report.link_mbps = self.cfg.uplink_mbps or 0.0
            report.windows.extend(window_pb(w) for w in windows)
            try:
                self.client.report(report)
            except Refused as e:
                log.warning("round %d: report refused: %s", a.round, e)

    def _training_budget_s(self, a: pb.Assignment) -> float:
        """Seconds left for training so the upload still fits before the round's deadline.

        The upload time is estimated from the update's size at the assigned bits and the
        link's rate (the emulated rate, else the calibrated one), with a 20% margin.
        """
        params = sum(int(v.numel()) for v in self.model.parameters())
        bits = 32 if a.mode == "fp32" else (16 if a.mode == "fp16" else int(a.bits))
        rate = self.bucket.rate if self.bucket is not None else None
        if rate is None and self.profile is not None:
            rate = self.profile.uplink_bytes_per_s
        upload_s = 1.2 * params * bits / 8.0 / rate if rate else 0.0
        left = self._round_deadline - time.monotonic() - upload_s - 1.0
        return max(1.0, left)

    def _train_and_encode(
        self, a: pb.Assignment, windows: List[WindowResult], report: pb.RoundReport
    ) -> Pending:
        assert self.client is not None and self.monitor is not None
        from greenfed import ddpm

        self.monitor.begin_window("download")
        t0 = time.monotonic()
        try:  # a refused download (round aborted) must not leave the window open
            frame = self.client.download(a.round, a.model_sha256)
            report.download_time_s = time.monotonic() - t0
            start = codec.decode(
                frame,
                max_frame_bytes=self.cfg.max_model_bytes,
                max_decoded_bytes=4 * self.cfg.max_model_bytes,
            )
        finally:
            windows.append(self.monitor.end_window("download"))
        del frame
        ddpm.set_state_arrays(self.model, start)

        self.monitor.begin_window("compute")
        try:  # a failure in training or encoding must not leave the window open
            t0 = time.monotonic()
            result = ddpm.train_local(
                self.model,
                self.schedule,
                self.data.images,
                ddpm.TrainConfig(
                    steps=int(a.local_steps),
                    batch_size=int(a.batch_size),
                    lr=float(a.learning_rate),
                    seed=int(a.seed) % (2**31),
                    num_threads=self.cfg.num_threads,
                    max_seconds=self._training_budget_s(a),
                ),
            )
            report.train_time_s = time.monotonic() - t0
            if result.stopped_early:
                log.warning(
                    "round %d: stopped after %d of %d steps to upload before the deadline",
                    a.round,
                    result.steps,
                    a.local_steps,
                )
            delta = update_of(ddpm.get_state_arrays(self.model), start)
            enc = codec.encode(
                delta,
                codec.CodecConfig(
                    mode=a.mode,
                    bits=int(a.bits) if a.mode == "stochastic" else 8,
                    block_size=int(a.block_size) or None,
                ),
            )
        finally:
            windows.append(self.monitor.end_window("compute"))
        if enc.frame_bytes > self.max_update_bytes:
            raise Refused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"update of {enc.frame_bytes} B exceeds the coordinator's limit",
            )
        losses = [float(x) for x in result.losses if np.isfinite(x)]
        meta = {
            "samples": int(result.samples),
            "steps": int(result.steps),
            "loss_first": losses[0] if losses else 0.0,
            "loss_last": losses[-1] if losses else 0.0,
            "update_sq_error": float(enc.total_sq_error),
            "update_error_bound": float(enc.total_bound),
            "update_range": float(max_range(delta)),
            "update_norm": float(np.sqrt(sq_norm(delta))),
        }
        for k, v in meta.items():
            setattr(report, k, v)
        log.info(
            "round %d: trained %d steps (loss %.4f -> %.4f) in %.1f s; update %d B",
            a.round,
            result.steps,
            meta["loss_first"],
            meta["loss_last"],
            report.train_time_s,
            enc.frame_bytes,
        )
        return Pending(a.round, enc.frame, enc.sha256, meta)
