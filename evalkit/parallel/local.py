"""`--data-parallel N`: N worker processes on this machine, one shard each, supervised by the parent.

Each worker is `worker_command` (the CLI's `python -m evalkit.cli.worker`) with its ShardJob pickled on
stdin and its placement in the environment. The parent keeps every worker's stdin open (the lifeline:
a worker exits when it closes, so kill -9 of the parent leaves no orphans), reads its events (ready,
error, done) from stdout, keeps the tail of its stderr for error messages, and restarts a worker that
dies (a signal or a crash; its stored samples are kept, the restart generates only what is missing) up
to `max_restarts` times. A worker that reports an evalkit error (a bad option, a backend that refuses)
is not restarted: every worker would fail the same way, so the run stops with that one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.core.errors import EvalkitError
from evalkit.parallel.display import SplitProgress
from evalkit.parallel.job import PARENT_PID_ENV, ShardJob
from evalkit.parallel.placement import Placement
from evalkit.parallel.watch import StoredSamples

MAX_RESTARTS = 3
_POLL_SECONDS = 0.2
_STOP_GRACE_SECONDS = 5.0
USER_ERROR_EXIT = 2  # what evalkit.cli.main exits with for an EvalkitError


@dataclass
class Worker:
    job: ShardJob
    placement: Placement
    process: subprocess.Popen | None = None
    restarts: int = 0
    state: str = "starting"
    summary: dict[str, Any] | None = None
    error: str | None = None
    stderr_tail: deque = field(default_factory=lambda: deque(maxlen=20))
    readers: list[threading.Thread] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.job.shard.label


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class LocalWorkers:
    """Starts, watches and restarts the workers; `run()` returns each shard's summary (shard order)."""

    def __init__(
        self,
        jobs: Sequence[ShardJob],
        placements: Sequence[Placement],
        worker_command: Sequence[str],
        stored: StoredSamples,
        progress: SplitProgress,
        max_restarts: int = MAX_RESTARTS,
    ) -> None:
        self.workers = [Worker(job, place) for job, place in zip(jobs, placements, strict=True)]
        self.command = list(worker_command)
        self.stored, self.progress = stored, progress
        self.max_restarts = max_restarts
        self._events: queue.Queue[tuple[Worker, dict[str, Any]]] = queue.Queue()

    # -- processes ----------------------------------------------------------------------------------

    def _start(self, worker: Worker) -> None:
        env = {**os.environ, **worker.placement.env, PARENT_PID_ENV: str(os.getpid())}
        process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert process.stdin is not None
        process.stdin.write(pickle.dumps(worker.job))
        process.stdin.flush()  # stdin stays open: it is the worker's lifeline
        worker.process, worker.state = process, "starting"
        worker.readers = [
            threading.Thread(target=reader, args=(worker, process), daemon=True)
            for reader in (self._read_events, self._read_stderr)
        ]
        for thread in worker.readers:
            thread.start()
        self.progress.note(
            f"shard {worker.label}: worker pid {process.pid} on {worker.placement.where}"
            + (f" (restart {worker.restarts} of {self.max_restarts})" if worker.restarts else "")
        )

    def _read_events(self, worker: Worker, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict):
                self._events.put((worker, event))

    def _read_stderr(self, worker: Worker, process: subprocess.Popen) -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            text = raw.decode("utf-8", "replace").rstrip()
            if text:
                worker.stderr_tail.append(text)
                self._events.put((worker, {"event": "stderr", "line": text}))

    def _stop_all(self) -> None:
        """Close every lifeline (workers exit at once), then make sure: SIGTERM, SIGKILL."""
        alive = [w.process for w in self.workers if w.process is not None and w.process.poll() is None]
        for process in alive:
            with contextlib.suppress(OSError):  # BrokenPipe: it is already gone
                process.stdin.close()
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        for process in alive:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # -- supervision --------------------------------------------------------------------------------

    def _handle_events(self) -> None:
        while True:
            try:
                worker, event = self._events.get_nowait()
            except queue.Empty:
                return
            kind = event.get("event")
            if kind == "ready":
                worker.state = "generating"
            elif kind == "stderr":
                self._show(worker, str(event["line"]))
            elif kind == "error":
                worker.error = str(event.get("message", ""))
            elif kind == "done":
                worker.summary = event

    def _show(self, worker: Worker, line: str) -> None:
        """A worker's own output (its backend's start-up line, warnings, retries, a crash's traceback),
        as a single process would show it, marked with its shard."""
        self.progress.note(f"shard {worker.label}| {line}")

    def _last_words(self, worker: Worker) -> str:
        lines = [line for line in worker.stderr_tail if line.strip()]
        return lines[-1] if lines else "no output"

    def _check_exit(self, worker: Worker) -> None:
        process = worker.process
        if process is None or worker.state == "done" or process.poll() is None:
            return
        code = process.returncode
        self._drain(worker)
        if code == 0 and worker.summary is not None:
            worker.state = "done"
            return
        if code == USER_ERROR_EXIT and worker.error is not None:
            raise EvalkitError(f"shard {worker.label}: {worker.error}")
        reason = _exit_reason(code)
        if code > 0:  # a crash: its last line is the exception (a signal says all there is to say)
            reason += f"; last output: {self._last_words(worker)}"
        if worker.restarts >= self.max_restarts:
            raise EvalkitError(
                f"shard {worker.label}'s worker died {worker.restarts + 1} times ({reason}); its stored "
                f"samples are kept: re-run the same command to resume, or run that shard alone with "
                f"--shard {worker.label} to see its error"
            )
        worker.restarts += 1
        self.progress.note(f"shard {worker.label}: worker died ({reason}); restarting, stored samples kept")
        self._start(worker)

    def _drain(self, worker: Worker) -> None:
        """Let the reader threads deliver a dead worker's last events and output (they end at EOF; a
        grandchild holding the pipes open must not hang the parent, hence the timeout)."""
        for thread in worker.readers:
            thread.join(timeout=2.0)
        self._handle_events()

    def run(self) -> list[dict[str, Any]]:
        try:
            for worker in self.workers:
                self._start(worker)
            while not all(w.state == "done" for w in self.workers):
                self._handle_events()
                for worker in self.workers:
                    self._check_exit(worker)
                self.stored.poll()
                self.progress.update(self.stored, [w.state for w in self.workers])
                time.sleep(_POLL_SECONDS)
            self.stored.poll()
            self.progress.update(self.stored, [w.state for w in self.workers], force=True)
        finally:
            self.progress.close()
            self._stop_all()
        return [w.summary or {} for w in self.workers]
