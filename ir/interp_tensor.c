/*
 * interp_tensor.c — the reference interpreter's data-path plumbing ops: Gather/GatherGrad,
 * Slice/SliceGrad, Concat, Trilu, Where, Cast, the comparisons, Not/And/Or, Pow, Reciprocal,
 * Max/Min (ops.def, "transformer plumbing" block).
 *
 * Elementwise ops walk the output's multi-index and read each operand through numpy
 * broadcasting, like interp.c. Integer and bool tensors are held as int64 and compared exactly
 * (never through double); float results are rounded by interp_rd() in f32 mode. Index ops move
 * elements without arithmetic, except the scatter-add of GatherGrad, which accumulates in the
 * order of the indices (the order the generated kernel uses, so f32 results agree bit for bit).
 * An index outside [-A, A) is an error naming the node. Preconditions: shape rules have run,
 * attributes are in IR normal form (ir/shape_tensor.c).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/interp_impl.h"
#include "ir/interp_ops.h"

static void unravel(int64_t flat, int rank, const int64_t *d, int64_t *idx)
{
	for (int j = rank - 1; j >= 0; j--) {
		idx[j] = d[j] ? flat % d[j] : 0;
		flat = d[j] ? flat / d[j] : 0;
	}
}

/* offset of the broadcast operand t read at output index idx (rank orank) */
static int64_t bc_off(const Tensor *t, const int64_t *idx, int orank)
{
	int64_t off = 0, stride = 1;
	for (int j = t->rank - 1; j >= 0; j--) {
		if (t->d[j] != 1)
			off += idx[j + orank - t->rank] * stride;
		stride *= t->d[j];
	}
	return off;
}

/* y[k] = x[s] whatever either holds */
static void move(Tensor *y, int64_t k, const Tensor *x, int64_t s)
{
	if (y->isint)
		y->i[k] = x->isint ? x->i[s] : (int64_t)x->f[s];
	else
		y->f[k] = x->isint ? (double)x->i[s] : x->f[s];
}

/* ---- elementwise ---- */

static int compare_i(Op op, int64_t a, int64_t b)
{
	switch (op) {
	case OP_EQUAL: return a == b;
	case OP_LESS: return a < b;
	case OP_GREATER: return a > b;
	case OP_LESS_OR_EQUAL: return a <= b;
	default: return a >= b;
	}
}

static int compare_f(Op op, double a, double b)
{
	switch (op) {
	case OP_EQUAL: return a == b;
	case OP_LESS: return a < b;
	case OP_GREATER: return a > b;
	case OP_LESS_OR_EQUAL: return a <= b;
	default: return a >= b;
	}
}

static int64_t cast_int(DType to, int64_t v)
{
	switch (to) {
	case DT_BOOL: return v != 0;
	case DT_U8: return (uint8_t)v;
	case DT_I32: return (int32_t)v;
	default: return v;
	}
}

static void cast_one(Tensor *y, int64_t k, const Tensor *x, int64_t s)
{
	DType to = y->v->dt;
	if (!y->isint)
		y->f[k] = x->isint ? (double)x->i[s] : x->f[s];
	else if (to == DT_BOOL)
		y->i[k] = x->isint ? x->i[s] != 0 : x->f[s] != 0;
	else
		y->i[k] = cast_int(to, x->isint ? x->i[s] : (int64_t)x->f[s]);
}

/* a binary op with integer operands */
static int64_t int_binary(Op op, int64_t a, int64_t b)
{
	switch (op) {
	case OP_AND: return a && b;
	case OP_OR: return a || b;
	case OP_XOR: return !a != !b;
	case OP_MAX: return a >= b ? a : b;
	case OP_MIN: return a <= b ? a : b;
	case OP_POW: {
		int64_t r = 1;
		for (int64_t e = 0; e < b; e++)
			r *= a;
		return b < 0 ? (a == 1 ? 1 : 0) : r;
	}
	default: return compare_i(op, a, b);
	}
}

static double float_binary(const Interp *it, Op op, double a, double b)
{
	switch (op) {
	case OP_MAX: return a >= b ? a : b;
	case OP_MIN: return a <= b ? a : b;
	case OP_POW: return interp_rd(it, pow(a, b));
	default: DLCC_ASSERT(!"not a float binary op");
	}
	return 0;
}

