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
 * Preconditions: float tensors; the axis attribute may be negative (ONNX default -1).
 */
#include <stdio.h>

#include "codegen/cg_internal.h"

typedef struct {
	const char *max; /* element whose row max is taken, or NULL */
	const char *sum; /* summand */
	const char *out; /* written value */
} RowOp;

static RowOp row_op(Op op)
{
	switch (op) {
	case OP_SOFTMAX:
		return (RowOp){"x0[o]", "r_exp(x0[o] - m)", "r_exp(x0[o] - m) / s"};
	case OP_LOG_SOFTMAX:
		return (RowOp){"x0[o]", "r_exp(x0[o] - m)", "x0[o] - m - r_log(s)"};
	case OP_SOFTMAX_GRAD:
		return (RowOp){NULL, "x0[o] * x1[o]", "x1[o] * (x0[o] - s)"};
	case OP_LOG_SOFTMAX_GRAD:
		return (RowOp){NULL, "x0[o]", "x0[o] - r_exp(x1[o]) * s"};
	case OP_SOFTMAX_CROSS_ENTROPY_GRAD:
		return (RowOp){"x1[o]", "r_exp(x1[o] - m)",
			       "(r_exp(x1[o] - m) / s - (k == (long long)x2[r] ? (R)1 : (R)0)) * x0[0] / (R)rows"};
	default:
		DLCC_ASSERT(0 && "not a row op");
	}
	return (RowOp){0};
}

static void emit_phrases(CgBuf *d, RowOp ro, int lng)
{
	const char *kl = lng ? "for (long long k = threadIdx.x; k < A; k += blockDim.x)"
			     : "for (long long k = 0; k < A; k++)";
	if (ro.max) {
		cg_printf(d, "\t\tR m = -INFINITY;\n\t\t%s {\n\t\t\tconst long long o = base + k * inner;\n"
			     "\t\t\tm = r_max(m, %s);\n\t\t}\n", kl, ro.max);
		if (lng)
			cg_puts(d, "\t\tm = dlcc_block_max(m, sh);\n");
	}
	cg_printf(d, "\t\tR s = (R)0;\n\t\t%s {\n\t\t\tconst long long o = base + k * inner;\n"
		     "\t\t\ts += %s;\n\t\t}\n", kl, ro.sum);
	if (lng)
		cg_puts(d, "\t\ts = dlcc_block_sum(s, sh);\n");
	cg_printf(d, "\t\t%s {\n\t\t\tconst long long o = base + k * inner;\n\t\t\ty[o] = %s;\n\t\t}\n", kl,
		  ro.out);
}

int cg_emit_softmax(CgEmit *e, const Node *n)
{
	static const char *names[] = {"x0", "x1", "x2"};
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
	int lng = cg_long_row(e, ir_dim_at(s->d[axis], e->L->max_batch));
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
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
	cg_printf(d, "\tconst long long A = %s, inner = %s, rows = %s * inner;\n", cg_dim(s->d[axis], "B"),
		  cg_prod(s, axis + 1, s->rank, "B"), cg_prod(s, 0, axis, "B"));
	if (lng)
		cg_puts(d, "\tfor (long long r = blockIdx.x; r < rows; r += gridDim.x) {\n");
	else
		cg_printf(d, "\t%s {\n", cg_loop("r", "rows"));
	cg_puts(d, "\t\tconst long long base = (r / inner) * A * inner + r % inner;\n");
	emit_phrases(d, row_op(n->op), lng);
	cg_puts(d, "\t}\n");
	cg_kernel_close(e, &k);
	return 0;
}
