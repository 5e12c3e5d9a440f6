"""`evalkit pool`: several seeds of one run pooled into one run folder with n = the sum of their n.

Runs that differ in nothing but `--seed` draw independent samples of the same model on the same
problems, so their union is one bigger sample: seed s's sample j becomes sample offset(s) + j, seeds in
ascending order (pooling the same runs in another order gives the same folder). The pooled config is the
common config with `n` = the total and `seed` = the sorted list of seeds, so its run_id differs from every
real run's and `evalkit run` refuses to resume into it. Each completion keeps its own per-sample seed and
records where it came from ("pooled_from"). The folder is scored like any run (`evalkit compare`,
`leaderboard` and `report` read it as they read a run). Anything else that differs is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.run_config import RunConfig, Shard, config_differences
from evalkit.storage import JsonlAppender, RunFolder, completions_file_name
from evalkit.types import EvalkitError


def seeds_of(config: dict[str, Any]) -> list[int]:
    """A run's seeds: [seed] for a run, the list for a pooled run."""
    seed = config.get("seed")
    return [int(s) for s in seed] if isinstance(seed, list) else [int(seed)]


def _without_seed(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "seed"}


def _check_complete(folder: RunFolder, config: dict[str, Any], problem_ids: list[str]) -> None:
    n = int(config["n"])
    stored = {(str(r["problem_id"]), int(r["sample_index"])) for r in folder.completions()}
    missing = sum((pid, i) not in stored for pid in problem_ids for i in range(n))
    if missing:
        raise EvalkitError(
            f"{folder.path} is incomplete ({missing} of {n * len(problem_ids)} samples missing); "
            "finish it first (re-run its command), then pool"
        )


def check_poolable(folders: list[RunFolder]) -> list[dict[str, Any]]:
    """The config.json headers, in input order; refuses runs that differ in more than the seed."""
    if len(folders) < 2:
        raise EvalkitError("evalkit pool needs at least two run folders (runs that differ only in --seed)")
    for folder in folders:
        if not folder.exists():
            raise EvalkitError(f"{folder.path} is not a run folder (no config.json); pass results/<run_id>")
    headers = [folder.read_config_file() for folder in folders]
    first, first_ids = headers[0]["config"], [p["id"] for p in headers[0].get("problems", [])]
    if not first_ids:
        raise EvalkitError(
            f"{folders[0].path}/config.json lists no problems; pool needs run folders written by evalkit run"
        )
    seen: dict[int, Path] = {}
    for folder, header in zip(folders, headers, strict=True):
        diffs = config_differences(_without_seed(first), _without_seed(header["config"]))
        if diffs:
            raise EvalkitError(
                f"{folder.path} differs from {folders[0].path} in more than the seed ({'; '.join(diffs)}); "
                "pool only runs that differ in --seed"
            )
        if [p["id"] for p in header.get("problems", [])] != first_ids:
            raise EvalkitError(
                f"{folder.path} lists other problems than {folders[0].path}; not seeds of one run"
            )
        for seed in seeds_of(header["config"]):
            if seed in seen:
                raise EvalkitError(
                    f"seed {seed} is in both {seen[seed]} and {folder.path}: the same seed draws the same "
                    "samples; pool runs of different seeds"
                )
            seen[seed] = folder.path
        _check_complete(folder, header["config"], first_ids)
    return headers


def _scoring_mode(folders: list[RunFolder]) -> str:
    """Re-score as the inputs were scored when they all agree (e.g. all --mode lighteval), else evalkit."""
    modes = set()
    for folder in folders:
        results = folder.results() if folder.results_path.exists() else {}
        modes.add(((results.get("provenance") or {}).get("scoring") or {}).get("mode", "evalkit"))
    return modes.pop() if len(modes) == 1 else "evalkit"


def pool_runs(
    paths: list[Path], out: Path | None = None, workers: int | None = None
) -> tuple[RunFolder, dict[str, Any], int]:
    """Pool run folders into `out/<run_id>` (default: beside the first); returns (target, results, added)."""
    from evalkit.runner import score_folder

    folders = [RunFolder(Path(p)) for p in paths]
    headers = check_poolable(folders)
    order = sorted(range(len(folders)), key=lambda i: min(seeds_of(headers[i]["config"])))
    n = int(headers[0]["config"]["n"])
    seeds = sorted(s for h in headers for s in seeds_of(h["config"]))
    pooled = RunConfig.from_dict({**headers[0]["config"], "seed": seeds, "n": n * len(folders)})
    root = Path(out) if out is not None else folders[0].path.parent
    target = RunFolder(root / pooled.run_id)
    target.initialise(pooled, folders[0].problems())  # refuses a folder holding another config
    have = {(str(r["problem_id"]), int(r["sample_index"])) for r in target.completions()}
    added = 0
    with JsonlAppender(target.path / completions_file_name(Shard())) as writer:
        for offset, i in enumerate(order):
            source, config = folders[i], headers[i]["config"]
            for record in source.completions():
                index = int(record["sample_index"])
                key = (str(record["problem_id"]), offset * n + index)
                if index >= n or key in have:
                    continue
                origin = record.get("pooled_from") or {
                    "run_id": headers[i].get("run_id"),
                    "seed": seeds_of(config)[0],
                    "sample_index": index,
                }
                writer.append({**record, "sample_index": key[1], "pooled_from": origin})
                have.add(key)
                added += 1
    first = folders[order[0]]
    previous = first.results().get("provenance", {}) if first.results_path.exists() else {}
    generation = {
        "model_info": previous.get("model_info"),
        "pooled_from": [
            {
                "path": str(folders[i].path.resolve()),
                "run_id": headers[i].get("run_id"),
                "seeds": seeds_of(headers[i]["config"]),
            }
            for i in order
        ],
    }
    results = score_folder(target, workers=workers, mode=_scoring_mode(folders), generation=generation)
    return target, results, added
