from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coordinator.model_host import ModelHost
from greenfed.config import ConfigError


def test_missing_eval_data_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="eval_data"):
        ModelHost("pi-small", "/nonexistent/folder", 16, 4)


def test_other_data_needs_its_own_classifier_at_start_up(tmp_path: Path) -> None:
    path = tmp_path / "faces.npz"
    np.savez(path, images=np.zeros((20, 1, 8, 8), np.uint8))
    with pytest.raises(ConfigError, match="eval_feature_weights"):
        ModelHost("pi-small", str(path), 16, 4)
    # With evaluation off, the same data is fine.
    host = ModelHost("pi-small", str(path), 0, 4)
    assert host.evaluate(host.init_params(0), seed=0) == {}
