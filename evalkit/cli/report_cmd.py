"""`evalkit leaderboard` and `evalkit report`: our runs beside the published numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evalkit.cli import app
from evalkit.core.errors import EvalkitError
from evalkit.core.files import check_writable_folder

REFERENCE_HELP = (
    "Published rows to compare with: a name in results/reference/ (default: phi4_mini_flash_model_card "
    "when present), a path to a reference .json, or 'none'."
)


def _note_skipped(skipped: list[Path]) -> None:
    for path in skipped:
        typer.echo(f"note: skipped {path} (not a run folder)", err=True)


def _reference(name: str | None):
    from evalkit.report import DEFAULT_REFERENCE, load_reference

    return load_reference(name or DEFAULT_REFERENCE, missing_ok=name is None)


@app.command()
def leaderboard(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Run folders (results/<run_id>) or folders of runs (results/).")
    ],
    reference: Annotated[str | None, typer.Option(help=REFERENCE_HELP)] = None,
    format: Annotated[str, typer.Option("--format", help="md, csv, html or latex.")] = "md",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of printing.")] = None,
    significance: Annotated[
        bool,
        typer.Option(
            help="Mark each task's best run of ours (★) and whether each other run of ours is significantly "
            "below it (▼) or not (≈): paired permutation test over problems, p < 0.05."
        ),
    ] = False,
    judgement: Annotated[
        str,
        typer.Option(
            help="Whose verdicts: evalkit (ours), official (lighteval's judgement, stored beside ours), "
            "or both (ours with the official Pass@1 and the difference beside it)."
        ),
    ] = "evalkit",
) -> None:
    """Pass@1 [95% CI] n per model and task, beside the published reference rows, with deltas."""
    from evalkit.report import build_leaderboard, load_runs, render_leaderboard

    skipped: list[Path] = []
    from evalkit.report.leaderboard import JUDGEMENTS

    if judgement not in JUDGEMENTS:  # before any folder is read
        raise EvalkitError(f"--judgement {judgement!r} is unknown; choose one of {', '.join(JUDGEMENTS)}")
    runs = load_runs(run_dirs, skipped)
    board = build_leaderboard(runs, _reference(reference), significance=significance, judgement=judgement)
    _note_skipped(skipped)
    text = render_leaderboard(board, format)
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    if out.is_dir():
        raise EvalkitError(f"--out {out} is a folder; give a file name, e.g. {out / 'leaderboard.md'}")
    check_writable_folder(out.parent, f"--out {out}: its folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}")


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="A run folder (or several, or a folder of runs).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for report.html, report.md and plots/ (default RUN_DIR/report)."),
    ] = None,
    reference: Annotated[str | None, typer.Option(help=REFERENCE_HELP)] = None,
    max_sample_chars: Annotated[
        int, typer.Option(help="Show at most this many characters of each completion (head + tail); 0 = all.")
    ] = 10000,
) -> None:
    """A self-contained HTML page + markdown: metrics, tables, plots and every sample's completion."""
    from evalkit.report import write_report

    target = out if out is not None else run_dirs[0] / "report"
    check_writable_folder(target, "--out")
    skipped: list[Path] = []
    files = write_report(
        run_dirs, target, _reference(reference), max_sample_chars=max_sample_chars, skipped=skipped
    )
    _note_skipped(skipped)
    typer.echo(
        f"wrote {files.html}, {files.markdown} and {len(files.plots)} plots (PNG + SVG) in {target / 'plots'}"
    )
