"""`evalkit pool`: several seeds of one run pooled into one run folder with n = the sum of their n.

Runs that differ in nothing but `--seed` draw independent samples of the same model on the same
problems, so their union is one bigger sample: seed s's sample j becomes sample offset(s) + j, seeds in
ascending order (pooling the same runs in another order gives the same folder). The pooled config is the
common config with `n` = the total and `seed` = the ascending tuple of seeds (RunConfig's pooled form),
so its run_id differs from every real run's and `evalkit run` refuses to resume into it. Each completion
keeps its own per-sample seed and records where it came from (`extra["pooled_from"]`). The folder is
scored like any run (`evalkit compare`, `leaderboard` and `report` read it as they read a run). Anything
else that differs is refused.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.core.records import CheckerSpec, Results, RunHeader
from evalkit.core.run_config import RunConfig, Shard, config_differences
from evalkit.core.run_folder import RunFolder
from evalkit.results import Session
from evalkit.runner import rescore
from evalkit.scoring import CheckerOptions


def _without_seed(config: RunConfig) -> dict:
    """What runs of different seeds share (a folder written before the checker left the run_id pools
    with new ones: the pooled folder is a new one, without the old checker version)."""
    return {k: v for k, v in config.to_dict().items() if k not in ("seed", "checker_version")}


def _check_complete(folder: RunFolder, config: RunConfig, problem_ids: list[str]) -> None:
    stored = {r.key for r in folder.completions()}
    missing = sum((pid, i) not in stored for pid in problem_ids for i in range(config.n))
    if missing:
        raise EvalkitError(
            f"{folder.path} is incomplete ({missing} of {config.n * len(problem_ids)} samples missing); "
            "finish it first (re-run its command), then pool"
        )


def check_poolable(folders: list[RunFolder]) -> list[RunHeader]:
    """The config.json headers, in input order; refuses runs that differ in more than the seed."""
    if len(folders) < 2:
        raise EvalkitError("evalkit pool needs at least two run folders (runs that differ only in --seed)")
    for folder in folders:
        if not folder.exists():
            raise EvalkitError(f"{folder.path} is not a run folder (no config.json); pass results/<run_id>")
    headers = [folder.header() for folder in folders]
    first, first_ids = headers[0].config, [p["id"] for p in headers[0].problems]
    if not first_ids:
        raise EvalkitError(
            f"{folders[0].config_path} lists no problems; pool needs run folders written by evalkit run"
        )
    seen: dict[int, Path] = {}
    for folder, header in zip(folders, headers, strict=True):
        diffs = config_differences(_without_seed(first), _without_seed(header.config))
        if diffs:
            raise EvalkitError(
                f"{folder.path} differs from {folders[0].path} in more than the seed ({'; '.join(diffs)}); "
                "pool only runs that differ in --seed"
            )
        if [p["id"] for p in header.problems] != first_ids:
            raise EvalkitError(
                f"{folder.path} lists other problems than {folders[0].path}; not seeds of one run"
            )
        for seed in header.config.seeds:
            if seed in seen:
                raise EvalkitError(
                    f"seed {seed} is in both {seen[seed]} and {folder.path}: the same seed draws the same "
                    "samples; pool runs of different seeds"
                )
            seen[seed] = folder.path
        _check_complete(folder, header.config, first_ids)
    return headers


def pool_runs(
    paths: list[Path],
    out: Path | None = None,
    workers: int | None = None,
    checker: CheckerSpec | None = None,
    options: CheckerOptions | None = None,
) -> tuple[RunFolder, Results, int]:
    """Pool run folders into `out/<run_id>` (default: beside the first); returns (target, results, added).
    Scored with `options`, else the options the first folder recorded (as `checker`).

    `checker` (what scoring needs) defaults to the one the first folder stored; folders written before
    config.json stored it need it passed (the CLI looks it up).
    """
    folders = [RunFolder(Path(p)) for p in paths]
    headers = check_poolable(folders)
    checker = checker or folders[0].checker()
    if checker is None:
        raise EvalkitError(f"{folders[0].config_path} does not say how to score its run; pass its checker")
    from evalkit.run_scoring import checker_options
    from evalkit.scoring import CHECKER_VERSION

    options = checker_options(checker, options)
    checker = CheckerSpec(checker.answer_type, CHECKER_VERSION, options.as_dict())  # the pooled folder's
    order = sorted(range(len(folders)), key=lambda i: min(headers[i].config.seeds))
    n = headers[0].config.n
    seeds = tuple(sorted(s for h in headers for s in h.config.seeds))
    pooled = replace(headers[0].config, seed=seeds, n=n * len(folders), legacy_checker_version=None)
    root = Path(out) if out is not None else folders[0].path.parent
    target = RunFolder(root / pooled.run_id)
    target.initialise(pooled, headers[0].problems, checker=checker)  # refuses a folder of another config
    have = {r.key for r in target.completions()}
    added = 0
    with target.appender(Shard()) as writer:
        for offset, i in enumerate(order):
            config = headers[i].config
            for record in folders[i].completions():
                index = record.sample_index
                if index >= n or (record.problem_id, offset * n + index) in have:
                    continue
                origin = record.extra.get("pooled_from") or {
                    "run_id": headers[i].run_id,
                    "seed": config.seeds[0],
                    "sample_index": index,
                }
                extra = {**record.extra, "pooled_from": origin}
                writer.append(replace(record, sample_index=offset * n + index, extra=extra))
                have.add((record.problem_id, offset * n + index))
                added += 1
    first = folders[order[0]]
    previous = first.results().provenance if first.has_results() else None
    sources = [
        {
            "path": str(folders[i].path.resolve()),
            "run_id": headers[i].run_id,
            "seeds": list(headers[i].config.seeds),
        }
        for i in order
    ]
    session = Session(
        model_info=previous.model_info if previous is not None else None, notes={"pooled_from": sources}
    )
    results = rescore(target, checker, workers=workers, options=options, session=session)
    return target, results, added
