"""Fault handling of the openai backend: which answers are retried, how long to wait, how faults are
described (in words, never by an internal class name), and the failed samples of one generate() call."""

from __future__ import annotations

import email.utils
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from evalkit.core.errors import BackendError

RETRY_STATUS = {408, 409, 425, 429}  # plus every 5xx
FATAL_STATUS = {401, 403, 404}  # wrong key, URL or model: no request of this run can succeed
Verdict = Literal["ok", "retry", "fatal", "refused"]


def classify_status(status: int) -> Verdict:
    """ok: parse the answer; retry: a passing fault; fatal: stop the run; refused: fail this sample."""
    if 200 <= status < 300:
        return "ok"
    if status in RETRY_STATUS or status >= 500:
        return "retry"
    if status in FATAL_STATUS or status < 400:  # (a 3xx: httpx follows no redirects, the URL is wrong)
        return "fatal"
    return "refused"


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, retry_after: float | None, backoff: float, max_backoff: float) -> float:
    """Seconds before try `attempt + 2`: the server's Retry-After when it gave one, else exponential
    backoff with jitter (retrying clients don't move in lockstep); both capped by `max_backoff`."""
    if retry_after is not None:
        return min(retry_after, max_backoff)
    exponential = min(max_backoff, backoff * 2**attempt)
    return exponential * random.uniform(0.5, 1.0)


def describe_transport_error(err: Exception, timeout: float) -> str:
    detail = str(err).strip()
    if isinstance(err, httpx.ConnectTimeout):
        return f"could not connect within {min(timeout, 30.0):g} s"
    if isinstance(err, httpx.TimeoutException):
        return f"no answer within the {timeout:g} s timeout"
    if isinstance(err, httpx.ConnectError):
        return f"cannot connect ({detail or 'refused'})"
    if isinstance(err, httpx.RemoteProtocolError):
        return f"the connection dropped ({detail or 'no answer'})"
    return f"network error ({detail or 'connection broken'})"


def parse_answer(response: httpx.Response, api: str) -> dict[str, Any]:
    """The JSON of a 2xx answer with a usable first choice; ValueError (retried) for a body that is cut
    off, not JSON, or not a completion."""
    try:
        data = response.json()
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(
            f"HTTP {response.status_code} with a body that is not JSON ({len(response.content)} bytes: {err})"
        ) from err
    choices = data.get("choices") if isinstance(data, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    if api == "chat":
        usable = isinstance(choice, dict) and isinstance(choice.get("message"), dict)
        usable = usable and isinstance(choice["message"].get("content"), str | None)
    else:
        usable = isinstance(choice, dict) and isinstance(choice.get("text"), str)
    if not usable:
        what = "choices[0].message" if api == "chat" else "choices[0].text"
        raise ValueError(f"HTTP {response.status_code} JSON without {what}")
    return data


class SampleFailed(Exception):
    """One sample could not be generated (retries exhausted, or refused by the server)."""

    def __init__(self, problem: str, tries: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.tries = tries


@dataclass
class Failures:
    """The failed samples of one generate() call, and whether the run must stop now."""

    max_consecutive: int
    samples: list[tuple[str, SampleFailed]] = field(default_factory=list)
    in_a_row: int = 0
    successes: int = 0
    fatal: BackendError | None = None

    def succeeded(self) -> None:
        self.in_a_row = 0
        self.successes += 1

    def failed(self, label: str, failure: SampleFailed) -> None:
        self.samples.append((label, failure))
        self.in_a_row += 1

    @property
    def server_down(self) -> bool:
        return self.in_a_row >= self.max_consecutive

    @property
    def must_stop(self) -> bool:
        return self.fatal is not None or self.server_down

    def raise_if_any(self, base_url: str) -> None:
        if self.fatal is not None:
            raise self.fatal
        if not self.samples:
            return
        shown = 8
        names = ", ".join(label for label, _ in self.samples[:shown])
        if len(self.samples) > shown:
            names += f" and {len(self.samples) - shown} more"
        last = self.samples[-1][1]
        if self.server_down:
            stopped = f"; stopped early after {self.in_a_row} samples in a row failed (is the server down?)"
        else:
            stopped = f"; the {self.successes} other samples were returned" if self.successes else ""

        raise BackendError(
            f"{len(self.samples)} sample(s) failed at {base_url}: {names}; last error after "
            f"{last.tries} tr{'y' if last.tries == 1 else 'ies'}: {last.problem}{stopped}"
        )


class RetryNotes:
    """The default `on_retry`: retry lines on stderr, at most one every `interval` seconds (a flaky
    server must be visible without flooding the terminal)."""

    def __init__(self, interval: float = 5.0, stream: Any = None) -> None:
        self.interval = interval
        self.stream = stream
        self._last = float("-inf")
        self._quiet = 0

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._quiet += 1
            return
        more = f" (+{self._quiet} more retries not shown)" if self._quiet else ""
        print(message + more, file=self.stream or sys.stderr, flush=True)
        self._last, self._quiet = now, 0
