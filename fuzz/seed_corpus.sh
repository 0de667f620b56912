#!/usr/bin/env bash
# Usage: fuzz/seed_corpus.sh [BUILD_DIR] (default build-fuzz): fills BUILD_DIR/corpus/<target>/ with seeds from the
# files the project already has: the libonnx-testdata models and tensors, tests/data, small files of $ONNXPIPE_MODELS
# (default models/), plan.json files under $ONNXPIPE_PLANS (space-separated dirs), and fuzz/seeds/. Files over the
# size caps are skipped (libFuzzer mutates small inputs best). Existing corpora are kept: libFuzzer adds to them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build-fuzz}/corpus
testdata=${ONNX_TESTDATA:-/usr/share/libonnx-testdata/data}
models=${ONNXPIPE_MODELS:-$root/models}
mkdir -p "$out"/{fuzz_model,fuzz_plan,fuzz_npy,fuzz_tensor_pb,fuzz_options}

# copy DEST MAX_BYTES FILES...: each file under the cap, named by its content hash (so reruns add no duplicates).
copy() {
  local dest=$1 cap=$2
  shift 2
  for file in "$@"; do
    [ -f "$file" ] && [ "$(stat -c %s "$file")" -le "$cap" ] || continue
    cp "$file" "$out/$dest/$(sha1sum "$file" | cut -c1-40)"
  done
}

if [ -d "$testdata" ]; then
  mapfile -t onnx < <(find "$testdata" -name '*.onnx' | sort)
  mapfile -t pb < <(find "$testdata" -name '*.pb' | sort)
  copy fuzz_model 16384 "${onnx[@]}"
  copy fuzz_tensor_pb 4096 "${pb[@]}"
else
  echo "seed_corpus.sh: no ONNX test data at $testdata (apt-get install libonnx-testdata)" >&2
fi
copy fuzz_npy 65536 "$root"/tests/data/*.npy "$models"/*.npy
copy fuzz_model 65536 "$models"/*.onnx
for dir in ${ONNXPIPE_PLANS:-}; do
  mapfile -t plans < <(find "$dir" -name plan.json)
  copy fuzz_plan 65536 "${plans[@]}"
done
copy fuzz_plan 65536 "$root"/fuzz/seeds/plan/* "$root"/fuzz/regressions/fuzz_plan/*
copy fuzz_options 4096 "$root"/fuzz/seeds/options/*
for target in "$out"/*; do echo "$(basename "$target"): $(find "$target" -type f | wc -l) seeds"; done
