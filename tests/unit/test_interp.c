/*
 * test_interp.c — the reference interpreter against hand-computed values.
 *
 * Each test builds a small graph with the ir.h API, runs it in f64 (some in f32) and compares
 * every element with a value worked out by hand or by a tiny independent loop written here
 * (the optimizer tests re-implement torch.optim's formulas in plain double). Also covered:
 * updates persisting across runs, batch resolution, f32/f16 rounding, and the error messages.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ir/interp.h"

#define D(...) ((double[]){__VA_ARGS__})
#define DIMS(...) ((int64_t[]){__VA_ARGS__})
#define SHAPE(...) ir_shape(sizeof DIMS(__VA_ARGS__) / sizeof(int64_t), DIMS(__VA_ARGS__))
#define TOL 1e-12

static Value *in_f64(Graph *g, const char *name, Shape s) { return ir_value(g, V_INPUT, name, DT_F64, s, NULL); }

static Value *finish(Graph *g, Node *n)
{
	cr_assert_eq(ir_finish(g, n), 0, "%s", g->err);
	return n->out[0];
}

static Value *op2(Graph *g, Op op, Value *a, Value *b)
{
	Value *y = ir_op2(g, op, a, b);
	cr_assert(y, "%s", g->err);
	return y;
}

static Interp *mk_mode(Graph *g, DType dt, int64_t batch)
{
	char err[256];
	Interp *it = interp_new(g, dt, batch, err, sizeof err);
	cr_assert(it, "%s", err);
	return it;
}

static Interp *mk(Graph *g) { return mk_mode(g, DT_F64, 1); }

static void set(Interp *it, Value *v, const double *d)
{
	cr_assert_eq(interp_set(it, v, d, DT_F64), 0, "%s", interp_error(it));
}
static void run(Interp *it, int64_t step) { cr_assert_eq(interp_run(it, step), 0, "%s", interp_error(it)); }

static void expect(Interp *it, Value *v, const double *want, int64_t n, double tol)
{
	double got[256];
	cr_assert(n <= 256);
	cr_assert_eq(interp_get_f64(it, v, got), 0, "%s", interp_error(it));
	for (int64_t k = 0; k < n; k++)
		cr_assert(fabs(got[k] - want[k]) <= tol * (1 + fabs(want[k])),
			  "value '%s' element %lld: got %.17g, want %.17g",
			  v->name, (long long)k, got[k], want[k]);
}

static void expect_shape(Value *v, Shape s)
{
	char a[64], b[64];
	cr_assert(ir_shape_eq(&v->shape, &s), "shape %s, want %s", ir_shape_str(&v->shape, a, sizeof a),
		  ir_shape_str(&s, b, sizeof b));
}

/* ---- Gemm ---- */

static const double gA[6] = {1, 2, 3, 4, 5, 6}, gAt[6] = {1, 4, 2, 5, 3, 6};
static const double gB[6] = {1, 0, 0, 1, 2, -1}, gBt[6] = {1, 0, 2, 0, 1, -1};

/* A [2,3] @ B [3,2] = [[7,-1],[16,-1]]; 2*AB + 0.5*C with C=[10,20] = [[19,8],[37,8]] */
static void gemm_case(int ta, int tb)
{
	Graph *g = ir_graph_new("gemm");
	Value *a = in_f64(g, "a", ta ? SHAPE(3, 2) : SHAPE(2, 3)), *b = in_f64(g, "b", tb ? SHAPE(2, 3) : SHAPE(3, 2));
	Value *c = in_f64(g, "c", SHAPE(2));
	Node *n = ir_begin(g, OP_GEMM, "gm", 3, (Value *[]){a, b, c});
	ir_set_i(g, n, "transA", ta);
	ir_set_i(g, n, "transB", tb);
	ir_set_f(g, n, "alpha", 2);
	ir_set_f(g, n, "beta", 0.5);
	Value *y = finish(g, n);
	Interp *it = mk(g);
	set(it, a, ta ? gAt : gA);
	set(it, b, tb ? gBt : gB);
	set(it, c, D(10, 20));
	run(it, 1);
	expect(it, y, D(19, 8, 37, 8), 4, TOL);
	interp_free(it);
	ir_graph_free(g);
}

Test(interp, gemm_each_transpose_combination)
{
	gemm_case(0, 0);
	gemm_case(1, 0);
	gemm_case(0, 1);
	gemm_case(1, 1);
}

Test(interp, gemm_column_bias_and_no_bias)
{
	Graph *g = ir_graph_new("gemm");
	Value *a = in_f64(g, "a", SHAPE(2, 3)), *b = in_f64(g, "b", SHAPE(3, 2)), *c = in_f64(g, "c", SHAPE(2, 1));
	Value *y = finish(g, ir_begin(g, OP_GEMM, "g1", 3, (Value *[]){a, b, c}));
	Value *y2 = finish(g, ir_begin(g, OP_GEMM, "g2", 2, (Value *[]){a, b}));
	Interp *it = mk(g);
	set(it, a, gA);
	set(it, b, gB);
	set(it, c, D(1, 2));
	run(it, 1);
	expect(it, y, D(8, 0, 18, 1), 4, TOL);
	expect(it, y2, D(7, -1, 16, -1), 4, TOL);
	interp_free(it);
	ir_graph_free(g);
}

/* ---- MatMul ---- */

