/*
 * test_norm.c — the normalization and activation ops: float64 finite-difference checks of
 * every gradient (the activation rules, PRelu's slope, PowScalar, BatchNormalization in its
 * inference form and, lowered by pass_bn_train, in its training form through the batch
 * statistics, LayerNormalization over the last 1 and 2 axes, InstanceNormalization), and the
 * interpreter's BatchNormalization values, including the running-statistics update (biased
 * variance to normalise, unbiased in the update, ONNX momentum), on [N,C] and [N,C,H,W].
 *
 * Each gradient case is a tiny f64 graph with loss = ReduceSum(y * R), R a random input; the
 * analytic gradient of every differentiated value is compared with a central difference (eps
 * 1e-6, relative tolerance 1e-6) at batch 3, from random values of magnitude in [0.2, 1].
 * Kinks (Clip, HardSigmoid, HardSwish at ±3) lie far from every evaluation point; ClipGrad exactly
 * at its bounds (zero there, as torch's hardtanh) is checked on values.
 * Codegen of these ops is checked end to end by the fixture models (tests/e2e/models.sh).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/interp.h"
#include "ir/norm.h"
#include "passes/grad.h"
#include "passes/passes.h"

#include "harness.h"

#define SH(...) ir_shape(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), (int64_t[]){__VA_ARGS__})
#define N (-1)

/* the gradient check always differentiates with grad_backward */
static ThCase *case_new(void)
{
	ThCase *c = th_case_new("norm", 0x2545F4914F6CDD1Dull);
	c->backward_only = 1;
	return c;
}

/* a per-channel buffer (running statistic) with data */
static Value *buffer(ThCase *c, const char *name, int64_t ch, double base)
{
	double d[16];
	for (int64_t k = 0; k < ch; k++)
		d[k] = base + 0.1 * (double)k;
	Value *v = ir_value(c->g, V_PARAM, name, DT_F64, SH(ch), d);
	v->buffer = 1;
	return v;
}

/* ---- activations ---- */

static void check_act(Op op, const char *a1, double v1, const char *a2, double v2, int positive)
{
	ThCase *c = case_new();
	Node *n = ir_begin(c->g, op, NULL, 1, (Value *[]){th_var(c, SH(N, 5), positive)});
	if (a1)
		ir_set_f(c->g, n, a1, v1);
	if (a2)
		ir_set_f(c->g, n, a2, v2);
	th_check(c, th_fin(c, n), ir_ops[op].name);
	th_case_free(c);
}

Test(norm, activation_gradients)
{
	static const Op plain[] = {OP_ERF, OP_GELU, OP_GELU_TANH, OP_HARD_SWISH, OP_SOFTPLUS, OP_ELU, OP_SELU,
				   OP_HARD_SIGMOID};
	for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
		check_act(plain[i], NULL, 0, NULL, 0, 0);
	check_act(OP_CLIP, "lo", -0.5, "hi", 0.6, 0);
	check_act(OP_CLIP, "lo", 0.0, "hi", 6.0, 0); /* ReLU6 */
	check_act(OP_HARD_SIGMOID, "alpha", 0.9, "beta", 0.3, 0);
	check_act(OP_ELU, "alpha", 0.5, NULL, 0, 0);
	check_act(OP_SELU, "alpha", 1.5, "gamma", 1.2, 0);
	check_act(OP_POW_SCALAR, "alpha", 2.0, NULL, 0, 0);
	check_act(OP_POW_SCALAR, "alpha", -0.5, NULL, 0, 1);
}

/* values inside the ±3 band of HardSwish: scale the input by 4 so that the band is crossed */
Test(norm, hard_swish_wide_range)
{
	ThCase *c = case_new();
	Value *x = ir_op2(c->g, OP_MUL, th_var(c, SH(N, 6), 0), ir_const_scalar(c->g, DT_F64, 4.3));
	th_check(c, ir_op1(c->g, OP_HARD_SWISH, x), "HardSwish wide");
	th_case_free(c);
}

Test(norm, prelu_gradients)
{
	ThCase *c = case_new();
	th_check(c, ir_op2(c->g, OP_PRELU, th_var(c, SH(N, 4), 0), th_var(c, SH(4), 1)), "PRelu [N,4] slope [4]");
	th_case_free(c);
	c = case_new();
	th_check(c, ir_op2(c->g, OP_PRELU, th_var(c, SH(N, 3, 2, 2), 0), th_var(c, SH(3, 1, 1), 1)), "PRelu NCHW");
	th_case_free(c);
	c = case_new();
	th_check(c, ir_op2(c->g, OP_PRELU, th_var(c, SH(N, 4), 0), th_var(c, SH(1), 1)), "PRelu shared slope");
	th_case_free(c);
}

/* ---- normalizations ---- */

static Value *bn_node(ThCase *c, Value *x, Value *scale, Value *bias, Value *mean, Value *varv)
{
	Node *n = ir_begin(c->g, OP_BATCH_NORM, "bn", 5, (Value *[]){x, scale, bias, mean, varv});
	ir_set_f(c->g, n, "epsilon", 1e-5);
	ir_set_f(c->g, n, "momentum", 0.9);
	return th_fin(c, n);
}

