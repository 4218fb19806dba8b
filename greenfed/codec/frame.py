"""The frame format: fixed header, manifest, payload, sha256 trailer (layout in docs/codec.md).

All integers little-endian. ``parse_header`` and ``parse_manifest`` read untrusted bytes: every
read is bounds-checked first and every count is limited before anything is allocated, so a
hostile header yields a :class:`~greenfed.codec.errors.DecodeError`, never an ``IndexError``,
``struct.error`` or a huge allocation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .bitpack import packed_nbytes
from .errors import (
    BadMagicError,
    BitsOutOfRangeError,
    InvalidScaleError,
    MalformedHeaderError,
    ManifestError,
    TruncatedFrameError,
    UnsupportedVersionError,
)
from .quantize import group_count

__all__ = [
    "FIXED_HEADER_BYTES",
    "MAGIC",
    "TRAILER_BYTES",
    "VERSION",
    "FrameHeader",
    "Manifest",
    "TensorEntry",
    "frame_size",
    "header_bytes",
    "parse_header",
    "parse_manifest",
]

MAGIC = b"GFUC"
VERSION = 1
FLAG_ZSTD = 0x0001
_HEADER = struct.Struct("<4sHHQIIQQ")
FIXED_HEADER_BYTES = _HEADER.size  # 40
TRAILER_BYTES = 32  # sha256 of every byte before it
_MANIFEST_HEAD = struct.Struct("<BBHII")  # mode, bits, reserved, block_size, n_tensors
_TENSOR_HEAD = struct.Struct("<BBBB")  # dtype code, encoding, ndim, reserved
MAX_TENSORS = 1 << 16
MAX_NDIM = 32
MAX_NAME_BYTES = 1 << 12
MAX_NUMEL = 1 << 48

MODE_CODES = {"stochastic": 0, "fp32": 1, "fp16": 2}
MODE_NAMES = {v: k for k, v in MODE_CODES.items()}
ENC_RAW, ENC_FP16, ENC_QUANT = 0, 1, 2
ENCODING_NAMES = {ENC_RAW: "raw", ENC_FP16: "fp16", ENC_QUANT: "quantized"}
DTYPE_CODES: Dict[str, int] = {
    "bool": 1, "int8": 2, "uint8": 3, "int16": 4, "uint16": 5, "int32": 6,
    "uint32": 7, "int64": 8, "uint64": 9, "float16": 10, "float32": 11, "float64": 12,
}  # fmt: skip
DTYPES: Dict[int, np.dtype] = {code: np.dtype(name) for name, code in DTYPE_CODES.items()}


@dataclass(frozen=True)
class FrameHeader:
    """The fixed 40-byte header."""

    version: int
    flags: int
    frame_bytes: int
    manifest_bytes: int
    payload_raw_bytes: int
    payload_bytes: int

    @property
    def compressed(self) -> bool:
        return bool(self.flags & FLAG_ZSTD)


@dataclass
class TensorEntry:
    """One tensor of the manifest; ``offsets``/``steps`` only for quantized tensors."""

    name: str
    dtype: np.dtype
    shape: Tuple[int, ...]
    encoding: int
    offsets: Optional[np.ndarray] = None
    steps: Optional[np.ndarray] = None

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def payload_nbytes(self, bits: int) -> int:
        if self.encoding == ENC_QUANT:
            return packed_nbytes(self.numel, bits)
        if self.encoding == ENC_FP16:
            return 2 * self.numel
        return self.dtype.itemsize * self.numel

    def decoded_nbytes(self) -> int:
        return self.dtype.itemsize * self.numel


@dataclass
class Manifest:
    mode: str
    bits: int
    block_size: int
    tensors: List[TensorEntry]

    def payload_nbytes(self) -> int:
        return sum(t.payload_nbytes(self.bits) for t in self.tensors)

    def decoded_nbytes(self) -> int:
        return sum(t.decoded_nbytes() for t in self.tensors)


def pack_header(header: FrameHeader) -> bytes:
    return _HEADER.pack(
        MAGIC,
        header.version,
        header.flags,
        header.frame_bytes,
        header.manifest_bytes,
        0,
        header.payload_raw_bytes,
        header.payload_bytes,
    )


def parse_header(buf: Union[bytes, bytearray, memoryview]) -> FrameHeader:
    """Parse and check the fixed header (magic, version, flags, sizes adding up)."""
    if len(buf) < 6:
        raise TruncatedFrameError(
            f"frame is {len(buf)} bytes, shorter than the {FIXED_HEADER_BYTES}-byte header; "
            "the transfer was cut: resend it"
        )
    if bytes(buf[:4]) != MAGIC:
        raise BadMagicError(
            f"frame starts with {bytes(buf[:4])!r}, not {MAGIC!r}: this is not a greenfed "
            "update frame (wrong file or stream?)"
        )
    version = int.from_bytes(bytes(buf[4:6]), "little")
    if version != VERSION:
        raise UnsupportedVersionError(
            f"frame format version {version}; this build reads version {VERSION} only: "
            "upgrade the older side"
        )
    if len(buf) < FIXED_HEADER_BYTES:
        raise TruncatedFrameError(
            f"frame is {len(buf)} bytes, shorter than the {FIXED_HEADER_BYTES}-byte header; "
            "the transfer was cut: resend it"
        )
    _, version, flags, frame_bytes, manifest_bytes, reserved, raw_bytes, payload_bytes = (
        _HEADER.unpack_from(bytes(buf[:FIXED_HEADER_BYTES]))
    )
    if flags & ~FLAG_ZSTD or reserved:
        raise MalformedHeaderError(
            f"reserved header bits set (flags={flags:#x}, reserved={reserved}): the frame was "
            "written by a newer codec or corrupted"
        )
    expected = FIXED_HEADER_BYTES + manifest_bytes + payload_bytes + TRAILER_BYTES
    if frame_bytes != expected:
        raise MalformedHeaderError(
            f"header sizes do not add up: frame_bytes={frame_bytes} but header + manifest "
            f"({manifest_bytes}) + payload ({payload_bytes}) + trailer = {expected}"
        )
    if not flags & FLAG_ZSTD and raw_bytes != payload_bytes:
        raise MalformedHeaderError(
            f"uncompressed payload declares {raw_bytes} raw bytes but stores {payload_bytes}"
        )
    return FrameHeader(version, flags, frame_bytes, manifest_bytes, raw_bytes, payload_bytes)


class _Reader:
    """Bounds-checked reads over the manifest bytes."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise ManifestError(
                f"manifest ends inside {what} (needs {n} bytes at offset {self.pos}, "
                f"has {len(self.buf) - self.pos}): the frame is corrupt"
            )
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, st: struct.Struct, what: str) -> Tuple[int, ...]:
        return st.unpack(self.take(st.size, what))


