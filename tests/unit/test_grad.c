/*
 * test_grad.c — float64 finite-difference checks of every gradient rule (passes/grad_rules.c).
 *
 * Each case builds a tiny f64 graph x -> op -> y, then loss = ReduceSum(y * R) with R a fixed
 * random tensor, differentiates it (pass_autodiff when every differentiated input is a batch-free
 * V_PARAM; grad_backward for batch-shaped V_INPUTs), runs the reference interpreter at batch 3
 * and compares each analytic gradient element with a central difference (eps 1e-6, relative
 * tolerance 1e-6). Inputs are random values of magnitude in [0.2, 1] (positive where the op
 * needs it), so kinks (Relu at 0) lie far from every evaluation point.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/interp.h"
#include "passes/grad.h"
#include "passes/passes.h"

#include "harness.h"

#define SH(...) ir_shape(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), (int64_t[]){__VA_ARGS__})
#define N (-1)

static ThCase *case_new(void) { return th_case_new("grad", 0x9E3779B97F4A7C15ull); }

/* ---- elementwise ---- */

static void check_unary(Op op, Shape s, int positive, double alpha)
{
	ThCase *c = case_new();
	Node *n = th_begin(c, op, 1, (Value *[]){th_var(c, s, positive)});
	if (alpha != 0)
		ir_set_f(c->g, n, "alpha", alpha);
	th_check(c, th_fin(c, n), ir_ops[op].name);
	th_case_free(c);
}

Test(grad, unary)
{
	static const Op ops[] = {OP_RELU, OP_LEAKY_RELU, OP_SIGMOID, OP_TANH, OP_EXP, OP_NEG, OP_IDENTITY};
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
		check_unary(ops[i], SH(N, 4), 0, 0);
		check_unary(ops[i], SH(2, 3), 0, 0);
	}
	check_unary(OP_LOG, SH(N, 4), 1, 0);
	check_unary(OP_SQRT, SH(N, 4), 1, 0);
	check_unary(OP_LEAKY_RELU, SH(N, 5), 0, 0.2);
	static const Op math[] = {OP_COS, OP_SIN, OP_ABS};
	for (size_t i = 0; i < sizeof math / sizeof *math; i++) {
		check_unary(math[i], SH(N, 4), 0, 0);
		check_unary(math[i], SH(2, 3), 0, 0);
	}
}

static void check_binary(Op op, Shape a, Shape b)
{
	ThCase *c = case_new();
	Value *x = th_var(c, a, 0), *y = th_var(c, b, op == OP_DIV);
	th_check(c, th_op2(c, op, x, y), ir_ops[op].name);
	th_case_free(c);
}

Test(grad, binary_broadcast)
{
	static const Op ops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV};
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
		check_binary(ops[i], SH(N, 4), SH(N, 4));
		check_binary(ops[i], SH(N, 4), SH(1, 4));
		check_binary(ops[i], SH(1, 4), SH(N, 4));
		check_binary(ops[i], SH(N, 4), SH(4));
		check_binary(ops[i], SH(N, 4), ir_shape0());
		check_binary(ops[i], ir_shape0(), SH(N, 4));
		check_binary(ops[i], SH(2, 1, 4), SH(3, 1));
		check_binary(ops[i], SH(N, 1), SH(1, 5));
	}
}

Test(grad, fan_out)
{
	/* y = x * tanh(x) + x: x feeds three uses, gradients accumulate */
	ThCase *c = case_new();
	Value *x = th_var(c, SH(N, 3), 0);
	th_check(c, th_op2(c, OP_ADD, th_op2(c, OP_MUL, x, th_op1(c, OP_TANH, x)), x), "fan-out");
	th_case_free(c);
	c = case_new();
	x = th_var(c, SH(2, 3), 0);
	th_check(c, th_op2(c, OP_MUL, x, x), "x*x");
	th_case_free(c);
}

/* ---- matrix products ---- */

