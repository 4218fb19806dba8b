"""The UNet as a sequence of units, and a pipeline stage as a contiguous run of them.

A pipeline cuts the network between units. What crosses a cut is the *carry*: the tuple
``(h, temb, skip_0, ..., skip_n)`` of every tensor still needed downstream — the running
features ``h``, the time embedding ``temb`` (computed once by the first unit, used by every
residual block) and the skip tensors pushed on the way down and not yet popped on the way up.
A skip pushed before a cut and popped after it crosses the cut, and so does its gradient on
the way back: that is why a cut in the middle of the UNet carries far more bytes than ``h``.

Units (``num_res_blocks`` = 1, three levels: eleven units)::

    stem            temb = time_mlp(embed(t)); h = conv_in(x)        (x, t) -> (h, temb)
    down{i}.{j}     h = down[i][j](h, temb)
    downsample{i}   push h; h = downsample[i](h)                     (not on the last level)
    mid             push h; h = mid(h, temb)                         (the last level's skip)
    up{i}.{j}       [j = 0: upsample if i > 0; h = cat(h, pop)]; h = up[i][j](h, temb)
    out             eps = conv_out(silu(norm_out(h)))                -> (eps,)

Running every unit in order computes exactly :meth:`greenfed.ddpm.unet.UNet.forward` (the same
operations in the same order; tested). A stage keeps only its units' modules, so a member of
a pipeline holds only its share of the weights, gradients and optimizer state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from greenfed.ddpm.unet import UNet, UNetConfig, timestep_embedding

Carry = Tuple[torch.Tensor, ...]


class _ContiguousGrad(torch.autograd.Function):
    """Identity forward; makes the gradient contiguous on the way back. The gradient of a
    tensor concatenated with a skip is a strided slice of the concatenation's gradient, and
    point-to-point sends (gloo) need contiguous buffers."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.view_as(x)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad.contiguous()


@dataclass(frozen=True)
class Unit:
    """One unit: its ``name``, what it does (``kind``) and the UNet submodules it owns."""

    name: str
    kind: str  # "stem" | "down" | "downsample" | "mid" | "up" | "out"
    modules: Tuple[str, ...]
    level: int = 0
    block: int = 0


def unet_units(config: UNetConfig) -> List[Unit]:
    """The units of a UNet of this configuration, in execution order."""
    levels = len(config.channel_mults)
    units = [Unit("stem", "stem", ("time_mlp", "conv_in"))]
    for i in range(levels):
        for j in range(config.num_res_blocks):
            units.append(Unit(f"down{i}.{j}", "down", (f"down.{i}.{j}",), i, j))
        if i < levels - 1:
            units.append(Unit(f"downsample{i}", "downsample", (f"downsample.{i}",), i))
    units.append(Unit("mid", "mid", (f"downsample.{levels - 1}", "mid"), levels - 1))
    for i in range(levels):
        for j in range(config.num_res_blocks):
            units.append(Unit(f"up{i}.{j}", "up", (f"up.{i}.{j}",), i, j))
    units.append(Unit("out", "out", ("norm_out", "conv_out")))
    return units


def _key(module_name: str) -> str:
    return module_name.replace(".", "__")


def run_unit(
    unit: Unit, parts: nn.ModuleDict, config: UNetConfig, carry: Sequence[torch.Tensor]
) -> Carry:
    """Apply one unit to the carry (see the module docstring for the layout)."""
    if unit.kind == "stem":
        x, t = carry
        temb = parts[_key("time_mlp")](timestep_embedding(t, config.base_channels))
        return (parts[_key("conv_in")](x), temb)
    if unit.kind == "out":
        h = carry[0]
        return (parts[_key("conv_out")](F.silu(parts[_key("norm_out")](h))),)
    h, temb, skips = carry[0], carry[1], tuple(carry[2:])
    if unit.kind == "down":
        h = parts[_key(unit.modules[0])](h, temb)
    elif unit.kind == "downsample":
        skips = (*skips, h)
        h = parts[_key(unit.modules[0])](h)
    elif unit.kind == "mid":
        skips = (*skips, h)
        h = parts[_key("mid")](parts[_key(unit.modules[0])](h), temb)
    elif unit.kind == "up":
        if unit.block == 0:
            if unit.level > 0:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = torch.cat([h, skips[-1]], dim=1)
            skips = skips[:-1]
        h = parts[_key(unit.modules[0])](h, temb)
    else:  # pragma: no cover - unet_units makes no other kind
        raise ValueError(f"unknown unit kind {unit.kind!r}")
    return (h, temb, *skips)


class UNetStage(nn.Module):
    """Units ``[start, stop)`` of a UNet: ``forward(*carry) -> carry`` (``(eps,)`` at the end).

    ``param_names`` maps each parameter to its name in the whole UNet's state dict, so a
    stage's weights load from, and return to, the global model by name.
    """

    def __init__(self, unet: UNet, start: int, stop: int) -> None:
        super().__init__()
        units = unet_units(unet.config)
        if not 0 <= start < stop <= len(units):
            raise ValueError(f"stage [{start}, {stop}) outside the {len(units)} units")
        self.config = unet.config
        self.units = units[start:stop]
        self.start, self.stop, self.num_units = start, stop, len(units)
        owned = [m for u in self.units for m in u.modules]
        self.parts = nn.ModuleDict({_key(m): unet.get_submodule(m) for m in owned})
        self.param_names: Dict[str, str] = {}
        for m in owned:
            for local, _ in unet.get_submodule(m).named_parameters():
                self.param_names[f"parts.{_key(m)}.{local}"] = f"{m}.{local}"

    @property
    def first(self) -> bool:
        return self.start == 0

    @property
    def last(self) -> bool:
        return self.stop == self.num_units

    def forward(self, *carry: torch.Tensor) -> Carry:
        out: Carry = tuple(_ContiguousGrad.apply(c) if c.requires_grad else c for c in carry)
        for u in self.units:
            out = run_unit(u, self.parts, self.config, out)
        return out

    def named_global_parameters(self) -> List[Tuple[str, nn.Parameter]]:
        """``(name in the UNet, parameter)`` for every parameter of this stage."""
        return [(self.param_names[k], p) for k, p in self.named_parameters()]


def carry_shapes(config: UNetConfig, batch: int) -> List[List[Tuple[int, ...]]]:
    """The shapes of the carry after each unit (entry ``i``: after unit ``i``), for ``batch``
    samples; computed with a forward pass of a throw-away model on zeros."""
    unet = UNet(config)
    x = torch.zeros(batch, config.in_channels, config.image_size, config.image_size)
    carry: Carry = (x, torch.zeros(batch))
    shapes: List[List[Tuple[int, ...]]] = []
    parts = UNetStage(unet, 0, len(unet_units(config))).parts
    with torch.no_grad():
        for u in unet_units(config):
            carry = run_unit(u, parts, config, carry)
            shapes.append([tuple(c.shape) for c in carry])
    return shapes
