#!/usr/bin/env bash
# The rest of the command-line contract: --emit ir/cuda/ptx/dot, --dump-ir, dlcc info,
# save/load round trip, run with several chunks, checkpoints holding optimizer state, DLCC_PROFILE.
source "$(dirname "$0")/lib.bash"
M=$S/samples/mlp/mlp.onnx
TR=$S/tests/fixtures/train
"$DLCC" "$M" --emit ir 2>/dev/null | grep -q "SoftmaxCrossEntropy" || fail "--emit ir lacks the loss"
"$DLCC" "$M" --emit ir 2>/dev/null | grep -q "SgdUpdate" || fail "--emit ir lacks the update"
"$DLCC" "$M" --emit ir --optimizer adam -o "$T/m.dlir" 2>/dev/null
"$DLCC" opt "$T/m.dlir" --passes verify >/dev/null || fail "dlcc opt cannot read --emit ir output"
"$DLCC" "$M" --emit cuda -o "$T/m.cu" 2>/dev/null && grep -q "__global__" "$T/m.cu" || fail "--emit cuda"
"$DLCC" "$M" --emit ptx -o "$T/m.ptx" 2>/dev/null && grep -q "\.entry" "$T/m.ptx" || fail "--emit ptx"
"$DLCC" "$M" --emit dot 2>/dev/null | grep -q "digraph" || fail "--emit dot"
# fusion: kernels name the IR ops they fuse; the graph draws each group as a cluster
grep -q "fuses 3 ops: %[0-9]* = Gemm(.*%7 = Add(%.*%8 = Relu(%7)" "$T/m.cu" || fail "--emit cuda: no comment naming the fused ops"
"$DLCC" "$M" --emit dot 2>/dev/null | grep -q "subgraph cluster_fuse1" || fail "--emit dot: no fusion clusters"
"$DLCC" "$M" --emit ir --dump-ir after-all 2>"$T/dump" >/dev/null
grep -q "IR after" "$T/dump" || fail "--dump-ir after-all printed nothing"
"$DLCC" info "$M" --batch 64 | tee "$T/info"
grep -q "parameters: 17226" "$T/info" || fail "dlcc info: wrong parameter count"
grep -q "workspace .* = 1.0[0-4][0-9]x the lower bound .*(fixed head" "$T/info" || fail "dlcc info: workspace over 1.05x the lower bound"
grep -q "^# memory plan of this program" "$T/m.dlir" || fail "--emit ir lacks the memory plan comment"
# the workspace target: at most 1.05x the lower bound, for every fixture model's training step
for f in "$S"/tests/fixtures/models/*.onnx "$S"/tests/fixtures/train/*.onnx; do
  r=$("$DLCC" info "$f" --counts --batch 128 --optimizer momentum 2>/dev/null | awk -F'|' '{gsub(/ /, "", $8); print $8}')
  awk -v r="$r" 'BEGIN { exit !(r != "" && r <= 1.05) }' || fail "$(basename "$f"): workspace $r x the lower bound"
done
"$DLCC" info "$M" --counts --batch 128 | grep -q "^| mlp.onnx | 2 | 8 |" || fail "dlcc info --counts"
"$DLCC" check "$M" --precision fp64 --steps 2 --device "$DEV" >/dev/null || fail "dlcc check --precision fp64 (float64 inputs and outputs)"
# save, load, and continue: two runs of 5 steps equal one run of 10 steps (adam: state saved)
"$DLCC" "$TR/mlp_small.onnx" -o "$T/s.so" --optimizer adam --lr 0.01 --batch 4 2>/dev/null
tr() { "$DLCC" train "$T/s.so" --input x="$TR/x.npy" --label "$TR/y.npy" --batch 4 --no-shuffle --device "$DEV" "$@" >/dev/null; }
tr --steps 8 --save "$T/a8.safetensors"
# DLCC_PROFILE: a table of the kernels, products and copies of the steps after the first
DLCC_PROFILE="$T/prof.txt" "$DLCC" train "$T/s.so" --input x="$TR/x.npy" --label "$TR/y.npy" --batch 4 --steps 3 --device "$DEV" >/dev/null
grep -q "^dlcc profile (.*): .* ms in .* timed calls after the first training step" "$T/prof.txt" || fail "DLCC_PROFILE: no header"
grep -q " 2 .*gemm.*m=.* n=4 k=" "$T/prof.txt" || fail "DLCC_PROFILE: no line for the products (2 steps after the first)"
grep -q "k[0-9]*_fused" "$T/prof.txt" || fail "DLCC_PROFILE: no line for the fused kernels"
tr --steps 4 --save "$T/a4.safetensors"
tr --steps 4 --load "$T/a4.safetensors" --save "$T/b8.safetensors"
$CMP safetensors "$T/b8.safetensors" "$T/a8.safetensors" --rtol 1e-6 --atol 1e-7 || fail "resumed training differs"
# run in several chunks (batch 16 > planned 4) equals one PyTorch-free reference: the interpreter
"$DLCC" run "$T/s.so" --input x="$TR/x.npy" --output-dir "$T/out" --device "$DEV"
[ -f "$T/out/logits.npy" ] || fail "dlcc run wrote no logits.npy"
echo ok
