#!/usr/bin/env python3
"""Write greenfed/data/digits.npz from the digits images scikit-learn ships (no download).

scikit-learn is a development dependency only; boards read the .npz with numpy. The file holds
``images`` (1797×1×8×8 uint8, the 0..16 pixel values scaled to 0..255), ``labels`` (int64) and
``split`` (uint8, 1 = held-out test): a stratified 25 % per label drawn with numpy's frozen
``RandomState`` stream, so the metric and the device shards agree on what is held out.
Deterministic: running it again writes the same bytes (checked with ``--check``).

    .venv/bin/python scripts/make_digits_npz.py [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "greenfed" / "data" / "digits.npz"
SPLIT_SEED = 20240305
TEST_FRACTION = 0.25


def build() -> bytes:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    labels = d.target.astype(np.int64)
    rs = np.random.RandomState(SPLIT_SEED)
    split = np.zeros(len(labels), dtype=np.uint8)
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        idx = idx[rs.permutation(len(idx))]
        split[idx[: round(TEST_FRACTION * len(idx))]] = 1
    buf = io.BytesIO()
    np.savez_compressed(buf, images=images, labels=labels, split=split)
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the shipped file only")
    args = ap.parse_args()
    data = build()
    digest = hashlib.sha256(data).hexdigest()
    if args.check:
        same = OUT.exists() and OUT.read_bytes() == data
        print(f"{OUT}: {'identical' if same else 'DIFFERS'} (sha256 {digest})")
        return 0 if same else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(data)
    print(f"wrote {OUT} ({len(data)} bytes, sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
