/*
 * dsl_ops.c — operator calls: `relu(h)`, `gemm(x, w, b, transB = 1)`, `reshape(h, [N, -1])`.
 *
 * Every differentiable op of ir/ops.def can be called; the name matches the op's IR name with
 * case and underscores ignored (`log_softmax`, `LogSoftmax`, `matmul`). Positional arguments are
 * the op's tensor inputs (a number becomes a scalar constant of the first tensor's dtype);
 * keyword arguments are its attributes. The table below gives, per op, its attributes in IR
 * normal form: their order, kind and default, so that a .dl call builds exactly the node the
 * ONNX importer builds (explicit defaults, non-negative axes, sorted reduce axes, Reshape
 * targets in IR dims with -1 inferred and N symbolic). An op with a list attribute first also
 * takes that list as its last positional argument (`transpose(x, [1, 0])`). An op that has no
 * row here (a new op) takes its keyword arguments verbatim, so adding Conv or LayerNorm to
 * ops.def makes `conv(x, w, strides = [1, 1])` work; a row only adds defaults and checks.
 * Sqrt, Exp, Log and Tanh of plain numbers are computed (`1 / sqrt(fan_in)`).
 */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "frontend/dsl_imp.h"

/* attribute kinds: f float, b 0 or 1, a axis in [-r, r), x axis in [-r, r], A axes (sorted;
 * default all), p permutation (default reversed), s target shape (-1 inferred), S target shape */
typedef struct {
	const char *name;
	char kind;
	double dflt;
	int required;
} AttrSpec;

typedef struct {
	Op op;
	AttrSpec a[4];
} OpSpec;

static const OpSpec specs[] = {
	{OP_GEMM, {{"alpha", 'f', 1}, {"beta", 'f', 1}, {"transA", 'b', 0}, {"transB", 'b', 0}}},
	{OP_LEAKY_RELU, {{"alpha", 'f', 0.01}}},
	{OP_SOFTMAX, {{"axis", 'a', -1}}},
	{OP_LOG_SOFTMAX, {{"axis", 'a', -1}}},
	{OP_FLATTEN, {{"axis", 'x', 1}}},
	{OP_TRANSPOSE, {{"perm", 'p'}}},
	{OP_REDUCE_SUM, {{"axes", 'A'}, {"keepdims", 'b', 1}}},
	{OP_REDUCE_MEAN, {{"axes", 'A'}, {"keepdims", 'b', 1}}},
	{OP_RESHAPE, {{"shape", 's', 0, 1}}},
	{OP_EXPAND, {{"shape", 'S', 0, 1}}},
	{OP_MATMUL}, {OP_ADD}, {OP_SUB}, {OP_MUL}, {OP_DIV}, {OP_RELU}, {OP_SIGMOID}, {OP_TANH},
	{OP_EXP}, {OP_LOG}, {OP_SQRT}, {OP_NEG}, {OP_IDENTITY}, {OP_SOFTMAX_CROSS_ENTROPY},
};
#define NSPECS ((int)(sizeof specs / sizeof *specs))

static const char *const grad_rule[OP_COUNT] = {
#define X(e, nm, onnx, mi, ma, no, shape, grad, ...) [OP_##e] = #grad,
#include "ir/ops.def"
#undef X
};

/* equal ignoring case and underscores */
static int name_eq(const char *a, const char *b)
{
	for (;; a++, b++) {
		while (*a == '_')
			a++;
		while (*b == '_')
			b++;
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 0;
		if (!*a)
			return 1;
	}
}

int dsl_find_op(const char *name)
{
	for (int i = 0; i < OP_COUNT; i++)
		if (name_eq(name, ir_ops[i].name) && strcmp(grad_rule[i], "none") && strcmp(grad_rule[i], "zero"))
			return i;
	return -1;
}

static const OpSpec *find_spec(int op)
{
	for (int i = 0; i < NSPECS; i++)
		if ((int)specs[i].op == op)
			return &specs[i];
	return NULL;
}

/* ---- arguments ---- */

typedef struct {
	DVal v[8];
	int tok[8], n;
	const char *kw[8];
	DVal kv[8];
	int ktok[8], nk;
} Args;

