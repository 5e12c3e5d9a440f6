"""One shard of a split run, in a worker: `python -m evalkit.cli.worker` (a --data-parallel process) or
`run_shard(job)` (a Ray task). It plans its shard again from the parent's options, refuses when that
gives other run_ids than the parent's, builds the backend through the CLI's wiring, and generates the
shard's missing samples into the shared run folder. It never scores: the parent does, once.

As a process it reads its pickled ShardJob from stdin and keeps stdin open as its lifeline: when the
parent dies (kill -9 included) the pipe closes and the worker exits at once (on Linux the kernel also
kills it: PR_SET_PDEATHSIG), so a killed run leaves no orphan on a GPU. It reports JSON events (ready,
error, done) on the stdout it was given; anything else (the backend's start-up line, warnings) goes to
stderr, which the parent shows marked with the shard.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from evalkit.core.errors import EvalkitError, describe_os_error
from evalkit.parallel.job import PARENT_PID_ENV, ShardJob

Report = Callable[[dict[str, Any]], None]


def _ignore(event: dict[str, Any]) -> None:
    return None


def _check_marker(job: ShardJob, plans: list) -> None:
    for plan in plans:
        if not plan.folder.has_marker(job.marker):
            raise EvalkitError(
                f"the worker on {socket.gethostname()} cannot see the run folder {plan.folder.path} the "
                "driver prepared: put --out on storage every node mounts (NFS, a shared volume) at the "
                "same path"
            )


def run_shard(job: ShardJob, report: Report = _ignore) -> dict[str, Any]:
    """Generate the missing samples of one shard for every task; returns what it did (no scoring).

    A file-system error (a full disk, a folder it cannot write) would be the same after a restart or a
    Ray retry, so it is an EvalkitError (reported, not retried), named as `evalkit run` names it."""
    try:
        return _run_shard(job, report)
    except OSError as err:
        raise EvalkitError(describe_os_error(err)) from err


def _run_shard(job: ShardJob, report: Report) -> dict[str, Any]:
    from evalkit.cli.wiring import make_run_backend, resolve_tasks
    from evalkit.generation import generate_missing
    from evalkit.planning import plan_tasks
    from model_backends.registry import BACKENDS

    os.environ.update(job.environment)
    if job.threads is not None:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(job.threads)
    BACKENDS.setdefault(job.options.backend, job.backend_module)
    plans = plan_tasks(job.options, resolve_tasks(job.task_names))
    if job.marker is not None:
        _check_marker(job, plans)
    run_ids = tuple(plan.config.run_id for plan in plans)
    if run_ids != job.run_ids:
        raise EvalkitError(
            f"the worker on {socket.gethostname()} plans run(s) {', '.join(run_ids)}, the parent "
            f"{', '.join(job.run_ids)}: its data, model files or evalkit differ; give every worker the "
            "same ones"
        )
    backend = make_run_backend(job.options, **job.backend_kwargs)
    torch = sys.modules.get("torch")
    if job.threads is not None and torch is not None:
        torch.set_num_threads(job.threads)  # torch may have been imported before the variable was set
    model_info = backend.model_info()
    report({"event": "ready"})
    generated, tokens = [], []
    for plan in plans:
        stats = generate_missing(plan, backend)  # config.json comes with the first sample, as in one process
        generated.append(stats.generated_samples)
        tokens.append(stats.generated_tokens)
    return {
        "shard": job.shard.label,
        "host": socket.gethostname(),
        "generated": generated,
        "tokens": tokens,
        "model_info": model_info,
    }


def _die_with_parent(parent: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: the kernel kills us with the parent
    except (OSError, AttributeError):
        pass  # not Linux: the stdin lifeline below still works
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)

    def lifeline() -> None:
        # os.read on the descriptor, not sys.stdin: a daemon thread blocked inside a buffered reader
        # makes the interpreter abort at exit (it cannot take the reader's lock).
        while os.read(0, 1 << 16):
            pass
        os._exit(1)  # EOF: the parent closed the pipe (it stops us) or died

    threading.Thread(target=lifeline, name="parent-lifeline", daemon=True).start()


def main() -> int:
    job: ShardJob = pickle.load(sys.stdin.buffer)
    _die_with_parent(int(os.environ.get(PARENT_PID_ENV, os.getppid())))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    events = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # stray prints of libraries go to stderr, never into the event stream

    def report(event: dict[str, Any]) -> None:
        events.write(json.dumps(event, default=str) + "\n")
        events.flush()

    try:
        summary = run_shard(job, report)
    except EvalkitError as err:
        report({"event": "error", "message": str(err)})  # the parent says it, once, for the run
        return 2

    report({"event": "done", **summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
