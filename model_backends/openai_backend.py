"""`openai` backend: any OpenAI-compatible endpoint (`evalkit serve`, vLLM's server, hosted APIs).

- `--base-url` (options.base_url, e.g. http://127.0.0.1:8000/v1), `--model` = the served model name
  (default: the first one /models lists); API key from `OPENAI_API_KEY` or `EVALKIT_API_KEY` (optional).
- options.extra: `api` ("chat" | "completions", default chat; completions needs pre-rendered prompt_text),
  `concurrency` (requests in flight, default 32), `max_tries` (per sample, default 12), `backoff` (first
  retry delay in seconds, default 0.5; doubles each try, with jitter, capped by `max_backoff`, default
  20), `timeout` (seconds per HTTP request, default 600), `max_consecutive_failures` (default 10).
- Every sample is its own HTTP request with `n=1` and that sample's `seed`: servers that reject n > 1 work,
  and a resumed run regenerates exactly the missing samples with their own seeds.

Faults (see retry.py for the classification): 408/409/425/429 (honouring Retry-After) and 5xx answers,
timeouts, dropped connections and 2xx answers whose body is cut off or not the expected JSON are
retried with backoff. A sample that still fails after `max_tries` does not stop the others: generate()
yields every completion it can, then raises ONE BackendError naming the failed samples, so the runner
(which stores each completion as it arrives) keeps everything and a re-run asks only for those. Answers
that no retry can fix end the run at once: 401/403 (key), 404 (URL or model name), and
`max_consecutive_failures` samples failing in a row with no success between (the server is down).
Other 4xx answers fail their own sample without a retry.

Retries are visible: `backend.retries` counts them, and `backend.on_retry(message)` is called (from the
backend's worker thread) with one line per retry; by default those lines go to stderr, at most one every
few seconds. A progress display replaces `on_retry` or reads `retries`.

Each Completion's `extra` holds the response's id, model, usage, finish_reason and system_fingerprint,
the number of tries and `request_hash` (sha256 of the JSON body sent): never the body itself, which holds
the prompt (a private task's question must not reach the completions file).

generate() runs an asyncio loop (httpx.AsyncClient) in a background thread and yields completions from a
queue as they finish, in completion order.
"""

from __future__ import annotations

import asyncio
import math
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

from evalkit.core.errors import BackendError
from evalkit.core.types import Completion, GenerationRequest, stable_hash
from model_backends.openai_retry import (
    Failures,
    RetryNotes,
    SampleFailed,
    backoff_delay,
    classify_status,
    describe_transport_error,
    parse_answer,
    retry_after_seconds,
)
from model_backends.registry import BackendOptions

__all__ = ["OpenAIBackend", "create", "retry_after_seconds"]
_DONE = object()


def create(options: BackendOptions) -> OpenAIBackend:
    return OpenAIBackend(options)


def _reap(tasks: set[asyncio.Task]) -> BaseException | None:
    """Drop finished tasks from `tasks`; return the first unexpected failure among them."""
    failure = None
    for task in [t for t in tasks if t.done()]:
        tasks.discard(task)
        if failure is None and not task.cancelled() and task.exception() is not None:
            failure = task.exception()
    return failure


def _option(extra: dict, key: str, default: Any, kind: type, low: float, open_low: bool = False) -> Any:
    """A numeric backend option (`--backend-option KEY=VALUE`), or a one-line BackendError."""
    value = extra.get(key, default)
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if (
        number is None
        or isinstance(value, bool)
        or (kind is int and number != value)
        or not math.isfinite(number)
        or number < low
        or (open_low and number == low)
    ):
        bound = f"> {low:g}" if open_low else f">= {low:g}"
        what = "an integer" if kind is int else "a finite number"
        raise BackendError(f"backend option {key} must be {what} {bound}, got {value!r}")
    return number


