from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from coordinator.errors import ChecksumMismatch, InvalidRequest, UploadIncomplete, UploadTooLarge
from coordinator.messages import Manifest
from coordinator.uploads import Spool
from coordinator.validation import check_manifest as validate_manifest

DATA = bytes(range(256)) * 100


def manifest(**kw: object) -> Manifest:
    base = dict(
        round=3,
        total_bytes=len(DATA),
        sha256=hashlib.sha256(DATA).hexdigest(),
        offset=0,
        samples=10,
        bits=8,
        mode="stochastic",
    )
    base.update(kw)
    return Manifest(**base)  # type: ignore[arg-type]


def chunks(data: bytes, size: int = 1000) -> list:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_complete_stream_is_verified(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = spool.receive(manifest(), "dev", chunks(DATA))
    assert path.read_bytes() == DATA


def test_truncated_stream_keeps_bytes_and_resumes(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    m = manifest()
    with pytest.raises(UploadIncomplete, match="resume from byte 10000"):
        spool.receive(m, "dev", chunks(DATA[:10_000]))
    assert spool.received(m.round, "dev", m.sha256) == 10_000
    with pytest.raises(UploadIncomplete, match="does not match the 10000 bytes held"):
        spool.receive(manifest(offset=5000), "dev", chunks(DATA[5000:]))
    path = spool.receive(manifest(offset=10_000), "dev", chunks(DATA[10_000:]))
    assert path.read_bytes() == DATA


def test_stream_longer_than_manifest_is_cut_and_discarded(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    m = manifest(total_bytes=1000)
    with pytest.raises(UploadTooLarge, match="more than its declared 1000"):
        spool.receive(m, "dev", chunks(DATA))
    assert spool.received(m.round, "dev", m.sha256) == 0


def test_wrong_checksum_discards(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    m = manifest(sha256="ab" * 32)
    with pytest.raises(ChecksumMismatch, match="upload it again"):
        spool.receive(m, "dev", chunks(DATA))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "kw, error, message",
    [
        ({"total_bytes": 0}, InvalidRequest, "total_bytes"),
        ({"total_bytes": 10**9}, UploadTooLarge, "exceeds the limit"),
        ({"sha256": "xyz"}, InvalidRequest, "sha256"),
        ({"offset": -1}, InvalidRequest, "offset"),
        ({"samples": 0}, InvalidRequest, "samples"),
        ({"mode": "int3"}, InvalidRequest, "mode"),
    ],
)
def test_manifest_validation(kw: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        validate_manifest(manifest(**kw), max_bytes=1 << 20)


def test_device_ids_cannot_escape_the_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert spool.path(1, "../../etc/passwd", "ab" * 32).parent == tmp_path


def test_overlapping_streams_never_share_a_file(tmp_path: Path) -> None:
    """A resumed stream overlaps the one it replaces: each writes its own file, the first to
    end hands over, and neither's clean-up touches the other's bytes."""
    import threading

    spool = Spool(tmp_path)
    m = manifest()
    half = len(DATA) // 2
    paused, resume = threading.Event(), threading.Event()

    def old_stream():  # sends half, then hangs (a dead connection the server has not noticed)
        yield DATA[:half]
        paused.set()
        resume.wait(30)
        raise ConnectionError("the old stream dies at last")

    errors: list = []

    def run_old() -> None:
        try:
            spool.receive(m, "dev", old_stream())
        except ConnectionError as e:
            errors.append(e)

    t = threading.Thread(target=run_old)
    t.start()
    assert paused.wait(30)
    assert spool.received(m.round, "dev", m.sha256) == 0  # nothing handed over yet
    # The agent starts over on a new stream while the old one still runs: it completes.
    path = spool.receive(m, "dev", chunks(DATA))
    assert path.read_bytes() == DATA
    resume.set()
    t.join(30)
    assert errors and path.read_bytes() == DATA  # the old stream's end left this file alone
    # The old stream's bytes were handed over as the held part (a resume could use them).
    assert spool.received(m.round, "dev", m.sha256) == half
    resumed = spool.receive(manifest(offset=half), "dev", chunks(DATA[half:]))
    assert resumed.read_bytes() == DATA and resumed != path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, resumed.name])


def test_the_longer_of_two_broken_streams_is_held(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    m = manifest()
    with pytest.raises(UploadIncomplete, match="resume from byte 3000"):
        spool.receive(m, "dev", chunks(DATA[:3000]))
    # A second stream from offset 0 delivers less: the held part keeps the longer prefix.
    with pytest.raises(UploadIncomplete, match="resume from byte 3000"):
        spool.receive(m, "dev", chunks(DATA[:1000]))
    assert spool.received(m.round, "dev", m.sha256) == 3000
    assert [p.suffix for p in tmp_path.iterdir()] == [".part"]


def test_a_cut_stream_keeps_its_bytes_for_a_resume(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    m = manifest()

    def cut():
        yield DATA[:4000]
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError):
        spool.receive(m, "dev", cut())
    assert spool.received(m.round, "dev", m.sha256) == 4000
    spool.discard_round(m.round)
    assert not list(tmp_path.iterdir())
