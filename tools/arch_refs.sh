#!/usr/bin/env bash
# The larger architecture references, outside CI: regenerates tests/fixtures/arch (ResNet-18 and
# MobileNetV2 are too big to commit; gpt is committed) with /usr/bin/python3 (python3-torch,
# python3-torchvision, python3-onnx) and runs tests/e2e/arch_refs.sh on all of them.
#   tools/arch_refs.sh BUILD_DIR [MODEL...]      (models: gpt mobilenet_v2 resnet18; default all)
#   DLCC_TEST_DEVICE=cuda tools/arch_refs.sh build    runs the artifacts on the GPU
set -euo pipefail
S=$(cd "$(dirname "$0")/.." && pwd)
B=${1:?usage: tools/arch_refs.sh BUILD_DIR [MODEL...]}; shift
M=${*:-gpt mobilenet_v2 resnet18}
for m in $M; do
  # the committed gpt fixture is kept; the big ones are made when absent (ARCH_REGEN=1: always)
  if [ "$m" != gpt ] && { [ -n "${ARCH_REGEN:-}" ] || [ ! -f "$S/tests/fixtures/arch/$m.onnx" ]; }; then
    /usr/bin/python3 "$S/tools/fixtures/make_arch.py" "$m"
  fi
done
ARCH_MODELS=$M DLCC_SOURCE_DIR=$S bash "$S/tests/e2e/arch_refs.sh" "$B"