def build_manifest(manifest: Manifest) -> bytes:
    parts: List[bytes] = [
        _MANIFEST_HEAD.pack(
            MODE_CODES[manifest.mode],
            manifest.bits,
            0,
            manifest.block_size,
            len(manifest.tensors),
        )
    ]
    for t in manifest.tensors:
        name = t.name.encode("utf-8")
        parts.append(struct.pack("<H", len(name)))
        parts.append(name)
        parts.append(_TENSOR_HEAD.pack(DTYPE_CODES[t.dtype.name], t.encoding, len(t.shape), 0))
        parts.append(struct.pack(f"<{len(t.shape)}Q", *t.shape))
        if t.encoding == ENC_QUANT:
            assert t.offsets is not None and t.steps is not None
            parts.append(t.offsets.astype("<f4").tobytes())
            parts.append(t.steps.astype("<f4").tobytes())
    return b"".join(parts)


def _check_bits(mode: str, bits: int) -> None:
    if mode == "stochastic" and not 1 <= bits <= 16:
        raise BitsOutOfRangeError(
            f"frame declares {bits} quantization bits; valid values are 1..16: the sender's "
            "codec is misconfigured or the frame is corrupt"
        )
    if (mode == "fp32" and bits != 32) or (mode == "fp16" and bits != 16):
        raise BitsOutOfRangeError(
            f"frame declares mode {mode!r} with {bits} bits (must be "
            f"{32 if mode == 'fp32' else 16})"
        )


