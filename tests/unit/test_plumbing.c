/*
 * test_plumbing.c — the reference interpreter against PyTorch on the data-path plumbing ops.
 *
 * tests/fixtures/plumbing (made by tools/fixtures/make_attention.py) holds one tiny ONNX model
 * per case — Gather (embedding, negative indices, any axis), Slice (negative steps, clamped
 * ends), Split (sizes input; num_outputs, opset 18), Concat, Expand, Trilu, Where, Cast to int
 * and bool, the comparisons, And/Or/Not, Pow (tensor and integer-constant exponents),
 * Reciprocal, variadic Max, Min — with its inputs and PyTorch's result. Each is imported by the
 * ONNX frontend, run by the interpreter in float64 and compared with the result (1e-6 relative;
 * integer and bool results exactly).
 */
#include <criterion/criterion.h>

#include "harness.h"

#define DIR_ TESTS_DIR "/fixtures/plumbing/"

Test(plumbing, interpreter_matches_pytorch)
{
	int cases = th_torch_fixtures(DIR_);
	cr_expect_geq(cases, 25, "only %d cases", cases);
}
