/*
 * cg_transpose.c — Transpose: one thread per output element; the output index decomposes over
 * the output dims, and output dim j walks the input with the stride of input dim perm[j].
 * Works for any dtype (the element is copied, not computed). `perm` is checked by the shape
 * rule; every extent is a constant or an expression of the batch B.
 */
#include <stdio.h>

#include "codegen/cg_internal.h"

int cg_emit_transpose(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *y = n->out[0];
	int cnt = 0;
	const int64_t *perm = ir_attr_ints(n, "perm", &cnt);
	DLCC_ASSERT(perm && cnt == x->shape.rank);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x0", x);
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%s)", cg_prod(&y->shape, 0, y->shape.rank, "b"));
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\tconst long long n = %s;\n", cg_prod(&y->shape, 0, y->shape.rank, "B"));
	cg_printf(d, "\t%s {\n\t\tlong long t = i, o = 0;\n", cg_loop("i", "n"));
	for (int j = y->shape.rank - 1; j >= 0; j--)
		cg_printf(d, "\t\t{ long long c = t %% %s; t /= %s; o += c * %s; }\n", cg_dim(y->shape.d[j], "B"),
			  cg_dim(y->shape.d[j], "B"), cg_prod(&x->shape, (int)perm[j] + 1, x->shape.rank, "B"));
	cg_puts(d, "\t\ty[i] = x0[o];\n\t}\n");
	cg_kernel_close(e, &k);
	return 0;
}
