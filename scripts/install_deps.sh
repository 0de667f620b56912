#!/usr/bin/env bash
# Installs what onnxpipe needs on Debian 12, once: Debian packages that are missing, and ONNX Runtime 1.29 from the
# npm registry (core from onnxruntime-node, headers from com.github.asus4.onnxruntime), unpacked into
# third_party/onnxruntime/{include,lib} (the official release layout, so -DONNXRUNTIME_ROOT can point elsewhere).
# Tarballs are cached in ~/.cache/onnxpipe and never fetched twice; npm checks their integrity hash; no install
# script of theirs is ever run.
#   usage: scripts/install_deps.sh [--models] [--gpu] [--fuzz]
#     --models  also the Python packages that export models
#     --fuzz    also clang 14 and its libFuzzer / sanitizer runtimes (make fuzz)
#     --gpu     also ONNX Runtime's CUDA 13 provider (com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9, the same
#               ORT 1.29.0 build; 179 MB download, 229 MB unpacked): libonnxruntime_providers_shared.so and
#               libonnxruntime_providers_cuda.so beside libonnxruntime.so.1, where ORT loads them from. It runs
#               where CUDA 13's runtime, cuBLAS, cuRAND and cuDNN 9 are found (with a GPU driver for a device)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "[deps] $*" >&2; }
models=0 gpu=0 fuzz=0
for arg in "$@"; do
  case $arg in
    --models) models=1 ;;
    --gpu) gpu=1 ;;
    --fuzz) fuzz=1 ;;
    *) echo "usage: $0 [--models] [--gpu] [--fuzz]" >&2; exit 2 ;;
  esac
done

packages=(build-essential cmake pkg-config libonnx-dev libprotobuf-dev protobuf-compiler libcli11-dev
          nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev libonnx-testdata python3-numpy
          python3-matplotlib clang-format pybind11-dev python3-dev python3-pytest python3-pandas libopenmpi-dev
          openmpi-bin)
((models)) && packages+=(python3-torch python3-torchvision python3-onnx)
((fuzz)) && packages+=(clang-14 libclang-rt-14-dev)

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
cache=${XDG_CACHE_HOME:-$HOME/.cache}/onnxpipe
fetch() {  # fetch NAME VERSION -> path of the cached tarball
  local tgz="$cache/$1-$2.tgz"
  if [[ ! -s $tgz ]]; then
    mkdir -p "$cache"
    log "fetching $1@$2 from npm"
    (cd "$cache" && npm pack --silent "$1@$2" >/dev/null)
  fi
  echo "$tgz"
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

if [[ ! -e $ort/lib/libonnxruntime.so.1 || ! -e $ort/include/onnxruntime_cxx_api.h ]]; then
  core=$(fetch onnxruntime-node 1.29.0)
  headers=$(fetch com.github.asus4.onnxruntime 0.4.9)
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

providers=(libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so)
if ((gpu)) && [[ ! -e $ort/lib/${providers[0]} || ! -e $ort/lib/${providers[1]} ]]; then
  gpu_tgz=$(fetch com.github.asus4.onnxruntime.linux-x64-gpu 0.4.9)
  pdir=package/Plugins/Linux/x64
  tar xzf "$gpu_tgz" -C "$tmp" "${providers[@]/#/$pdir/}"
  # The provider and the core must come from the same ORT release: both carry its version string.
  for lib in "$ort/lib/libonnxruntime.so.1" "$tmp/$pdir/${providers[1]}"; do
    grep -qaF 1.29.0 "$lib" || { log "$lib is not from ONNX Runtime 1.29.0"; exit 1; }
  done
  for p in "${providers[@]}"; do  # each appears whole or not at all
    cp "$tmp/$pdir/$p" "$ort/lib/$p.tmp" && mv "$ort/lib/$p.tmp" "$ort/lib/$p"
  done
  log "ONNX Runtime's CUDA provider ready in $ort/lib"
fi
if ((gpu)); then
  cuda_dirs=$(ls -d /usr/local/cuda*/lib64 2>/dev/null | paste -sd: || true)
  lacking=$(LD_LIBRARY_PATH=$cuda_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ldd "$ort/lib/${providers[1]}" |
            awk '/not found/ && $1 != "libcuda.so.1" {print $1}' | paste -sd' ' || true)
  [[ -z $lacking ]] || log "warning: the CUDA provider lacks $lacking here (install CUDA 13 and cuDNN 9)"
fi
