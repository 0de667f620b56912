#!/usr/bin/env bash
# The GPU check in one command (`make gpu-check`): the gpu tests with ONNXPIPE_REQUIRE_CUDA=1 (a missing device or
# provider fails instead of skipping), then each model (mobilenet_v2, gpt2) split in 2 and run as a 2-stage pipeline
# on DEVICES (cuda:0,cuda:0: one GPU, two stages share it) against the CPU's outputs, printing per stage the H2D / D2D /
# D2H bytes (goal: 0 bytes between stages) and the stage's arena memory, and pipeline vs sequence throughput. Exit 0
# when every step ran and every model's outputs match the CPU's; the figures are for the reader, not asserted.
#
#   usage: scripts/gpu_check.sh [--devices D1,D2] [--only M1,M2] [--count N] [--models DIR] [--build DIR]
#                               [--work DIR] [--no-tests]
#
# From the build tree (make gpu-check builds first): BUILD/onnxpipe and ctest -L gpu in BUILD (default build/); the
# CUDA provider is installed beside ONNX Runtime with scripts/install_deps.sh --gpu; missing models are exported
# with scripts/export_models.py.
#
# From a bundle, on a GPU machine that cannot build (no package registry, at most 64 MiB per transfer): on the build
# machine, after make build,
#     mkdir -p /tmp/gpu-extra/models && cp models/mobilenet_v2.onnx /tmp/gpu-extra/models/
#     ../shared/tools/gpu-bundle.sh --extra scripts --extra /tmp/gpu-extra/models build/onnxpipe \
#         build/tests/pipeline_gpu_test build/tests/runtime_test build/tests/cuda_provider_gpulib_test
# copy the parts it prints into /tmp/op on the GPU machine, in order, then run there
#     bash /tmp/op/gpu-run.sh bash scripts/gpu_check.sh
# The script sees bin/onnxpipe beside its scripts/ folder: it runs bin/onnxpipe, each bin/*_test with
# ONNXPIPE_REQUIRE_CUDA=1 (runtime_test: its Gpu* tests), and models/ (gpt2, 623 MiB, does not travel: it is exported
# there when that Python has torch and onnx, else left out with a message).
#
# Without a GPU, --devices cpu:1@0,cpu:1@1 --no-tests runs the same steps on CPU (what the unit test of this script
# does): the plumbing, not the GPU.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
python=/usr/bin/python3
[[ -x $python ]] || python=python3
devices=cuda:0,cuda:0 only=mobilenet_v2,gpt2 count=20 models='' build='' work='' tests=1
usage() { sed -n '8,9p' "$0" | sed 's/^# *//' >&2; exit 2; }
while (($#)); do
  case $1 in
    --devices) devices=${2:?}; shift 2 ;;
    --only) only=${2:?}; shift 2 ;;
    --count) count=${2:?}; shift 2 ;;
    --models) models=${2:?}; shift 2 ;;
    --build) build=${2:?}; shift 2 ;;
    --work) work=${2:?}; shift 2 ;;
    --no-tests) tests=0; shift ;;
    *) usage ;;
  esac
