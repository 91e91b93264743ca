#!/usr/bin/env bash
# The model language (.dl) end to end (docs/dl.md):
# - samples/mlp/mlp.dl gives the same IR as samples/mlp/mlp.onnx (inference and training
#   programs, compared modulo temporary names), and the same training losses when both start
#   from the same weights (--load);
# - tests/fixtures/train/mlp_small.onnx written in .dl, started from PyTorch's initial weights,
#   gives PyTorch's own training losses (SGD and Adam);
# - the round trip ONNX -> .dl -> IR equals ONNX -> IR for every fixture model.
source "$(dirname "$0")/lib.bash"
F=$S/tests/fixtures/train
D=$S/samples/data

# canonical IR: node names and the graph name dropped, temporaries and constants renamed by first
# use, constant declarations sorted; inputs, labels, parameters, states and outputs keep their names
canon() {
  /usr/bin/python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read().splitlines()
ref = re.compile(r'%(?:"(?:[^"\\]|\\.)*"|[\w.]+)')
keep = set()
for l in text:
    m = re.match(r'\s*(?:input|label|param|buffer|state|output) (%(?:"(?:[^"\\]|\\.)*"|[\w.]+))', l)
    if m:
        keep.add(m.group(1))
names = {}
def ren(m):
    t = m.group(0)
    return t if t in keep else names.setdefault(t, '%%v%d' % len(names))
body = [l for l in text if not re.match(r'\s*const ', l)]
consts = [l for l in text if re.match(r'\s*const ', l)]
out = []
for l in body:
    l = re.sub(r' @(?:"(?:[^"\\]|\\.)*"|\S+)$', '', l)
    l = re.sub(r'^(\s*buffer [^=]*?) = \[.*\]$', r'\1', l)  # buffer data: placeholders in .dl
    out.append(ref.sub(ren, re.sub(r'^graph \S+ \{', 'graph {', l)))
print('\n'.join(out[:1] + sorted(ref.sub(ren, l) for l in consts) + out[1:]))
PY
}
same_ir() { # A.ir B.ir what
  canon "$1" > "$1.c"; canon "$2" > "$2.c"
  diff "$1.c" "$2.c" > "$T/diff" || { head -20 "$T/diff" >&2; fail "$3: the IR differs"; }
}

# 1. the sample MLP: .dl and ONNX give the same program
for mode in infer train; do
  "$DLCC" "$S/samples/mlp/mlp.onnx" --emit ir --mode $mode --optimizer adam --batch 64 2>/dev/null > "$T/onnx.ir"
  "$DLCC" "$S/samples/mlp/mlp.dl" --emit ir --mode $mode 2>/dev/null > "$T/dl.ir"
  same_ir "$T/onnx.ir" "$T/dl.ir" "mlp.dl vs mlp.onnx ($mode)"
done
# the canonical comparison does see a different model
"$DLCC" "$F/mlp_small.onnx" --emit ir --mode infer 2>/dev/null > "$T/other.ir"
canon "$T/other.ir" > "$T/other.c"; canon "$T/dl.ir" > "$T/dl.c"
! cmp -s "$T/other.c" "$T/dl.c" || fail "canon: different models compare equal"
echo "ok mlp.dl: same IR as mlp.onnx"

# 2. same weights, same losses: the .dl model's own seeded initial weights (saved after a step
#    with lr 0), loaded into both artifacts, 12 Adam steps on the digits
"$DLCC" "$S/samples/mlp/mlp.dl" -o "$T/dl.so" 2>/dev/null
"$DLCC" "$S/samples/mlp/mlp.onnx" -o "$T/onnx.so" --optimizer adam --lr 0.001 --batch 64 2>/dev/null
"$DLCC" "$S/samples/mlp/mlp.dl" -o "$T/zero.so" --optimizer sgd --lr 0 2>/dev/null
"$DLCC" train "$T/zero.so" --input x="$D/digits_train_x.npy" --label "$D/digits_train_y.npy" \
  --batch 64 --steps 1 --save "$T/init.safetensors" --device "$DEV" >/dev/null
for m in dl onnx; do
  "$DLCC" train "$T/$m.so" --input x="$D/digits_train_x.npy" --label "$D/digits_train_y.npy" \
    --batch 64 --steps 12 --no-shuffle --load "$T/init.safetensors" --log "$T/$m.csv" --device "$DEV" >/dev/null
done
$CMP csv "$T/dl.csv" "$T/onnx.csv" --col loss --rtol 1e-6 >/dev/null || fail "mlp.dl vs mlp.onnx losses"
echo "ok mlp.dl: same losses as mlp.onnx from the same weights"

# 3. mlp_small.dl from PyTorch's initial weights gives PyTorch's losses
for opt in sgd adam; do
  lr=0.1; [ $opt = adam ] && lr=0.01
  "$DLCC" "$S/tests/lit/dsl/Inputs/mlp_small.dl" -o "$T/small_$opt.so" --optimizer $opt --lr $lr --batch 4 2>/dev/null
  "$DLCC" train "$T/small_$opt.so" --input x="$F/x.npy" --label "$F/y.npy" --batch 4 --steps 10 --no-shuffle \
    --load "$F/init_mlp_small.safetensors" --log "$T/small_$opt.csv" --device "$DEV" >/dev/null
  $CMP csv "$T/small_$opt.csv" "$F/losses_$opt.csv" --col loss --rtol 1e-4 >/dev/null || fail "mlp_small.dl $opt losses vs PyTorch"
done
echo "ok mlp_small.dl: PyTorch's losses (sgd, adam)"

# 4. ONNX -> .dl -> IR equals ONNX -> IR, inference and training programs
for m in "$S"/tests/fixtures/models/*.onnx "$S"/tests/fixtures/train/*.onnx "$S/samples/mlp/mlp.onnx"; do
  n=$(basename "$m" .onnx)
  "$DLCC" "$m" --emit dl -o "$T/$n.dl" 2>/dev/null
  for mode in infer train; do
    "$DLCC" "$m" --emit ir --mode $mode 2>/dev/null > "$T/$n.onnx.ir"
    "$DLCC" "$T/$n.dl" --emit ir --mode $mode 2>/dev/null > "$T/$n.dl.ir" || fail "$n: the emitted .dl does not compile"
    same_ir "$T/$n.onnx.ir" "$T/$n.dl.ir" "$n round trip ($mode)"
  done
  echo "ok $n: ONNX -> .dl -> IR"
done
