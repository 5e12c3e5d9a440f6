"""RunConfig: everything that changes a number, and the run_id that names its results folder.

Two runs with equal RunConfigs draw the same samples (per-sample seeds come from the run seed), so a
results folder is identified by `run_id = stable_hash(config.to_dict())` and a re-run of the same command
resumes it. Things that do not change a number (shard, workers, max slots, output folder) stay out, and
so does the checker: scoring is re-done from the stored completions without the model, so a new checker
version or checker option must not orphan a folder of completions (its version and options are in
config.json's "checker" section and in results.json's provenance instead).

Folders written before that change hashed `checker_version` ("1" or "2") into their run_id. Their config keeps
it as `legacy_checker_version` (config.json's `checker_version`), so their run_id and config.json stay
what they were; planning finds such a folder under its old run_id and resumes it (`legacy`).

A pooled run (`evalkit pool`: several seeds of one run as one folder) has `seed` = the ascending tuple of
its seeds, stored in config.json as a JSON list. An ordinary run's `seed` stays an int, so its config.json
and run_id are what they always were, and a pooled run's run_id differs from every ordinary run's: no
`evalkit run` resumes into it (and `generation_seed` refuses to draw samples for it).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from evalkit.core.errors import EvalkitError
from evalkit.core.types import stable_hash

# The checker versions run_ids were hashed with before the checker left the run_id, newest first.
LEGACY_CHECKER_VERSIONS = ("2", "1")


@dataclass(frozen=True)
class RunConfig:
    model: str  # Hub id, served model name, or a local folder's name (its content is in model_revision)
    model_revision: str  # --revision, or a content hash of a local folder / replay file, or "none"
    backend: str
    task: str
    data_fingerprint: str
    prompt_name: str
    prompt_hash: str
    n: int
    temperature: float
    top_p: float
    max_new_tokens: int
    seed: int | tuple[int, ...]  # a tuple only for a pooled run (see the module)
    # Only in configs of folders written before the checker left the run_id (stored as "checker_version").
    legacy_checker_version: str | None = None
    limit: int | None = None
    # A task file's hash (its TOML + its data file): editing either is another run. None for the built-in
    # tasks, and then left out of config.json and the run_id, so their run_ids are what they always were.
    task_definition: str | None = None

    def __post_init__(self) -> None:
        _check_seed(self.seed)

    @property
    def run_id(self) -> str:
        return stable_hash(self.to_dict())  # a tuple hashes as the JSON list config.json stores

    def legacy(self, checker_version: str) -> RunConfig:
        """This config as a folder written before the checker left the run_id stored it."""
        return replace(self, legacy_checker_version=checker_version)

    @property
    def is_pooled(self) -> bool:
        return isinstance(self.seed, tuple)

    @property
    def seeds(self) -> tuple[int, ...]:
        """Every seed whose samples this run holds: (seed,) for a run, the pooled seeds for a pooled one."""
        return self.seed if isinstance(self.seed, tuple) else (self.seed,)

    @property
    def generation_seed(self) -> int:
        """The run seed that per-sample seeds derive from; a pooled run has none, so nothing generates
        into it (its samples come from the runs it pools)."""
        if isinstance(self.seed, tuple):
            raise EvalkitError(
                f"run {self.run_id} pools seeds {', '.join(map(str, self.seed))}: it holds samples of "
                "other runs and cannot generate more; run each seed on its own, then evalkit pool them"
            )
        return self.seed

    def to_dict(self) -> dict[str, Any]:
        """config.json's "config" (key order as stored); a legacy config's checker version is stored
        under its old name and place."""
        data = {}
        for key, value in asdict(self).items():
            if key == "legacy_checker_version":
                if value is not None:
                    data["checker_version"] = value
                continue
            data[key] = value
        if isinstance(self.seed, tuple):
            data["seed"] = list(
                self.seed
            )  # the file's shape, so dicts read back from config.json compare equal
        if data["task_definition"] is None:
            del data["task_definition"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        names = {f.name for f in fields(cls)} - {"legacy_checker_version"}
        missing = names - set(data) - {"task_definition"}
        if missing:
            raise EvalkitError(
                f"config is missing field(s) {sorted(missing)}; is this an evalkit run folder?"
            )
        values = {k: data[k] for k in names if k in data}
        values["legacy_checker_version"] = data.get("checker_version")
        if isinstance(values["seed"], list):
            values["seed"] = tuple(values["seed"])
        return cls(**values)


def _check_seed(seed: Any) -> None:
    """An int, or (pooled) an ascending tuple of at least two distinct ints: one spelling per seed set,
    so one set of pooled runs has one run_id."""
    if isinstance(seed, int) and not isinstance(seed, bool):
        return
    ints = isinstance(seed, tuple) and all(isinstance(s, int) and not isinstance(s, bool) for s in seed)
    if not ints or len(seed) < 2 or list(seed) != sorted(set(seed)):
        raise EvalkitError(
            f"config seed {seed!r} is neither an integer nor a pooled run's ascending list of two or more "
            "distinct integers; is config.json damaged?"
        )


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable 'field: old -> new' lines for every field that differs."""
    keys = sorted(set(old) | set(new))
    return [f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in keys if old.get(key) != new.get(key)]


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (1-based): the problems whose position p satisfies p % count == index - 1."""

    index: int = 1
    count: int = 1

    @property
    def is_whole(self) -> bool:
        return self.count == 1

    def keeps(self, position: int) -> bool:
        return position % self.count == self.index - 1

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str | None) -> Shard:
    """'I/N' with 1 <= I <= N -> Shard; None -> the whole task."""
    if text is None or text == "":
        return Shard()
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise EvalkitError(f"--shard {text!r} is malformed; write I/N with 1 <= I <= N, e.g. --shard 1/4")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise EvalkitError(f"--shard {text!r} is out of range; write I/N with 1 <= I <= N, e.g. --shard 1/4")
    return Shard(index, count)
