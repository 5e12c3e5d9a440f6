"""Bad input as a new user types it, through `evalkit.cli.main` (the installed entry point): each case
exits 2 with exactly one `error:` line naming the problem, no traceback, and writes no run folder.

The table runs in this process (one torch import for all of it); the model loaders are replaced by a
function that fails the test, so every case is also shown to fail BEFORE any weights load.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from evalkit.cli import main
from tests.evalkit.test_runner import options, run_seeded

REPLAY = "--task arith-demo --backend replay --workers 1 --from"
SAMBAY = "--task arith-demo --backend sambay --workers 1 --model {ckpt}"
HF = "--task arith-demo --backend hf --workers 1 --model {llama}"


def rows(count: int = 30, **change) -> str:
    rows = [{"problem_id": f"arith-{i:03d}", "sample_index": 0, "text": "\\boxed{1}"} for i in range(count)]
    rows[0].update(change)
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_checkpoint_dir) -> dict[str, Path]:
    """Every input the table refers to, by name."""
    from tests.model_backends.test_hf_backend import make_tiny_llama

    root = tmp_path_factory.mktemp("bad-input")
    llama_as_sambay = root / "llama_as_sambay"
    shutil.copytree(tiny_checkpoint_dir, llama_as_sambay)
    config = json.loads((llama_as_sambay / "config.json").read_text())
    (llama_as_sambay / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
    texts = {
        "half": rows(15),
        "nonint": rows(sample_index="x"),
        "null": rows(text=None),
        "notobj": "[1, 2]\n",
    }
    for name, text in texts.items():
        (root / f"{name}.jsonl").write_text(text)
    (root / "latin1.jsonl").write_bytes(rows(1).encode() + b'{"problem_id": "caf\xe9"}\n')
    (root / "a_file").write_text("not a folder")
    data = root / "data"
    data.mkdir()
    aime = [{"id": str(i), "problem": f"problem {i}", "answer": i} for i in range(30)]
    aime[6]["answer"] = "25.7"
    (data / "aime24.jsonl").write_text("".join(json.dumps(r) + "\n" for r in aime))
    aime[6]["answer"] = 25.7  # int(25.7) used to store the gold "25"
    (data / "aime25.jsonl").write_text("".join(json.dumps(r) + "\n" for r in aime))

    run, _ = run_seeded(options(root / "runs"))  # a finished run folder (arith-demo, seeded backend)
    notext = root / "notext"
    shutil.copytree(run.path, notext)
    lines = (notext / "completions.jsonl").read_text().splitlines()
    record = json.loads(lines[3])
    del record["text"]
    lines[3] = json.dumps(record)
    (notext / "completions.jsonl").write_text("\n".join(lines) + "\n")
    edited = root / "edited"
    shutil.copytree(run.path, edited)
    header = json.loads((edited / "config.json").read_text())
    header["config"]["seed"] = 5
    (edited / "config.json").write_text(json.dumps(header))
    damaged = root / "damaged"
    shutil.copytree(run.path, damaged)
    (damaged / "results.json").write_text("{oops")
    return {
        "ckpt": tiny_checkpoint_dir,
        "llama": make_tiny_llama(root / "llama"),  # max_position_embeddings 256
        "llama_as_sambay": llama_as_sambay,
        "run": run.path,
        "root": root,
        **{name: root / name for name in ("notext", "edited", "damaged", "data", "a_file")},
        **{name: root / f"{name}.jsonl" for name in (*texts, "latin1")},
    }


CASES = [
    # (id, command line; {name} = a fixture file, {out} = the --out that must stay absent, message)
    ("out is a file", f"run {REPLAY} {{half}} --out {{a_file}}", "--out {a_file} is a file, not a folder"),
    ("out under a file", f"run {REPLAY} {{half}} --out {{a_file}}/r", "{a_file} is a file, not a folder"),
    ("run-dir is a file", f"run {REPLAY} {{half}} --run-dir {{a_file}}", "--run-dir {a_file} is a file"),
    ("temperature nan", f"run {REPLAY} {{half}} --temperature nan", "--temperature must be a finite number"),
    ("temperature inf", f"run {REPLAY} {{half}} --temperature inf", "--temperature must be a finite number"),
    ("top-p nan", f"run {REPLAY} {{half}} --top-p nan", "--top-p must be in (0, 1], got nan"),
    ("top-p 1.5", f"run {REPLAY} {{half}} --top-p 1.5", "--top-p must be in (0, 1], got 1.5"),
    ("max-new-tokens 0", f"run {REPLAY} {{half}} --max-new-tokens 0", "--max-new-tokens must be an integer"),
    ("backend option NaN", f"run {SAMBAY} --backend-option context_limit=NaN", "NaN is not a finite number"),
    ("backend option -inf", f"run {SAMBAY} --backend-option gpu_memory_fraction=-inf", "not a finite number"),
    ("backend option not a number", f"run {SAMBAY} --backend-option max_seq_len=big", "max_seq_len must be"),
    ("backend option malformed", f"run {REPLAY} {{half}} --backend-option foo", "write KEY=VALUE"),
    ("unknown sambay option", f"run {SAMBAY} --backend-option foo=1", "unknown sambay backend option(s)"),
    ("unknown ops mode", f"run {SAMBAY} --backend-option ops=fast", "set it to auto, reference or triton"),
    ("max-slots 0", f"run {SAMBAY} --max-slots 0", "--max-slots must be at least 1, got 0"),
    ("impossible max-new-tokens", f"run {SAMBAY} --max-new-tokens 70000", "leaves no room for a prompt"),
    ("max-new-tokens past hf context", f"run {HF} --max-new-tokens 256", "declares a context of 256 tokens"),
    ("device tpu (sambay)", f"run {SAMBAY} --device tpu", "unknown --device 'tpu'; choose auto, cpu, cuda"),
    ("device tpu (hf)", f"run {HF} --device tpu", "unknown --device 'tpu'"),
    ("device cuda:7", f"run {SAMBAY} --device cuda:7", "--device cuda:7"),
    ("dtype int8", f"run {SAMBAY} --dtype int8", "unknown dtype 'int8'"),
    ("llama given to sambay", f"run {SAMBAY.replace('ckpt', 'llama_as_sambay')}", "use --backend hf"),
    ("replay sample_index x", f"run {REPLAY} {{nonint}}", ':1 has sample_index "x"'),
    ("replay line not an object", f"run {REPLAY} {{notobj}}", ":1 is not a JSON object (got list)"),
    ("replay not UTF-8", f"run {REPLAY} {{latin1}}", ":2 is not UTF-8 text"),
    ("replay text null", f"run {REPLAY} {{null}}", ":1 has text null; it must be a string"),
    ("replay lacks samples", f"run {REPLAY} {{half}} --n 1", "lacks 15 of the 30 requested samples"),
    ("aime answer 25.7 text", "run --task aime24 --backend replay --from {half} --data-dir {data}",
     "aime24.jsonl:7: answer '25.7' is not an integer"),
    ("aime answer 25.7 number", "show-prompt aime25 --data-dir {data}", "aime25.jsonl:7: answer 25.7 is not"),
    ("n 0", f"run {REPLAY} {{half}} --n 0", "--n must be at least 1, got 0"),
    ("n abc", f"run {REPLAY} {{half}} --n abc", "Invalid value for '--n'"),
    ("missing task", "run --backend replay --from {half}", "Missing option '--task'"),
    ("unknown option", f"run {REPLAY} {{half}} --temprature 1", "No such option: --temprature"),
    ("unknown command", "runn --task arith-demo", "No such command 'runn'"),
    ("unknown task", "run --task aime2024 --backend replay --from {half}", "unknown task 'aime2024'"),
    ("unknown backend", "run --task arith-demo --backend gpt --model m", "unknown backend 'gpt'"),
    ("shard 3/2", f"run {REPLAY} {{half}} --shard 3/2", "--shard '3/2' is out of range"),
    ("unknown prompt", f"run {REPLAY} {{half}} --prompt nope", "unknown prompt 'nope'"),
    ("limit 0", f"run {REPLAY} {{half}} --limit 0", "--limit must be at least 1"),
    ("workers 0", f"run {REPLAY} {{half}} --workers 0", "--workers must be at least 1"),
    ("no model", "run --task arith-demo --backend hf", "the hf backend needs --model"),
    ("replay from a folder", "run --task arith-demo --backend replay --from {root}", "no such file"),
    ("openai without url", "run --task arith-demo --backend openai --model m", "needs --base-url"),
    ("openai server down", "run --task arith-demo --backend openai --model m --base-url http://127.0.0.1:9/v1 "
     "--backend-option max_tries=1 --backend-option timeout=2", "nothing was stored and no run folder"),
    ("score record without text", "score {notext} --workers 1", "completions.jsonl:4: the completion record lacks text"),
    ("score edited config", "score {edited} --workers 1", "config.json was edited"),
    ("score a checkpoint folder", "score {ckpt}", "is not an evalkit run's config.json"),
    ("score mode", "score {run} --mode lighteval", "--mode is gone: every scoring pass now stores the official"),
    ("score bare file without task", "score {half}", "say which task it answers with --task"),
    ("score bare non-UTF-8 file", "score {latin1} --task arith-demo --out {out}", ":2 is not UTF-8 text"),
    ("score workers 0", "score {run} --workers 0", "--workers must be at least 1"),
    ("score damaged results", "score {damaged} --workers 1", "results.json is not valid JSON"),
    ("merge out is a file", "merge {run} --out {a_file}", "--out {a_file} is a file"),
    ("merge not a run", "merge {root}", "has no config.json; pass evalkit run folders"),
    ("merge workers 0", "merge {run} --workers 0", "--workers must be at least 1"),
    ("show-prompt unknown task", "show-prompt aime", "unknown task 'aime'"),
    ("show-prompt index", "show-prompt arith-demo --index 30", "--index 30 is out of range"),
    ("show-prompt sample", "show-prompt arith-demo --sample -1", "--sample must be >= 0"),
    ("tasks bad option", "tasks --all", "No such option: --all"),
    ("leaderboard missing", "leaderboard {root}/nope", "does not exist"),
    ("leaderboard format", "leaderboard {run} --format xml", "unknown format 'xml'"),
    ("leaderboard out in a file", "leaderboard {run} --out {a_file}/x.md", "its folder {a_file} is a file"),
    ("leaderboard out is a folder", "leaderboard {run} --out {root}", "is a folder; give a file name"),
    ("leaderboard damaged", "leaderboard {damaged}", "results.json is not valid JSON"),
    ("report out is a file", "report {run} --out {a_file}", "--out {a_file} is a file"),
    ("report reference", "report {run} --reference nope --out {out}", "reference 'nope' not found"),
    ("serve port", "serve --model {ckpt} --port 99999", "--port must be between 0 and 65535"),
    ("serve device tpu", "serve --model {ckpt} --device tpu --port 0", "unknown --device 'tpu'"),
    ("serve max-slots 0", "serve --model {ckpt} --max-slots 0 --port 0", "--max-slots must be at least 1"),
    ("serve llama as sambay", "serve --model {llama_as_sambay} --port 0", "use --backend hf"),
    ("serve timeout nan", "serve --model {ckpt} --request-timeout nan", "--request-timeout must be a positive"),
    ("serve unknown backend", "serve --model {ckpt} --backend gpt", "unknown backend 'gpt'"),
]  # fmt: skip


def invoke(monkeypatch, capsys, args: list[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["evalkit", *args])
    try:
        main()
        code = 0
    except SystemExit as exit:
        code = exit.code
    return code, capsys.readouterr().err


@pytest.fixture
def no_model_loads(monkeypatch):
    """Loading weights fails the test: every case must be refused before it."""
    import transformers

    from model_backends.sambay.model import SambaYForCausalLM

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the bad input was refused")

    monkeypatch.setattr(SambaYForCausalLM, "from_pretrained", refuse)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)


@pytest.mark.parametrize(("command", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line_exit_2_and_no_run_folder(
    command, message, files, tmp_path, monkeypatch, capsys, no_model_loads
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    paths = {name: str(path) for name, path in files.items()} | {"out": str(out)}
    args = [part.format(**paths) for part in command.split()]
    if args[0] == "run" and "--out" not in args and "--run-dir" not in args:
        args += ["--out", str(out)]
    code, err = invoke(monkeypatch, capsys, args)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, err
    assert len(errors) == 1 and message.format(**paths) in errors[0], err
    assert err.rstrip().endswith(errors[0]) and "Traceback" not in err
    assert not out.exists()  # nothing was generated, so no run folder (not even an empty --out)
    assert not (files["a_file"]).is_dir() and files["a_file"].read_text() == "not a folder"
