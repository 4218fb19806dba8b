"""One member's round: weights in, the engine's steps, weights back, its measurements out.

Run on every rank of the round's process group (the leader is rank 0). The leader hands out
the round's starting weights (a broadcast for data parallel; each stage its own slice for a
pipeline) and, for a pipeline, collects the trained slices at the end; all of it is counted as
"exchange". What comes back from each member is a :class:`MemberOutcome`: its measured
windows, the time of each phase, the bytes it moved and the clock it ran at.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from edge_agent.sensing import ComputeClock, WindowResult
from greenfed.ddpm.checkpoint import get_state_arrays, set_state_arrays
from greenfed.ddpm.schedule import NoiseSchedule, ScheduleConfig
from greenfed.ddpm.train import images_to_tensor
from greenfed.ddpm.unet import UNet, UNetConfig, build_model
from greenfed.pool import DATA, PIPELINE

from .batches import SharedBatches, split_rows
from .comm import Comm
from .engines import DataParallel, Engine, PipelineP2P, Pipelining, StepConfig
from .errors import PoolRoundFailed
from .meter import COMPUTE, PhaseMeter
from .stages import UNetStage, carry_shapes

log = logging.getLogger(__name__)

P2P = "p2p"
PIPELINING = "pipelining"


@dataclass
class RoundSpec:
    """What the leader tells every member about the round (sent as JSON)."""

    round_id: str
    kind: str  # DATA or PIPELINE (a single-board round involves no member)
    members: List[str]  # member ids in rank order; the leader is rank 0
    model_config: Dict[str, Any]  # {"unet": ..., "schedule": ...} as the coordinator sent it
    steps: int
    batch_size: int
    lr: float
    seed: int
    max_seconds: Optional[float] = None
    grad_clip: Optional[float] = 1.0
    bounds: List[int] = field(default_factory=list)  # pipeline: units of stage s
    micro_batches: int = 1
    engine: str = P2P  # pipeline engine: P2P or PIPELINING
    freq_hz: List[float] = field(default_factory=list)  # per rank; 0: leave the clock
    num_threads: int = 1

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RoundSpec:
        return cls(**dict(d))

    @property
    def world_size(self) -> int:
        return len(self.members)

    def step_config(self) -> StepConfig:
        return StepConfig(
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            grad_clip=self.grad_clip,
            max_seconds=self.max_seconds,
        )


@dataclass
class MemberOutcome:
    """One member's figures for the round (windows are measured by its own source)."""

    member_id: str
    rank: int
    windows: List[Dict[str, Any]]  # WindowResult.to_dict() of "compute" and "exchange"
    seconds: Dict[str, float]  # exact time per phase
    bytes_sent: int
    bytes_received: int
    steps: int
    samples: int
    units: Tuple[int, int]
    freq_hz: float  # the clock it ran at (0: unknown)
    dvfs_applied: bool = False
    dvfs_reason: str = ""
    merged_s: float = 0.0
    losses: List[float] = field(default_factory=list)
    stopped_early: bool = False
    cpu_seconds: Dict[str, float] = field(default_factory=dict)  # this process's, per phase

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MemberOutcome:
        values = dict(d)
        values["units"] = tuple(values.get("units") or (0, 0))
        return cls(**values)

    def window(self, name: str) -> Optional[WindowResult]:
        for w in self.windows:
            if w.get("name") == name:
                return WindowResult(**w)
        return None


def build_parts(spec: RoundSpec, rank: int) -> Tuple[Optional[UNet], Optional[UNetStage]]:
    """This rank's model: the full UNet (the leader, and every data-parallel replica) and,
    in a pipeline, its stage; a pipeline member keeps only its stage's modules."""
    unet = build_model(UNetConfig.from_dict(spec.model_config["unet"]))
    if spec.kind != PIPELINE:
        return unet, None
    stage = UNetStage(unet, spec.bounds[rank], spec.bounds[rank + 1])
    return (unet if rank == 0 else None), stage