Test(interp, matmul_1d_and_2d)
{
	Graph *g = ir_graph_new("mm");
	Value *a = in_f64(g, "a", SHAPE(2, 3)), *b = in_f64(g, "b", SHAPE(3, 2));
	Value *u = in_f64(g, "u", SHAPE(3)), *w = in_f64(g, "w", SHAPE(3));
	Value *ab = op2(g, OP_MATMUL, a, b), *ub = op2(g, OP_MATMUL, u, b), *aw = op2(g, OP_MATMUL, a, w);
	Value *uw = op2(g, OP_MATMUL, u, w);
	expect_shape(ub, SHAPE(2));
	expect_shape(aw, SHAPE(2));
	expect_shape(uw, ir_shape0());
	Interp *it = mk(g);
	set(it, a, gA);
	set(it, b, gB);
	set(it, u, D(1, 2, 3));
	set(it, w, D(1, 1, 1));
	run(it, 1);
	expect(it, ab, D(7, -1, 16, -1), 4, TOL);
	expect(it, ub, D(7, -1), 2, TOL);
	expect(it, aw, D(6, 15), 2, TOL);
	expect(it, uw, D(6), 1, TOL);
	interp_free(it);
	ir_graph_free(g);
}

/* a [2,1,2,2] with a[i,0] = (i+1)*I; b [3,2,2] with b[j] = [[j,1],[2,j+3]]: y[i,j] = (i+1)*b[j] */
Test(interp, matmul_batch_broadcast)
{
	Graph *g = ir_graph_new("mm");
	Value *a = in_f64(g, "a", SHAPE(2, 1, 2, 2)), *b = in_f64(g, "b", SHAPE(3, 2, 2));
	Value *y = op2(g, OP_MATMUL, a, b);
	expect_shape(y, SHAPE(2, 3, 2, 2));
	double bd[12], want[24];
	for (int j = 0; j < 3; j++) {
		double m[4] = {j, 1, 2, j + 3};
		memcpy(bd + 4 * j, m, sizeof m);
		for (int i = 0; i < 2; i++)
			for (int e = 0; e < 4; e++)
				want[(i * 3 + j) * 4 + e] = (i + 1) * m[e];
	}
	Interp *it = mk(g);
	set(it, a, D(1, 0, 0, 1, 2, 0, 0, 2));
	set(it, b, bd);
	run(it, 1);
	expect(it, y, want, 24, TOL);
	interp_free(it);
	ir_graph_free(g);
}

/* ---- elementwise ---- */

Test(interp, binary_ops_broadcast)
{
	Graph *g = ir_graph_new("bin");
	Value *a = in_f64(g, "a", SHAPE(2, 3)), *r = in_f64(g, "r", SHAPE(3)), *col = in_f64(g, "col", SHAPE(2, 1));
	Value *s = in_f64(g, "s", ir_shape0()), *r13 = in_f64(g, "r13", SHAPE(1, 3));
	Value *add = op2(g, OP_ADD, a, r), *sub = op2(g, OP_SUB, a, col), *mul = op2(g, OP_MUL, s, a);
	Value *div = op2(g, OP_DIV, a, r13), *outer = op2(g, OP_ADD, col, r13);
	Interp *it = mk(g);
	set(it, a, D(1, 2, 3, 4, 5, 6));
	set(it, r, D(10, 20, 30));
	set(it, col, D(1, 2));
	set(it, s, D(3));
	set(it, r13, D(1, 2, 4));
	run(it, 1);
	expect(it, add, D(11, 22, 33, 14, 25, 36), 6, TOL);
	expect(it, sub, D(0, 1, 2, 2, 3, 4), 6, TOL);
	expect(it, mul, D(3, 6, 9, 12, 15, 18), 6, TOL);
	expect(it, div, D(1, 1, 0.75, 4, 2.5, 1.5), 6, TOL);
	expect_shape(outer, SHAPE(2, 3));
	expect(it, outer, D(2, 3, 5, 3, 4, 6), 6, TOL);
	interp_free(it);
	ir_graph_free(g);
}

Test(interp, unary_ops)
{
	static const double x[5] = {-2, -0.5, 0, 0.5, 2};
	Graph *g = ir_graph_new("un");
	Value *v = in_f64(g, "x", SHAPE(5)), *pos = in_f64(g, "p", SHAPE(3));
	Value *relu = ir_op1(g, OP_RELU, v), *sig = ir_op1(g, OP_SIGMOID, v), *th = ir_op1(g, OP_TANH, v);
	Value *ex = ir_op1(g, OP_EXP, v), *neg = ir_op1(g, OP_NEG, v), *id = ir_op1(g, OP_IDENTITY, v);
	Value *lg = ir_op1(g, OP_LOG, pos), *sq = ir_op1(g, OP_SQRT, pos);
	Value *lr_default = ir_op1(g, OP_LEAKY_RELU, v);
	Node *n = ir_begin(g, OP_LEAKY_RELU, "lrelu", 1, &v);
	ir_set_f(g, n, "alpha", 0.1);
	Value *lr = finish(g, n);
	Interp *it = mk(g);
	set(it, v, x);
	set(it, pos, D(1, 4, 0.25));
	run(it, 1);
	double want[5];
	expect(it, relu, D(0, 0, 0, 0.5, 2), 5, TOL);
	expect(it, lr_default, D(-0.02, -0.005, 0, 0.5, 2), 5, TOL);
	expect(it, lr, D(-0.2, -0.05, 0, 0.5, 2), 5, TOL);
	for (int k = 0; k < 5; k++)
		want[k] = 1 / (1 + exp(-x[k]));
	expect(it, sig, want, 5, TOL);
	expect(it, sig, D(0.11920292202211755, 0.37754066879814541, 0.5, 0.62245933120185459, 0.88079707797788231),
	       5, 1e-15);
	expect(it, th, D(-0.96402758007581690, -0.46211715726000974, 0, 0.46211715726000974, 0.96402758007581690),
	       5, 1e-15);
	expect(it, ex, D(exp(-2), exp(-0.5), 1, exp(0.5), exp(2)), 5, TOL);
	expect(it, neg, D(2, 0.5, 0, -0.5, -2), 5, TOL);
	expect(it, id, x, 5, TOL);
	expect(it, lg, D(0, log(4), -log(4)), 3, TOL);
	expect(it, sq, D(1, 2, 0.5), 3, TOL);
	interp_free(it);
	ir_graph_free(g);
}

