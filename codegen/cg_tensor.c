/*
 * cg_tensor.c — kernels of the data-path plumbing ops: Gather, GatherGrad, Slice, SliceGrad,
 * Concat, Trilu (index kernels, any dtype) and Where, Cast (through cg_emit_map).
 *
 * Every kernel is one thread per output element in a grid-stride loop, with extents as
 * constants or expressions of the batch B, except two:
 *   Concat   one kernel over the output, each element copied from the input whose band holds it
 *            (in a fusion group: reading inputs that are transposes in place, and storing
 *            the half copy that a Cast of the result makes);
 *   GatherGrad (the scatter-add of an embedding's gradient) is deterministic, without atomics:
 *            dx's axis is cut into at most GG_BANDS bands of rows; a block owns one (outer,
 *            band), zeroes it, then walks all the indices in order (a chunk at a time through
 *            shared memory, the chunk's hits in its band listed in order by a prefix sum) and
 *            adds the dy rows that land in its band, a thread per column. No two threads touch one element, so the
 *            sum is the same on every run and equals the interpreter's bit for bit; the work is
 *            dy plus dx plus bands × the index count (index reads, all threads the same one),
 *            the parallelism bands × the embedding width. Rows hit by many indices cost no
 *            contention.
 * An index outside [-A, A) reads 0 in Gather and is skipped in GatherGrad (a kernel cannot
 * report it; the interpreter does).
 */
#include <stdio.h>
#include <string.h>

#include "codegen/cg_internal.h"

#define GG_BANDS 1024 /* GatherGrad: most bands of rows per outer index */

static const char *numel(const Value *v) { return cg_prod(&v->shape, 0, v->shape.rank, "B"); }

static void grid_over(CgKernel *k, const Shape *s)
{
	snprintf(k->grid, sizeof k->grid, "dlcc_grid(%s)", cg_prod(s, 0, s->rank, "b"));
}

/* x as [outer, A, inner] around axis, as kernel constants */
static void emit_around(CgBuf *d, const Shape *x, int axis)
{
	cg_printf(d, "\tconst long long outer = %s, A = %s, inner = %s;\n", cg_prod(x, 0, axis, "B"),
		  cg_dim(x->d[axis], "B"), cg_prod(x, axis + 1, x->rank, "B"));
	cg_puts(d, "\t(void)outer;\n");
}

static int emit_gather(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *ix = n->in[1], *y = n->out[0];
	int axis = (int)ir_attr_i(n, "axis", 0);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x0", x);
	cg_arg_in(&k, "ix", ix);
	grid_over(&k, &y->shape);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	emit_around(d, &x->shape, axis);
	cg_printf(d, "\tconst long long n = %s, nidx = %s;\n", numel(y), numel(ix));
	cg_printf(d, "\t%s {\n", cg_loop("i", "n"));
	cg_puts(d, "\t\tconst long long q = i % inner, t = i / inner, j = t % nidx, o = t / nidx;\n"
		   "\t\tlong long kk = (long long)ix[j];\n\t\tif (kk < 0)\n\t\t\tkk += A;\n");
	cg_printf(d, "\t\ty[i] = kk >= 0 && kk < A ? x0[(o * A + kk) * inner + q] : (%s)0;\n\t}\n",
		  cg_ctype(y->dt));
	cg_kernel_close(e, &k);
	return 0;
}

