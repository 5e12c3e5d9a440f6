"""Keeping a private task's text off the disk (`Task.private`, e.g. GPQA).

Backends are asked never to put prompt text into `Completion.extra` (they store hashes); this module is
the runner's second line: `redact(extra, PromptText(prompt))` replaces every string of `extra` that
quotes the prompt (shares a run of WINDOW characters with it) by a marker holding that string's sha256,
so a backend that copies what it was given (a replay file written by an older evalkit held whole request
bodies) cannot leak the question either. The sample's text itself is the model's answer and is kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

# A run of 24 characters in common is a quote, not a shared phrase: it is longer than most words and
# template fragments a backend's metadata could hold, and shorter than any option or question worth hiding.
WINDOW = 24
MARKER = "[private prompt text removed; sha256 {}]"


class PromptText:
    """The prompt texts of one sample, indexed by every WINDOW-character run they contain."""

    def __init__(self, texts: Iterable[str], window: int = WINDOW) -> None:
        self.window = window
        self._runs = {text[i : i + window] for text in texts for i in range(len(text) - window + 1)}

    def quoted_in(self, value: str) -> bool:
        """True when `value` shares a run of `window` characters with the prompt."""
        w = self.window
        return any(value[i : i + w] in self._runs for i in range(len(value) - w + 1))


def redact(value: Any, prompt: PromptText) -> Any:
    """`value` (JSON-like: dicts, lists, strings, numbers) with every string that quotes the prompt
    replaced by MARKER and that string's sha256; everything else unchanged."""
    if isinstance(value, str):
        if len(value) >= prompt.window and prompt.quoted_in(value):
            return MARKER.format(hashlib.sha256(value.encode("utf-8")).hexdigest())
        return value
    if isinstance(value, dict):
        return {redact(key, prompt): redact(item, prompt) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, prompt) for item in value]
    return value


def has_long_strings(value: Any, length: int = WINDOW) -> bool:
    """Whether `value` holds any string of at least `length` characters (else nothing can quote a prompt,
    and building a PromptText is not needed)."""
    if isinstance(value, str):
        return len(value) >= length
    if isinstance(value, dict):
        return any(has_long_strings(k, length) or has_long_strings(v, length) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_long_strings(item, length) for item in value)
    return False