def _flat(params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def _unflat(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            p.copy_(flat[offset : offset + n].view_as(p))
            offset += n


def _stage_params(unet: UNet, spec: RoundSpec, s: int) -> List[torch.Tensor]:
    stage = UNetStage(unet, spec.bounds[s], spec.bounds[s + 1])
    return [p for _, p in stage.named_global_parameters()]


@dataclass
class Prepared:
    """A rank ready to train: its engine, model parts and the round's batches."""

    engine: Engine
    unet: Optional[UNet]
    stage: Optional[UNetStage]
    batches: SharedBatches
    comm: Comm

    def named_parameters(self) -> List[Tuple[str, torch.nn.Parameter]]:
        """``(name in the UNet, parameter)`` of what this rank trains."""
        if self.stage is not None:
            return self.stage.named_global_parameters()
        assert self.unet is not None
        return list(self.unet.named_parameters())


def prepare(
    spec: RoundSpec,
    rank: int,
    images: np.ndarray,
    meter: PhaseMeter,
    global_arrays: Optional[Mapping[str, np.ndarray]] = None,
) -> Prepared:
    """Build this rank's part, take the round's starting weights from the leader (rank 0
    passes ``global_arrays``) and make its engine (the process group is open)."""
    if spec.kind not in (DATA, PIPELINE):
        raise PoolRoundFailed(f"unknown pool round kind {spec.kind!r}")
    comm = Comm(meter, rank, spec.world_size)
    meter.switch(COMPUTE)
    unet, stage = build_parts(spec, rank)
    if rank == 0:
        assert unet is not None and global_arrays is not None
        set_state_arrays(unet, global_arrays)
    engine = _distribute(spec, rank, unet, stage, comm)
    schedule = NoiseSchedule.from_config(ScheduleConfig.from_dict(spec.model_config["schedule"]))
    batches = SharedBatches(images_to_tensor(images), spec.batch_size, spec.seed, schedule)
    return Prepared(engine, unet, stage, batches, comm)


def run_member_round(
    spec: RoundSpec,
    rank: int,
    images: np.ndarray,
    meter: PhaseMeter,
    global_arrays: Optional[Mapping[str, np.ndarray]] = None,
    cpu: Optional[ComputeClock] = None,
) -> Tuple[MemberOutcome, Optional[Dict[str, np.ndarray]]]:
    """This rank's part of the round (the process group is open). Rank 0 passes the global
    weights and gets the trained ones back; every rank gets its :class:`MemberOutcome`."""
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, spec.num_threads))
    dvfs = None
    freq = spec.freq_hz[rank] if rank < len(spec.freq_hz) else 0.0
    if cpu is not None and freq > 0:
        dvfs = cpu.apply(freq)
    try:
        ready = prepare(spec, rank, images, meter, global_arrays)
        stage = ready.stage
        result = ready.engine.run(ready.batches)
        trained = _collect(spec, rank, ready.unet, stage, ready.comm)
    finally:
        meter.stop()
        torch.set_num_threads(prev_threads)
        if dvfs is not None and dvfs.applied and cpu is not None:
            cpu.restore()
    if cpu is not None:
        reading = cpu.read().freq_hz
        ran_at = float(dvfs.freq_hz or 0.0) if dvfs is not None and dvfs.applied else reading
    else:
        ran_at = 0.0
    units = (0, 0) if stage is None else (stage.start, stage.stop)
    outcome = MemberOutcome(
        member_id=spec.members[rank],
        rank=rank,
        windows=[w.to_dict() for w in meter.windows()],
        seconds=dict(meter.seconds),
        bytes_sent=meter.bytes_sent,
        bytes_received=meter.bytes_received,
        steps=result.steps,
        samples=result.samples,
        units=units if spec.kind == PIPELINE else (0, 0),
        freq_hz=float(ran_at or 0.0),
        dvfs_applied=bool(dvfs.applied) if dvfs is not None else False,
        dvfs_reason=dvfs.reason if dvfs is not None else "no clock requested",
        merged_s=meter.merged_s,
        losses=result.losses if rank == 0 else [],
        stopped_early=result.stopped_early,
        cpu_seconds=dict(meter.cpu_seconds),
    )
    return outcome, trained


def _distribute(
    spec: RoundSpec, rank: int, unet: Optional[UNet], stage: Optional[UNetStage], comm: Comm
) -> Engine:
    """The round's starting weights from the leader to every member, then the engine."""
    cfg = spec.step_config()
    if spec.kind == DATA:
        assert unet is not None
        params = list(unet.parameters())
        flat = _flat(params) if rank == 0 else torch.empty(sum(p.numel() for p in params))
        comm.broadcast(flat, 0)
        if rank != 0:
            _unflat(params, flat)
        rows = split_rows(spec.batch_size, spec.world_size)[rank]
        return DataParallel(unet, comm, cfg, rows)
    assert stage is not None
    if rank == 0:
        assert unet is not None
        for s in range(1, spec.world_size):
            comm.flat_send(_flat(_stage_params(unet, spec, s)), s)
    else:
        mine = [p for _, p in stage.named_global_parameters()]
        _unflat(mine, comm.flat_recv(sum(p.numel() for p in mine), 0))
    per_sample = carry_shapes(stage.config, 1)
    in_shapes = [] if stage.first else per_sample[stage.start - 1]
    out_shapes = [] if stage.last else per_sample[stage.stop - 1]
    kind = Pipelining if spec.engine == PIPELINING else PipelineP2P
    return kind(stage, comm, cfg, spec.micro_batches, in_shapes, out_shapes)


def _collect(
    spec: RoundSpec, rank: int, unet: Optional[UNet], stage: Optional[UNetStage], comm: Comm
) -> Optional[Dict[str, np.ndarray]]:
    """Rank 0 gathers the trained weights (a pipeline's stages send theirs back)."""
    if spec.kind == PIPELINE and rank != 0:
        assert stage is not None
        comm.flat_send(_flat([p for _, p in stage.named_global_parameters()]), 0)
        return None
    if rank != 0:
        return None
    assert unet is not None
    if spec.kind == PIPELINE:
        for s in range(1, spec.world_size):
            params = _stage_params(unet, spec, s)
            _unflat(params, comm.flat_recv(sum(p.numel() for p in params), s))
    return get_state_arrays(unet)
