from __future__ import annotations

import numpy as np
import pytest

from coordinator.aggregation import FedAvg, check_update, template_of
from coordinator.errors import InvalidUpdate

rng = np.random.default_rng(0)
PARAMS = {
    "w": rng.standard_normal((4, 3)).astype(np.float32),
    "b": rng.standard_normal(3).astype(np.float32),
}


def test_weighted_mean_matches_direct_computation() -> None:
    updates = [
        {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in PARAMS.items()}
        for _ in range(3)
    ]
    samples = [10, 30, 60]
    agg = FedAvg(template_of(PARAMS))
    for u, n in zip(updates, samples):
        agg.add(u, n)
    new, sq = agg.apply(PARAMS)
    for k in PARAMS:
        expected = sum(n * u[k].astype(np.float64) for u, n in zip(updates, samples)) / 100
        np.testing.assert_allclose(new[k], PARAMS[k] + expected, rtol=1e-6, atol=1e-6)
    mean = agg.mean_update()
    assert sq == pytest.approx(sum(float(np.sum(m * m)) for m in mean.values()))
    assert agg.count == 3 and agg.total_weight == 100


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"w": np.zeros((4, 3), np.float32)}, "missing"),
        ({"w": np.zeros((3, 4), np.float32), "b": np.zeros(3, np.float32)}, "shape"),
        ({"w": np.zeros((4, 3), np.float64), "b": np.zeros(3, np.float32)}, "dtype"),
        ({"w": np.full((4, 3), np.nan, np.float32), "b": np.zeros(3, np.float32)}, "NaN"),
        ({"w": np.zeros((4, 3), np.float32), "b": np.array([0, np.inf, 0], np.float32)}, "NaN"),
    ],
)
def test_invalid_updates_are_refused(bad: dict, message: str) -> None:
    with pytest.raises(InvalidUpdate, match=message):
        check_update(bad, template_of(PARAMS))


def test_zero_samples_refused_and_nothing_added() -> None:
    agg = FedAvg(template_of(PARAMS))
    with pytest.raises(InvalidUpdate, match="positive sample count"):
        agg.add({k: np.ones_like(v) for k, v in PARAMS.items()}, 0)
    assert agg.count == 0
    with pytest.raises(ValueError):
        agg.mean_update()


def test_the_rule_is_chosen_by_config_and_unknown_rules_are_refused() -> None:
    from coordinator.aggregation import RULES, make_aggregator
    from coordinator.config import CoordinatorConfig
    from greenfed.errors import ConfigError

    assert (
        type(make_aggregator(CoordinatorConfig().aggregation, template_of(PARAMS)))
        is RULES["fedavg"]
    )
    with pytest.raises(ConfigError, match="unknown rule 'median'; known: fedavg"):
        CoordinatorConfig(aggregation="median")
