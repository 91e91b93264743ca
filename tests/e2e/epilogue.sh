#!/usr/bin/env bash
# Matrix-product epilogues: a product and its epilogue are one rt_gemm_ep call (a cuBLASLt
# epilogue on a GPU) — forward: bias, ReLU (+ its bit-mask), tanh-GELU (+ its input); backward:
# the ReLU / GELU gradient with the bias gradient (DRELU_BGRAD, DGELU_BGRAD) and the bias
# gradient of a weight-gradient product (BGRADA, BGRADB). Both paths equal the interpreter in
# fp32, fp16, bf16 (where the epilogue also writes the half-precision operand of the next
# product) and fp64 (where the epilogue is declined): the epilogue itself, and the
# fallback (rt_gemm + small kernels) that runs where no epilogue is available (forced with
# DLCC_NO_GEMM_EPILOGUE=1). The MLP's training step is its 8 products and 2 kernel launches.
source "$(dirname "$0")/lib.bash"
F=$S/tests/fixtures
for m in "$S/samples/mlp/mlp.onnx" "$F/models/gemm_acts.onnx" "$F/models/gelu_mlp.onnx" "$F/models/gelu20.onnx" \
         "$F/models/attention.onnx" "$F/models/matmul_batched.onnx" "$F/train/bn_mlp.onnx"; do
  for off in 0 1; do
    DLCC_NO_GEMM_EPILOGUE=$off "$DLCC" check "$m" --steps 3 --optimizer adam --device "$DEV" > "$T/check.txt" ||
      { cat "$T/check.txt" >&2; fail "$(basename "$m"): dlcc check (DLCC_NO_GEMM_EPILOGUE=$off)"; }
  done
  echo "ok $(basename "$m"): epilogue and fallback paths equal the interpreter"
done
for p in fp16 bf16 fp64; do
  for m in "$S/samples/mlp/mlp.onnx" "$F/models/gelu_mlp.onnx"; do
    "$DLCC" check "$m" --precision $p --steps 3 --device "$DEV" > "$T/check.txt" ||
      { cat "$T/check.txt" >&2; fail "$(basename "$m") $p with epilogues"; }
  done
done
echo "ok mlp, gelu_mlp: epilogues in fp16, bf16 and fp64 (declined there: the fallback)"
forms() { # the epilogues of a model's artifact, as "N FORM" words
  "$DLCC" "$1" --emit cuda -o "$T/m.cu" 2>/dev/null
  grep -o 'rt_gemm_ep(rt, RT_EP_[A-Z_]*' "$T/m.cu" | sed 's/rt_gemm_ep(rt, RT_EP_//' | sort | uniq -c | tr -s ' \n' ' '
}
got=$(forms "$S/samples/mlp/mlp.onnx")
want=" 2 BIAS 2 DRELU_BGRAD 2 RELU_AUX_BIAS 2 RELU_BIAS "
[ "$got" = "$want" ] || fail "mlp epilogues: '$got', expected '$want' (training + inference)"
got=$(forms "$F/models/gelu_mlp.onnx")
want=" 1 BGRADA 1 BGRADB 4 BIAS 1 DGELU_BGRAD 1 GELU_AUX_BIAS 1 GELU_BIAS "
[ "$got" = "$want" ] || fail "gelu_mlp epilogues: '$got', expected '$want'"
# mixed precision: the epilogue writes the half-precision operand of the next product itself
"$DLCC" "$S/samples/mlp/mlp.onnx" --precision bf16 --emit cuda -o "$T/b.cu" 2>/dev/null
got=$(grep -o 'rt_gemm_ep(rt, RT_EP_[A-Z_]*, DLCC_BF16, DLCC_BF16' "$T/b.cu" | sed 's/rt_gemm_ep(rt, RT_EP_//; s/, DLCC_BF16, DLCC_BF16//' | sort | uniq -c | tr -s ' \n' ' ')
want=" 2 DRELU_BGRAD 2 RELU_AUX_BIAS 2 RELU_BIAS "
[ "$got" = "$want" ] || fail "mlp bf16 epilogues with a bf16 result: '$got', expected '$want'"
b16=$("$DLCC" info "$S/samples/mlp/mlp.onnx" --counts --batch 128 --optimizer momentum --precision bf16 2>/dev/null | tail -1 | awk -F'|' '{gsub(/ /, "", $3); print $3}')
[ "$b16" = 4 ] || fail "mlp bf16: $b16 kernel launches per step, expected 4"
echo "ok mlp bf16: the epilogues (and the loss kernel) write the bf16 operands; 4 kernel launches per step"
row=$("$DLCC" info "$S/samples/mlp/mlp.onnx" --counts --batch 128 --optimizer momentum 2>/dev/null | tail -1)
launches=$(echo "$row" | awk -F'|' '{gsub(/ /, "", $3); print $3}')
gemms=$(echo "$row" | awk -F'|' '{gsub(/ /, "", $4); print $4}')
[ "$launches" = 2 ] && [ "$gemms" = 8 ] || fail "mlp: $launches kernel launches and $gemms products per step, expected 2 and 8 ($row)"
echo "ok mlp: every epilogue form in use; 8 products and 2 kernel launches per training step"