def parse_manifest(buf: bytes) -> Manifest:
    """Parse and validate a manifest (bits, encodings, scales, names); allocates only
    arrays whose size the bytes already hold."""
    r = _Reader(buf)
    mode_code, bits, reserved, block_size, n_tensors = r.unpack(_MANIFEST_HEAD, "the head")
    if mode_code not in MODE_NAMES:
        raise ManifestError(f"unknown mode code {mode_code} (known: {sorted(MODE_NAMES)})")
    mode = MODE_NAMES[mode_code]
    _check_bits(mode, bits)
    if reserved:
        raise ManifestError(f"reserved manifest field is {reserved}, not 0")
    if block_size >= 2**31:
        raise ManifestError(f"block size {block_size} is not below 2**31")
    if n_tensors > MAX_TENSORS:
        raise ManifestError(f"manifest declares {n_tensors} tensors, above {MAX_TENSORS}")
    levels = (1 << bits) - 1
    tensors: List[TensorEntry] = []
    seen = set()
    for i in range(n_tensors):
        (name_len,) = r.unpack(struct.Struct("<H"), f"tensor {i}'s name length")
        if name_len > MAX_NAME_BYTES:
            raise ManifestError(f"tensor {i}'s name is {name_len} bytes, above {MAX_NAME_BYTES}")
        try:
            name = r.take(name_len, f"tensor {i}'s name").decode("utf-8")
        except UnicodeDecodeError as e:
            raise ManifestError(f"tensor {i}'s name is not valid UTF-8: {e}") from e
        if name in seen:
            raise ManifestError(f"tensor name {name!r} appears twice in the manifest")
        seen.add(name)
        code, encoding, ndim, res = r.unpack(_TENSOR_HEAD, f"tensor {name!r}'s header")
        if code not in DTYPES:
            raise ManifestError(f"tensor {name!r} has unknown dtype code {code}")
        if encoding not in ENCODING_NAMES or res:
            raise ManifestError(f"tensor {name!r} has unknown encoding {encoding}/{res}")
        if ndim > MAX_NDIM:
            raise ManifestError(f"tensor {name!r} has {ndim} dimensions, above {MAX_NDIM}")
        shape = struct.unpack(f"<{ndim}Q", r.take(8 * ndim, f"tensor {name!r}'s shape"))
        entry = TensorEntry(name, DTYPES[code], tuple(int(d) for d in shape), encoding)
        if entry.numel > MAX_NUMEL:
            raise ManifestError(f"tensor {name!r} declares {entry.numel} elements")
        is_float = entry.dtype.kind == "f"
        if encoding == ENC_QUANT and not (mode == "stochastic" and is_float):
            raise ManifestError(f"tensor {name!r} ({entry.dtype}) is quantized in {mode} mode")
        if encoding == ENC_FP16 and not (mode == "fp16" and is_float):
            raise ManifestError(f"tensor {name!r} ({entry.dtype}) is fp16 in {mode} mode")
        if encoding == ENC_QUANT:
            groups = group_count(entry.numel, block_size)
            raw = r.take(8 * groups, f"tensor {name!r}'s scales ({groups} groups)")
            offsets = np.frombuffer(raw, dtype="<f4", count=groups).astype(np.float32)
            steps = np.frombuffer(raw, dtype="<f4", offset=4 * groups).astype(np.float32)
            entry.offsets, entry.steps = offsets, steps
        tensors.append(entry)
    if r.pos != len(buf):
        raise ManifestError(
            f"manifest has {len(buf) - r.pos} unexplained bytes after its {n_tensors} tensors"
        )
    _check_scales([t for t in tensors if t.encoding == ENC_QUANT], levels)
    return Manifest(mode, bits, block_size, tensors)


