#!/usr/bin/env bash
# Fails when a git-tracked C++ file (*.cpp, *.h) differs from what clang-format makes of it (the repo's .clang-format).
#   usage: scripts/check_format.sh        fix: clang-format -i FILE...
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check_format: clang-format is not installed (apt-get install clang-format)" >&2; exit 2; }
mapfile -t files < <(git ls-files -- '*.cpp' '*.h')
((${#files[@]})) || { echo "check_format: no tracked C++ files" >&2; exit 2; }
if ! clang-format --dry-run --Werror "${files[@]}"; then
  echo "check_format: the files above are not clang-format clean: clang-format -i them" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files clang-format clean"
