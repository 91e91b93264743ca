/*
 * grad_rules.c — one gradient rule per entry of the `grad` column of ir/ops.def.
 *
 * Each rule grad_<rule>(g, n, dout, need, din) appends the backward nodes of the forward node
 * n and stores, for every input j with need[j], the gradient contribution din[j] (shape and
 * dtype of n->in[j]); see passes/grad.h. Rules use the IR-only grad ops where ops.def has them
 * (ReluGrad, SigmoidGrad, SoftmaxGrad, SoftmaxCrossEntropyGrad, ...) and compose ordinary ops
 * for the rest. Broadcasting is undone by sum_to (ReduceSum over the broadcast axes, then
 * Reshape). Every helper passes NULL through, so a failed ir_finish (g->err set) surfaces as a
 * NULL gradient and the rule returns -1.
 *
 * Preconditions: attributes are in IR normal form (non-negative axes, Reduce* with `axes` and
 * `keepdims`, Reshape/Expand with IR `shape`); graphs are f32 or f64 (constants made here take
 * the value's dtype). Run-time batch counts (ReduceMean over N) are computed in the graph, so
 * the backward program is exact for every batch. Simplification is left to fold/CSE/DCE.
 */
#include <string.h>

#include "passes/grad.h"

/* ---- emitting helpers (NULL in, NULL out) ---- */

static Value *fin(Graph *g, Node *n) { return ir_finish(g, n) < 0 ? NULL : n->out[0]; }

static Value *op1(Graph *g, Op op, Value *a) { return a ? ir_op1(g, op, a) : NULL; }

static Value *op2(Graph *g, Op op, Value *a, Value *b) { return a && b ? ir_op2(g, op, a, b) : NULL; }

static Value *scalar_like(Graph *g, const Value *v, double c) { return ir_const_scalar(g, v->dt, c); }

/* x * c (nothing emitted when c == 1) */
static Value *scale(Graph *g, Value *x, double c)
{
	if (!x || c == 1.0)
		return x;
	return op2(g, OP_MUL, x, scalar_like(g, x, c));
}

static Value *reshape(Graph *g, Value *x, const Shape *s)
{
	if (!x || ir_shape_eq(&x->shape, s))
		return x;
	Node *n = ir_begin(g, OP_RESHAPE, NULL, 1, &x);
	ir_set_ints(g, n, "shape", s->rank, s->d);
	return fin(g, n);
}

static Value *expand(Graph *g, Value *x, const Shape *s)
{
	if (!x || ir_shape_eq(&x->shape, s))
		return x;
	Node *n = ir_begin(g, OP_EXPAND, NULL, 1, &x);
	ir_set_ints(g, n, "shape", s->rank, s->d);
	return fin(g, n);
}

static Value *reduce(Graph *g, Op op, Value *x, int naxes, const int64_t *axes, int keep)
{
	if (!x)
		return NULL;
	Node *n = ir_begin(g, op, NULL, 1, &x);
	ir_set_ints(g, n, "axes", naxes, axes);
	ir_set_i(g, n, "keepdims", keep);
	return fin(g, n);
}

static Value *transpose(Graph *g, Value *x, const int64_t *perm)
{
	if (!x)
		return NULL;
	Node *n = ir_begin(g, OP_TRANSPOSE, NULL, 1, &x);
	ir_set_ints(g, n, "perm", x->shape.rank, perm);
	return fin(g, n);
}

/* x with its last two axes swapped (rank >= 2) */
static Value *swap_last2(Graph *g, Value *x)
{
	if (!x)
		return NULL;
	int64_t perm[IR_MAX_RANK];
	int r = x->shape.rank;
	DLCC_ASSERT(r >= 2);
	for (int i = 0; i < r; i++)
		perm[i] = i;
	perm[r - 2] = r - 1;
	perm[r - 1] = r - 2;
	return transpose(g, x, perm);
}

static Value *gemm(Graph *g, Value *a, Value *b, int ta, int tb, double alpha)
{
	if (!a || !b)
		return NULL;
	Value *in[2] = {a, b};
	Node *n = ir_begin(g, OP_GEMM, NULL, 2, in);
	ir_set_i(g, n, "transA", ta);
	ir_set_i(g, n, "transB", tb);
	if (alpha != 1.0)
		ir_set_f(g, n, "alpha", alpha);
	return fin(g, n);
}

