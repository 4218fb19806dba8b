"""Stores with known rows, written through coordinator.store.Store like the coordinator does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from coordinator.store import Store

SCOPE = "estimated whole board (test)"


def report_fields(
    compute_j: float,
    compute_dyn: float,
    comm_j: float,
    comm_dyn: float,
    bytes_up: int,
    bits: int,
    link_mbps: float = 2.0,
) -> Dict[str, Any]:
    return {
        "compute_energy_j": compute_j,
        "compute_dynamic_j": compute_dyn,
        "compute_time_s": 10.0,
        "comm_energy_j": comm_j,
        "comm_dynamic_j": comm_dyn,
        "comm_time_s": 1.0,
        "power_source": "estimated",
        "power_scope": SCOPE,
        "estimated": 1,
        "mean_freq_hz": 2.0e9,
        "bytes_up": bytes_up,
        "bits": bits,
        "samples": 100,
        "emulated_link": 1,
        "link_mbps": link_mbps,
        "report_json": "{}",
    }


def make_store(
    path: Path,
    scheme: str,
    rounds: List[Dict[str, Any]],
    deadline_s: float = 60.0,
    budget: float = 0.5,
) -> Path:
    """``rounds``: dicts with status, fd, and devices {id: (bits, predicted_j, report or None)}."""
    store = Store(path)
    try:
        for i, r in enumerate(rounds):
            store.open_round(
                i,
                {
                    "scheme": scheme,
                    "deadline_s": deadline_s,
                    "error_budget": budget,
                    "start_sha256": "0" * 64,
                    "participants": len(r["devices"]),
                },
            )
            for dev, (bits, pred, rep) in r["devices"].items():
                store.upsert_device(dev, {"samples": 100, "link_mbps": 2.0})
                store.add_assignment(
                    i,
                    dev,
                    {
                        "mode": "fp32" if bits == 32 else "stochastic",
                        "bits": bits,
                        "freq_hz": 1.0e9,
                        "local_steps": 10,
                        "predicted_energy_j": pred,
                        "predicted_compute_j": pred,
                        "predicted_comm_j": 0.0,
                        "predicted_time_s": 5.0,
                    },
                )
                if rep is not None:
                    store.record_report(i, dev, rep)
            started = store.get_round(i)["started_at"]
            store.update_round(
                i,
                {
                    "status": r.get("status", "completed"),
                    "closed_at": started + r.get("time_s", 30.0),
                    "quality_fd": r.get("fd"),
                    "quality_floor": 0.5,
                    "quality_noise": 30.0,
                    "arrived": len(r["devices"]),
                },
            )
    finally:
        store.close()
    return path


def two_rounds(
    bits: int, compute: float, comm: float, bytes_up: int, fds: tuple, missing: bool = False
) -> List[Dict[str, Any]]:
    """Two completed rounds of devices a, b and one failed round (which must not count)."""

    def dev() -> Any:
        return (bits, 5.0, report_fields(compute * 2, compute, comm * 2, comm, bytes_up, bits))

    second_b = (bits, 5.0, None) if missing else dev()
    return [
        {"fd": fds[0], "devices": {"a": dev(), "b": dev()}},
        {"fd": fds[1], "devices": {"a": dev(), "b": second_b}, "time_s": 50.0},
        {"status": "failed", "fd": None, "devices": {"a": dev(), "b": dev()}},
    ]


@pytest.fixture
def experiment_dir(tmp_path: Path) -> Path:
    """fp32, fixed-8 and on-demand stores under an experiment.json, with known figures."""
    root = tmp_path / "exp"
    specs = {
        "fp32": two_rounds(32, 40.0, 3.0, 1000, (4.0, 2.0)),
        "fixed-8": two_rounds(8, 41.0, 1.0, 300, (4.2, 2.1)),
        "on-demand": two_rounds(4, 42.0, 0.5, 150, (4.4, 2.3), missing=True),
    }
    for scheme, rounds in specs.items():
        make_store(root / scheme / "state" / "greenfed.sqlite", scheme, rounds)
    doc: Dict[str, Optional[Any]] = {"schemes": list(specs), "quality_margin_rel": 0.2}
    (root / "experiment.json").write_text(json.dumps(doc))
    return root
