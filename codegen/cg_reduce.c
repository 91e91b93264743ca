/*
 * cg_reduce.c — ReduceSum / ReduceMean over any set of axes.
 *
 * The input's dims split into kept dims (the output's index space, in order) and reduced dims.
 * An output element o decomposes over the kept dims into a base offset; the reduction index j
 * decomposes over the reduced dims into an offset added to it. Short reductions (fewer than
 * CG_LONG_ROW elements at max batch) use one thread per output and a plain loop; long ones a
 * block per output, threads striding over j, and a block tree sum (uses_sync = 1). When the
 * innermost dim is kept (a column reduction: a bias gradient over rows), neither is coalesced
 * or parallel enough, and emit_columns gives a warp 32 neighbouring outputs instead. keepdims
 * does not change the layout. Attributes in IR normal form: `axes` (empty or absent = all).
 * Fused (cg_emit_reduce_group): the summand is not read but computed by an elementwise chain at
 * the input offset o (cg_elementwise.c), which also writes the chain's materialized values —
 * each input element is visited exactly once, so e.g. ReluGrad and its bias gradient are one pass.
 */
#include <stdio.h>

#include "codegen/cg_internal.h"

#define RED_LANES 32    /* column reductions: outputs per block (a warp) */
#define RED_GROUPS 16   /* and groups of lanes splitting each output's reduction (512 threads) */

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

/* the summand at offset o into xv (from the chain, or read) */
static void emit_summand(CgEmit *e, const CgChain *chain, const Value *x, const char *ind)
{
	if (chain) {
		cg_printf(&e->dev, "%sR xv;\n", ind);
		cg_chain_body(e, chain, "o", ind, "xv", x);
	} else {
		cg_printf(&e->dev, "%sconst R xv = x0[o];\n", ind);
	}
}

/*
 * Column reductions (the innermost dim kept, e.g. a bias gradient summed over rows): a block
 * takes RED_LANES neighbouring outputs, one lane each, so that a warp's loads are one
 * contiguous run, and RED_GROUPS groups of lanes split the reduction (group g sums j = g,
 * g + RED_GROUPS, ...); the groups' sums are added in group order. Deterministic, like the
 * other forms. The loop is unrolled so that a thread has several loads in flight (few blocks
 * when the outputs are few: a LayerNorm's weight gradient has 768), and a reduction over exactly
 * the leading dims needs no index arithmetic (element (r, j) is at j * nout + r). With few
 * tiles, S blocks share a tile's rows (column_splits) and meet in the workspace's reduction
 * scratch: each leaves its 32 sums there, the last of the S (a per-tile counter) adds them in
 * split order.
 */
/* how many blocks share each tile's rows: enough blocks to fill the GPU when the outputs are
 * few (a LayerNorm's 768), if the tile count is batch-independent; innermost dim kept */
int cg_column_splits(const Shape *x, int mask, int64_t max_batch)
{
	int64_t tiles = 1, red = 1;
	if ((mask >> (x->rank - 1)) & 1)
		return 1;
	for (int j = 0; j < x->rank; j++) {
		if ((mask >> j) & 1) {
			red *= ir_dim_at(x->d[j], max_batch);
			continue;
		}
		if (x->d[j] < 0)
			return 1;
		tiles *= x->d[j];
	}
	tiles = (tiles + RED_LANES - 1) / RED_LANES;
	if (tiles >= CG_RED_TILES / 2)
		return 1;
	int64_t S = CG_RED_TILES / tiles;
	while (S > 1 && red < S * RED_GROUPS * 8) /* at least 8 rows a thread */
		S--;
	return S > 32 ? 32 : (int)S;
}