/* ---- softmax family ---- */

static Value *with_axis(Graph *g, Op op, const char *name, int nin, Value **in, int axis)
{
	Node *n = ir_begin(g, op, name, nin, in);
	ir_set_i(g, n, "axis", axis);
	return finish(g, n);
}

/* x [2,3,2], axis 1: each (o,i) column over c is a softmax row; checked with an independent loop */
Test(interp, softmax_and_log_softmax_middle_axis)
{
	double x[12], ws[12], wl[12];
	for (int k = 0; k < 12; k++)
		x[k] = sin(k + 1.0) * 3;
	for (int o = 0; o < 2; o++)
		for (int i = 0; i < 2; i++) {
			double s = 0;
			for (int c = 0; c < 3; c++)
				s += exp(x[o * 6 + c * 2 + i]);
			for (int c = 0; c < 3; c++) {
				ws[o * 6 + c * 2 + i] = exp(x[o * 6 + c * 2 + i]) / s;
				wl[o * 6 + c * 2 + i] = x[o * 6 + c * 2 + i] - log(s);
			}
		}
	Graph *g = ir_graph_new("sm");
	Value *v = in_f64(g, "x", SHAPE(2, 3, 2));
	Value *sm = with_axis(g, OP_SOFTMAX, "sm", 1, &v, 1), *ls = with_axis(g, OP_LOG_SOFTMAX, "ls", 1, &v, 1);
	Interp *it = mk(g);
	set(it, v, x);
	run(it, 1);
	expect(it, sm, ws, 12, 1e-14);
	expect(it, ls, wl, 12, 1e-14);
	interp_free(it);
	ir_graph_free(g);
}

/* axis 0 of [[1,2,3],[3,2,1]], and large logits that overflow exp without the max shift */
Test(interp, softmax_axis0_and_stable)
{
	Graph *g = ir_graph_new("sm");
	Value *v = in_f64(g, "x", SHAPE(2, 3)), *big = in_f64(g, "big", SHAPE(2));
	Value *sm = with_axis(g, OP_SOFTMAX, "sm", 1, &v, 0), *sb = with_axis(g, OP_SOFTMAX, "sb", 1, &big, 0);
	Value *lb = with_axis(g, OP_LOG_SOFTMAX, "lb", 1, &big, 0);
	Interp *it = mk(g);
	set(it, v, D(1, 2, 3, 3, 2, 1));
	set(it, big, D(1000, 1001));
	run(it, 1);
	double p = 1 / (1 + exp(2)), e = exp(1);
	expect(it, sm, D(p, 0.5, 1 - p, 1 - p, 0.5, p), 6, TOL);
	expect(it, sb, D(1 / (1 + e), e / (1 + e)), 2, TOL);
	expect(it, lb, D(-log(1 + e), 1 - log(1 + e)), 2, TOL);
	interp_free(it);
	ir_graph_free(g);
}

/* ---- data movement ---- */

static void iota3(double *x, int a, int b, int c)
{
	for (int i = 0; i < a; i++)
		for (int j = 0; j < b; j++)
			for (int k = 0; k < c; k++)
				x[(i * b + j) * c + k] = 100 * i + 10 * j + k;
}

Test(interp, reshape_flatten_transpose)
{
	double x[24], want[24];
	iota3(x, 2, 3, 4);
	Graph *g = ir_graph_new("mv");
	Value *v = in_f64(g, "x", SHAPE(2, 3, 4));
	Node *n = ir_begin(g, OP_RESHAPE, "rs", 1, &v);
	ir_set_ints(g, n, "shape", 2, DIMS(4, 6));
	Value *rs = finish(g, n);
	n = ir_begin(g, OP_FLATTEN, "fl", 1, &v);
	ir_set_i(g, n, "axis", 2);
	Value *fl = finish(g, n);
	n = ir_begin(g, OP_TRANSPOSE, "tr", 1, &v);
	ir_set_ints(g, n, "perm", 3, DIMS(2, 0, 1));
	Value *tr = finish(g, n);
	expect_shape(fl, SHAPE(6, 4));
	expect_shape(tr, SHAPE(4, 2, 3));
	Interp *it = mk(g);
	set(it, v, x);
	run(it, 1);
	expect(it, rs, x, 24, 0);
	expect(it, fl, x, 24, 0);
	for (int i = 0; i < 4; i++) /* y[i,j,k] = x[j,k,i] */
		for (int j = 0; j < 2; j++)
			for (int k = 0; k < 3; k++)
				want[(i * 2 + j) * 3 + k] = 100 * j + 10 * k + i;
	expect(it, tr, want, 24, 0);
	interp_free(it);
	ir_graph_free(g);
}

static Value *reduce(Graph *g, Op op, Value *x, int naxes, const int64_t *axes, int keep)
{
	Node *n = ir_begin(g, op, "red", 1, &x);
	if (naxes >= 0)
		ir_set_ints(g, n, "axes", naxes, axes);
	ir_set_i(g, n, "keepdims", keep);
	return finish(g, n);
}

