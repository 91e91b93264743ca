/*
 * grad_reduce.c — gradient rules of the reduction, dropout and loss block of ops.def; see
 * passes/grad.h for the rule interface. Everything is composed of ordinary IR ops.
 *
 *   ReduceMax/Min  dx = dy · [x == y] / count, count = how many elements of the group equal the
 *                  extreme: ties split the gradient evenly (torch.amax's rule), so the gradient
 *                  of a group sums to dy whatever the ties
 *   ReduceProd     dx_i = dy · prod_{j != i} x_j, zero-safe: with z the number of zeros in the
 *                  group and p the product of its non-zero elements, dx_i = dy · p / x_i when
 *                  z == 0; dy · p at the zero when z == 1 (0 elsewhere); 0 when z >= 2. No
 *                  division by zero is ever evaluated (x_i is replaced by 1 where it is 0)
 *   Dropout        dx = where(mask, dy, 0) / (1 - ratio), the forward's mask output
 *   NllLoss        d logp = NllLossGrad (one -w[t]·g at the target class of every position);
 *                  class weights, when they are trained: per position u = -logp[n,t,d],
 *                  dw = scatter-add over t of u·dy ("none", "sum") or of (u - loss)·dy / wsum
 *                  ("mean", the quotient rule of sum(w u) / sum(w)), ignored positions adding 0
 * Preconditions: IR normal form (reduce `axes` explicit or empty = all; see ir/shape.c).
 */
#include <string.h>

#include "passes/grad.h"

static Value *fin(Graph *g, Node *n) { return ir_finish(g, n) < 0 ? NULL : n->out[0]; }
static Value *op2(Graph *g, Op op, Value *a, Value *b) { return a && b ? ir_op2(g, op, a, b) : NULL; }
static Value *cst(Graph *g, const Value *like, double v) { return ir_const_scalar(g, like->dt, v); }

static Value *where(Graph *g, Value *c, Value *x, Value *y)
{
	return c && x && y ? ir_op(g, OP_WHERE, 3, (Value *[]){c, x, y}) : NULL;
}

static Value *cast(Graph *g, Value *x, DType to)
{
	if (!x)
		return NULL;
	Node *m = ir_begin(g, OP_CAST, NULL, 1, &x);
	ir_set_s(g, m, "to", ir_dt_name(to));
	return fin(g, m);
}

static Value *reshape(Graph *g, Value *x, const Shape *s)
{
	if (!x || ir_shape_eq(&x->shape, s))
		return x;
	Node *m = ir_begin(g, OP_RESHAPE, NULL, 1, &x);
	ir_set_ints(g, m, "shape", s->rank, s->d);
	return fin(g, m);
}

static int done(Node *n, const char *need, Value **din)
{
	for (int j = 0; j < n->nin; j++)
		if (need[j] && !din[j])
			return -1;
	return 0;
}

/* ---- reductions ---- */

/* x's shape with the axes reduced by n set to 1 */
static Shape keep_shape(const Node *n)
{
	Shape s = n->in[0]->shape;
	int cnt = 0;
	const int64_t *ax = ir_attr_ints(n, "axes", &cnt);
	for (int i = 0; i < s.rank; i++) {
		int red = !ax || cnt == 0;
		for (int k = 0; k < cnt; k++)
			red |= ax[k] == i;
		if (red)
			s.d[i] = 1;
	}
	return s;
}

/* the same reduction as n (axes, keepdims 1) of another op on v */
static Value *reduce_like(Graph *g, const Node *n, Op op, Value *v)
{
	if (!v)
		return NULL;
	int cnt = 0;
	const int64_t *ax = ir_attr_ints(n, "axes", &cnt);
	Node *m = ir_begin(g, op, NULL, 1, &v);
	ir_set_ints(g, m, "axes", ax ? cnt : 0, ax);
	ir_set_i(g, m, "keepdims", 1);
	return fin(g, m);
}

static int extreme(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *x = n->in[0];
	Shape ks = keep_shape(n);
	Value *hit = cast(g, op2(g, OP_EQUAL, x, reshape(g, n->out[0], &ks)), x->dt);
	Value *count = reduce_like(g, n, OP_REDUCE_SUM, hit);
	din[0] = op2(g, OP_MUL, hit, op2(g, OP_DIV, reshape(g, dout[0], &ks), count));
	return done(n, need, din);
}

int grad_reduce_max(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	return extreme(g, n, dout, need, din);
}

int grad_reduce_min(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	return extreme(g, n, dout, need, din);
}

