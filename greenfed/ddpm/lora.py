"""Low-rank adapters (LoRA, Hu et al. 2021) for the UNet's convolutions and linear layers.

A wrapped layer keeps its frozen weight W₀ and adds one or more named low-rank branches::

    y = W₀ x + Σ_adapters (α/r) · B (A x)
    Conv2d: A is a k×k convolution in → r (the base layer's stride, padding, dilation),
            B a 1×1 convolution r → out, so ΔW = (α/r) · B·A is a k×k kernel of the same shape
    Linear: A is r×in, B is out×r, ΔW = (α/r) · B·A

B starts at zero (the wrapped model equals the backbone until trained); A is drawn from a
seeded generator (Kaiming-uniform, as the reference implementation), so every device and the
coordinator that use the same :class:`LoraConfig` hold the same A: what FFA-LoRA relies on.

Written by hand (peft needs Python >= 3.9 and transformers; boards run 3.8). The adapters'
values travel as named numpy arrays (``<layer>.A``, ``<layer>.B``), the form the codec takes.
``merge``/``unmerge`` fold the branches into W₀ and back (sampling, export);
:func:`merged_state_arrays` gives the plain UNet's state with the adapters folded in, for
checkpoints that load without this module.

Errors: :class:`~greenfed.ddpm.errors.ModelConfigError` for an invalid configuration (no layer
matches a target, rank < 1), :class:`~greenfed.ddpm.errors.CheckpointError` for adapter arrays
that do not fit the wrapped model.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Sequence, Tuple, Union, cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .errors import CheckpointError, ModelConfigError

GLOBAL = "global"  # the adapter every device shares and uploads updates of
PARTS = ("A", "B")
#: The residual blocks' 3×3 convolutions: most of the UNet's weights.
DEFAULT_TARGETS = ("*.conv1", "*.conv2")


@dataclass(frozen=True)
class LoraConfig:
    """``rank``: r; ``alpha``: the scaling is α/r; ``targets``: fnmatch patterns over the
    model's module names (``down.0.0.conv1``; each must match at least one Conv2d or Linear);
    ``seed``: A's initialisation, shared by every device."""

    rank: int = 4
    alpha: float = 8.0
    targets: Tuple[str, ...] = field(default_factory=lambda: DEFAULT_TARGETS)
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.targets, str) or not self.targets:
            raise ModelConfigError("LoRA targets must be a non-empty list of layer patterns")
        object.__setattr__(self, "targets", tuple(str(t) for t in self.targets))
        if int(self.rank) < 1:
            raise ModelConfigError(f"LoRA rank must be >= 1, got {self.rank}")
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ModelConfigError(f"LoRA alpha must be > 0, got {self.alpha}")

    @property
    def scaling(self) -> float:
        return float(self.alpha) / int(self.rank)

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["targets"] = list(self.targets)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LoraConfig:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ModelConfigError(f"unknown LoRA config keys: {sorted(unknown)}")
        values = dict(d)
        if "targets" in values:
            values["targets"] = tuple(values["targets"])
        return cls(**values)


class LowRank(nn.Module):
    """One adapter branch of one layer: A (r×in[×k×k]) and B (out×r), with its scaling."""

    def __init__(
        self, rank: int, in_shape: Sequence[int], out_features: int, scaling: float
    ) -> None:
        super().__init__()
        self.A = nn.Parameter(torch.zeros(rank, *in_shape))
        self.B = nn.Parameter(torch.zeros(out_features, rank))
        self.scaling = scaling

    def reset(self, generator: torch.Generator) -> None:
        """A ~ Kaiming-uniform(a=√5) from ``generator``; B = 0."""
        fan_in = int(np.prod(self.A.shape[1:]))
        bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform_ with a = sqrt(5)
        with torch.no_grad():
            self.A.copy_(torch.rand(self.A.shape, generator=generator) * 2 * bound - bound)
            self.B.zero_()