static void check_gemm(int ta, int tb, double alpha, double beta, int with_c, Shape cs, int64_t m)
{
	const int64_t k = 4, n = 5;
	ThCase *c = case_new();
	Value *in[3];
	in[0] = th_var(c, ta ? SH(k, m) : SH(m, k), 0);
	in[1] = th_var(c, tb ? SH(n, k) : SH(k, n), 0);
	if (with_c)
		in[2] = th_var(c, cs, 0);
	Node *g = th_begin(c, OP_GEMM, 2 + with_c, in);
	ir_set_i(c->g, g, "transA", ta);
	ir_set_i(c->g, g, "transB", tb);
	ir_set_f(c->g, g, "alpha", alpha);
	ir_set_f(c->g, g, "beta", beta);
	char what[96];
	snprintf(what, sizeof what, "Gemm ta=%d tb=%d alpha=%g beta=%g C=%d m=%lld", ta, tb, alpha, beta, with_c, (long long)m);
	th_check(c, th_fin(c, g), what);
	th_case_free(c);
}

Test(grad, gemm)
{
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			check_gemm(ta, tb, 1.0, 1.0, 0, ir_shape0(), 3);
			check_gemm(ta, tb, 0.7, 1.3, 1, SH(3, 5), 3);
			check_gemm(ta, tb, 1.0, 0.5, 1, SH(5), 3);
			check_gemm(ta, tb, 1.5, 1.0, 1, SH(1, 5), 3);
			check_gemm(ta, tb, 1.0, 2.0, 1, SH(3, 1), 3);
			check_gemm(ta, tb, 0.5, 1.0, 1, ir_shape0(), 3);
			check_gemm(ta, tb, 1.0, 1.0, 1, SH(5), N); /* batched rows */
		}
}

static void check_matmul(Shape a, Shape b)
{
	ThCase *c = case_new();
	Value *x = th_var(c, a, 0), *y = th_var(c, b, 0);
	th_check(c, th_op2(c, OP_MATMUL, x, y), "MatMul");
	th_case_free(c);
}

static void check_matmul_t(Shape a, Shape b, int ta, int tb)
{
	ThCase *c = case_new();
	Value *x = th_var(c, a, 0), *y = th_var(c, b, 0);
	Node *n = th_begin(c, OP_MATMUL, 2, (Value *[]){x, y});
	ir_set_i(c->g, n, "transA", ta);
	ir_set_i(c->g, n, "transB", tb);
	th_check(c, th_fin(c, n), "MatMul transposed");
	th_case_free(c);
}

/* transA / transB (passes/simplify.c folds transposes into them) */
Test(grad, matmul_transposed)
{
	check_matmul_t(SH(4, 3), SH(4, 5), 1, 0);
	check_matmul_t(SH(3, 4), SH(5, 4), 0, 1);
	check_matmul_t(SH(4, 3), SH(5, 4), 1, 1);
	check_matmul_t(SH(2, 4, 3), SH(5, 4), 1, 1);
	check_matmul_t(SH(N, 3, 4), SH(N, 5, 4), 0, 1);
	check_matmul_t(SH(4), SH(5, 4), 0, 1);
	check_matmul_t(SH(4, 3), SH(4), 1, 0);
}

Test(grad, matmul)
{
	check_matmul(SH(3, 4), SH(4, 5));
	check_matmul(SH(2, 3, 4), SH(2, 4, 5));
	check_matmul(SH(2, 3, 4), SH(4, 5));
	check_matmul(SH(3, 4), SH(2, 4, 5));
	check_matmul(SH(2, 1, 3, 4), SH(5, 4, 2));
	check_matmul(SH(N, 3, 4), SH(4, 2));
	check_matmul(SH(N, 4), SH(4, 2));
	check_matmul(SH(4), SH(4, 5));
	check_matmul(SH(3, 4), SH(4));
	check_matmul(SH(4), SH(4));
	check_matmul(SH(2, 3, 4), SH(4));
	check_matmul(SH(4), SH(2, 4, 5));
}

