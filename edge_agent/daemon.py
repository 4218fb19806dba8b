"""The agent daemon: register, wait, train, encode, upload, report; measure every phase.

One round on the board (on the training device: the CPU, or CUDA where torch has a GPU)::

    apply the compute clock's frequency (DVFS, if the OS allows: the CPU's cpufreq, or the
    Jetson GPU's devfreq when training on CUDA)    -> dvfs_applied / reason in the report
    [window "download"]     global model, sha256-checked
    [window "compute"]      local training (edge_agent.training: the mode the coordinator
                            names) + stochastic quantization of the update
    [window "communicate"]  chunked upload (paced in-process by --uplink-mbps when set), resumable
    report (windows, bytes, bits, frequency, losses, quantization error, the link it had)

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

from edge_agent.calibration import load_or_calibrate
from edge_agent.client import FleetClient
from edge_agent.config import AgentConfig
from edge_agent.errors import Refused, Stopped
from edge_agent.link_record import LinkRecord
from edge_agent.pending import Pending, PendingStore
from edge_agent.pool.errors import PoolRoundFailed
from edge_agent.sensing import (
    CalibrationProfile,
    ComputeClock,
    CpuFreq,
    DvfsResult,
    PowerMonitor,
    WindowResult,
    detect_power_source,
)
from edge_agent.serde import codec_config_of, profile_pb, round_fields, window_pb
from edge_agent.training import LocalPlan, LocalTraining, make_training
from edge_agent.training.device import compute_clock, device_name, resolve_device
from edge_agent.training.workloads import warm_up
from greenfed import __version__, codec
from greenfed.errors import GreenfedError
from greenfed.v1 import fleet_pb2 as pb

log = logging.getLogger(__name__)
# The uplink target a quick calibration names: how a quick profile is told from a full one.


class Agent:
    """The daemon. ``run()`` returns when the run is finished or ``stop`` is set.

    ``clock``: the compute clock, by default the training device's (the CPU's cpufreq, or
    the Jetson GPU's devfreq under CUDA); given explicitly only to run the GPU-clock path on
    a copied board tree while training on the CPU (tests, dry runs).
    """

    def __init__(
        self,
        cfg: AgentConfig,
        stop: Optional[threading.Event] = None,
        clock: Optional[ComputeClock] = None,
    ) -> None:
        self.cfg = cfg
        self.stop = stop or threading.Event()
        self.pending = PendingStore(cfg.state_dir)
        self.source = detect_power_source(cfg.sensing, cfg.sysfs_root)
        self.cpu = CpuFreq(cfg.sysfs_root)
        self.device = resolve_device(cfg.device)
        self.clock = clock or compute_clock(
            self.device, cfg.sysfs_root, self.cpu, cfg.sensing.emulated
        )
        self.profile: Optional[CalibrationProfile] = None
        self.monitor: Optional[PowerMonitor] = None
        self.client: Optional[FleetClient] = None
        self.link = LinkRecord(cfg)
        self.bucket = self.link.bucket
        self._measured_rate: Optional[float] = None  # bytes/s of the last upload
        self.rounds_done = 0
        self._round_deadline = float("inf")
        self.pool: Optional[Any] = None  # edge_agent.pool.session.LeaderSession when leading

    # ------------------------------------------------------------------ setup
    def _load_profile(self) -> CalibrationProfile:
        """The profile at ``profile_path``, or a quick calibration; logged either way."""
        where = "`profile`" if self.cfg.profile is not None else "state_dir/calibration.json"
        return load_or_calibrate(
            self.cfg.profile_path,
            where,
            self.cfg.quick_calibration,
            self.source,
            self.clock,
            self.cfg.sensing,
            self.device,
        )

    def _setup(self) -> None:
        import torch

        from greenfed import ddpm

        torch.set_num_threads(self.cfg.num_threads)
        self.data = ddpm.load_data(self.cfg.data)
        self.profile = self._load_profile()
        warm_up(self.device)  # before registering: a round may open as soon as it has
        self.monitor = PowerMonitor(
            self.source, self.clock, self.cfg.sensing, idle_power_w=self.profile.idle_power_w
        )
        self.monitor.start()
        profile, board, status = self.profile, self.source.board_class, self.clock.dvfs_status()
        if self.cfg.pool is not None:  # a pool registers as one participant (docs/pools.md)
            from edge_agent.pool.session import DVFS_REASON, LeaderSession

            self.pool = LeaderSession(
                self.cfg, self.data.images, self.profile, self.monitor, self.clock
            )
            profile, board = self.pool.calibrate(), self.pool.board(board)
            status = DvfsResult(False, DVFS_REASON)
        self.client = FleetClient(self.cfg, self.stop)
        reply = self.client.register(
            pb.RegisterRequest(
                agent_version=__version__,
                samples=len(self.data),
                profile=profile_pb(profile),
                board=board,
                dvfs_available=status.applied,
                dvfs_reason=status.reason,
                bits_min=self.cfg.bits_min,
                bits_max=self.cfg.bits_max,
                link_mbps=self.link.prior_mbps,
                train_device=self.device,
                device_name=device_name(self.device),
            )
        )
        model_config = json.loads(reply.model_config_json)
        self.trainer: LocalTraining = (
            self.pool.training(model_config, self.data.images)
            if self.pool is not None
            else make_training(model_config, self.data.images, self.device)
        )
        self.max_update_bytes = int(reply.max_update_bytes)
        log.info(
            "registered as %s with %d images, training on %s (clock: %s); power: %s (%s)%s",
            reply.device_id,
            len(self.data),
            device_name(self.device),
            self.clock.name,
            self.source.name,
            self.source.scope,
            " ESTIMATED" if self.source.estimated else "",
        )

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        if self.monitor is not None:
            self.monitor.stop()
        self.clock.restore()
        if self.clock is not self.cpu:
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
                except PoolRoundFailed as e:
                    log.warning("round %d: the pool's round failed; nothing sent: %s", a.round, e)
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
        # A pool's planner sets its members' clocks; the assignment's is the pool's reference.
        dvfs = self.clock.apply(a.freq_hz) if a.freq_hz > 0 and self.pool is None else None
        windows: List[WindowResult] = []
        report = pb.RoundReport(round=a.round, bits=a.bits, train_device=self.device)
        upload_window = (0.0, 0.0)  # wall-clock start and end of the upload, once it runs
        send_report = True
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
            upload_window = (time.time(), time.time())
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
            except Refused:
                # Late, but the whole stream crossed the link: that is still a measurement.
                if self.client.stream_ended and t0 < self._round_deadline:
                    report.bytes_up = self.client.streamed_bytes
                    elapsed = max(time.monotonic() - t0, 1e-6)
                    self._measured_rate = report.bytes_up / elapsed or None
                raise
            finally:
                report.upload_time_s = time.monotonic() - t0
                upload_window = (upload_window[0], time.time())
                windows.append(self.monitor.end_window("communicate"))
            report.bytes_up = len(pending.frame)
            self._measured_rate = report.bytes_up / max(report.upload_time_s, 1e-6)
            self.pending.clear()
            self._evaluate(a, windows, report)
        except Refused as e:
            report.error = str(e)[:1000]
            raise
        except PoolRoundFailed:
            send_report = False  # the coordinator sees a late participant, nothing else
            raise
        finally:
            if dvfs is not None and dvfs.applied:
                self.clock.restore()
            report.emulated_link = self.link.kind == "emulated"
            report.link_kind = self.link.kind
            report.link_profile = self.link.profile[:256]
            report.link_mbps = (
                self.link.configured_mbps(*upload_window)
                if upload_window[0]
                else self.link.prior_mbps
            )
            report.windows.extend(window_pb(w) for w in windows)
            try:
                if send_report:
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
        link's rate (the last upload's measured rate, else the emulated rate, else the
        configured or calibrated one), with a 20% margin.
        """
        params = self.trainer.num_values
        bits = codec_config_of(a).frame_bits
        rate = self._measured_rate or (self.bucket.rate if self.bucket is not None else None)
        if rate is None and self.link.prior_mbps:
            rate = self.link.prior_mbps * 1e6 / 8.0
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
                    verified_sha256=a.model_sha256,  # client.download hashed these bytes
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
        if self.pool is not None:  # the pool's sum replaces the leader's own compute window
            windows[-1] = self.pool.report(result, windows[-1], report)
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
