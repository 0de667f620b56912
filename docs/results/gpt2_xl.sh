#!/bin/bash
# The GPT-2-XL demonstration of docs/results/gpt2_xl.md, one step at a time, each under /usr/bin/time (peak RSS,
# wall time). Needs `make models-xl` and the CLI built; OUT must be on the filesystem of models/ for --weights link.
# Usage: docs/results/gpt2_xl.sh OUT   (about 10 GB of memory at its peak: verify holds the model and the pieces)
set -u
cd "$(dirname "$0")/../.."
B=build/onnxpipe; M=models/gpt2_xl.onnx; O=$1; P=$O/xl4
DEV=cpu:1@0,cpu:1@1,cpu:1@0,cpu:1@1
mkdir -p $O; rm -rf $P $O/run_out $O/whole_out $O/expected
step() { echo "### $*"; /usr/bin/time -f "peak_rss_kb=%M wall_s=%e" "$@"; echo "rc=$?"; }
step $B plan $M --devices cpu:1@0=2GiB,cpu:1@1=2GiB,cpu:1@0=2GiB,cpu:1@1=2GiB --balance flops --dim batch=2 --dim seq=7 -q
used0=$(df -B1 --output=used / | tail -1)
step $B split $M -n 4 --balance flops --dim batch=2 --dim seq=7 --weights link -o $P -q
used1=$(df -B1 --output=used / | tail -1)
echo "df used delta bytes: $((used1-used0)) (other helpers write too)"
ls -li $P; stat -c '%n inode=%i links=%h size=%s' models/gpt2_xl.onnx.data $P/gpt2_xl.onnx.data
du -sh models/gpt2_xl.onnx.data $P; du -sh --apparent-size $P/*.onnx $P/*.json | tail -8
grep -A2 '"weights"' $P/plan.json
mkdir -p $O/expected && ln -sf $PWD/models/gpt2_xl.output.npy $O/expected/logits.npy
step $B verify $M $P --input input_ids=models/gpt2_xl.input.npy --expected $O/expected --format csv -q
step $B verify $M $P --input input_ids=models/gpt2_xl.input.npy --format csv -q
step $B run $P --devices $DEV --count 4 --input input_ids=models/gpt2_xl.input.npy -o $O/run_out -q
/usr/bin/python3 -c "
import numpy as np; a=np.load('$O/run_out/logits.npy'); b=np.load('models/gpt2_xl.output.npy')
print('pipeline run vs numpy reference: max abs', float(np.abs(a-b).max()), 'max |ref|', float(np.abs(b).max()))"
step $B run $M --mode sequence --devices cpu:1 --count 1 --input input_ids=models/gpt2_xl.input.npy -o $O/whole_out -q
/usr/bin/python3 -c "
import numpy as np; a=np.load('$O/run_out/logits.npy'); b=np.load('$O/whole_out/logits.npy')
print('pipeline run vs unsplit run: max abs', float(np.abs(a-b).max()), 'bitwise', bool((a.view(np.uint32)==b.view(np.uint32)).all()))"
