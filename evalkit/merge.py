"""`evalkit merge`: combine the shards of one run (folders from several machines, or shard files in one
folder) into one folder, then score it.

All folders must hold the same RunConfig (same run_id); a mismatch is refused naming the fields. Samples
missing from the target are appended to its completions.jsonl (append-only, fsync'd, never rewritten), so
merging twice, or merging a folder into itself, adds nothing. Run it after the shards have finished;
`require_complete` refuses (before writing anything) when a shard is missing or incomplete, naming it.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.core.files import check_writable_folder
from evalkit.core.records import CheckerSpec, Results
from evalkit.core.run_config import Shard, config_differences
from evalkit.core.run_folder import RunFolder
from evalkit.results import Session
from evalkit.runner import rescore
from evalkit.scoring import CheckerOptions
from evalkit.shard_status import incomplete, shard_statuses


def check_same_run(folders: list[RunFolder]) -> None:
    for folder in folders:
        if not folder.exists():
            raise EvalkitError(f"{folder.path} has no config.json; pass evalkit run folders")
    first = folders[0].header()
    for folder in folders[1:]:
        other = folder.header()
        diffs = config_differences(first.config.to_dict(), other.config.to_dict())
        if diffs:
            raise EvalkitError(
                f"{folder.path} is a different run than {folders[0].path} ({'; '.join(diffs)}); "
                "only shards of one run can be merged"
            )
        if [p["id"] for p in first.problems] != [p["id"] for p in other.problems]:
            raise EvalkitError(
                f"{folder.path} lists other problems than {folders[0].path}; not shards of one run"
            )


def merge_runs(
    paths: list[Path],
    out: Path | None = None,
    workers: int | None = None,
    checker: CheckerSpec | None = None,
    require_complete: bool = False,
    options: CheckerOptions | None = None,
) -> tuple[RunFolder, Results, int]:
    """Merge run folders into `out/<run_id>` (or the first folder); returns (target, results, added).

    `checker` (what scoring needs) defaults to the one the first folder stored; folders written before
    config.json stored it need it passed (the CLI looks it up). Scored with `options`, else those the
    first folder recorded.
    """
    if not paths:
        raise EvalkitError("evalkit merge needs at least one run folder")
    folders = [RunFolder(Path(p)) for p in paths]
    check_same_run(folders)
    if require_complete:
        missing = incomplete(shard_statuses(folders))
        if missing:
            raise EvalkitError(
                f"not a final result: {'; '.join(s.describe() for s in missing)}; run the missing shards "
                "(evalkit run ... --shard I/N into the same folder) and merge again, or merge without --final"
            )
    if out is not None:
        check_writable_folder(Path(out), "--out")
    source = folders[0]
    config = source.config()
    checker = checker or source.checker()
    if checker is None:
        raise EvalkitError(f"{source.path}/config.json does not say how to score its run; pass its checker")
    target = RunFolder(Path(out) / config.run_id) if out is not None else source
    if target.exists():
        check_same_run([source, target])
    else:
        target.initialise(config, source.problems(), checker=checker)
    have = {r.key for r in target.completions()}
    added = 0
    with target.appender(Shard()) as writer:
        for folder in folders:
            for record in folder.completions():
                if record.key not in have:
                    writer.append(record)
                    have.add(record.key)
                    added += 1
    previous = source.results().provenance if source.has_results() else None
    session = Session(
        model_info=previous.model_info if previous is not None else None,
        notes={"merged_from": [str(f.path.resolve()) for f in folders]},
    )
    return target, rescore(target, checker, workers=workers, options=options, session=session), added
