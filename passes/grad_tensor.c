/*
 * grad_tensor.c — gradient rules of the data-path plumbing ops (ops.def "transformer plumbing"
 * block); see passes/grad.h for the rule interface.
 *
 *   Gather      dx = GatherGrad(dy, idx): a scatter-add into zeros of x's shape
 *   Slice       dx = SliceGrad(dy): dy at the sliced positions, zeros elsewhere
 *   Concat      dx_i = Slice of dy along the axis at input i's offset
 *   Trilu       dx = Trilu(dy) with the same upper/k
 *   Where       dx = Where(c, dy, 0), dy_ = Where(c, 0, dy), each summed to its operand's shape
 *   Cast        float to float: dx = Cast(dy) back to x's dtype; a cast to an integer or bool
 *               type has an integer output, which autodiff never differentiates (no gradient)
 *   Pow         y = a^b: da = dy * b * a^(b-1), db = dy * y * log(a) (NaN for a <= 0, as the
 *               formula says; only asked for when the exponent is on a parameter's path)
 *   Reciprocal  dx = -dy * y * y
 *   Max / Min   the gradient goes to the larger (smaller) operand; on a tie each operand gets
 *               half, as torch.maximum/minimum do. A variadic ONNX Max is a chain of binary
 *               ones, so a three-way tie splits 1/4, 1/4, 1/2.
 *   GatherElements   dx = ScatterElements(zeros of x's shape, idx, dy, add): the scatter-add
 *               into zeros, deterministic (codegen/cg_index.c)
 *   ScatterElements  du = GatherElements(dy, idx); dx = dy with the scattered positions cleared
 *               (ScatterElements(dy, idx, zeros, none)) for reduction none, dy itself for add.
 *               Duplicate targets under "none" (ONNX leaves the result undefined; dlcc keeps the
 *               last write) give every duplicate the gradient, as torch.scatter's backward does
 *   CumSum      dx = CumSum(dy) with the same exclusive and the opposite direction
 * Indices and conditions are integer/bool and never need a gradient.
 */
#include <string.h>

#include "passes/grad.h"

static Value *fin(Graph *g, Node *n) { return ir_finish(g, n) < 0 ? NULL : n->out[0]; }

static Value *op2(Graph *g, Op op, Value *a, Value *b) { return a && b ? ir_op2(g, op, a, b) : NULL; }

static Value *where(Graph *g, Value *c, Value *x, Value *y)
{
	return c && x && y ? ir_op(g, OP_WHERE, 3, (Value *[]){c, x, y}) : NULL;
}

static int done(Node *n, const char *need, Value **din)
{
	for (int j = 0; j < n->nin; j++)
		if (need[j] && !din[j])
			return -1;
	return 0;
}

/* op(x) (GatherGrad: op(x, n's indices)) with n's integer attributes copied, plus `shape` =
 * n's input shape when with_shape */
static Value *like(Graph *g, Node *n, Op op, Value *x, int with_shape)
{
	if (!x)
		return NULL;
	Value *in[2] = {x, op == OP_GATHER_GRAD ? n->in[1] : NULL};
	Node *m = ir_begin(g, op, NULL, in[1] ? 2 : 1, in);
	for (int i = 0; i < n->nattr; i++) {
		const Attr *a = &n->attr[i];
		if (a->kind == A_INTS)
			ir_set_ints(g, m, a->name, a->n, a->ints);
		else if (a->kind == A_INT)
			ir_set_i(g, m, a->name, a->i);
	}
	if (with_shape)
		ir_set_ints(g, m, "shape", n->in[0]->shape.rank, n->in[0]->shape.d);
	return fin(g, m);
}

int grad_gather(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	if (need[0])
		din[0] = like(g, n, OP_GATHER_GRAD, dout[0], 1);
	return done(n, need, din);
}

int grad_slice(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = like(g, n, OP_SLICE_GRAD, dout[0], 1);
	return done(n, need, din);
}

int grad_trilu(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = like(g, n, OP_TRILU, dout[0], 0);
	return done(n, need, din);
}

static Value *slice1(Graph *g, Value *x, int64_t axis, int64_t start, int64_t end)
{
	if (!x)
		return NULL;
	Node *m = ir_begin(g, OP_SLICE, NULL, 1, &x);
	int64_t one = 1;
	ir_set_ints(g, m, "axes", 1, &axis);
	ir_set_ints(g, m, "starts", 1, &start);
	ir_set_ints(g, m, "ends", 1, &end);
	ir_set_ints(g, m, "steps", 1, &one);
	return fin(g, m);
}

int grad_concat(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	int64_t axis = ir_attr_i(n, "axis", 0), at = 0;
	for (int i = 0; i < n->nin; i++) {
		int64_t len = n->in[i]->shape.d[axis];
		if (need[i])
			din[i] = slice1(g, dout[0], axis, at, at + len);
		at += len;
	}
	return done(n, need, din);
}