/* ---- softmax family ---- */

static void check_softmax(Op op, Shape s, int axis)
{
	ThCase *c = case_new();
	Node *n = th_begin(c, op, 1, (Value *[]){th_var(c, s, 0)});
	ir_set_i(c->g, n, "axis", axis);
	th_check(c, th_fin(c, n), ir_ops[op].name);
	th_case_free(c);
}

Test(grad, softmax)
{
	for (int axis = 0; axis < 3; axis++) {
		check_softmax(OP_SOFTMAX, SH(N, 3, 4), axis);
		check_softmax(OP_LOG_SOFTMAX, SH(N, 3, 4), axis);
	}
	check_softmax(OP_SOFTMAX, SH(2, 5), 1);
	check_softmax(OP_LOG_SOFTMAX, SH(2, 5), 0);
}

static void check_sce(Shape z, Shape t)
{
	ThCase *c = case_new();
	Value *logits = th_var(c, z, 0);
	th_check(c, th_op2(c, OP_SOFTMAX_CROSS_ENTROPY, logits, th_labels(c, t, z.d[z.rank - 1])), "SoftmaxCrossEntropy");
	th_case_free(c);
}

Test(grad, softmax_cross_entropy)
{
	check_sce(SH(N, 5), SH(N));
	check_sce(SH(N, 2, 5), SH(N, 2));
	check_sce(SH(4, 3), SH(4));
}

/* ---- reductions ---- */

static void check_reduce(Op op, Shape s, int naxes, const int64_t *axes, int keep)
{
	ThCase *c = case_new();
	Node *n = th_begin(c, op, 1, (Value *[]){th_var(c, s, 0)});
	ir_set_ints(c->g, n, "axes", naxes, axes);
	ir_set_i(c->g, n, "keepdims", keep);
	th_check(c, th_fin(c, n), ir_ops[op].name);
	th_case_free(c);
}

Test(grad, reduce)
{
	static const Op ops[] = {OP_REDUCE_SUM, OP_REDUCE_MEAN};
	for (size_t i = 0; i < 2; i++)
		for (int keep = 0; keep < 2; keep++) {
			check_reduce(ops[i], SH(N, 3, 4), 1, (int64_t[]){1}, keep);
			check_reduce(ops[i], SH(N, 3, 4), 2, (int64_t[]){0, 2}, keep);
			check_reduce(ops[i], SH(N, 3, 4), 2, (int64_t[]){1, 2}, keep);
			check_reduce(ops[i], SH(N, 3, 4), 0, NULL, keep);
			check_reduce(ops[i], SH(N, 3), 1, (int64_t[]){0}, keep);
			check_reduce(ops[i], SH(2, 3, 4), 2, (int64_t[]){0, 2}, keep);
			check_reduce(ops[i], SH(2, 3), 0, NULL, keep);
		}
}

/* ---- shape ops ---- */

static Value *with_shape(ThCase *c, Op op, Value *x, const char *attr, Shape s)
{
	Node *n = th_begin(c, op, 1, &x);
	ir_set_ints(c->g, n, attr, s.rank, s.d);
	return th_fin(c, n);
}

Test(grad, transpose)
{
	static const int64_t perms[][3] = {{2, 0, 1}, {1, 2, 0}, {0, 2, 1}, {2, 1, 0}};
	for (int i = 0; i < 4; i++) {
		ThCase *c = case_new();
		Value *x = th_var(c, SH(N, 3, 4), 0);
		th_check(c, with_shape(c, OP_TRANSPOSE, x, "perm", ir_shape(3, perms[i])), "Transpose");
		th_case_free(c);
	}
}

