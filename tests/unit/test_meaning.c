/*
 * test_meaning.c — every clean-up pass preserves meaning on every end-to-end model.
 *
 * For each model of the test suite (tests/fixtures/models/ and tests/fixtures/train/, every .onnx,
 * samples/mlp/mlp.onnx) the forward graph goes through mark-params and then, pass by pass, the
 * forward clean-up (fold, dce, cse, simplify): each pass runs on a clone, and the reference
 * interpreter (float64) runs the graph before and after on the same seeded random inputs. Then
 * the training program is built (cross-entropy, or none for a scalar output; SGD with momentum,
 * so the step reads and writes optimizer state) and each pass, and the pipeline's
 * cse → simplify → dce, is checked the same way over one training step: the loss, every output,
 * and every parameter and state after the update. dce, cse and simplify must agree bit for bit
 * (exact rewrites); fold stores its results in the node's dtype, so it agrees to float32
 * rounding. The mixed-precision pass (fp16, bf16) agrees bit for bit too: in float64 the
 * interpreter does not round to half precision, so this checks that its Casts rewire every
 * product to the same operands (its rounding is checked by tests/e2e/mixed_precision.sh).
 * The im2col lowering (every convolution, and after mixed precision) and batch-merge (alone, in
 * the pipeline's cse → simplify → batch-merge → dce, and before mixed precision, whose Casts the
 * merged products' row views share) agree to 1e-12: their matrix products
 * (and Col2Im) add the same terms grouped differently, which in float64 moves a sum by a few
 * ulps (|difference| <= n·2^-53·Σ|terms| for n terms, n ≈ BATCH·T here). fuse (alone, and
 * at the end of the training pipeline in bf16) agrees bit for bit: its only rewrites are
 * ReluGrad reading the ReLU's output instead of its input and, for a product epilogue, the
 * ReLU's bit-mask (ReluMask, ReluMaskGrad) standing for y > 0.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx.h"
#include "ir/interp.h"
#include "passes/passes.h"

#define BATCH 3

static uint64_t rng;
static double urand(void) /* [-1, 1) */
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (double)(rng >> 11) / (double)(1ull << 52) - 1.0;
}

/* inputs and label drawn from a seed; label ids below the classes of outputs[0] */
static void feed(Interp *it, const Graph *g)
{
	rng = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < g->ninputs; i++) {
		int64_t n = ir_numel_at(&g->inputs[i]->shape, BATCH);
		double *d = malloc((n + 1) * sizeof *d);
		for (int64_t k = 0; k < n; k++)
			d[k] = ir_dt_is_float(g->inputs[i]->dt) ? urand() : 0;
		cr_assert_eq(interp_set(it, g->inputs[i], d, DT_F64), 0, "%s", interp_error(it));
		free(d);
	}
	if (!g->label)
		return;
	const Shape *o = &g->outputs[0]->shape;
	int64_t n = ir_numel_at(&g->label->shape, BATCH), classes = o->rank ? ir_dim_at(o->d[o->rank - 1], BATCH) : 1;
	int64_t *t = malloc((n + 1) * sizeof *t);
	for (int64_t k = 0; k < n; k++)
		t[k] = (int64_t)((urand() + 1) / 2 * classes) % classes;
	cr_assert_eq(interp_set(it, g->label, t, DT_I64), 0, "%s", interp_error(it));
	free(t);
}

/* the values compared: loss, outputs, then parameters and states (after the update) */
static int watched(const Graph *g, const Value **v)
{
	int n = 0;
	if (g->loss)
		v[n++] = g->loss;
	for (int i = 0; i < g->noutputs; i++)
		v[n++] = g->outputs[i];
	for (int i = 0; i < g->nparams; i++)
		v[n++] = g->params[i];
	for (int i = 0; i < g->nstates; i++)
		v[n++] = g->states[i];
	return n;
}

