"""report.md: the same tables as the HTML report, plots linked as files; completions stay in the HTML."""

from __future__ import annotations

import html
from pathlib import Path

from evalkit.report.plots import PlotFiles
from evalkit.report.sections import (
    RunSection,
    Table,
    breakdown_tables,
    config_table,
    differences_table,
    has_official,
    metrics_table,
    pass_at_k_table,
    per_problem_table,
    provenance_table,
)
from evalkit.report.tables import markdown_table


def _table(table: Table) -> str:
    header, rows = table
    return markdown_table(header, rows) if rows else "(none)"


def _plot_links(plots: list[PlotFiles], out_dir: Path) -> list[str]:
    lines = []
    for plot in plots:
        png, svg = plot.png.relative_to(out_dir).as_posix(), plot.svg.relative_to(out_dir).as_posix()
        lines.append(f"![{plot.title}]({png})  \n[{plot.title} (SVG)]({svg})\n")
    return lines


def _differences(section: RunSection) -> list[str]:
    """Where evalkit and the official judgement differ; responses are model text: HTML-escaped."""
    if not has_official(section):
        return []
    (header, rows), more = differences_table(section)
    rows = [[html.escape(cell) for cell in row] for row in rows]
    parts = ["### Where evalkit and the official judgement differ", _table((header, rows))]
    if more:
        parts.append(f"... and {more} more samples (all in scores.jsonl: `correct` vs `official`).")
    return parts


def run_section_markdown(section: RunSection, out_dir: Path) -> str:
    parts = [
        f"## {section.label}",
        f"Status: **{section.status}**",
        "### Metrics",
        _table(metrics_table(section.run)),
        "### pass@k and maj@k",
        _table(pass_at_k_table(section.run)),
    ]
    for kind, table in breakdown_tables(section.run):
        parts += [f"### By {kind}", _table(table)]
    parts += _differences(section)
    if section.plots:
        parts += ["### Plots", *_plot_links(section.plots, out_dir)]
    parts += [
        "### Config",
        _table(config_table(section.run)),
        "### Provenance",
        _table(provenance_table(section.run)),
        "### Per problem",
        _table(per_problem_table(section)),
        "Every sample's completion, extracted answer and verdict: see report.html.",
    ]
    return "\n\n".join(parts)


def render_report(
    sections: list[RunSection],
    leaderboard_table: Table,
    legend: tuple[str, ...],
    shared_plots: list[PlotFiles],
    out_dir: Path,
) -> str:
    parts = [
        "# evalkit report",
        "\n".join(f"- {s.label}: {s.status}" for s in sections),
        "## Summary",
        _table(leaderboard_table),
        "\n".join(f"- {line}" for line in legend),
    ]
    if shared_plots:
        parts += ["### Across runs", *_plot_links(shared_plots, out_dir)]
    parts += [run_section_markdown(s, out_dir) for s in sections]
    return "\n\n".join(parts) + "\n"
