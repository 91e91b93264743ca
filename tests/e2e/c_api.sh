#!/usr/bin/env bash
# The C API sample (samples/c_api/train_digits.c) links a generated library through
# include/dlcc/dlcc.h and trains and evaluates the model itself, with no dlcc binary involved.
source "$(dirname "$0")/lib.bash"
"$DLCC" "$S/samples/mlp/mlp.onnx" -o "$T/libmlp.so" --optimizer adam --lr 0.002 --batch 64 2>/dev/null
cc -Wall -Werror -I"$S/include" "$S/samples/c_api/train_digits.c" "$T/libmlp.so" \
  -Wl,-rpath,"$T" -o "$T/train_digits"
DLCC_DEVICE=$DEV "$T/train_digits" "$S/samples/data" | tee "$T/log"
acc=$(sed -n 's/^held-out accuracy: \([0-9.]*\)%.*/\1/p' "$T/log")
awk -v a="$acc" 'BEGIN { exit !(a > 90) }' || fail "held-out accuracy '$acc' is not above 90%"
