"""Encoded updates waiting to be (re)sent, kept on disk so a restarted agent resumes the upload.

``pending-<round>.gfz`` (the frame) and ``pending-<round>.json`` (its sha256 and the report
fields of the round), written atomically in the agent's state directory; a file whose sha256
does not match is ignored (the agent trains again).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional


@dataclass
class Pending:
    """An encoded update waiting to be (re)sent."""

    round: int
    frame: bytes
    sha256: str
    meta: Dict[str, Any]


class PendingStore:
    """``pending-<round>.gfz`` + ``.json`` in the state directory (atomic writes)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def save(self, p: Pending) -> None:
        for suffix, data in (
            (".gfz", p.frame),
            (".json", json.dumps({"round": p.round, "sha256": p.sha256, "meta": p.meta}).encode()),
        ):
            path = self.root / f"pending-{p.round}{suffix}"
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)

    def load(self, round_no: int) -> Optional[Pending]:
        meta_path = self.root / f"pending-{round_no}.json"
        frame_path = self.root / f"pending-{round_no}.gfz"
        try:
            meta = json.loads(meta_path.read_text())
            frame = frame_path.read_bytes()
        except (OSError, ValueError):
            return None
        if hashlib.sha256(frame).hexdigest() != meta.get("sha256"):
            return None
        return Pending(round_no, frame, meta["sha256"], dict(meta.get("meta") or {}))

    def clear(self, keep_round: Optional[int] = None) -> None:
        for path in self.root.glob("pending-*"):
            if keep_round is not None and path.name.startswith(f"pending-{keep_round}."):
                continue
            path.unlink(missing_ok=True)