/* x[a,b,c] = 100a+10b+c over [2,3,4] */
Test(interp, reduce_sum_mean)
{
	double x[24], w1[8], w2[3];
	iota3(x, 2, 3, 4);
	Graph *g = ir_graph_new("red");
	Value *v = in_f64(g, "x", SHAPE(2, 3, 4));
	Value *s1 = reduce(g, OP_REDUCE_SUM, v, 1, DIMS(1), 0), *m02 = reduce(g, OP_REDUCE_MEAN, v, 2, DIMS(0, 2), 1);
	Value *sall = reduce(g, OP_REDUCE_SUM, v, 0, NULL, 1), *mall = reduce(g, OP_REDUCE_MEAN, v, -1, NULL, 0);
	expect_shape(s1, SHAPE(2, 4));
	expect_shape(m02, SHAPE(1, 3, 1));
	expect_shape(sall, SHAPE(1, 1, 1));
	expect_shape(mall, ir_shape0());
	Interp *it = mk(g);
	set(it, v, x);
	run(it, 1);
	for (int a = 0; a < 2; a++)
		for (int c = 0; c < 4; c++)
			w1[a * 4 + c] = 300 * a + 30 + 3 * c;
	for (int b = 0; b < 3; b++)
		w2[b] = 50 + 10 * b + 1.5;
	expect(it, s1, w1, 8, TOL);
	expect(it, m02, w2, 3, TOL);
	expect(it, sall, D(1476), 1, TOL);
	expect(it, mall, D(61.5), 1, TOL);
	interp_free(it);
	ir_graph_free(g);
}

Test(interp, expand)
{
	Graph *g = ir_graph_new("ex");
	Value *v = in_f64(g, "x", SHAPE(3, 1));
	Node *n = ir_begin(g, OP_EXPAND, "ex", 1, &v);
	ir_set_ints(g, n, "shape", 3, DIMS(2, 3, 4));
	Value *y = finish(g, n);
	expect_shape(y, SHAPE(2, 3, 4));
	double want[24];
	for (int k = 0; k < 24; k++)
		want[k] = (k / 4) % 3 + 1;
	Interp *it = mk(g);
	set(it, v, D(1, 2, 3));
	run(it, 1);
	expect(it, y, want, 24, 0);
	interp_free(it);
	ir_graph_free(g);
}

/* ---- gradient ops ---- */

Test(interp, activation_grads)
{
	Graph *g = ir_graph_new("gr");
	Value *dy = in_f64(g, "dy", SHAPE(4)), *x = in_f64(g, "x", SHAPE(4));
	Value *rg = op2(g, OP_RELU_GRAD, dy, x), *sg = op2(g, OP_SIGMOID_GRAD, dy, x), *tg = op2(g, OP_TANH_GRAD, dy, x);
	Node *n = ir_begin(g, OP_LEAKY_RELU_GRAD, "lg", 2, (Value *[]){dy, x});
	ir_set_f(g, n, "alpha", 0.2);
	Value *lg = finish(g, n);
	Interp *it = mk(g);
	set(it, dy, D(1, 2, 3, 4));
	set(it, x, D(-1, 0, 0.5, 0.25));
	run(it, 1);
	expect(it, rg, D(0, 0, 3, 4), 4, TOL);
	expect(it, lg, D(0.2, 0.4, 3, 4), 4, TOL);
	expect(it, sg, D(-2, 0, 0.75, 0.75), 4, TOL);   /* dy*y*(1-y) */
	expect(it, tg, D(0, 2, 2.25, 3.75), 4, TOL);    /* dy*(1-y^2) */
	interp_free(it);
	ir_graph_free(g);
}

/* rows along axis 0 of [3,2]: column 0 y=[.2,.3,.5] dy=[1,2,3]; column 1 y=[.5,.25,.25] dy=[0,4,-4] */
Test(interp, softmax_grads)
{
	Graph *g = ir_graph_new("sg");
	Value *dy = in_f64(g, "dy", SHAPE(3, 2)), *y = in_f64(g, "y", SHAPE(3, 2)), *ly = in_f64(g, "ly", SHAPE(3, 2));
	Value *sg = with_axis(g, OP_SOFTMAX_GRAD, "sg", 2, (Value *[]){dy, y}, 0);
	Value *lg = with_axis(g, OP_LOG_SOFTMAX_GRAD, "lg", 2, (Value *[]){dy, ly}, 0);
	Interp *it = mk(g);
	set(it, dy, D(1, 0, 2, 4, 3, -4));
	set(it, y, D(0.2, 0.5, 0.3, 0.25, 0.5, 0.25));
	set(it, ly, D(log(0.2), log(0.5), log(0.3), log(0.25), log(0.5), log(0.25)));
	run(it, 1);
	/* col 0: s=2.3 -> y*(dy-s); col 1: s=0 -> y*dy */
	expect(it, sg, D(-0.26, 0, -0.09, 1, 0.35, -1), 6, TOL);
	/* col 0: sum dy=6 -> dy - y*6; col 1: sum=0 -> dy */
	expect(it, lg, D(-0.2, 0, 0.2, 4, 0, -4), 6, 1e-12);
	interp_free(it);
	ir_graph_free(g);
}

/* ---- softmax cross-entropy ---- */

static const double sce_z[12] = {1, 2, 3, 0, 0, 0, -1, 0.5, 2, 4, -2, 1};
static const int64_t sce_t[4] = {2, 1, 0, 0};

