#!/usr/bin/env bash
# The one-command tour (`make demo`): export a model if needed, inspect it, split it into PARTS pieces, verify that
# the chained pieces reproduce the whole model, bench the pieces as a pipeline against the whole model in sequence on
# two pinned cores, draw the bench as the seed's grid of plots, and summarise with what the pipeline gained. Every
# command is echoed before it runs, so it can be copied and re-run by hand.
#   usage: scripts/demo.sh BIN MODELS_DIR MODEL PARTS [SPLIT/VERIFY OPTIONS...]
#   e.g.   scripts/demo.sh build/onnxpipe models resnet18 2
#          scripts/demo.sh build/onnxpipe models gpt2 3 --dim seq=8
# The pieces go to <BIN's directory>/demo/MODEL-PARTS (replaced on every run), the bench's CSV and PNG beside them
# (MODEL-PARTS-bench.csv, .png); they stay there to look at. DEMO_IMAGES (1,5,9,17) and DEMO_REPEAT (2) size the bench.
set -euo pipefail

usage() { echo "usage: $0 BIN MODELS_DIR MODEL PARTS [split/verify options...]" >&2; exit 2; }
(($# >= 4)) || usage
bin=$1 models=$2 model=$3 parts=$4
shift 4
extra=("$@")
dims=()  # the --dim options of extra, which bench takes too
for ((i = 0; i < ${#extra[@]}; ++i)); do
  case ${extra[i]} in
    --dim) dims+=(--dim "${extra[i + 1]:-}"); i=$((i + 1)) ;;
    --dim=*) dims+=("${extra[i]}") ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
python=/usr/bin/python3

[[ $parts =~ ^[1-9][0-9]*$ ]] || { echo "demo: PARTS must be a positive integer, got '$parts'" >&2; exit 2; }
if [[ ! -x $bin ]]; then
  echo "demo: $bin is not an executable: build it first (make)" >&2
  exit 2
fi

if [[ -t 1 ]]; then bold=$'\e[1m' dim=$'\e[2m' red=$'\e[31m' green=$'\e[32m' reset=$'\e[0m'
else bold='' dim='' red='' green='' reset=''; fi

steps=()  # one summary line per step
say() { printf '%s\n' "${dim}# $*${reset}"; }
# run TITLE CMD...: echoes the command, runs it, records its outcome and time; returns its exit status. With
# stdout=FILE set, the command's stdout goes to FILE.
stdout=''
run() {
  local title=$1; shift
  printf '\n%s\n' "${bold}== $title${reset}"
  local quoted
  quoted=$(printf '%q ' "$@")
  printf '%s\n' "\$ ${quoted% }${stdout:+ > $(printf '%q' "$stdout")}"
  local start=${EPOCHREALTIME/[.,]/} status=0  # microseconds
  if [[ -n $stdout ]]; then "$@" >"$stdout" || status=$?; else "$@" || status=$?; fi
  local ds=$(((${EPOCHREALTIME/[.,]/} - start) / 100000))
  local outcome="${green}ok${reset}"
  ((status == 0)) || outcome="${red}exit $status${reset}"
  steps+=("$(printf '%-8s %-10s %4d.%d s' "$title" "$outcome" $((ds / 10)) $((ds % 10)))")
  return $status
}
summary() {
  printf '\n%s\n' "${bold}== summary${reset}"
  printf '  %s\n' "${steps[@]}"
}
fail() {
  summary
  printf '\n%s\n' "${red}demo: $*${reset}" >&2
  exit 1
}

model_path=$models/$model.onnx
out=$(dirname "$bin")/demo/$model-$parts

say "onnxpipe splits an ONNX model into $parts consecutive pieces of balanced cost, writes them with a plan.json,"
say "and proves that the pieces chained together compute what the whole model computes."

if [[ -f $model_path ]]; then
  say "Using $model_path."
else
  say "$model_path is missing: export it from PyTorch with random weights (no model hub needed)."
  run export "$python" "$root/scripts/export_models.py" --out "$models" --only "$model" \
    || fail "could not export $model (see above; the export needs python3-torch, python3-torchvision, python3-onnx)"
fi

say "inspect: the graph's size, opsets, weights, inputs/outputs, how many places it can be cut, the best candidates."
run inspect "$bin" inspect "$model_path" || fail "inspect failed"

say "split: cut at the boundaries that minimise the slowest piece; each piece is a standalone ONNX model."
say "--force replaces the pieces of an earlier demo run in $out."
run split "$bin" split "$model_path" -n "$parts" -o "$out" --force "${extra[@]}" || fail "split failed"

say "verify: run the whole model and the chained pieces with ONNX Runtime on the same random inputs, and compare"
say "every output."
verify_status=0
run verify "$bin" verify "$model_path" "$out" "${extra[@]}" || verify_status=$?
((verify_status != 3)) || fail "the pieces do NOT reproduce $model (exit 3): see the rows above"
((verify_status == 0)) || fail "verify failed"

say "bench: the pieces as a pipeline, one stage per core (cpu:1@0, cpu:1@1), against the whole model in sequence on"
say "one core, for a few image counts N; every mode must return the same outputs. One CSV row per (mode, N)."
csv=$out-bench.csv png=$out-bench.png
stdout=$csv run bench "$bin" bench "$out" --devices cpu:1@0,cpu:1@1 --modes sequence,pipeline \
  --images "${DEMO_IMAGES:-1,5,9,17}" --repeat "${DEMO_REPEAT:-2}" --warmup 0.5 --alone-runs 20 --format csv \
  "${dims[@]}" || fail "bench failed"

say "plot: the bench CSV as the seed's grid (time, gain over sequence, throughput against its bound, latency, ...)."
run plot "$bin" plot "$csv" -o "$png" || fail "plot failed"

# What the pipeline gained: its throughput over the sequence's at the largest N of the bench.
gain=$("$python" - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
n = max(int(r["n_imgs"]) for r in rows)
rate = {r["name"]: float(r["throughput"]) for r in rows if int(r["n_imgs"]) == n}
p, s = rate["pipeline"], rate["sequence"]
print(f"at N = {n} images the pipeline ran {p:.1f} images/s against {s:.1f} for the sequence: "
      f"{p / s:.2f}x ({(p / s - 1) * 100:+.0f}%)")
PY
) || fail "could not read the pipeline's gain from $csv"

summary
printf '\n  %s\n' "model:  $model_path ($(du -h "$model_path" | cut -f1))"
printf '  %s\n' "pieces: $out/"
for f in "$out"/*; do
  [[ -f $f ]] && printf '          %-22s %s\n' "$(basename "$f")" "$(du -h "$f" | cut -f1)"
done
printf '  %s\n' "bench:  $csv" "plot:   $png"
cat <<EOF

  ${green}The $parts pieces of $model reproduce the whole model.${reset}
  ${green}Two pinned cores: $gain.${reset}
  Next: another cost model (--balance bytes|flops|time), your own cuts (--cut TENSOR,...), or any .onnx file:
    $bin split MODEL.onnx -n N -o DIR
    $bin verify MODEL.onnx DIR
    $bin bench DIR --devices cpu:1@0,cpu:1@1 --format csv > bench.csv && $bin plot bench.csv -o bench.png
EOF
