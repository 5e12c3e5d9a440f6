"""`evalkit run` (generate, store, score), `evalkit score` (re-score without a model) and `evalkit merge`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from evalkit.cli import app
from evalkit.core.errors import EvalkitError
from evalkit.core.records import Results
from evalkit.core.types import SamplingParams

PROTOCOL = SamplingParams()  # the published protocol's sampling defaults (one place: the core)


def _not_finite(value: str) -> bool:
    """'nan', 'inf', 'Infinity', '-inf', ... (float() reads them all; JSON reads NaN and Infinity)."""
    try:
        return not math.isfinite(float(value))
    except ValueError:
        return False


def parse_backend_options(pairs: list[str]) -> dict[str, object]:
    """KEY=VALUE pairs -> dict; values are read as JSON when they parse (numbers, booleans), else text.
    NaN and infinity are refused for every key: no backend option means anything with them."""
    extra: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise EvalkitError(f"--backend-option {pair!r} is malformed; write KEY=VALUE, e.g. batch_size=8")
        if _not_finite(value):
            raise EvalkitError(f"--backend-option {pair}: {value} is not a finite number; give a number")
        try:
            extra[key] = json.loads(value)
        except json.JSONDecodeError:
            extra[key] = value
    return extra


def _stored_after_interrupt(plans: list) -> str:
    """What an interrupted run left, per task folder, and what re-running does."""
    kept = [
        f"{len(plan.folder.completions())} samples in {plan.folder.path}"
        for plan in plans
        if plan.folder.exists()
    ]
    if not kept:
        return "interrupted before any sample was stored; no run folder was written"
    return (
        f"interrupted; stored: {', '.join(kept)}; re-running the same command keeps them and generates "
        "only the missing samples"
    )


def _finish_hint(results: Results, folder: str, generating: bool) -> str:
    """What finishes an incomplete run, truly: another shard, the same `evalkit run`, or merging."""
    shard = results.provenance.shard
    if shard:  # this process generated its shard only; the others are missing by design
        return (
            f"shard {shard} is done; run the other shards into {folder} (or into their own folders and "
            "`evalkit merge` them)"
        )
    if generating:
        return f"re-running the same command generates only the missing samples into {folder}"
    return f"the `evalkit run` command that made {folder} generates only the missing samples"


def _report(outcomes: list[tuple[str, Results]], generating: bool = True) -> None:
    from evalkit.progress import print_summary

    print_summary([(folder, results.to_dict()) for folder, results in outcomes])
    for folder, results in outcomes:
        if not results.final:
            typer.secho(
                f"{results.metrics['task']} is INCOMPLETE ({results.metrics['missing_samples']} samples "
                f"missing): not a final result; {_finish_hint(results, folder, generating)}",
                fg="yellow",
                err=True,
            )


@app.command()
def run(
    task: list[str] = typer.Option(
        ..., "--task", help="task, suite or task file (.toml); repeat for several; see `evalkit tasks`"
    ),
    backend: str = typer.Option("sambay", "--backend", help="sambay, hf, vllm, openai or replay"),
    model: str | None = typer.Option(None, "--model", help="checkpoint folder, Hub id, or served model name"),
    revision: str | None = typer.Option(None, "--revision", help="Hub revision (pins the model)"),
    n: int | None = typer.Option(None, "--n", help="samples per problem (default: the task's)"),
    temperature: float = typer.Option(PROTOCOL.temperature, "--temperature"),
    top_p: float = typer.Option(PROTOCOL.top_p, "--top-p"),
    max_new_tokens: int = typer.Option(PROTOCOL.max_new_tokens, "--max-new-tokens"),
    seed: int = typer.Option(0, "--seed", help="run seed; per-sample seeds derive from it"),
    prompt: str | None = typer.Option(None, "--prompt", help="prompt template name (default: official)"),
    limit: int | None = typer.Option(None, "--limit", help="only the first K problems"),
    data_dir: str | None = typer.Option(
        None, "--data-dir", help="benchmark data (default: $EVALKIT_DATA_DIR)"
    ),
    out: str = typer.Option("results", "--out", help="results root; each task writes <out>/<run_id>/"),
    run_dir: str | None = typer.Option(None, "--run-dir", help="use exactly this folder (one task)"),
    shard: str | None = typer.Option(None, "--shard", help="I/N: only problems with index % N == I-1"),
    from_file: str | None = typer.Option(None, "--from", help="replay: completions JSONL"),
    base_url: str | None = typer.Option(None, "--base-url", help="openai: server URL"),
    max_slots: int | None = typer.Option(None, "--max-slots", help="sambay: concurrent sequences"),
    dtype: str = typer.Option("auto", "--dtype", help="auto, bfloat16, float16, float32"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N"),
    workers: int | None = typer.Option(None, "--workers", help="scoring processes (default: CPU count)"),
    backend_option: list[str] = typer.Option([], "--backend-option", help="KEY=VALUE for the backend"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="hf/vllm: allow model code"),
    data_parallel: int | None = typer.Option(
        None, "--data-parallel", help="N worker processes here, one shard and one GPU (or CPU share) each"
    ),
    ray: str | None = typer.Option(
        None, "--ray", help="run the shards as Ray tasks: local, auto or HOST:PORT (evalkit[ray])"
    ),
    ray_shards: int | None = typer.Option(
        None, "--ray-shards", help="with --ray: shards (default: one per GPU, or per node on CPU)"
    ),
    tasks_dir: str | None = typer.Option(
        None,
        "--tasks-dir",
        help="folder of task files whose names --task may use (default: $EVALKIT_TASKS_DIR)",
    ),
) -> None:
    """Generate n samples per problem, store them (resumable), score them and write results.json."""
    from evalkit.cli.wiring import (
        check_backend_name,
        make_run_backend,
        preflight_run,
        resolve_tasks,
        task_specs,
    )
    from evalkit.core.run_config import parse_shard
    from evalkit.parallel.split import Split, check_split
    from evalkit.planning import RunOptions, plan_tasks
    from evalkit.progress import RunProgress
    from evalkit.runner import run as run_tasks

    split = Split(data_parallel, ray, ray_shards)
    options = RunOptions(
        backend=backend,
        model=model,
        revision=revision,
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        seed=seed,
        prompt=prompt,
        limit=limit,
        data_dir=data_dir,
        out=out,
        run_dir=run_dir,
        shard=parse_shard(shard),
        from_file=from_file,
        workers=workers,
    )
    extra = parse_backend_options(backend_option)
    check_backend_name(backend)
    check_split(split, options.shard, backend)
    if split.ray is not None:
        from evalkit.parallel.ray_tasks import require_ray

        require_ray()  # a missing extra is one line before any data loads
    tasks = resolve_tasks(task, tasks_dir)  # suites expanded, task files parsed
    plans = plan_tasks(options, tasks)  # validates and loads everything; nothing written yet
    backend_flags = {
        "base_url": base_url,
        "max_slots": max_slots,
        "dtype": dtype,
        "device": device,
        "trust_remote_code": trust_remote_code,
        "extra": extra,
    }
    preflight_run(options, **backend_flags)  # slots, device, context: before the model loads
    progress = RunProgress()
    try:
        if split.active:  # --data-parallel / --ray: workers build the backend, the parent scores once
            from evalkit.cli.split_cmd import run_split

            outcomes = run_split(split, options, plans, task_specs(tasks), backend_flags)
        else:
            engine = make_run_backend(options, **backend_flags)
            if hasattr(engine, "on_retry"):  # the openai backend: retries show in the progress line
                engine.on_retry = progress.retry
            outcomes = run_tasks(plans, engine, workers=workers, progress=progress)
    except KeyboardInterrupt:
        raise EvalkitError(_stored_after_interrupt(plans)) from None
    _report([(str(plan.folder.path), results) for plan, results in outcomes])


@app.command()
def score(
    path: Path = typer.Argument(..., help="a run folder, or a completions JSONL together with --task"),
    workers: int | None = typer.Option(None, "--workers", help="scoring processes (default: CPU count)"),
    mode: str = typer.Option("evalkit", "--mode", help="evalkit, or lighteval (the official judgement)"),
    task: str | None = typer.Option(
        None, "--task", help="for a bare JSONL: the task (name or task file) it answers"
    ),
    n: int | None = typer.Option(None, "--n", help="for a bare JSONL: samples per problem (default: file's)"),
    seed: int = typer.Option(0, "--seed", help="for a bare JSONL: the run seed (GPQA option order)"),
    prompt: str | None = typer.Option(None, "--prompt", help="for a bare JSONL: prompt template name"),
    limit: int | None = typer.Option(None, "--limit", help="for a bare JSONL: only the first K problems"),
    data_dir: str | None = typer.Option(None, "--data-dir", help="for a bare JSONL: benchmark data"),
    out: str = typer.Option("results", "--out", help="for a bare JSONL: results root"),
) -> None:
    """Re-score stored completions without a model; rewrites scores.jsonl and results.json."""
    from evalkit.cli.wiring import checker_of
    from evalkit.core.run_folder import RunFolder
    from evalkit.runner import rescore

    if mode not in ("evalkit", "lighteval"):
        raise EvalkitError(f"--mode {mode!r} is unknown; choose evalkit or lighteval")
    if workers is not None and workers < 1:
        raise EvalkitError(f"--workers must be at least 1, got {workers}")
    if path.is_dir():
        folder = RunFolder(path)
        if not folder.exists():
            raise EvalkitError(f"{path} has no config.json; pass an evalkit run folder (results/<run_id>)")
        results = rescore(folder, checker_of(folder), workers=workers, mode=mode)
        _report([(str(path), results)], generating=False)
        return
    if not path.is_file():
        raise EvalkitError(f"{path} not found; pass a run folder or a completions JSONL")
    if task is None:
        raise EvalkitError(f"{path} is a file; say which task it answers with --task NAME")
    _score_bare_file(path, task, n, seed, prompt, limit, data_dir, out, workers, mode)


def _score_bare_file(path, task, n, seed, prompt, limit, data_dir, out, workers, mode) -> None:
    """A bare completions JSONL becomes a replay run: its own folder, scored like any run."""
    from evalkit.cli.wiring import make_run_backend, resolve_tasks
    from evalkit.planning import RunOptions, plan_tasks
    from evalkit.progress import RunProgress
    from evalkit.runner import rescore
    from evalkit.runner import run as run_tasks
    from model_backends.replay import read_replay_file

    if n is None:
        n = 1 + max((index for _, index in read_replay_file(path)), default=0)
    options = RunOptions(
        backend="replay",
        n=n,
        seed=seed,
        prompt=prompt,
        limit=limit,
        data_dir=data_dir,
        out=out,
        from_file=str(path),
        workers=workers,
    )
    plans = plan_tasks(options, resolve_tasks([task]))
    outcomes = run_tasks(plans, make_run_backend(options), workers=workers, progress=RunProgress())
    if mode != "evalkit":
        outcomes = [
            (plan, rescore(plan.folder, plan.checker, workers=workers, mode=mode)) for plan, _ in outcomes
        ]
    _report([(str(plan.folder.path), results) for plan, results in outcomes])


@app.command()
def merge(
    folders: list[Path] = typer.Argument(..., help="run folders of the same run (shards)"),
    out: Path | None = typer.Option(
        None, "--out", help="results root for the merged <run_id>/ (default: the first folder)"
    ),
    workers: int | None = typer.Option(None, "--workers", help="scoring processes (default: CPU count)"),
    final: bool = typer.Option(
        False, "--final", help="refuse (exit 2, nothing written) unless every shard is complete"
    ),
) -> None:
    """Combine shards of one run into one folder, re-score and write results.json; names the shards
    that are missing or incomplete."""
    from evalkit.cli.wiring import checker_of
    from evalkit.core.run_folder import RunFolder
    from evalkit.merge import merge_runs
    from evalkit.shard_status import incomplete, shard_statuses

    if workers is not None and workers < 1:
        raise EvalkitError(f"--workers must be at least 1, got {workers}")
    source = RunFolder(folders[0])  # merge_runs itself refuses folders that are not runs
    checker = checker_of(source) if source.exists() else None
    target, results, added = merge_runs(
        list(folders), out=out, workers=workers, checker=checker, require_complete=final
    )
    typer.echo(f"merged into {target.path}: {added} samples added")
    _report([(str(target.path), results)], generating=False)
    for status in incomplete(shard_statuses([target, *(RunFolder(f) for f in folders)])):
        typer.secho(status.describe(), fg="yellow", err=True)
