"""The self-contained HTML report: inline CSS, plots as base64 PNG, no script, no network.

Every sample's completion is readable in nested <details> elements (problem -> sample), with its
extracted answer, verdict, finish reason and length in the summary line.
"""

from __future__ import annotations

import base64
import html
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from evalkit.report.plots import PlotFiles
from evalkit.report.sections import (
    RunSection,
    Table,
    breakdown_tables,
    clip_text,
    config_table,
    differences_table,
    golds_by_problem,
    has_official,
    metrics_table,
    pass_at_k_table,
    per_problem_table,
    provenance_table,
)
from evalkit.report.tables import html_table

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1200px;
  padding:0 16px;color:#1d2733;background:#fff;line-height:1.4}
h1{font-size:1.6em;border-bottom:3px solid #2a6f97;padding-bottom:4px}
h2{font-size:1.3em;margin-top:2em;background:#eef4f8;padding:6px 10px;border-left:6px solid #2a6f97}
h3{font-size:1.05em;margin-top:1.4em}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}
th,td{border:1px solid #c9d3dc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#dde8f0}
tr:nth-child(even) td{background:#f6f9fb}
.status{display:inline-block;padding:2px 8px;border-radius:4px;font-weight:600}
.status.final{background:#d8f3dc;color:#1b4332}.status.incomplete{background:#ffd6a5;color:#7f3d00}
figure{display:inline-block;margin:8px;vertical-align:top}
figure img{max-width:560px;border:1px solid #c9d3dc}
figcaption{font-size:.85em;color:#4a5a6a}
details{margin:2px 0 2px 12px}summary{cursor:pointer}
details.problem>summary{font-weight:600}
pre{white-space:pre-wrap;word-break:break-word;background:#f4f4f4;padding:8px;border:1px solid #ddd;
  max-height:480px;overflow:auto;font-size:.85em}
.ok{color:#1b7f3b;font-weight:700}.bad{color:#b3261e;font-weight:700}.none{color:#6c757d}
.grid{display:flex;flex-wrap:wrap;gap:16px}
"""


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _table(table: Table, css_class: str = "table") -> str:
    header, rows = table
    return html_table(header, rows, css_class) if rows else '<p class="none">(none)</p>'


def figure(plot: PlotFiles) -> str:
    data = base64.b64encode(plot.png.read_bytes()).decode("ascii")
    title = html.escape(plot.title)
    return (
        f'<figure><img class="plot" alt="{title}" src="data:image/png;base64,{data}">'
        f"<figcaption>{title} (SVG: plots/{html.escape(plot.svg.name)})</figcaption></figure>"
    )


def _verdict(sample: dict[str, Any]) -> str:
    if sample.get("correct") is None:
        return '<span class="none">unscored</span>'
    return '<span class="ok">✓ correct</span>' if sample["correct"] else '<span class="bad">✗ wrong</span>'


def samples_html(section: RunSection, max_chars: int) -> str:
    """Problem -> samples as nested <details>; the text is escaped and clipped to max_chars (0 = all)."""
    by_problem: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for sample in section.samples:
        by_problem[str(sample["problem_id"])].append(sample)
    golds = golds_by_problem(section.samples)
    parts = []
    for problem_id, samples in by_problem.items():
        right = sum(1 for s in samples if s.get("correct"))
        inner = []
        for s in samples:
            text, omitted = clip_text(s.get("text"), max_chars)
            extracted = "no answer" if s.get("extracted") is None else f"extracted: {s['extracted']}"
            summary = (
                f"sample {s['sample_index']}: {_verdict(s)} · {html.escape(extracted)} · "
                f"finish: {html.escape(str(s.get('finish_reason')))} · {s.get('num_generated_tokens')} tokens"
                + (f" · {html.escape(str(s['reason']))}" if s.get("reason") else "")
                + (f" · clipped ({omitted} chars omitted)" if omitted else "")
            )
            body = (
                "<pre>(completion not in completions.jsonl)</pre>"
                if s.get("text") is None
                else f"<pre>{html.escape(text)}</pre>"
            )
            inner.append(f'<details class="sample"><summary>{summary}</summary>{body}</details>')
        gold = html.escape(golds.get(problem_id, "?"))
        parts.append(
            f'<details class="problem"><summary>{html.escape(problem_id)}: {right}/{len(samples)} correct'
            f" · gold: {gold}</summary>{''.join(inner)}</details>"
        )
    return "".join(parts) or '<p class="none">(no completions)</p>'


def _differences(section: RunSection) -> list[str]:
    """Where evalkit and the official judgement differ (html_table escapes every cell)."""
    if not has_official(section):
        return []
    table, more = differences_table(section)
    parts = ["<h3>Where evalkit and the official judgement differ</h3>", _table(table, "table differences")]
    if more:
        parts.append(f"<p>... and {more} more samples (all in scores.jsonl: correct vs official).</p>")
    return parts


def run_section_html(section: RunSection, max_chars: int) -> str:
    status_class = "final" if section.status == "final" else "incomplete"
    parts = [
        f'<h2 id="{html.escape(section.anchor)}">{html.escape(section.label)}</h2>',
        f'<p>Status: <span class="status {status_class}">{html.escape(section.status)}</span></p>',
        "<h3>Metrics</h3>",
        _table(metrics_table(section.run), "table metrics"),
        "<h3>pass@k and maj@k</h3>",
        _table(pass_at_k_table(section.run)),
    ]
    for kind, table in breakdown_tables(section.run):
        parts += [f"<h3>By {html.escape(kind)}</h3>", _table(table)]
    parts += _differences(section)
    if section.plots:
        parts += ["<h3>Plots</h3>", '<div class="grid">', *(figure(p) for p in section.plots), "</div>"]
    parts += [
        "<h3>Config</h3>",
        _table(config_table(section.run)),
        "<h3>Provenance</h3>",
        _table(provenance_table(section.run)),
        "<h3>Per problem</h3>",
        _table(per_problem_table(section), "table per-problem"),
        "<h3>Samples (click a problem, then a sample)</h3>",
        samples_html(section, max_chars),
    ]
    return "\n".join(parts)


def render_report(
    sections: list[RunSection],
    leaderboard_table: Table,
    legend: tuple[str, ...],
    shared_plots: list[PlotFiles],
    max_chars: int,
) -> str:
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    toc = "".join(
        f'<li><a href="#{html.escape(s.anchor)}">{html.escape(s.label)}</a> ({html.escape(s.status)})</li>'
        for s in sections
    )
    parts = [
        "<h1>evalkit report</h1>",
        f"<p>Generated {generated}. {len(sections)} run(s).</p><ul>{toc}</ul>",
        '<h2 id="summary">Summary</h2>',
        _table(leaderboard_table, "table leaderboard"),
        "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in legend) + "</ul>",
    ]
    if shared_plots:
        parts += ["<h3>Across runs</h3>", '<div class="grid">', *(figure(p) for p in shared_plots), "</div>"]
    parts += [run_section_html(s, max_chars) for s in sections]
    return page("evalkit report", "\n".join(parts))
