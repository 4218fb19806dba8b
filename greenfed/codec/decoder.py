"""Safe decoding: ``decode`` for a whole frame, ``FrameDecoder`` for chunks as they arrive.

Order of checks (each before anything is allocated for the frame or decompressed):
frame size vs ``max_frame_bytes`` → magic → version → header sizes add up → declared raw payload
vs ``max_decoded_bytes`` → received length vs declared (truncated / extra) → sha256 trailer →
manifest (bits, scales, names) → decoded tensor bytes vs ``max_decoded_bytes`` → template →
payload length vs manifest → zstd frame parameters (content size, window) → bounded
decompression → unpacking.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import zstandard

from .bitpack import unpack_chunk
from .errors import (
    ChecksumMismatchError,
    ConfigError,
    DecodedTooLargeError,
    DecodeError,
    DecoderStateError,
    DecompressionError,
    ExtraDataError,
    FrameTooLargeError,
    PayloadSizeError,
    TemplateMismatchError,
    TruncatedFrameError,
)
from .frame import (
    ENC_FP16,
    ENC_QUANT,
    FIXED_HEADER_BYTES,
    TRAILER_BYTES,
    FrameHeader,
    Manifest,
    TensorEntry,
    parse_header,
    parse_manifest,
)
from .quantize import dequantize, plan

__all__ = ["FrameDecoder", "Template", "decode"]

Buffer = Union[bytes, bytearray, memoryview]
Template = Mapping[str, Tuple[Sequence[int], Any]]  # name -> (shape, dtype-like)
_MAX_WINDOW_LOG = 27  # 128 MiB: zstd's default limit; frames here use far less


def _check_limit(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a non-negative int, got {value!r}")
    return value


def _check_header_limits(header: FrameHeader, max_frame_bytes: int, max_decoded: int) -> None:
    if header.frame_bytes > max_frame_bytes:
        raise FrameTooLargeError(
            f"frame declares {header.frame_bytes} bytes, above max_frame_bytes="
            f"{max_frame_bytes}; refuse it, or raise the limit if such updates are expected"
        )
    if header.payload_raw_bytes > max_decoded:
        raise DecodedTooLargeError(
            f"frame declares a {header.payload_raw_bytes}-byte uncompressed payload, above "
            f"max_decoded_bytes={max_decoded}; refuse it (a zstd bomb?) or raise the limit"
        )


def _check_template(manifest: Manifest, template: Template) -> None:
    names = [t.name for t in manifest.tensors]
    missing = [n for n in template if n not in set(names)]
    extra = [n for n in names if n not in template]
    if missing or extra:
        raise TemplateMismatchError(
            f"tensor names differ from the expected model: missing {missing[:5]}, unexpected "
            f"{extra[:5]} (sender built a different model version?)"
        )
    for t in manifest.tensors:
        shape, dtype = template[t.name]
        try:
            want_shape = tuple(int(d) for d in shape)
            want_dtype = np.dtype(dtype)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"template entry for {t.name!r} is not (shape, dtype): {e}") from e
        if t.shape != want_shape or t.dtype != want_dtype:
            raise TemplateMismatchError(
                f"tensor {t.name!r} is {t.dtype}{list(t.shape)}, expected "
                f"{want_dtype}{list(want_shape)}"
            )


def _decompress_streaming(
    dctx: zstandard.ZstdDecompressor, stored: memoryview, raw_bytes: int
) -> bytes:
    try:
        obj = dctx.decompressobj(write_size=max(raw_bytes, 1))
        out = obj.decompress(stored)
    except zstandard.ZstdError as e:
        raise DecompressionError(f"zstd payload is corrupt: {e}") from e
    if not obj.eof:
        raise DecompressionError("zstd payload ends before its frame does")
    if obj.unused_data:
        raise DecompressionError(f"payload holds {len(obj.unused_data)} bytes after its zstd frame")
    return out


def _decompress(stored: memoryview, raw_bytes: int) -> bytes:
    try:
        params = zstandard.get_frame_parameters(stored)
    except zstandard.ZstdError as e:
        raise DecompressionError(f"payload is not a zstd frame: {e}") from e
    if params.content_size != raw_bytes:
        raise DecompressionError(
            f"zstd frame declares {params.content_size} content bytes, header says {raw_bytes}"
        )
    window_log = max(10, int(raw_bytes - 1).bit_length() if raw_bytes > 1 else 0)
    window_log = min(window_log, _MAX_WINDOW_LOG)
    if params.window_size > (1 << window_log):
        raise DecompressionError(
            f"zstd frame asks for a {params.window_size}-byte window for {raw_bytes} bytes"
        )
    dctx = zstandard.ZstdDecompressor(max_window_size=1 << window_log)
    try:
        # the output buffer is the verified content size; libzstd refuses to write more
        out = dctx.decompress(stored, max_output_size=raw_bytes, allow_extra_data=False)
    except TypeError:  # zstandard < 0.20 has no allow_extra_data: slower streaming check
        out = _decompress_streaming(dctx, stored, raw_bytes)
    except zstandard.ZstdError as e:
        raise DecompressionError(f"zstd payload is corrupt or has trailing data: {e}") from e
    if len(out) != raw_bytes:
        raise DecompressionError(f"zstd payload gave {len(out)} bytes, expected {raw_bytes}")
    return out


def _exact(entry: TensorEntry, data: np.ndarray) -> np.ndarray:
    """A raw or fp16 section back to the tensor (a fresh array in native byte order)."""
    if entry.encoding == ENC_FP16:
        with np.errstate(invalid="ignore"):  # forged payloads may hold signalling NaNs
            return data.view("<f2").astype(entry.dtype).reshape(entry.shape)
    if entry.dtype == np.bool_:
        return (data != 0).reshape(entry.shape)
    le = entry.dtype.newbyteorder("<")
    return data.view(le).astype(entry.dtype, copy=True).reshape(entry.shape)


def _quantized(manifest: Manifest, packed: np.ndarray) -> Dict[str, np.ndarray]:
    """Every quantized tensor from the one packed symbol sequence. float32 tensors are views of
    one flat output buffer; other float dtypes are converted copies."""
    entries = manifest.quantized
    groups = plan([t.numel for t in entries], manifest.block_size)
    bits, n, layout = manifest.bits, groups.total, manifest.layout

    def symbols(start: int, stop: int) -> np.ndarray:
        return unpack_chunk(packed, bits, n, layout, start, stop - start)

    flat = np.empty(n, dtype=np.float32)
    dequantize(symbols, manifest.offsets, manifest.steps, groups, flat)
    out: Dict[str, np.ndarray] = {}
    bounds = groups.tensor_starts.tolist()
    for i, entry in enumerate(entries):
        values = flat[bounds[i] : bounds[i + 1]]
        if entry.dtype != np.float32:
            with np.errstate(over="ignore"):  # the grid was checked against the dtype's range
                values = values.astype(entry.dtype)
        out[entry.name] = values.reshape(entry.shape)
    return out


def _decode_body(
    buf: memoryview,
    header: FrameHeader,
    max_decoded_bytes: int,
    template: Optional[Template],
) -> Dict[str, np.ndarray]:
    """Everything after the checksum: manifest, limits, template, payload, tensors."""
    m_start = FIXED_HEADER_BYTES
    p_start = m_start + header.manifest_bytes
    manifest = parse_manifest(bytes(buf[m_start:p_start]))
    decoded = manifest.decoded_nbytes()
    if decoded > max_decoded_bytes:
        raise DecodedTooLargeError(
            f"frame's tensors need {decoded} bytes, above max_decoded_bytes="
            f"{max_decoded_bytes}; refuse it or raise the limit"
        )
    if template is not None:
        _check_template(manifest, template)
    expected = manifest.payload_nbytes()
    if expected != header.payload_raw_bytes:
        raise PayloadSizeError(
            f"manifest implies a {expected}-byte payload, header declares "
            f"{header.payload_raw_bytes}: the sender's codec is inconsistent"
        )
    stored = buf[p_start : p_start + header.payload_bytes]
    if header.compressed:
        payload = np.frombuffer(_decompress(stored, expected), dtype=np.uint8)
    else:
        payload = np.frombuffer(stored, dtype=np.uint8)
    exact: Dict[str, np.ndarray] = {}
    offset = 0
    for entry in manifest.tensors:
        if entry.encoding != ENC_QUANT:
            size = entry.exact_nbytes()
            exact[entry.name] = _exact(entry, payload[offset : offset + size])
            offset += size
    quantized = _quantized(manifest, payload[offset:]) if manifest.quantized else {}
    return {
        t.name: quantized[t.name] if t.encoding == ENC_QUANT else exact[t.name]
        for t in manifest.tensors
    }


def _verify_trailer(buf: memoryview, digest: hashlib._Hash) -> str:
    """Compare the trailer with the running digest of the body; return the frame's hex sha256."""
    trailer = bytes(buf[-TRAILER_BYTES:])
    if not hmac.compare_digest(digest.digest(), trailer):
        raise ChecksumMismatchError(
            "sha256 trailer does not match the frame: it was corrupted in transit or storage; "
            "request it again"
        )
    digest.update(trailer)
    return digest.hexdigest()