Test(grad, reshape_flatten)
{
	ThCase *c = case_new();
	th_check(c, with_shape(c, OP_RESHAPE, th_var(c, SH(N, 3, 4), 0), "shape", SH(N, 12)), "Reshape");
	th_case_free(c);
	c = case_new();
	th_check(c, with_shape(c, OP_RESHAPE, th_var(c, SH(N, 3, 4), 0), "shape", SH(-3, 2, 2)), "Reshape");
	th_case_free(c);
	c = case_new();
	th_check(c, with_shape(c, OP_RESHAPE, th_var(c, SH(2, 6), 0), "shape", SH(3, 4)), "Reshape");
	th_case_free(c);
	for (int axis = 0; axis < 4; axis++) {
		c = case_new();
		Node *n = th_begin(c, OP_FLATTEN, 1, (Value *[]){th_var(c, SH(N, 3, 4), 0)});
		ir_set_i(c->g, n, "axis", axis);
		th_check(c, th_fin(c, n), "Flatten");
		th_case_free(c);
	}
}

Test(grad, expand)
{
	static const struct { Shape from, to; } cases[] = {
		{{2, {3, 1}}, {2, {3, 4}}},
		{{0, {0}}, {2, {N, 2}}},
		{{1, {4}}, {3, {N, 2, 4}}},
		{{2, {1, 4}}, {2, {N, 4}}},
		{{2, {N, 1}}, {3, {2, N, 3}}},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		ThCase *c = case_new();
		th_check(c, with_shape(c, OP_EXPAND, th_var(c, cases[i].from, 0), "shape", cases[i].to), "Expand");
		th_case_free(c);
	}
}

/* ---- whole programs and error paths ---- */

Test(grad, mlp_chain)
{
	/* x[N,4] -> Gemm(W1^T, b1) -> Relu -> MatMul W2 -> LogSoftmax -> ReduceMean */
	ThCase *c = case_new();
	Value *x = th_var(c, SH(N, 4), 0), *w1 = th_var(c, SH(6, 4), 0), *b1 = th_var(c, SH(6), 0);
	Value *w2 = th_var(c, SH(6, 3), 0);
	Node *g = th_begin(c, OP_GEMM, 3, (Value *[]){x, w1, b1});
	ir_set_i(c->g, g, "transB", 1);
	Value *h = th_op1(c, OP_RELU, th_fin(c, g));
	Node *ls = th_begin(c, OP_LOG_SOFTMAX, 1, (Value *[]){th_op2(c, OP_MATMUL, h, w2)});
	ir_set_i(c->g, ls, "axis", 1);
	Node *m = th_begin(c, OP_REDUCE_MEAN, 1, (Value *[]){th_fin(c, ls)});
	ir_set_ints(c->g, m, "axes", 1, (int64_t[]){0});
	ir_set_i(c->g, m, "keepdims", 0);
	th_check(c, th_fin(c, m), "mlp");
	th_case_free(c);
}

Test(grad, unreachable_param_gets_zero)
{
	Graph *g = ir_graph_new("t");
	double one[2] = {1, 2};
	Value *p = ir_value(g, V_PARAM, "p", DT_F64, SH(2), one);
	Value *q = ir_value(g, V_PARAM, "q", DT_F64, SH(2), one);
	Node *n = ir_begin(g, OP_REDUCE_SUM, NULL, 1, (Value *[]){ir_op2(g, OP_MUL, p, p)});
	ir_set_ints(g, n, "axes", 0, NULL);
	ir_set_i(g, n, "keepdims", 0);
	cr_assert(ir_finish(g, n) == 0);
	g->loss = n->out[0];
	Value *grads[2];
	cr_assert(pass_autodiff(g, grads) == 0, "%s", g->err);
	char err[128];
	Interp *it = interp_new(g, DT_F64, 1, err, sizeof err);
	cr_assert(it, "%s", err);
	cr_assert(interp_run(it, 1) == 0, "%s", interp_error(it));
	double gp[2], gq[2];
	interp_get_f64(it, grads[0], gp);
	interp_get_f64(it, grads[1], gq);
	cr_expect(gp[0] == 2 && gp[1] == 4, "dp = %g %g", gp[0], gp[1]);
	cr_expect(gq[0] == 0 && gq[1] == 0, "dq = %g %g", gq[0], gq[1]);
	cr_expect(ir_shape_eq(&grads[1]->shape, &q->shape));
	interp_free(it);
	ir_graph_free(g);
}

