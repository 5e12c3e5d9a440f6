"""GenerationService: one backend, one generation loop, many concurrent callers.

The contract (what lets concurrent HTTP requests share one engine's continuous batching):

- The service owns the backend and ONE background thread; HTTP handler threads only `submit()` a
  GenerationRequest and wait on its Ticket. Callers' request ids are replaced by unique internal ids, so
  two callers can't collide; completions come back in any order and are routed to their caller by id.
- Push mode (a backend with `add_request(request)`, `step() -> list[Completion]`, `has_work()`, as the
  sambay backend has): the loop moves every queued request into the backend (`add_request`, never
  blocking), runs one `step()`, delivers what finished, and repeats; it sleeps on the queue only when the
  backend has no work. New requests therefore join the running batch at the next step: this is the
  engine's continuous batching shared by all HTTP clients. A request the backend refuses in
  `add_request` (BackendError: too long for the context, ...) fails only its own caller (RequestRejected).
- Pull mode (any other Backend): the loop calls `backend.generate(feed)` once for the service's whole
  life; `feed` is a blocking iterator over the queue (each `next(feed)` waits for a submission and it
  ends when the service closes). This suits a backend that asks for the next request only when it has
  nothing else to finish (the hf backend, one request at a time) or that reads its iterator from a thread
  of its own (the openai backend). A backend that blocks in `next()` while still holding unfinished work
  would stall those requests until the next submission; a backend that drains the whole iterable first
  (`list(requests)`) would never answer. Such backends need push mode.
- `in_flight` counts submitted requests not yet fully answered. A caller that stops waiting (timeout,
  closed connection) does not cancel work the backend already holds: its completions are dropped when
  they arrive and only then does `in_flight` go down, so nothing leaks once the backend finishes.
- If the backend's loop raises, every waiting caller gets a ServiceError, the service reports itself
  unhealthy, and later submissions fail at once.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from evalkit.core.errors import EvalkitError
from evalkit.core.types import Backend, Completion, GenerationRequest

_CLOSE = object()


class ServiceError(RuntimeError):
    """The generation loop failed or the service is closed."""


class RequestRejected(ServiceError):
    """The backend refused this one request (e.g. prompt + max tokens beyond its context)."""


@dataclass
class Ticket:
    """One submitted request: wait() returns its completions sorted by sample index."""

    request: GenerationRequest  # as the backend sees it (internal request id)
    caller_id: str  # the request id the caller submitted; restored on the completions it gets
    missing: set[int]
    completions: list[Completion] = field(default_factory=list)
    error: str | None = None
    rejected: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float | None = None) -> list[Completion]:
        if not self.done.wait(timeout):
            raise TimeoutError(f"no answer within {timeout} s")
        if self.error is not None:
            raise (RequestRejected if self.rejected else ServiceError)(self.error)
        ordered = sorted(self.completions, key=lambda c: c.sample_index)
        return [replace(c, request_id=self.caller_id) for c in ordered]


class GenerationService:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._queue: queue.Queue[Any] = queue.Queue()
        self._tickets: dict[str, Ticket] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._failure: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="generation-service", daemon=True)
        self._thread.start()

    # ---- callers ----------------------------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> Ticket:
        with self._lock:
            if self._failure is not None:
                raise ServiceError(f"the generation loop has stopped: {self._failure}")
            if self._closed:
                raise ServiceError("the service is closed")
            internal = replace(request, request_id=f"srv-{next(self._ids)}")
            ticket = Ticket(internal, request.request_id, set(internal.sample_indices))
            self._tickets[internal.request_id] = ticket
        self._queue.put(internal)
        return ticket

    def generate(self, request: GenerationRequest, timeout: float | None = None) -> list[Completion]:
        """Submit and wait. On timeout the work stays with the backend and is dropped when it finishes."""
        return self.submit(request).wait(timeout)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._tickets)

    def slot_usage(self) -> dict[str, int] | None:
        """{"busy", "total"} of the backend's slot pool when it exposes one (the sambay engine's scheduler;
        a snapshot read without locking), else None. After all requests are answered, busy must be 0."""
        scheduler = getattr(getattr(self.backend, "engine", None), "scheduler", None)
        if scheduler is None or not hasattr(scheduler, "free") or not hasattr(scheduler, "num_slots"):
            return None
        total = int(scheduler.num_slots)
        return {"busy": total - len(scheduler.free), "total": total}

    @property
    def healthy(self) -> bool:
        return self._failure is None and not self._closed and self._thread.is_alive()

    @property
    def failure(self) -> str | None:
        return self._failure

    def close(self, timeout: float = 30.0) -> None:
        """End the feed (the backend's generate() then finishes what it holds) and join the loop."""
        with self._lock:
            self._closed = True
        self._queue.put(_CLOSE)
        self._thread.join(timeout)

    # ---- the loop -----------------------------------------------------------------------------------

    def _feed(self) -> Iterator[GenerationRequest]:
        while (item := self._queue.get()) is not _CLOSE:
            yield item

    @property
    def push_mode(self) -> bool:
        return all(callable(getattr(self.backend, m, None)) for m in ("add_request", "step", "has_work"))

    def _loop(self) -> None:
        try:
            if self.push_mode:
                self._push_loop()
                reason = "the service closed"
            else:
                for completion in self.backend.generate(self._feed()):
                    self._deliver(completion)
                reason = "the backend's generate() ended"
        except Exception as err:  # any backend failure must reach every waiting caller
            reason = f"{type(err).__name__}: {err}"
        with self._lock:
            if not self._closed:
                self._failure = reason
            tickets, self._tickets = list(self._tickets.values()), {}
        for ticket in tickets:
            ticket.error = f"the generation loop has stopped: {reason}"
            ticket.done.set()

    def _push_loop(self) -> None:
        backend: Any = self.backend
        closing = False
        while not closing or backend.has_work():
            block = not backend.has_work() and not closing
            try:
                while True:  # move everything queued into the engine; wait only when it is idle
                    item = self._queue.get(block=block)
                    block = False
                    if item is _CLOSE:
                        closing = True
                        continue
                    self._add(backend, item)
            except queue.Empty:
                pass
            for completion in backend.step():
                self._deliver(completion)

    def _add(self, backend: Any, request: GenerationRequest) -> None:
        try:
            backend.add_request(request)
        except EvalkitError as err:
            with self._lock:
                ticket = self._tickets.pop(request.request_id, None)
            if ticket is not None:
                ticket.error, ticket.rejected = str(err), True
                ticket.done.set()

    def _deliver(self, completion: Completion) -> None:
        with self._lock:
            ticket = self._tickets.get(completion.request_id)
            if ticket is None or completion.sample_index not in ticket.missing:
                return  # not ours or a duplicate: never hand a caller more samples than it asked for
            ticket.missing.discard(completion.sample_index)
            ticket.completions.append(completion)
            if ticket.missing:
                return
            del self._tickets[completion.request_id]
        ticket.done.set()
