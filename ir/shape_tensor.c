/*
 * shape_tensor.c — shape rules of the data-path plumbing ops (the "transformer plumbing" block
 * of ops.def): Gather and its gradient, Slice and its gradient, Concat, Where, Cast, the
 * comparisons and the boolean ops.
 *
 * Attributes are in IR normal form (frontend/onnx_ops.c and onnx_tensor_ops.c write them):
 * non-negative axes; Slice lists one (axis, start, end, step) per sliced axis with start/end
 * already clamped by the ONNX rules, so the extent is a plain ceil((end - start) / step); the
 * gradient ops carry their result's shape as IR dims in `shape` (-k = k times the batch). A
 * sliced or gathered axis must have a constant extent: the batch N is never cut.
 */
#include <string.h>

#include "ir/ir.h"

static const char *nm(const Node *n) { return n->name ? n->name : "?"; }

static int bad(Graph *g, const Node *n, const char *what)
{
	return ir_error(g, "node '%s' (%s): %s", nm(n), ir_ops[n->op].name, what);
}

static void set_out(Node *n, DType dt, Shape s)
{
	n->out[0]->dt = dt;
	n->out[0]->shape = s;
}

static int axis_attr(Graph *g, const Node *n, int rank, int *axis)
{
	*axis = (int)ir_attr_i(n, "axis", 0);
	if (*axis < 0 || *axis >= rank)
		return bad(g, n, "axis out of range");
	return 0;
}

static int is_index(DType dt) { return dt == DT_I64 || dt == DT_I32; }

/* x[:axis] + idx.shape + x[axis+1:] */
int shape_gather(Graph *g, Node *n)
{
	const Shape *x = &n->in[0]->shape, *ix = &n->in[1]->shape;
	int axis;
	if (axis_attr(g, n, x->rank, &axis) < 0)
		return -1;
	if (!is_index(n->in[1]->dt))
		return bad(g, n, "indices must be int64 or int32");
	if (x->d[axis] < 0)
		return bad(g, n, "cannot gather along the batch dimension");
	if (x->rank - 1 + ix->rank > IR_MAX_RANK)
		return bad(g, n, "result rank is too large");
	Shape s = {0, {0}};
	for (int i = 0; i < x->rank; i++) {
		if (i != axis)
			s.d[s.rank++] = x->d[i];
		for (int j = 0; i == axis && j < ix->rank; j++)
			s.d[s.rank++] = ix->d[j];
	}
	set_out(n, n->in[0]->dt, s);
	return 0;
}

/* the result shape from the `shape` attribute; dtype of input 0 */
static int shape_from_attr(Graph *g, Node *n, Shape *s)
{
	int cnt;
	const int64_t *d = ir_attr_ints(n, "shape", &cnt);
	if (!d || cnt > IR_MAX_RANK)
		return bad(g, n, "no result shape");
	*s = ir_shape(cnt, d);
	return 0;
}

int shape_gather_grad(Graph *g, Node *n)
{
	Shape s;
	int axis;
	if (shape_from_attr(g, n, &s) < 0 || axis_attr(g, n, s.rank, &axis) < 0)
		return -1;
	if (!is_index(n->in[1]->dt))
		return bad(g, n, "indices must be int64 or int32");
	if (n->in[0]->shape.rank != s.rank - 1 + n->in[1]->shape.rank)
		return bad(g, n, "dy rank does not match the data and indices");
	set_out(n, n->in[0]->dt, s);
	return 0;
}

/* the number of positions start, start+step, ... before end */
int64_t ir_slice_count(int64_t start, int64_t end, int64_t step)
{
	if (step > 0)
		return end > start ? (end - start + step - 1) / step : 0;
	return start > end ? (start - end - step - 1) / -step : 0;
}

/* the Slice attribute lists, all of length cnt; -1 when malformed */
static int slice_attrs(const Node *n, const int64_t **ax, const int64_t **st, const int64_t **en,
		       const int64_t **sp)
{
	int ca, cs, ce, cp;
	*ax = ir_attr_ints(n, "axes", &ca);
	*st = ir_attr_ints(n, "starts", &cs);
	*en = ir_attr_ints(n, "ends", &ce);
	*sp = ir_attr_ints(n, "steps", &cp);
	if (!*ax || !*st || !*en || !*sp || ca != cs || ca != ce || ca != cp)
		return -1;
	return ca;
}