Test(grad, not_differentiable_is_an_error)
{
	/* a gradient would have to flow through ReluGrad (grad rule `none`) */
	Graph *g = ir_graph_new("t");
	double d[2] = {1, -1};
	Value *p = ir_value(g, V_PARAM, "p", DT_F64, SH(2), d);
	Value *x = ir_value(g, V_INPUT, "x", DT_F64, SH(2), NULL);
	Node *n = ir_begin(g, OP_REDUCE_SUM, NULL, 1, (Value *[]){ir_op2(g, OP_RELU_GRAD, p, x)});
	ir_set_ints(g, n, "axes", 0, NULL);
	ir_set_i(g, n, "keepdims", 0);
	cr_assert(ir_finish(g, n) == 0);
	g->loss = n->out[0];
	Value *grads[1];
	cr_expect(pass_autodiff(g, grads) == -1);
	cr_expect(strstr(g->err, "ReluGrad") && strstr(g->err, "not differentiable"), "err: %s", g->err);
	ir_graph_free(g);
}

Test(grad, no_loss_is_an_error)
{
	Graph *g = ir_graph_new("t");
	Value *grads[1];
	cr_expect(pass_autodiff(g, grads) == -1);
	cr_expect(strstr(g->err, "no loss"), "err: %s", g->err);
	ir_graph_free(g);
}

Test(grad, flows_column)
{
	cr_expect(grad_flows(OP_GEMM) && grad_flows(OP_FLATTEN) && grad_flows(OP_SOFTMAX_CROSS_ENTROPY));
	cr_expect(!grad_flows(OP_RELU_GRAD) && !grad_flows(OP_SGD_UPDATE) && !grad_flows(OP_ADAM_UPDATE));
}

/* ---- data-path plumbing (passes/grad_tensor.c) ---- */

static Value *i64_const(ThCase *c, Shape s, const int64_t *d) { return ir_value(c->g, V_CONST, NULL, DT_I64, s, d); }

static Value *with_attrs(ThCase *c, Op op, int nin, Value **in, const char *const *names, int cnt,
			 const int64_t *vals)
{
	Node *n = th_begin(c, op, nin, in);
	for (int i = 0; i < cnt; i++)
		ir_set_i(c->g, n, names[i], vals[i]);
	return th_fin(c, n);
}

Test(grad, gather)
{
	/* repeated and negative indices: the scatter-add sums both hits */
	int64_t ix[5] = {2, 4, -1, 2, 0};
	for (int axis = 0; axis < 2; axis++) {
		ThCase *c = case_new();
		Value *x = th_var(c, SH(5, 5), 0), *i = i64_const(c, SH(5), ix);
		th_check(c, with_attrs(c, OP_GATHER, 2, (Value *[]){x, i}, (const char *[]){"axis"}, 1,
				    (int64_t[]){axis}), "Gather");
		th_case_free(c);
	}
	ThCase *c = case_new(); /* batched data, 2-D indices on axis 1 */
	Value *x = th_var(c, SH(N, 4, 3), 0), *i = i64_const(c, SH(2, 2), (int64_t[]){3, 0, 3, 1});
	th_check(c, with_attrs(c, OP_GATHER, 2, (Value *[]){x, i}, (const char *[]){"axis"}, 1, (int64_t[]){1}),
	      "Gather batched");
	th_case_free(c);
}

/* ---- element indexing and scans (passes/grad_tensor.c) ---- */

static Value *index_node(ThCase *c, Op op, int nin, Value **in, int64_t axis, const char *red)
{
	Node *n = th_begin(c, op, nin, in);
	ir_set_i(c->g, n, "axis", axis);
	if (red)
		ir_set_s(c->g, n, "reduction", red);
	return th_fin(c, n);
}

