"""``greenfed-agent pool-study``: each parallelism on the same work, predicted vs measured.

On one machine, with real processes: this process leads a pool whose members are
``greenfed-agent pool-member`` processes on loopback (gloo), every member measured by the
per-process estimated source (:mod:`.shared_host`). The study

1. waits for the members and probes their links (rate and energy per byte, measured);
2. measures the leader's layer profile twice: in wall-clock seconds (what the step time
   follows) and in CPU seconds (what the per-process power model charges);
3. for each structure (single board; data parallel over every member; the fastest pipeline
   over every member, its cuts from the planner's dynamic programme under the tightest
   deadline it can meet) predicts the step time (wall profile) and each member's dynamic
   energy and bytes (CPU profile, probed links) with :mod:`greenfed.pool.model`;
4. runs it: a warm-up round, then a measured round of ``steps`` steps of the same batches;
5. writes ``results.json``, ``report.md`` and ``pool-study.png`` (:mod:`.study_report`).

The members share this machine's cores: the times say nothing of the speed-up separate
boards would give (the report says so); what is checked is the model against measurement.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from edge_agent.sensing import (
    CalibrationProfile,
    CpuFreq,
    PowerMonitor,
    SensingConfig,
)
from edge_agent.training.base import LocalPlan
from edge_agent.training.full import FullModelTraining
from greenfed.pool import (
    DATA,
    KINDS,
    PIPELINE,
    SINGLE,
    LayerProfile,
    LayerSums,
    MemberSpec,
    PoolPlan,
    PoolWork,
    best_cuts,
    evaluate_data,
    evaluate_pipeline,
    evaluate_single,
)

from .config import PoolConfig
from .leader import LeaderSelf, PoolLeader
from .links import Link
from .member import available_memory_bytes
from .shared_host import ProcessShareSource
from .worker import P2P, MemberOutcome, RoundSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyConfig:
    """What to study (the command's flags)."""

    out: Path
    members: int = 2  # processes in the pool, the leader included
    steps: int = 30
    warmup_steps: int = 3
    batch_size: int = 64
    preset: str = "pi-small"
    data: str = "digits:split=train"
    kinds: Tuple[str, ...] = KINDS
    micro_batches: int = 4
    engine: str = "auto"
    timeout_s: float = 120.0
    host_cores: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.members <= 8:
            raise ValueError("members must be in 2..8 (the leader included)")
        if self.steps < 1 or self.warmup_steps < 0 or self.batch_size < self.members:
            raise ValueError("steps >= 1, warmup_steps >= 0, batch_size >= members")
        unknown = set(self.kinds) - set(KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"kinds: choose among {', '.join(KINDS)}")


@dataclass
class Case:
    """One structure: its plans (energy from CPU seconds; time from CPU seconds at the CPU
    share measured just before its run) and what its measured round gave."""

    kind: str
    label: str
    engine: str
    time_plan: PoolPlan
    energy_plan: PoolPlan
    outcomes: List[MemberOutcome] = field(default_factory=list)
    wall_s: float = 0.0
    steps: int = 0
    sharing: Dict[str, float] = field(default_factory=dict)  # measured just before its run


@dataclass
class Study:
    config: StudyConfig
    machine: Dict[str, Any]
    links: Dict[str, Dict[str, Any]]
    cases: List[Case]
    power_model: str


def member_profile(source: ProcessShareSource, freq_hz: float) -> CalibrationProfile:
    """The profile a study member registers with: the per-process model's own figures."""
    dyn = (source.board.max_w - source.board.idle_w) / source.cores
    return CalibrationProfile(
        idle_power_w=source.board.idle_w,
        kappa=dyn / freq_hz**3,
        cycles_per_sample=None,
        uplink_bytes_per_s=None,
        energy_per_byte_j=None,
        f_min_hz=freq_hz,
        f_max_hz=freq_hz,
        f_steps_hz=[freq_hz],
        source=source.name,
        scope=source.scope,
        estimated=True,
        workload="pool-study: the per-process estimated model's constants, not measured",
        clock="nominal",
    )


def spawn_members(
    n: int, port: int, cfg: StudyConfig, profile: Path, state: Path
) -> List[subprocess.Popen]:
    procs = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for i in range(1, n):
        name = f"m{i}"
        cmd = [sys.executable, "-m", "edge_agent.cli", "pool-member"]
        cmd += ["--leader", f"127.0.0.1:{port}", "--member-id", name, "--data", cfg.data]
        cmd += ["--state-dir", str(state / name), "--profile", str(profile)]
        cmd += ["--threads", "1", "--shared-host"]
        with open(state / f"{name}.log", "ab") as logf:  # the child keeps its copy
            procs.append(subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env))
    return procs