/* Sum dy (a broadcast result) down to shape s: ReduceSum over the leading extra axes and the
 * axes where s has extent 1, then Reshape to s. Emits nothing when the shapes already match. */
static Value *sum_to(Graph *g, Value *dy, const Shape *s)
{
	if (!dy || ir_shape_eq(&dy->shape, s))
		return dy;
	int r = dy->shape.rank, lead = r - s->rank, nax = 0;
	int64_t axes[IR_MAX_RANK];
	DLCC_ASSERT(lead >= 0);
	for (int i = 0; i < r; i++)
		if (i < lead || (s->d[i - lead] == 1 && dy->shape.d[i] != 1))
			axes[nax++] = i;
	Value *red = nax ? reduce(g, OP_REDUCE_SUM, dy, nax, axes, 1) : dy;
	return reshape(g, red, s);
}

static int done(Node *n, const char *need, Value **din)
{
	for (int j = 0; j < n->nin; j++)
		if (need[j] && !din[j])
			return -1;
	return 0;
}

/* ---- rules that stop or block the gradient ---- */

int grad_none(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	return ir_error(g, "node '%s' (%s): op is not differentiable, but a parameter's gradient "
			   "must flow through it", n->name, ir_ops[n->op].name);
}

int grad_zero(Graph *g, Node *n, Value *const *dout, const char *need, Value **din) { return 0; }

/* ---- elementwise ---- */

int grad_identity(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = dout[0];
	return done(n, need, din);
}

int grad_neg(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = op1(g, OP_NEG, dout[0]);
	return done(n, need, din);
}

int grad_relu(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = op2(g, OP_RELU_GRAD, dout[0], n->in[0]);
	return done(n, need, din);
}

int grad_leaky_relu(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *in[2] = {dout[0], n->in[0]};
	Node *m = ir_begin(g, OP_LEAKY_RELU_GRAD, NULL, 2, in);
	ir_set_f(g, m, "alpha", ir_attr_f(n, "alpha", 0.01));
	din[0] = fin(g, m);
	return done(n, need, din);
}

int grad_sigmoid(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = op2(g, OP_SIGMOID_GRAD, dout[0], n->out[0]);
	return done(n, need, din);
}

int grad_tanh(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = op2(g, OP_TANH_GRAD, dout[0], n->out[0]);
	return done(n, need, din);
}

int grad_exp(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = op2(g, OP_MUL, dout[0], n->out[0]);
	return done(n, need, din);
}

int grad_log(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = op2(g, OP_DIV, dout[0], n->in[0]);
	return done(n, need, din);
}

/* d sqrt(x) = dy / (2 y) */
int grad_sqrt(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *y = n->out[0];
	din[0] = op2(g, OP_DIV, dout[0], op2(g, OP_ADD, y, y));
	return done(n, need, din);
}

int grad_cos(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = op1(g, OP_NEG, op2(g, OP_MUL, dout[0], op1(g, OP_SIN, n->in[0])));
	return done(n, need, din);
}

int grad_sin(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = op2(g, OP_MUL, dout[0], op1(g, OP_COS, n->in[0]));
	return done(n, need, din);
}

/* dy * sign(x): 0 at x = 0, as torch has it */
int grad_abs(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = op2(g, OP_MUL, dout[0], op1(g, OP_SIGN, n->in[0]));
	return done(n, need, din);
}

/* ---- broadcasting binary ---- */

int grad_add(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	for (int j = 0; j < 2; j++)
		if (need[j])
			din[j] = sum_to(g, dout[0], &n->in[j]->shape);
	return done(n, need, din);
}

int grad_sub(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	if (need[0])
		din[0] = sum_to(g, dout[0], &n->in[0]->shape);
	if (need[1])
		din[1] = sum_to(g, op1(g, OP_NEG, dout[0]), &n->in[1]->shape);
	return done(n, need, din);
}

int grad_mul(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	for (int j = 0; j < 2; j++)
		if (need[j])
			din[j] = sum_to(g, op2(g, OP_MUL, dout[0], n->in[1 - j]), &n->in[j]->shape);
	return done(n, need, din);
}

