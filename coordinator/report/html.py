"""One self-contained HTML page: banner, answers, tables, setup and every plot as base64 PNG.

No external resources (no scripts, fonts or stylesheets): the page opens offline and in
headless browsers, and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from coordinator.report.clocks import CLOCK_NOTE
from coordinator.report.plots import PLOT_TITLES
from coordinator.report.summary import SchemeSummary
from coordinator.report.text import (
    ADAPTER_HEADER,
    ADAPTER_NOTES,
    DATA_HEADER,
    ENERGY_HEADER,
    NOTES,
    adapter_rows,
    banner,
    data_rows,
    energy_rows,
    has_adapters,
)
from coordinator.report.verdict import NO, YES, Finding

_CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; max-width: 1350px; color: #222; }
.banner { background: #fff3cd; border: 2px solid #d39e00; padding: 10px 16px; margin: 12px 0; }
.banner p { margin: 4px 0; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eee; }
.YES { color: #0a6b2e; font-weight: bold; }
.NO { color: #b00020; font-weight: bold; }
.UNKNOWN { color: #666; font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; margin: 4px 0 20px; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; font-size: 12px; }
"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _finding(f: Finding) -> str:
    cls = f.outcome if f.outcome in (YES, NO) else "UNKNOWN"
    return f'<li>{_e(f.question)} <span class="{cls}">{_e(f.outcome)}</span>. {_e(f.detail)}</li>'


def img_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def render_html(
    title: str,
    summaries: Sequence[SchemeSummary],
    found: Sequence[Finding],
    checks: Sequence[str],
    plots: Mapping[str, Path],
    experiment: Dict[str, Any],
    csv_names: Sequence[str],
    margin: float,
    clocks: Sequence[Tuple[str, List[str], List[List[str]]]] = (),
) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        '<div class="banner">' + "".join(f"<p>{_e(b)}</p>" for b in banner(summaries)) + "</div>",
        "<h2>Answers</h2><ul>",
        *(f"<li>{_e(c)}</li>" for c in checks),
        *(_finding(f) for f in found),
        "</ul>",
        f"<p>Quality margin: on-demand's final FD is within the margin when it is at most "
        f"(1 + {margin:g}) times fp32's final FD (one-sided; lower FD is better).</p>",
        "<h2>Energy per scheme (J)</h2>",
        _table(ENERGY_HEADER, energy_rows(summaries)),
        "<h2>Bytes, bits, round time, quality</h2>",
        _table(DATA_HEADER, data_rows(summaries)),
        f"<p>{_e(NOTES)}</p>",
    ]
    if has_adapters(summaries):
        parts += [
            "<h2>Full model and adapters</h2>",
            _table(ADAPTER_HEADER, adapter_rows(summaries)),
            f"<p>{_e(ADAPTER_NOTES)}</p>",
        ]
    if clocks:
        parts.append("<h2>Clocks per round (MHz, assigned/ran at)</h2>")
        for title, header, rows in clocks:
            parts += [f"<h3>{_e(title)}</h3>", _table(header, rows)]
        parts.append(f"<p>{_e(CLOCK_NOTE)}</p>")
    parts.append("<h2>Plots</h2>")
    for name, path in plots.items():
        caption = PLOT_TITLES.get(name, name)
        parts += [f"<h3>{_e(caption)}</h3>", img_tag(path, caption)]
    parts += [
        "<h2>Records</h2>",
        "<p>Every figure above is computed from the coordinator stores listed here; the CSV "
        "files next to this page hold every stored device-round and round record: "
        + ", ".join(f"<code>{_e(n)}</code>" for n in csv_names)
        + ".</p>",
        "<ul>"
        + "".join(f"<li>{_e(s.scheme)}: <code>{_e(s.store)}</code></li>" for s in summaries)
        + "</ul>",
    ]
    if experiment:
        parts += ["<h2>Experiment setup</h2>", f"<pre>{_e(json.dumps(experiment, indent=2))}</pre>"]
    parts.append("</body></html>")
    return "\n".join(parts)
