"""The shipped backbone and the federated task's data (mnist8): loadable, checked, different."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from greenfed.ddpm import CheckpointError, load_data, preset
from greenfed.ddpm.backbone import BACKBONES, DEFAULT_BACKBONE, load_backbone
from greenfed.ddpm.data import MNIST8_PATH, npz_bytes
from greenfed.ddpm.quality import SHIPPED_CLASSIFIERS, load_classifier, shipped_source


def test_mnist8_ships_with_a_fixed_stratified_split() -> None:
    train, test = load_data("mnist8"), load_data("mnist8:split=test")
    assert (len(train), len(test)) == (4000, 1000)
    assert train.shape == (1, 8, 8) and train.images.dtype == np.uint8
    assert np.bincount(test.labels).tolist() == [100] * 10
    shard = load_data("mnist8:shard=2/4,alpha=0.5,seed=1")
    assert 8 <= len(shard) < 4000 and shard.labels is not None
    # Another source than the digits: a darker frame, thinner strokes, continuous grey levels.
    digits = load_data("digits")
    assert train.images.mean() < 0.7 * digits.images.mean()
    assert len(np.unique(train.images)) > 4 * len(np.unique(digits.images))


def test_npz_bytes_are_reproducible() -> None:
    arrays = {"a": np.arange(5, dtype=np.uint8), "b": np.array("text")}
    assert npz_bytes(arrays) == npz_bytes(dict(arrays))
    with np.load(MNIST8_PATH) as f:
        assert set(f.files) == {"images", "labels", "split", "source"}


def test_shipped_classifiers_follow_the_data_spec() -> None:
    import torch

    assert shipped_source("mnist8:split=test") == "mnist8"
    assert shipped_source("digits") == "digits"
    assert shipped_source("my/images.npz") is None
    assert all(p.is_file() for p in SHIPPED_CLASSIFIERS.values())
    test = load_data("mnist8:split=test")
    model = load_classifier(SHIPPED_CLASSIFIERS["mnist8"])
    with torch.no_grad():
        pred = model(torch.from_numpy(test.images)).argmax(1).numpy()
    assert (pred == test.labels).mean() > 0.95  # 0.969 when trained


def test_the_backbone_loads_with_its_digest_and_history() -> None:
    bb = load_backbone(DEFAULT_BACKBONE)
    assert bb.sha256 == hashlib.sha256(BACKBONES[DEFAULT_BACKBONE].read_bytes()).hexdigest()
    assert bb.unet == preset("pi-small")
    assert bb.meta["data"] == "digits:split=train" and bb.meta["steps"] > 0
    assert all(v.dtype == np.float32 for v in bb.arrays.values())
    # The shift the federated task is built on, as measured when the backbone was made:
    # clearly worse on mnist8 than on its own digits.
    assert bb.meta["fd_mnist8_test"] > 3 * bb.meta["fd_digits_test"]
    assert BACKBONES[DEFAULT_BACKBONE].stat().st_size < 2_000_000  # small enough for the wheel


def test_a_backbone_with_another_digest_or_name_is_refused() -> None:
    with pytest.raises(CheckpointError, match="install the coordinator's greenfed"):
        load_backbone(DEFAULT_BACKBONE, expect_sha256="0" * 64)
    with pytest.raises(CheckpointError, match="unknown backbone"):
        load_backbone("imagenet-xl")
