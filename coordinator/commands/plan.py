"""``greenfed-coordinator plan FLEET.json``: bits and CPU frequency per device for one round.

Exit codes: 0 the plan is feasible; 1 the plan is infeasible (the report says which constraint
fails and by how much); 2 usage error: unreadable or malformed FLEET.json, a physically impossible
value (the message names the field), or an unknown scheme.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List

from coordinator.allocator import AllocatorError, Plan, allocate, parse_fleet

HELP = "plan each device's quantization bits and CPU frequency for a fleet (FLEET.json)"

EXIT_FEASIBLE = 0
EXIT_INFEASIBLE = 1
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fleet", type=Path, metavar="FLEET.json", help="fleet description")
    parser.add_argument(
        "--scheme",
        default="on-demand",
        help="on-demand (default), fp32, or fixed-B with B in 1..16 (e.g. fixed-8)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def read_fleet_json(path: Path) -> Any:
    """Decode FLEET.json; raises ValueError with a readable message."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from e


def format_table(plan: Plan) -> str:
    """A readable table of the plan."""
    mu = "-" if plan.multiplier is None else f"{plan.multiplier:.4g}"
    lines: List[str] = [
        f"scheme {plan.scheme}   feasible {'yes' if plan.feasible else 'NO'}   multiplier {mu}",
        f"error {plan.error:.4g} (budget {plan.error_budget:.4g})   "
        f"total energy {plan.total_energy_j:.6g} J",
        "",
        f"{'id':<16} {'bits':>4} {'freq_MHz':>10} {'energy_J':>11} {'compute_J':>11} "
        f"{'comm_J':>11} {'time_s':>9}",
    ]
    for d in plan.devices:
        lines.append(
            f"{d.id:<16} {d.bits:>4} {d.freq_hz / 1e6:>10.1f} {d.energy_j:>11.5g} "
            f"{d.compute_energy_j:>11.5g} {d.comm_energy_j:>11.5g} {d.time_s:>9.4g}"
        )
    if plan.infeasible:
        lines += ["", "infeasible:"]
        lines += [f"  - {p.kind}: {p.message}" for p in plan.infeasible]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        fleet = parse_fleet(read_fleet_json(args.fleet))
        plan = allocate(fleet, args.scheme)
    except (AllocatorError, ValueError) as e:
        print(f"greenfed-coordinator plan: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        doc: Dict[str, Any] = plan.to_dict()
        print(json.dumps(doc, indent=2))
    else:
        print(format_table(plan))
    return EXIT_FEASIBLE if plan.feasible else EXIT_INFEASIBLE