class OpenAIBackend:
    name = "openai"

    def __init__(self, options: BackendOptions) -> None:
        if not options.base_url:
            raise BackendError("the openai backend needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        extra = options.extra
        self.base_url = options.base_url.rstrip("/")
        self.api = str(extra.get("api", "chat"))
        if self.api not in ("chat", "completions"):
            raise BackendError(f"unknown api {self.api!r}; use api=chat or api=completions")
        self.concurrency = _option(extra, "concurrency", 32, int, low=1)
        self.max_tries = _option(extra, "max_tries", 12, int, low=1)
        self.max_consecutive_failures = _option(extra, "max_consecutive_failures", 10, int, low=1)
        self.backoff = _option(extra, "backoff", 0.5, float, low=0)
        self.max_backoff = _option(extra, "max_backoff", 20.0, float, low=0)
        self.timeout = _option(extra, "timeout", 600.0, float, low=0, open_low=True)
        key = os.environ.get("OPENAI_API_KEY") or os.environ.get("EVALKIT_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.retries = 0  # retries so far (all samples): a progress line may show it
        self.on_retry = RetryNotes()  # called with one line per retry; replace to show retries elsewhere
        self.model = options.model or self._first_served_model()

    def _first_served_model(self) -> str:
        url = f"{self.base_url}/models"
        try:
            response = httpx.get(url, headers=self.headers, timeout=min(self.timeout, 30.0))
            response.raise_for_status()
            return str(response.json()["data"][0]["id"])
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as err:
            raise BackendError(f"no --model given and cannot list models at {url}: {err}") from err

    def model_info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model,
            "base_url": self.base_url,
            "api": self.api,
            "httpx": httpx.__version__,
            "seeding": "one HTTP request per sample with its seed (server decides whether seeds hold)",
        }

    # ---- request / response -------------------------------------------------------------------------

    def request_body(self, request: GenerationRequest, seed: int) -> dict[str, Any]:
        s = request.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "n": 1,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_new_tokens,
            "seed": seed,
        }
        if s.stop:
            body["stop"] = list(s.stop)
        if self.api == "chat":
            if request.prompt_text is not None:
                raise BackendError(
                    "a pre-rendered prompt_text needs the completions API: set api=completions"
                )
            body["messages"] = [dict(m) for m in request.messages]
        else:
            if request.prompt_text is None:
                raise BackendError("the completions API needs pre-rendered prompts; use api=chat")
            body["prompt"] = request.prompt_text
        return body

    def _completion(
        self, request_id: str, sample_index: int, body: dict, data: dict, tries: int, seconds: float
    ) -> Completion:
        choice = data["choices"][0]  # parse_answer checked the shape
        message = choice.get("message") or {}
        text = message.get("content") if self.api == "chat" else choice.get("text")
        raw_reason = choice.get("finish_reason")
        usage = data.get("usage") or {}
        response = {k: data.get(k) for k in ("id", "model", "usage", "system_fingerprint")}
        response["finish_reason"] = raw_reason
        if self.api == "chat" and message.get("reasoning_content"):
            response["reasoning_content"] = message["reasoning_content"]
        return Completion(
            request_id=request_id,
            sample_index=sample_index,
            text=text or "",
            num_prompt_tokens=int(usage.get("prompt_tokens") or 0),
            num_generated_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason="length" if raw_reason == "length" else "stop",
            seconds=seconds,
            extra={"request_hash": stable_hash(body), "response": response, "tries": tries},
        )

    # ---- async machinery ----------------------------------------------------------------------------

    def _retrying(self, label: str, problem: str, attempt: int, delay: float) -> None:
        self.retries += 1
        if self.on_retry is not None:
            self.on_retry(
                f"openai: {label}: {problem}; try {attempt + 2} of {self.max_tries} in {delay:.1f} s "
                f"({self.retries} retries so far)"
            )

    async def _post(self, client: httpx.AsyncClient, body: dict, label: str) -> tuple[dict, int]:
        """POST with bounded retries; returns (json, tries). SampleFailed when the retries run out or
        the server refuses this sample; BackendError when no request can succeed (key, URL, model)."""
        path = "/chat/completions" if self.api == "chat" else "/completions"
        problem = ""
        for attempt in range(self.max_tries):
            retry_after = None
            try:
                response = await client.post(self.base_url + path, json=body)
                verdict = classify_status(response.status_code)
                if verdict == "ok":
                    return parse_answer(response, self.api), attempt + 1
                snippet = " ".join(response.text[:200].split())
                problem = f"HTTP {response.status_code}: {snippet}"
                if verdict == "fatal":
                    raise BackendError(
                        f"{self.base_url}{path} answered {problem}; check --base-url, --model and the API key"
                    )
                if verdict == "refused":
                    raise SampleFailed(problem, attempt + 1)
                retry_after = retry_after_seconds(response.headers.get("retry-after"))
            except (httpx.TimeoutException, httpx.TransportError) as err:
                problem = describe_transport_error(err, self.timeout)
            except ValueError as err:  # parse_answer: a 2xx whose body is cut off or malformed
                problem = str(err)
            if attempt + 1 < self.max_tries:
                delay = backoff_delay(attempt, retry_after, self.backoff, self.max_backoff)
                self._retrying(label, problem, attempt, delay)
                await asyncio.sleep(delay)
        raise SampleFailed(problem, self.max_tries)

    async def _sample(
        self,
        client: httpx.AsyncClient,
        gate: asyncio.Semaphore,
        request: GenerationRequest,
        k: int,
        out: queue.Queue,
        failures: Failures,
    ) -> None:
        """One sample's HTTP exchange; `gate` was acquired for it by the producer and is released here."""
        sample_index = request.sample_indices[k]
        label = f"{request.request_id} sample {sample_index}"
        try:
            started = time.perf_counter()
            body = self.request_body(request, request.seeds[k])
            data, tries = await self._post(client, body, label)
            seconds = time.perf_counter() - started
            out.put(self._completion(request.request_id, sample_index, body, data, tries, seconds))
            failures.succeeded()
        except SampleFailed as failed:
            failures.failed(label, failed)
        except BackendError as err:
            failures.fatal = failures.fatal or err
        finally:
            gate.release()

    async def _run(
        self, requests: Iterable[GenerationRequest], out: queue.Queue, stop: threading.Event
    ) -> None:
        gate = asyncio.Semaphore(self.concurrency)
        failures = Failures(self.max_consecutive_failures)
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 30.0))
        limits = httpx.Limits(max_connections=self.concurrency)
        iterator = iter(requests)
        unexpected: BaseException | None = None
        async with httpx.AsyncClient(headers=self.headers, timeout=timeout, limits=limits) as client:
            tasks: set[asyncio.Task] = set()
            while unexpected is None and not stop.is_set() and not failures.must_stop:
                request = await asyncio.to_thread(next, iterator, None)  # the iterator may block (serve)
                if request is None:
                    break
                for k in range(request.n):
                    await gate.acquire()  # at most `concurrency` samples exist as tasks at any time
                    if failures.must_stop:
                        gate.release()
                        break
                    tasks.add(asyncio.create_task(self._sample(client, gate, request, k, out, failures)))
                unexpected = _reap(tasks)
            while tasks and unexpected is None and not stop.is_set() and not failures.must_stop:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED, timeout=0.5)
                unexpected = _reap(tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if unexpected is not None:
            raise unexpected
        failures.raise_if_any(self.base_url)

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[Completion]:
        out: queue.Queue = queue.Queue()
        stop = threading.Event()

        def worker() -> None:
            try:
                asyncio.run(self._run(requests, out, stop))
            except BaseException as err:  # handed to the consuming thread, which raises it
                out.put(err)
            out.put(_DONE)

        thread = threading.Thread(target=worker, name="openai-backend", daemon=True)
        thread.start()
        try:
            while (item := out.get()) is not _DONE:
                if isinstance(item, BaseException):
                    if isinstance(item, BackendError):
                        raise item
                    raise BackendError(f"openai backend failed: {type(item).__name__}: {item}") from item
                yield item
        finally:
            stop.set()  # the consumer stopped early or failed: cancel what is in flight
            thread.join(timeout=60)
