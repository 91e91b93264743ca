/*
 * cg_elementwise.c — kernels for K_UNARY and K_BINARY ops, alone or fused into chains, and
 * broadcast copies.
 *
 * One thread per element of the index space (the members' common output shape) in a grid-stride
 * loop. A chain (CgChain) computes its members in schedule order, each in a block that binds its
 * operands to `a` and `b` and the attribute `alpha` and evaluates the op table's `body` into a
 * local v<id>; an operand from outside the chain is loaded once per element. Operands broadcast
 * (numpy rules, batch dims included): one with the index space's shape is read at i, a
 * one-element operand at 0, any other through per-dimension strides that are 0 on broadcast
 * dimensions; the index is decomposed once for all such operands. Members whose output someone
 * outside the chain reads are written at i; the others never touch memory. A single node is a
 * chain of one. Every extent is a constant or an expression of the kernel argument B, so one
 * kernel serves every batch. Values live in registers in the compute type R: fp16/bf16 operands
 * are converted when loaded and fp16/bf16 results rounded when stored (cg_ld, cg_st), so a Cast
 * between float types is the body `a`. Precondition: any other float result has operands of its
 * own dtype.
 */
#include <stdio.h>
#include <string.h>

#include "codegen/cg_internal.h"

typedef enum { IX_DIRECT, IX_SCALAR, IX_STRIDED } IndexKind;

