#!/usr/bin/env bash
# The ONNX conformance report (`dlcc conform`) over the public test cases: inference through the
# generated kernels in the CPU emulation. Fails when any case dlcc accepts computes a wrong
# result (a "fail"); unsupported cases are only counted, so the test stays green as operators
# are added. The data: $DLCC_ONNX_TESTS, else ../shared/onnx-tests beside the source tree.
source "$(dirname "$0")/lib.bash"
D=${DLCC_ONNX_TESTS:-}
for c in "$S/../shared/onnx-tests" "$S/../../shared/onnx-tests" /work/shared/onnx-tests; do
  [ -z "$D" ] && [ -d "$c/node" ] && D=$c
done
[ -n "$D" ] || { echo "skipped: no ONNX test data (set DLCC_ONNX_TESTS)"; exit 0; }
"$DLCC" conform "$D/node" "$D/simple" "$D/pytorch-operator" "$D/pytorch-converted" \
  --jobs 2 --report "$T/conformance.md" || fail "conformance: a supported case fails (see FAIL lines)"
# the runner itself must keep working: the node suite passes at least the cases it passed when
# this test was last raised (605 of them)
pass=$(awk -F'|' '$2 ~ /^ node / {gsub(/ /, "", $4); print $4}' "$T/conformance.md")
[ "${pass:-0}" -ge 605 ] || fail "conformance: only ${pass:-0} node cases pass (605 expected)"
total=$(awk -F'|' '$2 ~ /total/ {gsub(/ /, "", $4); print $4}' "$T/conformance.md")
[ "${total:-0}" -ge 711 ] || fail "conformance: only ${total:-0} cases pass in all (711 expected)"
echo "ok conformance"
