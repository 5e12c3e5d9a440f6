#!/usr/bin/env bash
# The GPU checks of the SambaY fast path in ONE device-tool call of at most 8 minutes (issue 19).
#
#   bash benchmarks/gpu_check.sh             all three parts, then the summary (device tool: timeout_s 520)
#   bash benchmarks/gpu_check.sh --part 2    one part again, under 3 minutes (--part 2,3: two of them)
#   bash benchmarks/gpu_check.sh --dry-run   on CPU: print every command, collect the GPU tests and check the
#                                            benchmark's imports as the device image has them; run nothing
#
# Parts, most decisive first; each writes $OUT/gpu-<stamp>-part<N>.json (saved as it goes) and .log:
#   1  the GPU-marked tests (benchmarks/gpu_tests.py): kernels vs references at real sizes, CUDA graphs +
#      kernels vs the reference-op engine token for token, the published model's logits
#   2  benchmarks/engine.py --part grid: copy bandwidth, engine steps at the targets' points, both
#      workloads' predictions, check runs as time allows -> the roofline and host-overhead targets
#   3  benchmarks/engine.py --part baseline: Phi3 `generate` at the largest batch that fits, both workloads'
#      predictions, the speedups over part 2's predictions -> the 10x target
# then gpu-<stamp>-summary.txt (benchmarks/gpu_summary.py): 7 files, the device tool brings back at most 8.
# Without $OUT the files go to benchmarks/results/. Recording them: benchmarks/results/README.md.
set -uo pipefail
cd "$(dirname "$0")/.."

# Every command below runs under one of these limits (seconds), and `timeout -k` adds KILL_GRACE to each:
# the call's worst case is their sum, which must stay <= LIMIT_TOTAL (one device call of 8 minutes).
# tests/benchmarks/test_gpu_check.py and --dry-run both check it.
TIMEOUT_SMI=5
TIMEOUT_VERSIONS=15
TIMEOUT_PART1=148
TIMEOUT_PART2=148
TIMEOUT_PART3=148
TIMEOUT_SUMMARY=4
KILL_GRACE=2
LIMIT_TOTAL=480
BUDGET_MARGIN=12  # a benchmark part budgets itself this much under its timeout, so it saves and ends itself
PER_TEST_TIMEOUT=90  # one GPU test at most (pytest-timeout), so one hung test leaves the others their time

# The GPU-marked test files, in the order they run (the test suite checks this is all of them).
GPU_TEST_FILES=(
  tests/model_backends/sambay/test_ops_triton.py
  tests/model_backends/sambay/test_ops_triton_attention.py
  tests/model_backends/sambay/test_ops_triton_prefill.py
  tests/model_backends/sambay/test_ops_elementwise.py
  tests/model_backends/sambay/test_ops_top_p.py
  tests/model_backends/sambay/test_engine.py
  tests/model_backends/sambay/test_gpu_full_size.py
)
# GPU_CHECK_ENGINE_ARGS replaces them for a rehearsal of the real path on CPU (the test suite's, e.g.
# "--device cpu --config tiny --points 4x32 ..."); on the device leave it unset.
read -r -a ENGINE_ARGS <<<"${GPU_CHECK_ENGINE_ARGS:---device cuda --config published}"
PY="${PYTHON:-python3}"
OUT="${OUT:-benchmarks/results}"
RESULTS=benchmarks/results
stamp="$(date -u +%Y%m%d-%H%M%S)"
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1 TRITON_DEFAULT_FP_FUSION=1

usage() { echo "usage: bash benchmarks/gpu_check.sh [--part N[,N...]] [--dry-run]   (parts 1 2 3)"; }
parts=(1 2 3)
dry=0
while (($#)); do
  case "$1" in
    --dry-run) dry=1 ;;
    --part)
      [[ $# -ge 2 && "$2" =~ ^[123](,[123])*$ ]] || { echo "error: --part takes 1, 2 or 3 (or a list: 2,3)" >&2; usage >&2; exit 2; }
      read -r -a parts <<<"$(tr , '\n' <<<"$2" | sort -u | tr '\n' ' ')"  # in part order, once each
      shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "error: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

worst=$((TIMEOUT_SMI + TIMEOUT_VERSIONS + TIMEOUT_PART1 + TIMEOUT_PART2 + TIMEOUT_PART3 + TIMEOUT_SUMMARY + 6 * KILL_GRACE))
if ((worst > LIMIT_TOTAL)); then
  echo "error: the timeouts sum to ${worst} s, over the ${LIMIT_TOTAL} s of one device call"
  exit 1
fi

path() { echo "$OUT/gpu-$stamp-$1"; }

# Part 3 divides by part 2's predictions: this run's, else the newest recorded in benchmarks/results/.
part2_json() {
  local found
  found="$(ls -1 "$OUT"/gpu-*-part2.json 2>/dev/null | sort | tail -n 1)"
  [[ -n "$found" ]] || found="$(ls -1 "$RESULTS"/gpu-*-part2.json 2>/dev/null | sort | tail -n 1)"
  echo "$found"
}

# Sets CMD (the part's command) and LIMIT (its timeout).
part_command() {
  case "$1" in
    1) LIMIT=$TIMEOUT_PART1
       CMD=("$PY" benchmarks/gpu_tests.py --json "$(path part1.json)" --per-test-timeout "$PER_TEST_TIMEOUT" "${GPU_TEST_FILES[@]}") ;;
    2) LIMIT=$TIMEOUT_PART2
       CMD=("$PY" benchmarks/engine.py "${ENGINE_ARGS[@]}" --part grid --time-budget $((LIMIT - BUDGET_MARGIN)) --out "$(path part2.json)") ;;
    3) LIMIT=$TIMEOUT_PART3
       local grid
       grid="$(part2_json)"
       if ((dry)) && [[ " ${parts[*]} " == *" 2 "* ]]; then grid="$(path part2.json)"; fi
       CMD=("$PY" benchmarks/engine.py "${ENGINE_ARGS[@]}" --part baseline --time-budget $((LIMIT - BUDGET_MARGIN)))
       if [[ -n "$grid" ]]; then CMD+=(--evalkit-from "$grid"); fi
       CMD+=(--out "$(path part3.json)") ;;
  esac
}