class LoraLayer(nn.Module):
    """A frozen Conv2d or Linear with named low-rank branches (see the module docstring)."""

    def __init__(self, base: Union[nn.Conv2d, nn.Linear]) -> None:
        super().__init__()
        if isinstance(base, nn.Conv2d) and base.groups != 1:
            raise ModelConfigError("LoRA on grouped convolutions is not supported")
        self.base = base
        self.adapters = nn.ModuleDict()
        self.merged: List[str] = []
        for p in base.parameters():
            p.requires_grad_(False)

    @property
    def is_conv(self) -> bool:
        return isinstance(self.base, nn.Conv2d)

    def add(self, name: str, rank: int, scaling: float, generator: torch.Generator) -> LowRank:
        w = self.base.weight
        branch = LowRank(rank, tuple(w.shape[1:]), int(w.shape[0]), scaling)
        branch.reset(generator)
        self.adapters[name] = branch
        return branch

    def branch(self, name: str) -> LowRank:
        return cast(LowRank, self.adapters[name])

    def branches(self) -> List[Tuple[str, LowRank]]:
        return [(name, self.branch(name)) for name in self.adapters]

    def branch_delta(self, branch: LowRank) -> torch.Tensor:
        """ΔW of one branch, shaped like the base weight."""
        A, B = branch.A, branch.B
        if self.is_conv:
            return branch.scaling * torch.einsum("or,rikl->oikl", B, A)
        return branch.scaling * (B @ A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        for name, branch in self.branches():
            if name in self.merged:
                continue
            if self.is_conv:
                conv: Any = self.base
                h = F.conv2d(x, branch.A, None, conv.stride, conv.padding, conv.dilation)
                y = y + branch.scaling * F.conv2d(h, branch.B[:, :, None, None])
            else:
                y = y + branch.scaling * F.linear(F.linear(x, branch.A), branch.B)
        return y

    def merge(self, name: str) -> None:
        if name not in self.merged:
            with torch.no_grad():
                self.base.weight += self.branch_delta(self.branch(name))
            self.merged.append(name)

    def unmerge(self, name: str) -> None:
        if name in self.merged:
            with torch.no_grad():
                self.base.weight -= self.branch_delta(self.branch(name))
            self.merged.remove(name)


def lora_layers(model: nn.Module) -> Dict[str, LoraLayer]:
    """The wrapped layers by module name, in the model's order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoraLayer)}


def _matches(name: str, targets: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, t) for t in targets)


def apply_lora(model: nn.Module, cfg: LoraConfig, adapter: str = GLOBAL) -> List[str]:
    """Wrap the target layers (once) and add adapter ``adapter`` to each; freeze every weight
    that is not an adapter's. A is drawn from ``cfg.seed`` in layer order. Returns the names
    of the wrapped layers."""
    layers = lora_layers(model)
    if not layers:
        targets = [
            (n, m)
            for n, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and _matches(n, cfg.targets)
        ]
        for pattern in cfg.targets:
            if not any(fnmatch.fnmatchcase(n, pattern) for n, _ in targets):
                raise ModelConfigError(f"LoRA target {pattern!r} matches no Conv2d/Linear layer")
        for name, module in targets:
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, LoraLayer(module))
        layers = lora_layers(model)
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    for layer in layers.values():
        if adapter in layer.adapters:
            raise ModelConfigError(f"adapter {adapter!r} is already applied")
        layer.add(adapter, cfg.rank, cfg.scaling, gen)
    return list(layers)


def set_trainable(model: nn.Module, adapter: str, parts: Sequence[str]) -> List[nn.Parameter]:
    """Let ``parts`` ("A", "B") of ``adapter`` train; returns those parameters."""
    out: List[nn.Parameter] = []
    for layer in lora_layers(model).values():
        branch = layer.adapters[adapter]
        for part in PARTS:
            p = getattr(branch, part)
            p.requires_grad_(part in parts)
            if part in parts:
                out.append(p)
    return out


def _branches(model: nn.Module, adapter: str) -> Iterator[Tuple[str, LoraLayer, LowRank]]:
    layers = lora_layers(model)
    if not layers:
        raise CheckpointError("the model carries no LoRA adapter")
    for name, layer in layers.items():
        if adapter not in layer.adapters:
            raise CheckpointError(f"layer {name} has no adapter {adapter!r}")
        yield name, layer, layer.branch(adapter)


def adapter_arrays(
    model: nn.Module, adapter: str = GLOBAL, parts: Sequence[str] = PARTS
) -> Dict[str, np.ndarray]:
    """``{"<layer>.A": ..., "<layer>.B": ...}`` (float32 copies) of one adapter's ``parts``."""
    return {
        f"{name}.{part}": getattr(branch, part).detach().cpu().numpy().astype(np.float32)
        for name, _, branch in _branches(model, adapter)
        for part in PARTS
        if part in parts
    }


def adapter_shapes(
    model: nn.Module, adapter: str = GLOBAL, parts: Sequence[str] = PARTS
) -> Dict[str, Tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in adapter_arrays(model, adapter, parts).items()}


def set_adapter_arrays(
    model: nn.Module, arrays: Mapping[str, np.ndarray], adapter: str = GLOBAL
) -> None:
    """Load named adapter arrays (any subset of parts, e.g. B only) into ``adapter``."""
    known: Dict[str, torch.Tensor] = {}
    for name, layer, branch in _branches(model, adapter):
        if layer.merged:
            raise CheckpointError(f"layer {name} is merged: unmerge before loading adapters")
        for part in PARTS:
            known[f"{name}.{part}"] = getattr(branch, part)
    extra = sorted(set(arrays) - set(known))
    if extra:
        raise CheckpointError(f"adapter arrays not in the model: {extra[:3]}")
    with torch.no_grad():
        for key, value in arrays.items():
            target = known[key]
            a = np.asarray(value)
            if tuple(a.shape) != tuple(target.shape):
                raise CheckpointError(f"{key}: shape {a.shape} != {tuple(target.shape)}")
            target.copy_(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)))


