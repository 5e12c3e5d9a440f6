"""`evalkit pool` (several seeds as one run) and `evalkit compare` (is run A really better than run B?)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evalkit.cli import app
from evalkit.cli.run_cmd import STRICT_THINKING, STRICT_THINKING_HELP, strict_options


@app.command()
def pool(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders that differ only in --seed.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Results root for the pooled <run_id>/ (default: beside the first run)."),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Scoring processes (default: CPU count).")] = None,
    strict_thinking: Annotated[bool | None, typer.Option(*STRICT_THINKING, help=STRICT_THINKING_HELP)] = None,
) -> None:
    """Pool several seeds of one run into one run folder (n = the sum; sample indices renumbered)."""
    from evalkit.cli.wiring import checker_of
    from evalkit.compare.pool import pool_runs
    from evalkit.core.errors import EvalkitError
    from evalkit.core.run_folder import RunFolder

    if workers is not None and workers < 1:
        raise EvalkitError(f"--workers must be at least 1, got {workers}")
    first = RunFolder(run_dirs[0]) if run_dirs else None  # pool_runs itself refuses folders that are not runs
    checker = checker_of(first) if first is not None and first.exists() else None
    options = strict_options(strict_thinking)
    target, results, added = pool_runs(
        list(run_dirs), out=out, workers=workers, checker=checker, options=options
    )
    config, metrics = results.config, results.metrics
    seeds = ", ".join(map(str, config.seeds))
    low, high = metrics["ci95"]
    typer.echo(
        f"pooled {len(run_dirs)} runs (seeds {seeds}) into {target.path}: n = {config.n} per problem, "
        f"{added} samples added; Pass@1 {metrics['pass_at_1']:.2f} [{low:.1f}, {high:.1f}]"
    )


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="Run folder A (results/<run_id>).")],
    run_b: Annotated[Path, typer.Argument(help="Run folder B, same task and problems.")],
    format: Annotated[str, typer.Option("--format", help="table, md, json or html.")] = "table",
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and of Monte Carlo permutations.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Write to this file (html/md: plots go to plots/ beside it).")
    ] = None,
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap replicates for the 95% CI.")] = 10_000,
    n_permutations: Annotated[
        int, typer.Option(help="Monte Carlo permutations when more than 20 problems differ.")
    ] = 10_000,
    top: Annotated[int, typer.Option(help="How many deciding problems to list each way.")] = 5,
    allow_incomplete: Annotated[
        bool, typer.Option(help="Compare runs with missing samples (warned; never a final comparison).")
    ] = False,
) -> None:
    """Is run A better than run B? Paired A - B (Pass@1, pass@k) with stderr, 95% CI, p and deciding problems.

    Over the same problems: a paired two-level bootstrap CI and a paired permutation test over problems."""
    from evalkit.compare.comparison import compare_runs
    from evalkit.compare.render import FORMATS, render
    from evalkit.core.errors import EvalkitError
    from evalkit.core.files import write_text_atomic

    if format not in FORMATS:
        raise EvalkitError(f"unknown --format '{format}'; choose one of {', '.join(FORMATS)}")
    comparison = compare_runs(
        run_a,
        run_b,
        seed=seed,
        n_bootstrap=n_bootstrap,
        n_permutations=n_permutations,
        allow_incomplete=allow_incomplete,
        top=top,
    )
    if out is not None or format != "table":  # the terminal table prints them itself
        for warning in comparison.warnings:
            typer.secho(f"warning: {warning}", fg="yellow", err=True)
    text, plots = render(comparison, format, out)
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    write_text_atomic(out, text)
    extra = f" and {len(plots)} plots (PNG + SVG) in {out.parent / 'plots'}" if plots else ""
    typer.echo(f"wrote {out}{extra}")
