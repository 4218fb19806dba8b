"""Quality of generated images: a Fréchet distance in a small classifier's features.

An "FID for digits": the penultimate layer of a small CNN trained deterministically on the
digits *train* split (weights shipped in ``greenfed/data/digits_classifier.npz``, regenerated
bit for bit by ``scripts/train_classifier.py``). Features are z-scored with train-split
statistics (raw ReLU features are badly scaled), and samples are compared with the *held-out*
split, never with images the classifier saw. Each score comes with two references computed the
same way and with the same number of images, so the number can be read:

- ``floor``: real vs real, i.e. train images vs the held-out split: what a perfect generator
  would score (the Fréchet distance is biased upwards at small n, so the floor is not 0);
- ``noise``: Gaussian noise images vs the held-out split: what a model that learnt nothing scores;
- ``nn_train`` / ``nn_ref``: median RMS pixel distance of each sample (resp. each held-out
  image) to its nearest training image; ``nn_train`` far below ``nn_ref`` means memorisation.

Runs on the coordinator: the Fréchet distance comes from torchmetrics (the ``coordinator``
extra), imported only when a ``QualityMetric`` is built, so ``greenfed.ddpm`` imports without it.

For other data the digits classifier means nothing: train one on the new data's labelled train
split with ``scripts/train_classifier.py --data SPEC --out PATH`` and pass
``feature_weights=PATH`` together with matching ``train``/``heldout`` data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .data import ImageData, load_data
from .errors import QualityError
from .schedule import to_uint8

DIGITS_CLASSIFIER = Path(__file__).resolve().parent.parent / "data" / "digits_classifier.npz"
#: The feature classifier of each shipped data set (greenfed.ddpm.data.SHIPPED), trained on
#: its train split by scripts/train_classifier.py.
SHIPPED_CLASSIFIERS: Dict[str, Path] = {
    "digits": DIGITS_CLASSIFIER,
    "mnist8": DIGITS_CLASSIFIER.with_name("mnist8_classifier.npz"),
}


def shipped_source(spec: str) -> Optional[str]:
    """The shipped data set a spec names (``"mnist8:split=test"`` -> ``"mnist8"``), or None."""
    name = spec.strip().split(":", 1)[0]
    return name if name in SHIPPED_CLASSIFIERS else None


@dataclass(frozen=True)
class ClassifierConfig:
    in_channels: int = 1
    num_classes: int = 10
    width: int = 32
    num_features: int = 128


class Classifier(nn.Module):
    """conv-conv-pool-conv, 2×2 adaptive pool, fc -> ``num_features`` (penultimate), fc -> logits.

    Takes uint8 images (N, C, H, W) of any size >= 4 px."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.conv1 = nn.Conv2d(config.in_channels, w, 3, padding=1)
        self.conv2 = nn.Conv2d(w, 2 * w, 3, padding=1)
        self.conv3 = nn.Conv2d(2 * w, 2 * w, 3, padding=1)
        self.fc1 = nn.Linear(8 * w, config.num_features)
        self.fc2 = nn.Linear(config.num_features, config.num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 127.5 - 1.0
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.adaptive_avg_pool2d(F.relu(self.conv3(x)), 2).flatten(1)
        return F.relu(self.fc1(x))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(images))