static void check_bn(Shape xs, int training)
{
	ThCase *c = case_new();
	int64_t ch = xs.d[1];
	Value *x = th_var(c, xs, 0), *sc = th_var(c, SH(ch), 1), *bi = th_var(c, SH(ch), 0);
	Value *mean = training ? buffer(c, "rm", ch, 0.1) : th_var(c, SH(ch), 0);
	Value *vr = training ? buffer(c, "rv", ch, 0.8) : th_var(c, SH(ch), 1);
	Value *y = bn_node(c, x, sc, bi, mean, vr);
	if (training) {
		ir_add_output(c->g, y);
		cr_assert(pass_bn_train(c->g) == 0, "%s", c->g->err);
		y = c->g->outputs[0];
		cr_assert_eq(c->g->nupdates, 2);
	}
	th_check(c, y, training ? "BatchNormalization (training)" : "BatchNormalization (inference)");
	th_case_free(c);
}

Test(norm, batchnorm_gradients)
{
	check_bn(SH(N, 4), 1);
	check_bn(SH(N, 3, 2, 2), 1);
	check_bn(SH(N, 4), 0);
	check_bn(SH(N, 2, 3, 2), 0);
}

Test(norm, layernorm_gradients)
{
	for (int axes = 1; axes <= 2; axes++) {
		ThCase *c = case_new();
		Value *x = th_var(c, SH(N, 3, 4), 0);
		Shape as = axes == 1 ? SH(4) : SH(3, 4);
		Value *sc = th_var(c, as, 1), *bi = th_var(c, as, 0), *mean, *inv;
		Value *y = ir_layer_norm(c->g, "ln", x, sc, bi, 3 - axes, 1e-5, &mean, &inv);
		cr_assert(y, "%s", c->g->err);
		th_check(c, y, axes == 1 ? "LayerNorm last axis" : "LayerNorm last 2 axes");
		th_case_free(c);
	}
}

Test(norm, instancenorm_gradients)
{
	ThCase *c = case_new();
	Value *x = th_var(c, SH(N, 2, 3, 2), 0), *sc = th_var(c, SH(2), 1), *bi = th_var(c, SH(2), 0);
	Value *y = ir_instance_norm(c->g, "in", x, sc, bi, 1e-5);
	cr_assert(y, "%s", c->g->err);
	th_check(c, y, "InstanceNormalization");
	th_case_free(c);
}

/* ---- interpreter values ---- */

/* x [2,2,1,2] (N=2, C=2): inference uses running stats; training the batch stats and updates */
Test(norm, batchnorm_values_and_running_update)
{
	static const double x[8] = {1, 3, 0, 4, 5, 7, 2, -2}; /* n0: c0 {1,3} c1 {0,4}; n1: c0 {5,7} c1 {2,-2} */
	Graph *g = ir_graph_new("bn");
	Value *xv = ir_value(g, V_INPUT, "x", DT_F64, SH(N, 2, 1, 2), NULL);
	double one[2] = {1, 2}, zero[2] = {0, 1}, rm[2] = {0.5, -1}, rv[2] = {4, 0.25};
	Value *sc = ir_value(g, V_PARAM, "s", DT_F64, SH(2), one), *bi = ir_value(g, V_PARAM, "b", DT_F64, SH(2), zero);
	Value *m = ir_value(g, V_PARAM, "rm", DT_F64, SH(2), rm), *v = ir_value(g, V_PARAM, "rv", DT_F64, SH(2), rv);
	m->buffer = v->buffer = 1;
	Node *n = ir_begin(g, OP_BATCH_NORM, "bn", 5, (Value *[]){xv, sc, bi, m, v});
	ir_set_f(g, n, "epsilon", 0.0);
	ir_set_f(g, n, "momentum", 0.75);
	cr_assert(ir_finish(g, n) == 0, "%s", g->err);
	ir_add_output(g, n->out[0]);
	Graph *t = ir_graph_clone(g);
	cr_assert(pass_bn_train(t) == 0, "%s", t->err);
	char err[256];
	double y[8], want[8], nm[2], nv[2];
	Interp *it = interp_new(g, DT_F64, 2, err, sizeof err);
	interp_set(it, xv, x, DT_F64);
	cr_assert(interp_run(it, 1) == 0, "%s", interp_error(it));
	interp_get_f64(it, g->outputs[0], y);
	for (int k = 0; k < 8; k++) {
		int ch = k / 2 % 2;
		want[k] = (x[k] - rm[ch]) / sqrt(rv[ch]) * one[ch] + zero[ch];
		cr_expect(fabs(y[k] - want[k]) < 1e-12, "inference y[%d] = %g, want %g", k, y[k], want[k]);
	}
	interp_free(it);
	/* training: c0 = {1,3,5,7}: mean 4, biased var 5, unbiased 20/3; c1 = {0,4,2,-2}: mean 1, var 5 */
	it = interp_new(t, DT_F64, 2, err, sizeof err);
	interp_set(it, t->inputs[0], x, DT_F64);
	cr_assert(interp_run(it, 1) == 0, "%s", interp_error(it));
	interp_get_f64(it, t->outputs[0], y);
	for (int k = 0; k < 8; k++) {
		int ch = k / 2 % 2;
		want[k] = (x[k] - (ch ? 1.0 : 4.0)) / sqrt(5.0) * one[ch] + zero[ch];
		cr_expect(fabs(y[k] - want[k]) < 1e-12, "training y[%d] = %g, want %g", k, y[k], want[k]);
	}
	interp_get_f64(it, t->params[2], nm);
	interp_get_f64(it, t->params[3], nv);
	cr_expect(fabs(nm[0] - (0.75 * 0.5 + 0.25 * 4)) < 1e-12 && fabs(nm[1] - (0.75 * -1 + 0.25 * 1)) < 1e-12,
		  "running mean %g %g", nm[0], nm[1]);
	cr_expect(fabs(nv[0] - (0.75 * 4 + 0.25 * 20.0 / 3)) < 1e-12 &&
		  fabs(nv[1] - (0.75 * 0.25 + 0.25 * 20.0 / 3)) < 1e-12, "running var %g %g", nv[0], nv[1]);
	interp_free(it);
	ir_graph_free(t);
	ir_graph_free(g);
}

