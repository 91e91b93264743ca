/*
 * cg_softmax.c — kernels that reduce along one axis and write every element of it: Softmax,
 * LogSoftmax, their gradients, and SoftmaxCrossEntropyGrad.
 *
 * The tensor is seen as outer × A × inner (A the axis extent); a row is one (outer, inner)
 * pair, its elements at base + k*inner. Each op is three phrases over a row: an optional max,
 * a sum, and the value written — expressions over the element offset `o`, the position `k`,
 * the row `r`, the max `m` and the sum `s`. Two variants of the same phrases:
 *   short rows (A < CG_LONG_ROW at max batch): one thread per row, plain loops (no barrier);
 *   long rows: one block per row, threads stride along the row, block tree reductions
 *   (__syncthreads, uses_sync = 1).
 * A Softmax / LogSoftmax may also store its result's half-precision copy (a Cast in its fusion
 * group: attention's probabilities as the next product's operand).
 * Preconditions: float tensors; the axis attribute may be negative (ONNX default -1).
 */
#include <stdio.h>
#include <string.h>

#include "codegen/cg_internal.h"

#define ROW_CACHE 24576 /* bytes of shared memory a row kernel may keep a row's operands in */

typedef struct {
	const char *max; /* element whose row max is taken, or NULL */
	const char *sum; /* summand */
	const char *out; /* written value */
	int online;      /* the summand is r_exp(max element - m): one pass can find both */
} RowOp;

static RowOp row_op(Op op)
{
	switch (op) {
	case OP_SOFTMAX:
		return (RowOp){"x0[o]", "r_exp(x0[o] - m)", "r_exp(x0[o] - m) / s", 1};
	case OP_LOG_SOFTMAX:
		return (RowOp){"x0[o]", "r_exp(x0[o] - m)", "x0[o] - m - r_log(s)", 1};
	case OP_SOFTMAX_GRAD:
		return (RowOp){NULL, "x0[o] * x1[o]", "x1[o] * (x0[o] - s)"};
	case OP_LOG_SOFTMAX_GRAD:
		return (RowOp){NULL, "x0[o]", "x0[o] - r_exp(x1[o]) * s"};
	case OP_SOFTMAX_CROSS_ENTROPY_GRAD:
		return (RowOp){"x1[o]", "r_exp(x1[o] - m)",
			       "(r_exp(x1[o] - m) / s - (k == (long long)x2[r] ? (R)1 : (R)0)) * x0[0] / (R)rows", 1};
	default:
		DLCC_ASSERT(0 && "not a row op");
	}
	return (RowOp){0};
}

