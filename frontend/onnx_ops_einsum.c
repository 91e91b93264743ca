/*
 * onnx_ops_einsum.c — Einsum, lowered at import onto ReduceSum, Transpose, Reshape and MatMul.
 *
 * Accepted: one or two operands, one letter per axis, no repeated letter within an operand or
 * the output, no ellipsis; an implicit output (no "->") is the letters that occur once, in
 * alphabetical order. Anything else (diagonals "ii->i", "...", three operands) is refused with
 * the equation in the message. The lowering:
 *   1. letters of one operand that appear nowhere else are summed out (ReduceSum);
 *   2. one operand: a Transpose into the output's order;
 *   3. two operands: the letters are batch (in A, B and the output), contracted (A and B),
 *      free in A, free in B. A is transposed to [batch, freeA, contracted] and reshaped to
 *      [batch, M, K], B to [batch, contracted, freeB] and [batch, K, N]; one MatMul; the
 *      result reshaped to [batch, freeA, freeB] and transposed into the output's order.
 * So "ij,jk->ik", "bij,bjk->bik", "bhqd,bhkd->bhqk", "bhqk,bhkd->bhqd", "i,i", "ij->ji",
 * "ij->i" all become a MatMul or a Transpose/ReduceSum, differentiable through their rules.
 */
#include <string.h>

#include "frontend/onnx_imp.h"

typedef struct {
	NodeCx *x;
	const char *eq;
	int part;
} Ein;

typedef struct {
	Value *v;
	char l[IR_MAX_RANK + 1]; /* one letter per axis */
} Term;

static int refuse(Ein *e, const char *why)
{
	return onnx_fail(e->x->c, "%s: equation '%s' is not supported (%s; supported: one or two "
			 "operands, each letter once per operand, no '...')", e->x->who, e->eq, why);
}

static Value *fin(Ein *e, Op op, Value *v, const char *attr, int n, const int64_t *ints)
{
	char buf[300];
	if (!v)
		return NULL;
	snprintf(buf, sizeof buf, "%s/einsum%d", onnx_node_label(e->x->c, e->x->n), e->part++);
	Node *nd = ir_begin(e->x->c->g, op, ir_strdup(e->x->c->g, buf), 1, &v);
	ir_set_ints(e->x->c->g, nd, attr, n, ints);
	if (op == OP_REDUCE_SUM)
		ir_set_i(e->x->c->g, nd, "keepdims", 0);
	if (ir_finish(e->x->c->g, nd) < 0) {
		onnx_fail(e->x->c, "%s", e->x->c->g->err);
		return NULL;
	}
	return nd->out[0];
}

/* ---- parsing ---- */

static int parse_term(Ein *e, const char *s, size_t len, char *out)
{
	if (len > IR_MAX_RANK)
		return refuse(e, "too many axes");
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')))
			return refuse(e, ch == '.' ? "ellipsis" : "a character that is not a letter");
		if (memchr(s, ch, i))
			return refuse(e, "a letter repeated within one term (a diagonal)");
		out[i] = ch;
	}
	out[len] = 0;
	return 0;
}

