"""Scoring speed and accuracy: evalkit's checker (`score_many`) vs a plain math-verify loop.

    python benchmarks/scoring.py                 # full-suite load (9,424 completions), writes JSON
    python benchmarks/scoring.py --limit 500     # quick run on the first 500 items

Load: a synthetic full suite with the published sample counts, AIME24 64x30 + AIME25 64x30 + MATH-500
8x500 + GPQA Diamond 8x198 = 9,424 completions. Each is 2-30K characters of reasoning built from varied
math-like sentences (inline LaTeX, fractions, equations; no benchmark text), inside <think>...</think>,
then a final answer: correct (in varied spellings), wrong, phrase-only, or cut off inside the thinking.
Golds: AIME/MATH answers from $EVALKIT_DATA_DIR when present (else synthetic); GPQA golds are letters.

Every scoring pass of evalkit also stores the official (lighteval) judgement beside its own verdicts
(`score_both`), which parses each whole math response with math-verify; the added cost is measured as
a second timing, "evalkit + official" (`--no-official` skips it).

Plain loop: `math_verify.verify(math_verify.parse(gold), math_verify.parse(response))` per item, single
process, math-verify's defaults - what a harness gets by calling the library directly.
Accuracy of both on the labelled real outputs ($EVALKIT_DATA_DIR/checker/real_outputs.jsonl) is
reported alongside.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import random
import sys
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evalkit.scoring import CHECKER_VERSION, ScoreItem, score_both, score_many  # noqa: E402

SUITE = (("aime24", 30, 64, "integer"), ("aime25", 30, 64, "integer"), ("math500", 500, 8, "math"),
         ("gpqa_diamond", 198, 8, "choice"))  # fmt: skip

_SENTENCES = (
    "Let $a = {a}$ and $b = {b}$, so $a + b = {s}$.",
    "Then we compute $\\frac{{{a}}}{{{b}}} \\cdot {b} = {a}$, which checks out.",
    "Squaring both sides gives $x^2 = {sq}$, so $x = \\pm {a}$.",
    "Hmm, wait, let me double-check that step before moving on.",
    "By the AM-GM inequality, $\\frac{{x+y}}{{2}} \\ge \\sqrt{{xy}}$ with equality when $x = y$.",
    "The number of ways is $\\binom{{{a}}}{{2}} = {c}$.",
    "Consider the polynomial $p(x) = x^2 - {s}x + {p}$, whose roots are {a} and {b}.",
    "Modulo {b}, we have ${a} \\equiv {m} \\pmod{{{b}}}$.",
    "So the area is $\\frac{{1}}{{2}} \\cdot {a} \\cdot {b} = {h}$.",
    "Alternatively, substituting $y = {b}$ into the first equation yields $x = {a}$.",
    "That contradicts our assumption, so this case is impossible.",
    "Now, the sum of the first {a} odd numbers is ${a}^2 = {sq}$.",
    "We need $\\sin^2\\theta + \\cos^2\\theta = 1$, hence $\\cos\\theta = \\frac{{{b}}}{{{s}}}$.",
    "Let me reconsider: if $n = {a}$, then $2^n = {pw}$.",
    "Therefore the intermediate result is ${h}$, but we are not done yet.",
)


def _filler(rng: random.Random, length: int) -> str:
    parts, size = [], 0
    while size < length:
        a, b = rng.randint(2, 60), rng.randint(2, 30)
        sentence = rng.choice(_SENTENCES).format(
            a=a, b=b, s=a + b, sq=a * a, c=a * (a - 1) // 2, p=a * b, m=a % b, h=a * b / 2, pw=2 ** min(a, 40)
        )
        parts.append(sentence)
        size += len(sentence) + 1
        if rng.random() < 0.15:
            parts.append("\n\n")
    return " ".join(parts)[:length]


def _golds(data_dir: Path | None, name: str, count: int, rng: random.Random) -> list[str]:
    path = data_dir / f"{name}.jsonl" if data_dir else None
    if path and path.is_file():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [str(row["answer"]) for row in rows[:count]]
    if name == "gpqa_diamond":
        return [rng.choice("ABCD") for _ in range(count)]
    if name == "math500":
        pool = [
            "\\frac{14}{3}",
            "2\\sqrt{3}",
            "(1,2]",
            "\\text{Evelyn}",
            "6+2\\sqrt{3}",
            "10",
            "\\frac{\\pi}{2}",
        ]
        return [rng.choice(pool) for _ in range(count)]
    return [str(rng.randint(0, 999)) for _ in range(count)]


def _wrong(gold: str, answer_type: str, rng: random.Random) -> str:
    if answer_type == "choice":
        return rng.choice([c for c in "ABCD" if c != gold])
    if gold.lstrip("-").isdigit():
        return str(int(gold) + rng.choice([-3, -1, 1, 2, 10]))
    return rng.choice([f"{gold}+1", f"2{gold}" if gold[:1].isdigit() else f"-{gold}", "\\frac{1}{2}", "7"])


def _spell(answer: str, answer_type: str, rng: random.Random) -> str:
    """The final answer as a model might write it."""
    if answer_type == "choice":
        return rng.choice([f"\\boxed{{{answer}}}", f"\\boxed{{\\text{{({answer})}}}}", f"Answer: {answer}"])
    if answer_type == "integer" and rng.random() < 0.3:
        answer = rng.choice([answer.zfill(3), f"{answer}^\\circ", f"\\text{{{answer}}}"])
    return rng.choice(
        [f"$\\boxed{{{answer}}}$", f"\\[\\boxed{{{answer}}}\\]", f"The final answer is ${answer}$."]
    )


def build_load(data_dir: Path | None, seed: int = 0) -> list[ScoreItem]:
    items = []
    for name, problems, samples, answer_type in SUITE:
        golds = _golds(data_dir, name, problems, random.Random(f"{seed}-{name}-golds"))
        for p, gold in enumerate(golds):
            for s in range(samples):
                rng = random.Random(f"{seed}-{name}-{p}-{s}")
                thinking = "<think>\n" + _filler(rng, rng.randint(2_000, 30_000))
                roll = rng.random()
                if roll < 0.05:  # cut off inside the thinking (hit max_new_tokens)
                    items.append(ScoreItem(gold, thinking, answer_type))
                    continue
                answer = gold if roll < 0.55 else _wrong(gold, answer_type, rng)
                summary = _filler(rng, rng.randint(100, 600))
                text = f"{thinking}\n</think>\n\n{summary}\n\n{_spell(answer, answer_type, rng)}"
                items.append(ScoreItem(gold, text, answer_type))
    return items


def plain_loop(items: list[ScoreItem]) -> list[bool]:
    from math_verify import parse, verify

    out = []
    for item in items:
        try:
            out.append(bool(verify(parse(f"${item.gold}$"), parse(item.response))))
        except Exception:  # math-verify's own timeout raises from inside parse/verify
            out.append(False)
    return out


def _real_outputs(data_dir: Path | None) -> list[dict]:
    path = data_dir / "checker" / "real_outputs.jsonl" if data_dir else None
    if not path or not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="score only the first N items")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--no-official", action="store_true", help="skip the evalkit + official timing")
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)

    data_env = os.environ.get("EVALKIT_DATA_DIR")
    data_dir = Path(data_env) if data_env and Path(data_env).is_dir() else None
    items = build_load(data_dir)
    if args.limit:
        # an even spread over the suite, not just the first task
        step = max(1, len(items) // args.limit)
        items = items[::step][: args.limit]
    chars = [len(i.response) for i in items]
    print(
        f"load: {len(items)} completions, {min(chars)}-{max(chars)} chars (mean {sum(chars) / len(chars):.0f})"
    )

    t0 = time.perf_counter()
    ours = score_many(items, workers=args.workers, timeout=args.timeout)
    ours_s = time.perf_counter() - t0
    both_s = official = None
    if not args.no_official:
        t0 = time.perf_counter()
        both_ours, official = score_both(items, workers=args.workers, timeout=args.timeout)
        both_s = time.perf_counter() - t0
        assert both_ours == ours, "score_both must give exactly score_many's verdicts"
    t0 = time.perf_counter()
    plain = plain_loop(items)
    plain_s = time.perf_counter() - t0

    agree = sum(o.correct == p for o, p in zip(ours, plain, strict=True))
    by_type = {
        t: f"{sum(o.correct == p for o, p, i in zip(ours, plain, items, strict=True) if i.answer_type == t)}"
        f"/{sum(i.answer_type == t for i in items)}"
        for t in ("integer", "math", "choice")
    }
    reasons = Counter(v.reason for v in ours)

    real = _real_outputs(data_dir)
    real_ours = real_plain = real_official = None
    if real:
        real_items = [ScoreItem(r["gold"], r["response"], "math") for r in real]
        real_ours = sum(
            v.correct == r["expected"]
            for v, r in zip(score_many(real_items, workers=args.workers), real, strict=True)
        )
        real_plain = sum(p == r["expected"] for p, r in zip(plain_loop(real_items), real, strict=True))
        if not args.no_official:
            _, real_judged = score_both(real_items, workers=args.workers)
            real_official = sum(o.correct == r["expected"] for o, r in zip(real_judged, real, strict=True))

    figures = {
        "items": len(items),
        "evalkit_seconds": ours_s,
        "plain_seconds": plain_s,
        "evalkit_items_per_s": len(items) / ours_s,
        "plain_items_per_s": len(items) / plain_s,
        "speedup": plain_s / ours_s,
        "evalkit_plus_official_seconds": both_s,
        "official_added_seconds": both_s - ours_s if both_s is not None else None,
        "speedup_with_official": plain_s / both_s if both_s else None,
        "official_reasons": dict(Counter(o.reason for o in official if o is not None)) if official else None,
        "official_disagreements": (
            sum(o is not None and o.correct != v.correct for o, v in zip(official, ours, strict=True))
            if official
            else None
        ),
        "verdict_agreement": agree,
        "verdict_agreement_by_type": by_type,
        "evalkit_accuracy_of_load": sum(v.correct for v in ours) / len(items),
        "plain_accuracy_of_load": sum(plain) / len(items),
        "evalkit_reasons": dict(reasons),
        "real_outputs_total": len(real),
        "real_outputs_agreement_evalkit": real_ours,
        "real_outputs_agreement_plain": real_plain,
        "real_outputs_agreement_official": real_official,
    }
    print(f"{'checker':<22}{'items/s':>10}{'seconds':>10}")
    print(f"{'evalkit score_many':<22}{figures['evalkit_items_per_s']:>10.1f}{ours_s:>10.1f}")
    if both_s is not None:
        print(f"{'evalkit + official':<22}{len(items) / both_s:>10.1f}{both_s:>10.1f}")
    print(f"{'plain math-verify':<22}{figures['plain_items_per_s']:>10.1f}{plain_s:>10.1f}")
    print(f"speed-up x{figures['speedup']:.1f}; verdicts agree on {agree}/{len(items)} (by type {by_type})")
    print(f"reasons (evalkit): {dict(reasons)}")
    if real:
        print(
            f"real outputs agreement with labels: evalkit {real_ours}/{len(real)}, plain {real_plain}/{len(real)}"
            + (f", official {real_official}/{len(real)}" if real_official is not None else "")
        )

    now = dt.datetime.now(dt.timezone.utc)
    record = {
        "benchmark": "scoring",
        "date": now.isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(), "cpu_affinity": len(os.sched_getaffinity(0))},
        "versions": {"python": platform.python_version(), "sympy": version("sympy"),
                     "math-verify": version("math-verify"), "checker": CHECKER_VERSION},
        "args": {"limit": args.limit, "workers": args.workers, "timeout": args.timeout,
                 "data_dir_found": data_dir is not None, "official": not args.no_official},
        "figures": figures,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = f"-limit{args.limit}" if args.limit else ""
    path = args.out / f"scoring-{now:%Y%m%d-%H%M}{suffix}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
