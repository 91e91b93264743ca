# Shared setup of the end-to-end tests: $1 is the build directory. DLCC_TEST_DEVICE=cuda runs
# the artifacts on the GPU (tools/gpu_suite.sh); the default is the CPU emulation.
set -euo pipefail
B=$(cd "$1" && pwd)
S=${DLCC_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
DLCC=$B/bin/dlcc
DEV=${DLCC_TEST_DEVICE:-cpu}
T=$(mktemp -d /tmp/dlcc-e2e-XXXXXX)
trap 'rm -rf "$T"' EXIT
CMP="${DLCC_PYTHON:-/usr/bin/python3} $S/tests/tools/compare.py"
fail() { echo "FAIL: $*" >&2; exit 1; }
