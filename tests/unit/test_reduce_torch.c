/*
 * test_reduce_torch.c — the ONNX import and the reference interpreter against PyTorch on the
 * reduction/loss block: Einsum in its matrix forms (matmul, batched, the two attention
 * contractions, transpose, row sum, implicit output, sums of private letters),
 * SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss (class weights, ignore_index, spatial
 * dims, each reduction), ReduceMax/Min/Prod and ArgMax with ties (select_last_index).
 *
 * tests/fixtures/reduce (made by tools/fixtures/make_reduce.py) holds one tiny ONNX model per
 * case with its inputs and PyTorch's result; each is imported, run by the interpreter in float64
 * and compared (1e-6 relative; integer results exactly). The harness is test_plumbing.c's.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx.h"
#include "ir/interp.h"
#include "npy.h"

#define DIR_ TESTS_DIR "/fixtures/reduce/"

static DType npy_dt(dlcc_dtype d)
{
	return d == DLCC_I64 ? DT_I64 : d == DLCC_BOOL ? DT_BOOL : d == DLCC_F64 ? DT_F64 : DT_F32;
}

static void load_npy(const char *path, NpyArray *a)
{
	char err[512];
	cr_assert_eq(npy_load(path, a, err, sizeof err), 0, "%s", err);
}

static void run_case(const char *name)
{
	char path[512], err[512] = "";
	snprintf(path, sizeof path, DIR_ "%s.onnx", name);
	Graph *g = onnx_load(path, 0, err, sizeof err);
	cr_assert(g, "%s: %s", name, err);
	Interp *it = interp_new(g, DT_F64, 1, err, sizeof err);
	cr_assert(it, "%s: %s", name, err);
	for (int i = 0; i < g->ninputs; i++) {
		NpyArray a;
		snprintf(path, sizeof path, DIR_ "%s_in%d.npy", name, i);
		load_npy(path, &a);
		cr_assert_eq(interp_set(it, g->inputs[i], a.data, npy_dt(a.dtype)), 0, "%s", interp_error(it));
		npy_free(&a);
	}
	cr_assert_eq(interp_run(it, 0), 0, "%s: %s", name, interp_error(it));
	NpyArray want;
	snprintf(path, sizeof path, DIR_ "%s_out.npy", name);
	load_npy(path, &want);
	char e2[256];
	cr_assert_eq(npy_convert(&want, DLCC_F64, e2, sizeof e2), 0, "%s", e2);
	const Value *y = g->outputs[0];
	int64_t n = ir_numel(&y->shape);
	cr_assert_eq(n, npy_numel(&want), "%s: %lld elements, PyTorch %lld", name, (long long)n,
		     (long long)npy_numel(&want));
	double *got = malloc((n + 1) * sizeof *got), *w = want.data;
	cr_assert_eq(interp_get_f64(it, y, got), 0, "%s", interp_error(it));
	double tol = ir_dt_is_float(y->dt) ? 1e-6 : 0;
	for (int64_t k = 0; k < n; k++)
		cr_expect(fabs(got[k] - w[k]) <= tol * (1 + fabs(w[k])), "%s[%lld]: interpreter %.9g, PyTorch %.9g",
			  name, (long long)k, got[k], w[k]);
	free(got);
	npy_free(&want);
	interp_free(it);
	ir_graph_free(g);
}

Test(reduce_torch, interpreter_matches_pytorch)
{
	DIR *d = opendir(DIR_);
	cr_assert(d, "no %s", DIR_);
	int cases = 0;
	for (struct dirent *e; (e = readdir(d));) {
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".onnx") != 0)
			continue;
		char name[256];
		snprintf(name, sizeof name, "%.*s", (int)(len - 5), e->d_name);
		run_case(name);
		cases++;
	}
	closedir(d);
	cr_expect_geq(cases, 17, "only %d cases", cases);
}
