/*
 * test_reduce.c — the reduction, dropout and loss block of ops.def (ReduceMax/Min/Prod, ArgMax,
 * Dropout, NllLoss): float64 finite-difference checks of their gradient rules
 * (passes/grad_reduce.c), the generated kernels against the interpreter through the CPU
 * emulation (forward ops, gradient graphs, and a training program with Dropout over several
 * steps, where the step number reaches the kernels), and the inference pass.
 *
 * The finite-difference harness is test_grad.c's, cut down: loss = ReduceSum(y * R), central
 * differences (eps 1e-6, tolerance 1e-6) on every element of each differentiated value, at
 * batch 3. Values lie in ±[0.2, 1], so no max/min group has a near-tie; ReduceProd is also
 * checked with exact zeros (one and two per group), where its gradient is still exact because
 * a product is linear in each element. The ONNX semantics themselves are checked against the
 * ONNX reference outputs by tests/e2e/conformance.sh (node tests of every op here).
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "dlcc/dlcc.h"
#include "ir/interp.h"
#include "passes/grad.h"
#include "passes/passes.h"
#include "passes/pipeline.h"

#include "harness.h"

#define BATCH 3
#define SH(...) ir_shape(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), (int64_t[]){__VA_ARGS__})
#define N (-1)
#define MAXW 4

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static Value *fin(Graph *g, Node *n)
{
	cr_assert_eq(ir_finish(g, n), 0, "%s", g->err);
	return n->out[0];
}

static Value *reduce(Graph *g, Op op, Value *x, int n, const int64_t *axes, int keep)
{
	Node *m = ir_begin(g, op, NULL, 1, &x);
	ir_set_ints(g, m, "axes", n, axes);
	ir_set_i(g, m, "keepdims", keep);
	return fin(g, m);
}

static Node *nll(Graph *g, Value *lp, Value *t, Value *w, const char *red, int has_ii, int64_t ii)
{
	Node *m = ir_begin(g, OP_NLL_LOSS, NULL, w ? 3 : 2, (Value *[]){lp, t, w});
	ir_set_s(g, m, "reduction", red);
	if (has_ii)
		ir_set_i(g, m, "ignore_index", ii);
	fin(g, m);
	return m;
}

static Node *dropout(Graph *g, Value *x, double ratio, int64_t seed)
{
	Node *m = ir_begin(g, OP_DROPOUT, NULL, 1, &x);
	ir_set_f(g, m, "ratio", ratio);
	ir_set_i(g, m, "seed", seed);
	fin(g, m);
	return m;
}

/* ---- finite differences ---- */

typedef struct {
	Graph *g;
	Value *w[MAXW], *lab;
	double *data[MAXW];
	int nw;
	int64_t classes;
} Case;

static Value *var(Case *c, Shape s)
{
	int64_t n = ir_numel_at(&s, BATCH);
	double *d = malloc((n ? n : 1) * sizeof *d);
	for (int64_t k = 0; k < n; k++)
		d[k] = (0.2 + 0.8 * rnd()) * (rnd() < 0.5 ? -1 : 1);
	char name[8];
	snprintf(name, sizeof name, "w%d", c->nw);
	Value *v = ir_value(c->g, ir_has_batch(&s) ? V_INPUT : V_PARAM, name, DT_F64, s, ir_has_batch(&s) ? NULL : d);
	c->w[c->nw] = v;
	c->data[c->nw++] = d;
	return v;
}

static double run_loss(Interp *it, Value *loss)
{
	double l;
	cr_assert_eq(interp_run(it, 1), 0, "%s", interp_error(it));
	cr_assert_eq(interp_get_f64(it, loss, &l), 0, "%s", interp_error(it));
	return l;
}

