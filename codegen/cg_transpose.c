/*
 * cg_transpose.c — Transpose: one thread per output element; the output index decomposes over
 * the output dims, and output dim j walks the input with the stride of input dim perm[j].
 * Works for any dtype (the element is copied, not computed). `perm` is checked by the shape
 * rule; every extent is a constant or an expression of the batch B. A Transpose whose result only
 * a float-to-float Cast reads (mixed precision: the operand of a product), directly or through
 * Reshapes, runs as one kernel with that Cast (fusion group [Transpose, Reshape..., Cast],
 * passes/fuse.c): the element is converted on store. A Slice whose result only the Transpose
 * reads (through Reshapes) joins too: the kernel reads the sliced elements in place.
 */
#include <stdio.h>

#include "codegen/cg_internal.h"

/* y = transpose of n's input, stored as y's dtype (n's result, or a Cast of it); with a slice,
 * n's input is (a Reshape of) that Slice's result, read in place from the Slice's input */
static int emit_transpose(CgEmit *e, const Node *n, const Value *y, const char *what, const Node *slice)
{
	const Value *x = n->in[0];
	int cnt = 0;
	const int64_t *perm = ir_attr_ints(n, "perm", &cnt);
	DLCC_ASSERT(perm && cnt == x->shape.rank);
	CgKernel k;
	cg_kernel_begin(e, &k, what ? NULL : n, what);
	if (what)
		snprintf(k.name, sizeof k.name, "k%d_transpose_cast", e->nkernels);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x0", slice ? slice->in[0] : x);
	const Shape *ys = &n->out[0]->shape; /* y may be a Reshape of it: the same elements in order */
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%s)", cg_prod(ys, 0, ys->rank, "b"));
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\tconst long long n = %s;\n", cg_prod(ys, 0, ys->rank, "B"));
	cg_printf(d, "\t%s {\n\t\tlong long t = i, o = 0;\n", cg_loop("i", "n"));
	for (int j = ys->rank - 1; j >= 0; j--)
		cg_printf(d, "\t\t{ long long c = t %% %s; t /= %s; o += c * %s; }\n", cg_dim(ys->d[j], "B"),
			  cg_dim(ys->d[j], "B"), cg_prod(&x->shape, (int)perm[j] + 1, x->shape.rank, "B"));
	if (slice)
		cg_slice_offset(d, slice, "o", "o", "\t\t");
	cg_printf(d, "\t\ty[i] = %s;\n\t}\n", y->dt == x->dt ? "x0[o]" : cg_st(y->dt, cg_ld(x->dt, "x0[o]")));
	cg_kernel_close(e, &k);
	return 0;
}

int cg_emit_transpose(CgEmit *e, const Node *n) { return emit_transpose(e, n, n->out[0], NULL, NULL); }

void cg_transpose_offset(CgBuf *d, const Node *t, const char *flat, const char *out, const char *ind)
{
	const Shape *xs = &t->in[0]->shape, *ys = &t->out[0]->shape;
	int cnt = 0;
	const int64_t *perm = ir_attr_ints(t, "perm", &cnt);
	DLCC_ASSERT(perm && cnt == xs->rank);
	cg_printf(d, "%s{\n%s\tlong long tt = %s, qq = 0;\n", ind, ind, flat);
	for (int j = ys->rank - 1; j >= 0; j--)
		cg_printf(d, "%s\t{ const long long c = tt %% %s; tt /= %s; qq += c * %s; }\n", ind, cg_dim(ys->d[j], "B"),
			  cg_dim(ys->d[j], "B"), cg_prod(xs, (int)perm[j] + 1, xs->rank, "B"));
	cg_printf(d, "%s\t%s = qq;\n%s}\n", ind, out, ind);
}

/* a move group (cg_fuse.c move_member): its Transpose writes the group's last result */
int cg_emit_transpose_cast(CgEmit *e, const CgGroup *gr)
{
	for (int i = 0; i < gr->n; i++)
		if (gr->nodes[i]->op == OP_CONCAT)
			return cg_emit_concat_group(e, gr);
	const Node *t = NULL;
	for (int i = 0; i < gr->n; i++)
		t = gr->nodes[i]->op == OP_TRANSPOSE ? gr->nodes[i] : t;
	return emit_transpose(e, t, gr->nodes[gr->n - 1]->out[0], cg_group_comment(gr),
			      gr->nodes[0]->op == OP_SLICE ? gr->nodes[0] : NULL);
}
