#!/usr/bin/env bash
# The larger architecture references, outside CI: regenerates tests/fixtures/arch (ResNet-18 and
# MobileNetV2 are too big to commit; gpt and mnet_mini are committed) with /usr/bin/python3
# (python3-torch, python3-torchvision, python3-onnx) and runs tests/e2e/arch_refs.sh on them.
#   tools/arch_refs.sh BUILD_DIR [MODEL...]  (models: gpt mnet_mini mobilenet_v2 resnet18; default all)
#   ARCH_OPTIMIZERS=sgd tools/arch_refs.sh build mobilenet_v2    only the momentum-SGD reference
#   DLCC_TEST_DEVICE=cuda tools/arch_refs.sh build    runs the artifacts on the GPU
# ResNet-18 and MobileNetV2 are made at batch 8 and 64x64 (ARCH_BATCH, ARCH_HW): at batch 4 and
# 32x32 their last BatchNorms normalise 4 values of 1x1 maps and the float64 trajectory itself
# is too ill-conditioned to compare weights to 1e-6. ARCH_REGEN=1 remakes existing fixtures.
set -euo pipefail
export ARCH_BATCH=${ARCH_BATCH:-8} ARCH_HW=${ARCH_HW:-64}
S=$(cd "$(dirname "$0")/.." && pwd)
B=${1:?usage: tools/arch_refs.sh BUILD_DIR [MODEL...]}; shift
M=${*:-gpt mnet_mini mobilenet_v2 resnet18}
for m in $M; do
  # the committed gpt and mnet_mini fixtures are kept; the big ones are made when absent (ARCH_REGEN=1: always)
  if [ "$m" != gpt ] && [ "$m" != mnet_mini ] && { [ -n "${ARCH_REGEN:-}" ] || [ ! -f "$S/tests/fixtures/arch/$m.onnx" ]; }; then
    /usr/bin/python3 "$S/tools/fixtures/make_arch.py" "$m"
  fi
done
ARCH_MODELS=$M ARCH_OPTIMIZERS=${ARCH_OPTIMIZERS:-sgd adam} DLCC_SOURCE_DIR=$S bash "$S/tests/e2e/arch_refs.sh" "$B"