def _check_scales(quantized: List[TensorEntry], levels: int) -> None:
    """All tensors' grids at once (one vectorised pass; state dicts hold many small tensors):
    offsets finite, steps finite and >= 0, and the grid's top inside the output dtype's range
    (float16 rounds values up to 65504 * (1 + 2**-11) down to 65504, so allow that slack)."""
    if not quantized:
        return
    f32_max = float(np.finfo(np.float32).max)
    with np.errstate(all="ignore"):  # forged bytes may hold signalling NaNs
        offsets = np.concatenate([t.offsets for t in quantized]).astype(np.float64)  # type: ignore[misc]
        steps = np.concatenate([t.steps for t in quantized]).astype(np.float64)  # type: ignore[misc]
    limits = np.concatenate(
        [
            np.full(t.offsets.size, min(float(np.finfo(t.dtype).max) * (1 + 2.0**-12), f32_max))  # type: ignore[union-attr]
            for t in quantized
        ]
    )
    with np.errstate(all="ignore"):
        ok = (
            np.isfinite(offsets)
            & np.isfinite(steps)
            & (steps >= 0)
            & (np.abs(offsets) <= limits)
            & (np.abs(offsets + steps * levels) <= limits)
        )
    if ok.all():
        return
    first = int(np.argmin(ok))
    for t in quantized:
        if first < t.offsets.size:  # type: ignore[union-attr]
            raise InvalidScaleError(
                f"tensor {t.name!r} has a non-finite offset, or a negative or non-finite "
                f"step, or a grid beyond {t.dtype}'s range: the sender's update holds "
                "NaN/inf or the frame was forged"
            )
        first -= t.offsets.size  # type: ignore[union-attr]


TensorSpec = Union[int, Tuple[str, Sequence[int]]]


def header_bytes(
    tensors: Union[Mapping[str, Sequence[int]], Sequence[TensorSpec]],
    bits: int = 8,
    block_size: Optional[int] = None,
    mode: str = "stochastic",
) -> int:
    """Exact frame overhead ``h`` in bytes (header + manifest + trailer), payload excluded.

    ``tensors`` maps names to shapes (exact), or is a list of element counts (then names of
    16 bytes and 1-D shapes are assumed). Every tensor is counted as quantized in stochastic
    mode; integer buffers carry no scales, so this is an upper bound for them.
    """
    specs: List[Tuple[int, int, int]] = []  # (name bytes, ndim, numel)
    if isinstance(tensors, Mapping):
        for name, shape in tensors.items():
            numel = 1
            for d in shape:
                numel *= int(d)
            specs.append((len(name.encode("utf-8")), len(shape), numel))
    else:
        for spec in tensors:
            if isinstance(spec, tuple):
                numel = 1
                for d in spec[1]:
                    numel *= int(d)
                specs.append((len(spec[0].encode("utf-8")), len(spec[1]), numel))
            else:
                specs.append((16, 1, int(spec)))
    total = FIXED_HEADER_BYTES + _MANIFEST_HEAD.size + TRAILER_BYTES
    for name_len, ndim, numel in specs:
        total += 2 + name_len + _TENSOR_HEAD.size + 8 * ndim
        if mode == "stochastic":
            total += 8 * group_count(numel, block_size or 0)
    return total


def frame_size(
    tensors: Union[Mapping[str, Sequence[int]], Sequence[TensorSpec]],
    bits: int = 8,
    block_size: Optional[int] = None,
    mode: str = "stochastic",
) -> int:
    """Uncompressed frame bytes ``S(q) = sum_t packed(d_t, q) + h`` (≈ ``d*q/8 + h``).

    This is the size with the payload stored (``zstd_level=None``) and an upper bound, up to
    zstd's few framing bytes, with zstd; the allocator can scale it by a measured ratio.
    """
    h = header_bytes(tensors, bits, block_size, mode)
    if isinstance(tensors, Mapping):
        counts = [int(np.prod([int(d) for d in s], dtype=np.int64)) for s in tensors.values()]
    else:
        counts = [
            int(np.prod([int(d) for d in s[1]], dtype=np.int64)) if isinstance(s, tuple)
            else int(s)
            for s in tensors
        ]  # fmt: skip
    if mode == "stochastic":
        payload = sum(packed_nbytes(n, bits) for n in counts)
    else:
        payload = sum(n * (4 if mode == "fp32" else 2) for n in counts)
    return h + payload