def save_classifier(path: Union[str, Path], model: Classifier, meta: Dict[str, Any]) -> None:
    """Weights as a plain .npz (no pickle), config and metadata as JSON inside."""
    arrays = {f"w.{k}": v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    cfg = json.dumps({"config": asdict(model.config), "meta": meta}, sort_keys=True)
    np.savez(path, config=np.array(cfg), **arrays)


def load_classifier(path: Union[str, Path]) -> Classifier:
    try:
        with np.load(path) as f:
            info = json.loads(str(f["config"]))
            state = {k[2:]: torch.from_numpy(f[k].copy()) for k in f.files if k.startswith("w.")}
    except (OSError, KeyError, ValueError) as e:
        raise QualityError(f"{path}: not a classifier weights file: {e}") from e
    model = Classifier(ClassifierConfig(**info["config"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise QualityError(f"{path}: weights do not fit their config: {e}") from e
    return model.eval()


class FeatureExtractor(nn.Module):
    """Penultimate features, z-scored with the train split's statistics (constant features
    dropped). Float64 out. ``num_features`` as torchmetrics' custom-extractor protocol wants."""

    keep: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, classifier: Classifier, train_images: np.ndarray) -> None:
        super().__init__()
        self.classifier = classifier.eval()
        with torch.no_grad():
            f = classifier.features(torch.from_numpy(train_images)).double()
        std = f.std(dim=0)
        keep = torch.nonzero(std > 1e-6).flatten()
        if len(keep) < 2:
            raise QualityError("the classifier's features are constant on the train data")
        self.register_buffer("keep", keep)
        self.register_buffer("mean", f.mean(dim=0)[keep])
        self.register_buffer("std", std[keep])
        self.num_features = len(keep)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            f = self.classifier.features(images).double()[:, self.keep]
        return (f - self.mean) / self.std


@dataclass(frozen=True)
class QualityScore:
    """``fd`` of the samples vs held-out images; ``floor`` (real vs real) and ``noise``
    (noise vs real) with the same n; nearest-training-image distances (RMS, pixels in [0, 1])."""

    fd: float
    floor: float
    noise: float
    n: int
    nn_train: float
    nn_ref: float

    @property
    def fd_over_floor(self) -> float:
        return self.fd / self.floor if self.floor > 0 else float("inf")

    def to_dict(self) -> Dict[str, float]:
        d = asdict(self)
        d["fd_over_floor"] = self.fd_over_floor
        return d

    def __str__(self) -> str:
        return (
            f"FD {self.fd:.3f} (floor {self.floor:.3f}, {self.fd_over_floor:.2f}× floor; "
            f"noise {self.noise:.1f}; n={self.n}); nearest-train distance "
            f"{self.nn_train:.3f} vs held-out {self.nn_ref:.3f}"
        )


class QualityMetric:
    """Scores uint8 sample sets against held-out real images. Deterministic for a seed."""

    def __init__(
        self,
        train: Optional[ImageData] = None,
        heldout: Optional[ImageData] = None,
        feature_weights: Optional[Union[str, Path]] = None,
        *,
        seed: int = 0,
    ) -> None:
        try:
            from torchmetrics.image.fid import FrechetInceptionDistance
        except ImportError as e:
            raise QualityError(
                "the quality metric needs torchmetrics: pip install 'greenfed[coordinator]'"
            ) from e
        self.train = train if train is not None else load_data("digits")
        self.heldout = heldout if heldout is not None else load_data("digits:split=test")
        if self.train.shape != self.heldout.shape:
            raise QualityError(f"train {self.train.shape} and held-out {self.heldout.shape} differ")
        source = shipped_source(self.train.spec)
        shipped = SHIPPED_CLASSIFIERS[source] if source else DIGITS_CLASSIFIER
        weights = Path(feature_weights) if feature_weights is not None else shipped
        if feature_weights is None and self.train.shape != (1, 8, 8):
            raise QualityError(
                f"the shipped classifier is for 1×8×8 digits, the data is {self.train.shape}: "
                "train one with scripts/train_classifier.py and pass feature_weights"
            )
        classifier = load_classifier(weights)
        if classifier.config.in_channels != self.train.shape[0]:
            raise QualityError(f"{weights}: classifier channels do not match the data")
        self.seed = seed
        self.extractor = FeatureExtractor(classifier, self.train.images)
        self._fid = FrechetInceptionDistance(
            feature=self.extractor, normalize=False, reset_real_features=False
        )
        self._fid.update(torch.from_numpy(self.heldout.images), real=True)
        self._ref_cache: Dict[int, Any] = {}
        self._train_flat = self.train.images.reshape(len(self.train), -1).astype(np.float32) / 255

    @classmethod
    def for_shipped(cls, heldout_spec: str, seed: int = 0) -> QualityMetric:
        """The metric of a shipped data set: its train split, ``heldout_spec`` (e.g.
        ``"mnist8:split=test"``) and its shipped classifier."""
        source = shipped_source(heldout_spec)
        if source is None:
            raise QualityError(f"{heldout_spec!r} is not a shipped data set")
        return cls(
            train=load_data(f"{source}:split=train"),
            heldout=load_data(heldout_spec),
            feature_weights=SHIPPED_CLASSIFIERS[source],
            seed=seed,
        )

    def fd(self, images: np.ndarray) -> float:
        """Fréchet distance of uint8 ``images`` (N×C×H×W, N >= 2) vs the held-out split."""
        images = self._check(images)
        self._fid.reset()
        self._fid.update(torch.from_numpy(images), real=False)
        return float(self._fid.compute())

    def nearest_train_distance(self, images: np.ndarray) -> np.ndarray:
        """Per image: RMS pixel distance (pixels in [0, 1]) to the nearest training image."""
        x = self._check(images).reshape(len(images), -1).astype(np.float32) / 255
        tr = self._train_flat
        d2 = (x**2).sum(1)[:, None] - 2 * x @ tr.T + (tr**2).sum(1)[None, :]
        return np.sqrt(np.maximum(d2.min(axis=1), 0.0) / x.shape[1])

    def references(self, n: int) -> Any:
        """(floor, noise, nn_ref) for sample sets of size n, cached."""
        if n not in self._ref_cache:
            rs = np.random.RandomState(self.seed)
            m = min(n, len(self.train))
            real = self.train.images[np.sort(rs.choice(len(self.train), m, replace=False))]
            c, h, w = self.train.shape
            noise = to_uint8(np.clip(rs.standard_normal((n, c, h, w)), -1, 1))
            nn_ref = float(np.median(self.nearest_train_distance(self.heldout.images)))
            self._ref_cache[n] = (self.fd(real), self.fd(noise), nn_ref)
        return self._ref_cache[n]

    def score(self, samples: np.ndarray) -> QualityScore:
        samples = self._check(samples)
        floor, noise, nn_ref = self.references(len(samples))
        nn = float(np.median(self.nearest_train_distance(samples)))
        return QualityScore(self.fd(samples), floor, noise, len(samples), nn, nn_ref)

    def _check(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != self.train.shape:
            raise QualityError(
                f"expected uint8 N×{'×'.join(map(str, self.train.shape))} images, "
                f"got {images.dtype} {images.shape}"
            )
        if len(images) < 2:
            raise QualityError("the Fréchet distance needs at least 2 images")
        return np.ascontiguousarray(images)