static void set_all(Case *c, Interp *it, Value *r)
{
	int64_t nr = ir_numel_at(&r->shape, BATCH), *l = NULL;
	double *rd = malloc((nr + 1) * sizeof *rd);
	for (int64_t k = 0; k < nr; k++)
		rd[k] = rnd() * 2 - 1;
	cr_assert_eq(interp_set(it, r, rd, DT_F64), 0, "%s", interp_error(it));
	free(rd);
	for (int i = 0; i < c->nw; i++)
		interp_set(it, c->w[i], c->data[i], DT_F64);
	if (c->lab) {
		int64_t nl = ir_numel_at(&c->lab->shape, BATCH);
		l = malloc((nl + 1) * sizeof *l);
		for (int64_t k = 0; k < nl; k++)
			l[k] = (int64_t)(rnd() * c->classes);
		cr_assert_eq(interp_set(it, c->lab, l, DT_I64), 0, "%s", interp_error(it));
		free(l);
	}
}

static void fd_compare(Case *c, Interp *it, Value *loss, int i, const double *an, const char *what)
{
	for (int64_t k = 0; k < ir_numel_at(&c->w[i]->shape, BATCH); k++) {
		double x = c->data[i][k], lp, lm;
		c->data[i][k] = x + 1e-6;
		interp_set(it, c->w[i], c->data[i], DT_F64);
		lp = run_loss(it, loss);
		c->data[i][k] = x - 1e-6;
		interp_set(it, c->w[i], c->data[i], DT_F64);
		lm = run_loss(it, loss);
		c->data[i][k] = x;
		interp_set(it, c->w[i], c->data[i], DT_F64);
		double fd = (lp - lm) / 2e-6;
		cr_expect(fabs(an[k] - fd) <= 1e-6 * fmax(1, fmax(fabs(fd), fabs(an[k]))),
			  "%s: d/d%s[%lld]: analytic %.12g, finite difference %.12g", what, c->w[i]->name,
			  (long long)k, an[k], fd);
	}
}

/* differentiate ReduceSum(y * R) with respect to every var and compare */
static void fd_check(Case *c, Value *y, const char *what)
{
	Value *r = ir_value(c->g, V_INPUT, "R", DT_F64, y->shape, NULL), *grads[MAXW];
	c->g->loss = reduce(c->g, OP_REDUCE_SUM, ir_op2(c->g, OP_MUL, y, r), 0, NULL, 0);
	cr_assert_eq(grad_backward(c->g, c->nw, c->w, grads), 0, "%s: %s", what, c->g->err);
	cr_assert_eq(ir_verify(c->g), 0, "%s: %s", what, c->g->err);
	char err[256];
	Interp *it = interp_new(c->g, DT_F64, BATCH, err, sizeof err);
	cr_assert(it, "%s: %s", what, err);
	set_all(c, it, r);
	run_loss(it, c->g->loss);
	for (int i = 0; i < c->nw; i++) {
		int64_t n = ir_numel_at(&c->w[i]->shape, BATCH);
		double *an = malloc((n + 1) * sizeof *an);
		cr_assert(ir_shape_eq(&grads[i]->shape, &c->w[i]->shape), "%s: gradient shape", what);
		cr_assert_eq(interp_get_f64(it, grads[i], an), 0, "%s", interp_error(it));
		fd_compare(c, it, c->g->loss, i, an, what);
		free(an);
	}
	interp_free(it);
}

static Case *case_new(void)
{
	Case *c = calloc(1, sizeof *c);
	c->g = ir_graph_new("reduce_grad");
	return c;
}

static void case_free(Case *c)
{
	for (int i = 0; i < c->nw; i++)
		free(c->data[i]);
	ir_graph_free(c->g);
	free(c);
}

static void check_reduce(Op op, Shape s, int n, const int64_t *axes, int keep, int zeros)
{
	Case *c = case_new();
	Value *x = var(c, s);
	for (int z = 0; z < zeros; z++) /* zeros in the first group(s): positions 0, 5, 10 */
		c->data[0][5 * z] = 0;
	fd_check(c, reduce(c->g, op, x, n, axes, keep), ir_ops[op].name);
	case_free(c);
}

