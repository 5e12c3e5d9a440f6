"""Balanced option orders for multiple-choice tasks (GPQA Diamond, choice task files).

Each sample sees its own deterministic permutation of the options, a function of (tag, question id,
sample index, seed) only. The correct option (index 0) sits at letter (sample_index + h(id, seed)) % k,
so over any k consecutive sample indices it lands on each letter exactly once; the incorrect options fill
the other letters in an order hashed from (id, sample index, seed).
"""

from __future__ import annotations

import hashlib
import string

LETTERS = string.ascii_uppercase


def _hash_int(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def balanced_order(tag: str, question_id: str, sample_index: int, seed: int, count: int) -> tuple[int, ...]:
    """order[letter] = original option index (0 = correct) shown at that letter, for `count` options."""
    correct_letter = (sample_index + _hash_int(f"{tag}-correct", question_id, seed)) % count
    order = sorted(
        range(1, count), key=lambda i: _hash_int(f"{tag}-wrong", question_id, sample_index, seed, i)
    )
    order.insert(correct_letter, 0)
    return tuple(order)
