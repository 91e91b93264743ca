/*
 * shape.c — shape rules, one per row kind of ops.def: given a node's inputs and attributes,
 * set the shape and dtype of its outputs, or report why the node is ill-formed.
 *
 * Attributes are in IR normal form (the frontend normalises ONNX): axes are non-negative,
 * Reduce* always carry `axes` (empty = all) and `keepdims`, Reshape/Expand carry the output
 * shape `shape` in IR dims, Transpose carries `perm`. Batch dims (-k) take part in broadcasting
 * like any other extent: N broadcasts with 1 and with N only.
 */
#include <string.h>

#include "ir/ir.h"

static const char *nm(const Node *n) { return n->name ? n->name : "?"; }

static int fail_shapes(Graph *g, Node *n, const char *what, const Shape *a, const Shape *b)
{
	char sa[128], sb[128];
	ir_shape_str(a, sa, sizeof sa);
	ir_shape_str(b, sb, sizeof sb);
	return ir_error(g, "node '%s' (%s): %s: %s and %s", nm(n), ir_ops[n->op].name, what, sa, sb);
}

static void set_out(Node *n, int i, DType dt, Shape s)
{
	n->out[i]->dt = dt;
	n->out[i]->shape = s;
}

/* the product of two extents; -1 (error) when both carry the batch */
static int dim_mul(int64_t a, int64_t b, int64_t *out)
{
	if (a < 0 && b < 0)
		return -1;
	*out = a < 0 ? -(-a * b) : b < 0 ? -(a * -b) : a * b;
	return 0;
}

int ir_broadcast(Graph *g, const Shape *a, const Shape *b, Shape *out)
{
	int r = a->rank > b->rank ? a->rank : b->rank;
	out->rank = r;
	for (int i = 0; i < r; i++) {
		int ia = i - (r - a->rank), ib = i - (r - b->rank);
		int64_t da = ia >= 0 ? a->d[ia] : 1, db = ib >= 0 ? b->d[ib] : 1;
		if (da == db || db == 1)
			out->d[i] = da;
		else if (da == 1)
			out->d[i] = db;
		else
			return -1;
	}
	return 0;
}

int shape_broadcast(Graph *g, Node *n)
{
	Shape s;
	if (n->in[0]->dt != n->in[1]->dt)
		return ir_error(g, "node '%s' (%s): operand dtypes differ: %s and %s", nm(n),
				ir_ops[n->op].name, ir_dt_name(n->in[0]->dt), ir_dt_name(n->in[1]->dt));
	if (ir_broadcast(g, &n->in[0]->shape, &n->in[1]->shape, &s) < 0)
		return fail_shapes(g, n, "shapes do not broadcast", &n->in[0]->shape, &n->in[1]->shape);
	set_out(n, 0, n->in[0]->dt, s);
	return 0;
}

int shape_same(Graph *g, Node *n)
{
	set_out(n, 0, n->in[0]->dt, n->in[0]->shape);
	return 0;
}

int shape_first(Graph *g, Node *n)
{
	for (int i = 0; i < n->nout; i++)
		set_out(n, i, n->in[0]->dt, n->in[0]->shape);
	return 0;
}

/* ReluMask(y): u8, y's shape with the last axis in bytes of 128-bit groups (ops.def) */
int shape_relu_mask(Graph *g, Node *n)
{
	Shape s = n->in[0]->shape;
	if (!ir_dt_is_float(n->in[0]->dt) || s.rank < 1 || s.d[s.rank - 1] < 1)
		return ir_error(g, "node '%s' (ReluMask): needs a float operand with a constant last axis", nm(n));
	s.d[s.rank - 1] = ir_relu_mask_bytes(s.d[s.rank - 1]);
	set_out(n, 0, DT_U8, s);
	return 0;
}

/* ReluMaskGrad(dy, m): dy's type and shape; m the ReluMask of a value of dy's shape */
int shape_relu_mask_grad(Graph *g, Node *n)
{
	Shape want = n->in[0]->shape;
	if (want.rank < 1 || want.d[want.rank - 1] < 1)
		return ir_error(g, "node '%s' (ReluMaskGrad): needs a constant last axis", nm(n));
	want.d[want.rank - 1] = ir_relu_mask_bytes(want.d[want.rank - 1]);
	if (n->in[1]->dt != DT_U8 || !ir_shape_eq(&n->in[1]->shape, &want))
		return fail_shapes(g, n, "the mask must be the ReluMask of a value of the gradient's shape",
				   &n->in[0]->shape, &n->in[1]->shape);
	set_out(n, 0, n->in[0]->dt, n->in[0]->shape);
	return 0;
}

