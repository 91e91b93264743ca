/*
 * cg_reduce.c — ReduceSum / ReduceMean over any set of axes.
 *
 * The input's dims split into kept dims (the output's index space, in order) and reduced dims.
 * An output element o decomposes over the kept dims into a base offset; the reduction index j
 * decomposes over the reduced dims into an offset added to it. Short reductions (fewer than
 * CG_LONG_ROW elements at max batch) use one thread per output and a plain loop; long ones a
 * block per output, threads striding over j, and a block tree sum (uses_sync = 1). keepdims
 * does not change the layout. Attributes in IR normal form: `axes` (empty or absent = all).
 * Fused (cg_emit_reduce_group): the summand is not read but computed by an elementwise chain at
 * the input offset o (cg_elementwise.c), which also writes the chain's materialized values —
 * each input element is visited exactly once, so e.g. ReluGrad and its bias gradient are one pass.
 */
#include <stdio.h>

#include "codegen/cg_internal.h"

int cg_reduced_mask(const Node *n, int rank)
{
	int cnt = 0, mask = 0;
	const int64_t *ax = ir_attr_ints(n, "axes", &cnt);
	if (!ax || cnt == 0)
		return (1 << rank) - 1;
	for (int i = 0; i < cnt; i++)
		mask |= 1 << (ax[i] < 0 ? ax[i] + rank : ax[i]);
	return mask;
}

/* `{ c = t % d; t /= d; acc += c * stride; }` for the dims selected by want (1 = reduced) */
void cg_emit_split(CgBuf *d, const Shape *x, int mask, int want, const char *t, const char *acc)
{
	for (int j = x->rank - 1; j >= 0; j--)
		if (((mask >> j) & 1) == want)
			cg_printf(d, "\t\t\t{ long long c = %s %% %s; %s /= %s; %s += c * %s; }\n", t,
				  cg_dim(x->d[j], "B"), t, cg_dim(x->d[j], "B"), acc,
				  cg_prod(x, j + 1, x->rank, "B"));
}

static void extents(const Shape *x, int mask, int64_t batch, int64_t *kept, int64_t *red)
{
	*kept = *red = 1;
	for (int j = 0; j < x->rank; j++)
		*((mask >> j) & 1 ? red : kept) *= ir_dim_at(x->d[j], batch);
}

/* kernel expression of the product of the dims selected by want */
static void emit_count(CgBuf *d, const char *name, const Shape *x, int mask, int want)
{
	cg_printf(d, "\tconst long long %s = 1LL", name);
	for (int j = 0; j < x->rank; j++)
		if (((mask >> j) & 1) == want)
			cg_printf(d, " * %s", cg_dim(x->d[j], "B"));
	cg_puts(d, ";\n");
}

/* chain: the fused producers of x (NULL: x is read) */
static int emit_reduce(CgEmit *e, const Node *n, const CgChain *chain, const char *what)
{
	const Value *x = n->in[0], *y = n->out[0];
	int mask = cg_reduced_mask(n, x->shape.rank);
	int64_t kept, red;
	extents(&x->shape, mask, e->L->max_batch, &kept, &red);
	int lng = cg_long_row(e, red);
	CgKernel k;
	cg_kernel_begin(e, &k, chain ? NULL : n, what);
	if (chain)
		snprintf(k.name, sizeof k.name, "k%d_fused_reduce", e->nkernels);
	cg_arg_out(&k, "y", y);
	if (chain)
		cg_chain_args(&k, chain);
	else
		cg_arg_in(&k, "x0", x);
	k.uses_sync = lng;
	snprintf(k.grid, sizeof k.grid, "%s(%s)", lng ? "dlcc_blocks" : "dlcc_grid",
		 cg_prod(&y->shape, 0, y->shape.rank, "b"));
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	if (lng)
		cg_printf(d, "\t__shared__ R sh[%d];\n", CG_BLOCK);
	emit_count(d, "nout", &x->shape, mask, 0);
	emit_count(d, "nred", &x->shape, mask, 1);
	if (lng)
		cg_puts(d, "\tfor (long long r = blockIdx.x; r < nout; r += gridDim.x) {\n");
	else
		cg_printf(d, "\t%s {\n", cg_loop("r", "nout"));
	cg_puts(d, "\t\tlong long t = r, base = 0;\n");
	cg_emit_split(d, &x->shape, mask, 0, "t", "base");
	cg_printf(d, "\t\tR s = (R)0;\n\t\tfor (long long j = %s; j < nred; j += %s) {\n"
		     "\t\t\tlong long u = j, o = base;\n",
		  lng ? "threadIdx.x" : "0", lng ? "blockDim.x" : "1");
	cg_emit_split(d, &x->shape, mask, 1, "u", "o");
	if (chain) {
		cg_puts(d, "\t\t\tR xv;\n");
		cg_chain_body(e, chain, "o", "\t\t\t", "xv", x);
		cg_puts(d, "\t\t\ts += xv;\n\t\t}\n");
	} else {
		cg_puts(d, "\t\t\ts += x0[o];\n\t\t}\n");
	}
	if (lng)
		cg_puts(d, "\t\ts = dlcc_block_sum(s, sh);\n\t\tif (threadIdx.x == 0)\n\t");
	cg_printf(d, "\t\ty[r] = %s;\n\t}\n", n->op == OP_REDUCE_MEAN ? "s / (R)nred" : "s");
	cg_kernel_close(e, &k);
	return 0;
}

int cg_emit_reduce(CgEmit *e, const Node *n)
{
	return emit_reduce(e, n, NULL, NULL);
}

int cg_emit_reduce_group(CgEmit *e, const CgGroup *gr)
{
	const Node *n = gr->nodes[gr->n - 1];
	CgChain c = {0};
	if (cg_chain_init(e, &c, gr->nodes, gr->n - 1, &n->in[0]->shape) < 0)
		return -1;
	return emit_reduce(e, n, &c, cg_group_comment(gr));
}
