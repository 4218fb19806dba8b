"""The schemes over steady links and over fluctuating ones: the seed paper's open question.

A link study is two experiments (coordinator/experiment.py) with everything equal but the
links: ``<out>/steady/`` gives every device a fixed link at the time-weighted mean of its
trace, ``<out>/traces/`` replays the traces themselves; both keep the profile's RTT and loss,
the seed, the devices, the deadline and the error budget. ``coordinator/report/links.py``
then compares energy, bytes, deadline misses and final quality per scheme and condition.

Default links (:data:`TRACED_PRESET`, cycled over the devices), traces from
coordinator/links/traces/README.md:

    board-1  congested   (mean 2.46 Mbit/s, 0.3-4), RTT 60 ms
    board-2  lte-walk    (mean 12.0 Mbit/s, 1.8-40), RTT 50 ms
    board-3  wifi-steady (mean 20.2 Mbit/s, 16-25),  RTT 10 ms
    board-4  lte-walk from 300 s (another stretch of the same walk), RTT 50 ms

Errors: :class:`~coordinator.experiment.ExperimentError` for an unusable output folder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, List

from coordinator.experiment import ExperimentError, ExperimentSetup, run_experiment
from coordinator.links import LinkProfile, parse_link_spec

CONDITIONS = ("steady", "traces")
TRACED_PRESET = (
    "trace=congested,rtt=60",
    "trace=lte-walk,rtt=50",
    "trace=wifi-steady,rtt=10",
    "trace=lte-walk@300,rtt=50",
)
MARKER = "link-study.json"


def preset_links() -> List[LinkProfile]:
    return [parse_link_spec(s) for s in TRACED_PRESET]


def condition_links(condition: str, links: List[LinkProfile]) -> List[LinkProfile]:
    """The devices' links under ``condition``: the traces, or fixed links at their means."""
    if condition == "traces":
        return list(links)
    if condition == "steady":
        return [p.steady() for p in links]
    raise ExperimentError(f"unknown link condition {condition!r}: use steady or traces")


def setup_for(base: ExperimentSetup, condition: str, links: List[LinkProfile]) -> ExperimentSetup:
    """``base`` with each agent's link replaced by its link under ``condition``."""
    per = condition_links(condition, links)
    agents = [
        replace(a, link=per[i % len(per)], uplink_mbps=None) for i, a in enumerate(base.agents)
    ]
    return replace(base, agents=agents, condition=condition)


def prepare_study_out(out: Path) -> None:
    """Create ``out``; replace an earlier study there, refuse any other non-empty folder."""
    if out.exists():
        if not out.is_dir():
            raise ExperimentError(f"{out} exists and is not a directory")
        if any(out.iterdir()):
            if not (out / MARKER).is_file():
                raise ExperimentError(
                    f"{out} is not empty and holds no {MARKER}: choose another --out"
                )
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def run_link_study(
    base: ExperimentSetup,
    links: List[LinkProfile],
    out: Path,
    say: Callable[[str], None] = print,
    conditions: tuple = CONDITIONS,
) -> Dict[str, List[Dict[str, Any]]]:
    """Run the experiment once per condition, into ``<out>/<condition>/``."""
    prepare_study_out(out)
    doc: Dict[str, Any] = {
        "format": "greenfed-link-study/1",
        "conditions": list(conditions),
        "links": [p.to_json() for p in links],
        "results": {},
    }
    results: Dict[str, List[Dict[str, Any]]] = {}
    for condition in conditions:
        described = "; ".join(p.describe() for p in condition_links(condition, links))
        say(f"== link condition {condition}: {described}")
        results[condition] = run_experiment(setup_for(base, condition, links), out / condition, say)
        doc["results"] = results
        (out / MARKER).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return results
