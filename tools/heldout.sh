#!/usr/bin/env bash
# Models dlcc was not written against (tools/fixtures/make_heldout.py: eight torchvision CNNs and a
# TransformerEncoder, exported from PyTorch), through the command-line contract, outside CI:
# inference (`dlcc run`, fp32) against PyTorch's output (1e-4 of the largest |output|), and
# `dlcc check` of 2 momentum-SGD training steps: the generated kernels, compiled with
# --precision fp64, against the float64 interpreter (in fp32 the comparison measures float32
# rounding: eval-mode exports fold BatchNorm away, so some of these nets train unnormalised).
#   tools/heldout.sh BUILD_DIR [MODEL...]     (HELDOUT_DIR: where the models go, /tmp/dlcc-heldout)
set -uo pipefail
S=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:?usage: tools/heldout.sh BUILD_DIR [MODEL...]}" && pwd); shift
D=${HELDOUT_DIR:-/tmp/dlcc-heldout}
/usr/bin/python3 "$S/tools/fixtures/make_heldout.py" "$D" "$@" 2>/dev/null | grep -v Warning
fails=0
for f in "$D"/*.onnx; do
  m=$(basename "$f" .onnx)
  [ $# -gt 0 ] && [[ " $* " != *" $m "* ]] && continue
  t0=$(date +%s)
  if "$B/bin/dlcc" "$f" -o "$D/$m.so" --mode infer --batch 2 2>/dev/null &&
     "$B/bin/dlcc" run "$D/$m.so" --input x="$D/${m}_x.npy" --output-dir "$D/$m.out" >/dev/null &&
     r=$(/usr/bin/python3 -c "
import numpy as np, sys
a = np.load('$D/$m.out/logits.npy'); b = np.load('$D/${m}_y.npy')
e = abs(a - b).max() / max(abs(b).max(), 1e-30)
print('%.2g' % e); sys.exit(0 if e < 1e-4 else 1)"); then inf="inference ok (max err $r of max |y|)"
  else inf="inference FAILED ${r:-}"; fails=$((fails+1)); fi
  c=$("$B/bin/dlcc" check "$f" --steps 2 --batch 2 --run-batch 2 --optimizer momentum --lr 0.01 --precision fp64 2>&1 | tail -1)
  case $c in *": ok"*) tr="training check ok" ;; *) tr="training check FAILED: $c"; fails=$((fails+1)) ;; esac
  echo "$m: $inf; $tr ($(( $(date +%s) - t0 )) s)"
done
echo "$fails failure(s)"
[ "$fails" = 0 ]