Test(reduce, extreme_and_prod_grads)
{
	static const Op ops[] = {OP_REDUCE_MAX, OP_REDUCE_MIN, OP_REDUCE_PROD};
	for (int i = 0; i < 3; i++)
		for (int keep = 0; keep < 2; keep++) {
			check_reduce(ops[i], SH(N, 3, 4), 1, (int64_t[]){1}, keep, 0);
			check_reduce(ops[i], SH(N, 3, 4), 2, (int64_t[]){0, 2}, keep, 0);
			check_reduce(ops[i], SH(N, 3, 4), 0, NULL, keep, 0);
			check_reduce(ops[i], SH(2, 5), 1, (int64_t[]){1}, keep, 0);
		}
	for (int zeros = 1; zeros <= 3; zeros++) {
		check_reduce(OP_REDUCE_PROD, SH(N, 10), 1, (int64_t[]){1}, 1, zeros);
		check_reduce(OP_REDUCE_PROD, SH(N, 10), 0, NULL, 0, zeros);
	}
}

/* a tie: each of the k equal maxima gets dy / k */
Test(reduce, ties_split_evenly)
{
	Graph *g = ir_graph_new("ties");
	Value *x = ir_value(g, V_PARAM, "x", DT_F64, SH(4), (double[]){1, 3, 3, 2});
	g->loss = reduce(g, OP_REDUCE_MAX, x, 0, NULL, 0);
	Value *grad;
	cr_assert_eq(grad_backward(g, 1, &x, &grad), 0, "%s", g->err);
	char err[256];
	Interp *it = interp_new(g, DT_F64, 1, err, sizeof err);
	cr_assert_eq(interp_run(it, 1), 0, "%s", interp_error(it));
	double d[4];
	interp_get_f64(it, grad, d);
	cr_expect(d[0] == 0 && d[1] == 0.5 && d[2] == 0.5 && d[3] == 0, "%g %g %g %g", d[0], d[1], d[2], d[3]);
	interp_free(it);
	ir_graph_free(g);
}

Test(reduce, dropout_grad)
{
	Case *c = case_new();
	Node *d = dropout(c->g, var(c, SH(N, 7)), 0.3, 42);
	fd_check(c, d->out[0], "Dropout");
	case_free(c);
}

static void check_nll(Shape lps, const char *red, int weighted, int has_ii, int softmax)
{
	Case *c = case_new();
	Value *lp = var(c, lps), *w = weighted ? var(c, SH(lps.d[1])) : NULL;
	Shape ts = lps;
	for (int i = 1; i + 1 < lps.rank; i++)
		ts.d[i] = lps.d[i + 1];
	ts.rank--;
	c->classes = lps.d[1];
	c->lab = ir_value(c->g, V_INPUT, "t", DT_I64, ts, NULL);
	if (softmax) {
		Node *m = ir_begin(c->g, OP_LOG_SOFTMAX, NULL, 1, &lp);
		ir_set_i(c->g, m, "axis", 1);
		lp = fin(c->g, m);
	}
	char what[64];
	snprintf(what, sizeof what, "NllLoss %s w%d ii%d sm%d", red, weighted, has_ii, softmax);
	fd_check(c, nll(c->g, lp, c->lab, w, red, has_ii, 1)->out[0], what);
	case_free(c);
}

Test(reduce, nll_loss_grads)
{
	static const char *reds[] = {"none", "sum", "mean"};
	for (int r = 0; r < 3; r++)
		for (int wgt = 0; wgt < 2; wgt++)
			for (int ii = 0; ii < 2; ii++) {
				check_nll(SH(N, 4), reds[r], wgt, ii, 0);
				check_nll(SH(N, 3, 2, 2), reds[r], wgt, ii, 0);
				check_nll(SH(N, 4, 3), reds[r], wgt, ii, 1);
			}
}

/* ---- the inference pass and the RNG ---- */