/* AllFinite: float operands, an f32 scalar */
int shape_all_finite(Graph *g, Node *n)
{
	for (int i = 0; i < n->nin; i++)
		if (!ir_dt_is_float(n->in[i]->dt))
			return ir_error(g, "node '%s' (%s): operand %d is %s, not a float", nm(n), ir_ops[n->op].name, i,
					ir_dt_name(n->in[i]->dt));
	set_out(n, 0, DT_F32, ir_shape0());
	return 0;
}

int shape_second(Graph *g, Node *n)
{
	set_out(n, 0, n->in[1]->dt, n->in[1]->shape);
	return 0;
}

int shape_scalar(Graph *g, Node *n)
{
	DType dt = ir_dt_is_float(n->in[0]->dt) ? n->in[0]->dt : DT_F32;
	set_out(n, 0, dt, ir_shape0());
	if (n->op == OP_SOFTMAX_CROSS_ENTROPY) {
		const Shape *z = &n->in[0]->shape, *t = &n->in[1]->shape;
		Shape zt = *z;
		zt.rank = z->rank - 1;
		if (z->rank < 1 || !ir_shape_eq(&zt, t))
			return fail_shapes(g, n, "labels must have the logits' shape without the class axis", z, t);
		if (n->in[1]->dt != DT_I64 && n->in[1]->dt != DT_I32)
			return ir_error(g, "node '%s': labels must be integer class ids, not %s", nm(n),
					ir_dt_name(n->in[1]->dt));
	}
	return 0;
}

int shape_gemm(Graph *g, Node *n)
{
	const Shape *a = &n->in[0]->shape, *b = &n->in[1]->shape;
	if (a->rank != 2 || b->rank != 2)
		return fail_shapes(g, n, "Gemm needs 2-D operands", a, b);
	int ta = ir_attr_i(n, "transA", 0), tb = ir_attr_i(n, "transB", 0);
	int64_t m = a->d[ta], ka = a->d[1 - ta], kb = b->d[tb], nn = b->d[1 - tb];
	if (ka != kb)
		return fail_shapes(g, n, "inner dimensions differ", a, b);
	Shape out = ir_shape(2, (int64_t[]){m, nn}), bc;
	if (n->nin == 3 && (ir_broadcast(g, &n->in[2]->shape, &out, &bc) < 0 || !ir_shape_eq(&bc, &out)))
		return fail_shapes(g, n, "C does not broadcast to the result", &n->in[2]->shape, &out);
	set_out(n, 0, ir_dt_acc(n->in[0]->dt), out);
	return 0;
}

int shape_matmul(Graph *g, Node *n)
{
	Shape a = n->in[0]->shape, b = n->in[1]->shape;
	if (a.rank < 1 || b.rank < 1)
		return fail_shapes(g, n, "MatMul needs operands of rank >= 1", &a, &b);
	int64_t ta = ir_attr_i(n, "transA", 0), tb = ir_attr_i(n, "transB", 0);
	if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1) || (ta && a.rank < 2) || (tb && b.rank < 2))
		return fail_shapes(g, n, "transA/transB are 0 or 1 and need an operand of rank >= 2", &a, &b);
	if (ta)
		ir_shape_swap_last2(&a);
	if (tb)
		ir_shape_swap_last2(&b);
	int va = a.rank == 1, vb = b.rank == 1;
	if (va)
		a = ir_shape(2, (int64_t[]){1, a.d[0]});
	if (vb)
		b = ir_shape(2, (int64_t[]){b.d[0], 1});
	if (a.d[a.rank - 1] != b.d[b.rank - 2])
		return fail_shapes(g, n, "inner dimensions differ", &n->in[0]->shape, &n->in[1]->shape);
	Shape ba = a, bb = b, out;
	ba.rank -= 2;
	bb.rank -= 2;
	if (ir_broadcast(g, &ba, &bb, &out) < 0)
		return fail_shapes(g, n, "batch dimensions do not broadcast", &n->in[0]->shape,
				   &n->in[1]->shape);
	if (!va)
		out.d[out.rank++] = a.d[a.rank - 2];
	if (!vb)
		out.d[out.rank++] = b.d[b.rank - 1];
	set_out(n, 0, ir_dt_acc(n->in[0]->dt), out);
	return 0;
}