static double sce_ref(double *grad, double dl)
{
	double total = 0;
	for (int p = 0; p < 4; p++) {
		double s = 0;
		for (int c = 0; c < 3; c++)
			s += exp(sce_z[p * 3 + c]);
		total += log(s) - sce_z[p * 3 + sce_t[p]];
		for (int c = 0; c < 3; c++)
			grad[p * 3 + c] = (exp(sce_z[p * 3 + c]) / s - (c == sce_t[p])) * dl / 4;
	}
	return total / 4;
}

Test(interp, softmax_cross_entropy_3d)
{
	Graph *g = ir_graph_new("sce");
	Value *z = in_f64(g, "z", SHAPE(2, 2, 3)), *dl = in_f64(g, "dl", ir_shape0());
	Value *t = ir_value(g, V_LABEL, "t", DT_I64, SHAPE(2, 2), NULL);
	Value *loss = op2(g, OP_SOFTMAX_CROSS_ENTROPY, z, t);
	Value *dz = finish(g, ir_begin(g, OP_SOFTMAX_CROSS_ENTROPY_GRAD, "sceg", 3, (Value *[]){dl, z, t}));
	Interp *it = mk(g);
	set(it, z, sce_z);
	set(it, dl, D(2));
	cr_assert_eq(interp_set(it, t, sce_t, DT_I64), 0);
	run(it, 1);
	double grad[12], want = sce_ref(grad, 2);
	expect(it, loss, &want, 1, TOL);
	expect(it, dz, grad, 12, TOL);
	/* position 1 has equal logits: its loss is log(3) — a hand value inside the mean */
	cr_assert(fabs((log(exp(1) + exp(2) + exp(3)) - 3) + log(3) + (log(exp(-1) + exp(0.5) + exp(2)) + 1) +
		       (log(exp(4) + exp(-2) + exp(1)) - 4) - 4 * want) < 1e-12);
	interp_free(it);
	ir_graph_free(g);
}

/* the grad op is the derivative of the loss op: central differences through the interpreter */
Test(interp, softmax_cross_entropy_grad_matches_finite_differences)
{
	Graph *g = ir_graph_new("sce");
	Value *z = in_f64(g, "z", SHAPE(4, 3)), *dl = in_f64(g, "dl", ir_shape0());
	Value *t = ir_value(g, V_LABEL, "t", DT_I32, SHAPE(4), NULL);
	Value *loss = op2(g, OP_SOFTMAX_CROSS_ENTROPY, z, t);
	Value *dz = finish(g, ir_begin(g, OP_SOFTMAX_CROSS_ENTROPY_GRAD, "sceg", 3, (Value *[]){dl, z, t}));
	Interp *it = mk(g);
	int32_t t32[4] = {2, 1, 0, 0};
	double zz[12], grad[12], lp, lm;
	memcpy(zz, sce_z, sizeof zz);
	cr_assert_eq(interp_set(it, t, t32, DT_I32), 0);
	set(it, dl, D(1));
	set(it, z, zz);
	run(it, 1);
	cr_assert_eq(interp_get_f64(it, dz, grad), 0);
	for (int k = 0; k < 12; k++) {
		zz[k] += 1e-6;
		set(it, z, zz);
		run(it, 1);
		interp_get_f64(it, loss, &lp);
		zz[k] -= 2e-6;
		set(it, z, zz);
		run(it, 1);
		interp_get_f64(it, loss, &lm);
		zz[k] += 1e-6;
		cr_assert(fabs((lp - lm) / 2e-6 - grad[k]) < 1e-8, "element %d: fd %g, grad %g", k, (lp - lm) / 2e-6, grad[k]);
	}
	interp_free(it);
	ir_graph_free(g);
}

Test(interp, label_out_of_range_is_an_error)
{
	Graph *g = ir_graph_new("sce");
	Value *z = in_f64(g, "z", SHAPE(2, 3));
	Value *t = ir_value(g, V_LABEL, "t", DT_I64, SHAPE(2), NULL);
	finish(g, ir_begin(g, OP_SOFTMAX_CROSS_ENTROPY, "my_loss", 2, (Value *[]){z, t}));
	Interp *it = mk(g);
	set(it, z, sce_z);
	cr_assert_eq(interp_set(it, t, (int64_t[]){1, 3}, DT_I64), 0);
	cr_assert_eq(interp_run(it, 1), -1);
	cr_assert(strstr(interp_error(it), "my_loss") && strstr(interp_error(it), "label 3"), "%s", interp_error(it));
	cr_assert_eq(interp_set(it, t, (int64_t[]){-1, 0}, DT_I64), 0);
	cr_assert_eq(interp_run(it, 1), -1);
	interp_free(it);
	ir_graph_free(g);
}

/* ---- optimizers: 3 steps against torch.optim's formulas written out here ---- */

static const double p0[3] = {1, -2, 0.5};
static const double grads[3][3] = {{0.5, -1, 2}, {0.25, 0.5, -1.5}, {-0.75, 1, 0.125}};

Test(interp, sgd_update_three_steps)
{
	Graph *g = ir_graph_new("sgd");
	Value *p = ir_value(g, V_PARAM, "w", DT_F64, SHAPE(3), p0), *gr = in_f64(g, "g", SHAPE(3));
	Node *n = ir_begin(g, OP_SGD_UPDATE, "sgd", 2, (Value *[]){p, gr});
	ir_set_f(g, n, "lr", 0.1);
	ir_set_f(g, n, "weight_decay", 0.01);
	ir_add_update(g, p, finish(g, n));
	Interp *it = mk(g);
	double ref[3];
	memcpy(ref, p0, sizeof ref);
	for (int s = 0; s < 3; s++) {
		set(it, gr, grads[s]);
		run(it, s + 1);
		for (int k = 0; k < 3; k++)
			ref[k] -= 0.1 * (grads[s][k] + 0.01 * ref[k]);
		if (s == 0) /* by hand: 1 - 0.1*(0.5 + 0.01) */
			expect(it, p, D(0.949, -2 - 0.1 * (-1 - 0.02), 0.5 - 0.1 * (2 + 0.005)), 3, TOL);
		expect(it, p, ref, 3, TOL);
	}
	interp_free(it);
	ir_graph_free(g);
}

