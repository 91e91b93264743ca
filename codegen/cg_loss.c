/*
 * cg_loss.c — the scalar loss: SoftmaxCrossEntropy, storing the loss in the f32 slot the
 * runtime reads, and the copies that end a program.
 *
 * SoftmaxCrossEntropy(z [P, C] after flattening the leading dims, t [P]) runs over a grid of at
 * most CG_RED_PARTS blocks that ends in dlcc_grid_sum (uses_sync = 1): each block sums its
 * rows' terms, the last block to finish adds the blocks' partials in block order (deterministic,
 * the scratch is the workspace's red_off slot). Short class axes (C below CG_LONG_ROW at max
 * batch): one thread per row. Long class axes (a vocabulary): one block per row, max and sum in
 * one pass (cg_emit_online_max_sum), blocks striding over the rows. Both write mean(-log_softmax(z)[t]) to
 * y[0]; a class id outside [0, C) makes the loss NaN instead of reading out of bounds.
 * Fused with its gradient (cg_emit_loss_group; passes/fuse.c decides): the kernel also writes
 * SoftmaxCrossEntropyGrad's (softmax(z) - onehot(t)) * dl / rows while the row's max and sum
 * are at hand, so the logits are read by one kernel instead of two (twice for a long row: the
 * one-pass max and sum, then the gradient); with short class axes a third member, the gradient
 * summed over all but the class axis (the logits' bias gradient), is summed by the last block,
 * one thread per class, rows in order. In mixed precision the gradient's Cast to half joins
 * too: the kernel writes the half copy beside the gradient, or instead of it when nothing else
 * reads the f32 gradient.
 * When the loss is not already in the f32 slot (an f64 program, a loss that is an alias), a
 * one-thread kernel converts it there. Copies (outputs that could not be placed in their slot,
 * updates not done in place) are rt_d2d calls sized by the batch.
 */
#include <stdio.h>
#include <string.h>

#include "codegen/cg_internal.h"

#define CE_GRAD_F32 1  /* the gradient kernel writes the f32 gradient, */
#define CE_GRAD_HALF 2 /* its half-precision copy (a Cast member of the group), or both */

/* the gradient's element base + k: into y1 (f32) and / or y3 (its half copy), per `grad` */
static void emit_grad_store(CgBuf *d, int grad, DType half, const char *ind)
{
	const char *g = "(r_exp(x0[base + k] - m) / s - (k == c ? (R)1 : (R)0)) * x2[0] / (R)rows";
	if (!(grad & CE_GRAD_HALF)) {
		cg_printf(d, "%sy1[base + k] = %s;\n", ind, g);
		return;
	}
	cg_printf(d, "%s{\n%s\tconst R g = %s;\n", ind, ind, g);
	if (grad & CE_GRAD_F32)
		cg_printf(d, "%s\ty1[base + k] = g;\n", ind);
	cg_printf(d, "%s\ty3[base + k] = %s;\n%s}\n", ind, cg_st(half, "g"), ind);
}

/* short class axes: one thread per row over the whole grid; acc is the thread's total */
static void emit_ce_short(CgBuf *d, int grad, DType half)
{
	cg_puts(d, "\tfor (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < rows;\n"
		   "\t     r += (long long)blockDim.x * gridDim.x) {\n"
		   "\t\tconst long long base = r * A;\n"
		   "\t\tR m = -INFINITY;\n"
		   "\t\tfor (long long k = 0; k < A; k++)\n\t\t\tm = r_max(m, x0[base + k]);\n"
		   "\t\tR s = (R)0;\n"
		   "\t\tfor (long long k = 0; k < A; k++)\n\t\t\ts += r_exp(x0[base + k] - m);\n"
		   "\t\tconst long long c = (long long)x1[r];\n"
		   "\t\tacc += c >= 0 && c < A ? r_log(s) + m - x0[base + c] : (R)NAN;\n");
	if (grad) {
		cg_puts(d, "\t\tfor (long long k = 0; k < A; k++)\n");
		emit_grad_store(d, grad, half, "\t\t\t");
	}
	cg_puts(d, "\t}\n\tacc = dlcc_block_sum(acc, sh);\n");
}

/* long class axes: a block per row, blocks striding over the rows; acc is the block's total */
static void emit_ce_long(CgBuf *d, int grad, DType half)
{
	cg_puts(d, "\tconst long long inner = 1;\n"
		   "\tfor (long long r = blockIdx.x; r < rows; r += gridDim.x) {\n"
		   "\t\tconst long long base = r * A;\n");
	cg_emit_online_max_sum(d, "x0[o]", "\t\t");
	cg_puts(d, "\t\tconst long long c = (long long)x1[r];\n"
		   "\t\tacc += c >= 0 && c < A ? r_log(s) + m - x0[base + c] : (R)NAN;\n");
	if (grad) { /* the gradient row from the same max and sum: the logits' second and last read */
		cg_puts(d, "\t\tfor (long long k = threadIdx.x; k < A; k += blockDim.x)\n");
		emit_grad_store(d, grad, half, "\t\t\t");
	}
	cg_puts(d, "\t}\n");
}

/* the kernel's head: output, inputs, the grid-sum scratch, the grid; returns the row count */
static void ce_begin(CgEmit *e, CgKernel *k, const Shape *s, int lng, char *part, char *cnt)
{
	cg_arg_red_scratch(e, k, CG_RED_CE_BYTES, part, cnt);
	k->uses_sync = 1;
	const char *rows = cg_prod(s, 0, s->rank - 1, "b");
	if (lng)
		snprintf(k->grid, sizeof k->grid, "dlcc_min_grid(%s, %d)", rows, CG_RED_PARTS);
	else
		snprintf(k->grid, sizeof k->grid, "dlcc_min_grid(((%s) + %d) / %d, %d)", rows, CG_BLOCK - 1, CG_BLOCK,
			 CG_RED_PARTS);
	cg_kernel_open(e, k);
	cg_printf(&e->dev, "\t__shared__ R sh[%d];\n", CG_BLOCK);
	cg_printf(&e->dev, "\tconst long long A = %s, rows = %s;\n\tR acc = (R)0, total;\n",
		  cg_dim(s->d[s->rank - 1], "B"), cg_prod(s, 0, s->rank - 1, "B"));
}

