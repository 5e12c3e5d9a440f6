"""The comparison's two plots, PNG + SVG, drawn like the report's (matplotlib object API, no pyplot)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from evalkit.compare.comparison import Comparison
from evalkit.report.plots import PlotFiles, save_figure


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def per_problem_scatter(comparison: Comparison, out_dir: Path, stem: str) -> PlotFiles:
    """A's Pass@1 against B's, one point per problem; problems on the same spot make a bigger point."""
    title = f"{comparison.task}: Pass@1 per problem, A vs B"
    fig, ax = _figure(5.5, 5.0)
    spots = Counter((row.b, row.a) for row in comparison.problems)
    xs, ys = zip(*spots, strict=True)
    sizes = [30 + 25 * (count - 1) for count in spots.values()]
    ax.plot([0, 100], [0, 100], color="#888", linestyle="--", linewidth=1, label="A = B")
    ax.scatter(xs, ys, s=sizes, alpha=0.6, color="#2a6f97", edgecolors="white")
    for (x, y), count in spots.items():
        if count > 1:
            ax.annotate(str(count), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=7)
    ax.set_xlim(-5, 105)
    ax.set_ylim(-5, 105)
    ax.set_xlabel(f"B: {comparison.b.label} (%)")
    ax.set_ylabel(f"A: {comparison.a.label} (%)")
    ax.set_title(title + "\n(above the line: A ahead; labels = problems on one spot)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, out_dir, stem, title)


def sorted_differences(comparison: Comparison, out_dir: Path, stem: str) -> PlotFiles:
    """Per-problem A - B sorted, with the mean difference and its 95% CI across the chart."""
    title = f"{comparison.task}: A - B per problem, sorted"
    result = comparison.pass_at_1
    deltas = sorted(row.delta for row in comparison.problems)
    fig, ax = _figure(min(14.0, max(6.0, 0.12 * len(deltas) + 3)), 4.0)
    colors = ["#2a9d8f" if d > 0 else "#e76f51" if d < 0 else "#adb5bd" for d in deltas]
    ax.bar(range(len(deltas)), deltas, color=colors, width=0.9)
    ties = [i for i, d in enumerate(deltas) if d == 0]
    if ties:  # a zero-height bar is invisible; a dot shows the problem is there
        ax.scatter(ties, [0] * len(ties), s=8, color="#6c757d", zorder=3, label="A = B")
    ax.axhline(0, color="#444", linewidth=0.8)
    ax.axhline(result.delta, color="#1d3557", linewidth=1.5, label=f"mean {result.delta:+.1f}")
    ax.axhspan(*result.ci95, color="#1d3557", alpha=0.12, label="95% CI of the mean")
    ax.set_xlabel(f"{len(deltas)} problems, sorted by A - B")
    ax.set_ylabel("A - B (points)")
    ax.set_ylim(-105, 105)
    ax.set_xticks([])
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    return save_figure(fig, out_dir, stem, title)


def comparison_plots(comparison: Comparison, out_dir: Path, stem: str) -> list[PlotFiles]:
    return [
        per_problem_scatter(comparison, out_dir, f"{stem}-scatter"),
        sorted_differences(comparison, out_dir, f"{stem}-differences"),
    ]