SUMMARY_CMD=("$PY" benchmarks/gpu_summary.py "$OUT" "$RESULTS" --stamp "$stamp" --write "$(path summary.txt)")
VERSIONS_PY='import importlib.metadata as m, platform, torch
cuda = torch.cuda.is_available()
print("python", platform.python_version(), "| torch", torch.__version__, "| cuda", torch.version.cuda, "| gpu", torch.cuda.get_device_name() if cuda else "NONE VISIBLE")
def v(p):
    try: return m.version(p)
    except m.PackageNotFoundError: return "MISSING"
print(" | ".join(p + " " + v(p) for p in ("triton", "transformers", "numpy", "pytest", "pytest-timeout", "safetensors")))'

quoted() { printf '%q ' "$@"; }

if ((dry)); then
  echo "gpu_check.sh --dry-run: parts ${parts[*]}; nothing runs on a GPU, nothing is written to $OUT"
  echo "timeouts: smi ${TIMEOUT_SMI} + versions ${TIMEOUT_VERSIONS} + parts ${TIMEOUT_PART1}/${TIMEOUT_PART2}/${TIMEOUT_PART3} + summary ${TIMEOUT_SUMMARY} + 6 x ${KILL_GRACE} s kill grace = ${worst} s (limit ${LIMIT_TOTAL} s)"
  failed=0
  check() {  # a part's stand-in on CPU, run as the device image would import it: check LABEL ARGS...
    echo "  check ($1): $(quoted "$PY" benchmarks/device_image.py "${@:2}" | cut -c1-240)"
    "$PY" benchmarks/device_image.py "${@:2}" 2>&1 | sed 's/^/    /'
    local rc=${PIPESTATUS[0]}
    if ((rc != 0)); then echo "  FAILED (exit $rc)"; failed=1; fi
  }
  echo "would run: timeout -k $KILL_GRACE $TIMEOUT_SMI nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader"
  echo "would run: timeout -k $KILL_GRACE $TIMEOUT_VERSIONS $(quoted "$PY" -c '<versions>')"
  check "the versions header parses" -c 'import ast, sys; ast.parse(sys.argv[1])' "$VERSIONS_PY"
  for n in "${parts[@]}"; do
    part_command "$n"
    echo "would run: timeout -k $KILL_GRACE $LIMIT $(quoted "${CMD[@]}")2>&1 | tee $(path "part$n.log")"
    if ((n == 1)); then
      check "collect the GPU tests, import what they exercise" benchmarks/gpu_tests.py --collect-only "${GPU_TEST_FILES[@]}"
    else
      check "the benchmark's plan and imports" "${CMD[@]:1}" --dry-run
    fi
  done
  echo "would run: timeout -k $KILL_GRACE $TIMEOUT_SUMMARY $(quoted "${SUMMARY_CMD[@]}")"
  empty="$(mktemp -d)"
  check "the summary of no part files" benchmarks/gpu_summary.py "$empty"
  rmdir "$empty"
  if ((failed)); then echo "dry run FAILED"; exit 1; fi
  echo "dry run OK"
  exit 0
fi

mkdir -p "$OUT"
header="$(mktemp)"
{
  echo "gpu_check.sh stamp $stamp, parts ${parts[*]}, $(date -u), commit ${EVALKIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo '? (set EVALKIT_COMMIT)')}"
  timeout -k "$KILL_GRACE" "$TIMEOUT_SMI" nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  timeout -k "$KILL_GRACE" "$TIMEOUT_VERSIONS" "$PY" -c "$VERSIONS_PY"
} >"$header" 2>&1
cat "$header"

declare -A status
for n in "${parts[@]}"; do
  part_command "$n"
  echo "== part $n (timeout $LIMIT s): $(quoted "${CMD[@]}")"
  { cat "$header"; echo "\$ $(quoted "${CMD[@]}")"; timeout -k "$KILL_GRACE" "$LIMIT" "${CMD[@]}"; } 2>&1 | tee "$(path "part$n.log")"
  status[$n]=${PIPESTATUS[0]}
  if ((status[$n] == 124 || status[$n] == 137)); then
    echo "== part $n hit its ${LIMIT} s timeout: its JSON keeps what it saved before"
  fi
done
rm -f "$header" "$OUT"/gpu-"$stamp"-*.tmp  # a part killed mid-save leaves its .tmp: not one of the 8 files

echo
timeout -k "$KILL_GRACE" "$TIMEOUT_SUMMARY" "${SUMMARY_CMD[@]}"
codes=""
rc=0
for n in "${parts[@]}"; do
  codes+=" part$n=${status[$n]}"
  ((status[$n] == 0)) || rc=1
done
echo "exit codes:$codes; files in $OUT: gpu-$stamp-*"
exit "$rc"
