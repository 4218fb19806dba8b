"""Image data for local training: digits shards, ``.npz`` arrays and image folders.

numpy only (no torch): a board can load and shard its data before torch is imported, and the
coordinator can compute shard sizes cheaply. Everything random uses numpy's ``RandomState``,
whose stream numpy keeps frozen across versions, so two machines with different numpy builds
still compute the same disjoint shards.

Spec strings (``load_data(spec)``)::

    digits                              the digits train split (1347 images, 8×8, 1 channel)
    digits:split=test                   the held-out split (450 images) the metric compares with
    digits:split=all
    digits:shard=2/4                    IID shard 2 of 4 (1-based) of the train split
    digits:shard=2/4,alpha=0.5,seed=0   non-IID: label proportions per shard ~ Dirichlet(0.5)
    digits:shard=1/4,limit=200          the shard capped at 200 images
    mnist8[:split=..,shard=..]          5 000 MNIST digits reduced to 8×8 (4000 train / 1000
                                        test; scripts/make_mnist8.py), same options as digits
    path/to/images.npz[:shard=..]       arrays ``images`` (N×C×H×W, N×H×W or N×H×W×C uint8),
                                        optional ``labels``
    path/to/folder[:size=32,channels=3] PNG/JPEG files (needs Pillow: ``greenfed[images]``);
                                        files in sub-folders get the sub-folder as their label

Options ``shard``, ``alpha``, ``seed``, ``limit`` apply to every source.

Errors: ``DataSpecError`` (a ValueError) for a malformed spec or unusable data, naming the
problem; ``FileNotFoundError`` for a missing path.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from .errors import DataSpecError

DIGITS_PATH = Path(__file__).resolve().parent.parent / "data" / "digits.npz"
MNIST8_PATH = DIGITS_PATH.with_name("mnist8.npz")
#: Data sets shipped in the package, each with a fixed train/test split (``split`` array).
SHIPPED: Dict[str, Path] = {"digits": DIGITS_PATH, "mnist8": MNIST8_PATH}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_COMMON_KEYS = ("shard", "alpha", "seed", "limit")
_KEYS: Dict[str, Tuple[str, ...]] = {
    "shipped": (*_COMMON_KEYS, "split"),
    "npz": _COMMON_KEYS,
    "folder": (*_COMMON_KEYS, "size", "channels"),
}
MIN_SHARD_IMAGES = 8  # Dirichlet splits are redrawn until every shard has at least this many


@dataclass
class ImageData:
    """``images``: uint8 N×C×H×W; ``labels``: int64 (N,) or None; ``spec``: where it came from."""

    images: np.ndarray
    labels: Optional[np.ndarray]
    spec: str = ""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> Tuple[int, int, int]:
        """(C, H, W)."""
        _, c, h, w = self.images.shape
        return int(c), int(h), int(w)


def load_data(spec: str) -> ImageData:
    """Load the data a spec string names (see the module docstring)."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataSpecError("empty data spec")
    spec = spec.strip()
    source, opts_text = _split_spec(spec)
    if source in SHIPPED:
        kind = "shipped"
    elif source.endswith(".npz"):
        kind = "npz"
    else:
        kind = "folder"
    opts = _parse_options(opts_text, _KEYS[kind], spec)
    if kind == "shipped":
        data = _load_shipped(source, opts.get("split", "train"), "shard" in opts)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"data spec {spec!r}: {path} does not exist")
        if kind == "npz":
            data = load_npz(path)
        elif path.is_dir():
            data = load_folder(
                path, size=_int(opts, "size", 32), channels=_int(opts, "channels", 3)
            )
        else:
            raise DataSpecError(f"data spec {spec!r}: {path} is neither a .npz file nor a folder")
    images, labels = data.images, data.labels
    seed = _int(opts, "seed", 0)
    if "shard" in opts:
        k, num = _parse_shard(opts["shard"], spec)
        alpha = _float(opts, "alpha", None)
        if alpha is not None and labels is None:
            raise DataSpecError(f"data spec {spec!r}: alpha needs labels, and this data has none")
        parts = shard_indices(len(images), num, seed=seed, labels=labels, alpha=alpha)
        idx = parts[k - 1]
        images = images[idx]
        labels = labels[idx] if labels is not None else None
    elif "alpha" in opts:
        raise DataSpecError(f"data spec {spec!r}: alpha only makes sense with shard=k/K")
    if "limit" in opts:
        limit = _int(opts, "limit", 0)
        if limit < 1:
            raise DataSpecError(f"data spec {spec!r}: limit must be >= 1, got {limit}")
        images = images[:limit]
        labels = labels[:limit] if labels is not None else None
    return ImageData(np.ascontiguousarray(images), labels, spec)


