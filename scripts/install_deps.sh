#!/usr/bin/env bash
# Installs what onnxpipe needs on Debian 12, once: Debian packages that are missing, and ONNX Runtime 1.29 from the
# npm registry (core from onnxruntime-node, headers from com.github.asus4.onnxruntime), unpacked into
# third_party/onnxruntime/{include,lib} (the official release layout, so -DONNXRUNTIME_ROOT can point elsewhere).
# Tarballs are cached in ~/.cache/onnxpipe and never fetched twice; npm checks their integrity hash; no install
# script of theirs is ever run.
#   usage: scripts/install_deps.sh [--models]   (--models also installs the Python packages that export models)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "[deps] $*" >&2; }

packages=(build-essential cmake pkg-config libonnx-dev libprotobuf-dev protobuf-compiler libcli11-dev
          nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev libonnx-testdata python3-numpy
          python3-matplotlib)
[[ ${1:-} == --models ]] && packages+=(python3-torch python3-torchvision python3-onnx)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v npm >/dev/null || missing+=(npm)  # a node/npm from elsewhere is fine too
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  sudo=""; ((EUID)) && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

ort=$root/third_party/onnxruntime
if [[ ! -e $ort/lib/libonnxruntime.so.1 || ! -e $ort/include/onnxruntime_cxx_api.h ]]; then
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/onnxpipe
  mkdir -p "$cache"
  fetch() {  # fetch NAME VERSION -> path of the cached tarball
    local tgz="$cache/$1-$2.tgz"
    if [[ ! -s $tgz ]]; then
      log "fetching $1@$2 from npm"
      (cd "$cache" && npm pack --silent "$1@$2" >/dev/null)
    fi
    echo "$tgz"
  }
  core=$(fetch onnxruntime-node 1.29.0)
  headers=$(fetch com.github.asus4.onnxruntime 0.4.9)
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  tar xzf "$core" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  hdir='package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers'
  tar xzf "$headers" -C "$tmp" "$hdir"
  rm -rf "$ort.tmp"; mkdir -p "$ort.tmp/lib" "$ort.tmp/include"
  cp "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$ort.tmp/lib/"
  ln -s libonnxruntime.so.1 "$ort.tmp/lib/libonnxruntime.so"
  cp "$tmp/$hdir"/*.h "$ort.tmp/include/"
  rm -rf "$ort"; mv "$ort.tmp" "$ort"
  log "ONNX Runtime 1.29.0 ready in $ort"
fi
