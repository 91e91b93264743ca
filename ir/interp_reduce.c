/*
 * interp_reduce.c — the reference interpreter's reduction, dropout and loss ops (ops.def block
 * "reductions, dropout, in-model losses"): ReduceMax/Min/Prod, ArgMax, Dropout, NllLoss and
 * NllLossGrad.
 *
 * Reductions walk the input in C order and combine each element into the output offset given
 * by the input's extents with the reduced axes set to 1 (keepdims does not change the layout).
 * Max and min are exact; a product accumulates in double and is rounded once (f32 mode), like
 * the sums of interp.c. NllLoss sums in double, rounding the sum and the weight total once.
 *
 * Dropout's RNG is counter-based: element i of a Dropout with attribute `seed` at optimizer step
 * `step` is kept when the top 24 bits of mix(mix(mix(seed) ^ step) ^ i) are >= round(ratio·2^24),
 * mix being splitmix64's finaliser. No state, no order: the generated kernels compute the same
 * integer function per element (codegen/cg_reduce2.c), so their masks equal these bit for bit,
 * a run is reproducible from (seed, step), and each training step draws a fresh mask.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/interp_impl.h"
#include "ir/interp_ops.h"

/* ---- the dropout hash (mirrored by the kernel text in codegen/cg_reduce2.c) ---- */

