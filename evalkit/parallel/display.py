"""The one progress line of a split run: samples stored / total, tokens/s, ETA and each shard's state.

On a terminal it is one live line (rich); in a log, a line every ~5% of the samples and at every state
change. Events (a worker restarted, a shard done) are printed above it as lines of their own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console
from rich.live import Live
from rich.text import Text

from evalkit.parallel.watch import StoredSamples

_REDRAW_SECONDS = 0.25


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class SplitProgress:
    """Draws `line()` for a StoredSamples and the shards' states (index 1..N)."""

    def __init__(self, name: str, console: Console | None = None, plain: bool | None = None) -> None:
        self.name = name
        self.console = console or Console(stderr=True)
        self.plain = (not self.console.is_terminal) if plain is None else plain
        self._live: Live | None = None
        self._last_draw = 0.0
        self._next_log = 0
        self._last_states: tuple[str, ...] = ()

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False, soft_wrap=True, markup=False)

    def line(self, stored: StoredSamples, states: Sequence[str]) -> str:
        shards = " | ".join(
            f"{i}/{stored.count} {state} {stored.done[i]}/{stored.totals[i]}"
            for i, state in enumerate(states, start=1)
        )
        return (
            f"{self.name}: {stored.stored}/{stored.total} samples, {stored.rate():,.0f} tok/s, "
            f"ETA {_duration(stored.eta_seconds())} | {shards}"
        )

    def update(self, stored: StoredSamples, states: Sequence[str], force: bool = False) -> None:
        now = time.perf_counter()
        if self.plain:
            changed = tuple(states) != self._last_states
            if force or changed or stored.stored >= self._next_log:
                self.note(self.line(stored, states))
                self._next_log = stored.stored + max(1, stored.total // 20)
                self._last_states = tuple(states)
            return
        if not force and now - self._last_draw < _REDRAW_SECONDS:
            return
        self._last_draw = now
        text = Text(self.line(stored, states), no_wrap=True, overflow="ellipsis")
        if self._live is None:
            self._live = Live(text, console=self.console, auto_refresh=False, transient=False)
            self._live.start()
        self._live.update(text, refresh=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