Test(reduce, inference_drops_dropout)
{
	Graph *g = ir_graph_new("drop");
	Value *x = ir_value(g, V_INPUT, "x", DT_F32, SH(N, 4), NULL);
	Node *d = dropout(g, x, 0.5, 1);
	ir_add_output(g, ir_op1(g, OP_RELU, d->out[0]));
	Node *e = dropout(g, x, 0.5, 2);
	ir_add_output(g, e->out[0]);
	cr_assert_eq(pass_inference(g), 0);
	cr_assert_eq(g->nnodes, 2, "the first Dropout goes, the one whose output is a model output stays");
	cr_assert_eq(g->nodes[0]->op, OP_RELU);
	cr_assert_eq(g->nodes[0]->in[0], x);
	cr_assert_eq(ir_attr_f(g->nodes[1], "ratio", 1), 0.0);
	ir_graph_free(g);
}

Test(reduce, dropout_rng_rate_and_steps)
{
	uint64_t thr = ir_dropout_threshold(0.25);
	int kept = 0, same = 0, n = 100000;
	for (int i = 0; i < n; i++) {
		kept += ir_dropout_keep(7, 1, i, thr);
		same += ir_dropout_keep(7, 1, i, thr) == ir_dropout_keep(7, 2, i, thr);
	}
	cr_expect(fabs(kept / (double)n - 0.75) < 0.01, "kept %d of %d", kept, n);
	cr_expect(same < n * 0.7, "steps 1 and 2 agree on %d of %d", same, n); /* 0.625 expected */
	cr_expect(ir_dropout_keep(7, 1, 3, 0), "ratio 0 keeps everything");
}

/* ---- generated kernels against the interpreter ---- */

/* inputs: floats in [-1, 1], integers in [0, classes) */
static void **make_inputs(Graph *g, int batch, int classes)
{
	void **d = calloc(g->ninputs + 1, sizeof *d);
	for (int i = 0; i < g->ninputs; i++) {
		int64_t n = ir_numel_at(&g->inputs[i]->shape, batch);
		d[i] = calloc(n + 1, 8);
		for (int64_t k = 0; k < n; k++) {
			if (g->inputs[i]->dt == DT_I64)
				((int64_t *)d[i])[k] = (int64_t)(rnd() * classes);
			else
				((float *)d[i])[k] = (float)(rnd() * 2 - 1);
		}
	}
	return d;
}

static void expect_close(const char *what, const double *got, const double *want, int64_t n)
{
	for (int64_t k = 0; k < n; k++)
		cr_assert(fabs(got[k] - want[k]) <= 1e-5 * (1 + fabs(want[k])) || (isnan(got[k]) && isnan(want[k])),
			  "%s element %lld: generated %.9g, interpreter %.9g", what, (long long)k, got[k], want[k]);
}

/* every output of g from the artifact (the inference schedule: step 0) and the interpreter */
static void check_infer(Graph *g, int max_batch, int batch, int classes)
{
	ThArt a = th_art_open(g, NULL, max_batch, DT_F32);
	void **in = make_inputs(g, batch, classes), **outs = calloc(g->noutputs + 1, sizeof *outs);
	for (int i = 0; i < g->noutputs; i++)
		outs[i] = calloc(ir_numel_at(&g->outputs[i]->shape, batch) + 1, 8);
	cr_assert_eq(a.infer(a.m, batch, (const void *const *)in, outs), 0, "dlcc_infer: %s", a.error(a.m));
	char err[256];
	Interp *it = interp_new(g, DT_F32, batch, err, sizeof err);
	cr_assert(it, "%s", err);
	th_set_inputs(it, g, in, DT_F32);
	cr_assert_eq(interp_run(it, 0), 0, "%s", interp_error(it));
	for (int i = 0; i < g->noutputs; i++) {
		const Value *v = g->outputs[i];
		int64_t n = ir_numel_at(&v->shape, batch);
		double *want = calloc(n + 1, 8), *got = calloc(n + 1, 8);
		cr_assert_eq(interp_get_f64(it, v, want), 0, "%s", interp_error(it));
		for (int64_t k = 0; k < n; k++)
			got[k] = v->dt == DT_I64 ? (double)((int64_t *)outs[i])[k]
				 : v->dt == DT_BOOL ? ((unsigned char *)outs[i])[k] : ((float *)outs[i])[k];
		char what[64];
		snprintf(what, sizeof what, "output %d (%s)", i, ir_ops[v->def->op].name);
		expect_close(what, got, want, n);
		free(want);
		free(got);
	}
	interp_free(it);
	th_free_list(in, g->ninputs);
	th_free_list(outs, g->noutputs);
	th_art_close(&a);
}

