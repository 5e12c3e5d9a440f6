#!/usr/bin/env bash
# Everything issue 7 needs a GPU for, in one call (the device tool: `bash benchmarks/gpu_check.sh`):
#   1. the GPU-marked tests of the SambaY ops and engine (kernels vs references at real sizes, CUDA graphs +
#      kernels vs the reference-op engine token for token);
#   2. benchmarks/engine.py on the published config with random bf16 weights (grid, baseline, workloads).
# Outputs go to $OUT (the device tool brings that folder back) or benchmarks/results/. Copy the JSON and
# the logs into benchmarks/results/ and commit them with a note of the device, date and command.
# Budget: about 4 min of tests and compiles, 6 min of benchmark; lower the benchmark's --grid-* for less.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
stamp="$(date -u +%Y%m%d-%H%M)"
export PYTHONPATH="$PWD" TRITON_DEFAULT_FP_FUSION=1
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, triton, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__, 'transformers', transformers.__version__)"
} 2>&1 | tee "$OUT/gpu-$stamp-versions.txt"

# The device image has torch/triton/transformers but not datasets or math-verify: collect only the
# sambay op and engine tests, whose imports need nothing more.
timeout 300 python3 -m pytest -q -m gpu -p no:cacheprovider \
  tests/model_backends/sambay/test_ops_*.py tests/model_backends/sambay/test_engine.py \
  tests/model_backends/sambay/test_gpu_full_size.py \
  2>&1 | tee "$OUT/gpu-$stamp-tests.txt"

timeout "${BENCH_TIMEOUT:-420}" python3 benchmarks/engine.py --device cuda --config published \
  --out "$OUT/engine-cuda-$stamp.json" "$@" 2>&1 | tee "$OUT/gpu-$stamp-engine.log"
