"""The frame format: fixed header, manifest, payload, sha256 trailer (layout in docs/codec.md).

All integers little-endian. ``parse_header`` and ``parse_manifest`` read untrusted bytes: every
read is bounds-checked first and every count is limited before anything is allocated, so a
hostile header yields a :class:`~greenfed.codec.errors.DecodeError`, never an ``IndexError``,
``struct.error`` or a huge allocation.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .bitpack import DENSE, LAYOUTS, packed_nbytes
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
VERSION = 2  # 1: per-tensor sections (greenfed before issue 18), refused with a clear error
FLAG_ZSTD = 0x0001
_HEADER = struct.Struct("<4sHHQIIQQ")
FIXED_HEADER_BYTES = _HEADER.size  # 40
TRAILER_BYTES = 32  # sha256 of every byte before it
_MANIFEST_HEAD = struct.Struct("<BBBBII")  # mode, bits, layout, reserved, block_size, n_tensors
_TABLE = np.dtype(
    [
        ("name_len", "<u2"),
        ("dtype", "u1"),
        ("encoding", "u1"),
        ("ndim", "u1"),
        ("reserved", "u1", 3),
    ]
)  # one 8-byte row per tensor
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
    """One tensor of the manifest."""

    name: str
    dtype: np.dtype
    shape: Tuple[int, ...]
    encoding: int
    numel: int = 0

    def exact_nbytes(self) -> int:
        """Payload bytes of a raw or fp16 section (0 for a quantized tensor)."""
        if self.encoding == ENC_QUANT:
            return 0
        if self.encoding == ENC_FP16:
            return 2 * self.numel
        return self.dtype.itemsize * self.numel

    def decoded_nbytes(self) -> int:
        return self.dtype.itemsize * self.numel


@dataclass
class Manifest:
    """The parsed manifest; ``offsets``/``steps``: float32, one per scale group of the quantized
    tensors in manifest order (see :func:`greenfed.codec.quantize.plan`)."""

    mode: str
    bits: int
    layout: int
    block_size: int
    tensors: List[TensorEntry]
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    @property
    def quantized(self) -> List[TensorEntry]:
        return [t for t in self.tensors if t.encoding == ENC_QUANT]

    def payload_nbytes(self) -> int:
        exact = sum(t.exact_nbytes() for t in self.tensors)
        symbols = sum(t.numel for t in self.quantized)
        return exact + (packed_nbytes(symbols, self.bits, self.layout) if symbols else 0)

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
        older = version < VERSION
        raise UnsupportedVersionError(
            f"frame format version {version} was written by {'an older' if older else 'a newer'}"
            f" greenfed; this build reads version {VERSION} only: upgrade "
            f"{'the sender' if older else 'this side'} so that agent and coordinator run the "
            "same release"
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


def build_manifest(manifest: Manifest) -> bytes:
    """Head, tensor table, names, dims, then every group's offset and step (see the layout)."""
    tensors = manifest.tensors
    names = [t.name.encode("utf-8") for t in tensors]
    table = np.zeros(len(tensors), dtype=_TABLE)
    table["name_len"] = [len(n) for n in names]
    table["dtype"] = [DTYPE_CODES[t.dtype.name] for t in tensors]
    table["encoding"] = [t.encoding for t in tensors]
    table["ndim"] = [len(t.shape) for t in tensors]
    dims = np.array([d for t in tensors for d in t.shape], dtype="<u8")
    head = _MANIFEST_HEAD.pack(
        MODE_CODES[manifest.mode],
        manifest.bits,
        manifest.layout,
        0,
        manifest.block_size,
        len(tensors),
    )
    return b"".join(
        (
            head,
            table.tobytes(),
            *names,
            dims.tobytes(),
            manifest.offsets.astype("<f4").tobytes(),
            manifest.steps.astype("<f4").tobytes(),
        )
    )


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


def _need(buf: bytes, end: int, what: str) -> None:
    if end > len(buf):
        raise ManifestError(
            f"manifest ends inside {what} (needs {end} bytes, has {len(buf)}): the frame is corrupt"
        )


