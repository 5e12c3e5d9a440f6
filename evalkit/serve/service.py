"""GenerationService: one backend, one generation loop, many concurrent callers.

The contract (what lets concurrent HTTP requests share one engine's continuous batching):

- The service owns the backend and ONE background thread; callers only `submit()` a GenerationRequest
  and wait on its Ticket (or get each finished sample through the ticket's `listener`, which the HTTP
  layer uses to stream). Callers' request ids are replaced by unique internal ids, so two callers
  can't collide; completions come back in any order and are routed to their caller by id.
- Push mode (a backend with `add_request(request)`, `step() -> list[Completion]`, `has_work()`, as the
  sambay backend has): the loop moves everything queued into the backend (`add_request`, never
  blocking), runs one `step()`, delivers what finished, and repeats; it sleeps on the queue only when the
  backend has no work (never while it has). New requests therefore join the running batch at the next
  step: the engine's continuous batching shared by all HTTP clients. A request the backend refuses in
  `add_request` (BackendError: too long for the context, ...) fails only its own caller (RequestRejected).
- Pull mode (any other Backend): the loop calls `backend.generate(feed)` once for the service's whole
  life; `feed` is a blocking iterator over the queue (each `next(feed)` waits for a submission and it
  ends when the service closes). This suits a backend that asks for the next request only when it has
  nothing else to finish (the hf backend) or that reads its iterator from a thread of its own (the
  openai backend). A backend that drains the whole iterable first would never answer: it needs push mode.
- Abort (`abort(ticket)`, e.g. the HTTP client went away): the caller is answered at once. In push mode
  with a backend that has `abort(request_id)` (the sambay backend), the loop calls it before its next
  step, so the engine frees the request's slots within a step; a request still queued is never added.
  Otherwise the backend finishes the samples it holds and they are dropped when they arrive.
- `in_flight` counts the requests the backend still works on for someone: waiting callers plus aborted
  requests whose samples have not come back (backends without abort). It returns to 0 when all is done.
- If the backend's loop raises, every waiting caller gets a ServiceError, the service reports itself
  unhealthy, and later submissions fail at once.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from evalkit.core.errors import EvalkitError
from evalkit.core.types import Backend, Completion, GenerationRequest

_CLOSE = object()
Listener = Callable[[Completion | None], None]  # a finished sample, or None once the ticket is done


class ServiceError(RuntimeError):
    """The generation loop failed or the service is closed."""


class RequestRejected(ServiceError):
    """The backend refused this one request (e.g. prompt + max tokens beyond its context)."""


class RequestAborted(ServiceError):
    """The request was aborted (its caller went away or stopped waiting)."""


@dataclass(frozen=True)
class _Abort:
    request_id: str


@dataclass
class Ticket:
    """One submitted request: wait() returns its completions sorted by sample index."""

    request: GenerationRequest  # as the backend sees it (internal request id)
    caller_id: str  # the request id the caller submitted; restored on the completions it gets
    missing: set[int]
    listener: Listener | None = None
    completions: list[Completion] = field(default_factory=list)
    error: str | None = None
    kind: type[ServiceError] = ServiceError
    done: threading.Event = field(default_factory=threading.Event)

    def result(self) -> list[Completion]:
        if self.error is not None:
            raise self.kind(self.error)
        ordered = sorted(self.completions, key=lambda c: c.sample_index)
        return [replace(c, request_id=self.caller_id) for c in ordered]

    def wait(self, timeout: float | None = None) -> list[Completion]:
        if not self.done.wait(timeout):
            raise TimeoutError(f"no answer within {timeout} s")
        return self.result()

    def _finish(self, error: str | None = None, kind: type[ServiceError] = ServiceError) -> None:
        self.error, self.kind = error, kind
        self.done.set()
        if self.listener is not None:
            self.listener(None)


class GenerationService:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._queue: queue.Queue[Any] = queue.Queue()
        self._tickets: dict[str, Ticket] = {}
        self._orphans: dict[str, set[int]] = {}  # aborted, still held by a backend without abort()
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._failure: str | None = None
        self._closed = False
        self.steps = 0  # backend.step() calls so far (push mode): aborts are measured in steps
        self._live: set[str] = set()  # push mode, loop thread only: ids the backend holds unfinished work of
        self._thread = threading.Thread(target=self._loop, name="generation-service", daemon=True)
        self._thread.start()

    # ---- callers ----------------------------------------------------------------------------------

    def submit(self, request: GenerationRequest, listener: Listener | None = None) -> Ticket:
        """Queue a request; `listener` (called from the loop thread) gets each sample as it finishes."""
        with self._lock:
            if self._failure is not None:
                raise ServiceError(f"the generation loop has stopped: {self._failure}")
            if self._closed:
                raise ServiceError("the service is closed")
            internal = replace(request, request_id=f"srv-{next(self._ids)}")
            ticket = Ticket(internal, request.request_id, set(internal.sample_indices), listener)
            self._tickets[internal.request_id] = ticket
        self._queue.put(internal)
        return ticket

    def generate(self, request: GenerationRequest, timeout: float | None = None) -> list[Completion]:
        """Submit and wait; on timeout the request is aborted and TimeoutError raised."""
        ticket = self.submit(request)
        try:
            return ticket.wait(timeout)
        except TimeoutError:
            self.abort(ticket)
            raise

    @property
    def can_abort(self) -> bool:
        """True when an abort frees the backend's work at once (push mode + backend.abort)."""
        return self.push_mode and callable(getattr(self.backend, "abort", None))

    def abort(self, ticket: Ticket, reason: str = "the request was aborted") -> None:
        """Stop one request: its caller gets RequestAborted now; its samples leave the backend within a
        step when the backend can abort, else they are dropped when they finish. Idempotent."""
        request_id = ticket.request.request_id
        with self._lock:
            if self._tickets.pop(request_id, None) is None:
                return  # already answered, failed or aborted
            if not self.can_abort and ticket.missing:
                self._orphans[request_id] = set(ticket.missing)
        if self.can_abort:
            self._queue.put(_Abort(request_id))
        ticket._finish(reason, RequestAborted)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._tickets) + len(self._orphans)

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
        """Stop taking requests, let the backend finish what it holds, and join the loop."""
        with self._lock:
            self._closed = True
        self._queue.put(_CLOSE)
        self._thread.join(timeout)

    # ---- the loop -----------------------------------------------------------------------------------

    def _feed(self) -> Iterator[GenerationRequest]:
        while (item := self._queue.get()) is not _CLOSE:
            if isinstance(item, GenerationRequest) and self._wanted(item):
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
            self._orphans.clear()
        for ticket in tickets:
            ticket._finish(f"the generation loop has stopped: {reason}")

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
                    elif isinstance(item, _Abort):
                        if item.request_id in self._live:
                            self._live.discard(item.request_id)
                            backend.abort(item.request_id)
                    elif self._wanted(item):
                        self._add(backend, item)
                    if not backend.has_work() and not closing and self._queue.empty():
                        block = True  # e.g. everything queued was aborted: sleep again
            except queue.Empty:
                pass
            if backend.has_work():
                finished = backend.step()
                self.steps += 1
                for completion in finished:
                    self._deliver(completion)

    def _wanted(self, request: GenerationRequest) -> bool:
        """False for a request aborted before the backend saw it (it is then forgotten entirely)."""
        with self._lock:
            if request.request_id in self._tickets:
                return True
            self._orphans.pop(request.request_id, None)
            return False

    def _add(self, backend: Any, request: GenerationRequest) -> None:
        try:
            backend.add_request(request)
            self._live.add(request.request_id)
        except EvalkitError as err:
            with self._lock:
                ticket = self._tickets.pop(request.request_id, None)
            if ticket is not None:
                ticket._finish(str(err), RequestRejected)

    def _deliver(self, completion: Completion) -> None:
        with self._lock:
            orphan = self._orphans.get(completion.request_id)
            if orphan is not None:
                orphan.discard(completion.sample_index)
                if not orphan:
                    del self._orphans[completion.request_id]
                return
            ticket = self._tickets.get(completion.request_id)
            if ticket is None or completion.sample_index not in ticket.missing:
                return  # not ours or a duplicate: never hand a caller more samples than it asked for
            ticket.missing.discard(completion.sample_index)
            ticket.completions.append(completion)
            finished = not ticket.missing
            if finished:
                del self._tickets[completion.request_id]
                self._live.discard(completion.request_id)
        if ticket.listener is not None:
            ticket.listener(replace(completion, request_id=ticket.caller_id))
        if finished:
            ticket._finish()