def _check_expected_sha(actual: str, expected: Optional[str]) -> None:
    if expected is not None and actual != expected.lower():
        raise ChecksumMismatchError(
            f"frame sha256 {actual} differs from the declared {expected}: the upload does not "
            "match its manifest; resend it"
        )


def decode(
    frame: Buffer,
    *,
    max_frame_bytes: int,
    max_decoded_bytes: int,
    template: Optional[Template] = None,
    expected_sha256: Optional[str] = None,
    verified_sha256: Optional[str] = None,
) -> Dict[str, np.ndarray]:
    """Decode a whole frame into ``{name: array}`` (names, order, shapes and dtypes preserved).

    ``max_frame_bytes`` bounds the frame, ``max_decoded_bytes`` the decompressed payload and
    the decoded tensors; both are checked before allocating. ``template`` maps each expected
    name to ``(shape, dtype)``; ``expected_sha256`` is the hex digest the sender declared.
    ``verified_sha256``: the caller has already hashed exactly these bytes and found this hex
    digest equal to what the sender declared (the coordinator's upload spool and the agent's
    download do): the bytes are the sender's, so the trailer is not hashed a second time;
    every structural and size check still runs. Raises only
    :class:`~greenfed.codec.errors.CodecError` subclasses.
    """
    max_frame_bytes = _check_limit("max_frame_bytes", max_frame_bytes)
    max_decoded_bytes = _check_limit("max_decoded_bytes", max_decoded_bytes)
    try:
        buf = memoryview(frame).cast("B")
    except TypeError as e:
        raise ConfigError(f"frame must be bytes-like, got {type(frame).__name__}") from e
    if len(buf) > max_frame_bytes:
        raise FrameTooLargeError(
            f"frame is {len(buf)} bytes, above max_frame_bytes={max_frame_bytes}"
        )
    header = parse_header(buf)
    _check_header_limits(header, max_frame_bytes, max_decoded_bytes)
    if len(buf) < header.frame_bytes:
        raise TruncatedFrameError(
            f"frame is {len(buf)} bytes but declares {header.frame_bytes}: the transfer was "
            "cut; resume or resend it"
        )
    if len(buf) > header.frame_bytes:
        raise ExtraDataError(
            f"{len(buf) - header.frame_bytes} bytes follow the frame's declared end "
            f"({header.frame_bytes} bytes): two frames concatenated, or a corrupt header"
        )
    if verified_sha256 is None:
        sha = _verify_trailer(buf, hashlib.sha256(buf[:-TRAILER_BYTES]))
        _check_expected_sha(sha, expected_sha256)
    else:
        _check_expected_sha(verified_sha256.lower(), expected_sha256)
    return _decode_body(buf, header, max_decoded_bytes, template)


