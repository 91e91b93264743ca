/*
 * test_reduce_torch.c — the ONNX import and the reference interpreter against PyTorch on the
 * reduction/loss block: Einsum in its matrix forms (matmul, batched, the two attention
 * contractions, transpose, row sum, implicit output, sums of private letters),
 * SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss (class weights, ignore_index, spatial
 * dims, each reduction), ReduceMax/Min/Prod and ArgMax with ties (select_last_index).
 *
 * tests/fixtures/reduce (made by tools/fixtures/make_reduce.py) holds one tiny ONNX model per
 * case with its inputs and PyTorch's result; each is imported, run by the interpreter in float64
 * and compared (1e-6 relative; integer results exactly). The harness is th_torch_fixtures in
 * harness.c.
 */
#include <criterion/criterion.h>

#include "harness.h"

#define DIR_ TESTS_DIR "/fixtures/reduce/"

Test(reduce_torch, interpreter_matches_pytorch)
{
	int cases = th_torch_fixtures(DIR_);
	cr_expect_geq(cases, 17, "only %d cases", cases);
}
