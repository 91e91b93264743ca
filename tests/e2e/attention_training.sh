#!/usr/bin/env bash
# Language-model training through the command-line contract against torch.optim: the causal
# self-attention fixture (tests/fixtures/models/attention.onnx: embeddings by Gather, Range,
# Trilu/Equal/Where mask, Softmax) with cross-entropy over [N,T,V] and labels [N,T], 10 Adam
# steps on 4 sequences: per-step losses and final weights (tools/fixtures/make_attention.py).
source "$(dirname "$0")/lib.bash"
F=$S/tests/fixtures/train
"$DLCC" "$S/tests/fixtures/models/attention.onnx" -o "$T/att.so" --loss cross_entropy \
  --optimizer adam --lr 0.01 --batch 4 2>/dev/null
"$DLCC" train "$T/att.so" --input x="$F/attention_x.npy" --label "$F/attention_y.npy" --batch 4 \
  --steps 10 --no-shuffle --log "$T/att.csv" --save "$T/att.safetensors" --device "$DEV" >/dev/null
$CMP csv "$T/att.csv" "$F/losses_attention_adam.csv" --col loss --rtol 1e-4 || fail "attention losses"
$CMP safetensors "$T/att.safetensors" "$F/final_attention_adam.safetensors" --rtol 1e-4 --atol 1e-5 \
  --allow-extra || fail "attention weights"
echo "ok attention adam"
# AdamW on the GPT-style decoder: its attention's key bias has an exactly zero true gradient,
# so Adam steps it by noise on both sides; dlcc check allows that (and only that) in every
# precision
for p in fp32 fp16 bf16; do
  "$DLCC" check "$S/tests/fixtures/arch/gpt.onnx" --steps 3 --optimizer adamw --precision $p \
    --device "$DEV" > "$T/check.txt" || { cat "$T/check.txt" >&2; fail "gpt adamw $p: dlcc check"; }
done
echo "ok gpt adamw: kernels equal the interpreter in fp32, fp16, bf16"