def specs(
    ids: Sequence[str], kappa: float, freq_hz: float, links: Dict[str, Link]
) -> List[MemberSpec]:
    return [
        MemberSpec(
            id=i,
            kappa=kappa,
            f_steps_hz=(freq_hz,),
            memory_bytes=1e12,
            link_bytes_per_s=links[i].bytes_per_s,
            link_energy_per_byte_j=links[i].energy_per_byte_j,
            link_latency_s=links[i].latency_s,
            link_energy_per_message_j=links[i].energy_per_message_j,
        )
        for i in ids
    ]


def fastest_cuts(
    sums: LayerSums, members: List[MemberSpec], work: PoolWork, micro: int
) -> List[int]:
    """The planner's cuts under the tightest deadline it can meet (the balanced pipeline)."""
    lo, hi = 1e-6, work.deadline_s
    best = best_cuts(sums, members, work, micro)
    if best is None:
        raise ValueError("no pipeline split fits these members")
    for _ in range(60):
        mid = (lo * hi) ** 0.5
        found = best_cuts(sums, members, PoolWork(work.batch_size, work.steps, mid), micro)
        if found is None:
            lo = mid
        else:
            hi, best = mid, found
    return best


# One busy process measured at this share of a core or more had a whole core: the rest is the
# measurement's own noise (interrupts, the interpreter's threads), 0.98-0.99 on a quiet host;
# another session taking cores shows as far less.
WHOLE_CORE = 0.95


@dataclass(frozen=True)
class Sharing:
    """Processes sharing this host's cores. The study's processes are one session; with the
    kernel's autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``) the CPU is
    first shared between sessions, so the study's busy processes split what its session
    gets, which one busy process's measured share tells (``share_alone``). Without autogroup
    a busy process gets ``cores / (busy + background)`` (processor sharing), the background
    load estimated from the same measurement. Either way at most one core each."""

    cores: int
    background: float
    share_alone: float
    autogroup: bool
    # Speed of one busy process while n processes train at once on their own cores, against
    # alone (n = 1, 2, ...; measured by concurrent_speed): cores that share caches, memory
    # bandwidth or a physical core (SMT) are slower together though each gets a whole core.
    speed: Tuple[float, ...] = (1.0,)

    @classmethod
    def measured(cls, cores: int, share_alone: float, speed: Tuple[float, ...] = (1.0,)) -> Sharing:
        share = min(max(share_alone, 1e-3), 1.0)
        background = max(0.0, cores / share - 1.0) if share < WHOLE_CORE else 0.0
        return cls(cores, background, share, autogroup_enabled(), tuple(speed))

    def share(self, busy: float) -> float:
        """The core-equivalents of speed each of ``busy`` busy processes gets."""
        busy = max(busy, 1.0)
        if self.autogroup:
            session = self.share_alone if self.share_alone < WHOLE_CORE else float(self.cores)
            time_share = min(1.0, session / busy)
        else:
            time_share = min(1.0, self.cores / (busy + self.background))
        return time_share * self.together(min(busy, float(self.cores)))

    def together(self, running: float) -> float:
        """Speed of each of ``running`` processes on their own cores (interpolated between
        the measured counts; the last measured count's speed beyond them)."""
        at = min(max(running, 1.0), float(len(self.speed)))
        lo = int(at)
        if lo >= len(self.speed):
            return self.speed[-1]
        frac = at - lo
        return self.speed[lo - 1] * (1.0 - frac) + self.speed[lo] * frac


