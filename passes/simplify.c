/*
 * simplify.c — algebraic simplification (pass_simplify).
 *
 * One walk in schedule order; a node that computes one of its inputs (or the input of its
 * producer) again leaves the schedule and its uses move to that value:
 *   Identity(x) → x                         Neg(Neg(x)) → x
 *   Transpose(Transpose(x, p), q) → x       when p∘q is the identity; Transpose(x, 0..r-1) → x
 *   Reshape/Flatten(x) → x                  when the shape does not change
 *   Reshape(Reshape|Flatten(x)) → Reshape(x)     (the chain collapses; the inner may die)
 *   Mul(x, 1), Mul(1, x), Div(x, 1) → x     Add(x, 0), Add(0, x), Sub(x, 0) → x
 *   MatMul(Transpose(a), b) → MatMul(a, b, transA = 1)   for a Transpose of the last two dims
 *                                           (and b / transB): the product reads the operand
 *                                           transposed, the Transpose kernel goes
 *   Add(..(SliceGrad(a), SliceGrad(b)).., SliceGrad(c)) → Concat(..)   when the slices (one
 *                                           axis, step 1) tile it: a split's gradient, written
 *                                           once instead of as zero-padded copies summed
 * Every rewrite is exact: the result is bit for bit what the node computed, with one IEEE
 * detail for Add(x, +0), which turns a -0 of x into +0 (the two compare equal; Sub(x, +0) and
 * Add(x, -0) keep it; the other way round, the Concat keeps a -0 that the sum of zero-padded
 * SliceGrads made +0). A constant operand counts when every element equals 1 or 0 and the
 * node's output has x's dtype and shape (no broadcast to a larger shape). A value that is a
 * model output is never replaced (its name is the output's file name). Rewrites feed one
 * another in the same walk (Neg(Neg(Neg(Neg x)))) → x); the nodes they leave unused are for
 * pass_dce. Preconditions: a verified graph.
 */
#include <stdlib.h>

#include "passes/passes.h"
#include "rt_half.h"

static double simp_elem(const Value *c, int64_t k)
{
	switch (c->dt) {
	case DT_F32: return ((const float *)c->data)[k];
	case DT_F64: return ((const double *)c->data)[k];
	case DT_F16: return rt_f16_to_f32(((const uint16_t *)c->data)[k]);
	case DT_BF16: return rt_bf16_to_f32(((const uint16_t *)c->data)[k]);
	case DT_I64: return (double)((const int64_t *)c->data)[k];
	case DT_I32: return ((const int32_t *)c->data)[k];
	case DT_BOOL:
	case DT_U8: return ((const uint8_t *)c->data)[k];
	default: return 0.5; /* matches neither 0 nor 1 */
	}
}

/* c is a constant whose every element equals v (0 matches -0 too) */
static int simp_all(const Value *c, double v)
{
	if (c->kind != V_CONST || !c->data)
		return 0;
	for (int64_t k = 0, n = ir_numel(&c->shape); k < n; k++)
		if (simp_elem(c, k) != v)
			return 0;
	return 1;
}

/* x may stand for n's output: same dtype and shape */
static Value *simp_same(const Node *n, Value *x)
{
	const Value *o = n->out[0];
	return x->dt == o->dt && ir_shape_eq(&x->shape, &o->shape) ? x : NULL;
}

/* binary op with neutral element e on the right (or either side when it commutes) */
static Value *simp_neutral(const Node *n, double e, int commutes)
{
	if (simp_all(n->in[1], e))
		return simp_same(n, n->in[0]);
	if (commutes && simp_all(n->in[0], e))
		return simp_same(n, n->in[1]);
	return NULL;
}

/* x when Transpose(y = Transpose(x, p), q) gives x back, or the perm q alone is the identity */
static Value *simp_transpose(const Node *n)
{
	int cq, cp = 0, id = 1, back = 1;
	const int64_t *q = ir_attr_ints(n, "perm", &cq), *p = NULL;
	const Node *d = n->in[0]->def;
	if (d && d->op == OP_TRANSPOSE)
		p = ir_attr_ints(d, "perm", &cp);
	for (int i = 0; i < cq; i++) {
		id &= q[i] == i;
		back &= p && cp == cq && p[q[i]] == i;
	}
	if (id)
		return simp_same(n, n->in[0]);
	return back ? simp_same(n, d->in[0]) : NULL;
}

/* x is Transpose(y) swapping the last two of rank >= 2 dims: y, else NULL */
static Value *simp_swapped(const Value *x)
{
	const Node *d = x->def;
	int cnt;
	const int64_t *p = d && d->op == OP_TRANSPOSE ? ir_attr_ints(d, "perm", &cnt) : NULL;
	if (!p || cnt < 2)
		return NULL;
	for (int i = 0; i < cnt - 2; i++)
		if (p[i] != i)
			return NULL;
	return p[cnt - 2] == cnt - 1 && p[cnt - 1] == cnt - 2 ? d->in[0] : NULL;
}

/* MatMul(Transpose(a) swapping the last two dims, b) → MatMul(a, b, transA toggled); the same
 * for b. cuBLAS reads the operand transposed; the Transpose dies unless something else reads it. */
static void simp_matmul_transpose(Graph *g, Node *n)
{
	static const char *const flag[2] = {"transA", "transB"};
	for (int i = 0; i < 2; i++) {
		Value *y = simp_swapped(n->in[i]);
		if (y) {
			n->in[i] = y;
			ir_set_i(g, n, flag[i], !ir_attr_i(n, flag[i], 0));
		}
	}
}

