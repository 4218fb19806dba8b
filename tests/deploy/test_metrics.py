"""Prometheus metrics: a real HTTP server over a real Store, scraped with urllib."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Dict, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from coordinator.metrics import MetricsServer, listen_host, serve_metrics
from coordinator.store import Store


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "greenfed.sqlite")
    yield s
    s.close()


def scrape(server: MetricsServer) -> Dict[str, float]:
    url = f"http://127.0.0.1:{server.port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    out: Dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def report(compute_j: float, comm_j: float, estimated: bool, bytes_up: int) -> Dict[str, object]:
    return {
        "compute_energy_j": compute_j,
        "comm_energy_j": comm_j,
        "estimated": int(estimated),
        "bytes_up": bytes_up,
        "report_json": "{}",
    }


def fill(store: Store) -> None:
    for dev in ("pi-1", "pi-2", "jetson-1"):
        store.upsert_device(dev, {"samples": 100})
    store.set_revoked("pi-2", True)
    start = {"scheme": "on-demand", "deadline_s": 30.0, "start_sha256": "00"}
    store.open_round(0, start)
    store.update_round(0, {"status": "completed", "quality_fd": 3.5})
    store.open_round(1, start)
    store.update_round(1, {"status": "completed", "quality_fd": 1.25})
    store.open_round(2, start)
    store.update_round(2, {"status": "failed"})
    store.open_round(3, start)
    store.record_upload(0, "pi-1", "aa", 1000, 50)
    store.record_upload(0, "jetson-1", "bb", 2500, 50)
    store.record_upload(1, "pi-1", "cc", 700, 50)
    store.record_report(0, "pi-1", report(10.0, 1.0, False, 1000))
    store.record_report(0, "jetson-1", report(4.0, 0.5, True, 2500))
    store.record_report(1, "pi-1", report(8.0, 2.0, False, 700))
    store.event("refused", "RevokedDevice: device pi-2 is revoked", device_id="pi-2")
    store.event("refused", "PermissionDenied: bad cert")
    store.event("register", "device pi-1 registered", device_id="pi-1")


def test_scrape_reads_the_store(store: Store) -> None:
    server = serve_metrics(store, "127.0.0.1", 0)
    try:
        empty = scrape(server)
        assert empty["greenfed_store_up"] == 1.0
        assert empty["greenfed_rounds{status=completed}"] == 0.0
        assert empty["greenfed_uploaded_bytes_total"] == 0.0
        assert "greenfed_last_round_quality_fd" not in empty

        fill(store)  # read at scrape time: no restart, no engine involved
        m = scrape(server)
    finally:
        server.stop()
    assert m["greenfed_rounds{status=completed}"] == 2.0
    assert m["greenfed_rounds{status=failed}"] == 1.0
    assert m["greenfed_rounds{status=open}"] == 1.0
    assert m["greenfed_rounds{status=aborted}"] == 0.0
    assert m["greenfed_devices{state=registered}"] == 3.0
    assert m["greenfed_devices{state=revoked}"] == 1.0
    assert m["greenfed_uploaded_bytes_total"] == 4200.0
    assert m["greenfed_energy_joules_total{estimated=false,window=compute}"] == 18.0
    assert m["greenfed_energy_joules_total{estimated=true,window=compute}"] == 4.0
    assert m["greenfed_energy_joules_total{estimated=false,window=communicate}"] == 3.0
    assert m["greenfed_energy_joules_total{estimated=true,window=communicate}"] == 0.5
    assert m["greenfed_refusals_total"] == 2.0
    assert m["greenfed_last_round"] == 1.0
    assert m["greenfed_last_round_quality_fd"] == 1.25


def test_closed_store_reports_down(tmp_path: Path) -> None:
    s = Store(tmp_path / "greenfed.sqlite")
    server = serve_metrics(s, "127.0.0.1", 0)
    try:
        s.close()
        m = scrape(server)
    finally:
        server.stop()
    assert m == {"greenfed_store_up": 0.0}


@pytest.mark.parametrize(
    "listen, host",
    [("127.0.0.1:50051", "127.0.0.1"), ("[::1]:50051", "::1"), ("0.0.0.0:1", "0.0.0.0")],
)
def test_listen_host(listen: str, host: str) -> None:
    assert listen_host(listen) == host


def test_coordinator_build_serves_metrics(tmp_path: Path) -> None:
    """metrics_port > 0 in the config starts the endpoint with the coordinator."""
    from coordinator.config import CoordinatorConfig
    from coordinator.runner import build
    from tests.deploy.sshd import free_port

    port = free_port()
    cfg = CoordinatorConfig(
        listen="127.0.0.1:0", state_dir=tmp_path / "run", metrics_port=port, eval_samples=8
    )
    coord = build(cfg)
    try:
        coord.store.upsert_device("pi-1", {"samples": 10})
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
    finally:
        coord.close(grace_s=0.5)
    assert 'greenfed_devices{state="registered"} 1.0' in text
    assert "greenfed_store_up 1.0" in text
