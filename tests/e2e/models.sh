#!/usr/bin/env bash
# Every fixture model (tests/fixtures/models, exported from PyTorch): the generated kernels
# against the reference interpreter (inference and 3 training steps with SGD and Adam, through
# `dlcc check`), and `dlcc run` against PyTorch's own output.
source "$(dirname "$0")/lib.bash"
for m in "$S"/tests/fixtures/models/*.onnx; do
  n=$(basename "$m" .onnx)
  "$DLCC" check "$m" --steps 3 --optimizer sgd --lr 0.1 --device "$DEV" || fail "$n: check sgd"
  "$DLCC" check "$m" --steps 3 --optimizer adam --device "$DEV" >/dev/null || fail "$n: check adam"
  "$DLCC" "$m" -o "$T/$n.so" --mode infer --batch 8 2>/dev/null
  "$DLCC" run "$T/$n.so" --input x="${m%.onnx}_x.npy" --output-dir "$T/$n" --device "$DEV"
  out=$(ls "$T/$n"/*.npy | head -1)
  $CMP npy "$out" "${m%.onnx}_out.npy" --rtol 1e-4 --atol 1e-5 || fail "$n: output vs PyTorch"
  echo "ok $n"
done