static Node *arg_max(Graph *g, Value *x, int axis, int keep, int last)
{
	Node *m = ir_begin(g, OP_ARG_MAX, NULL, 1, &x);
	ir_set_i(g, m, "axis", axis);
	ir_set_i(g, m, "keepdims", keep);
	ir_set_i(g, m, "select_last_index", last);
	fin(g, m);
	return m;
}

Test(reduce, kernels_forward)
{
	Graph *g = ir_graph_new("reduce_fwd");
	Value *x = ir_value(g, V_INPUT, "x", DT_F32, SH(N, 4, 5), NULL);
	Value *t = ir_value(g, V_INPUT, "t", DT_I64, SH(N, 5), NULL);
	Value *t2 = ir_value(g, V_INPUT, "t2", DT_I64, SH(N), NULL);
	Value *w = ir_value(g, V_CONST, "w", DT_F32, SH(4), (float[]){0.5f, 1, 2, 0.25f});
	Value *ti = ir_value(g, V_CONST, "ti", DT_I64, SH(3, 2), (int64_t[]){3, -1, 4, 4, -5, 9});
	ir_add_output(g, reduce(g, OP_REDUCE_MAX, x, 1, (int64_t[]){1}, 1));
	ir_add_output(g, reduce(g, OP_REDUCE_MIN, x, 2, (int64_t[]){0, 2}, 0));
	ir_add_output(g, reduce(g, OP_REDUCE_PROD, x, 1, (int64_t[]){2}, 0));
	ir_add_output(g, reduce(g, OP_REDUCE_MAX, ti, 1, (int64_t[]){1}, 0));
	ir_add_output(g, arg_max(g, x, 1, 1, 0)->out[0]);
	ir_add_output(g, arg_max(g, x, 2, 0, 1)->out[0]);
	ir_add_output(g, arg_max(g, ti, 0, 0, 1)->out[0]);
	Node *d = dropout(g, x, 0.4, 1234);
	ir_add_output(g, d->out[0]);
	ir_add_output(g, d->out[1]);
	Node *ls = ir_begin(g, OP_LOG_SOFTMAX, NULL, 1, &x);
	ir_set_i(g, ls, "axis", 1);
	Value *lp = fin(g, ls);
	static const char *reds[] = {"none", "sum", "mean"};
	for (int r = 0; r < 3; r++) {
		Node *m = nll(g, lp, t, r == 1 ? NULL : w, reds[r], r != 0, 2);
		ir_add_output(g, m->out[0]);
		ir_add_output(g, m->out[1]);
	}
	Value *x2 = reduce(g, OP_REDUCE_SUM, x, 1, (int64_t[]){2}, 0); /* [N,4] */
	ir_add_output(g, nll(g, x2, t2, w, "mean", 0, 0)->out[0]);
	check_infer(g, 4, 3, 4);
	ir_graph_free(g);
}

