"""How a member takes its part in one training step: data parallel or a pipeline stage.

Each engine trains ``StepConfig.steps`` steps of the round's shared batches
(:mod:`edge_agent.pool.batches`) with the same optimizer, clipping and loss as
:func:`greenfed.ddpm.train_local`, so the pool computes the gradient one board would:

- :class:`DataParallel`: every member keeps a full replica and computes its rows of each
  batch; the gradients, the loss and the leader's stop flag travel in one ``all_reduce`` of a
  flat buffer after the backward pass (what ``DistributedDataParallel``'s reducer sends, kept
  after backward rather than overlapped with it: the overlap would blur the compute and
  exchange windows the energy model needs apart, and gains little for ~1 MB of gradients).
- :class:`PipelineP2P`: one stage of a GPipe schedule over ``torch.distributed`` point-to-point
  calls (every micro-batch forward, then every micro-batch backward in reverse order); valid
  on torch >= 2.0.
- :class:`Pipelining`: the same stage under ``torch.distributed.pipelining.ScheduleGPipe``
  (torch >= 2.4).

Pipeline stages clip with the global gradient norm: each stage's squared norm, the loss and
the stop flag travel in one three-float ``all_reduce`` per step.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from greenfed.ddpm.train import TrainConfig, _make_optimizer

from .batches import Batch, SharedBatches, part_loss, split_rows
from .comm import Comm
from .meter import COMPUTE, EXCHANGE, PhaseMeter
from .stages import UNetStage

Shapes = List[Tuple[int, ...]]


@dataclass(frozen=True)
class StepConfig:
    """The round's training: what :class:`greenfed.ddpm.TrainConfig` says for one board."""

    steps: int
    batch_size: int
    lr: float
    seed: int
    grad_clip: Optional[float] = 1.0
    max_seconds: Optional[float] = None

    def optimizer_config(self) -> TrainConfig:
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr)


@dataclass
class EngineResult:
    steps: int
    samples: int
    losses: List[float] = field(default_factory=list)
    stopped_early: bool = False


class Engine(abc.ABC):
    """One member's part of the round's steps."""

    def __init__(self, module: nn.Module, comm: Comm, cfg: StepConfig) -> None:
        self.module = module
        self.comm = comm
        self.meter: PhaseMeter = comm.meter
        self.cfg = cfg
        self.opt = _make_optimizer(module, cfg.optimizer_config())
        self.params = [p for p in module.parameters() if p.requires_grad]

    @abc.abstractmethod
    def step(self, batch: Batch, stop: bool) -> Tuple[float, bool]:
        """One step; returns (the batch's loss where this member knows it, the group's stop
        decision)."""

    def run(
        self, batches: SharedBatches, clock: Callable[[], float] = time.monotonic
    ) -> EngineResult:
        t0 = clock()
        result = EngineResult(0, 0)
        self.module.train()
        for step in range(1, self.cfg.steps + 1):
            self.meter.switch(COMPUTE)
            batch = batches.next()
            late = self.cfg.max_seconds is not None and clock() - t0 >= self.cfg.max_seconds
            loss, stop = self.step(batch, late and self.comm.rank == 0)
            result.steps, result.samples = step, step * batch.size
            result.losses.append(loss)
            if stop:
                result.stopped_early = step < self.cfg.steps
                break
        self.module.eval()
        return result

    def _clip_and_step(self, sq_norm: torch.Tensor) -> None:
        """Clip by the global norm (``sq_norm``: the sum of squared gradient norms over the
        whole model) as ``clip_grad_norm_`` does, then the optimizer step."""
        self.meter.switch(COMPUTE)
        if self.cfg.grad_clip is not None:
            coef = torch.clamp(self.cfg.grad_clip / (sq_norm.sqrt() + 1e-6), max=1.0)
            for p in self.params:
                if p.grad is not None:
                    p.grad.mul_(coef)
        self.opt.step()


class DataParallel(Engine):
    """Rows ``[lo, hi)`` of every batch on a full replica; gradients summed by all-reduce."""

    def __init__(self, module: nn.Module, comm: Comm, cfg: StepConfig, rows: Tuple[int, int]):
        super().__init__(module, comm, cfg)
        self.rows = rows

    def step(self, batch: Batch, stop: bool) -> Tuple[float, bool]:
        part = batch.rows(*self.rows)
        loss = part_loss(self.module(part.x_t, part.t), part.noise, batch.size)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        flat = torch.cat([g.reshape(-1) for g in grads] + [
            loss.detach().reshape(1), torch.tensor([1.0 if stop else 0.0])
        ])  # fmt: skip
        self.comm.all_reduce(flat)
        self.meter.switch(COMPUTE)
        offset = 0
        for p in self.params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n
        if self.cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.opt.step()
        return float(flat[-2]), bool(flat[-1] > 0)