static void momentum_case(double mom, double damp, double wd, int nesterov)
{
	Graph *g = ir_graph_new("mom");
	Value *p = ir_value(g, V_PARAM, "w", DT_F64, SHAPE(3), p0), *gr = in_f64(g, "g", SHAPE(3));
	Value *buf = ir_value(g, V_STATE, "w.momentum_buffer", DT_F64, SHAPE(3), NULL);
	Node *n = ir_begin(g, OP_MOMENTUM_UPDATE, "mom", 3, (Value *[]){p, gr, buf});
	ir_set_f(g, n, "lr", 0.1);
	ir_set_f(g, n, "momentum", mom);
	ir_set_f(g, n, "dampening", damp);
	ir_set_f(g, n, "weight_decay", wd);
	ir_set_i(g, n, "nesterov", nesterov);
	finish(g, n);
	ir_add_update(g, p, n->out[0]);
	ir_add_update(g, buf, n->out[1]);
	Interp *it = mk(g);
	double rp[3], rb[3] = {0};
	memcpy(rp, p0, sizeof rp);
	for (int s = 0; s < 3; s++) {
		set(it, gr, grads[s]);
		run(it, s + 1);
		for (int k = 0; k < 3; k++) {
			double d = grads[s][k] + wd * rp[k];
			rb[k] = s == 0 ? d : mom * rb[k] + (1 - damp) * d;
			d = nesterov ? d + mom * rb[k] : rb[k];
			rp[k] -= 0.1 * d;
		}
		expect(it, p, rp, 3, TOL);
		expect(it, buf, rb, 3, TOL);
	}
	interp_free(it);
	ir_graph_free(g);
}

Test(interp, momentum_update_three_steps)
{
	momentum_case(0.9, 0, 0, 0);
	momentum_case(0.9, 0.1, 0.01, 0);
	momentum_case(0.8, 0, 0.05, 1);
}

/* first step by hand: buf = g, p = p - lr*g (momentum plays no part yet) */
Test(interp, momentum_first_step_by_hand)
{
	Graph *g = ir_graph_new("mom");
	Value *p = ir_value(g, V_PARAM, "w", DT_F64, SHAPE(1), D(1)), *gr = in_f64(g, "g", SHAPE(1));
	Value *buf = ir_value(g, V_STATE, "b", DT_F64, SHAPE(1), NULL);
	Node *n = ir_begin(g, OP_MOMENTUM_UPDATE, "mom", 3, (Value *[]){p, gr, buf});
	ir_set_f(g, n, "lr", 0.5);
	ir_set_f(g, n, "momentum", 0.9);
	ir_set_f(g, n, "dampening", 0.5);
	finish(g, n);
	ir_add_update(g, p, n->out[0]);
	ir_add_update(g, buf, n->out[1]);
	Interp *it = mk(g);
	set(it, gr, D(2));
	run(it, 1);
	expect(it, p, D(0), 1, TOL);
	expect(it, buf, D(2), 1, TOL);
	run(it, 2); /* buf = 0.9*2 + 0.5*2 = 2.8; p = 0 - 0.5*2.8 */
	expect(it, buf, D(2.8), 1, TOL);
	expect(it, p, D(-1.4), 1, TOL);
	interp_free(it);
	ir_graph_free(g);
}

static void adam_case(double wd, int decoupled)
{
	const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
	Graph *g = ir_graph_new("adam");
	Value *p = ir_value(g, V_PARAM, "w", DT_F64, SHAPE(3), p0), *gr = in_f64(g, "g", SHAPE(3));
	Value *m = ir_value(g, V_STATE, "w.exp_avg", DT_F64, SHAPE(3), NULL);
	Value *v = ir_value(g, V_STATE, "w.exp_avg_sq", DT_F64, SHAPE(3), NULL);
	Node *n = ir_begin(g, OP_ADAM_UPDATE, "adam", 4, (Value *[]){p, gr, m, v});
	ir_set_f(g, n, "lr", lr);
	ir_set_f(g, n, "beta1", b1);
	ir_set_f(g, n, "beta2", b2);
	ir_set_f(g, n, "eps", eps);
	ir_set_f(g, n, "weight_decay", wd);
	ir_set_i(g, n, "decoupled", decoupled);
	finish(g, n);
	for (int i = 0; i < 3; i++)
		ir_add_update(g, (Value *[]){p, m, v}[i], n->out[i]);
	Interp *it = mk(g);
	double rp[3], rm[3] = {0}, rv[3] = {0};
	memcpy(rp, p0, sizeof rp);
	for (int s = 0; s < 3; s++) {
		int t = s + 1;
		set(it, gr, grads[s]);
		run(it, t);
		for (int k = 0; k < 3; k++) {
			double d = grads[s][k];
			if (decoupled)
				rp[k] *= 1 - lr * wd;
			else
				d += wd * rp[k];
			rm[k] = b1 * rm[k] + (1 - b1) * d;
			rv[k] = b2 * rv[k] + (1 - b2) * d * d;
			double mhat = rm[k] / (1 - pow(b1, t)), vhat = rv[k] / (1 - pow(b2, t));
			rp[k] -= lr * mhat / (sqrt(vhat) + eps);
		}
		expect(it, p, rp, 3, 1e-11);
		expect(it, m, rm, 3, 1e-12);
		expect(it, v, rv, 3, 1e-12);
	}
	interp_free(it);
	ir_graph_free(g);
}