static void parse_args(Dsl *d, Args *a, int name_tok)
{
	dsl_expect(d, "(");
	while (!dsl_is(d, ")")) {
		Tok *t = dsl_tok(d, d->pos), *nx = dsl_tok(d, d->pos + 1);
		int kw = t->k == TK_IDENT && nx->k == TK_PUNCT && !strcmp(nx->text, "=");
		if ((kw ? a->nk : a->n) == 8)
			dsl_fail(d, d->pos, "too many arguments (at most 8)");
		if (kw) {
			for (int i = 0; i < a->nk; i++)
				if (!strcmp(a->kw[i], t->text))
					dsl_fail(d, d->pos, "attribute '%s' given twice", t->text);
			a->ktok[a->nk] = d->pos;
			a->kw[a->nk] = t->text;
			d->pos += 2;
			if (dsl_tok(d, d->pos)->k == TK_STRING) /* a string attribute: mode = "reflect" */
				a->kv[a->nk++] = (DVal){.k = DV_STR, .s = dsl_tok(d, d->pos++)->text};
			else
				a->kv[a->nk++] = dsl_expr(d);
		} else {
			if (a->nk)
				dsl_fail(d, d->pos, "a positional argument after keyword arguments");
			a->tok[a->n] = d->pos;
			a->v[a->n++] = dsl_expr(d);
		}
		if (!dsl_accept(d, ","))
			break;
	}
	dsl_expect(d, ")");
}

static int number_fn(int op, double x, double *out)
{
	switch (op) {
	case OP_SQRT: *out = sqrt(x); return 1;
	case OP_EXP: *out = exp(x); return 1;
	case OP_LOG: *out = log(x); return 1;
	case OP_TANH: *out = tanh(x); return 1;
	default: return 0;
	}
}

/* ---- attribute values ---- */

static int64_t whole(Dsl *d, int tok, const DVal *v, const char *what)
{
	if (v->k != DV_NUM || !v->is_int || v->nb || fabs(v->num) > 4e15)
		dsl_fail(d, tok, "%s must be a whole number", what);
	return (int64_t)v->num;
}

static int64_t axis_of(Dsl *d, int tok, const DVal *v, int rank, int upto)
{
	int64_t a = whole(d, tok, v, "an axis");
	if (a < -rank || a >= rank + upto)
		dsl_fail(d, tok, "axis %lld is out of range for a tensor of rank %d", (long long)a, rank);
	return a < 0 ? a + rank : a;
}

#define INFER INT64_MIN /* a -1 entry of a Reshape target */

/* A list (or one number) of whole numbers into out[]; returns the count. dims: the entries are
 * dimensions (k * N gives -k; -1 gives INFER when infer is set; other negatives are errors);
 * dims 2: k * N gives -k, other numbers are kept as they are (attributes of ops without a row). */
static int int_list(Dsl *d, int tok, const DVal *v, int64_t *out, int dims, int infer)
{
	const DVal *items = v->k == DV_LIST ? v->items : v;
	int n = v->k == DV_LIST ? v->n : 1;
	if (n > IR_MAX_RANK)
		dsl_fail(d, tok, "at most %d entries", IR_MAX_RANK);
	for (int i = 0; i < n; i++) {
		const DVal *e = &items[i];
		if (dims && e->k == DV_NUM && e->nb > 0 && e->num == 0) {
			out[i] = -e->nb;
			continue;
		}
		out[i] = whole(d, tok, e, "each entry");
		if (dims && out[i] == -1 && infer)
			out[i] = INFER;
		else if (dims == 1 && out[i] < 0)
			dsl_fail(d, tok, "bad dimension %lld in a target shape (a size, N, k * N%s)",
				 (long long)out[i], infer ? " or -1" : "");
	}
	return n;
}

static void numel_sym(const Shape *s, int64_t *coef, int *pow)
{
	*coef = 1;
	*pow = 0;
	for (int i = 0; i < s->rank; i++) {
		*coef *= s->d[i] < 0 ? -s->d[i] : s->d[i];
		*pow += s->d[i] < 0;
	}
}

/* Reshape targets: -1 takes what is left of the input's element count */
static void infer_target(Dsl *d, int tok, const Shape *in, int64_t *t, int n)
{
	int at = -1;
	for (int i = 0; i < n; i++) {
		if (t[i] != INFER)
			continue;
		if (at >= 0)
			dsl_fail(d, tok, "only one entry of a target shape may be -1");
		at = i;
		t[i] = 1;
	}
	if (at < 0)
		return;
	Shape k = ir_shape(n, t);
	int64_t xc, kc;
	int xp, kp;
	numel_sym(in, &xc, &xp);
	numel_sym(&k, &kc, &kp);
	if (kc == 0 || xc % kc || xp - kp < 0 || xp - kp > 1) {
		char s[128];
		dsl_fail(d, tok, "cannot infer the -1 entry: the input is %s", ir_shape_str(in, s, sizeof s));
	}
	t[at] = xp > kp ? -(xc / kc) : xc / kc;
}

