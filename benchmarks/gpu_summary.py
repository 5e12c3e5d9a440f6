"""The one-screen summary of benchmarks/gpu_check.sh, built from the part files that exist.

    python benchmarks/gpu_summary.py DIR [DIR...] [--stamp STAMP] [--write PATH]

For each part it takes `gpu-<stamp>-part<N>.json` from the first DIR that has one (the given stamp if it
is there, else the newest), so a part rerun alone is summed up with the earlier parts recorded beside it.
A part without a file (it crashed or hit its timeout before its first save) shows as MISSING, one cut
short as INCOMPLETE with the stage it was in; nothing here raises on a partial or unreadable file.
Standard library only: it must run whatever else failed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

PARTS = {1: "tests", 2: "grid", 3: "baseline"}
NAME = re.compile(r"^gpu-(?P<stamp>\d{8}-\d{6})-part(?P<part>\d)\.json$")
TARGET_LINES = [  # (key, what, how the target reads, as a percentage?)
    ("speedup_paper", "speedup, paper workload", ">= 10x Phi3 generate", False),
    ("roofline_fraction", "copy bandwidth at 64 x 8K", ">= 60% of measured", True),
    ("host_overhead_share", "host overhead at 64 x 8K", "<= 10% of a step", True),
]


def find_parts(dirs: list[Path], stamp: str | None) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for part in PARTS:
        for folder in dirs:
            files = sorted(f for f in folder.glob(f"gpu-*-part{part}.json") if NAME.match(f.name))
            if files:
                exact = [f for f in files if NAME.match(f.name)["stamp"] == stamp]
                found[part] = exact[0] if exact else files[-1]
                break
    return found


def load(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _state(data: dict) -> str:
    if data.get("complete"):
        return "complete"
    where = data.get("running") or data.get("stage") or "?"
    return f"INCOMPLETE (stopped in: {where})"


def part1_line(data: dict) -> tuple[str, bool]:
    s = data.get("summary", {})
    ok = bool(s.get("ok")) and bool(data.get("complete"))
    bad = [t["id"].split("::")[-1] for t in data.get("tests", []) if t.get("outcome") in ("failed", "error")]
    text = f"{'PASS' if ok else 'FAIL'} {s.get('passed', 0)}/{s.get('collected', 0)} passed"
    if s.get("skipped"):
        text += f", {s['skipped']} skipped (CUDA not visible?)"
    if bad:
        text += f", failed: {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''}"
    if s.get("collection_errors"):
        text += f", {s['collection_errors']} collection errors"
    if not data.get("complete"):
        text += f"; {_state(data)}"
    text += f" in {data.get('seconds', '?')} s"
    for test in data.get("tests", []):
        m = test.get("measured", {})
        if "top_p_kernel_ms" in m:
            name = test["id"].split("::")[-1]
            ratio = m["top_p_reference_ms"] / m["top_p_kernel_ms"] if m["top_p_kernel_ms"] else float("nan")
            verdict = "within" if m["top_p_kernel_ms"] <= m["top_p_budget_ms"] else "OVER"
            text += (
                f"\n    {name}: top-p kernel {m['top_p_kernel_ms']} ms/call ({verdict} its"
                f" {m['top_p_budget_ms']} ms budget), reference {m['top_p_reference_ms']} ms ({ratio:.1f}x)"
            )
    return text, ok


def part2_line(data: dict) -> str:
    ev = data.get("evalkit", {})
    checks = ", ".join(f"{k} {v['predicted_over_measured']}" for k, v in ev.get("checks", {}).items())
    text = f"{_state(data)}: {len(ev.get('grid', []))} points, copy {data.get('copy_bandwidth_gb_per_second')} GB/s"
    text += f", predicted/measured {checks}" if checks else ", no check run"
    return text


def part3_line(data: dict) -> str:
    t = data.get("transformer", {})
    parts = [
        f"{n} batch {w.get('batch')} x {len(w.get('grid', []))} contexts"
        for n, w in t.get("workloads", {}).items()
    ]
    compiled = t.get("compiled_check", {})
    if "compiled_over_eager" in compiled:
        parts.append(f"compiled/eager step {compiled['compiled_over_eager']}")
    elif "skipped" in compiled:
        parts.append(f"compiled check skipped ({compiled['skipped']})")
    elif "error" in compiled:
        parts.append(f"compiled check failed: {compiled['error'][:80]}")
    elif compiled.get("running"):
        parts.append("compiled check cut off by the timeout (the eager figures were saved before it)")
    source = data.get("evalkit_from", {})
    if source.get("mismatch") or not source:
        parts.append(f"no evalkit figures: {source.get('mismatch', 'no part 2 JSON given')}")
    else:
        parts.append(f"evalkit from {Path(source['path']).name}")
    return f"{_state(data)}: " + "; ".join(parts)


def target_line(key: str, what: str, goal: str, percent: bool, entry: dict | None, source: str) -> str:
    if entry is None:
        return f"  {what:<27} {goal:<22} {'-':>7}   missing ({source})"
    value = f"{100 * entry['measured']:.1f}%" if percent else f"{entry['measured']:.2f}x"
    gap = f"{100 * entry['gap']:+.1f} pts" if percent else f"{entry['gap']:+.2f}x"
    line = f"  {what:<27} {goal:<22} {value:>7}   {'met' if entry['met'] else 'GAP'} ({gap})"
    if "at" in entry and list(entry["at"]) != [64, 8192]:
        line += f" at {entry['at'][0]}x{entry['at'][1]}"
    if "compiled_estimate" in entry:
        line += f"; eager {entry['eager_measured']}x, compiled ~{entry['compiled_estimate']}x"
    return line


def summarize(dirs: list[Path], stamp: str | None) -> tuple[list[str], bool]:
    paths = find_parts(dirs, stamp)
    data = {n: load(p) for n, p in paths.items()}
    machine = next((d.get("machine") for d in data.values() if d and d.get("machine")), {}) or {}
    versions = ", ".join(
        f"{k} {machine[k]}"
        for k in ("gpu", "cuda", "driver", "torch", "triton", "transformers")
        if machine.get(k)
    )
    lines = [f"== GPU check {stamp or ''} ({versions or 'machine unknown'}) =="]
    ok, p1_ok = True, False
    for part, label in PARTS.items():
        d = data.get(part)
        where = f"  [{paths[part].name}]" if part in paths else ""
        if d is None:
            reason = "unreadable file" if part in paths else "no file: it crashed or timed out before saving"
            lines.append(f"part {part} {label:<9} MISSING ({reason}; see its .log){where}")
            ok = False
            continue
        if part == 1:
            text, p1_ok = part1_line(d)
        else:
            text = part2_line(d) if part == 2 else part3_line(d)
        ok = ok and bool(d.get("complete"))
        lines.append(f"part {part} {label:<9} {text}{where}")
    targets = {**(data.get(2) or {}).get("targets", {}), **(data.get(3) or {}).get("targets", {})}
    lines.append("targets:")
    for key, what, goal, percent in TARGET_LINES:
        source = "part 3 with part 2's predictions" if key == "speedup_paper" else "part 2"
        lines.append(target_line(key, what, goal, percent, targets.get(key), source))
    grid = (data.get(2) or {}).get("evalkit", {}).get("grid", [])
    if grid:
        lines.append("grid (batch x context: ms/step, % of copy bandwidth, % host):")
        cells = [
            f"{r['batch']}x{r['context']}: {r['ms_per_step']:.2f} ms {100 * r['fraction_of_copy_bandwidth']:.0f}% "
            f"{100 * r['host_overhead_share']:.0f}%"
            for r in grid
        ]
        lines += ["  " + " | ".join(cells[i : i + 3]) for i in range(0, len(cells), 3)]
    met = sum(1 for k, *_ in TARGET_LINES if targets.get(k, {}).get("met"))
    lines.append(
        f"verdict: part 1 {'PASS' if p1_ok else 'FAIL'}; targets met {met}/3 ({len(targets)} measured); "
        f"{'all parts complete' if ok else 'some parts missing or incomplete'}"
    )
    return lines, ok and p1_ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "dirs", nargs="+", type=Path, help="folders holding gpu-<stamp>-part<N>.json, first preferred"
    )
    p.add_argument("--stamp", help="prefer this run's files")
    p.add_argument("--write", type=Path, help="also write the summary here")
    args = p.parse_args(argv)
    lines, _ = summarize(args.dirs, args.stamp)
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.write:
        tmp = args.write.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
