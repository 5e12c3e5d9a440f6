"""Compile a Triton kernel for a real GPU target without a GPU (ahead of time), and read what ptxas says.

The interpreter (TRITON_INTERPRET=1) checks a kernel's arithmetic but not whether it compiles for the
device: block shapes `tl.dot` rejects, unsupported casts, register spills at the real block sizes. Triton
lowers to PTX and ptxas assembles it to a cubin with no driver, so tests compile each kernel for sm_90
(H100/H200) at the block sizes its wrapper picks for the published model, and check ptxas' report.

    info = compile_for_gpu(kernel, {"x_ptr": "*bf16", "slots_ptr": "*i64"}, {"BLOCK": 128})
    info.registers, info.spill_stores, info.shared_bytes

Arguments not named in `pointer_types` or `constexprs` are int32 scalars (sizes and strides). Like the
real launcher with 16-byte-aligned tensors, every pointer is marked divisible by 16 (vector loads and
cp.async pipelining depend on it); `divisible_by_16` adds integer arguments the launch would mark too
(sizes and strides that are multiples of 16), and `hint_strides=True` marks every `stride*` argument
not given as a constexpr: right when the caller passes the strides that are 1 as constexprs (the launcher
turns an argument equal to 1 into a constant) and the rest are multiples of 16, as at the published
shapes. Without the hints the code compiles but is not what runs (no vector loads, no cp.async).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CompiledInfo:
    name: str
    registers: int
    spill_stores: int  # bytes
    spill_loads: int  # bytes
    shared_bytes: int  # static shared memory Triton asked for
    num_warps: int


def _ptxas(arch: int) -> str:
    from triton.backends.nvidia.compiler import get_ptxas

    return get_ptxas(arch).path  # the ptxas Triton itself assembles with for this arch


def compile_for_gpu(
    kernel,
    pointer_types: dict[str, str],
    constexprs: dict[str, object],
    *,
    scalar_types: dict[str, str] | None = None,
    divisible_by_16: tuple[str, ...] = (),
    aligned_pointers: bool = True,
    hint_strides: bool = False,
    arch: int = 90,
    num_warps: int = 4,
    num_stages: int = 3,
) -> CompiledInfo:
    """Compile `kernel` (a @triton.jit function) for sm_`arch`; raise on any compile error."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from model_backends.sambay.ops.dispatch import FP_FUSION

    names = kernel.arg_names
    unknown = (set(pointer_types) | set(constexprs) | set(scalar_types or {}) | set(divisible_by_16)) - set(
        names
    )
    if unknown:
        raise ValueError(f"not arguments of {kernel.__name__}: {sorted(unknown)}")
    signature = {}
    for name in names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name in pointer_types:
            signature[name] = pointer_types[name]
        else:
            signature[name] = (scalar_types or {}).get(name, "i32")
    hinted = set(divisible_by_16) | (set(pointer_types) if aligned_pointers else set())
    if hint_strides:
        hinted |= {n for n in names if n.startswith("stride") and n not in constexprs}
    source = ASTSource(
        fn=kernel,
        signature=signature,
        constexprs={(names.index(n),): v for n, v in constexprs.items()},
        attrs={(names.index(n),): [["tt.divisibility", 16]] for n in hinted},
    )
    # the launch option every wrapper passes (ops/dispatch.py), so the cubin is the one that runs
    options = {"num_warps": num_warps, "num_stages": num_stages, "enable_fp_fusion": FP_FUSION}
    compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32), options=options)
    with tempfile.TemporaryDirectory() as tmp:
        ptx = Path(tmp) / "kernel.ptx"
        ptx.write_text(compiled.asm["ptx"])
        report = subprocess.run(
            [_ptxas(arch), "-v", f"--gpu-name=sm_{arch}a", str(ptx), "-o", str(Path(tmp) / "k.cubin")],
            capture_output=True,
            text=True,
        )
        if report.returncode != 0:
            raise RuntimeError(f"ptxas rejected {kernel.__name__}: {report.stderr.strip()}")
        report = report.stderr
    registers = re.search(r"Used (\d+) registers", report)
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", report)
    return CompiledInfo(
        name=kernel.__name__,
        registers=int(registers.group(1)) if registers else -1,
        spill_stores=int(spills.group(1)) if spills else 0,
        spill_loads=int(spills.group(2)) if spills else 0,
        shared_bytes=int(compiled.metadata.shared),
        num_warps=num_warps,
    )