static int emit_gather_grad(CgEmit *e, const Node *n)
{
	const Value *dy = n->in[0], *ix = n->in[1], *y = n->out[0];
	int axis = (int)ir_attr_i(n, "axis", 0);
	const Shape *ys = &y->shape;
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "dy", dy);
	cg_arg_in(&k, "ix", ix);
	/* a block per (outer, band of rows): at most GG_BANDS bands of dx's axis */
	snprintf(k.grid, sizeof k.grid, "dlcc_min_grid((%s) * ((%s) < %d ? (%s) : %d), 65535)", cg_prod(ys, 0, axis, "b"),
		 cg_dim(ys->d[axis], "b"), GG_BANDS, cg_dim(ys->d[axis], "b"), GG_BANDS);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	emit_around(d, ys, axis);
	cg_printf(d, "\tconst long long nidx = %s, bands = A < %d ? A : %d, per = (A + bands - 1) / bands;\n", numel(ix),
		  GG_BANDS, GG_BANDS);
	/* the indices pass through shared memory a block's width at a time; the chunk's hits in the
	 * band are listed in index order (a block prefix sum of the hit flags), then all threads add
	 * the listed rows, so a block's cost is its hits plus a few barriers per chunk */
	cg_printf(d, "\t__shared__ long long sx[%d];\n\t__shared__ int sp[%d], hl[%d];\n", CG_BLOCK, CG_BLOCK, CG_BLOCK);
	cg_puts(d, "\tconst int t = threadIdx.x;\n"
		   "\tfor (long long blk = blockIdx.x; blk < outer * bands; blk += gridDim.x) {\n"
		   "\t\tconst long long o = blk / bands, a0 = blk % bands * per, a1 = a0 + per < A ? a0 + per : A;\n"
		   "\t\tfor (long long a = a0; a < a1; a++)\n"
		   "\t\t\tfor (long long q = t; q < inner; q += blockDim.x)\n"
		   "\t\t\t\ty[(o * A + a) * inner + q] = (R)0;\n"
		   "\t\tfor (long long j0 = 0; j0 < nidx; j0 += blockDim.x) {\n"
		   "\t\t\t__syncthreads();\n"
		   "\t\t\tlong long kk = -1;\n"
		   "\t\t\tif (j0 + t < nidx) {\n"
		   "\t\t\t\tkk = (long long)ix[j0 + t];\n"
		   "\t\t\t\tif (kk < 0)\n\t\t\t\t\tkk += A;\n"
		   "\t\t\t}\n"
		   "\t\t\tconst int hit = kk >= a0 && kk < a1;\n"
		   "\t\t\tsx[t] = kk;\n\t\t\tsp[t] = hit;\n"
		   "\t\t\t__syncthreads();\n"
		   "\t\t\tfor (int off = 1; off < (int)blockDim.x; off <<= 1) {\n"
		   "\t\t\t\tconst int v = t >= off ? sp[t - off] : 0;\n"
		   "\t\t\t\t__syncthreads();\n\t\t\t\tsp[t] += v;\n\t\t\t\t__syncthreads();\n"
		   "\t\t\t}\n"
		   "\t\t\tif (hit)\n\t\t\t\thl[sp[t] - 1] = t;\n"
		   "\t\t\t__syncthreads();\n"
		   "\t\t\tconst int cnt = sp[blockDim.x - 1];\n"
		   "\t\t\tfor (int h = 0; h < cnt; h++) {\n"
		   "\t\t\t\tconst long long j = j0 + hl[h], row = sx[hl[h]];\n"
		   "\t\t\t\tfor (long long q = t; q < inner; q += blockDim.x)\n"
		   "\t\t\t\t\ty[(o * A + row) * inner + q] += dy[(o * nidx + j) * inner + q];\n"
		   "\t\t\t}\n"
		   "\t\t}\n\t}\n");
	k.uses_sync = 1;
	cg_kernel_close(e, &k);
	return 0;
}

/* per dim: the slice's start and step (0, 1 where not sliced), and whether it is sliced */
static void slice_plan(const Node *n, int rank, int64_t *start, int64_t *step, int *cut)
{
	int cnt;
	const int64_t *ax = ir_attr_ints(n, "axes", &cnt), *st = ir_attr_ints(n, "starts", &cnt);
	const int64_t *sp = ir_attr_ints(n, "steps", &cnt);
	for (int j = 0; j < rank; j++)
		start[j] = 0, step[j] = 1, cut[j] = 0;
	for (int i = 0; i < cnt; i++)
		start[ax[i]] = st[i], step[ax[i]] = sp[i], cut[ax[i]] = 1;
}

void cg_slice_offset(CgBuf *d, const Node *n, const char *flat, const char *out, const char *ind)
{
	const Value *x = n->in[0], *y = n->out[0];
	int64_t start[IR_MAX_RANK], step[IR_MAX_RANK];
	int cut[IR_MAX_RANK];
	slice_plan(n, x->shape.rank, start, step, cut);
	cg_printf(d, "%s{\n%s\tlong long t = %s, q = 0;\n", ind, ind, flat);
	for (int j = y->shape.rank - 1; j >= 0; j--)
		cg_printf(d, "%s\t{ const long long c = t %% %s; t /= %s; q += (%lldLL + c * %lldLL) * %s; }\n", ind,
			  cg_dim(y->shape.d[j], "B"), cg_dim(y->shape.d[j], "B"), (long long)start[j],
			  (long long)step[j], cg_prod(&x->shape, j + 1, x->shape.rank, "B"));
	cg_printf(d, "%s\t%s = q;\n%s}\n", ind, out, ind);
}