/* the implicit output: letters occurring once, sorted */
static void implicit_out(const char *a, const char *b, char *out)
{
	int k = 0;
	for (char ch = 'A'; ch <= 'z'; ch++) {
		int cnt = (strchr(a, ch) != NULL) + (b && strchr(b, ch) != NULL);
		if (ch && cnt == 1 && ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')))
			out[k++] = ch;
	}
	out[k] = 0;
}

static int parse(Ein *e, const char *eq, char *ta, char *tb, int *nops, char *to)
{
	char s[128];
	size_t k = 0;
	for (const char *p = eq; *p && k < sizeof s - 1; p++)
		if (*p != ' ')
			s[k++] = *p;
	s[k] = 0;
	char *arrow = strstr(s, "->"), *lhs_end = arrow ? arrow : s + k, *comma = memchr(s, ',', lhs_end - s);
	*nops = comma ? 2 : 1;
	if (comma && memchr(comma + 1, ',', lhs_end - comma - 1))
		return refuse(e, "more than two operands");
	if (parse_term(e, s, (comma ? comma : lhs_end) - s, ta) < 0 ||
	    (comma && parse_term(e, comma + 1, lhs_end - comma - 1, tb) < 0))
		return -1;
	if (!arrow) {
		implicit_out(ta, comma ? tb : NULL, to);
		return 0;
	}
	if (parse_term(e, arrow + 2, strlen(arrow + 2), to) < 0)
		return -1;
	for (const char *p = to; *p; p++)
		if (!strchr(ta, *p) && !(comma && strchr(tb, *p)))
			return refuse(e, "an output letter that no operand has");
	return 0;
}

/* ---- lowering ---- */

/* sum out the axes of t whose letters are in neither `other` nor `out` */
static int sum_private(Ein *e, Term *t, const char *other, const char *out)
{
	int64_t axes[IR_MAX_RANK];
	int n = 0, k = 0;
	char keep[IR_MAX_RANK + 1];
	for (int i = 0; t->l[i]; i++) {
		if ((other && strchr(other, t->l[i])) || strchr(out, t->l[i]))
			keep[k++] = t->l[i];
		else
			axes[n++] = i;
	}
	keep[k] = 0;
	if (n == 0)
		return 0;
	t->v = fin(e, OP_REDUCE_SUM, t->v, "axes", n, axes);
	strcpy(t->l, keep);
	return t->v ? 0 : -1;
}

/* transpose t so that its letters read `order` (a permutation of them) */
static int permute(Ein *e, Term *t, const char *order)
{
	int64_t perm[IR_MAX_RANK];
	int r = (int)strlen(order), same = 1;
	for (int i = 0; i < r; i++) {
		perm[i] = strchr(t->l, order[i]) - t->l;
		same &= perm[i] == i;
	}
	if (!same)
		t->v = fin(e, OP_TRANSPOSE, t->v, "perm", r, perm);
	strcpy(t->l, order);
	return t->v ? 0 : -1;
}

/* product of the extents of axes [from, to) of s, as an IR dim (-k: k·N); -1 on two batches */
static int group(Ein *e, const Shape *s, int from, int to, int64_t *out)
{
	int64_t c = 1;
	int sym = 0;
	for (int i = from; i < to; i++) {
		sym += s->d[i] < 0;
		c *= s->d[i] < 0 ? -s->d[i] : s->d[i];
	}
	if (sym > 1)
		return refuse(e, "the batch dimension would be merged with another batch dimension");
	*out = sym ? -c : c;
	return 0;
}

static Value *reshape(Ein *e, Value *v, const Shape *s)
{
	return v && !ir_shape_eq(&v->shape, s) ? fin(e, OP_RESHAPE, v, "shape", s->rank, s->d) : v;
}

/* [batch (nb), g1, g2] of t's axes as a rank nb+2 shape */
static int as_matrix(Ein *e, Term *t, int nb, int n1, Shape *s)
{
	const Shape *x = &t->v->shape;
	*s = *x;
	s->rank = nb + 2;
	return group(e, x, nb, nb + n1, &s->d[nb]) < 0 || group(e, x, nb + n1, x->rank, &s->d[nb + 1]) < 0 ? -1 : 0;
}

static void add(char *s, char c)
{
	size_t n = strlen(s);
	s[n] = c;
	s[n + 1] = 0;
}

static Value *contract(Ein *e, Term *a, Term *b, const char *out)
{
	char bat[IR_MAX_RANK + 1] = "", fa[IR_MAX_RANK + 1] = "", fb[IR_MAX_RANK + 1] = "", ct[IR_MAX_RANK + 1] = "";
	char oa[3 * IR_MAX_RANK + 1], ob[3 * IR_MAX_RANK + 1], res[3 * IR_MAX_RANK + 1];
	for (const char *p = a->l; *p; p++)
		add(strchr(b->l, *p) ? (strchr(out, *p) ? bat : ct) : fa, *p);
	for (const char *p = b->l; *p; p++)
		if (!strchr(a->l, *p))
			add(fb, *p);
	snprintf(oa, sizeof oa, "%s%s%s", bat, fa, ct);
	snprintf(ob, sizeof ob, "%s%s%s", bat, ct, fb);
	int nb = (int)strlen(bat);
	Shape sa, sb;
	if (permute(e, a, oa) < 0 || permute(e, b, ob) < 0 || as_matrix(e, a, nb, (int)strlen(fa), &sa) < 0 ||
	    as_matrix(e, b, nb, (int)strlen(ct), &sb) < 0)
		return NULL;
	Value *ma = reshape(e, a->v, &sa), *mb = reshape(e, b->v, &sb);
	Value *y = ma && mb ? ir_op2(e->x->c->g, OP_MATMUL, ma, mb) : NULL;
	if (!y) {
		onnx_fail(e->x->c, "%s: equation '%s': %s", e->x->who, e->eq, e->x->c->g->err);
		return NULL;
	}
	Shape rs = {0, {0}};
	for (int i = 0; i < nb + (int)strlen(fa); i++)
		rs.d[rs.rank++] = a->v->shape.d[i];
	for (int i = nb + (int)strlen(ct); i < b->v->shape.rank; i++)
		rs.d[rs.rank++] = b->v->shape.d[i];
	Term r = {reshape(e, y, &rs), ""};
	snprintf(res, sizeof res, "%s%s%s", bat, fa, fb);
	strcpy(r.l, res);
	return r.v && permute(e, &r, out) == 0 ? r.v : NULL;
}

static int equation(NodeCx *x, char *buf, size_t len)
{
	const Onnx__AttributeProto *a = onnx_attr(x->n, "equation");
	if (!a || a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
		return onnx_fail(x->c, "%s: the string attribute 'equation' is missing", x->who);
	snprintf(buf, len, "%.*s", (int)a->s.len, (const char *)a->s.data);
	return 0;
}

int onnx_import_einsum(NodeCx *x)
{
	char eq[128], out[IR_MAX_RANK + 1];
	Term a = {0}, b = {0};
	int nops;
	Ein e = {x, eq, 0};
	if (equation(x, eq, sizeof eq) < 0 || parse(&e, eq, a.l, b.l, &nops, out) < 0)
		return -1;
	if (x->nin != nops)
		return refuse(&e, "the operand count differs from the node's inputs");
	if (!(a.v = onnx_value(x->c, x->in[0], x->who)) || (nops == 2 && !(b.v = onnx_value(x->c, x->in[1], x->who))))
		return -1;
	if ((int)strlen(a.l) != a.v->shape.rank || (nops == 2 && (int)strlen(b.l) != b.v->shape.rank))
		return refuse(&e, "a term's letters do not match its operand's rank");
	if (sum_private(&e, &a, nops == 2 ? b.l : NULL, out) < 0 || (nops == 2 && sum_private(&e, &b, a.l, out) < 0))
		return -1;
	Value *y = nops == 2 ? contract(&e, &a, &b, out) : permute(&e, &a, out) == 0 ? a.v : NULL;
	if (y && y == x->in[0]->v)
		y = ir_op1(x->c->g, OP_IDENTITY, y);
	return y && onnx_bind(x, 0, y) ? 0 : -1;
}
