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


def test_trimmed_mean_drops_the_extremes_of_every_value() -> None:
    from coordinator.aggregation import RuleOptions, TrimmedMean
    from coordinator.aggregation.trimmed import trimmed_count

    honest = [
        {k: rng.standard_normal(v.shape).astype(np.float32) * 1e-2 for k, v in PARAMS.items()}
        for _ in range(4)
    ]
    # One device sends +50 per value, another -50 on w only: each is trimmed per value.
    hostile = [
        {k: np.full(v.shape, 50.0, np.float32) for k, v in PARAMS.items()},
        {"w": np.full((4, 3), -50.0, np.float32), "b": np.zeros(3, np.float32)},
    ]
    agg = TrimmedMean(template_of(PARAMS), RuleOptions(trim_fraction=0.2))
    for u in honest + hostile:
        agg.add(u, 1_000_000)  # weights are ignored: one device, one vote
    assert trimmed_count(6, 0.2) == 2
    mean = agg.mean_update()
    for k in PARAMS:
        stack = np.sort(np.stack([u[k] for u in honest + hostile]).astype(np.float64), axis=0)
        np.testing.assert_array_equal(mean[k], stack[2:4].mean(axis=0))
        lo = np.min([u[k] for u in honest], axis=0)
        hi = np.max([u[k] for u in honest], axis=0)
        assert np.all(mean[k] >= lo - 1e-9) and np.all(mean[k] <= hi + 1e-9)


@pytest.mark.parametrize("n, fraction, k", [(1, 0.2, 0), (2, 0.4, 0), (3, 0.2, 1), (10, 0.2, 2)])
def test_trimmed_count_never_drops_everything(n: int, fraction: float, k: int) -> None:
    from coordinator.aggregation.trimmed import trimmed_count

    assert trimmed_count(n, fraction) == k
    assert n - 2 * trimmed_count(n, fraction) >= 1


def test_trimmed_mean_of_two_is_the_plain_mean_and_is_chosen_by_config() -> None:
    from coordinator.aggregation import RULES, RuleOptions, make_aggregator
    from coordinator.config import CoordinatorConfig

    cfg = CoordinatorConfig(aggregation="trimmed-mean", trim_fraction=0.3)
    agg = make_aggregator(cfg.aggregation, template_of(PARAMS), RuleOptions(cfg.trim_fraction))
    assert type(agg) is RULES["trimmed-mean"] and agg.options.trim_fraction == 0.3
    a = {k: np.ones_like(v) for k, v in PARAMS.items()}
    b = {k: 3 * np.ones_like(v) for k, v in PARAMS.items()}
    agg.add(a, 1)
    agg.add(b, 99)
    for v in agg.mean_update().values():
        np.testing.assert_array_equal(v, 2.0)
    with pytest.raises(ValueError, match="trim_fraction"):
        CoordinatorConfig(trim_fraction=0.5)