static int same_numel(const Shape *a, const Shape *b)
{
	return ir_numel_at(a, 1) == ir_numel_at(b, 1) && ir_numel_at(a, 2) == ir_numel_at(b, 2);
}

int shape_reshape(Graph *g, Node *n)
{
	int cnt;
	const int64_t *d = ir_attr_ints(n, "shape", &cnt);
	if (!d)
		return ir_error(g, "node '%s' (Reshape): no target shape", nm(n));
	Shape s = ir_shape(cnt, d);
	if (!same_numel(&s, &n->in[0]->shape))
		return fail_shapes(g, n, "element counts differ", &n->in[0]->shape, &s);
	set_out(n, 0, n->in[0]->dt, s);
	return 0;
}

int shape_flatten(Graph *g, Node *n)
{
	const Shape *x = &n->in[0]->shape;
	int axis = ir_attr_i(n, "axis", 1);
	int64_t lo = 1, hi = 1;
	if (axis < 0 || axis > x->rank)
		return ir_error(g, "node '%s' (Flatten): axis %d out of range for rank %d", nm(n), axis, x->rank);
	for (int i = 0; i < x->rank; i++)
		if (dim_mul(i < axis ? lo : hi, x->d[i], i < axis ? &lo : &hi) < 0)
			return ir_error(g, "node '%s' (Flatten): two batch dimensions in one group", nm(n));
	set_out(n, 0, n->in[0]->dt, ir_shape(2, (int64_t[]){lo, hi}));
	return 0;
}

int shape_transpose(Graph *g, Node *n)
{
	const Shape *x = &n->in[0]->shape;
	int cnt;
	const int64_t *p = ir_attr_ints(n, "perm", &cnt);
	if (!p || cnt != x->rank)
		return ir_error(g, "node '%s' (Transpose): perm must list %d axes", nm(n), x->rank);
	Shape s = {x->rank, {0}};
	int seen = 0;
	for (int i = 0; i < cnt; i++) {
		if (p[i] < 0 || p[i] >= x->rank || (seen & (1 << p[i])))
			return ir_error(g, "node '%s' (Transpose): perm is not a permutation", nm(n));
		seen |= 1 << p[i];
		s.d[i] = x->d[p[i]];
	}
	set_out(n, 0, n->in[0]->dt, s);
	return 0;
}

int shape_reduce(Graph *g, Node *n)
{
	const Shape *x = &n->in[0]->shape;
	int cnt = 0, all, mask = 0;
	const int64_t *ax = ir_attr_ints(n, "axes", &cnt);
	int keep = ir_attr_i(n, "keepdims", 1);
	all = !ax || cnt == 0;
	for (int i = 0; i < cnt; i++) {
		if (ax[i] < 0 || ax[i] >= x->rank)
			return ir_error(g, "node '%s' (%s): axis %lld out of range for rank %d", nm(n),
					ir_ops[n->op].name, (long long)ax[i], x->rank);
		mask |= 1 << ax[i];
	}
	Shape s = {0, {0}};
	for (int i = 0; i < x->rank; i++) {
		int red = all || (mask & (1 << i));
		if (!red)
			s.d[s.rank++] = x->d[i];
		else if (keep)
			s.d[s.rank++] = 1;
	}
	set_out(n, 0, n->in[0]->dt, s);
	return 0;
}

int shape_expand(Graph *g, Node *n)
{
	int cnt;
	const int64_t *d = ir_attr_ints(n, "shape", &cnt);
	if (!d)
		return ir_error(g, "node '%s' (Expand): no target shape", nm(n));
	Shape t = ir_shape(cnt, d), s;
	if (ir_broadcast(g, &n->in[0]->shape, &t, &s) < 0)
		return fail_shapes(g, n, "shapes do not broadcast", &n->in[0]->shape, &t);
	set_out(n, 0, n->in[0]->dt, s);
	return 0;
}