int grad_where(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *c = n->in[0], *dy = dout[0], *zero = ir_const_scalar(g, dy->dt, 0.0);
	if (need[1])
		din[1] = grad_sum_to(g, where(g, c, dy, zero), &n->in[1]->shape);
	if (need[2])
		din[2] = grad_sum_to(g, where(g, c, zero, dy), &n->in[2]->shape);
	return done(n, need, din);
}

int grad_cast(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *dy = dout[0];
	if (dy->dt == n->in[0]->dt) {
		din[0] = dy;
	} else {
		Node *m = ir_begin(g, OP_CAST, NULL, 1, &dy);
		ir_set_s(g, m, "to", ir_dt_name(n->in[0]->dt));
		din[0] = fin(g, m);
	}
	return done(n, need, din);
}

int grad_pow(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *a = n->in[0], *b = n->in[1], *dy = dout[0];
	if (need[0]) {
		Value *bm1 = op2(g, OP_SUB, b, ir_const_scalar(g, b->dt, 1.0));
		Value *d = op2(g, OP_MUL, dy, op2(g, OP_MUL, b, op2(g, OP_POW, a, bm1)));
		din[0] = grad_sum_to(g, d, &a->shape);
	}
	if (need[1]) {
		Value *d = op2(g, OP_MUL, op2(g, OP_MUL, dy, n->out[0]), ir_op1(g, OP_LOG, a));
		din[1] = grad_sum_to(g, d, &b->shape);
	}
	return done(n, need, din);
}

int grad_reciprocal(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *y = n->out[0];
	din[0] = ir_op1(g, OP_NEG, op2(g, OP_MUL, dout[0], op2(g, OP_MUL, y, y)));
	return done(n, need, din);
}

/* the share of dy that operand `mine` gets: all where it wins (win = Greater for Max, Less for
 * Min), half on a tie */
static Value *extreme_share(Graph *g, Op win, Value *mine, Value *other, Value *dy)
{
	Value *zero = ir_const_scalar(g, dy->dt, 0.0), *half = ir_const_scalar(g, dy->dt, 0.5);
	Value *tie = where(g, op2(g, OP_EQUAL, mine, other), op2(g, OP_MUL, dy, half), zero);
	return where(g, op2(g, win, mine, other), dy, tie);
}

static int extreme(Graph *g, Node *n, Op win, Value *const *dout, const char *need, Value **din)
{
	for (int j = 0; j < 2; j++)
		if (need[j])
			din[j] = grad_sum_to(g, extreme_share(g, win, n->in[j], n->in[1 - j], dout[0]),
					     &n->in[j]->shape);
	return done(n, need, din);
}

int grad_max(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	return extreme(g, n, OP_GREATER, dout, need, din);
}

int grad_min(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	return extreme(g, n, OP_LESS, dout, need, din);
}

/* ---- element indexing and scans ---- */

/* zeros of shape s (Expand of a scalar 0) */
static Value *zeros(Graph *g, DType dt, const Shape *s)
{
	Value *z = ir_const_scalar(g, dt, 0.0);
	Node *m = ir_begin(g, OP_EXPAND, NULL, 1, &z);
	ir_set_ints(g, m, "shape", s->rank, s->d);
	return fin(g, m);
}

static Value *index_op(Graph *g, Op op, int nin, Value **in, int64_t axis, const char *reduction)
{
	for (int i = 0; i < nin; i++)
		if (!in[i])
			return NULL;
	Node *m = ir_begin(g, op, NULL, nin, in);
	ir_set_i(g, m, "axis", axis);
	if (reduction)
		ir_set_s(g, m, "reduction", reduction);
	return fin(g, m);
}

int grad_gather_elements(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *dy = dout[0], *x = n->in[0];
	if (need[0])
		din[0] = index_op(g, OP_SCATTER_ELEMENTS, 3, (Value *[]){zeros(g, dy->dt, &x->shape), n->in[1], dy},
				  ir_attr_i(n, "axis", 0), "add");
	return done(n, need, din);
}

int grad_scatter_elements(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *dy = dout[0], *ix = n->in[1];
	int64_t axis = ir_attr_i(n, "axis", 0);
	const Attr *r = ir_attr(n, "reduction");
	if (need[0] && r && !strcmp(r->s, "add"))
		din[0] = dy;
	else if (need[0])
		din[0] = index_op(g, OP_SCATTER_ELEMENTS, 3, (Value *[]){dy, ix, zeros(g, dy->dt, &ix->shape)}, axis,
				  "none");
	if (need[2])
		din[2] = index_op(g, OP_GATHER_ELEMENTS, 2, (Value *[]){dy, ix}, axis, NULL);
	return done(n, need, din);
}

int grad_cum_sum(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *dy = dout[0];
	Node *m = ir_begin(g, OP_CUM_SUM, NULL, 1, &dy);
	ir_set_i(g, m, "axis", ir_attr_i(n, "axis", 0));
	ir_set_i(g, m, "exclusive", ir_attr_i(n, "exclusive", 0));
	ir_set_i(g, m, "reverse", !ir_attr_i(n, "reverse", 0));
	din[0] = fin(g, m);
	return done(n, need, din);
}