static void set_spec_attr(Dsl *d, Node *nd, const AttrSpec *s, const DVal *v, int tok, int rank)
{
	int64_t l[IR_MAX_RANK];
	int n;
	switch (s->kind) {
	case 'f':
		if (v->k != DV_NUM || v->nb)
			dsl_fail(d, tok, "attribute %s must be a number", s->name);
		ir_set_f(d->g, nd, s->name, v->num);
		return;
	case 'b': {
		int64_t b = whole(d, tok, v, s->name);
		if (b != 0 && b != 1)
			dsl_fail(d, tok, "attribute %s must be 0 or 1", s->name);
		ir_set_i(d->g, nd, s->name, b);
		return;
	}
	case 'a':
	case 'x': ir_set_i(d->g, nd, s->name, axis_of(d, tok, v, rank, s->kind == 'x')); return;
	case 'A': {
		int64_t m = 0;
		n = int_list(d, tok, v, l, 0, 0);
		for (int i = 0; i < n; i++)
			m |= 1LL << axis_of(d, tok, &(DVal){DV_NUM, (double)l[i], 0, 1}, rank, 0);
		n = 0;
		for (int i = 0; i < rank; i++)
			if (m & (1LL << i))
				l[n++] = i;
		ir_set_ints(d->g, nd, s->name, n, l);
		return;
	}
	case 'p':
		n = int_list(d, tok, v, l, 0, 0);
		for (int i = 0; i < n; i++)
			l[i] = axis_of(d, tok, &(DVal){DV_NUM, (double)l[i], 0, 1}, rank, 0);
		ir_set_ints(d->g, nd, s->name, n, l);
		return;
	default: /* s, S */
		n = int_list(d, tok, v, l, 1, s->kind == 's');
		if (s->kind == 's')
			infer_target(d, tok, &nd->in[0]->shape, l, n);
		ir_set_ints(d->g, nd, s->name, n, l);
		return;
	}
}

static void set_default(Dsl *d, Node *nd, const AttrSpec *s, int rank, int name_tok)
{
	int64_t l[IR_MAX_RANK];
	if (s->required)
		dsl_fail(d, name_tok, "%s needs the attribute %s", ir_ops[nd->op].name, s->name);
	switch (s->kind) {
	case 'f': ir_set_f(d->g, nd, s->name, s->dflt); return;
	case 'b': ir_set_i(d->g, nd, s->name, (int64_t)s->dflt); return;
	case 'a': ir_set_i(d->g, nd, s->name, rank + (int64_t)s->dflt); return;
	case 'x': ir_set_i(d->g, nd, s->name, (int64_t)s->dflt); return;
	default: /* A: every axis; p: reversed */
		for (int i = 0; i < rank; i++)
			l[i] = s->kind == 'A' ? i : rank - 1 - i;
		ir_set_ints(d->g, nd, s->name, rank, l);
	}
}

static void set_verbatim(Dsl *d, Node *nd, const char *name, const DVal *v, int tok)
{
	int64_t l[IR_MAX_RANK];
	if (v->k == DV_NUM && !v->nb && v->is_int)
		ir_set_i(d->g, nd, name, (int64_t)v->num);
	else if (v->k == DV_NUM && !v->nb)
		ir_set_f(d->g, nd, name, v->num);
	else if (v->k == DV_LIST) {
		int n = int_list(d, tok, v, l, 2, 0);
		ir_set_ints(d->g, nd, name, n, l);
	} else if (v->k == DV_STR) {
		ir_set_s(d->g, nd, name, v->s);
	} else {
		dsl_fail(d, tok, "attribute %s must be a number, a string or a list of whole numbers", name);
	}
}

static void set_attrs(Dsl *d, Node *nd, const OpSpec *sp, Args *a, int name_tok)
{
	int rank = nd->nin ? nd->in[0]->shape.rank : 0;
	if (!sp) {
		for (int k = 0; k < a->nk; k++)
			set_verbatim(d, nd, a->kw[k], &a->kv[k], a->ktok[k]);
		return;
	}
	for (int k = 0; k < a->nk; k++) {
		int i = 0;
		while (i < 4 && sp->a[i].name && !name_eq(sp->a[i].name, a->kw[k]))
			i++;
		if (i == 4 || !sp->a[i].name)
			dsl_fail(d, a->ktok[k], "%s has no attribute '%s'", ir_ops[nd->op].name, a->kw[k]);
	}
	for (int i = 0; i < 4 && sp->a[i].name; i++) {
		int k = 0;
		while (k < a->nk && !name_eq(sp->a[i].name, a->kw[k]))
			k++;
		if (k < a->nk)
			set_spec_attr(d, nd, &sp->a[i], &a->kv[k], a->ktok[k], rank);
		else
			set_default(d, nd, &sp->a[i], rank, name_tok);
	}
}

