"""The round engine: the coordinator's state machine, called by handlers and by the driver.

State that must survive a restart lives in the :class:`~coordinator.store.Store` and the
checkpoint files; what lives here is the open round (assignments, the running FedAvg sum,
uploads in flight), rebuilt from scratch after a restart (an open round found at start-up is
aborted and the agents are handed the next one).

Threads: gRPC worker threads call the public methods; one driver thread runs
:meth:`Engine.run` (the :class:`~coordinator.rounds.RoundDriver` half, in rounds.py). One
lock and one condition variable guard the in-memory round.

Test hook: :func:`coordinator.faults.fault_point` marks the phases of a round where
``GREENFED_FAULT`` can kill the process (fault-injection tests only).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Set

import numpy as np

from coordinator import validation
from coordinator.aggregation import template_of
from coordinator.config import CoordinatorConfig
from coordinator.errors import (
    DuplicateReport,
    DuplicateUpload,
    InvalidUpdate,
    NotAssigned,
    RevokedDevice,
    StaleRound,
    UnknownDevice,
)
from coordinator.events import EventLog
from coordinator.faults import fault_point
from coordinator.messages import Manifest, Registration, Report
from coordinator.model_host import ModelHost
from coordinator.round_state import FINISHED, OpenRound
from coordinator.rounds import RoundDriver
from coordinator.store import Store, pool_member_rows, registration_columns, report_columns
from coordinator.uploads import Spool
from greenfed import codec

log = logging.getLogger(__name__)


class Engine(RoundDriver):
    """Owns the global model and the open round."""

    def __init__(
        self,
        cfg: CoordinatorConfig,
        store: Store,
        host: ModelHost,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.host = host
        self.clock = clock
        self.spool = Spool(cfg.state_dir / "spool")
        self.events = EventLog(store)  # repeated events (refusals, registrations) counted
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._decode_slots = threading.BoundedSemaphore(cfg.max_concurrent_decodes)
        self._round: Optional[OpenRound] = None
        self._finished = False
        self._told_finished: Set[str] = set()
        self._stopping = threading.Event()
        self.params: Dict[str, np.ndarray] = {}
        self.model_frame = b""
        self.model_sha256 = ""
        self.last_update_sq_norm: Optional[float] = None
        self.median_norm: Optional[float] = None

    # ------------------------------------------------------------------ start-up / resume
    def resume(self) -> None:
        """Load the last completed checkpoint (or initialise) and abort rounds left open."""
        aborted = self.store.abort_open_rounds("coordinator restarted while the round was open")
        for r in aborted:
            self.spool.discard_round(r)
            self.store.event("round_aborted", f"round {r} aborted by a restart", round_no=r)
        last = self.store.last_completed_round()
        if last is not None and last["checkpoint_path"]:
            self.params = self.host.load_checkpoint(last["checkpoint_path"])
            self.last_update_sq_norm = last["update_sq_norm"]
            log.info("resumed from round %d (%s)", last["round"], last["checkpoint_path"])
        else:
            self.params = self.host.init_params(self.cfg.seed)
        self._set_model(self.params)

    def _set_model(self, params: Dict[str, np.ndarray]) -> None:
        enc = codec.encode(params, codec.CodecConfig(mode="fp32"))
        self.params = params
        self.model_frame = enc.frame
        self.model_sha256 = enc.sha256

    # ------------------------------------------------------------------ device-facing API
    def register(self, device_id: str, reg: Registration) -> None:
        row = self.store.get_device(device_id)
        if row is not None and row["revoked"]:
            raise RevokedDevice(f"device {device_id} is revoked; enrol it again to rejoin")
        if device_id in self.cfg.tls.revoked:
            raise RevokedDevice(f"device {device_id} is revoked by the coordinator's config")
        self.store.upsert_device(device_id, registration_columns(reg))
        self.events.record("register", f"device {device_id} registered", device_id=device_id)
        with self._cond:
            self._cond.notify_all()

    def check_device(self, device_id: str) -> None:
        """Refuse unknown and revoked devices (before reading anything they stream)."""
        self._known(device_id)

    def _known(self, device_id: str) -> Dict[str, Any]:
        row = self.store.get_device(device_id)
        if row is None:
            raise UnknownDevice(f"device {device_id!r} is not registered: call Register first")
        if row["revoked"] or device_id in self.cfg.tls.revoked:
            raise RevokedDevice(f"device {device_id} is revoked")
        return row

    def wait_assignment(
        self,
        device_id: str,
        last_round: int,
        timeout_s: float,
        alive: Callable[[], bool] = lambda: True,
    ) -> Optional[Any]:
        """The device's open assignment, None after ``timeout_s`` (WAIT) or as soon as
        ``alive()`` turns false (checked every second: the caller hung up), or FINISHED."""
        self._known(device_id)
        self.store.touch_device(device_id)
        end = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            while True:
                r = self._round
                if (
                    r is not None
                    and not r.closed
                    and device_id in r.assignments
                    and r.number > last_round
                    and device_id not in r.accepted
                ):
                    return r.assignments[device_id]
                if self._finished:
                    self._told_finished.add(device_id)
                    return FINISHED
                left = end - time.monotonic()
                if left <= 0 or self._stopping.is_set() or not alive():
                    return None
                self._cond.wait(min(left, 1.0))

    def model_for(self, device_id: str, round_no: int) -> bytes:
        self._known(device_id)
        with self._lock:
            r = self._round
            if r is None or r.number != round_no or r.closed:
                raise StaleRound(f"round {round_no} is not open")
            if device_id not in r.assignments:
                raise NotAssigned(f"device {device_id} has no part in round {round_no}")
            return self.model_frame

    def _check_upload_allowed(self, device_id: str, round_no: int) -> OpenRound:
        """The open round, if ``device_id`` may still upload for ``round_no``.

        An update already accepted is answered as such first, whatever became of the round
        since (closed early, completed, a later round open): resending it is never "late".
        """
        r = self._round
        if (r is not None and r.number == round_no and device_id in r.accepted) or (
            self.store.get_upload(round_no, device_id) is not None
        ):
            raise DuplicateUpload(
                f"an update from {device_id} for round {round_no} was accepted; nothing to resend"
            )
        if r is None or r.number != round_no:
            current = "none" if r is None else str(r.number)
            raise StaleRound(f"round {round_no} is not open (open round: {current})")
        if device_id not in r.assignments:
            raise NotAssigned(f"device {device_id} has no part in round {round_no}")
        if r.closed or self.clock() > r.deadline_unix:
            why = r.close_reason if r.closed else "its deadline passed"
            raise StaleRound(f"round {round_no} closed ({why}); the update was late")
        return r

    def upload_status(self, device_id: str, round_no: int, sha256: str) -> tuple:
        self._known(device_id)
        with self._lock:
            r = self._round
            if r is not None and r.number == round_no and device_id in r.accepted:
                return (0, True)
        up = self.store.get_upload(round_no, device_id)
        if up is not None:
            return (up["total_bytes"], True)
        return (self.spool.received(round_no, device_id, sha256), False)

    def _late_or_raise(self, device_id: str, round_no: int) -> None:
        """After a vanished spool file: the round closed while this upload streamed or waited
        (its spool was discarded). Raise StaleRound (late), not an internal error."""
        with self._lock:
            self._check_upload_allowed(device_id, round_no)

    def receive_upload(self, device_id: str, manifest: Manifest, chunks: Iterable[bytes]) -> int:
        """Spool, verify, decode and add an update; returns the bytes received.

        What the update must match was fixed when the round opened (the assignment): the codec
        mode and bits, checked in the manifest and again in the frame's own header, and the
        FedAvg weight, the device's local data size D_k as registered then (McMahan et al.;
        the same weight the allocator's error model used), never a number the upload declares
        or a registration made since.
        """
        self._known(device_id)
        with self._lock:
            r = self._check_upload_allowed(device_id, manifest.round)
            a = r.assignments[device_id]
        validation.check_manifest_assignment(manifest, a.mode, a.bits)
        try:
            path = self.spool.receive(manifest, device_id, chunks)
        except FileNotFoundError:
            self._late_or_raise(device_id, manifest.round)
            raise
        try:
            with self._decode_slots:
                try:
                    frame = path.read_bytes()
                except FileNotFoundError:  # the round closed while it waited for a slot
                    self._late_or_raise(device_id, manifest.round)
                    raise
                try:
                    info = codec.frame_info(frame)
                except codec.CodecError as e:
                    raise InvalidUpdate(f"update frame rejected by the codec: {e}") from e
                validation.check_frame_assignment(info, a.mode, a.bits, manifest.round)
                try:
                    update = codec.decode(
                        frame,
                        max_frame_bytes=self.cfg.max_update_bytes,
                        max_decoded_bytes=self._decoded_limit(),
                        template=template_of(self.params),
                        verified_sha256=manifest.sha256,  # Spool.receive hashed these bytes
                    )
                except codec.CodecError as e:
                    raise InvalidUpdate(f"update frame rejected by the codec: {e}") from e
                del frame
                with self._lock:
                    r = self._check_upload_allowed(device_id, manifest.round)
                    self._check_norm(update, r)
                    sq = r.aggregator.add(update, a.weight)
                    r.norms.append(math.sqrt(sq))
                    r.accepted.add(device_id)
                    self.store.record_upload(
                        manifest.round,
                        device_id,
                        manifest.sha256,
                        manifest.total_bytes,
                        manifest.samples,
                    )
                    self.store.set_assignment_status(manifest.round, device_id, "uploaded")
                    self._cond.notify_all()
                    fault_point("crash-after-upload", manifest.round)
        finally:
            path.unlink(missing_ok=True)
        return manifest.total_bytes

    def _decoded_limit(self) -> int:
        total = sum(int(v.nbytes) for v in self.params.values())
        return 2 * total + (1 << 20)

    def _check_norm(self, update: Mapping[str, np.ndarray], r: OpenRound) -> None:
        """Refuse an update whose L2 norm exceeds ``max_update_norm_ratio`` x the reference.

        The reference is the median norm of the last completed round's accepted updates; before
        any round completed (round 0, or after a restart) it is the median of the updates this
        round already accepted, so the very first update of a run is never refused.
        """
        ratio = self.cfg.max_update_norm_ratio
        reference = self.median_norm
        where = "recent updates"
        if reference is None and r.norms:
            reference = float(np.median(r.norms))
            where = "this round's accepted updates"
        if ratio <= 0 or reference is None or reference <= 0:
            return
        norm = math.sqrt(
            sum(
                float(np.sum(v.astype(np.float64) ** 2))
                for v in update.values()
                if v.dtype.kind == "f"
            )
        )
        if not math.isfinite(norm):
            return  # NaN/Inf values: the aggregator's check names the tensor
        if norm > ratio * reference:
            raise InvalidUpdate(
                f"update norm {norm:.3g} is {norm / reference:.1f}x the median of {where} "
                f"({reference:.3g}); refused (limit max_update_norm_ratio = {ratio}x)"
            )

    def _store_report(self, device_id: str, rep: Report) -> None:
        self.store.record_report(rep.round, device_id, report_columns(rep))
        if rep.pool is not None:  # a pool's members, each with its own windows
            self.store.record_pool_members(rep.round, device_id, pool_member_rows(rep))

    def record_report(self, device_id: str, rep: Report) -> None:
        """Record a device's one report of a round, while that round's record is not final.

        One truth per round: a second report for the same round is refused (ALREADY_EXISTS),
        and so is any report once the round's outcome is being written (completed, failed,
        aborted), so nothing a device sends later can rewrite a closed round. One exception
        that rewrites nothing: a device the round recorded as late may file its one report
        afterwards. Its energy was spent and its upload measured its link (the refit needs
        that most when a link sags); the round's status, arrivals and model stay as closed.
        """
        round_no = rep.round
        self._known(device_id)
        assigned = [a for a in self.store.assignments(round_no) if a["device_id"] == device_id]
        if not assigned:
            raise NotAssigned(f"device {device_id} had no part in round {round_no}")
        with self._cond:
            r = self._round
            if r is None or r.number != round_no or r.final:
                if assigned[0]["status"] == "late" and not self.store.has_report(
                    round_no, device_id
                ):
                    self._store_report(device_id, rep)
                    return
                row = self.store.get_round(round_no)
                status = row["status"] if row is not None and row["status"] != "open" else "closed"
                raise StaleRound(
                    f"round {round_no} is {status}: its record is final and takes no more reports"
                )
            if self.store.has_report(round_no, device_id):
                raise DuplicateReport(
                    f"a report from {device_id} for round {round_no} was recorded; a round's "
                    "report is sent once and is final"
                )
            self._store_report(device_id, rep)
            r.reported.add(device_id)
            self._cond.notify_all()
