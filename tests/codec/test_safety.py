"""Hostile and damaged frames: each failure has its own error class, nothing else escapes."""

from __future__ import annotations

import hashlib
import random
import struct
import tracemalloc
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import pytest
import zstandard

from greenfed import codec
from greenfed.codec import (
    FIXED_HEADER_BYTES,
    VERSION,
    BadMagicError,
    BitsOutOfRangeError,
    ChecksumMismatchError,
    CodecConfig,
    CodecError,
    ConfigError,
    DecodedTooLargeError,
    DecoderStateError,
    DecompressionError,
    ExtraDataError,
    FrameDecoder,
    FrameTooLargeError,
    InvalidScaleError,
    MalformedHeaderError,
    ManifestError,
    PayloadSizeError,
    TemplateMismatchError,
    TruncatedFrameError,
    UnsupportedVersionError,
    decode,
    encode,
)

from .frames import (
    BIG,
    LIMITS,
    OFF_FLAGS,
    OFF_FRAME,
    OFF_MANIFEST,
    OFF_PAYLOAD,
    OFF_RAW,
    OFF_RESERVED,
    OFF_VERSION,
    manifest_parts,
    reseal,
    set_field,
    small_frames,
    small_state,
)

GB = 1 << 30


def q4_frame(**cfg: object) -> bytes:
    return encode(small_state(), CodecConfig(bits=4, seed=1, **cfg)).frame  # type: ignore[arg-type]


def manifest_start() -> int:
    return FIXED_HEADER_BYTES


def replace_payload(frame: bytes, stored: bytes, raw_bytes: int) -> bytes:
    """A forged frame: same manifest, new stored payload and declared raw size, valid sha256."""
    (manifest_bytes,) = struct.unpack_from("<I", frame, OFF_MANIFEST)
    head = bytearray(frame[: FIXED_HEADER_BYTES + manifest_bytes])
    struct.pack_into("<Q", head, OFF_FRAME, len(head) + len(stored) + 32)
    struct.pack_into("<Q", head, OFF_RAW, raw_bytes)
    struct.pack_into("<Q", head, OFF_PAYLOAD, len(stored))
    body = bytes(head) + stored
    return body + hashlib.sha256(body).digest()


def test_limits_are_checked_before_anything_else() -> None:
    frame = q4_frame()
    with pytest.raises(FrameTooLargeError, match="max_frame_bytes"):
        decode(frame, max_frame_bytes=len(frame) - 1, max_decoded_bytes=GB)
    # a 1 GB declared frame: refused from the header alone, even with a small buffer
    huge = declare_gb(random.Random(0), frame, huge_payload=True)
    assert struct.unpack_from("<Q", huge, OFF_FRAME)[0] > GB
    with pytest.raises(FrameTooLargeError):
        decode(huge, max_frame_bytes=1 << 20, max_decoded_bytes=GB)
    dec = FrameDecoder(max_frame_bytes=1 << 20, max_decoded_bytes=GB)
    with pytest.raises(FrameTooLargeError):
        dec.feed(huge[:FIXED_HEADER_BYTES])
    with pytest.raises(DecoderStateError):
        dec.feed(b"x")


