"""The simulated adapter study: wired to the real hosts, modes and rules (tiny run)."""

from __future__ import annotations

import pytest

from coordinator.adapter_study import StudySetup, run_study, summarize


def test_a_tiny_study_runs_every_configuration_and_summarises() -> None:
    setup = StudySetup(
        seeds=(0,),
        rounds=1,
        devices=2,
        local_steps=2,
        batch_size=16,
        eval_samples=8,
        personal_eval_samples=8,
        loss_draws=1,
    )
    lines: list = []
    runs = run_study(setup, say=lines.append)
    assert [r.config for r in runs] == list(setup.configs)
    assert all(len(r.rows) == 2 for r in runs)  # round 0 (the backbone) and round 1
    # Every run starts from the same frozen backbone.
    assert len({round(r.rows[0]["heldout_loss"], 9) for r in runs}) == 1
    by = {r.config: r for r in runs}
    assert by["ffa"].values_up < by["fedit"].values_up < by["full"].values_up
    assert by["fedit"].rows[1]["fedit_gap_rel"] > 0  # the gap exists and is measured
    assert "fedit_gap_rel" not in by["ffa"].rows[1]
    personal = by["fedit-personal"].rows[1]["personal"]
    assert set(personal) == {"dev1", "dev2"}
    summary = summarize(setup, runs)
    assert set(summary) >= {"frozen", "fedit_vs_full", "ffa_vs_full"}
    assert summary["configs"]["fedit-personal"]["personal_wins_final"][0] in (0, 1, 2)
    assert any("round 1" in line for line in lines)


def test_unknown_configurations_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown study configuration"):
        StudySetup(configs=("full", "magic"))