static int emit_columns(CgEmit *e, CgKernel *k, const Node *n, const CgChain *chain, int mask, int S)
{
	const Value *x = n->in[0];
	CgBuf *d = &e->dev;
	/* reducing exactly the leading dims: element (r, j) is at j * nout + r, no index split */
	int lead = (mask & (mask + 1)) == 0;
	cg_printf(d, "\t__shared__ R sh[%d];\n", RED_LANES * RED_GROUPS);
	emit_count(d, "nout", &x->shape, mask, 0);
	emit_count(d, "nred", &x->shape, mask, 1);
	cg_printf(d, "\tconst long long lx = threadIdx.x %% %d, ly = threadIdx.x / %d;\n", RED_LANES, RED_LANES);
	if (S > 1) /* block = (tile, split); split sp takes row groups sp*G + ly, stride S*G */
		cg_printf(d, "\t{\n\t\tconst long long tile = blockIdx.x / %d, sp = blockIdx.x %% %d;\n", S, S);
	else
		cg_printf(d, "\tfor (long long tile = blockIdx.x; tile * %d < nout; tile += gridDim.x) {\n", RED_LANES);
	cg_printf(d, "\t\tconst long long r = tile * %d + lx;\n\t\tR s = (R)0;\n\t\tif (r < nout) {\n", RED_LANES);
	cg_puts(d, "\t\t\tlong long t = r, base = 0;\n");
	if (lead)
		cg_puts(d, "\t\t\tbase = r; (void)t;\n");
	else
		cg_emit_split(d, &x->shape, mask, 0, "t", "base");
	if (S > 1)
		cg_printf(d, "\t\t\tDLCC_UNROLL4\n\t\t\tfor (long long j = sp * %d + ly; j < nred; j += %d) {\n", RED_GROUPS,
			  S * RED_GROUPS);
	else
		cg_printf(d, "\t\t\tDLCC_UNROLL4\n\t\t\tfor (long long j = ly; j < nred; j += %d) {\n", RED_GROUPS);
	if (lead) {
		cg_puts(d, "\t\t\t\tconst long long o = base + j * nout;\n");
	} else {
		cg_puts(d, "\t\t\t\tlong long u = j, o = base;\n");
		cg_emit_split(d, &x->shape, mask, 1, "u", "o");
	}
	emit_summand(e, chain, x, "\t\t\t\t");
	cg_puts(d, "\t\t\t\ts += xv;\n\t\t\t}\n\t\t}\n");
	cg_puts(d, "\t\tsh[threadIdx.x] = s;\n\t\t__syncthreads();\n");
	cg_printf(d, "\t\tif (ly == 0)\n\t\t\tfor (int g = 1; g < %d; g++)\n\t\t\t\ts += sh[g * %d + lx];\n",
		  RED_GROUPS, RED_LANES);
	const char *val = n->op == OP_REDUCE_MEAN ? "s / (R)nred" : "s";
	if (S == 1) {
		cg_printf(d, "\t\tif (ly == 0 && r < nout)\n\t\t\ty[r] = %s;\n\t\t__syncthreads();\n\t}\n", val);
		cg_kernel_close(e, k);
		return 0;
	}
	/* the tile's S blocks leave their sums in the scratch; the last to finish adds them in
	 * split order (deterministic) and resets the tile's counter */
	cg_printf(d, "\t\t__shared__ int last;\n"
		     "\t\tif (ly == 0)\n\t\t\tpart[(tile * %d + sp) * %d + lx] = s;\n"
		     "\t\t__threadfence();\n\t\t__syncthreads();\n"
		     "\t\tif (threadIdx.x == 0)\n\t\t\tlast = atomicAdd(&cnt[tile], 1u) == %du;\n"
		     "\t\t__syncthreads();\n"
		     "\t\tif (last && ly == 0) {\n\t\t\t__threadfence();\n\t\t\ts = (R)0;\n"
		     "\t\t\tfor (int q = 0; q < %d; q++)\n\t\t\t\ts += ((volatile R *)part)[(tile * %d + q) * %d + lx];\n"
		     "\t\t\tif (r < nout)\n\t\t\t\ty[r] = %s;\n"
		     "\t\t\tif (lx == 0)\n\t\t\t\tcnt[tile] = 0u;\n\t\t}\n\t}\n",
		  S, RED_LANES, S - 1, S, S, RED_LANES, val);
	cg_kernel_close(e, k);
	return 0;
}

/* chain: the fused producers of x (NULL: x is read) */
static int emit_reduce(CgEmit *e, const Node *n, const CgChain *chain, const char *what)
{
	const Value *x = n->in[0], *y = n->out[0];
	int mask = cg_reduced_mask(n, x->shape.rank);
	int64_t kept, red;
	extents(&x->shape, mask, e->L->max_batch, &kept, &red);
	int lng = cg_long_row(e, red);
	/* the innermost dim is kept: neighbouring outputs are neighbours in memory */
	int col = !((mask >> (x->shape.rank - 1)) & 1) && red >= 2 * RED_GROUPS;
	CgKernel k;
	cg_kernel_begin(e, &k, chain ? NULL : n, what);
	if (chain)
		snprintf(k.name, sizeof k.name, "k%d_fused_reduce", e->nkernels);
	cg_arg_out(&k, "y", y);
	if (chain)
		cg_chain_args(&k, chain);
	else
		cg_arg_in(&k, "x0", x);
	k.uses_sync = lng || col;
	int S = col ? cg_column_splits(&x->shape, mask, e->L->max_batch) : 1;
	char part[64], cnt[64];
	if (S > 1)
		cg_arg_red_scratch(e, &k, CG_RED_BYTES, part, cnt);
	if (col) {
		snprintf(k.grid, sizeof k.grid, "dlcc_blocks(((%s) + %d) / %d * %d)", cg_prod(&y->shape, 0, y->shape.rank, "b"),
			 RED_LANES - 1, RED_LANES, S);
		k.block = RED_LANES * RED_GROUPS;
	}
	else
		snprintf(k.grid, sizeof k.grid, "%s(%s)", lng ? "dlcc_blocks" : "dlcc_grid",
			 cg_prod(&y->shape, 0, y->shape.rank, "b"));
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	if (col)
		return emit_columns(e, &k, n, chain, mask, S);
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
	emit_summand(e, chain, x, "\t\t\t");
	cg_puts(d, "\t\t\ts += xv;\n\t\t}\n");
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