Test(interp, adam_update_three_steps)
{
	adam_case(0, 0);
	adam_case(0.1, 0);
	adam_case(0.1, 1);
}

/* step 1 of Adam moves every weight by about lr*sign(g) */
Test(interp, adam_first_step_by_hand)
{
	Graph *g = ir_graph_new("adam");
	Value *p = ir_value(g, V_PARAM, "w", DT_F64, SHAPE(2), D(1, 1)), *gr = in_f64(g, "g", SHAPE(2));
	Value *m = ir_value(g, V_STATE, "m", DT_F64, SHAPE(2), NULL);
	Value *v = ir_value(g, V_STATE, "v", DT_F64, SHAPE(2), NULL);
	Node *n = ir_begin(g, OP_ADAM_UPDATE, "adam", 4, (Value *[]){p, gr, m, v});
	ir_set_f(g, n, "lr", 0.1);
	ir_set_f(g, n, "eps", 0);
	finish(g, n);
	ir_add_update(g, p, n->out[0]);
	Interp *it = mk(g);
	set(it, gr, D(3, -0.5));
	run(it, 1);
	expect(it, p, D(0.9, 1.1), 2, 1e-14);
	expect(it, n->out[1], D(0.3, -0.05), 2, 1e-14);
	cr_assert_eq(interp_run(it, 0), -1, "step 0 must be refused");
	interp_free(it);
	ir_graph_free(g);
}

/* ---- persistence, batch, precision, errors ---- */

Test(interp, update_persists_across_runs)
{
	Graph *g = ir_graph_new("sgd");
	Value *p = ir_value(g, V_PARAM, "w", DT_F64, SHAPE(2), D(1, 2)), *gr = in_f64(g, "g", SHAPE(2));
	Node *n = ir_begin(g, OP_SGD_UPDATE, "sgd", 2, (Value *[]){p, gr});
	ir_set_f(g, n, "lr", 0.5);
	ir_add_update(g, p, finish(g, n));
	Interp *it = mk(g);
	set(it, gr, D(1, -1));
	run(it, 1);
	expect(it, p, D(0.5, 2.5), 2, TOL);
	run(it, 2);
	expect(it, p, D(0, 3), 2, TOL);
	interp_free(it);
	ir_graph_free(g);
}

/* dynamic loss scaling: AllFinite, the scaled update (skip, or gradient / scale) and the
 * scale's own update (ops.def) */
Test(interp, loss_scaling_ops)
{
	Graph *g = ir_graph_new("scaled");
	Value *p = ir_value(g, V_PARAM, "w", DT_F64, SHAPE(2), D(1, 2)), *gr = in_f64(g, "g", SHAPE(2));
	Value *k = ir_value(g, V_STATE, "k", DT_F64, ir_shape0(), NULL), *good = ir_value(g, V_STATE, "good", DT_F64, ir_shape0(), NULL);
	k->slot = "loss_scale_log2", good->slot = "loss_scale_good";
	Node *ls = ir_begin(g, OP_LOSS_SCALE, "scale", 1, &k);
	ir_set_f(g, ls, "alpha", 4);
	Value *scale = finish(g, ls), *finite = ir_op(g, OP_ALL_FINITE, 1, &gr);
	Node *n = ir_begin(g, OP_SGD_UPDATE, "sgd", 4, (Value *[]){p, gr, scale, finite});
	ir_set_f(g, n, "lr", 0.5);
	ir_add_update(g, p, finish(g, n));
	Node *u = ir_begin(g, OP_LOSS_SCALE_UPDATE, "upd", 3, (Value *[]){k, good, finite});
	ir_set_i(g, u, "window", 2);
	ir_add_update(g, k, finish(g, u));
	ir_add_update(g, good, u->out[1]);
	Interp *it = mk(g);
	set(it, gr, D(4, -8)); /* scale 4: the gradient is (1, -2) */
	run(it, 1);
	expect(it, p, D(0.5, 3), 2, TOL);
	expect(it, finite, D(1), 1, 0);
	expect(it, good, D(1), 1, 0);
	set(it, gr, D(INFINITY, 1)); /* skipped: w unchanged, k -> -1, good -> 0 */
	run(it, 2);
	expect(it, p, D(0.5, 3), 2, TOL);
	expect(it, k, D(-1), 1, 0);
	expect(it, good, D(0), 1, 0);
	set(it, gr, D(2, 2)); /* scale 2: gradient (1, 1); then two good steps double the scale */
	run(it, 2);
	expect(it, p, D(0, 2.5), 2, TOL);
	run(it, 3);
	expect(it, k, D(0), 1, 0);
	expect(it, scale, D(2), 1, 0);
	interp_free(it);
	ir_graph_free(g);
}

/* x [N,3] (f32, set from f64 data) + b [3] (f32 constant data), summed over axis 1, and a
 * cross-entropy over N positions */
