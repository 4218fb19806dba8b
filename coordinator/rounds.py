"""The round driver: wait for devices, plan, open, collect, close, aggregate, checkpoint.

A mixin of :class:`coordinator.engine.Engine`: it runs in the coordinator's one driver thread
and shares the engine's lock, condition variable and open-round state, while gRPC worker
threads use the engine's device-facing methods. Split from the engine so that each file holds
one side of that conversation.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Set

import numpy as np

from coordinator.aggregation import RuleOptions, make_aggregator, template_of
from coordinator.config import CoordinatorConfig
from coordinator.errors import CheckpointFailed
from coordinator.faults import fault_point
from coordinator.model_host import ModelHost
from coordinator.planning import RoundPlan, plan_round, refit_device
from coordinator.round_state import DeviceAssignment, OpenRound
from coordinator.store import Store
from coordinator.uploads import Spool

log = logging.getLogger("coordinator.engine")


class RoundDriver:
    """Driver half of the engine (see the module docstring)."""

    if TYPE_CHECKING:  # attributes owned by Engine
        cfg: CoordinatorConfig
        store: Store
        host: ModelHost
        spool: Spool
        clock: Callable[[], float]
        params: Dict[str, np.ndarray]
        model_sha256: str
        last_update_sq_norm: Optional[float]
        median_norm: Optional[float]
        _cond: threading.Condition
        _stopping: threading.Event
        _round: Optional[OpenRound]
        _finished: bool
        _told_finished: Set[str]

        def _set_model(self, params: Dict[str, np.ndarray]) -> None: ...

    # ------------------------------------------------------------------ the driver
    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()

    def linger(self, seconds: float) -> None:
        """Keep answering (FINISHED) for up to ``seconds`` so agents can exit cleanly."""
        end = time.monotonic() + seconds
        with self._cond:
            while time.monotonic() < end and not self._stopping.is_set():
                live = {d["id"] for d in self.live_devices()}
                if live <= self._told_finished:
                    return
                self._cond.wait(min(0.2, max(0.0, end - time.monotonic())))

    @property
    def finished(self) -> bool:
        return self._finished

    def live_devices(self) -> List[Dict[str, Any]]:
        now = self.clock()
        return [
            d
            for d in self.store.devices()
            if not d["revoked"]
            and d["id"] not in self.cfg.tls.revoked
            and now - d["last_seen"] <= self.cfg.device_timeout_s
        ]

    def run(self, on_round: Optional[Callable[[Dict[str, Any]], None]] = None) -> None:
        """Run rounds until ``cfg.rounds`` have completed or :meth:`stop` is called."""
        while not self._stopping.is_set():
            if self.store.completed_rounds() >= self.cfg.rounds:
                break
            devices = self._wait_for_devices()
            if devices is None:
                break
            summary = self.run_round(devices)
            if on_round is not None:
                on_round(summary)
        with self._cond:
            self._finished = self.store.completed_rounds() >= self.cfg.rounds
            self._cond.notify_all()

    def _wait_for_devices(self) -> Optional[List[Dict[str, Any]]]:
        announced = -1
        while not self._stopping.is_set():
            live = self.live_devices()
            if len(live) >= self.cfg.min_devices:
                return live
            if len(live) != announced:
                log.info("waiting for devices: %d of %d connected", len(live), self.cfg.min_devices)
                announced = len(live)
            with self._cond:
                self._cond.wait(1.0)
        return None

    def run_round(self, devices: List[Dict[str, Any]]) -> Dict[str, Any]:
        number = self.store.next_round_number()
        # Plan from everything measured so far: a late device's report (its upload outlived
        # the last round) may have arrived after that round's refit.
        for row in devices:
            refit_device(self.store, row["id"], self.cfg)
        devices = [self.store.get_device(row["id"]) or row for row in devices]
        plan: RoundPlan = plan_round(self.cfg, devices, self.params, self.last_update_sq_norm)
        now = self.clock()
        deadline_unix = now + plan.deadline_s
        assignments: Dict[str, DeviceAssignment] = {}
        # FedAvg weights are the data sizes registered now: fixed for the round's lifetime.
        data_size = {str(row["id"]): int(row["samples"]) for row in devices}
        for i, d in enumerate(plan.devices):
            assignments[d.device_id] = DeviceAssignment(
                round=number,
                device_id=d.device_id,
                mode=d.mode,
                bits=d.bits,
                freq_hz=d.freq_hz,
                local_steps=self.cfg.local_steps,
                batch_size=self.cfg.batch_size,
                learning_rate=self.cfg.learning_rate,
                block_size=self.cfg.block_size,
                deadline_unix=deadline_unix,
                deadline_s=plan.deadline_s,
                model_sha256=self.model_sha256,
                seed=self.cfg.seed * 1_000_003 + number * 1009 + i,
                predicted_energy_j=d.energy_j,
                scheme=self.cfg.scheme,
                weight=data_size[d.device_id],
            )
        self.store.open_round(
            number,
            {
                "scheme": self.cfg.scheme,
                "aggregation": self.cfg.aggregation,
                "deadline_s": plan.deadline_s,
                "error_budget": plan.error_budget,
                "multiplier": plan.multiplier,
                "predicted_error": plan.error,
                "predicted_energy_j": plan.total_energy_j,
                "start_sha256": self.model_sha256,
                "participants": len(assignments),
                "note": plan.note,
            },
        )
        for d in plan.devices:
            self.store.add_assignment(
                number,
                d.device_id,
                {
                    "mode": d.mode,
                    "bits": d.bits,
                    "freq_hz": d.freq_hz,
                    "local_steps": self.cfg.local_steps,
                    "predicted_energy_j": d.energy_j,
                    "predicted_compute_j": d.compute_energy_j,
                    "predicted_comm_j": d.comm_energy_j,
                    "predicted_time_s": d.time_s,
                },
            )
        for skipped, why in plan.excluded.items():
            self.store.event("excluded", why, device_id=skipped, round_no=number)
        template = template_of(self.params)
        with self._cond:
            self._round = OpenRound(
                number=number,
                scheme=self.cfg.scheme,
                deadline_unix=deadline_unix,
                assignments=assignments,
                aggregator=make_aggregator(
                    self.cfg.aggregation,
                    template,
                    RuleOptions(trim_fraction=self.cfg.trim_fraction),
                ),
            )
            self._cond.notify_all()
        fault_point("crash-after-open", number)
        log.info(
            "round %d open: %d devices, deadline %.1f s, %s",
            number,
            len(assignments),
            plan.deadline_s,
            plan.summary(),
        )
        return self._collect_and_close(number)

    def _collect_and_close(self, number: int) -> Dict[str, Any]:
        with self._cond:
            r = self._round
            assert r is not None
            r.close_reason = "the coordinator stopped"
            while not self._stopping.is_set():
                everyone = set(r.assignments)
                if r.accepted == everyone and r.reported >= everyone:
                    r.close_reason = "every update and report arrived"
                    break
                if self.clock() > r.deadline_unix:
                    r.close_reason = "its deadline passed"
                    break
                self._cond.wait(0.5)
            r.closed = True
            self._cond.notify_all()
            accepted = set(r.accepted)
            late = sorted(set(r.assignments) - accepted)
        if self._stopping.is_set():
            self._finalise(r)
            self.store.update_round(
                number,
                {"status": "aborted", "closed_at": self.clock(), "note": "coordinator stopped"},
            )
            self.spool.discard_round(number)
            return {"round": number, "status": "aborted"}
        for dev in late:
            self.store.set_assignment_status(number, dev, "late")
            self.store.event(
                "late",
                f"{dev} missed the deadline of round {number}",
                device_id=dev,
                round_no=number,
            )
        self._wait_reports(r, accepted)
        self._finalise(r)
        self.spool.discard_round(number)
        needed = max(1, math.ceil(self.cfg.min_fraction * len(r.assignments)))
        if len(accepted) < needed:
            self.store.update_round(
                number,
                {
                    "status": "failed",
                    "closed_at": self.clock(),
                    "arrived": len(accepted),
                    "note": f"only {len(accepted)} of {len(r.assignments)} updates arrived "
                    f"(needed {needed})",
                },
            )
            log.warning("round %d failed: %d of %d updates", number, len(accepted), needed)
            return {"round": number, "status": "failed", "arrived": len(accepted)}
        new_params, sq = r.aggregator.apply(self.params)
        quality = self.host.evaluate(new_params, seed=self.cfg.seed + number)
        ckpt = self._save_checkpoint(new_params, number)
        fault_point("crash-after-aggregate", number)
        self._set_model(new_params)
        self.last_update_sq_norm = sq
        if r.norms:
            self.median_norm = float(np.median(r.norms))
        self.store.update_round(
            number,
            {
                "status": "completed",
                "closed_at": self.clock(),
                "arrived": len(accepted),
                "result_sha256": self.model_sha256,
                "checkpoint_path": str(ckpt),
                "quality_fd": quality.get("fd"),
                "quality_floor": quality.get("floor"),
                "quality_noise": quality.get("noise"),
                "update_sq_norm": sq,
            },
        )
        for dev in accepted:
            refit_device(self.store, dev, self.cfg)
        log.info(
            "round %d completed: %d updates, FD %.3g",
            number,
            len(accepted),
            quality.get("fd", float("nan")),
        )
        return {"round": number, "status": "completed", "arrived": len(accepted), **quality}

    def _save_checkpoint(self, params: Dict[str, np.ndarray], number: int) -> Any:
        """Write the round's checkpoint; on failure fail the round and stop the run.

        The write itself is atomic (temp file + rename), so the previous checkpoint is never
        touched. On an OS error (disk full, read-only, permissions) the temp file is removed,
        the round is recorded as ``failed`` with the error, the global model is not advanced,
        and :class:`CheckpointFailed` stops the run: a full disk does not heal by itself, and
        ``serve`` with the same state dir resumes from the last good checkpoint once it does.
        """
        directory = self.cfg.state_dir / "checkpoints"
        try:
            return self.host.save_checkpoint(params, directory, number)
        except (OSError, RuntimeError) as e:  # torch's zip writer raises RuntimeError on ENOSPC
            for tmp in directory.glob(f"round-{number:04d}*.tmp"):
                tmp.unlink(missing_ok=True)
            try:
                free = f"{shutil.disk_usage(directory).free} bytes free there"
            except OSError:
                free = "free space unknown"
            why = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            msg = (
                f"round {number}: writing the checkpoint failed ({why}; {free}): the round is "
                "recorded as failed and the global model stays at the last completed round. "
                f"Free space in {directory} or fix it, then run `serve` again with the same "
                "state dir"
            )
            self.store.update_round(
                number, {"status": "failed", "closed_at": self.clock(), "note": msg}
            )
            self.store.event("checkpoint_failed", msg, round_no=number)
            log.error("%s", msg)
            raise CheckpointFailed(msg) from e

    def _finalise(self, r: OpenRound) -> None:
        """From here on the round's record is written: reports for it are refused."""
        with self._cond:
            r.final = True

    def _wait_reports(self, r: OpenRound, accepted: Set[str]) -> None:
        end = time.monotonic() + self.cfg.grace_s
        with self._cond:
            while not accepted <= r.reported and time.monotonic() < end:
                if self._stopping.is_set():
                    return
                self._cond.wait(0.2)
