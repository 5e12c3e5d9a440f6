"""A Comparison as a terminal table, markdown, JSON or a self-contained HTML page (with its plots).

Every format shows the same numbers from the same rows; html and md written to a file get the two
plots as PNG + SVG in a plots/ folder beside it (the HTML also embeds the PNGs).
"""

from __future__ import annotations

import html
import json
import tempfile
from pathlib import Path

from evalkit.compare.comparison import Comparison, ProblemRow, format_p
from evalkit.compare.stats import PairedResult
from evalkit.core.errors import EvalkitError
from evalkit.report.plots import PlotFiles
from evalkit.report.tables import html_table, markdown_table

FORMATS = ("table", "md", "json", "html")
Table = tuple[list[str], list[list[str]]]


def _test(r: PairedResult) -> str:
    if r.p_method == "exact":
        return f"exact, {r.nonzero} problems differ"
    return f"{r.permutations} random permutations"


def summary_table(c: Comparison) -> Table:
    header = ["metric", "A", "B", "A - B", "stderr", "95% CI", "p", "permutation test"]
    rows = []
    for name, r in [("Pass@1", c.pass_at_1), *((f"pass@{k}", v) for k, v in c.pass_at_k.items())]:
        rows.append(
            [
                name,
                f"{r.a:.2f}",
                f"{r.b:.2f}",
                f"{r.delta:+.2f}",
                f"{r.stderr:.2f}",
                f"[{r.ci95[0]:+.2f}, {r.ci95[1]:+.2f}]",
                format_p(r.p_value),
                _test(r),
            ]
        )
    return header, rows


def runs_table(c: Comparison) -> Table:
    header = ["run", "model", "run_id", "seed", "n", "temperature", "top_p", "prompt", "checker", "folder"]
    rows = [
        [
            side,
            run.config.model,
            run.run_id[:12],
            run.seed_text,
            str(run.n),
            str(run.config.temperature),
            str(run.config.top_p),
            run.config.prompt_name,
            run.checker,
            str(run.path),
        ]
        for side, run in (("A", c.a), ("B", c.b))
    ]
    return header, rows


def _problem_line(row: ProblemRow) -> list[str]:
    return [
        row.id,
        f"{row.a_correct}/{row.a_samples}",
        f"{row.a:.1f}",
        f"{row.b_correct}/{row.b_samples}",
        f"{row.b:.1f}",
        f"{row.delta:+.1f}",
    ]


_PROBLEM_HEADER = ["problem", "A correct", "A %", "B correct", "B %", "A - B"]


def problems_table(rows: list[ProblemRow] | tuple[ProblemRow, ...]) -> Table:
    return list(_PROBLEM_HEADER), [_problem_line(r) for r in rows]


def deciding_tables(c: Comparison) -> list[tuple[str, Table]]:
    a_ahead, b_ahead = c.deciding()
    return [
        (f"A ahead (the {c.top} largest differences)", problems_table(a_ahead)),
        (f"B ahead (the {c.top} largest differences)", problems_table(b_ahead)),
    ]


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    if not rows:
        return "  (none)"
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        parts = []
        for cell, width in zip(cells, widths, strict=True):
            numeric = cell[:1] in "+-[0123456789" and cell != "-"
            parts.append(cell.rjust(width) if numeric else cell.ljust(width))
        return "  " + "  ".join(parts).rstrip()

    return "\n".join([line(header), "  " + "  ".join("-" * w for w in widths), *map(line, rows)])


def _title(c: Comparison) -> str:
    return f"evalkit compare: {c.task}, {len(c.problems)} problems (A - B, seed {c.seed})"


def render_text(c: Comparison) -> str:
    parts = [_title(c), f"  A = {c.a.label}", f"  B = {c.b.label}", ""]
    parts += [f"warning: {w}" for w in c.warnings] + ([""] if c.warnings else [])
    parts += [text_table(*summary_table(c)), "", c.verdict(), "", "Problems that decide it:"]
    for title, table in deciding_tables(c):
        parts += [f" {title}", text_table(*table)]
    parts += ["", "Per problem:", text_table(*problems_table(c.problems))]
    return "\n".join(parts) + "\n"


def _notes(c: Comparison) -> list[str]:
    method = c.method()
    return [
        "All numbers in points (percent); A - B > 0 means A is ahead.",
        f"stderr: {method['stderr']}.",
        f"95% CI: {method['ci95']}.",
        f"p: {method['p_value']}; seed {c.seed}.",
    ]


def render_markdown(c: Comparison, plots: list[PlotFiles], out_dir: Path | None) -> str:
    parts = [f"# {_title(c)}", markdown_table(*runs_table(c))]
    if c.warnings:
        parts.append("\n".join(f"- **warning:** {w}" for w in c.warnings))
    parts += [markdown_table(*summary_table(c)), f"**{c.verdict()}**", "\n".join(f"- {n}" for n in _notes(c))]
    parts.append("## Problems that decide it")
    for title, table in deciding_tables(c):
        parts += [f"### {title}", markdown_table(*table) if table[1] else "(none)"]
    if plots and out_dir is not None:
        parts.append("## Plots")
        for plot in plots:
            png, svg = plot.png.relative_to(out_dir).as_posix(), plot.svg.relative_to(out_dir).as_posix()
            parts.append(f"![{plot.title}]({png})  \n[{plot.title} (SVG)]({svg})")
    parts += ["## Per problem", markdown_table(*problems_table(c.problems))]
    return "\n\n".join(parts) + "\n"


def _html_table(table: Table) -> str:
    return html_table(*table) if table[1] else '<p class="none">(none)</p>'


def render_html(c: Comparison, plots: list[PlotFiles]) -> str:
    from evalkit.report.html import figure, page

    parts = [f"<h1>{html.escape(_title(c))}</h1>", _html_table(runs_table(c))]
    parts += [f'<p class="bad">warning: {html.escape(w)}</p>' for w in c.warnings]
    parts += [
        _html_table(summary_table(c)),
        f"<p><strong>{html.escape(c.verdict())}</strong></p>",
        "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in _notes(c)) + "</ul>",
        "<h2>Problems that decide it</h2>",
    ]
    for title, table in deciding_tables(c):
        parts += [f"<h3>{html.escape(title)}</h3>", _html_table(table)]
    if plots:
        parts += ["<h2>Plots</h2>", '<div class="grid">', *(figure(p) for p in plots), "</div>"]
    parts += ["<h2>Per problem</h2>", _html_table(problems_table(c.problems))]
    return page(f"evalkit compare {c.task}", "\n".join(parts))


def render(c: Comparison, fmt: str, out: Path | None = None) -> tuple[str, list[PlotFiles]]:
    """(text, plot files written). Plots go to out's folder/plots/ for html and md written to a file;
    html printed to the terminal embeds them and keeps no files."""
    from evalkit.compare.plots import comparison_plots

    if fmt not in FORMATS:
        raise EvalkitError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps(c.to_json(), indent=2, ensure_ascii=False) + "\n", []
    if fmt == "table":
        return render_text(c), []
    if out is None:
        if fmt == "md":
            return render_markdown(c, [], None), []
        with tempfile.TemporaryDirectory() as tmp:
            return render_html(c, comparison_plots(c, Path(tmp), "compare")), []
    plots = comparison_plots(c, out.parent / "plots", out.stem)
    text = render_html(c, plots) if fmt == "html" else render_markdown(c, plots, out.parent)
    return text, plots