# dtype code -> 0 unknown, 1 carried exactly only, 2 float (may be quantized or fp16)
_CODE_KIND = np.zeros(256, dtype=np.uint8)
_CODE_KIND[sorted(DTYPES)] = 1
_CODE_KIND[[DTYPE_CODES[n] for n in ("float16", "float32", "float64")]] = 2
_F32_MAX = float(np.finfo(np.float32).max)
# largest value a grid may reach per float dtype (float16 rounds up to 65504 * (1 + 2**-11)
# down to 65504, so allow that slack)
_GRID_LIMIT = {
    np.dtype(n): min(float(np.finfo(n).max) * (1 + 2.0**-12), _F32_MAX)
    for n in ("float16", "float32", "float64")
}


def _first_bad(bad: np.ndarray, names_or_index: Sequence[object]) -> object:
    return names_or_index[int(np.argmax(bad))]


def parse_manifest(buf: bytes) -> Manifest:
    """Parse and validate a manifest (bits, layout, table, names, dims, scales); allocates only
    arrays whose size the bytes already hold. The tensor table is read as one numpy array."""
    _need(buf, _MANIFEST_HEAD.size, "the head")
    mode_code, bits, layout, reserved, block_size, n = _MANIFEST_HEAD.unpack_from(buf)
    if mode_code not in MODE_NAMES:
        raise ManifestError(f"unknown mode code {mode_code} (known: {sorted(MODE_NAMES)})")
    mode = MODE_NAMES[mode_code]
    _check_bits(mode, bits)
    if reserved:
        raise ManifestError(f"reserved manifest field is {reserved}, not 0")
    if layout not in LAYOUTS:
        raise ManifestError(f"unknown symbol layout {layout} (known: {list(LAYOUTS)})")
    if block_size >= 2**31:
        raise ManifestError(f"block size {block_size} is not below 2**31")
    if n > MAX_TENSORS:
        raise ManifestError(f"manifest declares {n} tensors, above {MAX_TENSORS}")
    pos = _MANIFEST_HEAD.size
    _need(buf, pos + _TABLE.itemsize * n, f"the table of {n} tensors")
    table = np.frombuffer(buf, dtype=_TABLE, count=n, offset=pos)
    pos += _TABLE.itemsize * n
    name_len = table["name_len"].astype(np.int64)
    ndim = table["ndim"].astype(np.int64)
    codes, encodings = table["dtype"], table["encoding"]
    index = list(range(n))
    for bad, why in (
        (name_len > MAX_NAME_BYTES, f"a name longer than {MAX_NAME_BYTES} bytes"),
        (_CODE_KIND[codes] == 0, "an unknown dtype code"),
        ((encodings > ENC_QUANT) | table["reserved"].any(axis=1), "an unknown encoding"),
        (ndim > MAX_NDIM, f"more than {MAX_NDIM} dimensions"),
    ):
        if bad.any():
            raise ManifestError(f"tensor {_first_bad(bad, index)} has {why}")
    is_float = _CODE_KIND[codes] == 2
    quant, fp16 = encodings == ENC_QUANT, encodings == ENC_FP16
    if (quant & ~(is_float & (mode == "stochastic"))).any():
        raise ManifestError(f"tensor {_first_bad(quant, index)} is quantized in {mode} mode")
    if (fp16 & ~(is_float & (mode == "fp16"))).any():
        raise ManifestError(f"tensor {_first_bad(fp16, index)} is fp16 in {mode} mode")
    names_end = pos + int(name_len.sum())
    dims_end = names_end + 8 * int(ndim.sum())
    _need(buf, names_end, "the tensor names")
    _need(buf, dims_end, "the tensor shapes")
    dims = np.frombuffer(buf, dtype="<u8", count=int(ndim.sum()), offset=names_end)
    if dims.size and int(dims.max()) > MAX_NUMEL:
        raise ManifestError(f"a tensor dimension is {int(dims.max())}, above {MAX_NUMEL}")
    dim_list = dims.tolist()
    names = buf[pos:names_end]
    text = names.decode("ascii") if names.isascii() else None  # one decode for ASCII names
    tensors: List[TensorEntry] = []
    seen = set()
    name_pos, dim_pos, groups = 0, 0, 0
    for i, (length, nd, code, enc) in enumerate(
        zip(name_len.tolist(), ndim.tolist(), codes.tolist(), encodings.tolist())
    ):
        end = name_pos + length
        if text is not None:
            name = text[name_pos:end]
        else:
            try:
                name = names[name_pos:end].decode("utf-8")
            except UnicodeDecodeError as e:
                raise ManifestError(f"tensor {i}'s name is not valid UTF-8: {e}") from e
        name_pos = end
        if name in seen:
            raise ManifestError(f"tensor name {name!r} appears twice in the manifest")
        seen.add(name)
        shape = tuple(dim_list[dim_pos : dim_pos + nd])
        dim_pos += nd
        numel = math.prod(shape)
        if numel > MAX_NUMEL:
            raise ManifestError(f"tensor {name!r} declares {numel} elements")
        if enc == ENC_QUANT:
            if not numel:
                raise ManifestError(f"tensor {name!r} is quantized but has no elements")
            groups += group_count(numel, block_size)
        tensors.append(TensorEntry(name, DTYPES[code], shape, enc, numel))
    _need(buf, dims_end + 8 * groups, f"the scales ({groups} groups)")
    if len(buf) != dims_end + 8 * groups:
        raise ManifestError(
            f"manifest has {len(buf) - dims_end - 8 * groups} unexplained bytes after its "
            f"{n} tensors"
        )
    offsets = np.frombuffer(buf, dtype="<f4", count=groups, offset=dims_end).astype(np.float32)
    steps = np.frombuffer(buf, "<f4", count=groups, offset=dims_end + 4 * groups)
    manifest = Manifest(mode, bits, layout, block_size, tensors, offsets, steps.astype(np.float32))
    _check_scales(manifest)
    return manifest


