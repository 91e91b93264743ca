#!/usr/bin/env bash
# Run dlcc's whole test suite: unit tests (Criterion), pass tests (lit + FileCheck), end-to-end
# tests through the command line (CPU emulation of the generated kernels; the GPU when present),
# and the bad-input tests under AddressSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
DLCC_BUILD=build-asan DLCC_CMAKE_ARGS="-DDLCC_ASAN=ON" tools/setup.sh >/dev/null
export DLCC_ASAN_BUILD=$PWD/build-asan
cd build && ctest --output-on-failure -j2 --timeout 1200 "$@"
