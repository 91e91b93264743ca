/*
 * interp_index.c — the reference interpreter's element-indexing ops and scan: GatherElements,
 * ScatterElements, CumSum (ops.def "element indexing and scans" block).
 *
 * Each index op walks the index tensor in C order; a position's multi-index is read in the
 * index tensor's extents and re-laid in the data's, with the axis coordinate replaced by the
 * index (negative counts from the end; outside [-A, A) is an error naming the node). The
 * scatter-add accumulates in that order, the order the generated kernel uses per column, so f32
 * results agree bit for bit. CumSum adds along the axis in the direction it runs, one rounding
 * per addition. Preconditions: shape rules have run, attributes are in IR normal form.
 */
#include <string.h>

#include "ir/interp_impl.h"
#include "ir/interp_ops.h"

/* offset in x of the position k of ix (C order) with the axis coordinate replaced by the
 * index it holds; -1 (error set) when that index is out of range */
static int64_t target(Interp *it, const Node *n, const Tensor *x, const Tensor *ix, int64_t k, int axis)
{
	int64_t rest = k, off = 0, stride = 1, A = x->d[axis];
	int64_t v = ix->i[k] < 0 ? ix->i[k] + A : ix->i[k];
	if (v < 0 || v >= A) {
		interp_fail(it, n, "index %lld is out of range for an axis of %lld", (long long)ix->i[k], (long long)A);
		return -1;
	}
	for (int j = x->rank - 1; j >= 0; j--) {
		int64_t c = ix->d[j] ? rest % ix->d[j] : 0;
		rest = ix->d[j] ? rest / ix->d[j] : 0;
		off += (j == axis ? v : c) * stride;
		stride *= x->d[j];
	}
	return off;
}

static void put(Tensor *y, int64_t k, const Tensor *x, int64_t s)
{
	if (y->isint)
		y->i[k] = x->i[s];
	else
		y->f[k] = x->f[s];
}

static int op_gather_elements(Interp *it, const Node *n)
{
	Tensor *x = interp_tin(it, n, 0), *ix = interp_tin(it, n, 1), *y = interp_tout(it, n, 0);
	int axis = (int)ir_attr_i(n, "axis", 0);
	for (int64_t k = 0; k < ix->n; k++) {
		int64_t s = target(it, n, x, ix, k, axis);
		if (s < 0)
			return -1;
		put(y, k, x, s);
	}
	return 0;
}

static int is_add(const Node *n)
{
	const Attr *r = ir_attr(n, "reduction");
	return r && !strcmp(r->s, "add");
}

static int op_scatter_elements(Interp *it, const Node *n)
{
	Tensor *x = interp_tin(it, n, 0), *ix = interp_tin(it, n, 1), *u = interp_tin(it, n, 2);
	Tensor *y = interp_tout(it, n, 0);
	int axis = (int)ir_attr_i(n, "axis", 0), add = is_add(n);
	for (int64_t k = 0; k < y->n; k++)
		put(y, k, x, k);
	for (int64_t k = 0; k < ix->n; k++) {
		int64_t s = target(it, n, x, ix, k, axis);
		if (s < 0)
			return -1;
		if (!add)
			put(y, s, u, k);
		else if (y->isint)
			y->i[s] += u->i[k];
		else
			y->f[s] = interp_rd(it, y->f[s] + u->f[k]);
	}
	return 0;
}

/* y[o, a, q] = sum of x[o, b, q] over b <= a (b < a exclusive; b >= a, b > a reversed) */
static int op_cum_sum(Interp *it, const Node *n)
{
	Tensor *x = interp_tin(it, n, 0), *y = interp_tout(it, n, 0);
	int axis = (int)ir_attr_i(n, "axis", 0), excl = ir_attr_i(n, "exclusive", 0) != 0;
	int rev = ir_attr_i(n, "reverse", 0) != 0;
	int64_t outer = 1, inner = 1, A = x->d[axis];
	for (int j = 0; j < x->rank; j++)
		*(j < axis ? &outer : &inner) *= j == axis ? 1 : x->d[j];
	for (int64_t o = 0; o < outer; o++)
		for (int64_t q = 0; q < inner; q++) {
			double sf = 0;
			int64_t si = 0;
			for (int64_t t = 0; t < A; t++) {
				int64_t k = (o * A + (rev ? A - 1 - t : t)) * inner + q;
				double xf = x->isint ? 0 : x->f[k];
				int64_t xi = x->isint ? x->i[k] : 0;
				if (!excl)
					sf = interp_rd(it, sf + xf), si += xi;
				if (y->isint)
					y->i[k] = si;
				else
					y->f[k] = sf;
				if (excl)
					sf = interp_rd(it, sf + xf), si += xi;
			}
		}
	return 0;
}

int interp_index_op(Interp *it, const Node *n)
{
	switch (n->op) {
	case OP_GATHER_ELEMENTS: return op_gather_elements(it, n);
	case OP_SCATTER_ELEMENTS: return op_scatter_elements(it, n);
	case OP_CUM_SUM: return op_cum_sum(it, n);
	default: break;
	}
	return interp_fail(it, n, "not an element-indexing op");
}