static IndexKind index_kind(const Shape *x, const Shape *y)
{
	if (ir_shape_eq(x, y))
		return IX_DIRECT;
	if (!ir_has_batch(x) && ir_numel(x) == 1)
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

/* `long long q<k> = 0, ...;` then idx decomposed over y's dims, innermost first: coordinate c
 * feeds every strided operand k with a stride there (the outermost needs no modulo) */
static void emit_decompose(CgBuf *d, const char *ind, const char *idx, const Shape *y, int nx,
			   const Value *const *x)
{
	int any = 0;
	for (int k = 0; k < nx; k++)
		if (index_kind(&x[k]->shape, y) == IX_STRIDED && any++)
			cg_printf(d, ", q%d = 0", k);
		else if (index_kind(&x[k]->shape, y) == IX_STRIDED)
			cg_printf(d, "%slong long q%d = 0", ind, k);
	if (!any)
		return;
	cg_printf(d, ";\n%s{\n%s\tlong long t = %s;\n", ind, ind, idx);
	for (int j = y->rank - 1; j >= 0; j--) {
		const char *dim = cg_dim(y->d[j], "B");
		int used = 0;
		for (int k = 0; k < nx; k++)
			used |= index_kind(&x[k]->shape, y) == IX_STRIDED && bcast_stride(&x[k]->shape, y, j);
		if (!used) {
			if (j > 0)
				cg_printf(d, "%s\tt /= %s;\n", ind, dim);
			continue;
		}
		cg_printf(d, "%s\t{ const long long c = %s%s;", ind, j > 0 ? "t % " : "t", j > 0 ? dim : "");
		for (int k = 0; k < nx; k++) {
			const char *st = index_kind(&x[k]->shape, y) == IX_STRIDED ? bcast_stride(&x[k]->shape, y, j) : NULL;
			if (st)
				cg_printf(d, " q%d += c * %s;", k, st);
		}
		cg_printf(d, "%s%s%s }\n", j > 0 ? " t /= " : "", j > 0 ? dim : "", j > 0 ? ";" : "");
	}
	cg_printf(d, "%s}\n", ind);
}

/* `x3[q3]`, `x0[i]`, `x1[0]` */
static const char *load_expr(const Shape *x, const Shape *y, int k, const char *idx)
{
	static char ring[4][64];
	static int at;
	at = (at + 1) % 4;
	IndexKind kind = index_kind(x, y);
	if (kind == IX_STRIDED)
		snprintf(ring[at], sizeof ring[at], "x%d[q%d]", k, k);
	else
		snprintf(ring[at], sizeof ring[at], "x%d[%s]", k, kind == IX_DIRECT ? idx : "0");
	return ring[at];
}

static const char *arg_name(char kind, int i)
{
	static char names[2][CG_MAX_ARGS][16];
	char *s = names[kind == 'y'][i];
	snprintf(s, 16, "%c%d", kind, i);
	return s;
}

/* ---- chains ---- */

static int dtype_ok(CgEmit *e, const Node *n)
{
	for (int i = n->op == OP_WHERE; i < n->nin; i++) /* Where's mask is bool */
		if (n->in[i]->dt != n->out[0]->dt && ir_dt_is_float(n->out[0]->dt))
			return cg_fail(e->err, e->errlen, "codegen: node '%s' (%s): operand %d is %s, "
					   "the result %s (insert a Cast)", n->name, ir_ops[n->op].name, i,
				       ir_dt_name(n->in[i]->dt), ir_dt_name(n->out[0]->dt));
	return 0;
}

static int member_of(const CgChain *c, const Value *v)
{
	for (int i = 0; i < c->n; i++)
		if (v->def == c->nodes[i])
			return 1;
	return 0;
}

static int ext_index(const CgChain *c, const Value *v)
{
	for (int k = 0; k < c->next; k++)
		if (c->ext[k] == v)
			return k;
	return -1;
}

int cg_chain_init(CgEmit *e, CgChain *c, const Node *const *nodes, int n, const Shape *dom)
{
	const char *map_body = c->map_body;
	memset(c, 0, sizeof *c);
	c->map_body = map_body;
	c->nodes = nodes;
	c->n = n;
	c->dom = dom;
	for (int i = 0; i < n; i++) {
		const Node *m = nodes[i];
		DLCC_ASSERT((ir_ops[m->op].body || c->map_body || m->op == OP_CAST || m->op == OP_WHERE) && m->nin <= 3);
		if (!c->map_body && m->op != OP_CAST && dtype_ok(e, m) < 0)
			return -1;
		for (int k = 0; k < m->nin; k++)
			if (!member_of(c, m->in[k]) && ext_index(c, m->in[k]) < 0)
				c->ext[c->next++] = m->in[k];
		if (!e->plan->fu.internal[m->out[0]->id]) {
			if (!ir_shape_eq(&m->out[0]->shape, dom)) /* passes/fuse.c: a broadcast member stays inside */
				return cg_fail(e->err, e->errlen, "codegen: node '%s': a fused result of a smaller shape "
						   "than its kernel's is read outside it", m->name);
			c->out[c->nout++] = m->out[0];
		}
	}
	DLCC_ASSERT(c->next + c->nout < CG_MAX_ARGS - 4);
	return 0;
}

void cg_chain_args(CgKernel *k, const CgChain *c)
{
	for (int i = 0; i < c->nout; i++)
		cg_arg_out(k, arg_name('y', i), c->out[i]);
	for (int i = 0; i < c->next; i++)
		cg_arg_in(k, arg_name('x', i), c->ext[i]);
}

static void emit_member(CgBuf *d, const CgChain *c, const Node *m, const char *ind)
{
	static const char *opn[] = {"a", "b", "c"};
	const Value *y = m->out[0];
	cg_printf(d, "%s%s v%d;\n%s{\n", ind, cg_ctype(y->dt), y->id, ind);
	for (int k = 0; k < m->nin; k++) {
		const Value *x = m->in[k];
		int j = ext_index(c, x);
		char src[32];
		snprintf(src, sizeof src, j >= 0 ? "a%d" : "v%d", j >= 0 ? j : x->id);
		cg_printf(d, "%s\tconst %s %s = %s;\n", ind, cg_ctype(x->dt), opn[k], src);
	}
	/* a Cast in a chain is between float types (passes/fuse.c): the value is rounded to a half
	 * type here (members after it read the rounded value) and converted again at the store */
	const char *body = c->map_body ? c->map_body
			   : m->op == OP_CAST ? (ir_dt_is_half(y->dt) ? cg_ld(y->dt, cg_st(y->dt, "a")) : "a")
			   : m->op == OP_WHERE ? "a ? b : c" : ir_ops[m->op].body;
	if (!c->map_body)
		cg_emit_act_attrs(d, m, body);
	cg_printf(d, "%s\tv%d = (%s)(%s);\n%s}\n", ind, y->id, cg_ctype(y->dt), body, ind);
}

void cg_chain_body(CgEmit *e, const CgChain *c, const char *idx, const char *ind, const char *result,
		   const Value *v)
{
	CgBuf *d = &e->dev;
	emit_decompose(d, ind, idx, c->dom, c->next, c->ext);
	for (int k = 0; k < c->next; k++)
		cg_printf(d, "%sconst %s a%d = %s;\n", ind, cg_ctype(c->ext[k]->dt), k,
			  cg_ld(c->ext[k]->dt, load_expr(&c->ext[k]->shape, c->dom, k, idx)));
	for (int i = 0; i < c->n; i++)
		emit_member(d, c, c->nodes[i], ind);
	for (int i = 0; i < c->nout; i++) {
		char v[32];
		snprintf(v, sizeof v, "v%d", c->out[i]->id);
		cg_printf(d, "%sy%d[%s] = %s;\n", ind, i, idx, cg_st(c->out[i]->dt, v));
	}
	if (result)
		cg_printf(d, "%s%s = v%d;\n", ind, result, v->id);
}

/* the kernel of a chain over its whole index space (map_body: see CgChain) */
static int emit_chain_kernel(CgEmit *e, const Node *n, const char *what, const Node *const *nodes, int cnt,
			     const char *map_body)
{
	CgChain c = {.map_body = map_body};
	CgKernel k;
	const Shape *dom = &nodes[cnt - 1]->out[0]->shape; /* (a first member may broadcast into it) */
	if (cg_chain_init(e, &c, nodes, cnt, dom) < 0)
		return -1;
	cg_kernel_begin(e, &k, n, what);
	if (!n)
		snprintf(k.name, sizeof k.name, "k%d_fused_ew", e->nkernels);
	cg_chain_args(&k, &c);
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%s)", cg_prod(dom, 0, dom->rank, "b"));
	cg_kernel_open(e, &k);
	cg_printf(&e->dev, "\tconst long long n = %s;\n\t%s {\n", cg_prod(dom, 0, dom->rank, "B"), cg_loop("i", "n"));
	cg_chain_body(e, &c, "i", "\t\t", NULL, NULL);
	cg_puts(&e->dev, "\t}\n");
	cg_kernel_close(e, &k);
	return 0;
}