done
log() { printf '\n[gpu-check] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

if [[ -x $top/bin/onnxpipe ]]; then  # a bundle made by gpu-bundle.sh
  layout=bundle bin=$top/bin/onnxpipe
  models=${models:-$top/models} work=${work:-$top/gpu_check}
else
  layout=build build=${build:-$top/build} bin=${build:-$top/build}/onnxpipe
  models=${models:-$top/models} work=${work:-$build/gpu_check}
  [[ -x $bin ]] || die "$bin is not built: run make build (or make gpu-check)"
fi
mkdir -p "$work"
log "layout: $layout; onnxpipe: $bin; devices: $devices; models: $models"
uses_cuda=0
[[ $devices == *cuda* ]] && uses_cuda=1

# 1. The provider, then the gpu tests with a missing device made a failure.
if ((uses_cuda)) && [[ $layout == build ]]; then
  "$top/scripts/install_deps.sh" --gpu || die "could not install ONNX Runtime's CUDA provider"
fi
if ((tests)); then
  export ONNXPIPE_REQUIRE_CUDA=$uses_cuda
  if [[ $layout == build ]]; then
    log "gpu tests: ctest -L gpu in $build (ONNXPIPE_REQUIRE_CUDA=$uses_cuda)"
    (cd "$build" && ctest -L gpu --output-on-failure) | tee "$work/ctest.log" || die "gpu tests"
    # A device test that skips on a GPU run is a failure too, whatever the test does with ONNXPIPE_REQUIRE_CUDA.
    if ((uses_cuda)) && grep -q 'Gpu.*(Skipped)' "$work/ctest.log"; then
      die "gpu tests skipped (see above: no usable CUDA device?)"
    fi
  else
    for t in "$top"/bin/*_test; do
      filter='*'
      [[ $(basename "$t") == runtime_test ]] && filter='*Gpu*:*Cuda*'
      log "gpu tests: $(basename "$t") --gtest_filter=$filter (ONNXPIPE_REQUIRE_CUDA=$uses_cuda)"
      "$t" --gtest_filter="$filter" | tee "$work/$(basename "$t").log" || die "$(basename "$t")"
      if ((uses_cuda)) && [[ $t == *_gpu_test ]] && grep -q '^\[  SKIPPED \]' "$work/$(basename "$t").log"; then
        die "$(basename "$t"): tests skipped (see above: no usable CUDA device?)"
      fi
    done
  fi
fi

# 2. Each model: split in 2 on the CPU, the first answer on the CPU (the reference) and on DEVICES, then pipeline and
# sequence throughput on DEVICES with the per-stage copies and memory.
dims_of() { [[ $1 == gpt2* ]] && echo "--dim batch=1 --dim seq=16"; true; }
failed=()
IFS=, read -ra names <<<"$only"
for name in "${names[@]}"; do
  model=$models/$name.onnx
  if [[ ! -f $model && -f $top/scripts/export_models.py ]]; then
    log "$model is missing: exporting it"
    "$python" "$top/scripts/export_models.py" --out "$models" --only "$name" || true
  fi
  if [[ ! -f $model ]]; then
    log "$name: SKIPPED ($model absent and not exportable here)"
    failed+=("$name: no model")
    continue
  fi
  read -ra dims <<<"$(dims_of "$name")"
  plan=$work/$name-2 out=$work/$name-out
  rm -rf "$out"; mkdir -p "$out"
  log "$name: split in 2 (flops balance) -> $plan"
  "$bin" split "$model" -n 2 -o "$plan" --balance flops --force "${dims[@]}" -q >/dev/null || die "$name: split"
  log "$name: the CPU's answer"
  "$bin" run "$plan" --devices cpu --mode sequence --count 1 --warmup 0 -o "$out/cpu" "${dims[@]}" -q >/dev/null ||
    die "$name: run on cpu"
  log "$name: pipeline on $devices"
  "$bin" run "$plan" --devices "$devices" --mode pipeline --count "$count" -o "$out/device" "${dims[@]}" \
    --format json >"$out/pipeline.json" || die "$name: pipeline on $devices"
  log "$name: sequence on ${devices%%,*}"
  "$bin" run "$plan" --devices "${devices%%,*}" --mode sequence --count "$count" "${dims[@]}" --format json \
    >"$out/sequence.json" || die "$name: sequence on ${devices%%,*}"
  "$python" - "$name" "$out" <<'PY' || failed+=("$name: outputs differ from the CPU's")
import json, os, sys

import numpy as np

name, out = sys.argv[1], sys.argv[2]
pipeline = json.load(open(os.path.join(out, "pipeline.json")))
sequence = json.load(open(os.path.join(out, "sequence.json")))
stages = pipeline["stages"]
print(f"\n{name}: 2 stages on {pipeline['run']['devices']}, {pipeline['run']['requests']} requests")
print(f"  {'stage':>5} {'device':>8} {'h2d_bytes':>12} {'d2d_bytes':>12} {'d2h_bytes':>12} {'mem_peak_mb':>12}")
for s in stages:
    peak = s.get("mem_peak_mb")
    print(f"  {s['stage']:>5} {s['device']:>8} {s['h2d_bytes']:>12} {s['d2d_bytes']:>12} {s['d2h_bytes']:>12} "
          f"{'-' if peak is None else format(peak, '.1f'):>12}")
between = stages[0]["d2h_bytes"] + stages[-1]["h2d_bytes"]
print(f"  between the stages through the host: {between} bytes ({'goal met' if between == 0 else 'goal: 0'})")
print("  (mem_peak_mb: the stage's arena peak; device-wide free/total memory is not a stage's use)")
p, s = pipeline["run"]["throughput_rps"], sequence["run"]["throughput_rps"]
print(f"  throughput: pipeline {p:.1f}/s, sequence {s:.1f}/s: {p / s:.2f}x")
worst = 0.0
for f in sorted(os.listdir(os.path.join(out, "cpu"))):
    a = np.load(os.path.join(out, "cpu", f))
    b = np.load(os.path.join(out, "device", f))
    if a.shape != b.shape or a.dtype != b.dtype:
        sys.exit(f"  {f}: {b.dtype}{list(b.shape)} against the CPU's {a.dtype}{list(a.shape)}")
    if a.dtype.kind in "fc":
        # CUDA's kernels (and TF32 matmuls) round differently from the CPU's: compare at 1e-2 of the output's scale.
        diff = float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0
        scale = max(float(np.max(np.abs(a))) if a.size else 0.0, 1.0)
        worst = max(worst, diff / scale)
        print(f"  {f}: max |device - cpu| {diff:.3g} (output scale {scale:.3g})")
    elif not np.array_equal(a, b):
        sys.exit(f"  {f}: differs from the CPU's")
if worst > 1e-2:
    sys.exit(f"  outputs differ from the CPU's by {worst:.3g} of their scale (> 1e-2)")
print("  outputs match the CPU's")
PY
done

if ((${#failed[@]})); then
  log "FAILED: $(printf '%s; ' "${failed[@]}")"
  exit 1
fi
log "ok: $only on $devices (results in $work)"