def autogroup_enabled() -> bool:
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return False


def scaled(layers: List[LayerProfile], factor: float) -> List[LayerProfile]:
    """Layers whose cycles take ``factor`` times as long (a CPU share of 1/factor)."""
    return [
        replace(
            lp,
            cycles_per_sample=lp.cycles_per_sample * factor,
            cycles_per_call=lp.cycles_per_call * factor,
            update_cycles=lp.update_cycles * factor,
        )
        for lp in layers
    ]


def plan_cases(
    cfg: StudyConfig, cpu: List[LayerProfile], members: List[MemberSpec], engine: str,
    sharing: Sharing,
) -> List[Case]:  # fmt: skip
    """Every structure with its energy plan (CPU-time profile, probed links); a pipeline's
    cuts are the fastest ones at the CPU share of all its stages busy."""
    work = PoolWork(cfg.batch_size, cfg.steps, 1e6)
    se = LayerSums(cpu)
    cases = []
    if SINGLE in cfg.kinds:
        e = evaluate_single(se, members[0], work)
        cases.append(Case(SINGLE, "single", "local", e, e))
    if DATA in cfg.kinds:
        e = evaluate_data(se, members, work)
        cases.append(Case(DATA, e.label, "all-reduce", e, e))
    if PIPELINE in cfg.kinds:
        m = min(cfg.micro_batches, cfg.batch_size)
        shared = LayerSums(scaled(cpu, 1.0 / sharing.share(len(members))))
        bounds = fastest_cuts(shared, members, work, m)
        e = evaluate_pipeline(se, members, work, bounds, m)
        cases.append(Case(PIPELINE, e.label, engine if cfg.batch_size % m == 0 else P2P, e, e))
    return cases


def time_plan(
    case: Case, cfg: StudyConfig, cpu: List[LayerProfile], members: List[MemberSpec],
    sharing: Sharing,
) -> PoolPlan:  # fmt: skip
    """The case's time prediction: its structure at the CPU share its busy processes get.
    A pipeline's members are not all busy all the time (transfers, its bubble): the number of
    busy processes is their CPU time over the round's time at full speed. Data-parallel
    replicas compute in lockstep, so all of them are busy while any computes."""
    work = PoolWork(cfg.batch_size, cfg.steps, 1e6)
    full_speed = case.energy_plan
    cpu_s = sum(p.compute_time_s for p in full_speed.members)
    busy = cpu_s / max(full_speed.round_time_s, 1e-12)
    if case.kind == DATA:  # replicas compute in lockstep: all of them at once, then exchange
        busy = float(len(full_speed.members))
    sums = LayerSums(scaled(cpu, 1.0 / sharing.share(busy)))
    if case.kind == SINGLE:
        return evaluate_single(sums, members[0], work)
    if case.kind == DATA:
        return evaluate_data(sums, members, work)
    plan = case.energy_plan
    bounds = [p.units[0] for p in plan.members] + [plan.members[-1].units[1]]
    return evaluate_pipeline(sums, members, work, bounds, plan.micro_batches)


_BUSY_LOOP = """
import sys, torch
from greenfed import ddpm
torch.set_num_threads(1)
cfg = ddpm.UNetConfig.from_dict(__import__("json").loads(sys.argv[1]))
model = ddpm.build_model(cfg)
x = torch.randn(int(sys.argv[2]), cfg.in_channels, cfg.image_size, cfg.image_size)
t = torch.randint(0, 1000, (int(sys.argv[2]),))
model(x, t).square().mean().backward()
print("ready", flush=True)
import select
while not select.select([sys.stdin], [], [], 0)[0]:
    model(x, t).square().mean().backward()
"""