def _check_scales(manifest: Manifest) -> None:
    """All groups' grids at once: offsets finite, steps finite and >= 0, and the grid's top inside
    the output dtype's range."""
    quantized = [t for t in manifest.tensors if t.encoding == ENC_QUANT]
    if not quantized:
        return
    counts = [group_count(t.numel, manifest.block_size) for t in quantized]
    limits = np.repeat([_GRID_LIMIT[t.dtype] for t in quantized], counts)
    levels = (1 << manifest.bits) - 1
    with np.errstate(all="ignore"):  # forged bytes may hold signalling NaNs
        offsets = manifest.offsets.astype(np.float64)
        steps = manifest.steps.astype(np.float64)
        ok = (
            np.isfinite(offsets)
            & np.isfinite(steps)
            & (steps >= 0)
            & (np.abs(offsets) <= limits)
            & (np.abs(offsets + steps * levels) <= limits)
        )
    if ok.all():
        return
    owner = int(np.searchsorted(np.cumsum(counts), int(np.argmin(ok)), side="right"))
    raise InvalidScaleError(
        f"tensor {quantized[owner].name!r} has a non-finite offset, or a negative or non-finite "
        f"step, or a grid beyond {quantized[owner].dtype}'s range: the sender's update holds "
        "NaN/inf or the frame was forged"
    )


TensorSpec = Union[int, Tuple[str, Sequence[int]]]


def _specs(
    tensors: Union[Mapping[str, Sequence[int]], Sequence[TensorSpec]],
) -> List[Tuple[int, int, int]]:
    """(name bytes, ndim, numel) per tensor; element counts alone mean 16-byte names, 1-D."""
    specs: List[Tuple[int, int, int]] = []
    items = tensors.items() if isinstance(tensors, Mapping) else tensors
    for spec in items:
        if isinstance(spec, tuple):
            name, shape = spec
            specs.append((len(name.encode("utf-8")), len(shape), math.prod(int(d) for d in shape)))
        else:
            specs.append((16, 1, int(spec)))
    return specs


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
    total = FIXED_HEADER_BYTES + _MANIFEST_HEAD.size + TRAILER_BYTES
    for name_len, ndim, numel in _specs(tensors):
        total += _TABLE.itemsize + name_len + 8 * ndim
        if mode == "stochastic" and numel:
            total += 8 * group_count(numel, block_size or 0)
    return total


def frame_size(
    tensors: Union[Mapping[str, Sequence[int]], Sequence[TensorSpec]],
    bits: int = 8,
    block_size: Optional[int] = None,
    mode: str = "stochastic",
) -> int:
    """Stored frame bytes ``S(q) = packed(d, q) + h`` (``≈ d*q/8 + h``).

    Exact with the payload stored (``zstd_level=None``, dense layout) when every tensor is a
    float tensor; with zstd it is an upper bound up to zstd's few framing bytes (the allocator
    can scale it by a measured ratio).
    """
    h = header_bytes(tensors, bits, block_size, mode)
    d = sum(numel for _, _, numel in _specs(tensors))
    if mode == "stochastic":
        return h + packed_nbytes(d, bits, DENSE)
    return h + d * (4 if mode == "fp32" else 2)
