"""`score_many`: a whole run's verdicts, symbolic checks in worker processes under a hard timeout.

Why our own pool rather than concurrent.futures: a sympy call can run for hours and cannot be
interrupted from inside (math-verify's SIGALRM works only in a main thread). A future cannot be
cancelled once running, so each worker here gets one job at a time, and one that passes its deadline is
killed and replaced; its item is scored False with reason "timeout".

Workers come from a forkserver that imported sympy and math-verify and built their parsers once
(preload.py), so a worker, first or replacing a killed one, costs a fork, not a fresh interpreter or
parser, and forking is safe even if the caller runs threads (torch).
As with any multiprocessing code, a script calling `score_many` needs an `if __name__ == "__main__":`
guard (the forkserver imports the main module).

The workers belong to a `ScoringPool` that its caller creates, passes and closes; there is no
process-wide pool:

    with ScoringPool(workers) as pool:           # `evalkit run`: one pool for every task of the run
        verdicts = score_many(items, pool=pool)
    score_many(items, workers=4)                 # one batch: a pool for this call only

A pool serves one thread at a time.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from evalkit.scoring.judge import Verdict, VerifyJob, prepare, run_job, with_source
from evalkit.scoring.options import DEFAULT_OPTIONS, CheckerOptions


@dataclass(frozen=True)
class ScoreItem:
    gold: str
    response: str
    answer_type: str


_READY = "ready"
_WARMUP = VerifyJob("\\frac{1}{2}", "0.5x", "math", "evalkit", "0.5x")


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when its parent, the forkserver, exits, so a worker stuck in sympy
    does not outlive a killed evalkit.

    The forkserver exits when the last copy of the caller's "alive" pipe closes; every forkserver child
    inherits one (CPython's forkserver keeps it in `_forkserver_alive_fd`), so a hung worker would keep
    the server, and the server the worker, alive forever. Close the worker's copy.
    """
    try:
        import ctypes
        import signal
        from multiprocessing import forkserver

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        alive_fd = forkserver._forkserver._forkserver_alive_fd
        if alive_fd is not None:
            os.close(alive_fd)
            forkserver._forkserver._forkserver_alive_fd = None
    except (OSError, AttributeError):  # not Linux, or another CPython layout: only the cleanup is lost
        pass


def _worker_main(conn: Connection) -> None:
    _die_with_parent()
    # This process exists to judge answers: math-verify's parse warnings are verdicts here, not news, and
    # its stderr is the user's terminal.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    run_job(_WARMUP)  # the parser is built before the first timed job (in the forkserver: a no-op here)
    conn.send(_READY)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        conn.send(run_job(job))


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["evalkit.scoring.preload"])
    return ctx


class _Worker:
    def __init__(self) -> None:
        ctx = _context()
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.job_index: int | None = None
        self.deadline = 0.0

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


class WorkerPool:
    """Worker processes that run `VerifyJob`s one at a time each, killing any that overrun."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.failed_starts = 0
        self.workers = [_Worker() for _ in range(size)]

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        self.workers = []

    def _replace(self, worker: _Worker) -> None:
        if not worker.ready:
            self.failed_starts += 1
            if self.failed_starts > 3:
                raise RuntimeError("scoring workers die while starting (cannot import sympy/math-verify?)")
        worker.kill()
        self.workers[self.workers.index(worker)] = _Worker()

    def run(self, jobs: Sequence[VerifyJob], timeout: float, on_done: Callable[[int], None]) -> list[Verdict]:
        results: list[Verdict | None] = [None] * len(jobs)
        pending = deque(range(len(jobs)))
        while pending or any(w.job_index is not None for w in self.workers):
            for worker in self.workers:
                if worker.ready and worker.job_index is None and pending:
                    worker.job_index = pending.popleft()
                    worker.deadline = time.monotonic() + timeout
                    worker.conn.send(jobs[worker.job_index])
            busy = [w for w in self.workers if w.job_index is not None]
            wait_for = min((w.deadline for w in busy), default=time.monotonic() + timeout) - time.monotonic()
            ready_conns = wait([w.conn for w in self.workers], timeout=max(0.0, wait_for))
            for worker in list(self.workers):
                if worker.conn in ready_conns:
                    self._receive(worker, jobs, results, on_done)
                elif worker.job_index is not None and time.monotonic() > worker.deadline:
                    index = worker.job_index
                    results[index] = Verdict(False, jobs[index].extracted, "timeout")
                    on_done(index)
                    self._replace(worker)
        return [r for r in results if r is not None]

    def _receive(self, worker: _Worker, jobs, results, on_done) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):  # the worker died (killed by the OS, crashed in C code)
            if worker.job_index is not None:
                index = worker.job_index
                results[index] = Verdict(False, jobs[index].extracted, "parse_error")
                on_done(index)
            self._replace(worker)
            return
        if message == _READY:
            worker.ready = True
            return
        results[worker.job_index] = message
        on_done(worker.job_index)
        worker.job_index = None


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class ScoringPool:
    """The checker's worker processes, owned by the caller: `with ScoringPool(workers) as pool: ...`.

    Workers start with the first batch that needs sympy (batches of cheap answers start none) and serve
    every later batch, so one run pays their start-up once; leaving the `with` (or `close()`) kills them.
    `workers` None = one per CPU this process may use; 0 or 1 = one worker, so the timeout always holds.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers if workers is not None else default_workers())
        self._pool: WorkerPool | None = None

    @property
    def running(self) -> int:
        """Worker processes alive now (0 before the first batch that needs one, and after close)."""
        return 0 if self._pool is None else sum(w.process.is_alive() for w in self._pool.workers)

    def run(self, jobs: Sequence[VerifyJob], timeout: float, on_done: Callable[[int], None]) -> list[Verdict]:
        needed = min(self.workers, len(jobs))
        if self._pool is None or self._pool.size < needed:  # grow to what this batch can use
            self.close()
            self._pool = WorkerPool(needed)
        return self._pool.run(jobs, timeout, on_done)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> ScoringPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def plan(
    items: Sequence[ScoreItem], mode: str, options: CheckerOptions = DEFAULT_OPTIONS
) -> tuple[list[Verdict | None], list[VerifyJob], list[list[tuple[int, str | None]]]]:
    """Cheap verdicts now; one `VerifyJob` per distinct (gold, extracted, answer type), with its items
    (index, source of its answer)."""
    verdicts: list[Verdict | None] = [None] * len(items)
    owners: dict[tuple[str, str, str, str], list[tuple[int, str | None]]] = {}
    jobs: list[VerifyJob] = []
    for i, item in enumerate(items):
        prepared = prepare(item.gold, item.response, item.answer_type, mode, options)
        if isinstance(prepared, Verdict):
            verdicts[i] = prepared
            continue
        key = (prepared.gold, prepared.pred, prepared.answer_type, prepared.mode)
        if key not in owners:
            owners[key] = []
            jobs.append(prepared)
        owners[key].append((i, prepared.source))
    return verdicts, jobs, list(owners.values())