static uint64_t mix64(uint64_t z)
{
	z += 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

uint64_t ir_dropout_threshold(double ratio) { return (uint64_t)llround(ratio * 16777216.0); }

int ir_dropout_keep(uint64_t seed, int64_t step, int64_t i, uint64_t threshold)
{
	return (mix64(mix64(mix64(seed) ^ (uint64_t)step) ^ (uint64_t)i) >> 40) >= threshold;
}

/* ---- ReduceMax / ReduceMin / ReduceProd ---- */

/* output offset of input element k: the input's multi-index with the reduced axes at 0 */
static int64_t reduced_offset(const Tensor *x, int64_t k, int mask)
{
	int64_t off = 0, stride = 1;
	for (int j = x->rank - 1; j >= 0; j--) {
		int64_t c = x->d[j] ? k % x->d[j] : 0;
		k = x->d[j] ? k / x->d[j] : 0;
		if (!((mask >> j) & 1)) {
			off += c * stride;
			stride *= x->d[j];
		}
	}
	return off;
}

static int axes_mask(const Node *n, int rank)
{
	int cnt = 0, mask = 0;
	const int64_t *ax = ir_attr_ints(n, "axes", &cnt);
	if (!ax || cnt == 0)
		return (1 << rank) - 1;
	for (int i = 0; i < cnt; i++)
		mask |= 1 << ax[i];
	return mask;
}

static double combine(Op op, double a, double b)
{
	switch (op) {
	case OP_REDUCE_MAX: return b > a ? b : a;
	case OP_REDUCE_MIN: return b < a ? b : a;
	default: return a * b;
	}
}

static double reduce_init(Op op, int isint)
{
	if (op == OP_REDUCE_PROD)
		return 1;
	if (isint)
		return 0;
	return op == OP_REDUCE_MAX ? -INFINITY : INFINITY;
}

static int op_reduce_ext(Interp *it, const Node *n)
{
	Tensor *x = interp_tin(it, n, 0), *y = interp_tout(it, n, 0);
	int mask = axes_mask(n, x->rank);
	char *seen = calloc(y->n ? y->n : 1, 1);
	double *acc = calloc(y->n ? y->n : 1, sizeof *acc);
	DLCC_ASSERT(seen && acc);
	for (int64_t o = 0; o < y->n; o++)
		acc[o] = reduce_init(n->op, x->isint);
	for (int64_t k = 0; k < x->n; k++) {
		int64_t o = reduced_offset(x, k, mask);
		double v = x->isint ? (double)x->i[k] : x->f[k];
		acc[o] = seen[o] || n->op == OP_REDUCE_PROD ? combine(n->op, acc[o], v) : v;
		seen[o] = 1;
	}
	for (int64_t o = 0; o < y->n; o++) {
		if (y->isint)
			y->i[o] = (int64_t)acc[o];
		else
			y->f[o] = interp_rd(it, acc[o]);
	}
	free(seen);
	free(acc);
	return 0;
}

/* ---- ArgMax ---- */

static double elem(const Tensor *t, int64_t k) { return t->isint ? (double)t->i[k] : t->f[k]; }

static int op_arg_max(Interp *it, const Node *n)
{
	Tensor *x = interp_tin(it, n, 0), *y = interp_tout(it, n, 0);
	int axis = (int)ir_attr_i(n, "axis", 0), last = ir_attr_i(n, "select_last_index", 0) != 0;
	int64_t outer = 1, inner = 1, len = x->d[axis];
	for (int j = 0; j < x->rank; j++)
		*(j < axis ? &outer : &inner) *= j == axis ? 1 : x->d[j];
	for (int64_t o = 0; o < outer; o++)
		for (int64_t q = 0; q < inner; q++) {
			int64_t base = o * len * inner + q, best = 0;
			for (int64_t a = 1; a < len; a++) {
				double v = elem(x, base + a * inner), b = elem(x, base + best * inner);
				if (v > b || (last && v == b))
					best = a;
			}
			y->i[o * inner + q] = best;
		}
	return 0;
}

/* ---- Dropout ---- */

static int op_dropout(Interp *it, const Node *n)
{
	Tensor *x = interp_tin(it, n, 0), *y = interp_tout(it, n, 0), *m = interp_tout(it, n, 1);
	double ratio = ir_attr_f(n, "ratio", 0.5), scale = interp_rd(it, 1.0 / (1.0 - ratio));
	uint64_t seed = (uint64_t)ir_attr_i(n, "seed", 0), thr = ir_dropout_threshold(ratio);
	for (int64_t k = 0; k < x->n; k++) {
		m->i[k] = ir_dropout_keep(seed, it->step, k, thr);
		y->f[k] = m->i[k] ? interp_rd(it, x->f[k] * scale) : 0;
	}
	return 0;
}

/* ---- NllLoss ---- */

typedef struct {
	int64_t P, C, D;   /* positions N·D, classes, positions per sample */
	int has_ii;
	int64_t ii;
	int mode;          /* 0 none, 1 sum, 2 mean */
} Nll;

static int nll_plan(Interp *it, const Node *n, const Tensor *lp, const Tensor *t, Nll *p)
{
	const Attr *r = ir_attr(n, "reduction");
	const char *red = r && r->kind == A_STRING ? r->s : "mean";
	p->C = lp->d[1];
	p->P = t->n;
	p->D = lp->d[0] ? p->P / lp->d[0] : 0;
	p->has_ii = ir_attr(n, "ignore_index") != NULL;
	p->ii = ir_attr_i(n, "ignore_index", 0);
	p->mode = !strcmp(red, "none") ? 0 : !strcmp(red, "sum") ? 1 : 2;
	for (int64_t q = 0; q < p->P; q++)
		if (!(p->has_ii && t->i[q] == p->ii) && (t->i[q] < 0 || t->i[q] >= p->C))
			return interp_fail(it, n, "target %lld at position %lld is outside [0,%lld)", (long long)t->i[q],
				     (long long)q, (long long)p->C);
	return 0;
}

/* the class of position q and its offset in logp; -1 when ignored */
static int64_t nll_at(const Nll *p, const Tensor *t, int64_t q, int64_t *off)
{
	int64_t c = t->i[q];
	if (p->has_ii && c == p->ii)
		return -1;
	*off = ((q / p->D) * p->C + c) * p->D + q % p->D;
	return c;
}

static int op_nll_loss(Interp *it, const Node *n)
{
	Tensor *lp = interp_tin(it, n, 0), *t = interp_tin(it, n, 1), *w = n->nin > 2 ? interp_tin(it, n, 2) : NULL;
	Tensor *y = interp_tout(it, n, 0), *ws = interp_tout(it, n, 1);
	Nll p;
	double sum = 0, wsum = 0;
	if (nll_plan(it, n, lp, t, &p) < 0)
		return -1;
	for (int64_t q = 0; q < p.P; q++) {
		int64_t off = 0, c = nll_at(&p, t, q, &off);
		double wc = c < 0 ? 0 : w ? w->f[c] : 1, l = c < 0 ? 0 : -interp_rd(it, wc * lp->f[off]);
		if (p.mode == 0)
			y->f[q] = l;
		sum += l;
		wsum += wc;
	}
	ws->f[0] = interp_rd(it, wsum);
	if (p.mode == 1)
		y->f[0] = interp_rd(it, sum);
	else if (p.mode == 2)
		y->f[0] = interp_rd(it, interp_rd(it, sum) / ws->f[0]);
	return 0;
}

static int op_nll_loss_grad(Interp *it, const Node *n)
{
	Tensor *dy = interp_tin(it, n, 0), *lp = interp_tin(it, n, 1), *t = interp_tin(it, n, 2), *ws = interp_tin(it, n, 3);
	Tensor *w = n->nin > 4 ? interp_tin(it, n, 4) : NULL, *dx = interp_tout(it, n, 0);
	Nll p;
	if (nll_plan(it, n, lp, t, &p) < 0)
		return -1;
	double g = p.mode == 2 ? interp_rd(it, dy->f[0] / ws->f[0]) : dy->f[0];
	memset(dx->f, 0, (size_t)dx->n * sizeof *dx->f);
	for (int64_t q = 0; q < p.P; q++) {
		int64_t off = 0, c = nll_at(&p, t, q, &off);
		if (c >= 0)
			dx->f[off] = -interp_rd(it, (w ? w->f[c] : 1) * (p.mode == 0 ? dy->f[q] : g));
	}
	return 0;
}

int interp_reduce_op(Interp *it, const Node *n)
{
	switch (n->op) {
	case OP_REDUCE_MAX: case OP_REDUCE_MIN: case OP_REDUCE_PROD: return op_reduce_ext(it, n);
	case OP_ARG_MAX: return op_arg_max(it, n);
	case OP_DROPOUT: return op_dropout(it, n);
	case OP_NLL_LOSS: return op_nll_loss(it, n);
	case OP_NLL_LOSS_GRAD: return op_nll_loss_grad(it, n);
	default: break;
	}
	return interp_fail(it, n, "not an op of interp_reduce.c");
}