/* y = a / b: da = dy / b, db = -(dy * y) / b */
int grad_div(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *b = n->in[1];
	if (need[0])
		din[0] = sum_to(g, op2(g, OP_DIV, dout[0], b), &n->in[0]->shape);
	if (need[1]) {
		Value *t = op2(g, OP_DIV, op2(g, OP_MUL, dout[0], n->out[0]), b);
		din[1] = sum_to(g, op1(g, OP_NEG, t), &b->shape);
	}
	return done(n, need, din);
}

/* ---- matrix products ---- */

/* Y = alpha op(A) op(B) + beta C, op(X) = X or X^T by transA/transB:
 *   dA = alpha dY op(B)^T  (transA=0)    dA = alpha op(B) dY^T  (transA=1)
 *   dB = alpha op(A)^T dY  (transB=0)    dB = alpha dY^T op(A)  (transB=1)
 *   dC = beta dY summed to C's shape */
int grad_gemm(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *a = n->in[0], *b = n->in[1], *dy = dout[0];
	int ta = ir_attr_i(n, "transA", 0), tb = ir_attr_i(n, "transB", 0);
	double alpha = ir_attr_f(n, "alpha", 1.0), beta = ir_attr_f(n, "beta", 1.0);
	if (need[0])
		din[0] = ta ? gemm(g, b, dy, tb, 1, alpha) : gemm(g, dy, b, 0, !tb, alpha);
	if (need[1])
		din[1] = tb ? gemm(g, dy, a, 1, ta, alpha) : gemm(g, a, dy, !ta, 0, alpha);
	if (n->nin == 3 && need[2])
		din[2] = sum_to(g, scale(g, dy, beta), &n->in[2]->shape);
	return done(n, need, din);
}

/* a 1-D MatMul operand as the matrix numpy uses: [k] -> [1,k] (left) or [k,1] (right) */
static Value *promote(Graph *g, Value *v, int right)
{
	if (v->shape.rank != 1)
		return v;
	Shape s = ir_shape(2, right ? (int64_t[]){v->shape.d[0], 1} : (int64_t[]){1, v->shape.d[0]});
	return reshape(g, v, &s);
}

/* MatMul with numpy semantics: operands promoted to matrices, dY reshaped to the promoted
 * product's shape; dA = dY B^T, dB = A^T dY, each summed over broadcast batch axes and reshaped
 * back to the operand's shape. */
/* transA/transB (passes/simplify.c folds transposes into them): the product of the swapped
 * operands, whose gradients are swapped back */
int grad_matmul(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	int ta = (int)ir_attr_i(n, "transA", 0), tb = (int)ir_attr_i(n, "transB", 0);
	Value *a = promote(g, n->in[0], 0), *b = promote(g, n->in[1], 1);
	if (!a || !b)
		return -1;
	if (ta)
		a = swap_last2(g, a);
	if (tb)
		b = swap_last2(g, b);
	Shape ys = dout[0]->shape;
	if (n->in[0]->shape.rank == 1)
		ys.d[ys.rank++] = 0;
	if (n->in[1]->shape.rank == 1)
		ys.d[ys.rank++] = 1;
	ys.d[ys.rank - 2] = a->shape.d[a->shape.rank - 2];
	ys.d[ys.rank - 1] = b->shape.d[b->shape.rank - 1];
	Value *dy = reshape(g, dout[0], &ys);
	if (need[0]) {
		Value *da = sum_to(g, op2(g, OP_MATMUL, dy, swap_last2(g, b)), &a->shape);
		if (ta)
			da = swap_last2(g, da);
		din[0] = reshape(g, da, &n->in[0]->shape);
	}
	if (need[1]) {
		Value *db = sum_to(g, op2(g, OP_MATMUL, swap_last2(g, a), dy), &b->shape);
		if (tb)
			db = swap_last2(g, db);
		din[1] = reshape(g, db, &n->in[1]->shape);
	}
	return done(n, need, din);
}

/* ---- softmax family ---- */

static int axis_of(const Node *n)
{
	int r = n->in[0]->shape.rank, ax = ir_attr_i(n, "axis", -1);
	return ax < 0 ? ax + r : ax;
}

