#!/usr/bin/env bash
# Bad input gets one clear line on stderr and exit status 2, never a crash — checked with the
# AddressSanitizer build of dlcc when tools/test.sh made one (DLCC_ASAN_BUILD).
source "$(dirname "$0")/lib.bash"
X=$DLCC
[ -n "${DLCC_ASAN_BUILD:-}" ] && [ -x "$DLCC_ASAN_BUILD/bin/dlcc" ] && X=$DLCC_ASAN_BUILD/bin/dlcc
export ASAN_OPTIONS=detect_leaks=1:exitcode=99
F=$S/tests/fixtures/bad
TR=$S/tests/fixtures/train
expect2() { # description pattern command...
  local what=$1 pat=$2; shift 2
  set +e; "$@" >"$T/out" 2>"$T/err"; local rc=$?; set -e
  [ $rc -eq 2 ] || { cat "$T/err"; fail "$what: exit status $rc, expected 2"; }
  [ "$(wc -l <"$T/err")" -eq 1 ] || { cat "$T/err"; fail "$what: expected one line on stderr"; }
  grep -q -- "$pat" "$T/err" || { cat "$T/err"; fail "$what: message does not mention '$pat'"; }
  echo "ok $what: $(cat "$T/err")"
}
expect2 "truncated onnx" "truncated.onnx" "$X" "$F/truncated.onnx" -o "$T/a.so"
expect2 "corrupt onnx" "corrupt.onnx" "$X" "$F/corrupt.onnx" -o "$T/a.so"
expect2 "empty onnx" "empty.onnx" "$X" "$F/empty.onnx" -o "$T/a.so"
expect2 "unknown operator" "Frobnicate" "$X" "$F/unknown_op.onnx" -o "$T/a.so"
expect2 "unsupported operator" "Hardmax" "$X" "$F/unsupported_op.onnx" -o "$T/a.so"
expect2 "missing file" "nothere.onnx" "$X" "$T/nothere.onnx" -o "$T/a.so"
expect2 "unknown option" "--frobnicate" "$X" "$TR/mlp_small.onnx" -o "$T/a.so" --frobnicate
expect2 "bad optimizer" "rmsprop" "$X" "$TR/mlp_small.onnx" -o "$T/a.so" --optimizer rmsprop
[ ! -e "$T/a.so" ] || fail "a failed compile left $T/a.so behind"
"$DLCC" "$TR/mlp_small.onnx" -o "$T/m.so" --batch 4 2>/dev/null
expect2 "wrong input shape" "wrong_shape_x.npy" "$X" train "$T/m.so" --input x="$F/wrong_shape_x.npy" --label "$TR/y.npy" --batch 4 --steps 1 --device "$DEV"
expect2 "fortran order" "Fortran" "$X" train "$T/m.so" --input x="$F/fortran.npy" --label "$TR/y.npy" --batch 4 --steps 1 --device "$DEV"
expect2 "bad npy magic" "bad_magic.npy" "$X" run "$T/m.so" --input x="$F/bad_magic.npy" --output-dir "$T/o" --device "$DEV"
expect2 "truncated npy" "truncated_data.npy" "$X" run "$T/m.so" --input x="$F/truncated_data.npy" --output-dir "$T/o" --device "$DEV"
expect2 "label out of range" "out of range" "$X" train "$T/m.so" --input x="$TR/x.npy" --label "$F/label_out_of_range.npy" --batch 4 --steps 1 --device "$DEV"
expect2 "batch too large" "recompile" "$X" train "$T/m.so" --input x="$TR/x.npy" --label "$TR/y.npy" --batch 16 --steps 1 --device "$DEV"
expect2 "missing artifact" "nothere.so" "$X" run "$T/nothere.so" --input x="$TR/x.npy" --output-dir "$T/o"
expect2 "not an artifact" "not a dlcc artifact" "$X" run /lib/x86_64-linux-gnu/libm.so.6 --input x="$TR/x.npy" --output-dir "$T/o"
