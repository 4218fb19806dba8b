"""The link study's setup: the same devices, steady at their trace's mean or replaying it."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.experiment import ExperimentError, ExperimentSetup, local_agents
from coordinator.link_study import (
    MARKER,
    condition_links,
    prepare_study_out,
    preset_links,
    setup_for,
)


def test_conditions_share_everything_but_the_links() -> None:
    links = preset_links()
    base = ExperimentSetup(
        schemes=["fp32", "on-demand"], rounds=2, agents=local_agents(4), deadline_s=30.0,
        error_budget=0.4, local_steps=5, eval_samples=8,
    )  # fmt: skip
    steady, traces = setup_for(base, "steady", links), setup_for(base, "traces", links)
    assert [a.link for a in traces.agents] == links
    for s, t, p in zip(steady.agents, traces.agents, links):
        assert s.link is not None and s.link.trace is None and t.link == p
        assert s.link.rtt_ms == p.rtt_ms and s.link.rate_mbps == pytest.approx(
            (p.load_trace() or pytest.fail()).mean_mbps(), abs=1e-3
        )
        assert (s.device_id, s.data) == (t.device_id, t.data) and s.uplink_mbps is None
    assert (steady.condition, traces.condition) == ("steady", "traces")
    assert steady.to_json()["agents"][0]["link"]["spec"] == "rate=2.459,rtt=60"
    with pytest.raises(ExperimentError, match="unknown link condition"):
        condition_links("bursty", links)


def test_study_folder_is_replaced_only_when_it_holds_a_study(tmp_path: Path) -> None:
    out = tmp_path / "study"
    prepare_study_out(out)
    (out / MARKER).write_text("{}")
    (out / "steady").mkdir()
    prepare_study_out(out)  # an earlier study: replaced
    assert not any(out.iterdir())
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExperimentError, match="not empty"):
        prepare_study_out(out)