/* `from` with every "x<i>[o]" (a per-element operand) read as the cached "c<i>[k]" */
static const char *cached(const char *from)
{
	static char ring[3][256];
	static int at;
	char *out = ring[at = (at + 1) % 3];
	size_t n = 0;
	for (const char *p = from; *p && n + 8 < sizeof ring[0];) {
		if (p[0] == 'x' && p[1] >= '0' && p[1] <= '9' && !strncmp(p + 2, "[o]", 3)) {
			n += snprintf(out + n, sizeof ring[0] - n, "c%c[k]", p[1]);
			p += 5;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = 0;
	return out;
}

void cg_emit_online_max_sum(CgBuf *d, const char *elem, const char *ind)
{
	cg_printf(d, "%sR m = -INFINITY, s = (R)0;\n"
		     "%sfor (long long k = threadIdx.x; k < A; k += blockDim.x) {\n"
		     "%s\tconst long long o = base + k * inner; (void)o;\n"
		     "%s\tconst R v = %s;\n"
		     "%s\tif (v > m) {\n%s\t\ts = s * r_exp(m - v) + (R)1;\n%s\t\tm = v;\n"
		     "%s\t} else {\n%s\t\ts += v == -INFINITY ? (R)0 : r_exp(v - m);\n%s\t}\n%s}\n",
		  ind, ind, ind, ind, elem, ind, ind, ind, ind, ind, ind, ind);
	cg_printf(d, "%s{\n%s\tconst R mb = dlcc_block_max(m, sh);\n"
		     "%s\ts = dlcc_block_sum(m == -INFINITY ? (R)0 : s * r_exp(m - mb), sh);\n"
		     "%s\tm = mb;\n%s}\n", ind, ind, ind, ind, ind);
}

/* the store of an element: y[o] = value, and its half copy h[o] when half is not DT_F32 (then
 * y only when y_too: nothing else may read it) */
static void emit_store(CgBuf *d, const char *kl, const char *value, DType half, int y_too)
{
	if (half == DT_F32) {
		cg_printf(d, "\t\t%s {\n\t\t\tconst long long o = base + k * inner;\n\t\t\ty[o] = %s;\n\t\t}\n", kl,
			  value);
		return;
	}
	cg_printf(d, "\t\t%s {\n\t\t\tconst long long o = base + k * inner;\n\t\t\tconst R v = %s;\n", kl, value);
	cg_printf(d, "%s\t\t\th[o] = %s;\n\t\t}\n", y_too ? "\t\t\ty[o] = v;\n" : "", cg_st(half, "v"));
}

static void emit_phrases(CgBuf *d, RowOp ro, int lng, int cache, DType half, int y_too)
{
	const char *kl = lng ? "for (long long k = threadIdx.x; k < A; k += blockDim.x)"
			     : "for (long long k = 0; k < A; k++)";
	if (cache)
		ro = (RowOp){ro.max ? cached(ro.max) : NULL, cached(ro.sum), cached(ro.out), ro.online};
	if (lng && !cache && ro.max && ro.online) {
		/* a long row in memory: max and sum in one pass (rescaling the sum when the max grows) */
		cg_emit_online_max_sum(d, ro.max, "\t\t");
		emit_store(d, kl, ro.out, half, y_too);
		return;
	}
	if (ro.max) {
		cg_printf(d, "\t\tR m = -INFINITY;\n\t\t%s {\n\t\t\tconst long long o = base + k * inner; (void)o;\n"
			     "\t\t\tm = r_max(m, %s);\n\t\t}\n", kl, ro.max);
		if (lng)
			cg_puts(d, "\t\tm = dlcc_block_max(m, sh);\n");
	}
	cg_printf(d, "\t\tR s = (R)0;\n\t\t%s {\n\t\t\tconst long long o = base + k * inner; (void)o;\n"
		     "\t\t\ts += %s;\n\t\t}\n", kl, ro.sum);
	if (lng)
		cg_puts(d, "\t\ts = dlcc_block_sum(s, sh);\n");
	emit_store(d, kl, ro.out, half, y_too);
}

/* the per-element operands of an op's phrases (bit i: "x<i>[o]" appears) */
static int per_element(RowOp ro)
{
	int mask = 0;
	const char *ph[3] = {ro.max, ro.sum, ro.out};
	for (int j = 0; j < 3; j++)
		for (const char *p = ph[j]; p && (p = strstr(p, "[o]")); p++)
			if (p - ph[j] >= 2 && p[-2] == 'x')
				mask |= 1 << (p[-1] - '0');
	return mask;
}

typedef struct {
	const Node *n;        /* the row op */
	const CgChain *chain; /* its fused producers (x0 is computed), or NULL */
	const char *what;     /* comment of a fused kernel, else NULL */
	const Node *cast;     /* a Cast of the result to half precision written beside it, or NULL */
} RowKernel;

/*
 * One row op. Long rows of a constant length whose per-element operands fit in ROW_CACHE bytes
 * are read once into shared memory (c0, c1: each thread keeps the elements k it owns, so no
 * barrier guards them) and the phrases read the copies: one pass over memory instead of three.
 */
static int emit_row(CgEmit *e, const RowKernel *rk)
{
	static const char *names[] = {"x0", "x1", "x2"};
	const Node *n = rk->n;
	const Value *y = n->out[0];
	const Shape *s = &y->shape;
	int axis = (int)ir_attr_i(n, "axis", -1);
	if (n->op == OP_SOFTMAX_CROSS_ENTROPY_GRAD)
		axis = s->rank - 1;
	if (axis < 0)
		axis += s->rank;
	if (axis < 0 || axis >= s->rank)
		return cg_fail(e->err, e->errlen, "codegen: node '%s' (%s): axis out of range for rank %d",
			       n->name, ir_ops[n->op].name, s->rank);
	RowOp ro = row_op(n->op);
	int lng = cg_long_row(e, ir_dim_at(s->d[axis], e->L->max_batch));
	int pe = per_element(ro), npe = (pe & 1) + (pe >> 1 & 1) + (pe >> 2 & 1);
	size_t rsz = e->L->prec == DT_F64 ? 8 : 4;
	int cache = lng && s->d[axis] > 0 && (size_t)s->d[axis] * npe * rsz <= ROW_CACHE;
	DLCC_ASSERT(!rk->chain || cache);
	CgKernel k;
	cg_kernel_begin(e, &k, rk->what ? NULL : n, rk->what);
	if (rk->what)
		snprintf(k.name, sizeof k.name, "k%d_fused_%s", e->nkernels, n->op == OP_SOFTMAX ? "softmax" : "logsoftmax");
	int y_too = !rk->cast || !e->plan->fu.internal[y->id]; /* y kept beside its half copy */
	if (y_too)
		cg_arg_out(&k, "y", y);
	if (rk->cast)
		cg_arg_out(&k, "h", rk->cast->out[0]);
	if (rk->chain)
		cg_chain_args(&k, rk->chain);
	else
		for (int i = 0; i < n->nin; i++)
			cg_arg_in(&k, names[i], n->in[i]);
	k.uses_sync = lng;
	const char *rows_h = cg_prod(s, 0, s->rank, "b");
	snprintf(k.grid, sizeof k.grid, "%s(%s / %s)", lng ? "dlcc_blocks" : "dlcc_grid", rows_h,
		 cg_dim(s->d[axis] ? s->d[axis] : 1, "b"));
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	if (lng)
		cg_printf(d, "\t__shared__ R sh[%d];\n", CG_BLOCK);
	for (int i = 0; cache && i < 3; i++)
		if (pe >> i & 1)
			cg_printf(d, "\t__shared__ R c%d[%lld];\n", i, (long long)s->d[axis]);
	cg_printf(d, "\tconst long long A = %s, inner = %s, rows = %s * inner;\n", cg_dim(s->d[axis], "B"),
		  cg_prod(s, axis + 1, s->rank, "B"), cg_prod(s, 0, axis, "B"));
	if (lng)
		cg_puts(d, "\tfor (long long r = blockIdx.x; r < rows; r += gridDim.x) {\n");
	else
		cg_printf(d, "\t%s {\n", cg_loop("r", "rows"));
	cg_puts(d, "\t\tconst long long base = (r / inner) * A * inner + r % inner;\n");
	if (cache) {
		cg_puts(d, "\t\tfor (long long k = threadIdx.x; k < A; k += blockDim.x) {\n"
			   "\t\t\tconst long long o = base + k * inner;\n");
		if (rk->chain) {
			cg_puts(d, "\t\t\tR xv;\n");
			cg_chain_body(e, rk->chain, "o", "\t\t\t", "xv", n->in[0]);
			cg_puts(d, "\t\t\tc0[k] = xv;\n");
		}
		for (int i = rk->chain ? 1 : 0; i < 3; i++)
			if (pe >> i & 1)
				cg_printf(d, "\t\t\tc%d[k] = x%d[o];\n", i, i);
		cg_puts(d, "\t\t}\n");
	}
	emit_phrases(d, ro, lng, cache, rk->cast ? rk->cast->out[0]->dt : DT_F32, y_too);
	cg_puts(d, "\t}\n");
	cg_kernel_close(e, &k);
	return 0;
}

int cg_emit_softmax(CgEmit *e, const Node *n)
{
	RowKernel rk = {n, NULL, NULL, NULL};
	return emit_row(e, &rk);
}

/* [elementwise..., Softmax | LogSoftmax, [Cast]]: the producers computed into the row cache, the
 * half copy stored beside the result */
int cg_emit_softmax_group(CgEmit *e, const CgGroup *gr)
{
	const Node *cast = gr->nodes[gr->n - 1]->op == OP_CAST ? gr->nodes[gr->n - 1] : NULL;
	int row = gr->n - 1 - (cast != NULL);
	const Node *n = gr->nodes[row];
	CgChain c = {0};
	if (row > 0 && cg_chain_init(e, &c, gr->nodes, row, &n->in[0]->shape) < 0)
		return -1;
	RowKernel rk = {n, row > 0 ? &c : NULL, cg_group_comment(gr), cast};
	return emit_row(e, &rk);
}
