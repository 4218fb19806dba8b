#!/usr/bin/env python3
"""Train the quality metric's feature classifier, deterministically (bit for bit).

Default: the digits train split -> greenfed/data/digits_classifier.npz (the shipped file).
Fixed seed, one thread, ``torch.use_deterministic_algorithms``; the weights file is a plain .npz
with a fixed zip timestamp, so the same torch build on the same CPU writes the same bytes.
``--check`` retrains into memory and compares with the shipped file (exit 1 if it differs; a
different torch version or CPU instruction set may legitimately change low bits).

For other data (the metric's limits: the digits classifier means nothing elsewhere) train one
on a labelled train split and pass it to ``QualityMetric(feature_weights=...)``::

    .venv/bin/python scripts/train_classifier.py                  # regenerate the shipped file
    .venv/bin/python scripts/train_classifier.py --check          # verify it bit for bit
    .venv/bin/python scripts/train_classifier.py --data my.npz --heldout my_test.npz --out w.npz
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from greenfed.ddpm.data import ImageData, load_data  # noqa: E402
from greenfed.ddpm.quality import (  # noqa: E402
    DIGITS_CLASSIFIER,
    Classifier,
    ClassifierConfig,
    save_classifier,
)
from scripts.benchlib import write_or_check  # noqa: E402

SEED = 1234


def train(data: ImageData, *, epochs: int, seed: int = SEED, verbose: bool = True) -> Classifier:
    if data.labels is None:
        raise SystemExit(f"{data.spec}: the classifier needs labelled data")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    num_classes = int(data.labels.max()) + 1
    model = Classifier(ClassifierConfig(in_channels=data.shape[0], num_classes=num_classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(data.images)
    y = torch.from_numpy(data.labels)
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), 64):
            idx = perm[i : i + 64]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        if verbose and (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1}: loss {total / len(x):.4f}")
    return model.eval()


def accuracy(model: Classifier, data: ImageData) -> float:
    assert data.labels is not None
    with torch.no_grad():
        pred = model(torch.from_numpy(data.images)).argmax(1).numpy()
    return float((pred == data.labels).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits", help="labelled train data spec")
    ap.add_argument("--heldout", default="digits:split=test", help="held-out spec (accuracy)")
    ap.add_argument("--out", type=Path, default=DIGITS_CLASSIFIER)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--check", action="store_true", help="retrain and compare with --out")
    args = ap.parse_args()
    t0 = time.monotonic()
    data = load_data(args.data)
    model = train(data, epochs=args.epochs, verbose=not args.check)
    acc = accuracy(model, load_data(args.heldout))
    meta = {"data": args.data, "epochs": args.epochs, "seed": SEED, "heldout_acc": acc}
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "w.npz"
        save_classifier(fresh, model, meta)
        blob = fresh.read_bytes()
    took = time.monotonic() - t0
    print(f"held-out accuracy {acc:.4f}; {took:.1f} s, torch {torch.__version__}")
    return write_or_check(args.out, blob, args.check)


if __name__ == "__main__":
    sys.exit(main())
