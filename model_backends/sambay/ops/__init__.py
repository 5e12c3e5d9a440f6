"""SambaY ops: one module per op, each with `op_ref` (pure PyTorch) and a dispatcher name `op`.

Keep this file free of `from .x import x` re-exports: layers.py reaches the modules as
`ops.causal_conv1d` etc. and a same-named function here would shadow the module.
"""

import os

# FMA contraction in the kernels: on, as they were validated (Triton 3.9 warns that the default will
# flip to off in 3.10). Set before any op module imports triton; an explicit user setting wins.
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
