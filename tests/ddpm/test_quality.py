"""The metric: shipped classifier, floor < noise, identical sets ~0, memorisation check."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from greenfed.ddpm.data import load_data
from greenfed.ddpm.quality import (
    DIGITS_CLASSIFIER,
    Classifier,
    QualityError,
    QualityMetric,
    load_classifier,
    save_classifier,
)

ROOT = Path(__file__).resolve().parents[2]
# sha256 of the shipped weights; scripts/train_classifier.py --check regenerates them bit for bit.
CLASSIFIER_SHA256 = "331fd77ec545ce2e73275385981d51e56ace28c981c5edf8e369d53af955e903"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torchmetrics") is None, reason="needs the coordinator extra"
)


@pytest.fixture(scope="module")
def metric() -> QualityMetric:
    return QualityMetric()


def test_shipped_classifier_is_the_recorded_one() -> None:
    assert hashlib.sha256(DIGITS_CLASSIFIER.read_bytes()).hexdigest() == CLASSIFIER_SHA256
    model = load_classifier(DIGITS_CLASSIFIER)
    test = load_data("digits:split=test")
    import torch

    with torch.no_grad():
        pred = model(torch.from_numpy(test.images)).argmax(1).numpy()
    assert (pred == test.labels).mean() > 0.95


def test_classifier_training_is_bit_for_bit(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("tc", ROOT / "scripts" / "train_classifier.py")
    assert spec is not None and spec.loader is not None
    tc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tc)
    import torch

    data = load_data("digits:limit=300")
    blobs = []
    threads, determ = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:  # train() sets process-wide determinism and one thread, as the script wants
        for i in range(2):
            m = tc.train(data, epochs=2, verbose=False)
            save_classifier(tmp_path / f"{i}.npz", m, {"x": 1})
            blobs.append((tmp_path / f"{i}.npz").read_bytes())
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(determ)
    assert blobs[0] == blobs[1]


def test_floor_below_noise_and_identical_sets_score_zero(metric: QualityMetric) -> None:
    test = load_data("digits:split=test").images
    assert abs(metric.fd(test)) < 1e-6  # the held-out set against itself
    s = metric.score(load_data("digits").images[::3])  # real images the model never produced
    assert 0 < s.floor < 0.2 * s.noise
    assert s.fd < 5 * s.floor
    rs = np.random.RandomState(0)
    noise = rs.randint(0, 256, size=(300, 1, 8, 8)).astype(np.uint8)
    assert metric.score(noise).fd > 10 * s.floor


def test_memorisation_distance(metric: QualityMetric) -> None:
    train = load_data("digits").images
    copies = metric.score(train[:200])
    assert copies.nn_train == 0.0 and copies.nn_ref > 0.05
    assert metric.references(200) == metric.references(200)  # cached, deterministic


def test_errors(metric: QualityMetric, tmp_path: Path) -> None:
    with pytest.raises(QualityError, match="uint8"):
        metric.score(np.zeros((5, 1, 8, 8), np.float32))
    with pytest.raises(QualityError, match="at least 2"):
        metric.score(np.zeros((1, 1, 8, 8), np.uint8))
    rgb = np.zeros((10, 3, 16, 16), np.uint8)
    from greenfed.ddpm.data import ImageData

    with pytest.raises(QualityError, match="feature_weights"):
        QualityMetric(ImageData(rgb, None), ImageData(rgb, None))
    (tmp_path / "w.npz").write_bytes(b"junk")
    with pytest.raises(QualityError, match="not a classifier"):
        load_classifier(tmp_path / "w.npz")
    assert isinstance(load_classifier(DIGITS_CLASSIFIER), Classifier)


def test_package_imports_without_torchmetrics() -> None:
    code = (
        "import sys; sys.modules['torchmetrics'] = None\n"
        "import greenfed.ddpm as d\n"
        "d.load_data('digits'); d.build_model(d.preset('pi-small')); d.NoiseSchedule()\n"
        "try:\n    d.QualityMetric()\nexcept d.quality.QualityError as e:\n    print('ok', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ok") and "coordinator" in out.stdout