/* ---- the gradient of a split: a sum of SliceGrads that tile one axis is their Concat ---- */

typedef struct {
	Value *dy;
	int64_t start, end;
} SgLeaf;

/* the leaves of v, a tree of same-shape Adds over SliceGrads of shape s along one constant axis
 * (step 1); 0 when v is not such a tree or has more than `max` leaves */
static int sg_leaves(const Value *v, const Shape *s, int *axis, SgLeaf *leaf, int n, int max)
{
	const Node *d = v->def;
	if (!d || !ir_shape_eq(&v->shape, s))
		return 0;
	if (d->op == OP_ADD) {
		int a = sg_leaves(d->in[0], s, axis, leaf, n, max);
		return a ? sg_leaves(d->in[1], s, axis, leaf, a, max) : 0;
	}
	int c1, c2, c3, c4;
	const int64_t *ax = ir_attr_ints(d, "axes", &c1), *st = ir_attr_ints(d, "starts", &c2);
	const int64_t *en = ir_attr_ints(d, "ends", &c3), *sp = ir_attr_ints(d, "steps", &c4);
	if (d->op != OP_SLICE_GRAD || n == max || !ax || c1 != 1 || c2 != 1 || c3 != 1 || c4 != 1 || sp[0] != 1)
		return 0;
	int a = (int)(ax[0] < 0 ? ax[0] + s->rank : ax[0]);
	int64_t dim = s->d[a];
	if ((*axis >= 0 && a != *axis) || dim <= 0)
		return 0;
	*axis = a;
	int64_t b = st[0] < 0 ? st[0] + dim : st[0], e = en[0] < 0 ? en[0] + dim : en[0];
	leaf[n] = (SgLeaf){d->in[0], b < 0 ? 0 : b > dim ? dim : b, e < 0 ? 0 : e > dim ? dim : e};
	return n + 1;
}

static int by_start(const void *a, const void *b)
{
	int64_t x = ((const SgLeaf *)a)->start, y = ((const SgLeaf *)b)->start;
	return (x > y) - (x < y);
}

/* Add(...(SliceGrad(a), SliceGrad(b))..., SliceGrad(c)) whose slices tile the axis → Concat(in
 * axis order): n becomes the Concat (the intermediate Adds and SliceGrads die) */
static void simp_concat_slice_grads(Graph *g, Node *n)
{
	SgLeaf leaf[8];
	int axis = -1, cnt = sg_leaves(n->out[0], &n->out[0]->shape, &axis, leaf, 0, 8);
	if (cnt < 2)
		return;
	qsort(leaf, cnt, sizeof *leaf, by_start);
	int64_t at = 0;
	for (int i = 0; i < cnt; i++) {
		if (leaf[i].start != at || leaf[i].end <= at)
			return;
		at = leaf[i].end;
	}
	if (at != n->out[0]->shape.d[axis])
		return;
	n->op = OP_CONCAT;
	n->nin = cnt;
	n->in = ir_alloc(g, cnt * sizeof *n->in);
	for (int i = 0; i < cnt; i++)
		n->in[i] = leaf[i].dy;
	n->nattr = 0;
	ir_set_i(g, n, "axis", axis);
}

/* a Reshape of a Reshape/Flatten (of ...) reads the first input of the chain */
static void simp_reshape_chain(Node *n)
{
	const Node *d;
	while (n->op == OP_RESHAPE && (d = n->in[0]->def) && (d->op == OP_RESHAPE || d->op == OP_FLATTEN))
		n->in[0] = d->in[0];
}

/* the value n's output equals, or NULL */
static Value *simp_node(const Node *n)
{
	const Node *d = n->in[0]->def;
	switch (n->op) {
	case OP_IDENTITY: return simp_same(n, n->in[0]);
	case OP_NEG: return d && d->op == OP_NEG ? simp_same(n, d->in[0]) : NULL;
	case OP_TRANSPOSE: return simp_transpose(n);
	case OP_RESHAPE:
	case OP_FLATTEN: return simp_same(n, n->in[0]);
	case OP_MUL: return simp_neutral(n, 1, 1);
	case OP_DIV: return simp_neutral(n, 1, 0);
	case OP_ADD: return simp_neutral(n, 0, 1);
	case OP_SUB: return simp_neutral(n, 0, 0);
	default: return NULL;
	}
}

static int simp_is_output(const Graph *g, const Value *v)
{
	for (int i = 0; i < g->noutputs; i++)
		if (g->outputs[i] == v)
			return 1;
	return 0;
}

int pass_simplify(Graph *g)
{
	char *keep = malloc(g->nnodes + 1);
	DLCC_ASSERT(keep);
	for (int i = 0; i < g->nnodes; i++) {
		Node *n = g->nodes[i];
		simp_reshape_chain(n);
		if (n->op == OP_MATMUL)
			simp_matmul_transpose(g, n);
		if (n->op == OP_ADD)
			simp_concat_slice_grads(g, n);
		Value *x = n->nout == 1 && !simp_is_output(g, n->out[0]) ? simp_node(n) : NULL;
		keep[i] = x == NULL;
		if (x)
			ir_replace_uses(g, n->out[0], x);
	}
	ir_remove_nodes(g, keep);
	free(keep);
	return 0;
}
