"""``greenfed-coordinator report``: summary, answers, CSV, plots and HTML from stored records."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = (
    "report a run from its stored records: summary per scheme, plain answers, CSV of every "
    "device-round, PNG plots and one self-contained HTML page"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        type=Path,
        metavar="RUN_DIR_OR_DB",
        help="an experiment or run directory, a link study (experiment --links both: the "
        "steady-vs-traces comparison), or a coordinator store (greenfed.sqlite)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="report folder (default: <run dir>/report)"
    )
    parser.add_argument(
        "--quality-margin",
        type=float,
        default=None,
        metavar="REL",
        help="on-demand's final FD may exceed fp32's by this share (default: the experiment's, "
        "else 0.20)",
    )


def run(args: argparse.Namespace) -> int:
    from coordinator.errors import ReportError
    from coordinator.link_study import MARKER
    from coordinator.report import build_report
    from coordinator.report.links import build_link_report

    if args.quality_margin is not None and args.quality_margin < 0:
        print("greenfed-coordinator report: --quality-margin must be >= 0", file=sys.stderr)
        return 2
    try:
        if (args.source / MARKER).is_file():
            study = build_link_report(args.source, args.out or args.source / "report")
            print(f"{study.text}\n\nreport: {study.html_path}")
            return 0
        result = build_report(args.source, args.out, args.quality_margin)
    except ReportError as e:
        print(f"greenfed-coordinator report: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"greenfed-coordinator report: error writing the report: {e}", file=sys.stderr)
        return 2
    print(result.text)
    print(f"\nreport: {result.html_path}")
    print(f"CSV: {', '.join(str(p) for p in result.csvs)}")
    return 0
