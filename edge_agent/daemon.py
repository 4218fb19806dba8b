"""The agent daemon: register, wait, train, encode, upload, report; measure every phase.

One round on the board::

    apply CPU frequency (DVFS, if the OS allows)     -> dvfs_applied / reason in the report
    [window "download"]     global model, sha256-checked
    [window "compute"]      local training (edge_agent.training: the mode the coordinator
                            names) + stochastic quantization of the update
    [window "communicate"]  chunked upload (shaped by --uplink-mbps when set), resumable
    report (windows, bytes, bits, frequency, losses, quantization error)

An encoded update is written to ``state_dir`` before it is sent, so an agent restarted while
its round is still open resumes the upload instead of training again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Dict, List, Optional

import grpc

from edge_agent.client import FleetClient
from edge_agent.config import AgentConfig
from edge_agent.errors import Refused, Stopped
from edge_agent.link import TokenBucket, mbps_to_bytes_per_s
from edge_agent.pending import Pending, PendingStore
from edge_agent.sensing import (
    CalibrationProfile,
    CpuFreq,
    PowerMonitor,
    WindowResult,
    detect_power_source,
)
from edge_agent.serde import codec_config_of, profile_pb, round_fields, window_pb
from edge_agent.training import LocalPlan, LocalTraining, make_training
from greenfed import __version__, codec
from greenfed.errors import GreenfedError
from greenfed.v1 import fleet_pb2 as pb

log = logging.getLogger(__name__)


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
        path = self.cfg.profile_path
        if path.exists():
            return CalibrationProfile.load(path)
        if not self.cfg.quick_calibration:
            raise FileNotFoundError(
                f"no calibration profile at {path}: run `greenfed-agent calibrate --out {path}`"
            )
        log.info(
            "no calibration profile at %s: running a quick calibration (a few seconds); "
            "run `greenfed-agent calibrate` for a full one",
            path,
        )
        from edge_agent.sensing import LoopbackSink, calibrate
        from edge_agent.training.workloads import default_workload

        workload, name = default_workload("auto", 64)
        monitor = PowerMonitor(self.source, self.cpu, self.cfg.sensing)
        with monitor, LoopbackSink() as sink:
            profile = calibrate(
                monitor,
                self.cpu,
                workload,
                sink.send,
                workload_name=name,
                uplink_target="loopback (quick calibration)",
                rest_s=1.0,
                step_s=1.5,
                max_steps=1,
                upload_bytes=1 << 20,
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        profile.save(path)
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
                board=self.source.board_class,
                dvfs_available=status.applied,
                dvfs_reason=status.reason,
                bits_min=self.cfg.bits_min,
                bits_max=self.cfg.bits_max,
                link_mbps=self.cfg.uplink_mbps or 0.0,
            )
        )
        self.trainer: LocalTraining = make_training(
            json.loads(reply.model_config_json), self.data.images
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
            self._evaluate(a, windows, report)
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

    def _evaluate(
        self, a: pb.Assignment, windows: List[WindowResult], report: pb.RoundReport
    ) -> None:
        """The training mode's own quality figures (personal adapters), measured after the
        upload in an "evaluate" window, so neither the deadline nor the compute figures
        carry them. A failure is logged; the report still goes out."""
        assert self.monitor is not None
        if not self.trainer.evaluates:
            return
        self.monitor.begin_window("evaluate")
        try:
            figures = self.trainer.evaluate()
        except (GreenfedError, RuntimeError, ValueError) as e:
            log.warning("round %d: evaluating this device's models failed: %s", a.round, e)
            figures = {}
        finally:
            windows.append(self.monitor.end_window("evaluate"))
        for k, v in figures.items():
            setattr(report, k, v)

    def _training_budget_s(self, a: pb.Assignment) -> float:
        """Seconds left for training so the upload still fits before the round's deadline.

        The upload time is estimated from the update's size at the assigned bits and the
        link's rate (the emulated rate, else the calibrated one), with a 20% margin.
        """
        params = self.trainer.num_values
        bits = codec_config_of(a).frame_bits
        rate = self.bucket.rate if self.bucket is not None else None
        if rate is None and self.profile is not None:
            rate = self.profile.uplink_bytes_per_s
        upload_s = 1.2 * params * bits / 8.0 / rate if rate else 0.0
        left = self._round_deadline - time.monotonic() - upload_s - 1.0
        return max(1.0, left)

    def _download(
        self, a: pb.Assignment, windows: List[WindowResult], report: pb.RoundReport
    ) -> Dict[str, Any]:
        """The round's global model, sha256-checked and decoded, in a "download" window."""
        assert self.client is not None and self.monitor is not None
        self.monitor.begin_window("download")
        t0 = time.monotonic()
        try:  # a refused download (round aborted) must not leave the window open
            frame = self.client.download(a.round, a.model_sha256)
            report.download_time_s = time.monotonic() - t0
            return dict(
                codec.decode(
                    frame,
                    max_frame_bytes=self.cfg.max_model_bytes,
                    max_decoded_bytes=4 * self.cfg.max_model_bytes,
                )
            )
        finally:
            windows.append(self.monitor.end_window("download"))

    def _train_and_encode(
        self, a: pb.Assignment, windows: List[WindowResult], report: pb.RoundReport
    ) -> Pending:
        assert self.monitor is not None
        self.trainer.load_global(self._download(a, windows, report))
        self.monitor.begin_window("compute")
        try:  # a failure in training or encoding must not leave the window open
            t0 = time.monotonic()
            result = self.trainer.train(
                LocalPlan(
                    steps=int(a.local_steps),
                    batch_size=int(a.batch_size),
                    learning_rate=float(a.learning_rate),
                    seed=int(a.seed) % (2**31),
                    max_seconds=self._training_budget_s(a),
                    num_threads=self.cfg.num_threads,
                )
            )
            report.train_time_s = time.monotonic() - t0
            if result.stopped_early:
                log.warning(
                    "round %d: stopped after %d of %d steps to upload before the deadline",
                    a.round,
                    result.steps,
                    a.local_steps,
                )
            enc = codec.encode(result.update, codec_config_of(a))
        finally:
            windows.append(self.monitor.end_window("compute"))
        if enc.frame_bytes > self.max_update_bytes:
            raise Refused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"update of {enc.frame_bytes} B exceeds the coordinator's limit",
            )
        meta = round_fields(result, enc)
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