def _timed_training(unet_cfg: Any, batch: int, repeats: int) -> Tuple[float, float]:
    """CPU and wall seconds of ``repeats`` training steps in this process (after 3 warm-up
    steps)."""
    import torch

    from greenfed import ddpm

    model = ddpm.build_model(unet_cfg)
    x = torch.randn(batch, unet_cfg.in_channels, unet_cfg.image_size, unet_cfg.image_size)
    t = torch.randint(0, 1000, (batch,))
    for _ in range(3):
        model(x, t).square().mean().backward()
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        model(x, t).square().mean().backward()
    return time.process_time() - c0, max(time.perf_counter() - w0, 1e-9)


def _steps_per_s(unet_cfg: Any, batch: int, repeats: int) -> float:
    return repeats / _timed_training(unet_cfg, batch, repeats)[1]


def concurrent_speed(unet_cfg: Any, batch: int, most: int, repeats: int = 20) -> Tuple[float, ...]:
    """Steps/s of this process (one thread) while ``n - 1`` others run the same training
    loop, over its steps/s alone, for n = 1..``most``: what sharing caches, memory bandwidth
    or a physical core costs processes that each have a core of their own."""
    import json

    import torch

    torch.set_num_threads(1)
    alone = _steps_per_s(unet_cfg, batch, repeats)
    out = [1.0]
    for n in range(2, most + 1):
        helpers = [
            subprocess.Popen(
                [sys.executable, "-c", _BUSY_LOOP, json.dumps(unet_cfg.to_dict()), str(batch)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            for _ in range(n - 1)
        ]
        try:
            for h in helpers:  # each has built its model and is training
                assert h.stdout is not None
                h.stdout.readline()
            out.append(min(1.0, _steps_per_s(unet_cfg, batch, repeats) / alone))
        finally:
            for h in helpers:
                assert h.stdin is not None
                h.stdin.close()
                h.wait(timeout=30)
    return tuple(out)


def cpu_share_alone(unet_cfg: Any, batch: int, repeats: int = 20) -> float:
    """CPU seconds / wall seconds of one busy process training (this process, alone)."""
    cpu_s, wall_s = _timed_training(unet_cfg, batch, repeats)
    return cpu_s / wall_s


def run_study(cfg: StudyConfig) -> Study:
    """Run every case of the study (see the module docstring)."""
    from greenfed import ddpm

    from .study_report import machine_facts

    facts_before = machine_facts()
    images = ddpm.load_data(cfg.data).images
    unet_cfg = ddpm.preset(cfg.preset, in_channels=images.shape[1], image_size=images.shape[2])
    model_config = {"unet": unet_cfg.to_dict(), "schedule": ddpm.ScheduleConfig().to_dict()}
    sensing = SensingConfig()
    source = ProcessShareSource.for_host(sensing, cfg.host_cores)
    cpu = CpuFreq()
    f_ref = float(cpu.read().freq_hz or 1e9)
    own = member_profile(source, f_ref)
    monitor = PowerMonitor(source, cpu, sensing, idle_power_w=source.board.idle_w)
    monitor.start()
    ids = ["leader"] + [f"m{i}" for i in range(1, cfg.members)]
    pool_cfg = PoolConfig(
        members=ids[1:], interface="lo", gate_port=0, shared_host=True,
        timeout_s=cfg.timeout_s, engine=cfg.engine, wait_members_s=cfg.timeout_s,
    )  # fmt: skip
    me = LeaderSelf("leader", own, monitor, cpu, available_memory_bytes(0.0), 1)
    leader = PoolLeader(pool_cfg, me, images, None)
    state = Path(tempfile.mkdtemp(prefix="pool-study-"))
    profile_path = state / "member-profile.json"
    own.save(profile_path)
    procs = spawn_members(cfg.members, leader.gate.port, cfg, profile_path, state)
    try:
        conns = leader.wait_members()
        if len(conns) != cfg.members - 1:
            raise RuntimeError(
                f"only {len(conns)} of {cfg.members - 1} members joined; see {state}"
            )
        links = leader.probe(conns)
        import torch

        torch.set_num_threads(1)
        from .profiling import measure_profiles

        cpu_layers = measure_profiles(unet_cfg, f_ref, num_threads=1, timer=time.process_time)
        cores = os.cpu_count() or 1
        speed = concurrent_speed(unet_cfg, cfg.batch_size, min(cfg.members, cores))
        sharing = Sharing.measured(cores, cpu_share_alone(unet_cfg, cfg.batch_size), speed)
        engine = leader.engine_for(_micro_plan(cfg), cfg.batch_size)
        members = specs(ids, own.kappa or 0.0, f_ref, links)
        cases = plan_cases(cfg, cpu_layers, members, engine, sharing)
        start = ddpm.get_state_arrays(ddpm.build_model(unet_cfg, seed=cfg.seed))
        for case in cases:
            for steps, measured in ((cfg.warmup_steps, False), (cfg.steps, True)):
                if steps == 0:
                    continue
                log.info(
                    "pool-study: %s, %d steps%s",
                    case.label,
                    steps,
                    "" if measured else " (warm-up)",
                )
                if measured:  # the host's other load, just before the measured round
                    alone = cpu_share_alone(unet_cfg, cfg.batch_size)
                    now = Sharing.measured(sharing.cores, alone, sharing.speed)
                    case.time_plan = time_plan(case, cfg, cpu_layers, members, now)
                    case.sharing = dict(now.__dict__)
                outcomes, wall_s = _run_case(leader, conns, case, cfg, steps, model_config, start)
                if measured:
                    case.outcomes, case.wall_s, case.steps = outcomes, wall_s, steps
    finally:
        leader.close()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        monitor.stop()
    machine = {
        "before": facts_before,
        "after": machine_facts(),
        "member_logs": str(state),
        "sharing": sharing.__dict__,
    }
    link_table = {k: v.__dict__ for k, v in links.items()}
    return Study(cfg, machine, link_table, cases, source.scope)


def _micro_plan(cfg: StudyConfig) -> PoolPlan:
    return PoolPlan(PIPELINE, (), min(cfg.micro_batches, cfg.batch_size), 0.0, 0.0, True)


def _run_case(
    leader: PoolLeader, conns: List[Any], case: Case, cfg: StudyConfig, steps: int,
    model_config: Dict[str, Any], start: Dict[str, Any],
) -> Tuple[List[MemberOutcome], float]:  # fmt: skip
    plan = LocalPlan(steps, cfg.batch_size, 2e-3, cfg.seed, 1e9, 1)
    t0 = time.monotonic()
    if case.kind == SINGLE:
        alone = FullModelTraining(model_config, leader.images)
        alone.load_global(start)
        outcome, _ = leader.train_alone(0.0, lambda: alone.train(plan))
        return [outcome], time.monotonic() - t0
    members = case.time_plan.members
    pipeline = case.kind == PIPELINE
    spec = RoundSpec(
        round_id=f"study-{case.kind}-{steps}",
        kind=case.kind,
        members=[m.id for m in members],
        model_config=model_config,
        steps=steps,
        batch_size=cfg.batch_size,
        lr=2e-3,
        seed=cfg.seed,
        max_seconds=None,
        bounds=[m.units[0] for m in members] + [members[-1].units[1]] if pipeline else [],
        micro_batches=case.time_plan.micro_batches,
        engine=case.engine if pipeline else P2P,
        freq_hz=[0.0] * len(members),
        num_threads=1,
    )
    by_id = {c.id: c for c in conns}
    outcomes, _ = leader.run_round(spec, [by_id[m.id] for m in members[1:]], start)
    return outcomes, time.monotonic() - t0
