"""The benchmark's model, machine description and printed summary."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import subprocess
from pathlib import Path

import torch

from model_backends.sambay.model import SambaYForCausalLM
from model_backends.sambay.model.config import SambaYConfig
from model_backends.sambay.testing import randomize_, tiny_config

ROOT = Path(__file__).resolve().parents[2]
SAMBAY_CONFIGS = {
    "tiny": {},
    "small": dict(
        vocab_size=4096,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=2,
        sliding_window=128,
        mamba_d_state=16,
    ),
}


def build_model(args) -> SambaYForCausalLM:
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    if args.model:
        return SambaYForCausalLM.from_pretrained(args.model, dtype=dtype, device=args.device).eval()
    if args.config == "published":
        config = SambaYConfig.published()
    else:
        config = SambaYConfig.from_dict(tiny_config(**SAMBAY_CONFIGS[args.config]))
    model = SambaYForCausalLM(config, dtype=dtype, device=args.device)
    return randomize_(model, args.seed).eval()  # speed does not depend on the values


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine(device: str) -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "triton": _version("triton"),
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
        info["driver"] = _nvidia_driver()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        info["evalkit_commit"] = commit.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        # the device tool's copy of the tree has no .git: gpu_check.sh's caller names the commit
        info["evalkit_commit"] = os.environ.get("EVALKIT_COMMIT")
    return info


def _nvidia_driver() -> str | None:
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return smi.stdout.strip().splitlines()[0] if smi.stdout.strip() else None


def peak_memory_mib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def print_report(result: dict) -> None:
    """The run's figures as text; any part may be missing (--part, or a stage skipped by the budget)."""
    if "parameters" in result:
        print(
            f"model {result['model']} ({result['parameters'] / 1e6:.1f}M params, {result['dtype']}, {result['device']})"
        )
    print(f"copy bandwidth {result.get('copy_bandwidth_gb_per_second')} GB/s")
    ours = result.get("evalkit", {})
    if ours.get("grid"):
        print(f"evalkit engine, {ours['slots']} slots, decode graphs: {ours['graph_mode']}")
        print(
            f"{'batch':>6} {'context':>8} {'ms/step':>9} {'device ms':>10} {'host %':>7} {'tok/s':>9} {'GB/s':>8} {'roofline':>9}"
        )
    for r in ours.get("grid", []):
        print(
            f"{r['batch']:>6} {r['context']:>8} {r['ms_per_step']:>9.2f} {r['device_ms_per_step']:>10.2f} "
            f"{100 * r['host_overhead_share']:>6.1f}% {r['tokens_per_second']:>9.1f} {r['gb_per_second']:>8.1f} "
            f"{100 * r['fraction_of_copy_bandwidth']:>8.1f}%"
        )
    predicted = ours.get("predicted") or result.get("evalkit_from", {}).get("predicted") or {}
    transformer = result.get("transformer", {})
    for name in ("paper", "eval"):
        line = f"workload {name}:"
        if name in predicted:
            line += f" evalkit {predicted[name]['tokens_per_second']:.1f} tok/s (predicted, {predicted[name]['seconds']:.0f} s)"
        theirs = transformer.get("workloads", {}).get(name, {})
        if "predicted" in theirs:
            line += f"; transformer {theirs['predicted']['tokens_per_second']:.1f} tok/s at batch {theirs['batch']}"
        if name in result.get("speedup_over_transformer", {}):
            line += f" -> {result['speedup_over_transformer'][name]:.2f}x"
        if line != f"workload {name}:":
            print(line)
    if "evalkit_from" in result:
        print(
            f"evalkit's predictions from {result['evalkit_from']['path']} {result['evalkit_from'].get('mismatch', '')}"
        )
    compiled = transformer.get("compiled_check", {})
    if "compiled_over_eager" in compiled:
        print(
            f"transformer compiled step / eager step at batch {compiled['batch']}, context {compiled['context']}: "
            f"{compiled['compiled_ms_per_step']:.2f} / {compiled['eager_ms_per_step']:.2f} ms = {compiled['compiled_over_eager']:.2f}"
        )
    for name, check in ours.get("checks", {}).items():
        m = check["measured"]
        print(
            f"check run {name} (lengths / scale): measured {m['tokens_per_second']:.1f} tok/s in {m['seconds']:.1f} s, "
            f"host {100 * m['host_overhead_share']:.1f}%; predicted/measured {check['predicted_over_measured']:.2f}"
        )
    if "scheduling" in result:
        print(f"continuous / static batching (same model): {result['scheduling']['speedup']:.2f}x")
    for skipped in result.get("budget_skipped", []):
        print(
            f"skipped {skipped['stage']} (needed ~{skipped['estimated_seconds']} s, {skipped['seconds_left']} s left)"
        )
    for name, t in result.get("targets", {}).items():
        verdict = "met" if t["met"] else f"MISSED by {abs(t['gap'])}"
        print(f"target {name}: {t['measured']} vs {t['target']} -> {verdict}")
    if "peak_memory_mib" in result:
        print(f"peak memory {result['peak_memory_mib']:.0f} MiB")
