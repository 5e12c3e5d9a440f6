"""Is run A really better than run B? A paired comparison of two runs on the same problems.

stats.py       pure statistics over per-problem counts (stderr, paired bootstrap, permutation test)
load.py        two run folders -> aligned per-problem counts, refusals and warnings
comparison.py  the Comparison every format shows, and its JSON document
render.py      table / md / json / html;  plots.py  the two plots (PNG + SVG)
pool.py        `evalkit pool`: several seeds of one run as one run folder

from evalkit.compare.comparison import compare_runs
from evalkit.compare.render import render
text, plots = render(compare_runs(Path("results/a"), Path("results/b"), seed=0), "md")
"""