static int softmax_like(Graph *g, Node *n, Op gop, Value *const *dout, const char *need, Value **din)
{
	Value *in[2] = {dout[0], n->out[0]};
	Node *m = ir_begin(g, gop, NULL, 2, in);
	ir_set_i(g, m, "axis", axis_of(n));
	din[0] = fin(g, m);
	return done(n, need, din);
}

int grad_softmax(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	return softmax_like(g, n, OP_SOFTMAX_GRAD, dout, need, din);
}

int grad_log_softmax(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	return softmax_like(g, n, OP_LOG_SOFTMAX_GRAD, dout, need, din);
}

/* labels (input 1) are integers and never need a gradient */
int grad_softmax_ce(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *in[3] = {dout[0], n->in[0], n->in[1]};
	if (need[0])
		din[0] = ir_op(g, OP_SOFTMAX_CROSS_ENTROPY_GRAD, 3, in);
	return done(n, need, din);
}

/* ---- shape ops ---- */

/* Reshape and Flatten: reshape the gradient back */
int grad_reshape(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = reshape(g, dout[0], &n->in[0]->shape);
	return done(n, need, din);
}

int grad_transpose(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	int cnt;
	const int64_t *p = ir_attr_ints(n, "perm", &cnt);
	int64_t inv[IR_MAX_RANK];
	DLCC_ASSERT(p && cnt == n->in[0]->shape.rank);
	for (int i = 0; i < cnt; i++)
		inv[p[i]] = i;
	din[0] = transpose(g, dout[0], inv);
	return done(n, need, din);
}

int grad_expand(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = sum_to(g, dout[0], &n->in[0]->shape);
	return done(n, need, din);
}

/* ---- reductions ---- */

/* is axis i of x reduced by node n (empty axes = all) */
static int reduced(const Node *n, int i)
{
	int cnt = 0;
	const int64_t *ax = ir_attr_ints(n, "axes", &cnt);
	if (!ax || cnt == 0)
		return 1;
	for (int k = 0; k < cnt; k++)
		if (ax[k] == i)
			return 1;
	return 0;
}

/* dy of a reduction, reshaped to keepdims form and expanded to x's shape (a scalar dy
 * broadcasts as it is) */
static Value *unreduce(Graph *g, Node *n, Value *dy)
{
	const Shape *xs = &n->in[0]->shape;
	if (dy && dy->shape.rank == 0)
		return expand(g, dy, xs);
	Shape keep = *xs;
	for (int i = 0; i < xs->rank; i++)
		if (reduced(n, i))
			keep.d[i] = 1;
	return expand(g, reshape(g, dy, &keep), xs);
}

int grad_reduce_sum(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = unreduce(g, n, dout[0]);
	return done(n, need, din);
}

/* The number of elements averaged, as a scalar computed at run time: ReduceSum of ones shaped
 * like the reduced extents of x (used only when a reduced axis carries the batch N). */
static Value *runtime_count(Graph *g, Node *n)
{
	const Shape *xs = &n->in[0]->shape;
	Shape s = *xs;
	for (int i = 0; i < xs->rank; i++)
		if (!reduced(n, i))
			s.d[i] = 1;
	Value *ones = expand(g, scalar_like(g, n->in[0], 1.0), &s);
	return reduce(g, OP_REDUCE_SUM, ones, 0, NULL, 0);
}

/* ReduceMean: like ReduceSum, divided by the count. The count is a compile-time constant unless
 * a reduced axis is a batch dimension; then it is computed in the graph, exact for any N. */
int grad_reduce_mean(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	const Shape *xs = &n->in[0]->shape;
	int64_t count = 1;
	int batch = 0;
	for (int i = 0; i < xs->rank; i++)
		if (reduced(n, i)) {
			batch |= xs->d[i] < 0;
			count *= xs->d[i];
		}
	Value *dx = unreduce(g, n, dout[0]);
	din[0] = batch ? op2(g, OP_DIV, dx, runtime_count(g, n)) : scale(g, dx, 1.0 / (double)count);
	return done(n, need, din);
}

/* sum_to for the rule files beside this one (grad_norm.c) */
Value *grad_sum_to(Graph *g, Value *dy, const Shape *s) { return sum_to(g, dy, s); }