def test_zstd_bomb_is_refused_before_decompressing() -> None:
    frame = q4_frame()
    bomb = zstandard.ZstdCompressor(level=3).compress(bytes(64 << 20))  # 64 MiB of zeros
    no_size = zstandard.ZstdCompressor(write_content_size=False).compress(bytes(64 << 20))
    assert len(bomb) < 1 << 16
    forged = replace_payload(frame, bomb, 64 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(DecodedTooLargeError, match="zstd bomb"):
            decode(forged, max_frame_bytes=1 << 20, max_decoded_bytes=1 << 20)
        # declared raw size small (as the manifest implies) but the zstd frame holds 64 MiB
        (raw,) = struct.unpack_from("<Q", frame, OFF_RAW)
        lying = replace_payload(frame, bomb, raw)
        with pytest.raises(DecompressionError, match="content bytes"):
            decode(lying, max_frame_bytes=1 << 20, max_decoded_bytes=1 << 30)
        with pytest.raises(DecompressionError):
            decode(replace_payload(frame, no_size, raw), **LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_truncated_and_extra_data() -> None:
    frame = q4_frame()
    for cut in (0, 3, 5, 20, FIXED_HEADER_BYTES, len(frame) // 2, len(frame) - 1):
        with pytest.raises(TruncatedFrameError):
            decode(frame[:cut], **LIMITS)
        dec = FrameDecoder(**LIMITS)
        dec.feed(frame[:cut])
        with pytest.raises(TruncatedFrameError, match="resend"):
            dec.finish()
    with pytest.raises(ExtraDataError):
        decode(frame + b"\0", **LIMITS)
    with pytest.raises(ExtraDataError):
        decode(frame + frame, **LIMITS)
    dec = FrameDecoder(**LIMITS)
    dec.feed(frame[:50])
    with pytest.raises(ExtraDataError):  # refused as soon as it arrives, before finish()
        dec.feed(frame[50:] + b"more")


def test_identity_and_version() -> None:
    frame = q4_frame()
    with pytest.raises(BadMagicError, match="not a greenfed"):
        decode(b"PK\x03\x04" + frame[4:], **LIMITS)
    with pytest.raises(UnsupportedVersionError, match=r"newer greenfed.*upgrade this side"):
        decode(set_field(frame, OFF_VERSION, "H", VERSION + 1), **LIMITS)
    dec = FrameDecoder(**LIMITS)
    with pytest.raises(UnsupportedVersionError):
        dec.feed(set_field(frame, OFF_VERSION, "H", 9)[:6])  # known after 6 bytes


# A real version-1 frame, written by the codec before the format change of issue 18
# (commit b5009e5): encode({"w": np.arange(8, dtype=np.float32) / 8}, CodecConfig(bits=4, seed=0)).
V1_FRAME = bytes.fromhex(
    "47465543010001007800000000000000230000000000000004000000000000000d00000000000000"
    "0004000000000000010000000100770b020100080000000000000000000000feee6e3d28b52ffd20"
    "0421000002478bdf567df3b97e6376fe8830d59c3e4363a8f0811f76e2b00e2001ec9996fcd295a2"
)


def test_a_version_1_frame_gets_a_clear_error() -> None:
    assert VERSION == 2 and hashlib.sha256(V1_FRAME[:-32]).digest() == V1_FRAME[-32:]
    with pytest.raises(UnsupportedVersionError, match=r"version 1 .* older greenfed.*upgrade"):
        decode(V1_FRAME, **LIMITS)
    dec = FrameDecoder(**LIMITS)
    with pytest.raises(UnsupportedVersionError, match="older"):
        dec.feed(V1_FRAME[:6])  # refused as soon as the version field is in


def test_header_fields() -> None:
    frame = q4_frame()
    with pytest.raises(MalformedHeaderError, match="reserved"):
        decode(set_field(frame, OFF_FLAGS, "H", 0x8001), **LIMITS)
    with pytest.raises(MalformedHeaderError, match="reserved"):
        decode(set_field(frame, OFF_RESERVED, "I", 1), **LIMITS)
    with pytest.raises(MalformedHeaderError, match="add up"):
        decode(set_field(frame, OFF_MANIFEST, "I", 3), **LIMITS)
    with pytest.raises(DecodedTooLargeError):
        decode(set_field(frame, OFF_RAW, "Q", BIG), **LIMITS)
    with pytest.raises(PayloadSizeError):
        (raw,) = struct.unpack_from("<Q", frame, OFF_RAW)
        decode(set_field(frame, OFF_RAW, "Q", raw + 1), **LIMITS)


def test_checksum() -> None:
    frame = bytearray(q4_frame())
    frame[-40] ^= 0x01
    with pytest.raises(ChecksumMismatchError, match="corrupted"):
        decode(bytes(frame), **LIMITS)
    good = q4_frame()
    with pytest.raises(ChecksumMismatchError, match="declared"):
        decode(good, **LIMITS, expected_sha256="0" * 64)


def test_a_transport_verified_frame_skips_only_the_trailer_hash() -> None:
    """The coordinator's spool (and the agent's download) hash the whole frame against the
    sender's declaration; decode then does not hash it again, but checks everything else."""
    good = q4_frame()
    sha = hashlib.sha256(good).hexdigest()
    same = decode(good, **LIMITS)
    fast = decode(good, **LIMITS, verified_sha256=sha, expected_sha256=sha)
    assert all(np.array_equal(same[k], fast[k]) for k in same)
    with pytest.raises(ChecksumMismatchError, match="declared"):
        decode(good, **LIMITS, verified_sha256=sha, expected_sha256="0" * 64)
    broken = bytearray(good)
    broken[-40] ^= 0x01  # a bad trailer: the sender's own (hashed) bytes, decoded anyway
    decode(bytes(broken), **LIMITS, verified_sha256="ab" * 32)
    with pytest.raises(codec.CodecError):  # structure is still checked
        decode(bytes(good[:-50]) + bytes(50), **LIMITS, verified_sha256="ab" * 32)


def manifest_edit(frame: bytes, rel: int, fmt: str, value: float) -> bytes:
    return set_field(frame, manifest_start() + rel, fmt, value)  # type: ignore[arg-type]


def test_bits_mode_and_manifest_structure() -> None:
    frame = q4_frame()
    for bits in (0, 17, 255):
        with pytest.raises(BitsOutOfRangeError, match=r"1\.\.16"):
            decode(manifest_edit(frame, 1, "B", bits), **LIMITS)
    with pytest.raises(ManifestError, match="mode"):
        decode(manifest_edit(frame, 0, "B", 7), **LIMITS)
    with pytest.raises(ManifestError, match="tensors"):
        decode(manifest_edit(frame, 8, "I", 1 << 30), **LIMITS)
    with pytest.raises(ManifestError, match="ends inside"):
        decode(manifest_edit(frame, 8, "I", 50), **LIMITS)
    # first tensor name "conv.weight": make it invalid utf-8, then a duplicate
    with pytest.raises(ManifestError, match="UTF-8"):
        decode(manifest_edit(frame, manifest_parts(frame)["names"], "B", 0xFF), **LIMITS)
    fp32 = encode({"a": np.zeros(2), "b": np.zeros(2)}, CodecConfig(mode="fp32")).frame
    names = manifest_parts(fp32)["names"]
    with pytest.raises(ManifestError, match="twice"):
        decode(manifest_edit(fp32, names + 1, "B", ord("a")), **LIMITS)  # "b" -> "a"
    # dtype code of "a": its table row starts with the u16 name length
    with pytest.raises(ManifestError, match="dtype"):
        decode(manifest_edit(fp32, manifest_parts(fp32)["table"] + 2, "B", 99), **LIMITS)
    with pytest.raises(ManifestError, match="layout"):
        decode(manifest_edit(frame, 2, "B", 7), **LIMITS)


def first_scale_offset(frame: bytes) -> int:
    """Offset (in the manifest) of the first group's offset in the q4 frame."""
    return manifest_parts(frame)["scales"]


@pytest.mark.parametrize(
    "which,value",
    [("offset", float("nan")), ("offset", float("inf")), ("step", float("nan")),
     ("step", -1.0), ("step", 3e38)],
)  # fmt: skip
def test_scales(which: str, value: float) -> None:
    frame = q4_frame()
    rel = first_scale_offset(frame) + (
        0 if which == "offset" else 4 * manifest_parts(frame)["groups"]
    )
    with pytest.raises(InvalidScaleError, match="forged"):
        decode(manifest_edit(frame, rel, "f", value), **LIMITS)


def test_template_mismatch() -> None:
    sd = small_state()
    frame = encode(sd, CodecConfig(bits=4, seed=1)).frame
    template = {k: (v.shape, v.dtype) for k, v in sd.items()}
    decode(frame, **LIMITS, template=template)
    wrong_shape = dict(template, **{"conv.bias": ((5,), np.float32)})
    wrong_dtype = dict(template, **{"conv.bias": ((4,), np.float64)})
    missing = {k: v for k, v in template.items() if k != "emb"}
    extra = dict(template, extra=((1,), np.float32))
    for tpl, pattern in ((wrong_shape, "expected"), (wrong_dtype, "expected"),
                         (missing, "unexpected"), (extra, "missing")):  # fmt: skip
        with pytest.raises(TemplateMismatchError, match=pattern):
            decode(frame, **LIMITS, template=tpl)
        dec = FrameDecoder(**LIMITS, template=tpl)
        dec.feed(frame)
        with pytest.raises(TemplateMismatchError):
            dec.finish()


def test_decoded_size_limit_uses_the_manifest() -> None:
    sd = {"w": np.zeros(100_000, dtype=np.float32)}
    frame = encode(sd, CodecConfig(bits=2, seed=0)).frame
    assert len(frame) < 10_000
    with pytest.raises(DecodedTooLargeError, match="400000"):
        decode(frame, max_frame_bytes=1 << 20, max_decoded_bytes=399_999)
    # a forged shape of 2**40 elements: refused from the manifest, nothing allocated
    forged = manifest_edit(frame, manifest_parts(frame)["dims"], "Q", 1 << 40)
    with pytest.raises(CodecError):
        decode(forged, max_frame_bytes=1 << 20, max_decoded_bytes=GB)


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        decode(q4_frame(), max_frame_bytes=-1, max_decoded_bytes=1)
    with pytest.raises(ConfigError):
        decode("text", **LIMITS)  # type: ignore[arg-type]
    dec = FrameDecoder(**LIMITS)
    dec.feed(q4_frame())
    dec.finish()
    with pytest.raises(DecoderStateError):
        dec.finish()


# ---------------------------------------------------------------- fuzz

Mutation = Callable[[random.Random, bytes], bytes]


def flip(rng: random.Random, f: bytes) -> bytes:
    b = bytearray(f)
    for _ in range(rng.randint(1, 4)):
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def flip_sealed(rng: random.Random, f: bytes) -> bytes:
    return reseal(flip(rng, f[:-32] + bytes(32)))


def cut(rng: random.Random, f: bytes) -> bytes:
    return f[: rng.randrange(len(f))]


def extend(rng: random.Random, f: bytes) -> bytes:
    return f + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))


def header_edit(rng: random.Random, f: bytes) -> bytes:
    off, fmt = rng.choice([(OFF_VERSION, "H"), (OFF_FLAGS, "H"), (OFF_FRAME, "Q"),
                           (OFF_MANIFEST, "I"), (OFF_RAW, "Q"), (OFF_PAYLOAD, "Q")])  # fmt: skip
    value = rng.choice([0, 1, GB, GB + 17, (1 << (8 * struct.calcsize(fmt))) - 1,
                        rng.randrange(1 << (8 * struct.calcsize(fmt)))])  # fmt: skip
    value &= (1 << (8 * struct.calcsize(fmt))) - 1
    return set_field(f, off, fmt, value, seal=rng.random() < 0.7)


def manifest_byte(rng: random.Random, f: bytes) -> bytes:
    (m,) = struct.unpack_from("<I", f, OFF_MANIFEST)
    b = bytearray(f)
    b[FIXED_HEADER_BYTES + rng.randrange(m)] = rng.randrange(256)
    return reseal(bytes(b))


def declare_gb(rng: random.Random, f: bytes, huge_payload: Optional[bool] = None) -> bytes:
    """A 1 GB declared frame/raw size with the other fields made consistent."""
    b = bytearray(f)
    (m,) = struct.unpack_from("<I", f, OFF_MANIFEST)
    if huge_payload is None:
        huge_payload = rng.random() < 0.5
    payload = GB if huge_payload else len(f) - m - 72  # else consistent with the bytes
    struct.pack_into("<Q", b, OFF_PAYLOAD, payload)
    struct.pack_into("<Q", b, OFF_RAW, GB)
    struct.pack_into("<Q", b, OFF_FRAME, 40 + m + payload + 32)
    return reseal(bytes(b))


MUTATIONS: List[Mutation] = [flip, flip_sealed, cut, extend, header_edit, manifest_byte, declare_gb]


def test_fuzz_only_codec_errors_and_bounded_memory() -> None:
    frames = list(small_frames().values())
    rng = random.Random(1234)
    outcomes = {"decoded": 0}
    limits: Dict[str, Any] = {"max_frame_bytes": 1 << 16, "max_decoded_bytes": 1 << 16}
    tracemalloc.start()
    try:
        for i in range(10_500):
            base = frames[i % len(frames)]
            mutated = MUTATIONS[i % len(MUTATIONS)](rng, base)
            try:
                if i % 5 == 0:  # the incremental path, in random-sized chunks
                    dec = FrameDecoder(**limits)
                    pos = 0
                    while pos < len(mutated):
                        step = rng.randint(1, 97)
                        dec.feed(mutated[pos : pos + step])
                        pos += step
                    dec.finish()
                else:
                    decode(mutated, **limits)
                outcomes["decoded"] += 1
            except CodecError as e:
                assert str(e), "every codec error carries a message"
                outcomes[type(e).__name__] = outcomes.get(type(e).__name__, 0) + 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, f"peak traced memory {peak} bytes"
    assert sum(outcomes.values()) == 10_500
    # the mutations reach the deep checks, not only the checksum
    for name in ("ChecksumMismatchError", "TruncatedFrameError", "ExtraDataError",
                 "FrameTooLargeError", "DecodedTooLargeError", "ManifestError",
                 "MalformedHeaderError"):  # fmt: skip
        assert outcomes.get(name, 0) > 0, (name, outcomes)


def test_every_error_class_is_exported_and_distinct() -> None:
    classes: List[Tuple[str, type]] = [
        (n, getattr(codec, n)) for n in codec.__all__ if n.endswith("Error")
    ]
    assert len({c for _, c in classes}) == len(classes) >= 18
    for _, cls in classes:
        assert issubclass(cls, CodecError)


def test_trailing_bytes_after_the_zstd_frame_are_refused() -> None:
    frame = q4_frame()
    (raw,) = struct.unpack_from("<Q", frame, OFF_RAW)
    (manifest_bytes,) = struct.unpack_from("<I", frame, OFF_MANIFEST)
    stored = frame[FIXED_HEADER_BYTES + manifest_bytes : -32]
    decode(replace_payload(frame, stored, raw), **LIMITS)  # the helper itself is faithful
    for tail in (b"\0", stored):  # junk, or a second zstd frame
        with pytest.raises(DecompressionError, match=r"trailing|after"):
            decode(replace_payload(frame, stored + tail, raw), **LIMITS)
        # the streaming path used with zstandard < 0.20 refuses it too
        from greenfed.codec.decoder import _decompress_streaming

        with pytest.raises(DecompressionError, match="after its zstd frame"):
            _decompress_streaming(zstandard.ZstdDecompressor(), memoryview(stored + tail), raw)
    with pytest.raises(DecompressionError):
        decode(replace_payload(frame, stored[:-3], raw), **LIMITS)


def test_signalling_nans_in_a_forged_fp16_payload_raise_no_warning() -> None:
    """pytest turns warnings into errors here: a forged frame must not make numpy warn."""
    nan_bits = np.array([0x7C01, 0xFC01, 0x7E00], dtype="<u2")  # signalling and quiet NaNs
    sd = {"x": np.zeros(3, dtype=np.float32)}
    frame = encode(sd, CodecConfig(mode="fp16", zstd_level=None)).frame
    (manifest_bytes,) = struct.unpack_from("<I", frame, OFF_MANIFEST)
    start = FIXED_HEADER_BYTES + manifest_bytes
    forged = reseal(frame[:start] + nan_bits.tobytes() + frame[start + 6 :])
    out = decode(forged, **LIMITS)["x"]
    assert out.dtype == np.float32 and np.isnan(out).all()
