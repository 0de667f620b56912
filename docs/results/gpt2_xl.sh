#!/bin/bash
# The GPT-2-XL demonstration of docs/results/gpt2_xl.md, one step at a time, each under /usr/bin/time (peak RSS,
# wall time). Needs the model exported (`make models-xl`, or `scripts/export_models.py --out DIR --only gpt2_xl`) and
# the CLI built; OUT must be on the filesystem of the models directory for --weights link.
# Usage: [MODELS=DIR] docs/results/gpt2_xl.sh OUT   (MODELS: where gpt2_xl.onnx is, default models/; about 10 GB of
# memory at its peak: verify holds the model and the pieces)
set -u
cd "$(dirname "$0")/../.."
B=build/onnxpipe; D=${MODELS:-models}; M=$D/gpt2_xl.onnx; I=input_ids=$D/gpt2_xl.input.npy; O=$1; P=$O/xl4
CAPS=cpu:1@0=2GiB,cpu:1@1=2GiB,cpu:1@0=2GiB,cpu:1@1=2GiB
DEV=cpu:1@0,cpu:1@1,cpu:1@0,cpu:1@1
mkdir -p $O; rm -rf $P $O/xl4_flops $O/xl4_seq128 $O/xl4_flops_seq128 $O/run_out $O/whole_out $O/expected
uptime
step() { echo "### $*"; /usr/bin/time -f "peak_rss_kb=%M wall_s=%e" "$@"; echo "rc=$?"; uptime; }
step $B plan $M --devices $CAPS --balance flops --dim batch=2 --dim seq=7 -q
used0=$(df -B1 --output=used "$D" | tail -1)
step $B split $M --devices $CAPS --balance flops --dim batch=2 --dim seq=7 --weights link -o $P -q
used1=$(df -B1 --output=used "$D" | tail -1)
echo "df used delta bytes: $((used1-used0)) (other helpers write too)"
ls -li $P; stat -c '%n inode=%i links=%h size=%s' $M.data $P/gpt2_xl.onnx.data
du -sh $M.data $P; du -sh --apparent-size $P/*.onnx $P/*.json | tail -8
grep -A2 '"weights"' $P/plan.json
# The same without caps (no dry runs), and both at seq 128, where the sizing run's activations are larger.
step $B split $M -n 4 --balance flops --dim batch=2 --dim seq=7 --weights link -o $O/xl4_flops -q
step $B split $M -n 4 --balance flops --dim batch=1 --dim seq=128 --weights link -o $O/xl4_flops_seq128 -q
step $B split $M --devices $CAPS --balance flops --dim batch=1 --dim seq=128 --weights link -o $O/xl4_seq128 -q
rm -rf $O/xl4_flops $O/xl4_flops_seq128 $O/xl4_seq128
mkdir -p $O/expected && ln -sf "$(realpath $D)"/gpt2_xl.output.npy $O/expected/logits.npy
step $B verify $M $P --input $I --expected $O/expected --format csv -q
step $B verify $M $P --input $I --format csv -q
step $B run $P --devices $DEV --count 4 --input $I -o $O/run_out -q
/usr/bin/python3 -c "
import numpy as np; a=np.load('$O/run_out/logits.npy'); b=np.load('$D/gpt2_xl.output.npy')
print('pipeline run vs numpy reference: max abs', float(np.abs(a-b).max()), 'max |ref|', float(np.abs(b).max()))"
step $B run $M --mode sequence --devices cpu:1 --count 1 --input $I -o $O/whole_out -q
/usr/bin/python3 -c "
import numpy as np; a=np.load('$O/run_out/logits.npy'); b=np.load('$O/whole_out/logits.npy')
print('pipeline run vs unsplit run: max abs', float(np.abs(a-b).max()), 'bitwise', bool((a.view(np.uint32)==b.view(np.uint32)).all()))"