int cg_emit_elementwise(CgEmit *e, const Node *n)
{
	return emit_chain_kernel(e, n, NULL, &n, 1, NULL);
}

int cg_emit_map(CgEmit *e, const Node *n, const char *body)
{
	return emit_chain_kernel(e, n, NULL, &n, 1, body);
}

int cg_emit_ew_group(CgEmit *e, const CgGroup *gr)
{
	return emit_chain_kernel(e, NULL, cg_group_comment(gr), gr->nodes, gr->n, NULL);
}

int cg_emit_broadcast(CgEmit *e, const Node *n, const char *what, const Value *y, const Value *x)
{
	CgKernel k;
	cg_kernel_begin(e, &k, n, what);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x0", x);
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%s)", cg_prod(&y->shape, 0, y->shape.rank, "b"));
	cg_kernel_open(e, &k);
	cg_printf(&e->dev, "\tconst long long n = %s;\n\t%s {\n", cg_prod(&y->shape, 0, y->shape.rank, "B"),
		  cg_loop("i", "n"));
	emit_decompose(&e->dev, "\t\t", "i", &y->shape, 1, &x);
	cg_printf(&e->dev, "\t\ty[i] = %s;\n\t}\n",
		  y->dt == x->dt ? load_expr(&x->shape, &y->shape, 0, "i")
				 : cg_st(y->dt, cg_ld(x->dt, load_expr(&x->shape, &y->shape, 0, "i"))));
	cg_kernel_close(e, &k);
	return 0;
}