Test(grad, gather_elements)
{
	/* repeated and negative indices, indices smaller than the data off the axis */
	int64_t ix[6] = {3, -1, 0, 3, 3, 1};
	for (int axis = 0; axis < 2; axis++) {
		ThCase *c = case_new();
		Value *x = th_var(c, SH(4, 4), 0), *i = i64_const(c, axis ? SH(2, 3) : SH(3, 2), ix);
		th_check(c, index_node(c, OP_GATHER_ELEMENTS, 2, (Value *[]){x, i}, axis, NULL), "GatherElements");
		th_case_free(c);
	}
}

Test(grad, scatter_elements)
{
	/* "none": distinct targets per column (with duplicates the result is ONNX-undefined and
	 * every duplicate gets the gradient, as torch.scatter's has it); "add": duplicates summed */
	static const int64_t ix[2][6] = {{0, 1, -2, 3, 1, 2}, {1, 3, 1, 0, 2, 0}};
	static const char *const red[] = {"none", "add"};
	for (int r = 0; r < 2; r++)
		for (int axis = 0; axis < 2; axis++) {
			ThCase *c = case_new();
			Value *x = th_var(c, SH(4, 4), 0), *i = i64_const(c, axis ? SH(2, 3) : SH(3, 2), ix[r]);
			Value *u = th_var(c, axis ? SH(2, 3) : SH(3, 2), 0);
			th_check(c, index_node(c, OP_SCATTER_ELEMENTS, 3, (Value *[]){x, i, u}, axis, red[r]),
				 "ScatterElements");
			th_case_free(c);
		}
}

Test(grad, cum_sum)
{
	for (int k = 0; k < 4; k++) {
		ThCase *c = case_new();
		Node *n = th_begin(c, OP_CUM_SUM, 1, (Value *[]){th_var(c, k % 2 ? SH(N, 5) : SH(3, 4, 2), 0)});
		ir_set_i(c->g, n, "axis", 1);
		ir_set_i(c->g, n, "exclusive", k & 1);
		ir_set_i(c->g, n, "reverse", k >> 1);
		th_check(c, th_fin(c, n), "CumSum");
		th_case_free(c);
	}
}

static void check_slice(Shape s, int cnt, const int64_t *ax, const int64_t *st, const int64_t *en,
			const int64_t *sp)
{
	ThCase *c = case_new();
	Node *n = th_begin(c, OP_SLICE, 1, (Value *[]){th_var(c, s, 0)});
	ir_set_ints(c->g, n, "axes", cnt, ax);
	ir_set_ints(c->g, n, "starts", cnt, st);
	ir_set_ints(c->g, n, "ends", cnt, en);
	ir_set_ints(c->g, n, "steps", cnt, sp);
	th_check(c, th_fin(c, n), "Slice");
	th_case_free(c);
}

Test(grad, slice)
{
	check_slice(SH(N, 6, 5), 1, (int64_t[]){1}, (int64_t[]){1}, (int64_t[]){6}, (int64_t[]){2});
	check_slice(SH(N, 6, 5), 2, (int64_t[]){2, 1}, (int64_t[]){4, 5}, (int64_t[]){-1, 0}, (int64_t[]){-2, -3});
	check_slice(SH(4, 3), 1, (int64_t[]){0}, (int64_t[]){1}, (int64_t[]){3}, (int64_t[]){1});
}

Test(grad, concat)
{
	ThCase *c = case_new();
	Value *in[3] = {th_var(c, SH(N, 2), 0), th_var(c, SH(N, 3), 0), th_var(c, SH(N, 1), 0)};
	th_check(c, with_attrs(c, OP_CONCAT, 3, in, (const char *[]){"axis"}, 1, (int64_t[]){1}), "Concat");
	th_case_free(c);
	c = case_new();
	Value *in2[2] = {th_var(c, SH(2, 3), 0), th_var(c, SH(1, 3), 0)};
	th_check(c, with_attrs(c, OP_CONCAT, 2, in2, (const char *[]){"axis"}, 1, (int64_t[]){0}), "Concat axis 0");
	th_case_free(c);
}

