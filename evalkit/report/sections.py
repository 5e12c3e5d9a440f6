"""What a report says about one run, as plain (header, rows) text tables shared by HTML and markdown."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from evalkit.report.loading import RunRecord
from evalkit.report.plots import PlotFiles

Table = tuple[list[str], list[list[str]]]


@dataclass(frozen=True)
class RunSection:
    run: RunRecord
    samples: list[dict[str, Any]]
    plots: list[PlotFiles] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.run.model} · {self.run.task} · {self.run.short_id}"

    @property
    def anchor(self) -> str:
        return f"run-{self.run.run_id}"

    @property
    def status(self) -> str:
        if self.run.metrics is None:
            return "incomplete: not scored (no results.json metrics)"
        if not self.run.complete:
            missing = self.run.metrics.get("missing_samples", 0)
            final = "" if self.run.final else ", not final"
            return f"incomplete ({missing} samples missing{final}); not a result"
        return "final"


def _pct(value: Any, decimals: int = 1) -> str:
    return "" if value is None else f"{float(value):.{decimals}f}"


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return "" if value is None else str(value)


def config_table(run: RunRecord) -> Table:
    rows = [["run_id", run.run_id], ["folder", str(run.path)], ["created", _text(run.created)]]
    rows += [[key, _text(value)] for key, value in run.config.items()]
    return ["setting", "value"], rows


def _flatten(data: dict[str, Any], prefix: str = "", depth: int = 3) -> list[list[str]]:
    rows = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and depth > 1:
            rows += _flatten(value, f"{name}.", depth - 1)
        else:
            rows.append([name, _text(value)])
    return rows


def provenance_table(run: RunRecord) -> Table:
    """Nested provenance (software.torch, machine.device...) as dotted keys, one per row."""
    return ["provenance", "value"], _flatten(run.provenance)


def metrics_table(run: RunRecord) -> Table:
    m = run.metrics or {}
    tokens = m.get("tokens") or {}
    ci = m.get("ci95") or [None, None]
    official = m.get("official") if isinstance(m.get("official"), dict) else None
    rows = [
        ["Pass@1 (%)", _pct(m.get("pass_at_1"), 2)],
        ["standard error (%)", _pct(m.get("stderr"), 2)],
        ["95% CI (%)", f"[{_pct(ci[0], 2)}, {_pct(ci[1], 2)}]" if ci[0] is not None else ""],
        ["official Pass@1 (%) ± stderr", _official_text(official, m)],
        ["judgements differ (samples)", _text(official.get("disagreements")) if official else ""],
        ["samples per problem (n)", _text(m.get("n", run.config.get("n")))],
        ["problems", _text(m.get("num_problems"))],
        ["complete", _text(m.get("complete", False))],
        ["missing samples", _text(m.get("missing_samples"))],
        ["truncation rate (%)", _pct(m.get("truncation_rate"), 2)],
        ["no-answer rate (%)", _pct(m.get("no_answer_rate"), 2)],
        ["answer-in-thinking rate (%)", _pct(m.get("answer_in_thinking_rate"), 2)],
        ["checker timeouts", _text(m.get("timeouts"))],
        ["tokens mean", _pct(tokens.get("mean"), 1)],
        ["tokens median", _pct(tokens.get("median"), 1)],
        ["tokens p95", _pct(tokens.get("p95"), 1)],
        ["tokens max", _text(tokens.get("max"))],
    ]
    return ["metric", "value"], rows


def _official_text(official: dict[str, Any] | None, metrics: dict[str, Any]) -> str:
    if official is None:
        return "none stored (multiple choice, or scored before it was: evalkit score fills it in)"
    return f"{_pct(official.get('pass_at_1'), 2)} ± {_pct(official.get('stderr'), 2)}"


DIFFERENCES_SHOWN = 50  # samples listed where the two judgements differ; the rest are counted
TAIL_CHARS = 300  # of each listed response: where the answer is


def differences_table(section: RunSection, limit: int = DIFFERENCES_SHOWN) -> tuple[Table, int]:
    """The samples our judgement and the official one judge differently (first `limit`, in problem
    order), each with its gold, both sides' verdict, extraction and reason, and the response's last
    `TAIL_CHARS` characters; and how many more there are. Cells are plain text (renderers escape)."""
    differ = [
        s for s in section.samples if s.get("official") is not None and s.get("correct") is not None
        and bool(s["official"]) != bool(s["correct"])
    ]  # fmt: skip
    header = ["problem", "sample", "gold", "evalkit", "official", f"response (last {TAIL_CHARS} chars)"]
    rows = [
        [
            str(s["problem_id"]),
            str(s["sample_index"]),
            _text(s.get("gold")),
            _side(s["correct"], s.get("extracted"), s.get("reason")),
            _side(s["official"], s.get("official_extracted"), s.get("official_reason")),
            ""
            if s.get("text") is None
            else ("…" if len(s["text"]) > TAIL_CHARS else "") + s["text"][-TAIL_CHARS:],
        ]
        for s in differ[:limit]
    ]
    return (header, rows), max(0, len(differ) - limit)


def _side(correct: bool, extracted: Any, reason: Any) -> str:
    verdict = "✓" if correct else "✗"
    answer = "no answer" if extracted is None else _text(extracted)
    return f"{verdict} {answer} ({_text(reason)})"


def has_official(section: RunSection) -> bool:
    return any(s.get("official") is not None for s in section.samples)


def pass_at_k_table(run: RunRecord) -> Table:
    m = run.metrics or {}
    pass_k, maj_k = m.get("pass_at_k") or {}, m.get("maj_at_k") or {}
    ks = sorted({int(k) for k in (*pass_k, *maj_k)})
    return ["k", "pass@k (%)", "maj@k (%)"], [
        [str(k), _pct(pass_k.get(str(k)), 2), _pct(maj_k.get(str(k)), 2)] for k in ks
    ]


def breakdown_tables(run: RunRecord) -> list[tuple[str, Table]]:
    """One table per non-empty breakdown (subject, level, domain)."""
    tables = []
    for kind, groups in ((run.metrics or {}).get("breakdown") or {}).items():
        if not groups:
            continue
        rows = [
            [str(name), _pct(g.get("pass_at_1"), 2), _text(g.get("num_problems"))]
            for name, g in sorted(groups.items())
        ]
        tables.append((kind, ([kind, "Pass@1 (%)", "problems"], rows)))
    return tables


def golds_by_problem(samples: list[dict[str, Any]]) -> dict[str, str]:
    golds: dict[str, str] = {}
    for s in samples:
        if s.get("gold") is not None:
            golds.setdefault(s["problem_id"], str(s["gold"]))
    return golds


def per_problem_table(section: RunSection) -> Table:
    golds = golds_by_problem(section.samples)
    header = ["problem", "samples", "correct", "accuracy (%)", "mean tokens", "majority answer", "gold"]
    rows = [
        [
            str(p.get("id")),
            _text(p.get("samples")),
            _text(p.get("correct")),
            _pct(100 * float(p.get("accuracy") or 0.0), 1),
            _pct(p.get("mean_tokens"), 0),
            _text(p.get("majority_answer")),
            golds.get(str(p.get("id")), ""),
        ]
        for p in (section.run.metrics or {}).get("per_problem") or []
    ]
    return header, rows


def problem_accuracies(section: RunSection) -> dict[str, float]:
    """Problem id -> accuracy 0..1, from the metrics when scored, else from scores.jsonl."""
    per_problem = (section.run.metrics or {}).get("per_problem")
    if per_problem:
        return {str(p["id"]): float(p.get("accuracy") or 0.0) for p in per_problem}
    totals: dict[str, list[int]] = {}
    for s in section.samples:
        if s.get("correct") is not None:
            t = totals.setdefault(str(s["problem_id"]), [0, 0])
            t[0] += bool(s["correct"])
            t[1] += 1
    return {pid: ok / count for pid, (ok, count) in totals.items()}


def clip_text(text: str | None, max_chars: int) -> tuple[str, int]:
    """Head and tail of a long completion (the tail holds the answer); returns (text, chars omitted)."""
    text = text or ""
    if max_chars <= 0 or len(text) <= max_chars:
        return text, 0
    head = max_chars // 4
    tail = max_chars - head
    omitted = len(text) - head - tail
    return (
        f"{text[:head]}\n\n[... {omitted} characters omitted; full text in completions.jsonl ...]\n\n{text[-tail:]}",
        omitted,
    )
