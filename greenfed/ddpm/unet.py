"""The denoiser: a small UNet predicting the noise ε (nanoGPT-style: config dataclass + module).

``UNetConfig`` travels inside every checkpoint and ONNX file; ``build_model(cfg)`` rebuilds the
network from it. Layout: sinusoidal time embedding -> MLP; conv in; per resolution level
``num_res_blocks`` residual blocks (GroupNorm, SiLU, 3×3 convs, the time embedding added between
the convs), a stride-2 conv down between levels; one middle block; the mirror path up with skip
concatenation and nearest-neighbour upsampling; GroupNorm, SiLU, conv out.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, cast

import torch
from torch import nn
from torch.nn import functional as F

from .errors import ModelConfigError


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 1
    image_size: int = 8
    base_channels: int = 32
    channel_mults: List[int] = field(default_factory=lambda: [1, 2])
    num_res_blocks: int = 1
    time_dim: int = 64
    groups: int = 8
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.in_channels not in (1, 3):
            raise ModelConfigError(f"in_channels must be 1 or 3, got {self.in_channels}")
        down = 2 ** (len(self.channel_mults) - 1)
        if self.image_size % down:
            raise ModelConfigError(
                f"image_size {self.image_size} not divisible by {down} "
                f"({len(self.channel_mults)} resolution levels)"
            )
        for m in self.channel_mults:
            if (self.base_channels * m) % self.groups:
                raise ModelConfigError(f"channels {self.base_channels * m} not divisible by groups")

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["channel_mults"] = list(self.channel_mults)
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> UNetConfig:
        hints = typing.get_type_hints(cls)
        unknown = set(d) - set(hints)
        if unknown:
            raise ModelConfigError(f"unknown UNetConfig keys: {sorted(unknown)}")
        values: Dict[str, Any] = {k: (list(v) if k == "channel_mults" else v) for k, v in d.items()}
        return cls(**values)

    def replace(self, **changes: Any) -> UNetConfig:
        return dataclasses.replace(self, **changes)


# Presets for boards. Parameter counts are for 1 channel (3 channels adds a few hundred).
# Three resolution levels even at 8×8 (8, 4, 2 px): on a CPU a 3×3 conv costs parameters ×
# pixels, so keeping the wide layers at the coarse levels buys parameters cheaply; measured on a
# 2-core x86, this trained faster per step than two levels with the same parameter count.
PRESETS: Dict[str, UNetConfig] = {
    # ~243 k parameters: the default; 8×8 digits, seconds per local epoch on a Pi 4.
    "pi-small": UNetConfig(base_channels=16, channel_mults=[1, 2, 3], num_res_blocks=1,
                           time_dim=64),
    # ~1 M parameters: Pi 5 / Jetson, or 16–32 px images.
    "pi-base": UNetConfig(base_channels=32, channel_mults=[1, 2, 3], num_res_blocks=1,
                          time_dim=128),
}  # fmt: skip
DEFAULT_PRESET = "pi-small"


def preset(name: str, *, in_channels: int = 1, image_size: int = 8) -> UNetConfig:
    """A preset adapted to the data's channels and size."""
    if name not in PRESETS:
        raise ModelConfigError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name].replace(in_channels=in_channels, image_size=image_size)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of float timesteps (N,) -> (N, dim)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, time_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(time_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(temb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return h + self.skip(x)


class UNet(nn.Module):
    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        chans = [c.base_channels * m for m in c.channel_mults]
        self.time_mlp = nn.Sequential(
            nn.Linear(c.base_channels, c.time_dim), nn.SiLU(), nn.Linear(c.time_dim, c.time_dim)
        )
        self.conv_in = nn.Conv2d(c.in_channels, chans[0], 3, padding=1)

        def block(a: int, b: int) -> ResBlock:
            return ResBlock(a, b, c.time_dim, c.groups, c.dropout)

        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        ch = chans[0]
        for i, co in enumerate(chans):
            blocks = nn.ModuleList()
            for _ in range(c.num_res_blocks):
                blocks.append(block(ch, co))
                ch = co
            self.down.append(blocks)
            last = i == len(chans) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(ch, ch, 3, 2, 1))
        self.mid = block(ch, ch)
        # Up path: nearest-neighbour upsampling without a conv of its own (a conv at full
        # resolution costs as much as a residual block); the first block of each level takes the
        # upsampled features concatenated with the skip and projects them with its 1×1 skip conv.
        self.up = nn.ModuleList()
        for i in reversed(range(len(chans))):
            co = chans[i]
            blocks = nn.ModuleList()
            for j in range(c.num_res_blocks):
                blocks.append(block(ch + (co if j == 0 else 0), co))
                ch = co
            self.up.append(blocks)
        self.norm_out = nn.GroupNorm(c.groups, ch)
        self.conv_out = nn.Conv2d(ch, c.in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x`` (N, C, H, W) in [-1, 1]; ``t`` (N,) timesteps (int or float). Returns ε̂."""
        temb = self.time_mlp(timestep_embedding(t, self.config.base_channels))
        h = self.conv_in(x)
        skips = []
        for blocks, down in zip(self.down, self.downsample):
            for b in cast(nn.ModuleList, blocks):
                h = b(h, temb)
            skips.append(h)
            h = down(h)
        h = self.mid(h, temb)
        for i, blocks in enumerate(self.up):
            if i > 0:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = torch.cat([h, skips.pop()], dim=1)
            for b in cast(nn.ModuleList, blocks):
                h = b(h, temb)
        return self.conv_out(F.silu(self.norm_out(h)))


def build_model(config: UNetConfig, seed: int = 0) -> UNet:
    """A freshly initialised UNet; the same config and seed give the same weights."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = UNet(config)
    finally:
        torch.random.set_rng_state(state)
    return model


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