static void batch_case(int64_t nb)
{
	Graph *g = ir_graph_new("batch");
	Value *x = ir_value(g, V_INPUT, "x", DT_F32, SHAPE(-1, 3), NULL);
	Value *b = ir_value(g, V_CONST, "b", DT_F32, SHAPE(3), (float[]){1, 2, 3});
	Value *t = ir_value(g, V_LABEL, "t", DT_I64, SHAPE(-1), NULL);
	Value *y = op2(g, OP_ADD, x, b), *r = reduce(g, OP_REDUCE_SUM, y, 1, DIMS(1), 0);
	Value *loss = op2(g, OP_SOFTMAX_CROSS_ENTROPY, y, t);
	double xd[15], want[5];
	int64_t td[5] = {0};
	for (int k = 0; k < nb * 3; k++)
		xd[k] = k;
	for (int i = 0; i < nb; i++)
		want[i] = 9 * i + 3 + 6;
	Interp *it = mk_mode(g, DT_F64, nb);
	set(it, x, xd);
	cr_assert_eq(interp_set(it, t, td, DT_I64), 0);
	run(it, 1);
	expect(it, r, want, nb, TOL);
	/* every row is c + [0,2,4] with label 0: loss = log(1 + e^2 + e^4) */
	expect(it, loss, D(log(1 + exp(2) + exp(4))), 1, TOL);
	interp_free(it);
	ir_graph_free(g);
}

Test(interp, batch_dimension_resolves)
{
	batch_case(2);
	batch_case(5);
}

Test(interp, f32_mode_rounds_each_operation)
{
	Graph *g = ir_graph_new("f32");
	Value *a = in_f64(g, "a", SHAPE(2)), *b = in_f64(g, "b", SHAPE(2));
	Value *h = ir_value(g, V_INPUT, "h", DT_F16, SHAPE(1), NULL);
	Value *y = op2(g, OP_ADD, a, b), *hi = ir_op1(g, OP_IDENTITY, h);
	Value *sm = with_axis(g, OP_SOFTMAX, "sm", 1, &a, 0), *one = in_f64(g, "one", SHAPE(1));
	Value *tg = op2(g, OP_TANH_GRAD, one, one); /* 1 - y*y with y = 1 + 2^-20: y*y rounds in f32 */
	double y20 = 1 + ldexp(1, -20), tgv;
	for (int mode = 0; mode < 2; mode++) {
		Interp *it = mk_mode(g, mode ? DT_F32 : DT_F64, 1);
		set(it, a, D(1, 0.1));
		set(it, b, D(1e-8, 0.2));
		float third = 1.0f / 3;
		cr_assert_eq(interp_set(it, h, &third, DT_F32), 0);
		set(it, one, &y20);
		run(it, 1);
		interp_get_f64(it, tg, &tgv);
		cr_assert_eq(tgv, mode ? y20 * -ldexp(1, -19) : y20 * -(ldexp(1, -19) + ldexp(1, -40)), "%.17g", tgv);
		double got[2], hv, ws[2] = {1 / (1 + exp(-0.9)), 1 / (1 + exp(0.9))};
		interp_get_f64(it, y, got);
		interp_get_f64(it, hi, &hv);
		if (mode) {
			cr_assert_eq(got[0], 1.0);
			cr_assert_eq(got[1], (double)(0.1f + 0.2f));
			cr_assert_eq(hv, 0.333251953125); /* 1/3 stored as f16 */
			expect(it, sm, ws, 2, 1e-6);
		} else {
			cr_assert_eq(got[0], 1 + 1e-8);
			cr_assert_eq(got[1], 0.1 + 0.2);
			cr_assert_eq(hv, (double)third);
			expect(it, sm, ws, 2, 1e-15);
		}
		interp_free(it);
	}
	ir_graph_free(g);
}

Test(interp, integer_tensors)
{
	Graph *g = ir_graph_new("int");
	Value *a = ir_value(g, V_INPUT, "a", DT_I64, SHAPE(2, 2), NULL);
	Value *b = ir_value(g, V_INPUT, "b", DT_I64, SHAPE(2), NULL);
	Value *d = op2(g, OP_DIV, a, b), *s = reduce(g, OP_REDUCE_SUM, a, 0, NULL, 0), *e = ir_op1(g, OP_EXP, a);
	(void)e;
	Interp *it = mk(g);
	cr_assert_eq(interp_set(it, a, (int64_t[]){7, -7, 9, 4}, DT_I64), 0);
	cr_assert_eq(interp_set(it, b, (int32_t[]){2, 3}, DT_I32), 0);
	cr_assert_eq(interp_run(it, 1), -1); /* Exp of int64 */
	cr_assert(strstr(interp_error(it), "Exp") && strstr(interp_error(it), "unsupported dtype i64"), "%s",
		  interp_error(it));
	expect(it, d, D(3, -2, 4, 1), 4, 0);
	expect(it, s, D(13), 1, 0);
	cr_assert_eq(interp_set(it, b, (int64_t[]){0, 1}, DT_I64), 0);
	cr_assert_eq(interp_run(it, 1), -1);
	cr_assert(strstr(interp_error(it), "division by zero"), "%s", interp_error(it));
	interp_free(it);
	ir_graph_free(g);
}

Test(interp, errors_name_the_node_or_value)
{
	Graph *g = ir_graph_new("err");
	Value *a = in_f64(g, "a", SHAPE(2)), *b = in_f64(g, "b_missing", SHAPE(2));
	finish(g, ir_begin(g, OP_ADD, "the_add", 2, (Value *[]){a, b}));
	Interp *it = mk(g);
	set(it, a, D(1, 2));
	cr_assert_eq(interp_run(it, 1), -1);
	const char *msg = interp_error(it);
	cr_assert(strstr(msg, "the_add") && strstr(msg, "b_missing"), "%s", msg);
	double out[2];
	cr_assert_eq(interp_get_f64(it, g->nodes[0]->out[0], out), -1);
	interp_free(it);
	char err[128] = "";
	cr_assert_null(interp_new(g, DT_I64, 1, err, sizeof err));
	cr_assert(strstr(err, "f64 or f32"), "%s", err);
	ir_graph_free(g);
}
