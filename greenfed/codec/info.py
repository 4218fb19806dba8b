"""What a frame says about itself before it is decoded: format version, codec mode and bits.

A receiver that assigned a mode and a bit width checks them against the frame's own header,
not only against what the sender declared beside it: the decoder trusts the frame's header.
Reads the fixed header and the first two bytes of the manifest (mode code, bits), which every
format version puts in the same place; nothing is decompressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .errors import ManifestError, TruncatedFrameError
from .frame import FIXED_HEADER_BYTES, MODE_NAMES, parse_header

__all__ = ["FrameInfo", "frame_info"]


@dataclass(frozen=True)
class FrameInfo:
    """A frame's format version, codec mode ("stochastic", "fp32", "fp16") and bits per value."""

    version: int
    mode: str
    bits: int
    frame_bytes: int


def frame_info(frame: Union[bytes, bytearray, memoryview]) -> FrameInfo:
    """Read the header of ``frame`` (the whole frame, or at least its first 42 bytes).

    Raises a :class:`~greenfed.codec.errors.DecodeError` for a frame that is not a greenfed
    frame of this build's version, is cut before its manifest, or names an unknown mode.
    """
    buf = memoryview(frame).cast("B")
    header = parse_header(buf)
    if len(buf) < FIXED_HEADER_BYTES + 2 or header.manifest_bytes < 2:
        raise TruncatedFrameError(
            f"frame is cut before its manifest's mode and bits ({len(buf)} bytes)"
        )
    code, bits = buf[FIXED_HEADER_BYTES], buf[FIXED_HEADER_BYTES + 1]
    if code not in MODE_NAMES:
        raise ManifestError(f"unknown mode code {code} (known: {sorted(MODE_NAMES)})")
    return FrameInfo(header.version, MODE_NAMES[code], int(bits), header.frame_bytes)
