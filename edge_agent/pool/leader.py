"""The leader's side of a pool: its gate, its members, and one round across them.

The leader is an ordinary agent (it registers, takes assignments, uploads) that also runs
the pool: members dial its gate and prove their membership (:mod:`.gate`); before each round
it pings them and plans with the ones that answer; a round opens a fresh process group on the
pool interface (a new store port, told only to the round's members), runs rank 0 itself and
collects every member's :class:`~edge_agent.pool.worker.MemberOutcome`.

A member that dies or stalls mid-round makes a collective fail or time out
(``pool.timeout_s``): the round raises :class:`~edge_agent.pool.errors.PoolRoundFailed`, the
group is torn down, members that do not report back in time are dropped (they rejoin by
dialling again), and the daemon uploads nothing for that round.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np

from edge_agent.sensing import NOMINAL_CLOCK_HZ, CalibrationProfile, ComputeClock, PowerMonitor
from edge_agent.training.base import LocalResult
from greenfed import __version__
from greenfed.pool import MemberSpec, PoolPlan

from .capability import require
from .comm import GroupSpec, close_group, interface_address, open_group, start_store
from .config import PoolConfig
from .errors import PoolRoundFailed
from .gate import ChannelClosed, Gate, GateTls, MemberConn
from .links import PROBE_BYTES, PROBE_MESSAGES, Link, fit, probe_links
from .meter import COMPUTE, EXCHANGE, PhaseMeter
from .worker import P2P, PIPELINING, MemberOutcome, RoundSpec, run_member_round

log = logging.getLogger(__name__)

PING_TIMEOUT_S = 5.0
REPLY_MARGIN_S = 15.0  # beyond pool.timeout_s, for a member to report a failed round


def data_digest(images: np.ndarray) -> str:
    """sha256 of the pool's images (every member must hold the same data set)."""
    h = hashlib.sha256(str(images.shape).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    return h.hexdigest()


@dataclass
class LeaderSelf:
    """What the leader brings as the pool's rank 0."""

    member_id: str
    profile: CalibrationProfile
    monitor: PowerMonitor
    cpu: ComputeClock
    memory_bytes: float
    num_threads: int = 1
    links: Dict[str, Link] = field(default_factory=dict)


def member_spec(
    member_id: str,
    profile: Mapping[str, Any],
    memory_bytes: float,
    link: Link,
    leader_cps: float,
) -> MemberSpec:
    """A member as the planner sees it, from its calibration profile and measured link."""
    steps = [float(f) for f in profile.get("f_steps_hz") or () if float(f) > 0]
    top = float(profile.get("f_max_hz") or 0.0) or max(steps, default=0.0) or 1e9
    low = float(profile.get("f_min_hz") or 0.0) or min(steps, default=0.0) or top
    steps = sorted(s for s in steps if low <= s <= top) or sorted({low, top})
    cps = float(profile.get("cycles_per_sample") or 0.0)
    return MemberSpec(
        id=member_id,
        kappa=max(float(profile.get("kappa") or 0.0), 1e-40),
        f_steps_hz=tuple(steps),
        memory_bytes=max(memory_bytes, 1.0),
        link_bytes_per_s=link.bytes_per_s,
        link_energy_per_byte_j=max(link.energy_per_byte_j, 0.0),
        link_latency_s=link.latency_s,
        link_energy_per_message_j=link.energy_per_message_j,
        speed_scale=cps / leader_cps if cps > 0 and leader_cps > 0 else 1.0,
    )


class PoolLeader:
    """The gate and the rounds of one pool (see the module docstring)."""

    def __init__(
        self,
        cfg: PoolConfig,
        me: LeaderSelf,
        images: np.ndarray,
        tls: Optional[GateTls],
    ) -> None:
        self.capability = require()
        self.cfg = cfg
        self.me = me
        self.images = images
        self.digest = data_digest(images)
        self._layers: Dict[str, List[Any]] = {}
        self.host = interface_address(cfg.interface)
        self.gate = Gate(
            self.host, cfg.gate_port, cfg.members, cfg.revoked, tls, self._check, cfg.insecure
        )
        log.info(
            "pool gate on %s:%d (%s) for members %s; %s",
            self.host,
            self.gate.port,
            "TLS" if tls is not None else "no TLS",
            ", ".join(cfg.members) or "none",
            self.capability.summary(),
        )

    # ------------------------------------------------------------------ membership
    def _check(self, member_id: str, hello: Mapping[str, Any]) -> str:
        if hello.get("version") != __version__:
            return (
                f"greenfed {hello.get('version')!r} on the member, {__version__} on the "
                "leader: install the same version on both"
            )
        if not hello.get("distributed_ok"):
            return f"the member cannot run torch.distributed: {hello.get('distributed_reason')}"
        if hello.get("data_sha256") != self.digest:
            return (
                "the member's data set differs from the leader's (every member holds the "
                "pool's images: copy the same data to it)"
            )
        return ""

    def wait_members(self) -> List[MemberConn]:
        want = len(self.cfg.members)
        conns = self.gate.wait_for(want, self.cfg.wait_members_s)
        if len(conns) < want:
            missing = sorted(set(self.cfg.members) - {c.id for c in conns})
            log.warning(
                "pool: %d of %d members joined within %.0f s (missing: %s)",
                len(conns),
                want,
                self.cfg.wait_members_s,
                ", ".join(missing),
            )
        return conns

    def live(self) -> List[MemberConn]:
        """The joined members that answer a ping now (the others are dropped)."""
        alive = []
        for conn in self.gate.joined():
            try:
                reply = conn.request({"type": "ping"}, PING_TIMEOUT_S)
                if reply.get("type") == "pong":
                    alive.append(conn)
                    continue
            except (ChannelClosed, TimeoutError, ValueError) as e:
                log.warning("pool: member %s does not answer (%s): dropped", conn.id, e)
            self.gate.drop(conn.id)
        return alive

    def specs(self, conns: List[MemberConn]) -> List[MemberSpec]:
        """The leader and ``conns`` as the planner sees them (the leader first)."""
        me = self.me
        cps = float(me.profile.cycles_per_sample or 0.0)
        out = [
            member_spec(
                me.member_id,
                me.profile.to_dict(),
                me.memory_bytes,
                me.links.get(me.member_id, Link()),
                cps,
            )
        ]
        for c in conns:
            out.append(
                member_spec(
                    c.id,
                    c.hello.get("profile") or {},
                    float(c.hello.get("memory_bytes") or 1.0),
                    me.links.get(c.id, Link()),
                    cps,
                )
            )
        return out

    # ------------------------------------------------------------------ rounds
    def _group(self, conns: List[MemberConn], message: Dict[str, Any]) -> Tuple[Any, GroupSpec]:
        """A fresh store on the pool interface; every member in ``conns`` is told its rank."""
        world = len(conns) + 1
        store, port = start_store(self.host, world, self.cfg.timeout_s)
        for rank, conn in enumerate(conns, 1):
            group = {
                "host": self.host,
                "port": port,
                "rank": rank,
                "world_size": world,
                "timeout_s": self.cfg.timeout_s,
            }
            try:
                conn.send({**message, "group": group})
            except ChannelClosed as e:
                self.gate.drop(conn.id)
                raise PoolRoundFailed(f"member {conn.id} left before the round: {e}") from e
        spec = GroupSpec(self.host, port, 0, world, self.cfg.timeout_s, self.cfg.interface)
        return store, spec

    def _replies(self, conns: List[MemberConn]) -> Tuple[List[Dict[str, Any]], List[str]]:
        """Each member's reply to the round (their results, and what went wrong)."""
        deadline = time.monotonic() + self.cfg.timeout_s + REPLY_MARGIN_S
        results, problems = [], []
        for conn in conns:
            try:
                reply = conn.recv(max(0.1, deadline - time.monotonic()))
            except (ChannelClosed, TimeoutError) as e:
                problems.append(f"member {conn.id}: no report ({e})")
                self.gate.drop(conn.id)
                continue
            if reply.get("type") == "result":
                results.append(reply)
            else:
                problems.append(f"member {conn.id}: {reply.get('reason', reply.get('type'))}")
        return results, problems

    def run_round(
        self,
        spec: RoundSpec,
        conns: List[MemberConn],
        global_arrays: Mapping[str, np.ndarray],
    ) -> Tuple[List[MemberOutcome], Dict[str, np.ndarray]]:
        """Rank 0's part and the members' (``conns``, in rank order) of one round."""
        failure: Optional[BaseException] = None
        outcome0: Optional[MemberOutcome] = None
        trained: Optional[Dict[str, np.ndarray]] = None
        store, group = self._group(conns, {"type": "round", "spec": spec.to_dict()})
        try:
            open_group(group, store)
            outcome0, trained = run_member_round(
                spec, 0, self.images, PhaseMeter(self.me.monitor), global_arrays, self.me.cpu
            )
        except PoolRoundFailed as e:
            failure = e
        finally:
            close_group()
            del store
        results, problems = self._replies(conns)
        if failure is not None or problems or outcome0 is None or trained is None:
            why = "; ".join([str(failure)] * (failure is not None) + problems)
            raise PoolRoundFailed(f"pool round {spec.round_id} failed: {why}") from failure
        outcomes = [outcome0] + [MemberOutcome.from_dict(r["outcome"]) for r in results]
        return outcomes, trained

    def _probe_pass(
        self, conns: List[MemberConn], nbytes: int, count: int
    ) -> Tuple[Dict[int, float], Dict[int, float], float]:
        """One probe over a fresh group: seconds and dynamic energy per member rank, and the
        leader's dynamic energy."""
        meter = PhaseMeter(self.me.monitor)
        message = {"type": "probe", "bytes": nbytes, "count": count}
        store, group = self._group(conns, message)
        try:
            open_group(group, store)
            seconds = probe_links(0, group.world_size, meter, nbytes, count)
        finally:
            close_group()
            del store
        results, problems = self._replies(conns)
        if problems:
            raise PoolRoundFailed("link probe failed: " + "; ".join(problems))
        energy: Dict[int, float] = {}
        for r in results:
            out = MemberOutcome.from_dict(r["outcome"])
            w = out.window(EXCHANGE)
            energy[out.rank] = float(w.dynamic_energy_j or 0.0) if w is not None else 0.0
        w0 = next((w for w in meter.windows() if w.name == EXCHANGE), None)
        return seconds, energy, float(w0.dynamic_energy_j or 0.0) if w0 is not None else 0.0

    def probe(self, conns: List[MemberConn]) -> Dict[str, Link]:
        """Measure every member's link and the leader's (:mod:`.links`); the results feed
        the planner from then on."""
        bulk = self._probe_pass(conns, PROBE_BYTES, 1)
        small = self._probe_pass(conns, 4, PROBE_MESSAGES)
        links: Dict[str, Link] = {}
        for rank, conn in enumerate(conns, 1):
            links[conn.id] = fit(
                bulk[0].get(rank, 0.0), small[0].get(rank, 0.0), bulk[1].get(rank, 0.0),
                small[1].get(rank, 0.0), PROBE_BYTES, PROBE_MESSAGES,
            )  # fmt: skip
        if conns:
            links[self.me.member_id] = fit(
                sum(bulk[0].values()), sum(small[0].values()), bulk[2], small[2],
                PROBE_BYTES, PROBE_MESSAGES, trips=len(conns),
            )  # fmt: skip
        self.me.links.update(links)
        return links

    def layer_profiles(self, config: Any) -> List[Any]:
        """The leader's measured layer profile of a UNet configuration (measured once)."""
        from .profiling import measure_profiles

        key = json.dumps(config.to_dict(), sort_keys=True)
        if key not in self._layers:
            self._layers[key] = measure_profiles(
                config, self.reference_hz(), num_threads=self.me.num_threads
            )
        return self._layers[key]

    def reference_hz(self) -> float:
        """The clock the leader's layer profile is measured at (its cycles' unit)."""
        return float(self.me.cpu.read().freq_hz or NOMINAL_CLOCK_HZ)

    def engine_for(self, plan: PoolPlan, batch_size: int) -> str:
        """The pipeline engine: torch.distributed.pipelining where present, asked for and
        usable (it needs equal micro-batches), else point-to-point GPipe."""
        wanted = self.cfg.engine in ("auto", PIPELINING)
        usable = self.capability.pipelining and batch_size % max(plan.micro_batches, 1) == 0
        if self.cfg.engine == PIPELINING and not usable:
            log.warning(
                "pool.engine = pipelining, but %s: point-to-point GPipe instead",
                "this torch lacks torch.distributed.pipelining"
                if not self.capability.pipelining
                else f"batch {batch_size} does not split into {plan.micro_batches} equal parts",
            )
        return PIPELINING if wanted and usable else P2P

    def train_alone(
        self, freq_hz: float, train: Callable[[], LocalResult]
    ) -> Tuple[MemberOutcome, LocalResult]:
        """A single-board round on the leader (``train()``), at ``freq_hz`` where DVFS
        allows, its windows measured as a member's."""
        meter = PhaseMeter(self.me.monitor)
        dvfs = self.me.cpu.apply(freq_hz) if freq_hz > 0 else None
        meter.switch(COMPUTE)
        try:
            result = train()
        finally:
            meter.stop()
            if dvfs is not None and dvfs.applied:
                self.me.cpu.restore()
        outcome = MemberOutcome(
            member_id=self.me.member_id,
            rank=0,
            windows=[w.to_dict() for w in meter.windows()],
            seconds=dict(meter.seconds),
            bytes_sent=0,
            bytes_received=0,
            steps=int(result.steps),
            samples=int(result.samples),
            units=(0, 0),
            freq_hz=float((dvfs.freq_hz if dvfs is not None else 0.0) or 0.0),
            dvfs_applied=bool(dvfs.applied) if dvfs is not None else False,
            dvfs_reason=dvfs.reason if dvfs is not None else "no clock requested",
            losses=list(result.losses),
            stopped_early=bool(result.stopped_early),
            cpu_seconds=dict(meter.cpu_seconds),
        )
        return outcome, result

    def close(self) -> None:
        self.gate.close()
