"""SambaY ops: one module per op, each with `op_ref` (pure PyTorch) and a dispatcher `op(..., ops=Ops)`.

Keep this file free of `from .x import x` re-exports: the layers reach the modules as
`ops.causal_conv1d` etc. and a same-named function here would shadow the module. Importing the ops
sets nothing in the environment (see dispatch.FP_FUSION for the one kernel option they need).
"""