# -- splitting ---------------------------------------------------------------------------------
def shard_indices(
    n: int,
    num_shards: int,
    *,
    seed: int = 0,
    labels: Optional[np.ndarray] = None,
    alpha: Optional[float] = None,
) -> List[np.ndarray]:
    """Disjoint index arrays covering range(n): IID (``alpha`` None) or Dirichlet(α) over labels.

    Non-IID follows Hsu et al. (2019): for each label, shard proportions ~ Dir(α·1), the label's
    images dealt out in those proportions; redrawn (same stream) until every shard holds at least
    ``MIN_SHARD_IMAGES`` (or n // num_shards when smaller). Each shard is shuffled, so a
    ``limit`` takes a random subset with the shard's label mix.
    """
    if num_shards < 1:
        raise DataSpecError(f"number of shards must be >= 1, got {num_shards}")
    if num_shards > n:
        raise DataSpecError(f"cannot split {n} images into {num_shards} shards")
    rs = np.random.RandomState(seed)
    if alpha is None:
        parts = np.array_split(rs.permutation(n), num_shards)
    else:
        if alpha <= 0:
            raise DataSpecError(f"alpha must be > 0, got {alpha}")
        assert labels is not None
        need = min(MIN_SHARD_IMAGES, n // num_shards)
        for _ in range(1000):
            buckets: List[List[int]] = [[] for _ in range(num_shards)]
            for c in np.unique(labels):
                idx = np.flatnonzero(labels == c)
                idx = idx[rs.permutation(len(idx))]
                p = rs.dirichlet(np.full(num_shards, alpha))
                cuts = (np.cumsum(p)[:-1] * len(idx)).astype(np.int64)
                for b, chunk in zip(buckets, np.split(idx, cuts)):
                    b.extend(chunk.tolist())
            if min(len(b) for b in buckets) >= need:
                break
        else:
            raise DataSpecError(f"alpha={alpha} left a shard with < {need} images in 1000 draws")
        parts = [np.asarray(b, dtype=np.int64) for b in buckets]
    return [np.sort(p)[rs.permutation(len(p))] for p in parts]


def digits_split() -> Tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of the fixed digits split stored in the package data."""
    with np.load(DIGITS_PATH) as f:
        split = f["split"]
    return np.flatnonzero(split == 0), np.flatnonzero(split == 1)


def _load_shipped(name: str, split: str, sharded: bool) -> ImageData:
    if split not in ("train", "test", "all"):
        raise DataSpecError(f"{name} split must be train, test or all, got {split!r}")
    if sharded and split != "train":
        raise DataSpecError(
            f"{name} shards come from the train split only (split=test is held out)"
        )
    with np.load(SHIPPED[name]) as f:
        images, labels, flags = f["images"], f["labels"].astype(np.int64), f["split"]
    if split != "all":
        keep = flags == (1 if split == "test" else 0)
        images, labels = images[keep], labels[keep]
    return ImageData(images, labels, f"{name}:split={split}")


# -- files -------------------------------------------------------------------------------------
def load_npz(path: Path) -> ImageData:
    with np.load(path) as f:
        if "images" not in f:
            raise DataSpecError(f"{path}: no 'images' array (has: {sorted(f.keys())})")
        images = f["images"]
        labels = f["labels"].astype(np.int64) if "labels" in f else None
    if images.dtype != np.uint8:
        raise DataSpecError(f"{path}: images must be uint8 0..255, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[1] not in (1, 3) and images.shape[3] in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DataSpecError(f"{path}: images must be N×C×H×W with C 1 or 3, got {images.shape}")
    if labels is not None and labels.shape != (images.shape[0],):
        raise DataSpecError(f"{path}: labels shape {labels.shape} does not match images")
    return ImageData(images, labels, str(path))


def load_folder(path: Path, *, size: int = 32, channels: int = 3) -> ImageData:
    """PNG/JPEG files under ``path``, centre-cropped to a square and resized to size×size."""
    if channels not in (1, 3):
        raise DataSpecError(f"channels must be 1 or 3, got {channels}")
    if not 4 <= size <= 512:
        raise DataSpecError(f"size must be in 4..512, got {size}")
    try:
        from PIL import Image
    except ImportError as e:
        raise DataSpecError(
            "reading an image folder needs Pillow: pip install 'greenfed[images]'"
        ) from e
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataSpecError(f"{path}: no {'/'.join(IMAGE_SUFFIXES)} files")
    classes = sorted({p.relative_to(path).parts[0] for p in files if p.parent != path})
    labelled = all(p.parent != path for p in files) and len(classes) > 1
    out = np.empty((len(files), channels, size, size), dtype=np.uint8)
    for i, p in enumerate(files):
        try:
            with Image.open(p) as raw:
                im = raw.convert("L" if channels == 1 else "RGB")
                w, h = im.size
                s = min(w, h)
                box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
                bilinear = getattr(Image, "Resampling", Image).BILINEAR  # Pillow >= 9.1
                arr = np.asarray(im.resize((size, size), bilinear, box=box), dtype=np.uint8)
        except OSError as e:
            raise DataSpecError(f"{p}: cannot read image: {e}") from e
        out[i] = arr[None] if channels == 1 else arr.transpose(2, 0, 1)
    labels = None
    if labelled:
        index = {c: j for j, c in enumerate(classes)}
        labels = np.array([index[p.relative_to(path).parts[0]] for p in files], dtype=np.int64)
    return ImageData(out, labels, str(path))


def npz_bytes(arrays: Mapping[str, Any]) -> bytes:
    """A compressed ``.npz`` (no pickle) whose bytes depend on the arrays only: fixed member
    timestamps, so the scripts that make shipped files can check them bit for bit."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


# -- spec parsing ------------------------------------------------------------------------------
def _split_spec(spec: str) -> Tuple[str, str]:
    for name in SHIPPED:
        if spec == name or spec.startswith(name + ":"):
            return name, spec[len(name) + 1 :]
    head, sep, tail = spec.rpartition(":")
    if sep and "=" in tail and "/" not in tail.split("=")[0]:
        return head, tail
    return spec, ""


def _parse_options(text: str, allowed: Tuple[str, ...], spec: str) -> Dict[str, str]:
    opts: Dict[str, str] = {}
    if not text:
        return opts
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise DataSpecError(f"data spec {spec!r}: expected key=value, got {item!r}")
        if key not in allowed:
            raise DataSpecError(
                f"data spec {spec!r}: unknown option {key!r}; allowed: {', '.join(allowed)}"
            )
        if key in opts:
            raise DataSpecError(f"data spec {spec!r}: option {key!r} given twice")
        opts[key] = value
    return opts


def _parse_shard(text: str, spec: str) -> Tuple[int, int]:
    k_s, sep, n_s = text.partition("/")
    try:
        k, n = int(k_s), int(n_s)
    except ValueError:
        raise DataSpecError(f"data spec {spec!r}: shard must be k/K, got {text!r}") from None
    if not sep or n < 1 or not 1 <= k <= n:
        raise DataSpecError(
            f"data spec {spec!r}: shard must be k/K with 1 <= k <= K (1-based), got {text!r}"
        )
    return k, n


def _int(opts: Dict[str, str], key: str, default: int) -> int:
    if key not in opts:
        return default
    try:
        return int(opts[key])
    except ValueError:
        raise DataSpecError(f"option {key} must be an integer, got {opts[key]!r}") from None


def _float(opts: Dict[str, str], key: str, default: Optional[float]) -> Optional[float]:
    if key not in opts:
        return default
    try:
        return float(opts[key])
    except ValueError:
        raise DataSpecError(f"option {key} must be a number, got {opts[key]!r}") from None
