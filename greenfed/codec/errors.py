"""Errors raised by :mod:`greenfed.codec`.

Every failure of the codec is a :class:`CodecError`; nothing else escapes ``encode``, ``decode``
or :class:`~greenfed.codec.FrameDecoder` (no ``IndexError``, ``struct.error``, ``MemoryError``
from a hostile header). A caller that only wants to refuse an update catches ``DecodeError``;
one that wants to tell the sender what to fix looks at the subclass::

    CodecError                      (a greenfed.errors.GreenfedError)
    ├── ConfigError                 the CodecConfig itself is invalid (mode, bits, block size, ...);
    │                               also a greenfed.errors.ConfigError (a ValueError)
    ├── EncodeInputError            a tensor the encoder cannot represent (dtype, NaN/inf, ...)
    ├── DecoderStateError           FrameDecoder used out of order (feed after finish, ...)
    └── DecodeError                 a received frame is refused; nothing was allocated for it
        ├── FrameTooLargeError      declared/received frame bytes above max_frame_bytes
        ├── DecodedTooLargeError    tensors or payload would exceed max_decoded_bytes
        ├── TruncatedFrameError     fewer bytes than a header or the declared size
        ├── ExtraDataError          bytes beyond the declared frame (or zstd frame) end
        ├── BadMagicError           not a greenfed codec frame at all
        ├── UnsupportedVersionError a format version this build cannot read
        ├── MalformedHeaderError    fixed-header fields inconsistent (sizes, reserved flags)
        ├── ChecksumMismatchError   the sha256 trailer does not match the frame
        ├── ManifestError           manifest unparsable (bad utf-8, dtype code, duplicates, ...)
        ├── BitsOutOfRangeError     quantization bits outside 1..16 (or wrong for the mode)
        ├── InvalidScaleError       a non-finite offset, or a negative/non-finite step
        ├── TemplateMismatchError   names, shapes or dtypes differ from the expected template
        ├── PayloadSizeError        payload length does not match what the manifest implies
        └── DecompressionError      zstd data corrupt, wrong content size or too large a window
"""

from __future__ import annotations

from greenfed.errors import ConfigError as BaseConfigError
from greenfed.errors import GreenfedError

__all__ = [
    "BadMagicError",
    "BitsOutOfRangeError",
    "ChecksumMismatchError",
    "CodecError",
    "ConfigError",
    "DecodeError",
    "DecodedTooLargeError",
    "DecoderStateError",
    "DecompressionError",
    "EncodeInputError",
    "ExtraDataError",
    "FrameTooLargeError",
    "InvalidScaleError",
    "MalformedHeaderError",
    "ManifestError",
    "PayloadSizeError",
    "TemplateMismatchError",
    "TruncatedFrameError",
    "UnsupportedVersionError",
]


class CodecError(GreenfedError):
    """Base class of every error the update codec raises."""


class ConfigError(CodecError, BaseConfigError):
    """The :class:`~greenfed.codec.CodecConfig` (or a size argument) is invalid."""


class EncodeInputError(CodecError, ValueError):
    """A tensor given to ``encode`` cannot be represented (dtype, non-finite values, name)."""


class DecoderStateError(CodecError):
    """A :class:`~greenfed.codec.FrameDecoder` was used out of order."""


class DecodeError(CodecError):
    """A received frame is refused. Subclasses say why; the message says what to do."""


class FrameTooLargeError(DecodeError):
    """The frame (declared or received) is larger than the caller's ``max_frame_bytes``."""


class DecodedTooLargeError(DecodeError):
    """Decoding would produce more than the caller's ``max_decoded_bytes``."""


class TruncatedFrameError(DecodeError):
    """The frame ended before its header or its declared size."""


class ExtraDataError(DecodeError):
    """Bytes arrived beyond the frame's declared end."""


class BadMagicError(DecodeError):
    """The bytes do not start with the codec's magic: not an update frame."""


class UnsupportedVersionError(DecodeError):
    """The frame's format version is not one this build can read."""


class MalformedHeaderError(DecodeError):
    """The fixed header is inconsistent (sizes that do not add up, reserved bits set)."""


class ChecksumMismatchError(DecodeError):
    """The sha256 trailer does not match the frame: corrupted in transit or storage."""


class ManifestError(DecodeError):
    """The manifest cannot be parsed or contradicts itself."""


class BitsOutOfRangeError(DecodeError):
    """The declared quantization bits are outside 1..16 or do not fit the declared mode."""


class InvalidScaleError(DecodeError):
    """A quantization offset is non-finite, or a step is negative or non-finite."""


class TemplateMismatchError(DecodeError):
    """Tensor names, shapes or dtypes differ from the template the caller expects."""


class PayloadSizeError(DecodeError):
    """The payload's declared length does not match what the manifest implies."""


class DecompressionError(DecodeError):
    """The zstd payload is corrupt, declares the wrong content size or too large a window."""