/* ---- the call ---- */

/* a trailing positional list is the op's first attribute when that one is a list */
static void list_as_attr(Dsl *d, const OpSpec *sp, Args *a)
{
	if (!sp || !a->n || a->v[a->n - 1].k != DV_LIST || !sp->a[0].name || !strchr("ApsS", sp->a[0].kind))
		return;
	for (int k = 0; k < a->nk; k++)
		if (name_eq(a->kw[k], sp->a[0].name))
			dsl_fail(d, a->ktok[k], "attribute '%s' given twice", a->kw[k]);
	a->n--;
	a->kw[a->nk] = sp->a[0].name;
	a->kv[a->nk] = a->v[a->n];
	a->ktok[a->nk++] = a->tok[a->n];
}

static Value *input_value(Dsl *d, Args *a, int i, DType dt)
{
	char buf[80];
	if (a->v[i].k == DV_TENSOR)
		return a->v[i].t;
	if (a->v[i].k == DV_NUM && !a->v[i].nb)
		return dsl_const_scalar(d, a->tok[i], dt, a->v[i].num);
	dsl_fail(d, a->tok[i], "expected a tensor but found %s", dsl_kind_name(&a->v[i], buf, sizeof buf));
}

static void check_arity(Dsl *d, int op, int n, int name_tok)
{
	const OpInfo *oi = &ir_ops[op];
	if (n >= oi->min_in && n <= oi->max_in)
		return;
	if (oi->min_in == oi->max_in)
		dsl_fail(d, name_tok, "wrong argument count: %s takes %d tensor argument%s, got %d", oi->name,
			 oi->min_in, oi->min_in == 1 ? "" : "s", n);
	dsl_fail(d, name_tok, "wrong argument count: %s takes %d to %d tensor arguments, got %d", oi->name,
		 oi->min_in, oi->max_in, n);
}

DVal dsl_call_op(Dsl *d, int op, int name_tok)
{
	Args a = {0};
	double x;
	parse_args(d, &a, name_tok);
	if (a.n == 1 && !a.nk && a.v[0].k == DV_NUM && !a.v[0].nb && number_fn(op, a.v[0].num, &x))
		return dsl_num(x, 0);
	const OpSpec *sp = find_spec(op);
	list_as_attr(d, sp, &a);
	check_arity(d, op, a.n, name_tok);
	DType dt = DT_F32;
	for (int i = 0; i < a.n; i++)
		if (a.v[i].k == DV_TENSOR) {
			dt = a.v[i].t->dt;
			break;
		}
	Value *in[8];
	for (int i = 0; i < a.n; i++)
		in[i] = input_value(d, &a, i, dt);
	Node *nd = ir_begin(d->g, (Op)op, NULL, a.n, in);
	set_attrs(d, nd, sp, &a, name_tok);
	if (ir_finish(d->g, nd) < 0) {
		const char *why = strstr(d->g->err, "): ");
		dsl_fail(d, name_tok, "%s: %s", ir_ops[op].name, why ? why + 3 : d->g->err);
	}
	return dsl_tensor(nd->out[0]);
}

/* ---- for the printer (ir/emit_dl.c) ---- */

/* 1 if a .dl call that leaves attribute a out gives it this value (so it need not be written) */
int dsl_attr_is_default(const Node *n, const Attr *a)
{
	const OpSpec *sp = find_spec(n->op);
	int rank = n->nin ? n->in[0]->shape.rank : 0;
	for (int i = 0; sp && i < 4 && sp->a[i].name; i++) {
		const AttrSpec *s = &sp->a[i];
		if (strcmp(s->name, a->name) || s->required)
			continue;
		switch (s->kind) {
		case 'f': return a->kind == A_FLOAT && a->f == s->dflt;
		case 'b':
		case 'x': return a->kind == A_INT && a->i == (int64_t)s->dflt;
		case 'a': return a->kind == A_INT && a->i == rank + (int64_t)s->dflt;
		default:
			if (a->kind != A_INTS || a->n != rank)
				return 0;
			for (int k = 0; k < rank; k++)
				if (a->ints[k] != (s->kind == 'A' ? k : rank - 1 - k))
					return 0;
			return 1;
		}
	}
	return 0;
}

/* 1 if the op has a row in the table (its attributes are checked and normalised) */
int dsl_op_has_spec(int op) { return find_spec(op) != NULL; }