def score_many(
    items: Sequence[ScoreItem],
    *,
    pool: ScoringPool | None = None,
    workers: int | None = None,
    timeout: float = 10.0,
    mode: str = "evalkit",
    options: CheckerOptions = DEFAULT_OPTIONS,
    progress: Callable[[int], None] | None = None,
) -> list[Verdict]:
    """Verdicts for `items`, in input order, identical for any worker count.

    Extraction and the cheap checks run here; each distinct (gold, extracted answer, answer type) left
    over is verified once, in a worker process of `pool`, under a hard `timeout` seconds of wall clock.
    Without a pool, one of `workers` processes is made for this call and closed before it returns.
    `progress(n)` is called with the number of items just finished (an increment).
    """
    report = progress or (lambda n: None)
    verdicts, jobs, owners = plan(items, mode, options)
    decided = sum(v is not None for v in verdicts)
    if decided:
        report(decided)
    if jobs:
        if pool is None:
            with ScoringPool(workers) as own:
                results = own.run(jobs, timeout, lambda j: report(len(owners[j])))
        else:
            results = pool.run(jobs, timeout, lambda j: report(len(owners[j])))
        for job_owners, verdict in zip(owners, results, strict=True):
            for i, source in job_owners:
                verdicts[i] = with_source(verdict, source)
    return [v for v in verdicts if v is not None]


def score_both(
    items: Sequence[ScoreItem],
    *,
    pool: ScoringPool | None = None,
    workers: int | None = None,
    timeout: float = 10.0,
    options: CheckerOptions = DEFAULT_OPTIONS,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Verdict], list[Verdict | None]]:
    """(evalkit's verdicts, the official judgement's) for `items`, in input order.

    Ours are exactly `score_many(items, options=options)`'s. The official judgement (mode "lighteval",
    lighteval 0.10's math judgement; it has no options) exists for math and integer answers; a choice
    item's is None. Both sides' sympy jobs go to the pool as one batch, so neither waits for the other's
    slowest item. `progress(n)` counts items of both sides (2 per math item, 1 per choice item).
    """
    report = progress or (lambda n: None)
    ours, our_jobs, our_owners = plan(items, "evalkit", options)
    judged = [i for i, item in enumerate(items) if item.answer_type != "choice"]
    theirs, their_jobs, their_owners = plan([items[i] for i in judged], "lighteval")
    decided = sum(v is not None for v in ours) + sum(v is not None for v in theirs)
    if decided:
        report(decided)
    jobs = our_jobs + their_jobs
    owners = our_owners + their_owners
    if jobs:
        if pool is None:
            with ScoringPool(workers) as own:
                results = own.run(jobs, timeout, lambda j: report(len(owners[j])))
        else:
            results = pool.run(jobs, timeout, lambda j: report(len(owners[j])))
        for job_owners, verdict in zip(our_owners, results[: len(our_jobs)], strict=True):
            for i, source in job_owners:
                ours[i] = with_source(verdict, source)
        for job_owners, verdict in zip(their_owners, results[len(our_jobs) :], strict=True):
            for i, _ in job_owners:
                theirs[i] = verdict
    official: list[Verdict | None] = [None] * len(items)
    for position, i in enumerate(judged):
        official[i] = theirs[position]
    return [v for v in ours if v is not None], official