int cg_emit_cross_entropy(CgEmit *e, const Node *n)
{
	const Value *z = n->in[0], *t = n->in[1];
	const Shape *s = &z->shape;
	int lng = cg_long_row(e, ir_dim_at(s->d[s->rank - 1], e->L->max_batch));
	char part[64], cnt[64];
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", n->out[0]);
	cg_arg_in(&k, "x0", z);
	cg_arg_in(&k, "x1", t);
	ce_begin(e, &k, s, lng, part, cnt);
	if (lng)
		emit_ce_long(&e->dev, 0, DT_F32);
	else
		emit_ce_short(&e->dev, 0, DT_F32);
	cg_puts(&e->dev, "\tif (dlcc_grid_sum(acc, sh, part, cnt, &total) && threadIdx.x == 0)\n"
			 "\t\ty[0] = total / (R)rows;\n");
	cg_kernel_close(e, &k);
	return 0;
}

int cg_emit_loss_group(CgEmit *e, const CgGroup *gr)
{
	const Node *ce = gr->nodes[0], *gn = gr->nodes[1], *sum = NULL, *cast = NULL;
	for (int i = 2; i < gr->n; i++)
		*(gr->nodes[i]->op == OP_CAST ? &cast : &sum) = gr->nodes[i];
	const Shape *s = &ce->in[0]->shape;
	int lng = cg_long_row(e, ir_dim_at(s->d[s->rank - 1], e->L->max_batch));
	DLCC_ASSERT(!lng || !sum); /* passes/fuse.c: the bias gradient joins short rows only */
	int grad = (e->plan->fu.internal[gn->out[0]->id] ? 0 : CE_GRAD_F32) | (cast ? CE_GRAD_HALF : 0);
	char part[64], cnt[64];
	CgKernel k;
	cg_kernel_begin(e, &k, NULL, cg_group_comment(gr));
	snprintf(k.name, sizeof k.name, "k%d_fused_cross_entropy", e->nkernels);
	cg_arg_out(&k, "y", ce->out[0]);
	if (grad & CE_GRAD_F32)
		cg_arg_out(&k, "y1", gn->out[0]);
	cg_arg_in(&k, "x0", ce->in[0]);
	cg_arg_in(&k, "x1", ce->in[1]);
	cg_arg_in(&k, "x2", gn->in[0]);
	if (sum)
		cg_arg_out(&k, "y2", sum->out[0]);
	if (cast)
		cg_arg_out(&k, "y3", cast->out[0]);
	ce_begin(e, &k, s, lng, part, cnt);
	CgBuf *d = &e->dev;
	DType half = cast ? cast->out[0]->dt : DT_F32;
	if (lng)
		emit_ce_long(d, grad, half);
	else
		emit_ce_short(d, grad, half);
	/* the last block: the loss, and the gradient's sum over the rows (all rows written by now) */
	cg_puts(d, "\tif (!dlcc_grid_sum(acc, sh, part, cnt, &total))\n\t\treturn;\n");
	if (sum)
		cg_printf(d, "\tfor (long long k = threadIdx.x; k < A; k += blockDim.x) {\n"
			     "\t\tR s = (R)0;\n\t\tfor (long long r = 0; r < rows; r++)\n\t\t\ts += ((volatile R *)y1)[r * A + k];\n"
			     "\t\ty2[k] = %s;\n\t}\n", sum->op == OP_REDUCE_MEAN ? "s / (R)rows" : "s");
	cg_puts(d, "\tif (threadIdx.x == 0)\n\t\ty[0] = total / (R)rows;\n");
	cg_kernel_close(e, &k);
	return 0;
}

int cg_emit_loss_store(CgEmit *e, const Value *loss)
{
	char slot[64];
	CgKernel k;
	snprintf(slot, sizeof slot, "(W + %zu)", e->L->loss_off);
	cg_kernel_begin(e, &k, NULL, "the loss as f32 into its slot");
	cg_arg_raw(&k, "float *", "y", slot);
	cg_arg_in(&k, "x0", loss);
	snprintf(k.grid, sizeof k.grid, "1");
	k.block = 1;
	cg_kernel_open(e, &k);
	cg_puts(&e->dev, "\tif (threadIdx.x == 0 && blockIdx.x == 0)\n\t\ty[0] = (float)x0[0];\n");
	cg_kernel_close(e, &k);
	return 0;
}

int cg_emit_copies(CgEmit *e)
{
	const CgPlan *p = e->plan;
	for (int i = 0; i < p->ncopies; i++) {
		const CgCopy *c = &p->copies[i];
		const Value *v = c->from;
		size_t es = cg_elem_size(v->dt, e->L->prec);
		cg_printf(&e->host, "\t/* %s into its %s */\n", cg_vname(v), c->to.space == CG_PARAMS ? "state" : "output slot");
		cg_printf(&e->host, "\tif (rt_d2d(rt, (%s + %zu), %s, (size_t)%s * %zu) < 0)\n\t\treturn -1;\n",
			  c->to.space == CG_PARAMS ? "P" : "W", c->to.offset, cg_addr(e, v),
			  cg_prod(&v->shape, 0, v->shape.rank, "b"), es);
	}
	return 0;
}
