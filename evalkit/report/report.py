"""`evalkit report`: read runs, draw the plots, write report.html (self-contained) and report.md."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from evalkit.report.leaderboard import build_leaderboard
from evalkit.report.loading import RunRecord, load_runs, read_samples
from evalkit.report.plots import (
    PlotFiles,
    accuracy_heatmap,
    accuracy_vs_length,
    length_histogram,
    pass_at_k_curve,
)
from evalkit.report.reference import Reference
from evalkit.report.sections import RunSection, problem_accuracies
from evalkit.report.tables import display_rows, legend

DEFAULT_MAX_SAMPLE_CHARS = 10000  # head + tail; AIME at n=64 is 1920 completions


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    markdown: Path
    plots: tuple[PlotFiles, ...]


def _stem(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "_".join(parts)).strip("-")


def _run_plots(run: RunRecord, samples: list[dict], plots_dir: Path) -> list[PlotFiles]:
    label = f"{run.task} ({run.short_id})"
    plots = []
    if any(s.get("correct") is not None for s in samples):
        plots.append(
            accuracy_vs_length(
                {label: samples},
                plots_dir,
                _stem(run.task, run.short_id, "accuracy_vs_length"),
                f"Accuracy vs. generated length: {label}",
            )
        )
        plots.append(
            length_histogram(
                samples,
                run.config.get("max_new_tokens"),
                plots_dir,
                _stem(run.task, run.short_id, "lengths"),
                f"Generated lengths: {label}",
            )
        )
    if run.metrics and run.metrics.get("pass_at_k"):
        plots.append(
            pass_at_k_curve(
                {"": run.metrics},
                plots_dir,
                _stem(run.task, run.short_id, "pass_at_k"),
                f"pass@k and maj@k: {label}",
            )
        )
    return plots


def _heatmaps(sections: list[RunSection], plots_dir: Path) -> list[PlotFiles]:
    """One heatmap per task: rows are the runs of that task, columns its problems."""
    by_task: dict[str, dict[str, dict[str, float]]] = {}
    for section in sections:
        accuracies = problem_accuracies(section)
        if accuracies:
            by_task.setdefault(section.run.task, {})[f"{section.run.model} ({section.run.short_id})"] = (
                accuracies
            )
    return [
        accuracy_heatmap(rows, plots_dir, _stem(task, "heatmap"), f"Per-problem accuracy: {task}")
        for task, rows in sorted(by_task.items())
    ]


def write_report(
    run_paths: list[Path],
    out_dir: Path,
    reference: Reference | None = None,
    max_sample_chars: int = DEFAULT_MAX_SAMPLE_CHARS,
    skipped: list[Path] | None = None,
) -> ReportFiles:
    """Write report.html, report.md and plots/ (PNG + SVG) for the runs under `run_paths`."""
    from evalkit.report import html, markdown

    runs = sorted(load_runs(run_paths, skipped), key=lambda r: (r.task, r.model, r.run_id))
    out_dir.mkdir(parents=True, exist_ok=True)
    plots_dir = out_dir / "plots"
    sections = []
    for run in runs:
        samples = read_samples(run)
        sections.append(RunSection(run=run, samples=samples, plots=_run_plots(run, samples, plots_dir)))
    shared = _heatmaps(sections, plots_dir)

    board = build_leaderboard(runs, reference, judgement="both")  # the official Pass@1 beside ours
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    html_path.write_text(
        html.render_report(sections, display_rows(board, "html"), legend(board), shared, max_sample_chars),
        encoding="utf-8",
    )
    md_path.write_text(
        markdown.render_report(sections, display_rows(board, "md"), legend(board), shared, out_dir),
        encoding="utf-8",
    )
    all_plots = tuple(p for s in sections for p in s.plots) + tuple(shared)
    return ReportFiles(html=html_path, markdown=md_path, plots=all_plots)
