"""``encode``: a state dict (name -> numpy array) to one frame, with error accounting."""

from __future__ import annotations

import hashlib
from typing import Dict, Iterator, List, Mapping, Tuple, Union

import numpy as np
import zstandard

from .bitpack import ALIGNED, DENSE, pack
from .config import CodecConfig, EncodeResult, TensorStats
from .errors import ConfigError, EncodeInputError
from .frame import (
    DTYPE_CODES,
    ENC_FP16,
    ENC_QUANT,
    ENC_RAW,
    FIXED_HEADER_BYTES,
    FLAG_ZSTD,
    MAX_NAME_BYTES,
    MAX_NDIM,
    MAX_TENSORS,
    TRAILER_BYTES,
    VERSION,
    FrameHeader,
    Manifest,
    TensorEntry,
    build_manifest,
    pack_header,
)
from .quantize import plan, quantize

__all__ = ["encode", "iter_chunks"]

_F16_MAX = float(np.finfo(np.float16).max)


def _check_tensor(name: object, value: object) -> np.ndarray:
    if not isinstance(name, str):
        raise EncodeInputError(f"tensor names must be str, got {type(name).__name__}")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise EncodeInputError(
            f"tensor name {name[:40]!r}... is longer than {MAX_NAME_BYTES} bytes"
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as e:
        raise EncodeInputError(f"tensor name {name!r} is not encodable as UTF-8") from e
    arr = np.asarray(value)
    if arr.dtype.name not in DTYPE_CODES:
        raise EncodeInputError(
            f"tensor {name!r} has dtype {arr.dtype}, which the codec does not carry; convert it "
            f"to one of {sorted(DTYPE_CODES)} first (e.g. bfloat16 -> float32)"
        )
    if arr.ndim > MAX_NDIM:
        raise EncodeInputError(f"tensor {name!r} has {arr.ndim} dimensions, above {MAX_NDIM}")
    return arr


def _raw_bytes(arr: np.ndarray) -> np.ndarray:
    """The tensor's bytes, little-endian, C order, as a flat uint8 array."""
    le = arr.dtype.newbyteorder("<")
    return np.ascontiguousarray(arr, dtype=le).reshape(-1).view(np.uint8)


def _fp16(name: str, arr: np.ndarray) -> Tuple[np.ndarray, TensorStats]:
    if arr.size and not np.all(np.isfinite(arr)):
        raise EncodeInputError(f"tensor {name!r} holds NaN or infinite values; use mode='fp32'")
    if arr.size and float(np.max(np.abs(arr))) > _F16_MAX:
        raise EncodeInputError(
            f"tensor {name!r} exceeds the float16 range (|x| > {_F16_MAX}); use mode='fp32'"
        )
    half = np.ascontiguousarray(arr, dtype="<f2")
    diff = half.astype(np.float64) - arr.astype(np.float64)
    # round-to-nearest error is at most half the float16 spacing at each value
    spacing = np.spacing(np.abs(half)).astype(np.float64) / 2.0
    span = float(arr.max()) - float(arr.min()) if arr.size else 0.0
    stats = TensorStats(
        int(arr.size), float(np.dot(diff.ravel(), diff.ravel())),
        float(np.dot(spacing.ravel(), spacing.ravel())), span, "fp16",
    )  # fmt: skip
    return half.reshape(-1).view(np.uint8), stats


def _float32_flat(name: str, arr: np.ndarray) -> np.ndarray:
    """The tensor as a flat float32 array (a view when it already is one, C-contiguous)."""
    flat = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)
    if arr.dtype != np.float32 and not np.all(np.isfinite(flat)) and np.all(np.isfinite(arr)):
        raise EncodeInputError(
            f"tensor {name!r} has values beyond the float32 range; send it with mode='fp32'"
        )
    return flat


