/*
 * cg_index.c — kernels of the element-indexing ops and the scan: GatherElements,
 * ScatterElements, CumSum (ops.def "element indexing and scans" block).
 *
 *   GatherElements   one thread per output element (the index tensor's shape): its multi-index,
 *                    with the axis coordinate replaced by the index it holds, read in x.
 *   ScatterElements  deterministic, without atomics: one thread per column of the result (a
 *                    position off the axis) copies x's column, then walks the indices of that
 *                    column in order and writes (adds) the updates that land in it. No two
 *                    threads touch one element, so "none" keeps the last write in C order and
 *                    "add" sums in C order, bit for bit as the interpreter does. This is also
 *                    the gradient of GatherElements (a scatter-add into zeros).
 *   CumSum           one thread per column along the axis, a running sum in the compute type.
 * An index outside [-A, A) reads 0 (GatherElements) or is skipped (ScatterElements); a kernel
 * cannot report it, the interpreter does.
 */
#include <stdio.h>
#include <string.h>

#include "codegen/cg_internal.h"

static void grid_over(CgKernel *k, const Shape *s)
{
	snprintf(k->grid, sizeof k->grid, "dlcc_grid(%s)", cg_prod(s, 0, s->rank, "b"));
}

static const char *stride(const Shape *s, int j) { return cg_prod(s, j + 1, s->rank, "B"); }

/* `if (kk < 0) kk += A;` for the index read from expr */
static void read_index(CgBuf *d, const char *ind, const char *expr, const Shape *x, int axis)
{
	cg_printf(d, "%slong long kk = (long long)%s;\n%sif (kk < 0)\n%s\tkk += %s;\n", ind, expr, ind, ind,
		  cg_dim(x->d[axis], "B"));
}

static int emit_gather_elements(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *ix = n->in[1], *y = n->out[0];
	const Shape *xs = &x->shape, *is = &ix->shape;
	int axis = (int)ir_attr_i(n, "axis", 0);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x0", x);
	cg_arg_in(&k, "ix", ix);
	grid_over(&k, is);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\tconst long long n = %s;\n\t%s {\n\t\tlong long t = i, o = 0;\n",
		  cg_prod(is, 0, is->rank, "B"), cg_loop("i", "n"));
	for (int j = is->rank - 1; j >= 0; j--)
		if (j != axis)
			cg_printf(d, "\t\t{ const long long c = t %% %s; t /= %s; o += c * %s; }\n", cg_dim(is->d[j], "B"),
				  cg_dim(is->d[j], "B"), stride(xs, j));
		else
			cg_printf(d, "\t\tt /= %s;\n", cg_dim(is->d[j], "B"));
	read_index(d, "\t\t", "ix[i]", xs, axis);
	cg_printf(d, "\t\ty[i] = kk >= 0 && kk < %s ? x0[o + kk * %s] : (%s)0;\n\t}\n", cg_dim(xs->d[axis], "B"),
		  stride(xs, axis), cg_ctype(y->dt));
	cg_kernel_close(e, &k);
	return 0;
}

/* the column's offsets in x (xo) and in the indices (io), and ok = 0 when the indices do not
 * reach that column */
static void column_offsets(CgBuf *d, const Shape *xs, const Shape *is, int axis)
{
	cg_puts(d, "\t\tlong long t = c, xo = 0, io = 0;\n\t\tint ok = 1;\n");
	for (int j = xs->rank - 1; j >= 0; j--) {
		if (j == axis)
			continue;
		cg_printf(d, "\t\t{ const long long q = t %% %s; t /= %s; xo += q * %s; io += q * %s;", cg_dim(xs->d[j], "B"),
			  cg_dim(xs->d[j], "B"), stride(xs, j), stride(is, j));
		if (xs->d[j] != is->d[j])
			cg_printf(d, " if (q >= %s) ok = 0;", cg_dim(is->d[j], "B"));
		cg_puts(d, " }\n");
	}
}

static int emit_scatter_elements(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *ix = n->in[1], *u = n->in[2], *y = n->out[0];
	const Shape *xs = &x->shape, *is = &ix->shape;
	const Attr *r = ir_attr(n, "reduction");
	int axis = (int)ir_attr_i(n, "axis", 0), add = r && !strcmp(r->s, "add");
	Shape cols = *xs;
	cols.d[axis] = 1;
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x0", x);
	cg_arg_in(&k, "ix", ix);
	cg_arg_in(&k, "u", u);
	grid_over(&k, &cols);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	const char *A = cg_dim(xs->d[axis], "B"), *xa = stride(xs, axis), *ia = stride(is, axis);
	cg_printf(d, "\tconst long long ncol = %s;\n\t%s {\n", cg_prod(&cols, 0, cols.rank, "B"), cg_loop("c", "ncol"));
	column_offsets(d, xs, is, axis);
	cg_printf(d, "\t\tfor (long long a = 0; a < %s; a++)\n\t\t\ty[xo + a * %s] = x0[xo + a * %s];\n", A, xa, xa);
	cg_printf(d, "\t\tfor (long long j = 0; ok && j < %s; j++) {\n", cg_dim(is->d[axis], "B"));
	char at[160];
	snprintf(at, sizeof at, "ix[io + j * %s]", ia);
	read_index(d, "\t\t\t", at, xs, axis);
	cg_printf(d, "\t\t\tif (kk >= 0 && kk < %s)\n\t\t\t\ty[xo + kk * %s] %s u[io + j * %s];\n\t\t}\n\t}\n", A, xa,
		  add ? "+=" : "=", ia);
	cg_kernel_close(e, &k);
	return 0;
}

static int emit_cum_sum(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *y = n->out[0];
	const Shape *xs = &x->shape;
	int axis = (int)ir_attr_i(n, "axis", 0), excl = ir_attr_i(n, "exclusive", 0) != 0;
	int rev = ir_attr_i(n, "reverse", 0) != 0;
	Shape cols = *xs;
	cols.d[axis] = 1;
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x0", x);
	grid_over(&k, &cols);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\tconst long long A = %s, inner = %s, ncol = %s;\n", cg_dim(xs->d[axis], "B"), stride(xs, axis),
		  cg_prod(&cols, 0, cols.rank, "B"));
	cg_printf(d, "\t%s {\n\t\tconst long long o = c / inner, q = c %% inner;\n\t\t%s s = (%s)0;\n", cg_loop("c", "ncol"),
		  cg_ctype(y->dt), cg_ctype(y->dt));
	cg_printf(d, "\t\tfor (long long t = 0; t < A; t++) {\n\t\t\tconst long long k = (o * A + %s) * inner + q;\n",
		  rev ? "A - 1 - t" : "t");
	cg_puts(d, excl ? "\t\t\ty[k] = s;\n\t\t\ts += x0[k];\n" : "\t\t\ts += x0[k];\n\t\t\ty[k] = s;\n");
	cg_puts(d, "\t\t}\n\t}\n");
	cg_kernel_close(e, &k);
	return 0;
}

int cg_emit_index(CgEmit *e, const Node *n)
{
	switch (n->op) {
	case OP_GATHER_ELEMENTS: return emit_gather_elements(e, n);
	case OP_SCATTER_ELEMENTS: return emit_scatter_elements(e, n);
	case OP_CUM_SUM: return emit_cum_sum(e, n);
	default: break;
	}
	return cg_fail(e->err, e->errlen, "codegen: node '%s': no kernel for op %s", n->name, ir_ops[n->op].name);
}
