#!/usr/bin/env bash
# The samples written in the model language (docs/dl.md), besides samples/mlp (tests/e2e/dsl.sh):
# - samples/cnn/cnn.dl (conv-relu-maxpool-conv-relu-flatten-linear on the 8x8 digits) and
#   samples/gpt/gpt.dl (a 2-block GPT-style decoder over 32 tokens) compile with their train { }
#   sections, and `dlcc check` agrees with the interpreter (inference and 5 training steps);
# - each trains: the CNN 60 steps on samples/data's digits, the GPT 30 steps on a synthetic
#   repeating token sequence (next-token prediction, Adam with its file's warm-up + cosine
#   learning-rate schedule); the loss falls by a clear margin.
source "$(dirname "$0")/lib.bash"
D=$S/samples/data
PY=${DLCC_PYTHON:-/usr/bin/python3}

# falls CSV STEPS-AVERAGED RATIO: the mean loss of the last K steps < RATIO x that of the first K
falls() {
  "$PY" - "$@" <<'PY'
import csv, sys
path, k, ratio = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
loss = [float(r['loss']) for r in csv.DictReader(open(path))]
first, last = sum(loss[:k]) / k, sum(loss[-k:]) / k
print('loss %.4f -> %.4f (first and last %d steps of %d)' % (first, last, k, len(loss)))
sys.exit(0 if last < ratio * first else 1)
PY
}

for m in cnn gpt; do
  "$DLCC" check "$S/samples/$m/$m.dl" --steps 5 2>/dev/null > "$T/check_$m.txt" || { cat "$T/check_$m.txt" >&2; fail "$m.dl: dlcc check"; }
  grep -q ': ok' "$T/check_$m.txt" || fail "$m.dl: dlcc check did not say ok"
  echo "ok $m.dl: dlcc check (artifact in CPU emulation vs the interpreter, 5 steps)"
  "$DLCC" "$S/samples/$m/$m.dl" -o "$T/$m.so" 2>/dev/null || fail "$m.dl does not compile"
done

# the CNN on the digits (the train { } section's Adam, lr 0.01, batch 8)
"$DLCC" train "$T/cnn.so" --input x="$D/digits_train_x.npy" --label "$D/digits_train_y.npy" \
  --batch 8 --steps 60 --no-shuffle --log "$T/cnn.csv" --device "$DEV" >/dev/null
falls "$T/cnn.csv" 10 0.6 || fail "cnn.dl: the loss does not fall"
echo "ok cnn.dl: trains on the digits"

# the GPT on a repeating sequence of 7 random tokens: windows of 8, labels shifted by one
"$PY" - "$T" <<'PY'
import numpy as np, sys
rng = np.random.default_rng(0)
s = np.tile(rng.integers(0, 32, size=7), 100)
x = np.stack([s[i:i + 8] for i in range(256)]).astype(np.int64)
y = np.stack([s[i + 1:i + 9] for i in range(256)]).astype(np.int64)
np.save(sys.argv[1] + '/tokens.npy', x)
np.save(sys.argv[1] + '/next.npy', y)
PY
"$DLCC" train "$T/gpt.so" --input tokens="$T/tokens.npy" --label "$T/next.npy" \
  --batch 16 --steps 30 --no-shuffle --log "$T/gpt.csv" --device "$DEV" >/dev/null
falls "$T/gpt.csv" 5 0.3 || fail "gpt.dl: the loss does not fall"
echo "ok gpt.dl: learns the repeating sequence"