int grad_reduce_prod(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *x = n->in[0], *zero = cst(g, x, 0), *one = cst(g, x, 1);
	Shape ks = keep_shape(n);
	Value *isz = op2(g, OP_EQUAL, x, zero);
	Value *xnz = where(g, isz, one, x);
	Value *p = reduce_like(g, n, OP_REDUCE_PROD, xnz);
	Value *z = reduce_like(g, n, OP_REDUCE_SUM, cast(g, isz, x->dt));
	Value *no_zero = where(g, op2(g, OP_EQUAL, z, zero), op2(g, OP_DIV, p, xnz), zero);
	Value *one_zero = where(g, op2(g, OP_EQUAL, z, one), p, zero);
	Value *share = where(g, isz, one_zero, no_zero);
	din[0] = op2(g, OP_MUL, reshape(g, dout[0], &ks), share);
	return done(n, need, din);
}

/* ---- Dropout ---- */

int grad_dropout(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	double ratio = ir_attr_f(n, "ratio", 0.5);
	Value *dy = dout[0];
	if (!dy) /* only the (bool) mask is used: no gradient reaches x */
		return 0;
	Value *kept = where(g, n->out[1], dy, cst(g, dy, 0));
	din[0] = ratio == 0 || !kept ? kept : op2(g, OP_MUL, kept, cst(g, kept, 1.0 / (1.0 - ratio)));
	return done(n, need, din);
}

/* ---- NllLoss ---- */

static void copy_attrs(Graph *g, Node *m, const Node *n)
{
	for (int i = 0; i < n->nattr; i++) {
		const Attr *a = &n->attr[i];
		if (a->kind == A_INT)
			ir_set_i(g, m, a->name, a->i);
		else if (a->kind == A_STRING)
			ir_set_s(g, m, a->name, a->s);
	}
}

static const char *reduction(const Node *n)
{
	const Attr *r = ir_attr(n, "reduction");
	return r && r->kind == A_STRING ? r->s : "mean";
}

/* per position: -logp at the target (0 where ignored), unweighted */
static Value *nll_per_position(Graph *g, Node *n)
{
	Node *m = ir_begin(g, OP_NLL_LOSS, NULL, 2, n->in);
	copy_attrs(g, m, n);
	ir_set_s(g, m, "reduction", "none");
	return fin(g, m);
}

/* dw: the scatter-add over the targets of v (zero at ignored positions) into [C] */
static Value *class_sum(Graph *g, Node *n, Value *v)
{
	Value *t = n->in[1], *w = n->in[2];
	if (ir_attr(n, "ignore_index")) {
		Value *ii = ir_const_scalar(g, t->dt, (double)ir_attr_i(n, "ignore_index", 0));
		t = where(g, op2(g, OP_EQUAL, t, ii), ir_const_scalar(g, t->dt, 0), t);
	}
	if (!v || !t)
		return NULL;
	Node *m = ir_begin(g, OP_GATHER_GRAD, NULL, 2, (Value *[]){v, t});
	ir_set_i(g, m, "axis", 0);
	ir_set_ints(g, m, "shape", w->shape.rank, w->shape.d);
	return fin(g, m);
}

static Value *nll_weight_grad(Graph *g, Node *n, Value *dy)
{
	Value *u = nll_per_position(g, n), *t = n->in[1];
	if (strcmp(reduction(n), "mean") != 0)
		return class_sum(g, n, op2(g, OP_MUL, u, dy));
	Value *live = NULL;
	if (ir_attr(n, "ignore_index")) {
		Value *ii = ir_const_scalar(g, t->dt, (double)ir_attr_i(n, "ignore_index", 0));
		live = cast(g, ir_op1(g, OP_NOT, op2(g, OP_EQUAL, t, ii)), dy->dt);
	}
	Value *v = op2(g, OP_SUB, u, n->out[0]);
	v = live ? op2(g, OP_MUL, v, live) : v;
	return class_sum(g, n, op2(g, OP_MUL, v, op2(g, OP_DIV, dy, n->out[1])));
}

int grad_nll_loss(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *dy = dout[0];
	if (!dy) /* only the weight total is used: it does not depend on logp */
		return 0;
	if (need[0]) {
		Value *in[5] = {dy, n->in[0], n->in[1], n->out[1], n->nin > 2 ? n->in[2] : NULL};
		Node *m = ir_begin(g, OP_NLL_LOSS_GRAD, NULL, n->nin + 2, in);
		copy_attrs(g, m, n);
		din[0] = fin(g, m);
	}
	if (n->nin > 2 && need[2])
		din[2] = nll_weight_grad(g, n, dy);
	return done(n, need, din);
}
