"""GPQA (a private task) through every backend that runs here, then every file under each run folder is
scanned for any question or option text. The texts come from the problems loaded in memory; the fake
OpenAI server keeps the request bodies it got (in memory: not a file of the run).

The real data is used when EVALKIT_DATA_DIR holds gpqa/dataset.zip; otherwise a synthetic, password-less
stand-in zip of the same layout (the reader's password is ignored for members that are not encrypted).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from evalkit.core.privacy import MARKER
from tasks import get_task
from tasks.gpqa_diamond import OPTION_FIELDS, SPEC, ZIP_MEMBER
from tests.evalkit.test_cli_bad_input import invoke
from tests.model_backends.fault_server import FaultServer

N, LIMIT = 2, 2
TASK = ["--task", "gpqa_diamond", "--n", str(N), "--limit", str(LIMIT), "--workers", "1"]


def stand_in_zip(folder: Path) -> Path:
    """198 synthetic questions in the layout of the authors' zip (used only when the real one is absent)."""
    rows = []
    for i in range(SPEC.expected_count):
        row = {"Record ID": f"rec{i:03d}", "Question": f"Synthetic question {i} about the orbital of a "
               f"hypothetical molecule number {i}; which statement holds?", "High-level domain": "Chemistry",
               "Subdomain": "Organic Chemistry"}  # fmt: skip
        row.update({name: f"Synthetic option {name.lower()} of question {i}" for name in OPTION_FIELDS})
        rows.append(row)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    (folder / "gpqa").mkdir(parents=True)
    with zipfile.ZipFile(folder / "gpqa" / "dataset.zip", "w") as archive:
        archive.writestr(ZIP_MEMBER, text.getvalue())
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    real = os.environ.get("EVALKIT_DATA_DIR")
    if real and (Path(real) / "gpqa" / "dataset.zip").is_file():
        return Path(real)
    return stand_in_zip(tmp_path_factory.mktemp("gpqa-stand-in"))


@pytest.fixture(scope="module")
def secrets(data_dir) -> list[str]:
    """Pieces of every question and option of the evaluated problems: 32-character windows (every 8
    characters) of long texts, whole texts of 12 to 32 characters (shorter ones, "4" or "NaCl", could
    occur anywhere)."""
    pieces: list[str] = []
    for problem in get_task("gpqa_diamond").load(data_dir)[:LIMIT]:
        for text in [problem.metadata["question"], *problem.metadata["options"]]:
            text = text.strip()
            if 12 <= len(text) <= 32:
                pieces.append(text)
            pieces += [text[i : i + 32] for i in range(0, max(len(text) - 31, 0), 8)]
    assert len(pieces) >= 20  # the scan has something to find
    return pieces


def texts_of(path: Path) -> list[str]:
    """A file's text, plus every string inside it when it is JSON / JSONL (JSON escapes quotes and
    newlines, so a raw search alone could miss a quoted question)."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    found = [raw]

    def walk(value):
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for line in raw.splitlines() if path.suffix == ".jsonl" else [raw] if path.suffix == ".json" else []:
        with contextlib.suppress(ValueError):  # a torn line, or not JSON after all
            walk(json.loads(line))
    return found


def assert_no_private_text(folder: Path, secrets: list[str], output: str) -> int:
    files = [p for p in folder.rglob("*") if p.is_file()]
    for path in files:
        for text in texts_of(path):
            leaked = [s for s in secrets if s in text]
            assert not leaked, f"{path} holds GPQA text: {leaked[0]!r}"
    assert not [s for s in secrets if s in output], "GPQA text printed"
    return len(files)


def run_folder(out: Path) -> Path:
    [folder] = list(out.iterdir())
    return folder


def old_openai_file(path: Path, data_dir: Path) -> Path:
    """A completions file as evalkit wrote it before issue 15: the openai backend stored the whole
    request body, with the prompt, in `extra`. Replaying it must not copy the question."""
    task = get_task("gpqa_diamond")
    with path.open("w") as out:
        for problem in task.load(data_dir)[:LIMIT]:
            for index in range(N):
                view = task.sample_view(problem, index, 0)
                extra = {"request": {"model": "m", "messages": list(view.messages)}, "id": "cmpl-1"}
                record = {
                    "problem_id": problem.id,
                    "sample_index": index,
                    "text": "\\boxed{A}",
                    "extra": extra,
                }
                out.write(json.dumps(record) + "\n")
    return path


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    from tests.model_backends.test_hf_backend import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("llama"), max_position_embeddings=8192)


def test_no_backend_writes_gpqa_text_to_the_run_folder(
    data_dir, secrets, tiny_checkpoint_dir, tiny_llama, tmp_path, monkeypatch, capsys
):
    common = [*TASK, "--data-dir", str(data_dir), "--max-new-tokens", "4"]
    with FaultServer(mix={"500": 0.2, "truncated": 0.1}) as server:
        runs = {
            "replay": ["--backend", "replay", "--from", str(old_openai_file(tmp_path / "old.jsonl", data_dir))],
            "sambay": ["--backend", "sambay", "--model", str(tiny_checkpoint_dir)],
            "hf": ["--backend", "hf", "--model", str(tiny_llama)],
            "openai": ["--backend", "openai", "--base-url", server.url, "--model", "faulty",
                       "--backend-option", "backoff=0.005", "--backend-option", "timeout=5"],
        }  # fmt: skip
        for name, backend in runs.items():
            out = tmp_path / name
            code, err = invoke(monkeypatch, capsys, ["run", *common, *backend, "--out", str(out)])
            assert code == 0, f"{name}: {err}"
            folder = run_folder(out)
            for command in (
                ["score", str(folder), "--workers", "1"],
                ["report", str(folder), "--max-sample-chars", "0"],  # writes <folder>/report/
            ):
                code, more = invoke(monkeypatch, capsys, command)
                assert code == 0, more
                err += more
            assert (
                assert_no_private_text(folder, secrets, err) >= 5
            )  # config, completions, scores, results, report
            records = [json.loads(x) for x in (folder / "completions.jsonl").read_text().splitlines()]
            assert len(records) == N * LIMIT
            extras = [r["extra"] for r in records]
            if name == "replay":  # the old file's prompt was replaced by its hash
                assert all(e["request"]["messages"][0]["content"].startswith(MARKER[:30]) for e in extras)
            elif name == "openai":
                assert all(len(e["request_hash"]) == 16 for e in extras)
            else:
                assert all(len(e["prompt_tokens_sha256"]) == 64 for e in extras)
    questions = [b["messages"][0]["content"] for b in server.bodies]  # the server did see the prompts
    assert any(secrets[0] in q for q in questions)
