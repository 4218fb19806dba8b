"""Receiving one update stream: spool to disk, enforce declared sizes, verify sha256.

Chunks go to a spool file per (round, device) as they arrive, so the coordinator holds no
update in memory while streams are open, and an interrupted stream can resume from the bytes
already on disk. Nothing is decompressed here: sizes are checked against the manifest and the
configured limit first, the checksum next; decoding (bounded) happens in the engine.
"""

from __future__ import annotations

import hashlib
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator

from coordinator.errors import (
    ChecksumMismatch,
    TooManyStreams,
    UploadIncomplete,
    UploadTooLarge,
)
from coordinator.messages import Manifest


class Spool:
    """Spool files under ``root``: ``<round>-<device>-<sha>.part``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, round_no: int, device_id: str, sha256: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", device_id)[:64]
        return self.root / f"{round_no}-{safe}-{sha256[:16]}.part"

    def received(self, round_no: int, device_id: str, sha256: str) -> int:
        p = self.path(round_no, device_id, sha256)
        return p.stat().st_size if p.exists() else 0

    def discard(self, round_no: int, device_id: str, sha256: str) -> None:
        self.path(round_no, device_id, sha256).unlink(missing_ok=True)

    def discard_round(self, round_no: int) -> None:
        for p in self.root.glob(f"{round_no}-*.part"):
            p.unlink(missing_ok=True)

    def receive(self, manifest: Manifest, device_id: str, chunks: Iterable[bytes]) -> Path:
        """Append ``chunks`` after ``manifest.offset``; returns the complete, verified file.

        Raises UploadTooLarge for a stream longer than its manifest (spool discarded),
        UploadIncomplete when the stream ends early (spool kept for a resume), and
        ChecksumMismatch when the complete frame's sha256 differs (spool discarded).
        """
        path = self.path(manifest.round, device_id, manifest.sha256)
        have = path.stat().st_size if path.exists() else 0
        if manifest.offset != have:
            if manifest.offset == 0:
                have = 0  # the agent starts over: drop what we had
            else:
                raise UploadIncomplete(
                    f"resume offset {manifest.offset} does not match the {have} bytes held; "
                    f"ask UploadStatus and resume from there"
                )
        received = have
        # The sha256 is computed as the bytes arrive (after the part already held, on a
        # resume), not by reading the file again at the end. No fsync: a spool file only
        # matters while this process runs (a restart aborts the open round and discards its
        # spool), and syncing 64 MB cost more than the transfer (scripts/bench_transport.py).
        h = _sha256_file(path, have) if have else hashlib.sha256()
        with open(path, "r+b" if have else "wb") as fh:
            fh.seek(have)
            fh.truncate()
            for data in chunks:
                received += len(data)
                if received > manifest.total_bytes:
                    fh.close()
                    path.unlink(missing_ok=True)
                    raise UploadTooLarge(
                        f"stream carries more than its declared {manifest.total_bytes} B"
                    )
                fh.write(data)
                h.update(data)
        if received < manifest.total_bytes:
            raise UploadIncomplete(
                f"stream ended after {received} of {manifest.total_bytes} B; "
                f"resume from byte {received}"
            )
        digest = h.hexdigest()
        if digest != manifest.sha256:
            path.unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"sha256 of the received frame is {digest[:16]}…, the manifest declared "
                f"{manifest.sha256[:16]}…; the update was discarded, upload it again"
            )
        return path


class StreamSlots:
    """Caps on concurrent streams, overall and per device (slow-loris protection).

    Each open stream holds a gRPC worker thread; the overall cap keeps part of the thread pool
    free for other calls (health checks, long polls) whatever clients do, the per-device cap
    keeps one device from taking the whole share. Over either cap a call is refused at once
    with :class:`TooManyStreams` (RESOURCE_EXHAUSTED: agents back off and retry).
    """

    def __init__(self, what: str, total: int, per_device: int) -> None:
        self.what = what
        self.total = max(1, total)
        self.per_device = max(1, per_device)
        self._open: Dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, device_id: str) -> Callable[[], None]:
        """Take a slot for ``device_id``; returns the function that gives it back."""
        with self._lock:
            mine = self._open.get(device_id, 0)
            if mine >= self.per_device:
                raise TooManyStreams(
                    f"device {device_id} already has {mine} {self.what} streams open (limit "
                    f"{self.per_device}); finish or cancel one first"
                )
            if sum(self._open.values()) >= self.total:
                raise TooManyStreams(
                    f"the coordinator has {self.total} {self.what} streams open, its limit; "
                    "retry with backoff"
                )
            self._open[device_id] = mine + 1
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._lock:
                left = self._open.get(device_id, 1) - 1
                if left > 0:
                    self._open[device_id] = left
                else:
                    self._open.pop(device_id, None)

        return release

    @contextmanager
    def hold(self, device_id: str) -> Iterator[None]:
        release = self.take(device_id)
        try:
            yield
        finally:
            release()

    def open_count(self) -> int:
        with self._lock:
            return sum(self._open.values())


def _sha256_file(path: Path, size: int) -> hashlib._Hash:
    """A sha256 object fed with the first ``size`` bytes of ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        left = size
        while left > 0:
            block = fh.read(min(left, 1 << 20))
            if not block:
                break
            h.update(block)
            left -= len(block)
    return h