/* y = x[start + c * step] per dim */
static int emit_slice(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *y = n->out[0];
	int64_t start[IR_MAX_RANK], step[IR_MAX_RANK];
	int cut[IR_MAX_RANK];
	slice_plan(n, x->shape.rank, start, step, cut);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x0", x);
	grid_over(&k, &y->shape);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\tconst long long n = %s;\n\t%s {\n\t\tlong long t = i, o = 0;\n", numel(y), cg_loop("i", "n"));
	for (int j = y->shape.rank - 1; j >= 0; j--)
		cg_printf(d, "\t\t{ const long long c = t %% %s; t /= %s; o += (%lldLL + c * %lldLL) * %s; }\n",
			  cg_dim(y->shape.d[j], "B"), cg_dim(y->shape.d[j], "B"), (long long)start[j],
			  (long long)step[j], cg_prod(&x->shape, j + 1, x->shape.rank, "B"));
	cg_puts(d, "\t\ty[i] = x0[o];\n\t}\n");
	cg_kernel_close(e, &k);
	return 0;
}

/* y (the unsliced shape) = dy where the index lies on the slice lattice, else 0 */
static int emit_slice_grad(CgEmit *e, const Node *n)
{
	const Value *dy = n->in[0], *y = n->out[0];
	int64_t start[IR_MAX_RANK], step[IR_MAX_RANK];
	int cut[IR_MAX_RANK];
	slice_plan(n, y->shape.rank, start, step, cut);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "dy", dy);
	grid_over(&k, &y->shape);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\tconst long long n = %s;\n\t%s {\n\t\tlong long t = i, o = 0;\n\t\tint ok = 1;\n",
		  numel(y), cg_loop("i", "n"));
	for (int j = y->shape.rank - 1; j >= 0; j--) {
		const char *dim = cg_dim(y->shape.d[j], "B"), *st = cg_prod(&dy->shape, j + 1, dy->shape.rank, "B");
		if (!cut[j]) {
			cg_printf(d, "\t\t{ const long long c = t %% %s; t /= %s; o += c * %s; }\n", dim, dim, st);
			continue;
		}
		cg_printf(d, "\t\t{ const long long c = t %% %s; t /= %s; long long r = c - %lldLL;\n", dim, dim,
			  (long long)start[j]);
		cg_printf(d, "\t\t  if (r %% %lldLL != 0) ok = 0; r /= %lldLL; if (r < 0 || r >= %s) ok = 0; "
			     "o += r * %s; }\n", (long long)step[j], (long long)step[j],
			  cg_dim(dy->shape.d[j], "B"), st);
	}
	cg_printf(d, "\t\ty[i] = ok ? dy[o] : (%s)0;\n\t}\n", cg_ctype(y->dt));
	cg_kernel_close(e, &k);
	return 0;
}

/* one kernel over the output: an element's place along the axis picks the input it copies
 * (the inputs' bands in order, a chain of comparisons) */
