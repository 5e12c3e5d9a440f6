"""Progress while generating (rich bars on a terminal, plain log lines otherwise) and the summary table.

The running Pass@1 shown during generation is a cheap estimate (the last \\boxed{} compared to the gold as
text); the reported number always comes from the real checker after generation.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def last_boxed(text: str) -> str | None:
    """Content of the last brace-matched \\boxed{...} after the last </think>, or None."""
    text = text.rsplit("</think>", 1)[-1]
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for position in range(begin, len(text)):
        char = text[position]
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return text[begin:position]
            depth -= 1
    return None


def quick_correct(text: str, gold: str) -> bool:
    """Exact-text estimate for the live display only (never stored, never reported)."""
    answer = last_boxed(text)
    if answer is None:
        return False
    answer, gold = answer.strip(), str(gold).strip()
    if answer.isdigit() and gold.isdigit():
        return int(answer) == int(gold)
    return answer.replace(" ", "") == gold.replace(" ", "")


class RunProgress:
    """Per task: samples done/total, generated tokens/s, ETA, a running Pass@1 estimate and the retries a
    backend made (a flaky server is visible: `retry(line)` counts one and shows the line, at most one
    every `retry_interval` seconds; it may be called from a backend's worker thread)."""

    def __init__(
        self, console: Console | None = None, plain: bool | None = None, retry_interval: float = 5.0
    ) -> None:
        self.console = console or Console(stderr=True)
        self.plain = (not self.console.is_terminal) if plain is None else plain
        self.retry_interval = retry_interval
        self._bar = None
        self._task_id = None
        self._name, self._total, self._done, self._new = "", 0, 0, 0
        self._tokens, self._correct, self._started = 0, 0, 0.0
        self._next_log = 0
        self._lock = threading.Lock()  # retry() runs in the backend's thread, advance() in the caller's
        self.retries = 0  # this task's retries
        self._last_retry_line, self._unshown = float("-inf"), 0

    def retry(self, line: str) -> None:
        """One retry of the backend (thread-safe): counted in the progress line, `line` shown unless
        another was shown less than `retry_interval` seconds ago."""
        with self._lock:
            self.retries += 1
            now = time.monotonic()
            show = now - self._last_retry_line >= self.retry_interval
            unshown, self._unshown = (self._unshown, 0) if show else (0, self._unshown + 1)
            if show:
                self._last_retry_line = now
            if self._bar is not None:
                self._bar.update(self._task_id, retries=self._retries_text())
        if show:
            more = f" (+{unshown} more retries not shown)" if unshown else ""
            self.note(line + more)

    def _retries_text(self) -> str:
        return f", {self.retries} retries" if self.retries else ""

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False, markup=False, soft_wrap=True)

    def start_task(self, name: str, total: int, done: int) -> None:
        self._name, self._total, self._done, self._new = name, total, done, 0
        self._tokens, self._correct, self._started = 0, 0, time.perf_counter()
        self._next_log = done
        with self._lock:
            self.retries, self._unshown = 0, 0
        if done:
            self.note(f"{name}: resuming, {done}/{total} samples already stored")
        if self.plain:
            self.note(f"{name}: generating {total - done} samples")
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} tok/s"),
            TextColumn("Pass@1~{task.fields[pass1]}{task.fields[retries]}"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._bar.start()
        self._task_id = self._bar.add_task(name, total=total, completed=done, rate="-", pass1="-", retries="")

    def _rates(self) -> tuple[str, str]:
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        rate = f"{self._tokens / elapsed:,.0f}"
        pass1 = f"{100 * self._correct / self._new:.1f}" if self._new else "-"
        return rate, pass1

    def advance(self, generated_tokens: int, looks_correct: bool) -> None:
        self._done += 1
        self._new += 1
        self._tokens += int(generated_tokens)
        self._correct += int(looks_correct)
        rate, pass1 = self._rates()
        with self._lock:
            retries = self._retries_text()
        if self._bar is not None:
            self._bar.update(self._task_id, advance=1, rate=rate, pass1=pass1, retries=retries)
        elif self._done >= self._next_log or self._done == self._total:
            elapsed = time.perf_counter() - self._started
            remaining = self._total - self._done
            eta = elapsed / self._new * remaining
            self.note(
                f"{self._name}: {self._done}/{self._total} samples, {rate} tok/s, "
                f"Pass@1~{pass1} (estimate), ETA {eta:,.0f}s{retries}"
            )
            self._next_log = self._done + max(1, self._total // 20)

    def finish_task(self) -> None:
        with self._lock:
            bar, self._bar = self._bar, None
            retries = self.retries
        if bar is not None:
            bar.stop()
        if retries:
            self.note(f"{self._name}: {retries} retries against a faulty server or connection")


def summary_table(rows: list[tuple[str, dict[str, Any]]]) -> Table:
    """One row per (label, results.json dict)."""
    table = Table(title="evalkit results")
    # "official": Pass@1 under the official judgement; "in thinking": answers read inside the thinking
    columns = ("task", "Pass@1 ± stderr", "95% CI", "official", "samples", "truncated", "no answer",
               "in thinking", "status")  # fmt: skip
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column not in ("task", "status"))
    table.add_column("run_id", no_wrap=True)
    for folder, results in rows:
        m = results["metrics"]
        lo, hi = m.get("ci95", [float("nan"), float("nan")])
        stored = sum(p.get("samples", 0) for p in m.get("per_problem", []))
        status = (
            "final"
            if results.get("final")
            else f"[bold red]INCOMPLETE[/] ({m.get('missing_samples')} missing)"
        )
        scoring = (results.get("provenance") or {}).get("scoring") or {}
        mode = scoring.get("mode", "evalkit")
        if mode != "evalkit":
            status += f" ({mode} judgement)"
        if (scoring.get("options") or {}).get("strict_thinking"):
            status += " (strict thinking)"
        official = m.get("official")  # None: choice tasks, folders scored before it was stored
        in_thinking = m.get("answer_in_thinking_rate")
        table.add_row(
            m["task"],
            f"{m['pass_at_1']:.2f} ± {m['stderr']:.2f}",
            f"[{lo:.2f}, {hi:.2f}]",
            f"{official['pass_at_1']:.2f}" if official else "-",
            f"{stored}/{m['num_problems'] * m['n']}",
            f"{m.get('truncation_rate', 0.0):.1f}%",
            f"{m.get('no_answer_rate', 0.0):.1f}%",
            f"{in_thinking:.1f}%" if in_thinking is not None else "-",
            status,
            Path(folder).name,
        )
    return table


def print_summary(rows: list[tuple[str, dict[str, Any]]], console: Console | None = None) -> None:
    if console is None:
        console = Console(file=sys.stdout)
        if not console.is_terminal:  # logs and pipes: wide enough that no cell wraps
            console = Console(file=sys.stdout, width=max(console.width, 150))
    console.print(summary_table(rows))
    for folder, _ in rows:
        console.print(f"results: {folder}", highlight=False, soft_wrap=True)
