"""Configuration and results of the update codec (plain dataclasses, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

from .errors import ConfigError

__all__ = ["DEFAULT_ZSTD_LEVEL", "MODES", "CodecConfig", "EncodeResult", "TensorStats"]

MODES = ("stochastic", "fp32", "fp16")
#: Chosen from ``scripts/bench_codec.py`` (docs/codec.md): on 10 M parameters at 4 bits, level 1
#: gave the same size as level 3 (3.4830 vs 3.4832 MB) at a higher speed; levels 6 and 9 were
#: larger and slower; negative levels store the symbols without entropy coding.
DEFAULT_ZSTD_LEVEL = 1


@dataclass(frozen=True)
class CodecConfig:
    """How to encode an update.

    Attributes:
        mode: ``"stochastic"`` (quantize float tensors to ``bits``), ``"fp32"`` (every tensor
            exactly as given) or ``"fp16"`` (float tensors rounded to nearest float16).
        bits: quantization bits per value, 1..16 (used by ``"stochastic"`` only).
        block_size: ``None`` (or 0) for one offset/step per tensor; else one per block of this
            many consecutive values (e.g. 4096): lower error for 8 header bytes per block.
        zstd_level: zstd level for the payload, 1..22 (or negative fast levels); ``None`` stores
            the payload uncompressed.
        seed: seed of the rounding noise (reproducible frames); ``None`` draws fresh entropy.
    """

    mode: str = "stochastic"
    bits: int = 8
    block_size: Optional[int] = None
    zstd_level: Optional[int] = DEFAULT_ZSTD_LEVEL
    seed: Optional[int] = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if isinstance(self.bits, bool) or not isinstance(self.bits, int):
            raise ConfigError(f"bits must be an int in 1..16, got {self.bits!r}")
        if self.mode == "stochastic" and not 1 <= self.bits <= 16:
            raise ConfigError(f"bits must be in 1..16 for stochastic mode, got {self.bits}")
        if self.block_size is not None and (
            not isinstance(self.block_size, int) or not 0 <= self.block_size < 2**31
        ):
            raise ConfigError(
                f"block_size must be None or an int in 0..2**31-1, got {self.block_size!r}"
            )
        if self.zstd_level is not None and (
            not isinstance(self.zstd_level, int) or not -(2**17) <= self.zstd_level <= 22
        ):
            raise ConfigError(f"zstd_level must be None or an int <= 22, got {self.zstd_level!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise ConfigError(f"seed must be None or a non-negative int, got {self.seed!r}")

    @property
    def effective_block_size(self) -> int:
        """0 for per-tensor scaling, else the block size."""
        return self.block_size or 0

    @property
    def frame_bits(self) -> int:
        """Bits per float value as written in the frame header (32 for fp32, 16 for fp16)."""
        return {"stochastic": self.bits, "fp32": 32, "fp16": 16}[self.mode]


@dataclass(frozen=True)
class TensorStats:
    """Error accounting of one tensor.

    ``sq_error``: measured sum of squared differences between decoded and input values;
    ``bound``: the expected-error bound ``sum_g n_g * step_g**2 / 4`` (``d * Δ**2 / 4`` per
    tensor), 0 for exact tensors; ``range``: max - min of the input (0 for exact tensors);
    ``encoding``: ``"quantized"``, ``"fp16"`` or ``"raw"``.
    """

    numel: int
    sq_error: float
    bound: float
    range: float
    encoding: str


@dataclass(frozen=True)
class EncodeResult:
    """One encoded frame and its accounting.

    ``raw_bytes``: bytes of the input tensors; ``packed_bytes``: payload before zstd;
    ``frame_bytes``: ``len(frame)``; ``sha256``: hex digest of the whole frame (trailer
    included), what the upload manifest declares.
    """

    frame: bytes
    sha256: str
    raw_bytes: int
    packed_bytes: int
    frame_bytes: int
    tensor_stats: Dict[str, TensorStats] = field(default_factory=dict)

    @property
    def total_sq_error(self) -> float:
        return float(sum(s.sq_error for s in self.tensor_stats.values()))

    @property
    def total_bound(self) -> float:
        return float(sum(s.bound for s in self.tensor_stats.values()))
