"""Bad split options are one line (exit 2) before anything heavy: no data loaded for the combinations,
no model, no Ray started, no folder written. Where a worker runs (GPU, CPU threads) and how shards
balance."""

from __future__ import annotations

import sys

import pytest

from evalkit.core.errors import EvalkitError
from evalkit.core.run_config import Shard
from evalkit.parallel.placement import placements, thread_share, visible_gpus
from tests.evalkit.parallel.helpers import main_in_process

SIX = ["--task", "arith-demo", "--limit", "6", "--n", "2", "--workers", "1"]


def sambay(checkpoint) -> list[str]:
    return ["--backend", "sambay", "--model", str(checkpoint), *SIX]


CASES = [
    # (name, options, environment, message)
    (
        "zero workers",
        ["--data-parallel", "0"],
        {},
        "--data-parallel must be at least 1 (worker processes), got 0",
    ),
    (
        "more workers than problems",
        ["--data-parallel", "7"],
        {},
        "--data-parallel 7 is more workers than the 6 problems of arith-demo (shards are by problem); "
        "use --data-parallel 6 or fewer",
    ),
    (
        "ray with shard",
        ["--ray", "local", "--shard", "1/2"],
        {},
        "--shard 1/2 runs one shard and --ray runs every",
    ),
    (
        "dp with shard",
        ["--data-parallel", "2", "--shard", "1/2"],
        {},
        "--shard 1/2 runs one shard and --data-parallel",
    ),
    (
        "dp with ray",
        ["--data-parallel", "2", "--ray", "local"],
        {},
        "--data-parallel runs worker processes on this",
    ),
    ("ray shards without ray", ["--ray-shards", "2"], {}, "--ray-shards sets how many Ray tasks --ray runs"),
    (
        "zero ray shards",
        ["--ray", "local", "--ray-shards", "0"],
        {},
        "--ray-shards must be at least 1, got 0",
    ),
    (
        "more ray shards than problems",
        ["--ray", "local", "--ray-shards", "9"],
        {},
        "--ray-shards 9 is more workers",
    ),
    ("empty ray address", ["--ray", " "], {}, "--ray needs an address: local"),
]


@pytest.mark.parametrize(("options", "env", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_split_options_are_one_line_and_write_nothing(
    tiny_checkpoint_dir, tmp_path, monkeypatch, capsys, options, env, message
):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "results"
    code, stderr = main_in_process(
        monkeypatch, capsys, "run", *sambay(tiny_checkpoint_dir), *options, "--out", str(out)
    )
    assert code == 2
    [line] = stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert not out.exists()
    if "ray" in sys.modules and sys.modules["ray"] is not None:
        assert not sys.modules["ray"].is_initialized()  # refused before Ray started


def test_ray_without_the_extra_names_it(tiny_checkpoint_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does where it is not installed
    out = tmp_path / "results"
    code, stderr = main_in_process(
        monkeypatch, capsys, "run", *sambay(tiny_checkpoint_dir), "--ray", "local", "--out", str(out)
    )
    assert code == 2
    assert stderr.strip() == "error: --ray needs Ray, an optional extra: pip install 'evalkit[ray]'"
    assert not out.exists()


def test_the_replay_backend_is_refused_with_its_reason(tmp_path, monkeypatch, capsys):
    out = tmp_path / "results"
    args = [
        "run",
        "--backend",
        "replay",
        "--from",
        "pyproject.toml",
        *SIX,
        "--data-parallel",
        "2",
        "--out",
        str(out),
    ]
    code, stderr = main_in_process(monkeypatch, capsys, *args)
    assert code == 2
    assert stderr.strip() == (
        "error: the replay backend reads --from FILE and generates nothing, so --data-parallel has nothing to "
        "split; drop --data-parallel"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("listed", "gpus"),
    [
        ("0,1", ["0", "1"]),
        ("2", ["2"]),
        ("", []),
        ("-1", []),
        ("0,-1,2", ["0"]),  # CUDA stops at the first invalid entry
        ("GPU-8f6a, MIG-1", ["GPU-8f6a", "MIG-1"]),
    ],
)
def test_visible_gpus_follow_cuda_visible_devices(monkeypatch, listed, gpus):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", listed)
    assert visible_gpus() == gpus


# Through the CLI these follow the backend's preflight, which on a machine without CUDA already refuses
# --device cuda; here they are checked where they are decided.
@pytest.mark.parametrize(
    ("device", "visible", "message"),
    [
        ("cuda:1", "0,1", "--device cuda:1 names one GPU, but --data-parallel gives each worker its own"),
        (
            "cuda",
            "3",
            "--data-parallel 2 needs 2 GPUs (one per worker) but 1 is visible (CUDA_VISIBLE_DEVICES=3); "
            "use --data-parallel 1 or fewer, or --device cpu",
        ),
        ("auto", "0", "--data-parallel 2 needs 2 GPUs (one per worker) but 1 is visible"),
    ],
)
def test_gpu_placements_that_cannot_work_are_refused(monkeypatch, device, visible, message):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    with pytest.raises(EvalkitError) as refused:
        placements(2, device, uses_device=True)
    assert message in str(refused.value)


def test_a_backend_without_a_device_is_not_pinned(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # one GPU, four workers of a remote-server backend
    assert all("CUDA_VISIBLE_DEVICES" not in p.env for p in placements(4, "auto", uses_device=False))


def test_each_worker_gets_its_own_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
    places = placements(2, "auto", uses_device=True)
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in places] == ["4", "5"]
    assert [p.where for p in places] == ["GPU 4", "GPU 5"]


@pytest.mark.parametrize(
    ("cores", "workers", "explicit", "threads"),
    [(16, 4, None, 4), (2, 2, None, 1), (2, 3, None, 1), (16, 4, "2", 2)],
)
def test_cpu_workers_share_the_cores(monkeypatch, cores, workers, explicit, threads):
    monkeypatch.setattr("evalkit.parallel.placement.usable_cores", lambda: cores)
    if explicit is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", explicit)  # the user's per-process choice wins
    assert thread_share(workers) == threads
    [place, *_] = placements(workers, "cpu", uses_device=True)
    assert place.env["OMP_NUM_THREADS"] == str(threads) and "CUDA_VISIBLE_DEVICES" not in place.env


@pytest.mark.parametrize(("problems", "workers"), [(30, 8), (198, 8), (500, 7), (6, 6), (7, 2)])
def test_shards_hold_equal_problem_counts_within_one(problems, workers):
    counts = [sum(Shard(i, workers).keeps(p) for p in range(problems)) for i in range(1, workers + 1)]
    assert sum(counts) == problems and max(counts) - min(counts) <= 1