/* the gradient kernels as inference outputs: d ReduceSum(f(w)) / dw */
Test(reduce, kernels_grads)
{
	Graph *g = ir_graph_new("reduce_grads");
	Value *x = ir_value(g, V_INPUT, "x", DT_F32, SH(N, 4, 5), NULL);
	Value *t = ir_value(g, V_INPUT, "t", DT_I64, SH(N, 5), NULL);
	float wd[20], cw[4] = {0.5f, 1, 2, 0.25f};
	for (int i = 0; i < 20; i++)
		wd[i] = i % 7 == 3 ? 0 : (float)(rnd() - 0.5);
	Value *w = ir_value(g, V_PARAM, "w", DT_F32, SH(4, 5), wd);
	Value *cwv = ir_value(g, V_PARAM, "cw", DT_F32, SH(4), cw);
	Value *xw = ir_op2(g, OP_MUL, x, w);
	Value *a = reduce(g, OP_REDUCE_MAX, xw, 1, (int64_t[]){2}, 0);
	Value *b = reduce(g, OP_REDUCE_PROD, xw, 1, (int64_t[]){1}, 1);
	Value *c = reduce(g, OP_REDUCE_MIN, dropout(g, xw, 0.2, 5)->out[0], 0, NULL, 0);
	Node *ls = ir_begin(g, OP_LOG_SOFTMAX, NULL, 1, &xw);
	ir_set_i(g, ls, "axis", 1);
	Value *l = nll(g, fin(g, ls), t, cwv, "mean", 1, 1)->out[0];
	Value *s = ir_op2(g, OP_ADD, ir_op2(g, OP_ADD, reduce(g, OP_REDUCE_SUM, a, 0, NULL, 0),
					    reduce(g, OP_REDUCE_SUM, b, 0, NULL, 0)), ir_op2(g, OP_ADD, c, l));
	g->loss = s;
	Value *grads[2];
	cr_assert_eq(grad_backward(g, 2, (Value *[]){w, cwv}, grads), 0, "%s", g->err);
	g->loss = NULL;
	ir_add_output(g, grads[0]);
	ir_add_output(g, grads[1]);
	check_infer(g, 4, 3, 4);
	ir_graph_free(g);
}

/* a model carrying its own loss with a Dropout, trained for 3 steps (--loss none): the step
 * number reaches the kernels, so the artifact's masks match the interpreter's at every step */
Test(reduce, train_with_dropout_and_nll)
{
	Graph *g = ir_graph_new("drop_train");
	Value *x = ir_value(g, V_INPUT, "x", DT_F32, SH(N, 6), NULL);
	Value *t = ir_value(g, V_INPUT, "t", DT_I64, SH(N), NULL);
	float wd[24];
	for (int i = 0; i < 24; i++)
		wd[i] = (float)(rnd() - 0.5);
	Value *w = ir_value(g, V_PARAM, "w", DT_F32, SH(6, 4), wd);
	Value *h = dropout(g, ir_op2(g, OP_MATMUL, x, w), 0.5, 99)->out[0];
	Node *ls = ir_begin(g, OP_LOG_SOFTMAX, NULL, 1, &h);
	ir_set_i(g, ls, "axis", 1);
	ir_add_output(g, nll(g, fin(g, ls), t, NULL, "mean", 0, 0)->out[0]);
	TrainOpts o;
	train_opts_default(&o, "sgd");
	o.loss = "none";
	o.lr = 0.5;
	Graph *inf, *tr;
	cr_assert_eq(pass_pipeline(g, &o, 1, &inf, &tr, NULL, NULL), 0, "%s", g->err);
	ThArt a = th_art_open(inf, tr, 8, DT_F32);
	char err[256];
	Interp *it = interp_new(tr, DT_F32, 5, err, sizeof err);
	cr_assert(it, "%s", err);
	for (int s = 1; s <= 3; s++) {
		void **in = make_inputs(tr, 5, 4);
		float loss;
		cr_assert_eq(a.train(a.m, 5, (const void *const *)in, NULL, &loss), 0, "%s", a.error(a.m));
		th_set_inputs(it, tr, in, DT_F32);
		cr_assert_eq(interp_run(it, s), 0, "%s", interp_error(it));
		double want, got = loss;
		interp_get_f64(it, tr->loss, &want);
		expect_close("loss", &got, &want, 1);
		th_free_list(in, tr->ninputs);
	}
	float gp[24], wp[24];
	double gd[24], wdd[24];
	cr_assert_eq(a.get_param(a.m, 0, gp), 0, "%s", a.error(a.m));
	interp_get_f32(it, tr->params[0], wp);
	for (int i = 0; i < 24; i++)
		gd[i] = gp[i], wdd[i] = wp[i];
	expect_close("w", gd, wdd, 24);
	interp_free(it);
	th_art_close(&a);
	ir_graph_free(inf);
	ir_graph_free(tr);
	ir_graph_free(g);
}
