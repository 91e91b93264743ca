#!/usr/bin/env bash
# Install what dlcc needs from Debian (if missing) and build it with CMake into build/.
#   tools/setup.sh            release build in build/
#   DLCC_BUILD=dir tools/setup.sh   another build directory
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs="cmake gcc make protobuf-c-compiler libprotobuf-c-dev libonnx-dev libcriterion-dev llvm-14-tools python3-numpy"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "dlcc setup: installing$missing"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
fi
if [ ! -d /usr/local/cuda ] && ! command -v nvcc >/dev/null; then
  echo "dlcc setup: the CUDA toolkit (NVRTC, cuBLAS headers) is required at /usr/local/cuda" >&2
  exit 2
fi
build=${DLCC_BUILD:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${DLCC_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"
