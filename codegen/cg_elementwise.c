/*
 * cg_elementwise.c — kernels for K_UNARY and K_BINARY ops (and broadcast copies).
 *
 * One thread per output element in a grid-stride loop; the element is computed by the op
 * table's `body` with the operands bound to `a` and `b` and the float attributes it names
 * (alpha, beta, gamma, lo, hi) as literals.
 * Operands broadcast (numpy rules, batch dims included): an operand with the output's shape is
 * read at i, a one-element operand at 0, any other through per-dimension strides that are 0 on
 * broadcast dimensions; the output index is decomposed once for all such operands. Every extent
 * is a constant or an expression of the kernel argument B, so one kernel serves every batch.
 * Precondition: the output is a float tensor or has the dtype of its operands (Expand, Identity).
 */
#include <stdio.h>
#include <string.h>

#include "codegen/cg_internal.h"

typedef enum { IX_DIRECT, IX_SCALAR, IX_STRIDED } IndexKind;

static IndexKind index_kind(const Value *x, const Value *y)
{
	if (ir_shape_eq(&x->shape, &y->shape))
		return IX_DIRECT;
	if (!ir_has_batch(&x->shape) && ir_numel(&x->shape) == 1)
		return IX_SCALAR;
	return IX_STRIDED;
}

/* stride of x along output dim j (0 where x broadcasts), as a kernel expression */
static const char *bcast_stride(const Shape *x, const Shape *y, int j)
{
	int jx = j - (y->rank - x->rank);
	if (jx < 0 || (x->d[jx] == 1 && y->d[j] != 1))
		return NULL;
	return cg_prod(x, jx + 1, x->rank, "B");
}

/* `long long t = i, i0 = 0, ...` then one step per output dim, innermost first: the coordinate
 * c = t % d feeds every operand with a stride there; the outermost needs no modulo */
static void emit_decompose(CgEmit *e, const Value *y, int nin, const Value *const *x, const IndexKind *k)
{
	CgBuf *d = &e->dev;
	cg_puts(d, "\t\tlong long t = i");
	for (int i = 0; i < nin; i++)
		if (k[i] == IX_STRIDED)
			cg_printf(d, ", i%d = 0", i);
	cg_puts(d, ";\n");
	for (int j = y->shape.rank - 1; j >= 0; j--) {
		const char *s[3] = {NULL, NULL, NULL}, *dim = cg_dim(y->shape.d[j], "B");
		for (int i = 0; i < nin; i++)
			s[i] = k[i] == IX_STRIDED ? bcast_stride(&x[i]->shape, &y->shape, j) : NULL;
		if (!s[0] && !s[1] && !s[2]) {
			if (j > 0)
				cg_printf(d, "\t\tt /= %s;\n", dim);
			continue;
		}
		cg_printf(d, "\t\t{ const long long c = %s%s;", j > 0 ? "t % " : "t", j > 0 ? dim : "");
		for (int i = 0; i < nin; i++)
			if (s[i])
				cg_printf(d, " i%d += c * %s;", i, s[i]);
		cg_printf(d, "%s%s%s }\n", j > 0 ? " t /= " : "", j > 0 ? dim : "", j > 0 ? ";" : "");
	}
}

static int emit_ew(CgEmit *e, const Node *n, const char *what, const Value *y, int nin,
		   const Value *const *x, const char *body, int attrs)
{
	static const char *names[] = {"x0", "x1", "x2"}, *ops[] = {"a", "b", "c"};
	CgKernel k;
	IndexKind kind[3];
	int strided = 0;
	cg_kernel_begin(e, &k, n, what);
	cg_arg_out(&k, "y", y);
	for (int i = 0; i < nin; i++) {
		cg_arg_in(&k, names[i], x[i]);
		kind[i] = index_kind(x[i], y);
		strided |= kind[i] == IX_STRIDED;
	}
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%s)", cg_prod(&y->shape, 0, y->shape.rank, "b"));
	cg_kernel_open(e, &k);
	cg_printf(&e->dev, "\tconst long long n = %s;\n", cg_prod(&y->shape, 0, y->shape.rank, "B"));
	if (attrs)
		cg_emit_act_attrs(&e->dev, n, body);
	cg_printf(&e->dev, "\t%s {\n", cg_loop("i", "n"));
	if (strided)
		emit_decompose(e, y, nin, x, kind);
	for (int i = 0; i < nin; i++) {
		const char *ix = kind[i] == IX_DIRECT ? "i" : kind[i] == IX_SCALAR ? "0" : NULL;
		char buf[16];
		snprintf(buf, sizeof buf, "i%d", i);
		cg_printf(&e->dev, "\t\tconst %s %s = %s[%s];\n", cg_ctype(x[i]->dt), ops[i], names[i],
			  ix ? ix : buf);
	}
	cg_printf(&e->dev, "\t\ty[i] = (%s)(%s);\n\t}\n", cg_ctype(y->dt), body);
	cg_kernel_close(e, &k);
	return 0;
}

static int dtype_ok(CgEmit *e, const Node *n)
{
	for (int i = 0; i < n->nin; i++)
		if (n->in[i]->dt != n->out[0]->dt && ir_dt_is_float(n->out[0]->dt))
			return cg_fail(e->err, e->errlen, "codegen: node '%s' (%s): operand %d is %s, "
					   "the result %s (insert a Cast)", n->name, ir_ops[n->op].name, i,
				       ir_dt_name(n->in[i]->dt), ir_dt_name(n->out[0]->dt));
	return 0;
}

int cg_emit_elementwise(CgEmit *e, const Node *n)
{
	const OpInfo *op = &ir_ops[n->op];
	DLCC_ASSERT(op->body && n->nin <= 2);
	if (dtype_ok(e, n) < 0)
		return -1;
	return emit_ew(e, n, NULL, n->out[0], n->nin, (const Value *const *)n->in, op->body, 1);
}

int cg_emit_map(CgEmit *e, const Node *n, const char *body)
{
	DLCC_ASSERT(n->nin <= 3);
	return emit_ew(e, n, NULL, n->out[0], n->nin, (const Value *const *)n->in, body, 0);
}

int cg_emit_broadcast(CgEmit *e, const Node *n, const char *what, const Value *y, const Value *x)
{
	return emit_ew(e, n, what, y, 1, &x, "a", 0);
}