/* x's shape cut by the slice attributes of n */
static int sliced_shape(Graph *g, Node *n, const Shape *x, Shape *out)
{
	const int64_t *ax, *st, *en, *sp;
	int cnt = slice_attrs(n, &ax, &st, &en, &sp);
	if (cnt < 0)
		return bad(g, n, "axes/starts/ends/steps must be lists of one length");
	*out = *x;
	for (int i = 0; i < cnt; i++) {
		if (ax[i] < 0 || ax[i] >= x->rank || sp[i] == 0)
			return bad(g, n, "slice axis out of range or step 0");
		if (x->d[ax[i]] < 0)
			return bad(g, n, "cannot slice the batch dimension");
		out->d[ax[i]] = ir_slice_count(st[i], en[i], sp[i]);
	}
	return 0;
}

int shape_slice(Graph *g, Node *n)
{
	Shape s;
	if (sliced_shape(g, n, &n->in[0]->shape, &s) < 0)
		return -1;
	set_out(n, n->in[0]->dt, s);
	return 0;
}

int shape_slice_grad(Graph *g, Node *n)
{
	Shape s, cut;
	if (shape_from_attr(g, n, &s) < 0 || sliced_shape(g, n, &s, &cut) < 0)
		return -1;
	if (!ir_shape_eq(&cut, &n->in[0]->shape))
		return bad(g, n, "dy does not have the sliced shape");
	set_out(n, n->in[0]->dt, s);
	return 0;
}

int shape_concat(Graph *g, Node *n)
{
	Shape s = n->in[0]->shape;
	int axis;
	if (axis_attr(g, n, s.rank, &axis) < 0)
		return -1;
	for (int i = 1; i < n->nin; i++) {
		const Shape *t = &n->in[i]->shape;
		if (n->in[i]->dt != n->in[0]->dt || t->rank != s.rank)
			return bad(g, n, "inputs differ in dtype or rank");
		for (int k = 0; k < s.rank; k++)
			if (k != axis && t->d[k] != s.d[k])
				return bad(g, n, "input shapes differ outside the axis");
		if ((s.d[axis] < 0) != (t->d[axis] < 0))
			return bad(g, n, "cannot concatenate a batch extent with a constant one");
		s.d[axis] += t->d[axis];
	}
	set_out(n, n->in[0]->dt, s);
	return 0;
}

int shape_where(Graph *g, Node *n)
{
	Shape s, t;
	if (n->in[0]->dt != DT_BOOL)
		return bad(g, n, "the condition must be bool");
	if (n->in[1]->dt != n->in[2]->dt)
		return bad(g, n, "the two branches differ in dtype");
	if (ir_broadcast(g, &n->in[0]->shape, &n->in[1]->shape, &t) < 0 ||
	    ir_broadcast(g, &t, &n->in[2]->shape, &s) < 0)
		return bad(g, n, "shapes do not broadcast");
	set_out(n, n->in[1]->dt, s);
	return 0;
}

int shape_cast(Graph *g, Node *n)
{
	const Attr *a = ir_attr(n, "to");
	int dt = a && a->kind == A_STRING ? ir_dt_lookup(a->s) : -1;
	if (dt < 0)
		return bad(g, n, "attribute `to` must name a dtype (\"f32\", \"i64\", \"bool\", ...)");
	set_out(n, (DType)dt, n->in[0]->shape);
	return 0;
}

/* broadcasting comparison: operands of one dtype, a bool result */
int shape_compare(Graph *g, Node *n)
{
	if (shape_broadcast(g, n) < 0)
		return -1;
	n->out[0]->dt = DT_BOOL;
	return 0;
}

/* Not / And / Or: bool operands, broadcasting, bool result */
int shape_logic(Graph *g, Node *n)
{
	for (int i = 0; i < n->nin; i++)
		if (n->in[i]->dt != DT_BOOL)
			return bad(g, n, "operands must be bool");
	return n->nin == 1 ? shape_same(g, n) : shape_broadcast(g, n);
}
