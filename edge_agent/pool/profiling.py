"""Per-unit profiles of the UNet for the pool planner (:class:`greenfed.pool.LayerProfile`).

What is exact (from the model, no clock): each unit's weight bytes, the carry it hands to the
next unit (bytes per sample and tensor count: what a cut there moves), and the activation
bytes autograd keeps for its backward pass (counted with ``saved_tensors_hooks``, per sample
as the slope between two batch sizes).

What is measured (:func:`measure_profiles`): forward + backward seconds of each unit alone at
two batch sizes, fitted as ``seconds = per_call + batch * per_sample`` and turned into cycles
at the board's clock ``freq_hz``; the optimizer's step (gradient clipping + AdamW) timed on
the whole model and shared out by weight count. Medians of ``repeats`` runs after warm-up.

:func:`flop_profiles` gives cycles from FLOP counts instead (``cycles_per_flop`` named by
the caller): deterministic, for tests and for planning before anything was measured.
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from greenfed.ddpm.unet import UNet, UNetConfig, build_model
from greenfed.pool import LayerProfile

from .stages import UNetStage, carry_shapes, unet_units

FLOAT_BYTES = 4


@dataclass(frozen=True)
class UnitShape:
    """The exact, clock-free figures of one unit."""

    name: str
    param_bytes: float
    act_bytes_per_sample: float
    out_bytes_per_sample: float
    out_tensors: int  # tensors in the carry: each crosses a cut as its own message


def _unit_inputs(config: UNetConfig, index: int, batch: int) -> Tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(index)
    if index == 0:
        size = config.image_size
        x = torch.randn(batch, config.in_channels, size, size, generator=g)
        return (x, torch.randint(0, 1000, (batch,), generator=g))
    shapes = _carry_shapes(config, batch)[index - 1]
    return tuple(torch.randn(s, generator=g).requires_grad_() for s in shapes)


_SHAPES: Dict[Tuple[str, int], List[List[Tuple[int, ...]]]] = {}


def _carry_shapes(config: UNetConfig, batch: int) -> List[List[Tuple[int, ...]]]:
    """:func:`carry_shapes`, computed once per configuration and batch."""
    key = (json.dumps(config.to_dict(), sort_keys=True), batch)
    if key not in _SHAPES:
        _SHAPES[key] = carry_shapes(config, batch)
    return _SHAPES[key]


def _fwd_bwd(stage: UNetStage, inputs: Sequence[torch.Tensor]) -> None:
    outs = stage(*inputs)
    torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])


def _saved_bytes(stage: UNetStage, inputs: Sequence[torch.Tensor]) -> int:
    total = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        stage(*inputs)
    return total[0]


def unit_shapes(config: UNetConfig, batches: Tuple[int, int] = (2, 4)) -> List[UnitShape]:
    """Weight, carry and saved-activation bytes of every unit."""
    unet = build_model(config)
    units = unet_units(config)
    per_sample = carry_shapes(config, 1)
    out: List[UnitShape] = []
    for i, u in enumerate(units):
        stage = UNetStage(unet, i, i + 1)
        saved = [_saved_bytes(stage, _unit_inputs(config, i, b)) for b in batches]
        slope = (saved[1] - saved[0]) / (batches[1] - batches[0])
        carry = per_sample[i]
        out.append(
            UnitShape(
                name=u.name,
                param_bytes=float(sum(p.numel() for p in stage.parameters()) * FLOAT_BYTES),
                act_bytes_per_sample=float(max(slope, 0.0)),
                out_bytes_per_sample=float(sum(_numel(s) for s in carry) * FLOAT_BYTES),
                out_tensors=len(carry),
            )
        )
    return out


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _profile(shape: UnitShape, per_sample: float, per_call: float, update: float) -> LayerProfile:
    return LayerProfile(
        name=shape.name,
        cycles_per_sample=per_sample,
        cycles_per_call=per_call,
        update_cycles=update,
        param_bytes=shape.param_bytes,
        act_bytes_per_sample=shape.act_bytes_per_sample,
        out_bytes_per_sample=shape.out_bytes_per_sample,
        out_tensors=shape.out_tensors,
    )


def flop_profiles(config: UNetConfig, cycles_per_flop: float) -> List[LayerProfile]:
    """Profiles with cycles = FLOPs (forward + backward, per sample) x ``cycles_per_flop``;
    no per-call or optimizer cycles. Needs torch >= 2.1 (``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode

    unet = build_model(config)
    out = []
    for i, shape in enumerate(unit_shapes(config)):
        stage = UNetStage(unet, i, i + 1)
        counts = []
        for b in (1, 2):
            inputs = _unit_inputs(config, i, b)  # outside the counter: it runs a forward pass
            with FlopCounterMode(display=False) as counter:
                _fwd_bwd(stage, inputs)
            counts.append(counter.get_total_flops())
        out.append(_profile(shape, (counts[1] - counts[0]) * cycles_per_flop, 0.0, 0.0))
    return out


Timer = Callable[[], float]


def _median_s(fn: Callable[[], None], repeats: int, warmup: int, timer: Timer) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = timer()
        fn()
        times.append(timer() - t0)
    return statistics.median(times)


def optimizer_step_s(
    model: UNet, repeats: int = 7, warmup: int = 3, timer: Timer = time.perf_counter
) -> float:
    """Seconds of one gradient clipping + AdamW step over ``model`` (gradients filled)."""
    from greenfed.ddpm.train import TrainConfig, _make_optimizer

    for p in model.parameters():
        p.grad = torch.ones_like(p) * 1e-3
    opt = _make_optimizer(model, TrainConfig(steps=1))

    def step() -> None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return _median_s(step, repeats, warmup, timer)


def measure_profiles(
    config: UNetConfig,
    freq_hz: float,
    batches: Tuple[int, int] = (8, 64),
    repeats: int = 7,
    warmup: int = 3,
    num_threads: Optional[int] = None,
    timer: Timer = time.perf_counter,
) -> List[LayerProfile]:
    """Profiles with cycles measured on this board at clock ``freq_hz`` (see the module
    docstring); ``num_threads`` sets torch's threads for the measurement; ``timer`` is the
    wall clock, or ``time.process_time`` for CPU seconds (what a CPU-time power model
    charges)."""
    prev = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        unet = build_model(config)
        shapes = unit_shapes(config)
        total_params = sum(s.param_bytes for s in shapes) or 1.0
        update_s = optimizer_step_s(build_model(config), repeats, warmup, timer)
        out = []
        for i, shape in enumerate(shapes):
            stage = UNetStage(unet, i, i + 1)
            secs = []
            for b in batches:
                run = functools.partial(_fwd_bwd, stage, _unit_inputs(config, i, b))
                secs.append(_median_s(run, repeats, warmup, timer))
            slope = max(0.0, (secs[1] - secs[0]) / (batches[1] - batches[0]))
            intercept = max(0.0, secs[0] - slope * batches[0])
            share = update_s * shape.param_bytes / total_params
            out.append(_profile(shape, slope * freq_hz, intercept * freq_hz, share * freq_hz))
        return out
    finally:
        torch.set_num_threads(prev)
