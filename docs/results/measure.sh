#!/bin/bash
# Runs one command on a quiet machine and says how quiet it stayed: waits until the 1-minute load average is under
# MAX_LOAD (default 0.5), runs the command, then prints the load before and after and the CPU time that OTHER
# processes used meanwhile (all CPU time in /proc/stat minus the command's own), on stderr.
#
#   docs/results/measure.sh build/onnxpipe bench ... --format csv > docs/results/x.csv
set -euo pipefail
max_load=${MAX_LOAD:-0.5}
until awk -v max="$max_load" '{ exit !($1 < max) }' /proc/loadavg; do sleep 10; done

busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }  # user nice system irq softirq steal
hz=$(getconf CLK_TCK)
cores=$(nproc)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before=$(busy)
own=$(mktemp)
/usr/bin/time -f "%e %U %S" -o "$own" "$@"
busy_after=$(busy)
read -r wall user sys < "$own"
rm -f "$own"
awk -v b0="$busy_before" -v b1="$busy_after" -v hz="$hz" -v wall="$wall" -v user="$user" -v sys="$sys" \
    -v cores="$cores" -v before="$load_before" -v after="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  others = (b1 - b0) / hz - user - sys
  if (others < 0) others = 0
  printf "measure: load before %s, after %s; %.1f s wall; own CPU %.1f s; other processes %.1f CPU s (%.1f%% of %d cores)\n",
         before, after, wall, user + sys, others, 100 * others / (wall * cores), cores > "/dev/stderr"
}'
