#!/usr/bin/env bash
# Matrix-product epilogues: a product + bias [+ ReLU] is one rt_gemm_bias call (cuBLASLt's
# BIAS / RELU_BIAS epilogue on a GPU). Both of its paths equal the interpreter — the epilogue
# itself, and the fallback (rt_gemm + a small kernel) that runs where no epilogue is available
# (forced with DLCC_NO_GEMM_EPILOGUE=1) — and the MLP's step has 4 kernel launches.
source "$(dirname "$0")/lib.bash"
F=$S/tests/fixtures
for m in "$S/samples/mlp/mlp.onnx" "$F/models/gemm_acts.onnx" "$F/models/attention.onnx" \
         "$F/models/matmul_batched.onnx" "$F/train/bn_mlp.onnx"; do
  for off in 0 1; do
    DLCC_NO_GEMM_EPILOGUE=$off "$DLCC" check "$m" --steps 3 --optimizer adam --device "$DEV" > "$T/check.txt" ||
      { cat "$T/check.txt" >&2; fail "$(basename "$m"): dlcc check (DLCC_NO_GEMM_EPILOGUE=$off)"; }
  done
  echo "ok $(basename "$m"): epilogue and fallback paths equal the interpreter"
done
"$DLCC" check "$S/samples/mlp/mlp.onnx" --precision bf16 --steps 3 --device "$DEV" > "$T/check.txt" ||
  { cat "$T/check.txt" >&2; fail "mlp bf16 with epilogues"; }
"$DLCC" "$S/samples/mlp/mlp.onnx" --emit cuda -o "$T/mlp.cu" 2>/dev/null
n=$(grep -c 'rt_gemm_bias(rt' "$T/mlp.cu")
[ "$n" = 6 ] || fail "mlp: $n products with an epilogue, expected 6 (3 in training, 3 in inference)"
row=$("$DLCC" info "$S/samples/mlp/mlp.onnx" --counts --batch 128 --optimizer momentum 2>/dev/null | tail -1)
launches=$(echo "$row" | awk -F'|' '{gsub(/ /, "", $3); print $3}')
[ "$launches" = 4 ] || fail "mlp: $launches kernel launches per step, expected 4 ($row)"
echo "ok mlp: 3 products with epilogues in each program, 4 kernel launches per training step"