class FrameDecoder:
    """Incremental decoder: ``feed`` chunks as they arrive, then ``finish``.

    Refuses early: a wrong magic or version as soon as 6 bytes are in, a declared size above
    the limits as soon as the 40-byte header is in, bytes beyond the declared size (or beyond
    ``max_frame_bytes`` before the header is complete) as soon as they arrive. Hashes as it
    goes, so ``finish`` does not re-read the frame for the checksum. After an error the decoder
    is spent: further calls raise :class:`DecoderStateError`.
    """

    def __init__(
        self,
        max_frame_bytes: int,
        max_decoded_bytes: int,
        template: Optional[Template] = None,
        expected_sha256: Optional[str] = None,
    ) -> None:
        self.max_frame_bytes = _check_limit("max_frame_bytes", max_frame_bytes)
        self.max_decoded_bytes = _check_limit("max_decoded_bytes", max_decoded_bytes)
        self.template = template
        self.expected_sha256 = expected_sha256
        self._buf = bytearray()
        self._header: Optional[FrameHeader] = None
        self._digest = hashlib.sha256()
        self._hashed = 0
        self._state = "open"  # open | failed | done
        self.sha256: Optional[str] = None  # hex of the whole frame, after finish()

    @property
    def received_bytes(self) -> int:
        return len(self._buf)

    @property
    def expected_bytes(self) -> Optional[int]:
        """The declared frame size, once the header has arrived."""
        return None if self._header is None else self._header.frame_bytes

    def _check_open(self) -> None:
        if self._state != "open":
            raise DecoderStateError(
                f"FrameDecoder is {self._state}; create a new one for the next frame"
            )

    def feed(self, chunk: Buffer) -> None:
        """Append a chunk; raise a DecodeError as soon as the data is known to be bad."""
        self._check_open()
        try:
            self._feed(chunk)
        except DecodeError:
            self._state = "failed"
            self._buf = bytearray()
            raise

    def _feed(self, chunk: Buffer) -> None:
        try:
            view = memoryview(chunk).cast("B")
        except TypeError as e:
            raise ConfigError(f"chunk must be bytes-like, got {type(chunk).__name__}") from e
        limit = self.max_frame_bytes if self._header is None else self._header.frame_bytes
        if len(self._buf) + len(view) > limit:
            if self._header is None:
                raise FrameTooLargeError(
                    f"received {len(self._buf) + len(view)} bytes, above max_frame_bytes="
                    f"{self.max_frame_bytes}"
                )
            raise ExtraDataError(
                f"received {len(self._buf) + len(view) - limit} bytes beyond the declared "
                f"frame size {limit}; the sender sent more than it declared"
            )
        self._buf += view
        if self._header is None:
            if len(self._buf) >= 6 or len(self._buf) >= FIXED_HEADER_BYTES:
                if len(self._buf) < FIXED_HEADER_BYTES:
                    try:  # magic and version only; the size fields are not in yet
                        parse_header(bytes(self._buf))
                    except TruncatedFrameError:
                        return
                    return
                header = parse_header(bytes(self._buf[:FIXED_HEADER_BYTES]))
                _check_header_limits(header, self.max_frame_bytes, self.max_decoded_bytes)
                if len(self._buf) > header.frame_bytes:
                    raise ExtraDataError(
                        f"received {len(self._buf) - header.frame_bytes} bytes beyond the "
                        f"declared frame size {header.frame_bytes}"
                    )
                self._header = header
            else:
                return
        end = self._header.frame_bytes - TRAILER_BYTES
        upto = min(len(self._buf), end)
        if upto > self._hashed:
            self._digest.update(memoryview(self._buf)[self._hashed : upto])
            self._hashed = upto

    def finish(self) -> Dict[str, np.ndarray]:
        """Verify and decode the complete frame; raise TruncatedFrameError if bytes are missing."""
        self._check_open()
        try:
            if self._header is None or len(self._buf) < self._header.frame_bytes:
                raise TruncatedFrameError(
                    f"received {len(self._buf)} bytes, frame declares "
                    f"{self.expected_bytes if self._header else 'a header of 40'}: the "
                    "transfer was cut; resume or resend it"
                )
            buf = memoryview(self._buf)
            sha = _verify_trailer(buf, self._digest)
            _check_expected_sha(sha, self.expected_sha256)
            out = _decode_body(buf, self._header, self.max_decoded_bytes, self.template)
        except DecodeError:
            self._state = "failed"
            raise
        finally:
            self._buf = bytearray()
        self.sha256 = sha
        self._state = "done"
        return out