/* through[i]: a Transpose whose result (through Reshapes) is input i, read in place; NULL */
static int emit_concat(CgEmit *e, const Node *n, const Node *cast, const char *what, const Node *const *through)
{
	const Value *y = n->out[0], *h = cast ? cast->out[0] : NULL;
	int axis = (int)ir_attr_i(n, "axis", 0), y_too = !h || !e->plan->fu.internal[y->id];
	static const char *const names[] = {"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"};
	DLCC_ASSERT(n->nin <= 8); /* ops.def: Concat takes 1 to 8 inputs */
	CgKernel k;
	cg_kernel_begin(e, &k, what ? NULL : n, what);
	if (what)
		snprintf(k.name, sizeof k.name, "k%d_concat%s", e->nkernels, h ? "_cast" : "");
	if (y_too)
		cg_arg_out(&k, "y", y);
	if (h)
		cg_arg_out(&k, "h", h);
	for (int i = 0; i < n->nin; i++)
		cg_arg_in(&k, names[i], through && through[i] ? through[i]->in[0] : n->in[i]);
	grid_over(&k, &y->shape);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\tconst long long n = %s, Y = %s, inner = %s;\n", numel(y), cg_prod(&y->shape, axis, y->shape.rank, "B"),
		  cg_prod(&y->shape, axis + 1, y->shape.rank, "B"));
	cg_printf(d, "\t%s {\n\t\tconst long long o = i / Y, r = i %% Y;\n\t\t%s v;\n", cg_loop("i", "n"),
		  cg_etype(y->dt));
	char at[512] = "0";
	for (int i = 0; i < n->nin; i++) {
		const Value *x = n->in[i];
		char band[256], end[512];
		snprintf(band, sizeof band, "%s", cg_prod(&x->shape, axis, x->shape.rank, "B"));
		if (snprintf(end, sizeof end, "%s + %s", at, cg_dim(x->shape.d[axis], "B")) >= (int)sizeof end)
			return cg_fail(e->err, e->errlen, "codegen: node '%s' (Concat): extents too long", n->name);
		if (i < n->nin - 1)
			cg_printf(d, "\t\t%sif (r < (%s) * inner) {\n", i ? "} else " : "", end);
		else if (n->nin > 1)
			cg_puts(d, "\t\t} else {\n");
		else
			cg_puts(d, "\t\t{\n");
		cg_printf(d, "\t\t\tlong long q = o * (%s) + r - (%s) * inner;\n", band, at);
		if (through && through[i])
			cg_transpose_offset(d, through[i], "q", "q", "\t\t\t");
		cg_printf(d, "\t\t\tv = %s[q];\n", names[i]);
		snprintf(at, sizeof at, "%s", end);
	}
	cg_puts(d, "\t\t}\n");
	if (y_too)
		cg_puts(d, "\t\ty[i] = v;\n");
	if (h)
		cg_printf(d, "\t\th[i] = %s;\n", cg_st(h->dt, cg_ld(y->dt, "v")));
	cg_puts(d, "\t}\n");
	cg_kernel_close(e, &k);
	return 0;
}

/* [Transpose, Reshape..., ]* Concat [, Cast]: the Concat reads the transposes' inputs in place
 * and writes its result and / or the half copy */
int cg_emit_concat_group(CgEmit *e, const CgGroup *gr)
{
	int c = 0;
	while (gr->nodes[c]->op != OP_CONCAT)
		c++;
	const Node *n = gr->nodes[c], *through[8] = {0};
	for (int i = 0; i < n->nin; i++) {
		const Value *x = n->in[i];
		while (x->def && ir_ops[x->def->op].kclass == K_NONE)
			x = x->def->in[0];
		for (int j = 0; j < c; j++)
			through[i] = gr->nodes[j]->op == OP_TRANSPOSE && gr->nodes[j]->out[0] == x ? gr->nodes[j] : through[i];
	}
	return emit_concat(e, n, c + 1 < gr->n ? gr->nodes[gr->n - 1] : NULL, cg_group_comment(gr), through);
}


static int emit_trilu(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *y = n->out[0];
	const Shape *s = &x->shape;
	int upper = ir_attr_i(n, "upper", 1) != 0;
	if (s->rank < 2)
		return cg_fail(e->err, e->errlen, "codegen: node '%s' (Trilu): needs rank >= 2", n->name);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x0", x);
	grid_over(&k, s);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\tconst long long n = %s, rows = %s, cols = %s;\n", numel(y), cg_dim(s->d[s->rank - 2], "B"),
		  cg_dim(s->d[s->rank - 1], "B"));
	cg_printf(d, "\t%s {\n\t\tconst long long c = i %% cols, r = (i / cols) %% rows;\n", cg_loop("i", "n"));
	cg_printf(d, "\t\ty[i] = c - r %s %lldLL ? x0[i] : (%s)0;\n\t}\n", upper ? ">=" : "<=",
		  (long long)ir_attr_i(n, "k", 0), cg_ctype(y->dt));
	cg_kernel_close(e, &k);
	return 0;
}

int cg_emit_tensor(CgEmit *e, const Node *n)
{
	switch (n->op) {
	case OP_GATHER: return emit_gather(e, n);
	case OP_GATHER_GRAD: return emit_gather_grad(e, n);
	case OP_SLICE: return emit_slice(e, n);
	case OP_SLICE_GRAD: return emit_slice_grad(e, n);
	case OP_CONCAT: return emit_concat(e, n, NULL, NULL, NULL);
	case OP_TRILU: return emit_trilu(e, n);
	case OP_WHERE: return cg_emit_map(e, n, "a ? b : c");
	case OP_CAST: return cg_emit_map(e, n, n->out[0]->dt == DT_BOOL ? "a != 0" : "a");
	default: break;
	}
	return cg_fail(e->err, e->errlen, "codegen: node '%s': no kernel for op %s", n->name, ir_ops[n->op].name);
}