Test(grad, trilu)
{
	static const int64_t cases[][2] = {{1, 1}, {0, 0}, {1, -1}, {0, 2}};
	for (int i = 0; i < 4; i++) {
		ThCase *c = case_new();
		Value *x = th_var(c, i % 2 ? SH(3, 5) : SH(N, 4, 4), 0);
		th_check(c, with_attrs(c, OP_TRILU, 1, &x, (const char *[]){"upper", "k"}, 2, cases[i]), "Trilu");
		th_case_free(c);
	}
}

Test(grad, where)
{
	uint8_t m[4] = {1, 0, 0, 1};
	ThCase *c = case_new();
	Value *cond = ir_value(c->g, V_CONST, NULL, DT_BOOL, SH(4), m);
	Value *a = th_var(c, SH(N, 4), 0), *b = th_var(c, SH(1, 4), 0);
	th_check(c, ir_op(c->g, OP_WHERE, 3, (Value *[]){cond, a, b}), "Where");
	th_case_free(c);
}

Test(grad, cast)
{
	ThCase *c = case_new();
	Node *n = th_begin(c, OP_CAST, 1, (Value *[]){th_var(c, SH(N, 3), 0)});
	ir_set_s(c->g, n, "to", "f32");
	Value *y = th_fin(c, n);
	n = th_begin(c, OP_CAST, 1, &y);
	ir_set_s(c->g, n, "to", "f64");
	th_check(c, th_op1(c, OP_TANH, th_fin(c, n)), "Cast f64->f32->f64");
	th_case_free(c);
}

Test(grad, pow_reciprocal)
{
	ThCase *c = case_new();
	Value *a = th_var(c, SH(N, 4), 1), *b = th_var(c, SH(4), 0);
	th_check(c, th_op2(c, OP_POW, a, b), "Pow tensor exponent");
	th_case_free(c);
	c = case_new(); /* a negative base with a constant integer-valued exponent */
	th_check(c, th_op2(c, OP_POW, th_var(c, SH(N, 4), 0), ir_const_scalar(c->g, DT_F64, 3.0)), "Pow x^3");
	th_case_free(c);
	c = case_new();
	th_check(c, th_op2(c, OP_POW, th_var(c, SH(N, 4), 1), ir_const_scalar(c->g, DT_F64, -0.5)), "Pow x^-0.5");
	th_case_free(c);
	c = case_new();
	th_check(c, th_op1(c, OP_RECIPROCAL, th_var(c, SH(N, 4), 1)), "Reciprocal");
	th_case_free(c);
}

Test(grad, max_min)
{
	static const Op ops[] = {OP_MAX, OP_MIN};
	for (int i = 0; i < 2; i++) {
		ThCase *c = case_new();
		th_check(c, th_op2(c, ops[i], th_var(c, SH(N, 4), 0), th_var(c, SH(4), 0)), ir_ops[ops[i]].name);
		th_case_free(c);
		c = case_new(); /* a tie everywhere: each side gets half, the sum is the identity's */
		Value *x = th_var(c, SH(N, 3), 0);
		th_check(c, th_op2(c, ops[i], x, x), "tie");
		th_case_free(c);
	}
}

Test(grad, comparisons_stop_the_gradient)
{
	/* y = x * Cast(x > 0): the mask carries no gradient, so dy/dx = mask */
	ThCase *c = case_new();
	Value *x = th_var(c, SH(N, 4), 0);
	Value *m = th_op2(c, OP_GREATER, x, ir_const_scalar(c->g, DT_F64, 0.0));
	Node *n = th_begin(c, OP_CAST, 1, &m);
	ir_set_s(c->g, n, "to", "f64");
	th_check(c, th_op2(c, OP_MUL, x, th_fin(c, n)), "mask");
	th_case_free(c);
}
