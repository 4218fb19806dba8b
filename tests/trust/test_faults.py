"""Faults with real processes: the coordinator killed at every phase of a round, an agent
killed mid-download, a connection reset mid-upload, and a full disk while checkpointing.

An agent SIGKILLed mid-upload: tests/e2e/test_system.py (test_agent_killed_during_upload_...).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from coordinator.faults import FAULT_ENV, FAULT_EXIT
from tests.e2e.conftest import Cluster, rows, spooling, wait_for
from tests.trust.proxy import Proxy

pytestmark = pytest.mark.slow
QUICK_AGENT = {"backoff_max_s": 2.0}


def sha_file(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_coordinator_killed_at_every_phase_of_a_round(
    cluster_factory: Callable[..., Cluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    c = cluster_factory(rounds=3, min_devices=2)
    # Phase 0: waiting for devices (none connected yet): SIGKILL, restart.
    c.start()
    assert c.run is not None
    wait_for("the coordinator to wait for devices", lambda: "waiting for devices" in c.logs())
    c.run.coordinator.send_signal(signal.SIGKILL)
    assert c.run.coordinator.wait(timeout=30) == -signal.SIGKILL
    # Round 0 completes; the process dies as round 1 opens (before any upload).
    monkeypatch.setenv(FAULT_ENV, "crash-after-open@1")
    c.start()
    c.agent("a", "shard=1/2", **QUICK_AGENT)
    c.agent("b", "shard=2/2", **QUICK_AGENT)
    assert c.run.coordinator.wait(timeout=180) == FAULT_EXIT, c.logs()
    r0 = next(r for r in c.rounds() if r["round"] == 0)
    assert r0["status"] == "completed"
    kept = {k: r0[k] for k in ("status", "result_sha256", "checkpoint_path", "closed_at")}
    ckpt_sha = sha_file(r0["checkpoint_path"])
    assert [r["status"] for r in c.rounds()] == ["completed", "open"]
    # Dies right after the first update of the next round was accepted and stored.
    monkeypatch.setenv(FAULT_ENV, "crash-after-upload@2")
    c.start()
    assert c.run.coordinator.wait(timeout=180) == FAULT_EXIT, c.logs()
    assert rows(c.db, "SELECT COUNT(*) AS n FROM uploads WHERE round = 2") == [{"n": 1}]
    # Dies after aggregating and checkpointing round 3, before recording its completion.
    monkeypatch.setenv(FAULT_ENV, "crash-after-aggregate@3")
    c.start()
    assert c.run.coordinator.wait(timeout=180) == FAULT_EXIT, c.logs()
    assert (c.root / "state" / "checkpoints" / "round-0003.pt").exists()
    r0_now = next(r for r in c.rounds() if r["round"] == 0)  # after three crashes: intact
    assert {k: r0_now[k] for k in kept} == kept
    assert sha_file(r0_now["checkpoint_path"]) == ckpt_sha
    # No fault: the run finishes with three completed rounds.
    monkeypatch.delenv(FAULT_ENV)
    c.start()
    assert c.run.wait(timeout_s=240) == 0, c.logs()
    by_round = {r["round"]: r for r in c.rounds()}
    assert [by_round[i]["status"] for i in sorted(by_round)] == [
        "completed",
        "aborted",
        "aborted",
        "aborted",
        "completed",
        "completed",
    ], c.logs()
    assert {k: by_round[0][k] for k in kept} == kept
    assert sha_file(by_round[0]["checkpoint_path"]) == ckpt_sha
    # The aggregated-but-unrecorded round 3 did not advance the model.
    assert by_round[4]["start_sha256"] == by_round[0]["result_sha256"]
    assert by_round[5]["start_sha256"] == by_round[4]["result_sha256"]
    for p in c.run.agents.values():
        assert p.wait(timeout=60) == 0


@pytest.fixture
def proxy_factory() -> Iterator[Callable[..., Proxy]]:
    made = []

    def make(port: int, **kw: Any) -> Proxy:
        p = Proxy(port, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_agent_killed_mid_download_and_connection_reset_mid_upload(
    cluster_factory: Callable[..., Cluster], proxy_factory: Callable[..., Proxy]
) -> None:
    c = cluster_factory(rounds=1, min_devices=2, deadline_s=120.0, scheme="fp32")
    c.start()
    assert c.run is not None
    proxy = proxy_factory(c.port, down_bytes_per_s=40_000)
    via = {"coordinator": f"127.0.0.1:{proxy.port}", **QUICK_AGENT}
    c.agent("steady", "shard=1/2")
    c.agent("victim", "shard=2/2", **via)
    # The fp32 model frame is ~1 MB: at 40 kB/s the victim is caught mid-download.
    wait_for("the victim's download to be under way", lambda: proxy.down_bytes > 200_000)
    victim = c.run.agents["victim"]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert rows(c.db, "SELECT * FROM uploads WHERE device_id = 'victim'") == []
    assert [r["status"] for r in c.rounds()] == ["open"]
    # Back with full download speed and a slow uplink; the link is reset mid-upload.
    proxy.down_bytes_per_s = None
    c.agent("victim", "shard=2/2", uplink_mbps=1.0, **via)
    spool = c.root / "state" / "spool"
    wait_for(
        "the victim's upload to be in flight",
        lambda: spooling(spool, "victim"),
    )
    proxy.cut()
    assert c.run.wait(timeout_s=180) == 0, c.logs()
    r0 = c.rounds()[0]
    assert r0["status"] == "completed" and r0["arrived"] == 2, c.logs()
    log = (c.root / "logs" / "victim.log").read_text()
    assert "upload interrupted" in log and "resuming upload of round 0 at byte" in log, log
    assert proxy.cuts == 1


def _mount_tmpfs(path: Path, size_bytes: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    size = f"size={max(4096, size_bytes // 4096 * 4096)}"
    out = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", size, "tmpfs", str(path)], capture_output=True
    )
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {out.stderr.decode().strip()}")


def test_disk_full_while_checkpointing(cluster_factory: Callable[..., Cluster]) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    c = cluster_factory(rounds=3, min_devices=1)
    ckpts = c.root / "state" / "checkpoints"
    # Room for one checkpoint (~1 MB for pi-small) but not two.
    _mount_tmpfs(ckpts, 1_600_000)
    try:
        c.start()
        assert c.run is not None
        c.agent("solo", "shard=1/1", **QUICK_AGENT)
        code = c.run.coordinator.wait(timeout=180)
        by_round = {r["round"]: r for r in c.rounds()}
        assert code == 1, c.logs()
        assert by_round[0]["status"] == "completed", c.logs()
        failed = by_round[1]
        assert failed["status"] == "failed" and failed["result_sha256"] is None
        assert "writing the checkpoint failed" in failed["note"]
        assert "bytes free there" in failed["note"] and "Free space in" in failed["note"]
        assert "stopped: round 1: writing the checkpoint failed" in c.logs()
        # The previous checkpoint is intact and loadable; no temp file is left behind.
        assert sorted(p.name for p in ckpts.iterdir()) == ["round-0000.pt"]
        from greenfed.ddpm import load_checkpoint

        assert load_checkpoint(by_round[0]["checkpoint_path"]).meta["round"] == 0
        assert rows(c.db, "SELECT COUNT(*) AS n FROM events WHERE kind='checkpoint_failed'") == [
            {"n": 1}
        ]
    finally:
        c.close()
        subprocess.run(["umount", "-l", str(ckpts)], check=False)
