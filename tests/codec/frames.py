"""Helpers that build and edit frames for the codec tests."""

from __future__ import annotations

import hashlib
import struct
from typing import Any, Dict

import numpy as np

from greenfed.codec import FIXED_HEADER_BYTES, TRAILER_BYTES, CodecConfig, encode

# offsets of the fixed header fields (see docs/codec.md)
OFF_VERSION, OFF_FLAGS, OFF_FRAME, OFF_MANIFEST, OFF_RESERVED, OFF_RAW, OFF_PAYLOAD = (
    4, 6, 8, 16, 20, 24, 32,
)  # fmt: skip
BIG = 1 << 40
LIMITS: Dict[str, Any] = {"max_frame_bytes": 1 << 24, "max_decoded_bytes": 1 << 26}


def reseal(frame: bytes) -> bytes:
    """Recompute the sha256 trailer, so an edited frame passes the checksum (forged frames)."""
    body = frame[:-TRAILER_BYTES]
    return body + hashlib.sha256(body).digest()


def set_field(frame: bytes, offset: int, fmt: str, value: int, seal: bool = True) -> bytes:
    buf = bytearray(frame)
    struct.pack_into("<" + fmt, buf, offset, value)
    return reseal(bytes(buf)) if seal else bytes(buf)


def manifest_offset() -> int:
    return FIXED_HEADER_BYTES


def manifest_parts(frame: bytes) -> Dict[str, int]:
    """Offsets inside the manifest (relative to its start) of the version-2 layout: the tensor
    table (8 bytes a row), the names, the dims, the scales (G offsets, then G steps)."""
    m = FIXED_HEADER_BYTES
    (n,) = struct.unpack_from("<I", frame, m + 8)
    rows = [struct.unpack_from("<HBBB", frame, m + 12 + 8 * i) for i in range(n)]
    names = 12 + 8 * n
    dims = names + sum(r[0] for r in rows)
    scales = dims + 8 * sum(r[3] for r in rows)
    (manifest_bytes,) = struct.unpack_from("<I", frame, OFF_MANIFEST)
    return {"table": 12, "names": names, "dims": dims, "scales": scales,
            "groups": (manifest_bytes - scales) // 8}  # fmt: skip


def small_state(seed: int = 0) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv.weight": (rng.standard_normal((4, 3, 3)) * 0.05).astype(np.float32),
        "conv.bias": rng.standard_normal(4).astype(np.float32),
        "norm.steps": np.array([3, 1, 4], dtype=np.int64),
        "emb": rng.standard_normal(10).astype(np.float64),
    }


def small_frames() -> Dict[str, bytes]:
    sd = small_state()
    return {
        "q4": encode(sd, CodecConfig(bits=4, seed=1)).frame,
        "q11_blocks": encode(sd, CodecConfig(bits=11, block_size=8, seed=2)).frame,
        "fp16": encode(sd, CodecConfig(mode="fp16")).frame,
        "fp32_stored": encode(sd, CodecConfig(mode="fp32", zstd_level=None)).frame,
        "q3_stored": encode(sd, CodecConfig(bits=3, block_size=5, zstd_level=None, seed=3)).frame,
    }
