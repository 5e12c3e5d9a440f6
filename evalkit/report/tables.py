"""Render a Leaderboard (and small key/value tables) as markdown, CSV, HTML or LaTeX.

All formats show the same numbers: cell text comes from one formatter with per-format marks
(the out-of-CI marker and the incomplete marker), and CSV writes the numbers behind those cells.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from evalkit.core.errors import EvalkitError
from evalkit.report.leaderboard import Cell, Leaderboard, Row, leaderboard_frame

FORMATS = ("md", "csv", "html", "latex")
OURS_DECIMALS = 1  # our CIs are several points wide; more digits would be noise
PUBLISHED_DECIMALS = 2  # as printed on the model card


@dataclass(frozen=True)
class Marks:
    outside_ci: str
    incomplete: str
    unscored: str
    best: str = " ★"  # --significance: the best of ours on the task
    tied: str = " ≈"  # not significantly different from that best
    below: str = " ▼"  # significantly below it


MARKS = {
    "md": Marks(outside_ci=" †", incomplete=" *incomplete*", unscored="*incomplete: not scored*"),
    "html": Marks(outside_ci=" †", incomplete=" (incomplete)", unscored="(incomplete: not scored)"),
    "latex": Marks(
        outside_ci=r"$^\dagger$",
        incomplete=r" \emph{incomplete}",
        unscored=r"\emph{incomplete: not scored}",
        best=r" $\star$",
        tied=r" $\approx$",
        below=r" $\downarrow$",
    ),
}

_CELLS = "Cells: Pass@1 in percent [95% bootstrap CI] n=samples per problem."
_JUDGEMENT = {
    "evalkit": "",
    "official": (
        "Our cells use the official judgement (lighteval 0.10's math_pass_at_1, stored beside evalkit's "
        "verdicts); tasks without one (multiple choice, folders scored before it was stored) show none."
    ),
    "both": (
        "Beside each task: the official judgement's Pass@1 of the same samples (lighteval 0.10 "
        "math_pass_at_1; '-' where there is none) and official minus ours."
    ),
}
_PUBLISHED = (
    "Published rows are copied from the reference file ({title}); Δ = ours minus published.",
    "† the published value lies outside our 95% CI.",
)
_INCOMPLETE = "incomplete: samples are missing or the run is not final; never a result."
_SIGNIFICANCE = (
    "★ the best of our runs on this task; ≈ not significantly different from it, ▼ significantly below it "
    "(two-sided paired permutation test over problems, p < 0.05, each run against the best, no correction "
    "for multiple comparisons); unmarked cells of ours were not compared (not final, or over other problems)."
)
_MEAN = "Mean: over the row's final or published cells (rows covering different tasks are not comparable)."


def legend(board: Leaderboard) -> tuple[str, ...]:
    """The notes under a table: only the ones that apply to it."""
    lines = [_CELLS] + ([_JUDGEMENT[board.judgement]] if _JUDGEMENT.get(board.judgement) else [])
    if any(row.source == "published" for row in board.rows) or board.delta_tasks:
        title = board.reference.title if board.reference else ""
        lines += [line.format(title=title) for line in _PUBLISHED]
    if any(c.status in ("incomplete", "unscored") for row in board.rows for c in row.cells.values()):
        lines.append(_INCOMPLETE)
    if any(c.vs_best for row in board.rows for c in row.cells.values()):
        lines.append(_SIGNIFICANCE)
    return (*lines, _MEAN)


def format_cell(cell: Cell | None, marks: Marks) -> str:
    if cell is None:
        return ""
    if cell.status == "unscored":
        return marks.unscored
    if cell.status == "no_official":
        return "no official judgement"
    if cell.status == "published":
        n = f" n={cell.n}" if cell.n else ""
        return f"{cell.pass_at_1:.{PUBLISHED_DECIMALS}f}{n}"
    d = OURS_DECIMALS
    text = f"{cell.pass_at_1:.{d}f} [{cell.ci[0]:.{d}f}, {cell.ci[1]:.{d}f}] n={cell.n}"
    if cell.vs_best:
        text += getattr(marks, cell.vs_best)
    return text + (marks.incomplete if cell.status == "incomplete" else "")


def format_delta(cell: Cell | None, marks: Marks) -> str:
    if cell is None or cell.delta is None:
        return ""
    return f"{cell.delta:+.{OURS_DECIMALS}f}" + (marks.outside_ci if cell.outside_ci else "")


def display_rows(board: Leaderboard, fmt: str) -> tuple[list[str], list[list[str]]]:
    """Header and body of the table as text, in the marks of `fmt` (not yet escaped)."""
    marks = MARKS[fmt]
    header = ["Model", "Source", "Config"]
    for task in board.tasks:
        header.append(task)
        if board.judgement == "both":
            header += [f"{task} official", f"{task} official−ours"]
        if task in board.delta_tasks:
            header.append(f"Δ {task}")
    header.append("Mean")
    body = []
    for row in board.rows:
        line = [row.model, row.source, row.config]
        for task in board.tasks:
            cell = row.cells.get(task)
            line.append(format_cell(cell, marks))
            if board.judgement == "both":
                line += _official_columns(cell)
            if task in board.delta_tasks:
                line.append(format_delta(cell, marks))
        line.append(_format_mean(row))
        body.append(line)
    return header, body


def _official_columns(cell: Cell | None) -> list[str]:
    """--judgement both: the official Pass@1 of our cell, and official minus ours."""
    if cell is None or cell.status == "published":
        return ["", ""]
    if cell.official is None or cell.pass_at_1 is None:
        return ["-", ""]
    d = OURS_DECIMALS
    return [f"{cell.official:.{d}f}", f"{cell.official - cell.pass_at_1:+.{d}f}"]


def _format_mean(row: Row) -> str:
    return "" if row.mean is None else f"{row.mean:.{PUBLISHED_DECIMALS}f}"


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    def clean(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(clean(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def html_table(header: list[str], body: list[list[str]], css_class: str = "table") -> str:
    """A table via pandas (escaped here once, so marks that are plain text stay plain text)."""
    import pandas as pd

    frame = pd.DataFrame([[html.escape(str(c)) for c in row] for row in body], columns=header)
    return frame.to_html(index=False, escape=False, classes=css_class, border=0, na_rep="")


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "Δ": r"$\Delta$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def render_leaderboard(board: Leaderboard, fmt: str) -> str:
    """The leaderboard as text in `fmt` (md | csv | html | latex)."""
    if fmt not in FORMATS:
        raise EvalkitError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if fmt == "csv":
        return leaderboard_frame(board).to_csv(index=False)
    if fmt == "md":
        header, body = display_rows(board, "md")
        return markdown_table(header, body) + "\n\n" + "\n".join(f"- {line}" for line in legend(board)) + "\n"
    if fmt == "html":
        from evalkit.report.html import page

        header, body = display_rows(board, "html")
        notes = "".join(f"<li>{html.escape(line)}</li>" for line in legend(board))
        return page("evalkit leaderboard", f"<h1>Leaderboard</h1>{html_table(header, body)}<ul>{notes}</ul>")
    return latex_table(board)


def latex_table(board: Leaderboard) -> str:
    import pandas as pd

    header, body = display_rows(board, "latex")
    # Cells carry their own LaTeX marks, so escape the text around them rather than the whole cell.
    marks = MARKS["latex"]
    keep = (marks.outside_ci, marks.incomplete.strip(), marks.unscored, marks.best, marks.tied, marks.below)

    def escape_cell(text: str) -> str:
        for mark in keep:
            if mark in text:
                head, tail = text.split(mark, 1)
                return latex_escape(head) + mark + latex_escape(tail)
        return latex_escape(text)

    frame = pd.DataFrame(
        [[escape_cell(c) for c in row] for row in body], columns=[latex_escape(h) for h in header]
    )
    tabular = frame.to_latex(index=False, escape=False, column_format="lll" + "r" * (len(header) - 3))
    symbols = {
        "†": marks.outside_ci,
        "★": marks.best.strip(),
        "≈": marks.tied.strip(),
        "▼": marks.below.strip(),
    }
    notes = " ".join(latex_escape(line) for line in legend(board))
    for symbol, latex in symbols.items():
        notes = notes.replace(symbol, latex)
    return tabular + f"% {notes}\n"
