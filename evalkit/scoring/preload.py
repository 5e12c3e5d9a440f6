"""Imported once by the scoring pool's forkserver (pool.py): sympy and math-verify imported, and the
LaTeX parser and both judgements' extraction patterns built, before any worker is forked, so every
worker (the first of a run and each replacement of a killed one) starts warm instead of spending half
a second building them itself."""

from evalkit.scoring.judge import VerifyJob, run_job

WARMUP = (
    VerifyJob("\\frac{1}{2}", "0.5x", "math", "evalkit", "0.5x"),
    VerifyJob("\\frac{1}{2}", "so it is $\\boxed{\\frac{1}{2}}$", "math", "lighteval", None),
)

for _job in WARMUP:
    run_job(_job)
