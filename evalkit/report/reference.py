"""Published reference numbers (results/reference/*.json) and the mapping from our models to them.

The file format is documented in results/reference/README.md. `--reference NAME` picks
results/reference/NAME.json; a path to a .json file works too; `none` turns references off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.core.errors import EvalkitError

DEFAULT_REFERENCE = "phi4_mini_flash_model_card"
REFERENCE_FORMAT = "evalkit-reference"


@dataclass(frozen=True)
class ReferenceModel:
    name: str
    pass_at_1: dict[str, float]  # task -> percent
    n: dict[str, int]  # task -> samples per problem behind the published number


@dataclass(frozen=True)
class Reference:
    name: str
    title: str
    source: str
    url: str | None
    models: tuple[ReferenceModel, ...]
    aliases: dict[str, str] = field(default_factory=dict)  # our config.model -> reference model name
    sampling: dict[str, Any] = field(default_factory=dict)

    def model_named(self, name: str) -> ReferenceModel | None:
        return next((m for m in self.models if m.name == name), None)

    def match(self, our_model: str) -> ReferenceModel | None:
        """The reference model for our `config.model`: an exact alias or name, else the same last path
        component (a local checkout `/models/Phi-4-mini-flash-reasoning` matches the Hub id)."""
        exact = self.aliases.get(our_model, our_model)
        if found := self.model_named(exact):
            return found
        tail = _last_component(our_model)
        for alias, target in self.aliases.items():
            if _last_component(alias) == tail:
                return self.model_named(target)
        return next((m for m in self.models if _last_component(m.name) == tail), None)


def _last_component(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1].lower()


def reference_dir() -> Path:
    """results/reference/ of this checkout (the package sits beside it)."""
    return Path(__file__).resolve().parents[2] / "results" / "reference"


def available_references() -> list[str]:
    folder = reference_dir()
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def load_reference(name_or_path: str | None, *, missing_ok: bool = False) -> Reference | None:
    """None / "none" -> no reference; NAME -> results/reference/NAME.json; else a path to a JSON file.

    `missing_ok` is for the default reference: an install without results/reference/ still gets a table.
    """
    if name_or_path is None or name_or_path.lower() == "none":
        return None
    candidate = Path(name_or_path)
    path = candidate if candidate.suffix == ".json" else reference_dir() / f"{name_or_path}.json"
    if not path.is_file() and missing_ok:
        return None
    if not path.is_file():
        names = ", ".join(available_references()) or "(none found)"
        raise EvalkitError(
            f"reference '{name_or_path}' not found (looked for {path}); known: {names}, or pass a .json path"
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EvalkitError(f"reference file {path} is not valid JSON: {exc}") from exc
    return parse_reference(doc, origin=str(path))


def parse_reference(doc: dict[str, Any], origin: str = "<reference>") -> Reference:
    """Validate a reference document (see results/reference/README.md)."""
    if doc.get("format") != REFERENCE_FORMAT or doc.get("schema_version") != 1:
        raise EvalkitError(
            f'{origin}: expected "format": "{REFERENCE_FORMAT}" and "schema_version": 1 '
            "(see results/reference/README.md)"
        )
    task_n = {task: int(spec.get("n", 0)) for task, spec in (doc.get("tasks") or {}).items()}
    models = []
    for entry in doc.get("models") or []:
        if "name" not in entry or not isinstance(entry.get("pass_at_1"), dict):
            raise EvalkitError(f'{origin}: every model needs "name" and a "pass_at_1" object')
        n = {**task_n, **{t: int(v) for t, v in (entry.get("n") or {}).items()}}
        scores = {task: float(value) for task, value in entry["pass_at_1"].items() if value is not None}
        models.append(ReferenceModel(name=entry["name"], pass_at_1=scores, n=n))
    if not models:
        raise EvalkitError(f'{origin}: "models" is empty')
    return Reference(
        name=str(doc.get("name") or Path(origin).stem),
        title=str(doc.get("title") or doc.get("name") or origin),
        source=str(doc.get("source") or ""),
        url=doc.get("url"),
        models=tuple(models),
        aliases=dict(doc.get("aliases") or {}),
        sampling=dict(doc.get("sampling") or {}),
    )