def merge(model: nn.Module, adapter: str = GLOBAL) -> None:
    """Fold ``adapter`` into the frozen weights (its branch then costs nothing to run)."""
    for _, layer, _ in _branches(model, adapter):
        layer.merge(adapter)


def unmerge(model: nn.Module, adapter: str = GLOBAL) -> None:
    """Take ``adapter`` out of the weights again (exact up to float rounding)."""
    for _, layer, _ in _branches(model, adapter):
        layer.unmerge(adapter)


def delta_weight(a: np.ndarray, b: np.ndarray, scaling: float) -> np.ndarray:
    """ΔW = scaling · B·A for numpy arrays: A r×in (×k×k for a convolution), B out×r."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a64.ndim == 4:
        return scaling * np.einsum("or,rikl->oikl", b64, a64)
    return scaling * (b64 @ a64)


def merged_state_arrays(
    model: nn.Module, adapters: Sequence[str] = (GLOBAL,)
) -> Dict[str, np.ndarray]:
    """The plain UNet's float state (names without the wrappers) with ``adapters`` folded in:
    what :func:`greenfed.ddpm.get_state_arrays` returns for an unwrapped model."""
    layers = lora_layers(model)
    out: Dict[str, np.ndarray] = {}
    for key, value in model.state_dict().items():
        if ".adapters." in key or not value.is_floating_point():
            continue
        layer_name, wrapped, rest = key.rpartition(".base.")
        arr = value.detach().cpu().numpy().astype(np.float64)
        if wrapped:  # a wrapped layer's base tensor: "<layer>.base.weight"
            layer = layers[layer_name]
            if rest == "weight":
                for name, branch in layer.branches():
                    if name in adapters and name not in layer.merged:
                        arr = arr + layer.branch_delta(branch).detach().numpy().astype(np.float64)
                    elif name not in adapters and name in layer.merged:
                        arr = arr - layer.branch_delta(branch).detach().numpy().astype(np.float64)
            key = f"{layer_name}.{rest}"
        out[key] = arr.astype(np.float32)
    return out


def num_values(shapes: Mapping[str, Sequence[int]]) -> int:
    return int(sum(int(np.prod(s)) for s in shapes.values()))