/* element k of the output of n with operand offsets o[] */
static int elem(Interp *it, const Node *n, Tensor *y, int64_t k, Tensor **x, const int64_t *o)
{
	Op op = n->op;
	if (op == OP_WHERE)
		move(y, k, x[x[0]->i[o[0]] ? 1 : 2], o[x[0]->i[o[0]] ? 1 : 2]);
	else if (op == OP_CAST)
		cast_one(y, k, x[0], o[0]);
	else if (op == OP_NOT)
		y->i[k] = !x[0]->i[o[0]];
	else if (op == OP_RECIPROCAL) {
		if (x[0]->isint)
			return interp_fail(it, n, "needs a float operand");
		y->f[k] = interp_rd(it, 1 / x[0]->f[o[0]]);
	} else if (x[0]->isint)
		y->i[k] = int_binary(op, x[0]->i[o[0]], x[1]->i[o[1]]);
	else if (y->isint) /* a comparison of floats */
		y->i[k] = compare_f(op, x[0]->f[o[0]], x[1]->f[o[1]]);
	else
		y->f[k] = float_binary(it, op, x[0]->f[o[0]], x[1]->f[o[1]]);
	return 0;
}

static int op_map(Interp *it, const Node *n)
{
	Tensor *y = interp_tout(it, n, 0), *x[3];
	int64_t idx[IR_MAX_RANK], o[3] = {0};
	for (int i = 0; i < n->nin; i++)
		x[i] = interp_tin(it, n, i);
	for (int64_t k = 0; k < y->n; k++) {
		unravel(k, y->rank, y->d, idx);
		for (int i = 0; i < n->nin; i++)
			o[i] = bc_off(x[i], idx, y->rank);
		if (elem(it, n, y, k, x, o) < 0)
			return -1;
	}
	return 0;
}

/* ---- index ops ---- */

/* t as [outer, t->d[axis], inner] */
static void around(const Tensor *t, int axis, int64_t *outer, int64_t *inner)
{
	*outer = *inner = 1;
	for (int j = 0; j < t->rank; j++) {
		if (j < axis)
			*outer *= t->d[j];
		if (j > axis)
			*inner *= t->d[j];
	}
}

/* index j of ix as a position in [0, A) */
static int index_at(Interp *it, const Node *n, const Tensor *ix, int64_t j, int64_t A, int64_t *k)
{
	*k = ix->i[j] < 0 ? ix->i[j] + A : ix->i[j];
	if (*k < 0 || *k >= A)
		return interp_fail(it, n, "index %lld is out of range for an axis of %lld", (long long)ix->i[j], (long long)A);
	return 0;
}

static int op_gather(Interp *it, const Node *n)
{
	Tensor *x = interp_tin(it, n, 0), *ix = interp_tin(it, n, 1), *y = interp_tout(it, n, 0);
	int axis = (int)ir_attr_i(n, "axis", 0);
	int64_t outer, inner, A = x->d[axis], k;
	around(x, axis, &outer, &inner);
	for (int64_t o = 0; o < outer; o++)
		for (int64_t j = 0; j < ix->n; j++) {
			if (index_at(it, n, ix, j, A, &k) < 0)
				return -1;
			for (int64_t q = 0; q < inner; q++)
				move(y, (o * ix->n + j) * inner + q, x, (o * A + k) * inner + q);
		}
	return 0;
}

/* dx = 0; dx[o, idx[j], q] += dy[o, j, q] in the order of j */
static int op_gather_grad(Interp *it, const Node *n)
{
	Tensor *dy = interp_tin(it, n, 0), *ix = interp_tin(it, n, 1), *dx = interp_tout(it, n, 0);
	int axis = (int)ir_attr_i(n, "axis", 0);
	int64_t outer, inner, A = dx->d[axis], k;
	if (dy->isint)
		return interp_fail(it, n, "needs a float gradient");
	around(dx, axis, &outer, &inner);
	memset(dx->f, 0, (size_t)dx->n * sizeof *dx->f);
	for (int64_t o = 0; o < outer; o++)
		for (int64_t j = 0; j < ix->n; j++) {
			if (index_at(it, n, ix, j, A, &k) < 0)
				return -1;
			for (int64_t q = 0; q < inner; q++) {
				double *d = &dx->f[(o * A + k) * inner + q];
				*d = interp_rd(it, *d + dy->f[(o * ix->n + j) * inner + q]);
			}
		}
	return 0;
}

/* per dim of the full tensor: start and step of the slice (0 and 1 where not sliced) */
static void slice_plan(const Node *n, int rank, int64_t *start, int64_t *step)
{
	int cnt;
	const int64_t *ax = ir_attr_ints(n, "axes", &cnt), *st = ir_attr_ints(n, "starts", &cnt);
	const int64_t *sp = ir_attr_ints(n, "steps", &cnt);
	for (int j = 0; j < rank; j++)
		start[j] = 0, step[j] = 1;
	for (int i = 0; i < cnt; i++)
		start[ax[i]] = st[i], step[ax[i]] = sp[i];
}

/* offset in the full tensor f of the sliced element at index idx */
static int64_t full_off(const Tensor *f, const int64_t *idx, const int64_t *start, const int64_t *step)
{
	int64_t off = 0;
	for (int j = 0; j < f->rank; j++)
		off = off * f->d[j] + start[j] + idx[j] * step[j];
	return off;
}