def encode(tensors: Mapping[str, np.ndarray], config: CodecConfig = CodecConfig()) -> EncodeResult:
    """Encode a state dict into one frame (see docs/codec.md for the layout).

    Float tensors are quantized (``mode="stochastic"``), rounded to float16 (``"fp16"``) or
    carried exactly (``"fp32"``); every other dtype is carried exactly. Names, order, shapes and
    dtypes are preserved. Raises :class:`EncodeInputError` for an unsupported dtype or NaN/inf
    in a tensor that must be quantized, :class:`ConfigError` for a bad ``config``.
    """
    if not isinstance(config, CodecConfig):
        raise ConfigError(f"config must be a CodecConfig, got {type(config).__name__}")
    if len(tensors) > MAX_TENSORS:
        raise EncodeInputError(f"{len(tensors)} tensors, above the format's {MAX_TENSORS}")
    bits = config.frame_bits
    block = config.effective_block_size
    layout = DENSE if config.zstd_level is None else ALIGNED
    entries: List[TensorEntry] = []
    exact: List[np.ndarray] = []
    stats: Dict[str, TensorStats] = {}
    q_names: List[str] = []
    q_flat: List[np.ndarray] = []
    raw_total = 0
    for name, value in tensors.items():
        arr = _check_tensor(name, value)
        raw_total += arr.nbytes
        shape = tuple(int(d) for d in arr.shape)
        is_float = arr.dtype.kind == "f"
        if config.mode == "stochastic" and is_float and arr.size:
            entries.append(TensorEntry(name, arr.dtype, shape, ENC_QUANT, int(arr.size)))
            q_names.append(name)
            q_flat.append(_float32_flat(name, arr))
        elif config.mode == "fp16" and is_float and arr.dtype != np.float16:
            data, st = _fp16(name, arr)
            entries.append(TensorEntry(name, arr.dtype, shape, ENC_FP16, int(arr.size)))
            exact.append(data)
            stats[name] = st
        else:
            entries.append(TensorEntry(name, arr.dtype, shape, ENC_RAW, int(arr.size)))
            exact.append(_raw_bytes(arr))
            stats[name] = TensorStats(int(arr.size), 0.0, 0.0, 0.0, "raw")
    manifest = Manifest(config.mode, bits, layout, block, entries)
    if q_flat:
        groups = plan([a.size for a in q_flat], block)
        q = quantize(q_flat, q_names, groups, bits, np.random.SFC64(config.seed))
        manifest.offsets, manifest.steps = q.offsets, q.steps
        exact.append(pack(q.symbols, bits, layout))
        for i, (name, flat) in enumerate(zip(q_names, q_flat)):
            stats[name] = TensorStats(
                int(flat.size),
                float(q.sq_error[i]),
                float(q.bound[i]),
                float(q.value_range[i]),
                "quantized",
            )
        stats = {name: stats[name] for name in tensors}  # manifest order
    # one part (the usual update: every tensor quantized) goes to zstd without a copy
    payload: Union[bytes, memoryview] = (
        exact[0].data if len(exact) == 1 else b"".join(p.data for p in exact)
    )
    flags = 0
    stored: Union[bytes, memoryview] = payload
    if config.zstd_level is not None:
        stored = zstandard.ZstdCompressor(level=config.zstd_level).compress(payload)
        flags |= FLAG_ZSTD
    manifest_bytes = build_manifest(manifest)
    header = pack_header(
        FrameHeader(
            VERSION,
            flags,
            FIXED_HEADER_BYTES + len(manifest_bytes) + len(stored) + TRAILER_BYTES,
            len(manifest_bytes),
            len(payload),
            len(stored),
        )
    )
    digest = hashlib.sha256(header)
    digest.update(manifest_bytes)
    digest.update(stored)
    trailer = digest.digest()
    digest.update(trailer)  # now the sha256 of the whole frame, trailer included
    frame = b"".join((header, manifest_bytes, stored, trailer))
    return EncodeResult(
        frame=frame,
        sha256=digest.hexdigest(),
        raw_bytes=raw_total,
        packed_bytes=len(payload),
        frame_bytes=len(frame),
        tensor_stats=stats,
    )


def iter_chunks(
    frame: Union[bytes, bytearray, memoryview], chunk_size: int = 1 << 20
) -> Iterator[bytes]:
    """Yield ``frame`` in consecutive pieces of at most ``chunk_size`` bytes (default 1 MiB)."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive int, got {chunk_size!r}")
    view = memoryview(frame).cast("B")
    for start in range(0, len(view), chunk_size):
        yield bytes(view[start : start + chunk_size])
