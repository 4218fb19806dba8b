"""Update codec: stochastic quantization, bit packing, zstd frames, safe decoding.

numpy only (no torch), shared by the edge agent and the coordinator. See docs/codec.md.

    >>> res = encode({"w": w}, CodecConfig(bits=4, seed=0))
    >>> out = decode(res.frame, max_frame_bytes=1 << 26, max_decoded_bytes=1 << 28)
"""

from __future__ import annotations

from .config import DEFAULT_ZSTD_LEVEL, MODES, CodecConfig, EncodeResult, TensorStats
from .decoder import FrameDecoder, Template, decode
from .encoder import encode, iter_chunks
from .errors import (
    BadMagicError,
    BitsOutOfRangeError,
    ChecksumMismatchError,
    CodecError,
    ConfigError,
    DecodedTooLargeError,
    DecodeError,
    DecoderStateError,
    DecompressionError,
    EncodeInputError,
    ExtraDataError,
    FrameTooLargeError,
    InvalidScaleError,
    MalformedHeaderError,
    ManifestError,
    PayloadSizeError,
    TemplateMismatchError,
    TruncatedFrameError,
    UnsupportedVersionError,
)
from .frame import FIXED_HEADER_BYTES, MAGIC, TRAILER_BYTES, VERSION, frame_size, header_bytes
from .info import FrameInfo, frame_info

__all__ = [
    "DEFAULT_ZSTD_LEVEL",
    "FIXED_HEADER_BYTES",
    "MAGIC",
    "MODES",
    "TRAILER_BYTES",
    "VERSION",
    "BadMagicError",
    "BitsOutOfRangeError",
    "ChecksumMismatchError",
    "CodecConfig",
    "CodecError",
    "ConfigError",
    "DecodeError",
    "DecodedTooLargeError",
    "DecoderStateError",
    "DecompressionError",
    "EncodeInputError",
    "EncodeResult",
    "ExtraDataError",
    "FrameDecoder",
    "FrameInfo",
    "FrameTooLargeError",
    "InvalidScaleError",
    "MalformedHeaderError",
    "ManifestError",
    "PayloadSizeError",
    "Template",
    "TemplateMismatchError",
    "TensorStats",
    "TruncatedFrameError",
    "UnsupportedVersionError",
    "decode",
    "encode",
    "frame_info",
    "frame_size",
    "header_bytes",
    "iter_chunks",
]
