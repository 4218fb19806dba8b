"""Data: digits split, shards deterministic/disjoint/covering, Dirichlet skew, specs, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from greenfed.ddpm.data import DataSpecError, digits_split, load_data, shard_indices


def _keys(images: np.ndarray) -> set:
    return {im.tobytes() for im in images}


def test_digits_split_is_fixed_and_disjoint() -> None:
    train, test = load_data("digits"), load_data("digits:split=test")
    assert (len(train), len(test), len(load_data("digits:split=all"))) == (1347, 450, 1797)
    assert train.images.dtype == np.uint8 and train.shape == (1, 8, 8)
    tr, te = digits_split()
    assert not set(tr) & set(te)
    assert np.bincount(test.labels).min() >= 44  # stratified


@pytest.mark.parametrize("alpha", [None, 0.5])
def test_shards_deterministic_disjoint_covering(alpha: float) -> None:
    opt = "" if alpha is None else f",alpha={alpha}"
    shards = [load_data(f"digits:shard={k}/4{opt},seed=1") for k in range(1, 5)]
    again = load_data(f"digits:shard=2/4{opt},seed=1")
    np.testing.assert_array_equal(again.images, shards[1].images)
    parts = shard_indices(1347, 4, seed=1, labels=load_data("digits").labels, alpha=alpha)
    allidx = np.concatenate(parts)
    assert len(allidx) == 1347 and len(set(allidx.tolist())) == 1347
    assert sum(len(s) for s in shards) == 1347
    test_keys = _keys(load_data("digits:split=test").images)
    for s in shards:  # shards never contain held-out images (digits has no exact duplicates
        # across the split except a few identical 8×8 patterns; allow those)
        assert len(_keys(s.images) & test_keys) <= 3
    other_seed = load_data(f"digits:shard=2/4{opt},seed=2")
    assert not np.array_equal(other_seed.labels, shards[1].labels)


def test_dirichlet_skews_labels_iid_does_not() -> None:
    def skew(spec_opt: str) -> float:
        tv = []
        for k in range(1, 5):
            lab = load_data(f"digits:shard={k}/4{spec_opt}").labels
            p = np.bincount(lab, minlength=10) / len(lab)
            tv.append(0.5 * np.abs(p - 0.1).sum())  # total variation from uniform
        return float(np.mean(tv))

    assert skew("") < 0.1
    assert skew(",alpha=0.1") > 0.5
    assert skew(",alpha=0.5") > skew(",alpha=100")


def test_limit_caps_shard() -> None:
    full = load_data("digits:shard=1/4")
    capped = load_data("digits:shard=1/4,limit=200")
    assert len(capped) == 200
    np.testing.assert_array_equal(capped.images, full.images[:200])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("digits:shard=0/4", "1-based"),
        ("digits:shard=5/4", "1-based"),
        ("digits:shard=two", "k/K"),
        ("digits:shard=1/4,alpha=-1", "alpha must be > 0"),
        ("digits:alpha=0.5", "only makes sense with shard"),
        ("digits:split=test,shard=1/2", "train split only"),
        ("digits:split=valid", "train, test or all"),
        ("digits:colour=red", "unknown option 'colour'"),
        ("digits:shard", "key=value"),
        ("digits:limit=0", "limit must be >= 1"),
        ("digits:seed=x,shard=1/2", "integer"),
        ("digits:shard=1/2,shard=2/2", "twice"),
    ],
)
def test_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(DataSpecError, match=message):
        load_data(spec)


def test_missing_path() -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_data("/nonexistent/images")


def test_npz_layouts(tmp_path: Path) -> None:
    imgs = np.random.default_rng(0).integers(0, 256, (10, 6, 6, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=imgs, labels=np.arange(10) % 2)
    d = load_data(f"{tmp_path / 'a.npz'}:shard=1/2,alpha=1.0")
    assert d.images.shape[1:] == (3, 6, 6) and d.labels is not None
    np.savez(tmp_path / "b.npz", images=imgs[..., 0])
    assert load_data(str(tmp_path / "b.npz")).images.shape == (10, 1, 6, 6)
    with pytest.raises(DataSpecError, match="needs labels"):
        load_data(f"{tmp_path / 'b.npz'}:shard=1/2,alpha=1")
    np.savez(tmp_path / "c.npz", x=imgs)
    with pytest.raises(DataSpecError, match="no 'images'"):
        load_data(str(tmp_path / "c.npz"))
    np.savez(tmp_path / "d.npz", images=imgs.astype(np.float32))
    with pytest.raises(DataSpecError, match="uint8"):
        load_data(str(tmp_path / "d.npz"))


def test_image_folder(tmp_path: Path) -> None:
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            arr = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
            Image.fromarray(arr).save(tmp_path / cls / f"{i}.png")
    d = load_data(f"{tmp_path}:size=8,channels=1")
    assert d.images.shape == (6, 1, 8, 8) and d.images.dtype == np.uint8
    assert d.labels is not None and d.labels.tolist() == [0, 0, 0, 1, 1, 1]
    rgb = load_data(str(tmp_path))
    assert rgb.images.shape == (6, 3, 32, 32)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataSpecError, match="cannot read"):
        load_data(str(tmp_path))
    with pytest.raises(DataSpecError, match="channels"):
        load_data(f"{tmp_path}:channels=2")
