"""`openai` backend: any OpenAI-compatible endpoint (`evalkit serve`, vLLM's server, hosted APIs).

- `--base-url` (options.base_url, e.g. http://127.0.0.1:8000/v1), `--model` = the served model name
  (default: the first one /models lists); API key from `OPENAI_API_KEY` or `EVALKIT_API_KEY` (optional).
- options.extra: `api` ("chat" | "completions", default chat; completions needs pre-rendered prompt_text),
  `concurrency` (requests in flight, default 32), `max_tries` (default 6), `backoff` (first retry delay in
  seconds, default 1.0; doubles each try, capped by `max_backoff`, default 60), `timeout` (seconds per
  HTTP request, default 600).
- Every sample is its own HTTP request with `n=1` and that sample's `seed`: servers that reject n > 1 work,
  and a resumed run regenerates exactly the missing samples with their own seeds.
- 429 (honouring Retry-After), 408, 5xx, timeouts and dropped connections are retried with exponential
  backoff and jitter; after `max_tries` the run stops with a BackendError. Completions yielded before that
  are already stored by the runner, so re-running the same command resumes.
- Each Completion's `extra` holds the request body and the response's id, model, usage, finish_reason and
  system_fingerprint, plus the number of tries.

generate() runs an asyncio loop (httpx.AsyncClient) in a background thread and yields completions from a
queue as they finish, in completion order.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import queue
import random
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

from evalkit.core.errors import BackendError
from evalkit.core.types import Completion, GenerationRequest
from model_backends.registry import BackendOptions

RETRY_STATUS = {408, 409, 425, 429}  # plus every 5xx
_DONE = object()


def create(options: BackendOptions) -> OpenAIBackend:
    return OpenAIBackend(options)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _reap(tasks: set[asyncio.Task]) -> BaseException | None:
    """Drop finished tasks from `tasks`; return the first failure among them."""
    failure = None
    for task in [t for t in tasks if t.done()]:
        tasks.discard(task)
        if failure is None and not task.cancelled() and task.exception() is not None:
            failure = task.exception()
    return failure


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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
        self.concurrency = int(extra.get("concurrency", 32))
        self.max_tries = int(extra.get("max_tries", 6))
        self.backoff = float(extra.get("backoff", 1.0))
        self.max_backoff = float(extra.get("max_backoff", 60.0))
        self.timeout = float(extra.get("timeout", 600.0))
        key = os.environ.get("OPENAI_API_KEY") or os.environ.get("EVALKIT_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.model = options.model or self._first_served_model()

    def _first_served_model(self) -> str:
        url = f"{self.base_url}/models"
        try:
            response = httpx.get(url, headers=self.headers, timeout=min(self.timeout, 30.0))
            response.raise_for_status()
            return str(response.json()["data"][0]["id"])
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as err:
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
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") if self.api == "chat" else choice["text"]
        except (KeyError, IndexError, TypeError, AttributeError) as err:
            raise BackendError(f"{self.base_url}: malformed response without choices[0] text: {err}") from err
        raw_reason = choice.get("finish_reason")
        usage = data.get("usage") or {}
        response = {k: data.get(k) for k in ("id", "model", "usage", "system_fingerprint")}
        response["finish_reason"] = raw_reason
        if self.api == "chat" and choice["message"].get("reasoning_content"):
            response["reasoning_content"] = choice["message"]["reasoning_content"]
        return Completion(
            request_id=request_id,
            sample_index=sample_index,
            text=text or "",
            num_prompt_tokens=int(usage.get("prompt_tokens") or 0),
            num_generated_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason="length" if raw_reason == "length" else "stop",
            seconds=seconds,
            extra={"request": body, "response": response, "tries": tries},
        )

    # ---- async machinery ----------------------------------------------------------------------------

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        exponential = min(self.max_backoff, self.backoff * 2**attempt)
        return exponential * random.uniform(0.5, 1.0)  # jitter: retrying clients don't move in lockstep

    async def _post(self, client: httpx.AsyncClient, body: dict) -> tuple[dict, int]:
        """POST with bounded retries; returns (json, tries)."""
        path = "/chat/completions" if self.api == "chat" else "/completions"
        last = ""
        for attempt in range(self.max_tries):
            try:
                response = await client.post(self.base_url + path, json=body)
                if response.status_code in RETRY_STATUS or response.status_code >= 500:
                    raise _Retryable(
                        f"HTTP {response.status_code}: {response.text[:200]}",
                        retry_after_seconds(response.headers.get("retry-after")),
                    )
                if response.status_code >= 400:
                    raise BackendError(
                        f"{self.base_url}{path} HTTP {response.status_code}: {response.text[:300]}"
                    )
                return response.json(), attempt + 1
            except (_Retryable, httpx.TimeoutException, httpx.TransportError) as err:
                last = f"{type(err).__name__}: {err}"
                if attempt + 1 < self.max_tries:
                    await asyncio.sleep(self._delay(attempt, getattr(err, "retry_after", None)))
            except ValueError as err:  # a 2xx whose body is not JSON
                raise BackendError(f"{self.base_url}{path} answered with invalid JSON: {err}") from err
        raise BackendError(f"{self.base_url}{path} failed after {self.max_tries} tries; last error: {last}")

    async def _sample(
        self, client: httpx.AsyncClient, gate: asyncio.Semaphore, request: GenerationRequest, k: int, out: Any
    ) -> None:
        """One sample's HTTP exchange; `gate` was acquired for it by the producer and is released here."""
        try:
            started = time.perf_counter()
            body = self.request_body(request, request.seeds[k])
            data, tries = await self._post(client, body)
            sample_index = request.sample_indices[k]
            seconds = time.perf_counter() - started
            out.put(self._completion(request.request_id, sample_index, body, data, tries, seconds))
        finally:
            gate.release()

    async def _run(
        self, requests: Iterable[GenerationRequest], out: queue.Queue, stop: threading.Event
    ) -> None:
        gate = asyncio.Semaphore(self.concurrency)
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 30.0))
        limits = httpx.Limits(max_connections=self.concurrency)
        iterator = iter(requests)
        async with httpx.AsyncClient(headers=self.headers, timeout=timeout, limits=limits) as client:
            tasks: set[asyncio.Task] = set()
            failure: BaseException | None = None
            while failure is None and not stop.is_set():
                request = await asyncio.to_thread(next, iterator, None)  # the iterator may block (serve)
                if request is None:
                    break
                for k in range(request.n):
                    await gate.acquire()  # at most `concurrency` samples exist as tasks at any time
                    tasks.add(asyncio.create_task(self._sample(client, gate, request, k, out)))
                failure = _reap(tasks)
            while tasks and failure is None and not stop.is_set():
                await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION, timeout=0.5)
                failure = _reap(tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if failure is not None:
                raise failure

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
