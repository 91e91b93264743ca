#!/usr/bin/env bash
# Real architectures against PyTorch (tools/fixtures/make_arch.py, tests/fixtures/arch): for each
# model whose fixture is present, `dlcc run` equals PyTorch's eval-mode output, and 3 steps of SGD
# with momentum (lr 0.01, momentum 0.9, no shuffling, model.train()) give torch.optim's per-step
# losses and final weights (with the BatchNorm running statistics). CI runs gpt (committed, about
# 1 min, mostly compiling); resnet18 and mobilenet_v2 are too big to commit and too slow for CI in
# CPU emulation: tools/arch_refs.sh regenerates them and runs this test with ARCH_MODELS set to
# all three. A model whose fixture is absent is SKIPPED.
source "$(dirname "$0")/lib.bash"
F=${ARCH_FIXTURES:-$S/tests/fixtures/arch}
for m in ${ARCH_MODELS:-gpt}; do
  if [ ! -f "$F/$m.onnx" ]; then
    echo "SKIP $m: $F/$m.onnx absent (too big to commit; run tools/arch_refs.sh)"
    continue
  fi
  b=$(${DLCC_PYTHON:-/usr/bin/python3} -c "import numpy,sys; print(numpy.load(sys.argv[1]).shape[0])" \
    "$F/${m}_x.npy")   # the batch of the reference (2 for gpt, 4 for the CNNs)
  t0=$(date +%s)
  "$DLCC" "$F/$m.onnx" -o "$T/$m.so" --loss cross_entropy --optimizer momentum --lr 0.01 \
    --momentum 0.9 --batch "$b" 2>/dev/null || fail "$m: compile"
  t1=$(date +%s)
  "$DLCC" run "$T/$m.so" --input x="$F/${m}_x.npy" --output-dir "$T/$m.out" --device "$DEV" >/dev/null
  $CMP npy "$T/$m.out/logits.npy" "$F/${m}_out.npy" --rtol 1e-4 --atol 1e-5 || fail "$m inference"
  "$DLCC" train "$T/$m.so" --input x="$F/${m}_train_x.npy" --label "$F/${m}_train_y.npy" --batch "$b" \
    --steps 3 --no-shuffle --log "$T/$m.csv" --save "$T/$m.safetensors" --device "$DEV" >/dev/null
  $CMP csv "$T/$m.csv" "$F/${m}_losses_sgd.csv" --col loss --rtol 1e-3 || fail "$m losses"
  $CMP safetensors "$T/$m.safetensors" "$F/${m}_final_sgd.safetensors" --rtol 1e-3 --atol 1e-5 \
    --allow-extra >"$T/$m.cmp" || { cat "$T/$m.cmp"; fail "$m weights"; }
  echo "ok $m (batch $b; compile $((t1 - t0)) s, run and train $(( $(date +%s) - t1 )) s on $DEV)"
done
