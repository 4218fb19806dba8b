"""Receiving one update stream: spool to disk, enforce declared sizes, verify sha256.

Chunks go to disk as they arrive, so the coordinator holds no update in memory while streams
are open, and an interrupted stream can resume from the bytes already held. Nothing is
decompressed here: sizes are checked against the manifest and the configured limit first, the
checksum next (computed as the bytes arrive); decoding (bounded) happens in the engine.

Two streams never share a file. For each (round, device, frame sha256) the spool keeps one
*held part* (``.part``: the longest prefix any ended stream delivered, what UploadStatus
reports and a resume starts from), and every stream writes its own file (``.<n>.stream``:
a copy of the held prefix it resumes after, then its own chunks). When a stream ends short,
its file replaces the held part if it holds more (an atomic rename under the key's lock), else
it is dropped; a complete stream's file is the frame the engine decodes, and the held part is
no longer needed. So a resumed stream may overlap the one it replaces (the design allows it):
whichever ends first hands over what it has, and a second complete copy is refused by the
engine as a duplicate.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import threading
from pathlib import Path
from typing import Iterable, List

from coordinator.errors import ChecksumMismatch, UploadIncomplete, UploadTooLarge
from coordinator.messages import Manifest

_LOCK_STRIPES = 64
_COPY_BLOCK = 1 << 20


class Spool:
    """Spool files under ``root``: ``<round>-<device>-<sha256>.part`` and ``….<n>.stream``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._locks: List[threading.Lock] = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self._streams = itertools.count()

    def _key(self, round_no: int, device_id: str, sha256: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", device_id)[:64]
        sha = re.sub(r"[^0-9a-f]", "_", sha256)[:64]  # validated upstream; never a path part
        return f"{round_no}-{safe}-{sha}"

    def _lock(self, key: str) -> threading.Lock:
        return self._locks[hash(key) % _LOCK_STRIPES]

    def path(self, round_no: int, device_id: str, sha256: str) -> Path:
        """The held part of an upload (its longest delivered prefix)."""
        return self.root / f"{self._key(round_no, device_id, sha256)}.part"

    def received(self, round_no: int, device_id: str, sha256: str) -> int:
        p = self.path(round_no, device_id, sha256)
        return p.stat().st_size if p.exists() else 0

    def discard_round(self, round_no: int) -> None:
        for p in self.root.glob(f"{round_no}-*"):
            p.unlink(missing_ok=True)

    def receive(self, manifest: Manifest, device_id: str, chunks: Iterable[bytes]) -> Path:
        """Take one stream of ``manifest``'s frame from ``manifest.offset`` on.

        Returns the complete, verified frame's file (this stream's own: the caller removes it).
        Raises UploadTooLarge for a stream longer than its manifest (its bytes dropped),
        UploadIncomplete when it ends early (its bytes handed over for a resume), and
        ChecksumMismatch when the complete frame's sha256 differs (everything held dropped).
        """
        key = self._key(manifest.round, device_id, manifest.sha256)
        part = self.root / f"{key}.part"
        mine = self.root / f"{key}.{next(self._streams)}.stream"
        h = hashlib.sha256()
        with self._lock(key):
            have = part.stat().st_size if part.exists() else 0
            if manifest.offset not in (0, have):
                raise UploadIncomplete(
                    f"resume offset {manifest.offset} does not match the {have} bytes held; "
                    f"ask UploadStatus and resume from there"
                )
            try:
                _copy_prefix(part, mine, manifest.offset, h)
            except BaseException:
                mine.unlink(missing_ok=True)
                raise
        received = manifest.offset
        try:
            with open(mine, "ab") as fh:
                for data in chunks:
                    received += len(data)
                    if received > manifest.total_bytes:
                        raise UploadTooLarge(
                            f"stream carries more than its declared {manifest.total_bytes} B"
                        )
                    fh.write(data)
                    h.update(data)
        except UploadTooLarge:
            mine.unlink(missing_ok=True)
            raise
        except BaseException:
            self._hand_over(key, mine)  # cancelled, cut or refused mid-stream: keep its bytes
            raise
        if received < manifest.total_bytes:
            held = self._hand_over(key, mine)
            raise UploadIncomplete(
                f"stream ended after {received} of {manifest.total_bytes} B; "
                f"resume from byte {held}"
            )
        digest = h.hexdigest()
        with self._lock(key):
            part.unlink(missing_ok=True)  # complete: the prefix is no longer needed
        if digest != manifest.sha256:
            mine.unlink(missing_ok=True)
            raise ChecksumMismatch(
                f"sha256 of the received frame is {digest[:16]}…, the manifest declared "
                f"{manifest.sha256[:16]}…; the update was discarded, upload it again"
            )
        return mine

    def _hand_over(self, key: str, mine: Path) -> int:
        """Keep the longer of the held part and this stream's file; returns the bytes held."""
        part = self.root / f"{key}.part"
        with self._lock(key):
            try:
                size = mine.stat().st_size
            except FileNotFoundError:
                size = 0
            have = part.stat().st_size if part.exists() else 0
            if size > have:
                os.replace(mine, part)
                return size
            mine.unlink(missing_ok=True)
            return have


def _copy_prefix(src: Path, dst: Path, size: int, h: hashlib._Hash) -> None:
    """Start ``dst`` with the first ``size`` bytes of ``src``, feeding them to ``h``."""
    with open(dst, "wb") as out:
        if size == 0:
            return
        with open(src, "rb") as fh:
            left = size
            while left > 0:
                block = fh.read(min(left, _COPY_BLOCK))
                if not block:
                    raise UploadIncomplete("the held part shrank during a resume; start over")
                out.write(block)
                h.update(block)
                left -= len(block)