class _Stage(Engine):
    """What both pipeline engines share: the stage, its neighbours and the per-step sync."""

    def __init__(
        self, module: UNetStage, comm: Comm, cfg: StepConfig, micro_batches: int,
        in_shapes: Shapes, out_shapes: Shapes,
    ) -> None:  # fmt: skip
        super().__init__(module, comm, cfg)
        self.stage = module
        self.micro = micro_batches
        self.in_shapes = in_shapes  # per-sample shapes of the carry this stage receives
        self.out_shapes = out_shapes  # ... and of the carry it hands on

    @staticmethod
    def shapes(per_sample: Shapes, rows: int) -> Shapes:
        return [(rows, *s[1:]) for s in per_sample]

    def _sync(self, loss_sum: float, stop: bool) -> Tuple[float, bool]:
        self.meter.switch(COMPUTE)
        grads = [p.grad for p in self.params if p.grad is not None]
        sq = sum(
            (torch.linalg.vector_norm(g, 2.0) ** 2 for g in grads), torch.zeros(())
        )  # fmt: skip
        buf = torch.stack([sq.reshape(()), torch.tensor(loss_sum), torch.tensor(float(stop))])
        self.comm.all_reduce(buf)
        self._clip_and_step(buf[0])
        return float(buf[1]), bool(buf[2] > 0)


class PipelineP2P(_Stage):
    """A GPipe stage over ``torch.distributed`` point-to-point calls."""

    def step(self, batch: Batch, stop: bool) -> Tuple[float, bool]:
        s, stage = self.comm.rank, self.stage
        self.opt.zero_grad(set_to_none=True)
        parts = split_rows(batch.size, self.micro)
        saved: List[Tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]]] = []
        loss_sum = 0.0
        for lo, hi in parts:
            if stage.first:
                inputs: Sequence[torch.Tensor] = (batch.x_t[lo:hi], batch.t[lo:hi])
            else:
                inputs = self.comm.recv(self.shapes(self.in_shapes, hi - lo), s - 1)
                for x in inputs:
                    x.requires_grad_()
            self.meter.switch(COMPUTE)
            outs = stage(*inputs)
            if stage.last:
                loss = part_loss(outs[0], batch.noise[lo:hi], batch.size)
                loss_sum += float(loss.detach())
                outs = (loss,)
            else:
                self.comm.send(outs, s + 1)
            saved.append((inputs, outs))
        for (lo, hi), (inputs, outs) in zip(reversed(parts), reversed(saved)):
            if stage.last:
                self.meter.switch(COMPUTE)
                outs[0].backward()
            else:
                grads = self.comm.recv(self.shapes(self.out_shapes, hi - lo), s + 1)
                self.meter.switch(COMPUTE)
                torch.autograd.backward(outs, grads)
            if not stage.first:
                self.comm.send(
                    [x.grad if x.grad is not None else torch.zeros_like(x) for x in inputs], s - 1
                )
        return self._sync(loss_sum, stop)


class Pipelining(_Stage):
    """The same stage under ``torch.distributed.pipelining.ScheduleGPipe``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

        meter = self.meter

        class MeteredStage(PipelineStage):  # type: ignore[misc, valid-type]
            """Enters "compute" for every micro-batch's forward and backward; the rest of
            a schedule step (sends, receives, waits) is "exchange"."""

            def forward_one_chunk(self, *a: Any, **k: Any) -> Any:
                meter.switch(COMPUTE)
                try:
                    return super().forward_one_chunk(*a, **k)
                finally:
                    meter.switch(EXCHANGE)

            def backward_one_chunk(self, *a: Any, **k: Any) -> Any:
                meter.switch(COMPUTE)
                try:
                    return super().backward_one_chunk(*a, **k)
                finally:
                    meter.switch(EXCHANGE)

        self._losses: List[torch.Tensor] = []
        bs = self.cfg.batch_size
        pipe_stage = MeteredStage(
            self.stage, self.comm.rank, self.comm.world_size, torch.device("cpu")
        )

        def loss_fn(out: object, target: torch.Tensor) -> torch.Tensor:
            eps = out[0] if isinstance(out, tuple) else out
            return part_loss(eps, target, self._batch_size or bs)  # type: ignore[arg-type]

        self._batch_size = 0
        self.schedule = ScheduleGPipe(pipe_stage, self.micro, loss_fn=loss_fn, scale_grads=False)

    def step(self, batch: Batch, stop: bool) -> Tuple[float, bool]:
        self.opt.zero_grad(set_to_none=True)
        self._batch_size = batch.size
        losses: List[torch.Tensor] = []
        self.meter.switch(EXCHANGE)
        try:
            if self.stage.first:
                self.schedule.step(batch.x_t, batch.t)
            elif self.stage.last:
                self.schedule.step(target=batch.noise, losses=losses)
            else:
                self.schedule.step()
        except RuntimeError as e:
            raise self.comm._fail("pipeline step", e) from e
        for lo, hi in split_rows(batch.size, self.micro):
            rows = hi - lo
            moved_in = 0 if self.stage.first else _bytes(self.shapes(self.in_shapes, rows))
            moved_out = 0 if self.stage.last else _bytes(self.shapes(self.out_shapes, rows))
            self.meter.sent(moved_in + moved_out)  # activations forward, gradients back
            self.meter.received(moved_in + moved_out)
        loss_sum = float(sum(float(x.detach()) for x in losses))
        return self._sync(loss_sum, stop)


def _bytes(shapes: Shapes) -> int:
    total = 0
    for s in shapes:
        n = 4
        for d in s:
            n *= int(d)
        total += n
    return total