/* ClipGrad passes dy strictly inside (lo, hi) only, as torch's hardtanh (ReLU6) backward: a
 * ReLU6 after a BatchNorm of a constant channel (a dead channel through a depthwise conv) gets
 * exactly its bias, 0 or 6, and must pass no gradient to it */
Test(norm, clip_grad_at_bounds)
{
	static const double x[6] = {-1, 0, 3, 6, 7, 1e-300}, dy[6] = {1, 2, 3, 4, 5, 6};
	Graph *g = ir_graph_new("clip");
	Value *d = ir_value(g, V_INPUT, "dy", DT_F64, SH(N, 6), NULL);
	Value *xv = ir_value(g, V_INPUT, "x", DT_F64, SH(N, 6), NULL);
	Node *n = ir_begin(g, OP_CLIP_GRAD, "cg", 2, (Value *[]){d, xv});
	ir_set_f(g, n, "lo", 0.0);
	ir_set_f(g, n, "hi", 6.0);
	cr_assert(ir_finish(g, n) == 0, "%s", g->err);
	ir_add_output(g, n->out[0]);
	char err[256];
	double y[6], want[6] = {0, 0, 3, 0, 0, 6};
	Interp *it = interp_new(g, DT_F64, 1, err, sizeof err);
	interp_set(it, d, dy, DT_F64);
	interp_set(it, xv, x, DT_F64);
	cr_assert(interp_run(it, 0) == 0, "%s", interp_error(it));
	interp_get_f64(it, g->outputs[0], y);
	for (int k = 0; k < 6; k++)
		cr_expect(y[k] == want[k], "ClipGrad at x = %g: %g, want %g", x[k], y[k], want[k]);
	interp_free(it);
	ir_graph_free(g);
}

/* the optimizer leaves buffers alone: one update each (from BN), none from SGD */
Test(norm, buffers_are_not_trained)
{
	Graph *g = ir_graph_new("bn");
	Value *x = ir_value(g, V_INPUT, "x", DT_F32, SH(N, 3), NULL);
	float one[3] = {1, 1, 1}, zero[3] = {0, 0, 0};
	Value *sc = ir_value(g, V_PARAM, "s", DT_F32, SH(3), one), *bi = ir_value(g, V_PARAM, "b", DT_F32, SH(3), zero);
	Value *m = ir_value(g, V_PARAM, "rm", DT_F32, SH(3), zero), *v = ir_value(g, V_PARAM, "rv", DT_F32, SH(3), one);
	m->buffer = v->buffer = 1;
	Node *n = ir_begin(g, OP_BATCH_NORM, "bn", 5, (Value *[]){x, sc, bi, m, v});
	cr_assert(ir_finish(g, n) == 0, "%s", g->err);
	ir_add_output(g, n->out[0]);
	cr_assert(pass_mark_params(g) == 0);
	cr_assert_eq(g->nparams, 4);
	TrainOpts o;
	train_opts_default(&o, "adam");
	o.loss = "mse";
	cr_assert(pass_build_training(g, &o) == 0, "%s", g->err);
	cr_assert(ir_verify(g) == 0, "%s", g->err);
	int upd[4] = {0};
	for (int i = 0; i < g->nupdates; i++)
		for (int p = 0; p < 4; p++)
			upd[p] += g->updates[i].state == g->params[p];
	cr_expect(upd[0] == 1 && upd[1] == 1 && upd[2] == 1 && upd[3] == 1, "updates %d %d %d %d", upd[0],
		  upd[1], upd[2], upd[3]);
	cr_expect_eq(g->nstates, 4, "Adam state for the scale and bias only");
	ir_graph_free(g);
}