/* one step; every watched value appended to *out (float64) */
static double *run(const Graph *g, int64_t *len)
{
	char err[512];
	Interp *it = interp_new(g, DT_F64, BATCH, err, sizeof err);
	cr_assert(it, "%s", err);
	feed(it, g);
	cr_assert_eq(interp_run(it, 1), 0, "%s: %s", g->name, interp_error(it));
	const Value *v[1024];
	int nv = watched(g, v);
	int64_t total = 0;
	for (int i = 0; i < nv; i++)
		total += ir_numel_at(&v[i]->shape, BATCH);
	double *out = malloc((total + 1) * sizeof *out), *p = out;
	for (int i = 0; i < nv; i++) {
		cr_assert_eq(interp_get_f64(it, v[i], p), 0, "%s", interp_error(it));
		p += ir_numel_at(&v[i]->shape, BATCH);
	}
	interp_free(it);
	*len = total;
	return out;
}

/* pass `name` on a clone of g gives what g gives; tol 0 means bit for bit */
static void check_pass(const char *model, const Graph *g, const char *name, double tol)
{
	Graph *h = ir_graph_clone(g);
	char list[64];
	snprintf(list, sizeof list, "%s", name);
	for (char *save, *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save))
		cr_assert_eq(pass_run_named(h, p), 0, "%s: %s: %s", model, p, h->err);
	cr_assert_eq(ir_verify(h), 0, "%s after %s: %s", model, name, h->err);
	int64_t n1, n2;
	double *a = run(g, &n1), *b = run(h, &n2);
	cr_assert_eq(n1, n2);
	for (int64_t k = 0; k < n1; k++) {
		int same = a[k] == b[k] || (isnan(a[k]) && isnan(b[k]));
		cr_assert(same || fabs(a[k] - b[k]) <= tol * (1 + fabs(a[k])),
			  "%s (%s), %s: element %lld of the watched values: %.17g before, %.17g after",
			  model, g->loss ? "training" : "forward", name, (long long)k, a[k], b[k]);
	}
	free(a);
	free(b);
	ir_graph_free(h);
}

static const char *const passes[] = {"fold", "dce", "cse", "simplify", "cse,simplify,dce", "mixed-fp16",
				     "mixed-bf16", "im2col-all", "mixed-fp16,im2col-all", "im2col", "batch-merge",
				     "cse,simplify,batch-merge,dce", "cse,simplify,batch-merge,dce,mixed-fp16", "fuse",
				     "cse,simplify,batch-merge,dce,mixed-bf16,fuse"};

/* fold rounds to the node's dtype; im2col and batch-merge sum the same products in another
 * grouping (float64: relative differences near 1e-16 per sum, far below 1e-12) */
static double pass_tol(const char *pass)
{
	return !strcmp(pass, "fold") ? 1e-6 : strstr(pass, "im2col") || strstr(pass, "batch-merge") ? 1e-12 : 0;
}

static void check_model(const char *path)
{
	char err[512] = "";
	Graph *g = onnx_load(path, 0, err, sizeof err);
	cr_assert(g, "%s", err);
	cr_assert_eq(pass_mark_params(g), 0, "%s", g->err);
	for (size_t i = 0; i < sizeof passes / sizeof *passes; i++)
		check_pass(path, g, passes[i], pass_tol(passes[i]));
	cr_assert_eq(pass_fold_constants(g), 0);
	cr_assert_eq(pass_dce(g), 0);
	TrainOpts o;
	train_opts_default(&o, "momentum");
	o.loss = g->outputs[0]->shape.rank == 0 ? "none" : "cross_entropy";
	cr_assert_eq(pass_build_training(g, &o), 0, "%s: %s", path, g->err);
	for (size_t i = 0; i < sizeof passes / sizeof *passes; i++)
		check_pass(path, g, passes[i], pass_tol(passes[i]));
	ir_graph_free(g);
}

static int check_dir(const char *dir)
{
	DIR *d = opendir(dir);
	cr_assert(d, "%s", dir);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		if (l < 5 || strcmp(e->d_name + l - 5, ".onnx"))
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		check_model(path);
		n++;
	}
	closedir(d);
	return n;
}

Test(meaning, fixture_models) { cr_assert_geq(check_dir(TESTS_DIR "/fixtures/models"), 9); }
Test(meaning, training_fixtures) { cr_assert_geq(check_dir(TESTS_DIR "/fixtures/train"), 2); }
Test(meaning, sample_mlp) { check_model(TESTS_DIR "/../samples/mlp/mlp.onnx"); }
