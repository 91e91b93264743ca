#!/usr/bin/env bash
# Real architectures against PyTorch (tools/fixtures/make_arch.py, tests/fixtures/arch): for each
# model whose fixture is present, `dlcc run` equals PyTorch's eval-mode output, and 3 training
# steps (no shuffling, model.train()) of SGD with momentum (lr 0.01, momentum 0.9) and of Adam
# (lr 1e-3) give torch.optim's per-step losses and final weights (with the BatchNorm running
# statistics). A reference stored as F64 (the CNNs', whose float32 trajectories are chaotic, and
# every Adam one; see make_arch.py) is matched by a --precision fp64 training step, tightly; an
# F32 one (gpt's SGD) by fp32.
# CI runs gpt and mnet_mini (committed, a few minutes, mostly compiling); resnet18 and
# mobilenet_v2 are too big to commit and too slow for CI in CPU emulation: tools/arch_refs.sh
# regenerates them and runs this test with ARCH_MODELS set. ARCH_OPTIMIZERS (default "sgd adam")
# picks the references. A model whose fixture is absent is SKIPPED.
source "$(dirname "$0")/lib.bash"
F=${ARCH_FIXTURES:-$S/tests/fixtures/arch}
PY=${DLCC_PYTHON:-/usr/bin/python3}

# the dtype of the first tensor of a safetensors file (F32, F64)
st_dtype() {
  $PY -c "import json,struct,sys; f=open(sys.argv[1],'rb'); n=struct.unpack('<Q',f.read(8))[0]
h=json.loads(f.read(n)); print([v['dtype'] for k,v in sorted(h.items()) if k!='__metadata__'][0])" "$1"
}

# train_ref MODEL BATCH OPT: compile the training step for OPT's reference, 3 steps, compare
train_ref() {
  local m=$1 b=$2 o=$3 opts prec tol_l tol_w
  [ -f "$F/${m}_final_$o.safetensors" ] || { echo "SKIP $m $o: no reference"; return 0; }
  case $o in
    sgd) opts="--optimizer momentum --lr 0.01 --momentum 0.9" ;;
    adam) opts="--optimizer adam --lr 0.001" ;;
  esac
  if [ "$(st_dtype "$F/${m}_final_$o.safetensors")" = F64 ]; then
    prec=fp64 tol_l="--rtol 1e-6" tol_w="--rtol 1e-6 --atol 1e-9"
  else
    prec=fp32 tol_l="--rtol 1e-3" tol_w="--rtol 1e-3 --atol 1e-5"
  fi
  # shellcheck disable=SC2086
  "$DLCC" "$F/$m.onnx" -o "$T/$m.$o.so" --loss cross_entropy $opts --precision $prec --batch "$b" \
    2>/dev/null || fail "$m $o: compile"
  "$DLCC" train "$T/$m.$o.so" --input x="$F/${m}_train_x.npy" --label "$F/${m}_train_y.npy" \
    --batch "$b" --steps 3 --no-shuffle --log "$T/$m.$o.csv" --save "$T/$m.$o.safetensors" \
    --device "$DEV" >/dev/null
  # shellcheck disable=SC2086
  $CMP csv "$T/$m.$o.csv" "$F/${m}_losses_$o.csv" --col loss $tol_l || fail "$m $o losses"
  # shellcheck disable=SC2086
  $CMP safetensors "$T/$m.$o.safetensors" "$F/${m}_final_$o.safetensors" $tol_w --allow-extra \
    >"$T/$m.cmp" || { cat "$T/$m.cmp"; fail "$m $o weights"; }
  echo "ok $m $o ($prec)"
}

for m in ${ARCH_MODELS:-gpt mnet_mini}; do
  if [ ! -f "$F/$m.onnx" ]; then
    echo "SKIP $m: $F/$m.onnx absent (too big to commit; run tools/arch_refs.sh)"
    continue
  fi
  b=$($PY -c "import numpy,sys; print(numpy.load(sys.argv[1]).shape[0])" "$F/${m}_x.npy")
  t0=$(date +%s)   # inference in fp32 against the fp32 eval-mode output
  "$DLCC" "$F/$m.onnx" -o "$T/$m.so" --mode infer --batch "$b" 2>/dev/null || fail "$m: compile"
  "$DLCC" run "$T/$m.so" --input x="$F/${m}_x.npy" --output-dir "$T/$m.out" --device "$DEV" >/dev/null
  $CMP npy "$T/$m.out/logits.npy" "$F/${m}_out.npy" --rtol 1e-4 --atol 1e-5 || fail "$m inference"
  for o in ${ARCH_OPTIMIZERS:-sgd adam}; do
    train_ref "$m" "$b" "$o"
  done
  echo "ok $m (batch $b; $(( $(date +%s) - t0 )) s on $DEV)"
done