static int op_slice(Interp *it, const Node *n)
{
	Tensor *x = interp_tin(it, n, 0), *y = interp_tout(it, n, 0);
	int64_t start[IR_MAX_RANK], step[IR_MAX_RANK], idx[IR_MAX_RANK];
	slice_plan(n, x->rank, start, step);
	for (int64_t k = 0; k < y->n; k++) {
		unravel(k, y->rank, y->d, idx);
		move(y, k, x, full_off(x, idx, start, step));
	}
	return 0;
}

static int op_slice_grad(Interp *it, const Node *n)
{
	Tensor *dy = interp_tin(it, n, 0), *dx = interp_tout(it, n, 0);
	int64_t start[IR_MAX_RANK], step[IR_MAX_RANK], idx[IR_MAX_RANK];
	slice_plan(n, dx->rank, start, step);
	for (int64_t k = 0; k < dx->n; k++)
		dx->isint ? (void)(dx->i[k] = 0) : (void)(dx->f[k] = 0);
	for (int64_t k = 0; k < dy->n; k++) {
		unravel(k, dy->rank, dy->d, idx);
		move(dx, full_off(dx, idx, start, step), dy, k);
	}
	return 0;
}

static int op_concat(Interp *it, const Node *n)
{
	Tensor *y = interp_tout(it, n, 0);
	int axis = (int)ir_attr_i(n, "axis", 0);
	int64_t outer, inner, at = 0;
	around(y, axis, &outer, &inner);
	for (int i = 0; i < n->nin; i++) {
		Tensor *x = interp_tin(it, n, i);
		int64_t A = x->d[axis];
		for (int64_t o = 0; o < outer; o++)
			for (int64_t e = 0; e < A * inner; e++)
				move(y, (o * y->d[axis] + at) * inner + e, x, o * A * inner + e);
		at += A;
	}
	return 0;
}

/* keep x[..., r, c] where c - r >= k (upper) or c - r <= k (lower), else 0 */
static int op_trilu(Interp *it, const Node *n)
{
	Tensor *x = interp_tin(it, n, 0), *y = interp_tout(it, n, 0);
	int64_t k = ir_attr_i(n, "k", 0), upper = ir_attr_i(n, "upper", 1);
	if (x->rank < 2)
		return interp_fail(it, n, "needs rank >= 2");
	int64_t rows = x->d[x->rank - 2], cols = x->d[x->rank - 1];
	for (int64_t e = 0; e < y->n; e++) {
		int64_t c = e % cols, r = (e / cols) % rows;
		int keep = upper ? c - r >= k : c - r <= k;
		if (keep)
			move(y, e, x, e);
		else if (y->isint)
			y->i[e] = 0;
		else
			y->f[e] = 0;
	}
	return 0;
}

/* ReluMask(y): bit c % 8 of byte c / 8 of each row where y > 0 */
static int op_relu_mask(Interp *it, const Node *n)
{
	Tensor *x = interp_tin(it, n, 0), *y = interp_tout(it, n, 0);
	int64_t cols = x->d[x->rank - 1], bytes = y->d[y->rank - 1];
	for (int64_t e = 0; e < y->n; e++)
		y->i[e] = 0;
	for (int64_t e = 0; e < x->n; e++)
		if (x->f[e] > 0)
			y->i[e / cols * bytes + e % cols / 8] |= 1 << (e % cols % 8);
	return 0;
}

/* ReluMaskGrad(dy, m): dy where m's bit is set, else 0 */
static int op_relu_mask_grad(Interp *it, const Node *n)
{
	Tensor *dy = interp_tin(it, n, 0), *m = interp_tin(it, n, 1), *y = interp_tout(it, n, 0);
	int64_t cols = dy->d[dy->rank - 1], bytes = m->d[m->rank - 1];
	for (int64_t e = 0; e < y->n; e++)
		y->f[e] = m->i[e / cols * bytes + e % cols / 8] >> (e % cols % 8) & 1 ? dy->f[e] : 0.0;
	return 0;
}

int interp_tensor_op(Interp *it, const Node *n)
{
	switch (n->op) {
	case OP_GATHER: return op_gather(it, n);
	case OP_GATHER_GRAD: return op_gather_grad(it, n);
	case OP_SLICE: return op_slice(it, n);
	case OP_SLICE_GRAD: return op_slice_grad(it, n);
	case OP_CONCAT: return op_concat(it, n);
	case OP_TRILU: return op_trilu(it, n);
	case OP_RELU_MASK: return op_relu_mask(it, n);
	case OP_RELU_MASK_GRAD: return op_relu_mask_grad(it, n);
	default: return op_map(it, n);
	}
}
