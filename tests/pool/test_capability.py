"""A torch without torch.distributed (NVIDIA's stock JetPack wheels) is said plainly."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from edge_agent.cli import build_parser
from edge_agent.pool.capability import detect, require
from edge_agent.pool.config import MemberConfig, PoolConfig
from edge_agent.pool.errors import PoolUnavailable
from edge_agent.pool.leader import PoolLeader
from edge_agent.pool.member import PoolMember


@pytest.fixture
def jetpack_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch as NVIDIA's JetPack wheels build it: ``is_available()`` is False."""
    monkeypatch.setattr(torch.distributed, "is_available", lambda: False)


def test_this_torch_can_pool() -> None:
    cap = require()
    assert cap.distributed and cap.gloo and cap.usable
    assert "pool: available" in cap.summary()


def test_without_distributed_the_reason_says_what_to_install(jetpack_torch: None) -> None:
    cap = detect()
    assert not cap.usable
    for words in ("built without torch.distributed", "USE_DISTRIBUTED=1", "JetPack", "ordinary"):
        assert words in cap.reason
    with pytest.raises(PoolUnavailable, match="USE_DISTRIBUTED=1"):
        require()


def test_probe_says_so(jetpack_torch: None, capsys: pytest.CaptureFixture) -> None:
    args = build_parser().parse_args(["probe"])
    assert args._run(args) == 0
    out = capsys.readouterr().out
    assert "pool: unavailable" in out and "USE_DISTRIBUTED=1" in out


def test_pool_start_up_says_so(
    jetpack_torch: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(PoolUnavailable, match=r"built without torch\.distributed"):
        PoolLeader(PoolConfig(members=["m1"]), None, None, None)  # type: ignore[arg-type]
    member = PoolMember(MemberConfig(member_id="m1", state_dir=tmp_path))
    with caplog.at_level(logging.ERROR):
        assert member.run() == 2
    assert "cannot join a pool" in caplog.text and "USE_DISTRIBUTED=1" in caplog.text
