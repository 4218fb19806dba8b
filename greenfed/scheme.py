"""A scheme: what every device sends each round, parsed once for the whole tree.

    on-demand   the allocator picks each device's bits (stochastic quantization)
    fp32        full-precision FedAvg: updates sent unquantized (32 bits per value)
    fixed-B     every device B bits, 1 <= B <= 16 (``fixed-8``; ``fixed-b8`` is accepted)

:meth:`Scheme.parse` is the one parser (configuration files, command lines, the allocator);
the codec configuration a device encodes with follows from the scheme and the bits it was
assigned (:meth:`Scheme.codec_config`), and the bits per value from the codec
(``CodecConfig.frame_bits``), so no module re-derives "32 for fp32".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from greenfed.codec import CodecConfig
from greenfed.errors import SchemeError

ON_DEMAND = "on-demand"
FP32 = "fp32"
FIXED = "fixed"
SCHEMES_HELP = "on-demand, fp32 or fixed-B with B in 1..16 (e.g. fixed-8)"
_FIXED = re.compile(r"^fixed-(?:b)?(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Scheme:
    """``kind``: ``on-demand``, ``fp32`` or ``fixed``; ``fixed_bits``: B for ``fixed``."""

    kind: str
    fixed_bits: Optional[int] = None

    def __post_init__(self) -> None:
        if self.kind not in (ON_DEMAND, FP32, FIXED):
            raise SchemeError(f"unknown scheme kind {self.kind!r}: use {SCHEMES_HELP}")
        if (self.kind == FIXED) != (self.fixed_bits is not None):
            raise SchemeError("fixed_bits is given exactly for the fixed scheme")
        if self.fixed_bits is not None and not 1 <= self.fixed_bits <= 16:
            raise SchemeError(f"fixed-{self.fixed_bits}: B must be in 1..16")

    @classmethod
    def parse(cls, text: str) -> Scheme:
        """``on-demand``, ``fp32`` or ``fixed-B``; :class:`SchemeError` names the choices."""
        name = str(text).strip().lower()
        if name in (ON_DEMAND, FP32):
            return cls(name)
        m = _FIXED.match(name)
        if m and 1 <= int(m.group(1)) <= 16:
            return cls(FIXED, int(m.group(1)))
        raise SchemeError(f"unknown scheme {text!r}: use {SCHEMES_HELP}")

    def __str__(self) -> str:
        return f"fixed-{self.fixed_bits}" if self.kind == FIXED else self.kind

    @property
    def codec_mode(self) -> str:
        """The codec mode every device of this scheme encodes with."""
        return FP32 if self.kind == FP32 else "stochastic"

    @property
    def uniform_bits(self) -> Optional[int]:
        """Bits every device gets (32 for fp32, B for fixed-B); None where the allocator picks."""
        if self.kind == ON_DEMAND:
            return None
        return self.codec_config(self.fixed_bits or 1).frame_bits

    @property
    def header_bits(self) -> int:
        """Bits to size frame headers with before the allocator has picked (B, else 8)."""
        return self.fixed_bits or 8

    def codec_config(self, bits: int, block_size: int = 0) -> CodecConfig:
        """What a device assigned ``bits`` encodes with (bits are ignored by fp32)."""
        return CodecConfig(mode=self.codec_mode, bits=int(bits), block_size=block_size or None)

    def assigned_bits(self, allocated: int) -> int:
        """Bits per value written in an assignment: the codec's (32 for fp32), else allocated."""
        return self.codec_config(allocated).frame_bits
