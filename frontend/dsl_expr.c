/*
 * dsl_expr.c — expressions of the .dl language: numbers, names, lists, calls and infix
 * arithmetic, evaluated as they are parsed.
 *
 * Precedence, lowest first: `+ -`, then `* / @` (left-associative), then unary `-`, then atoms
 * (a number, a name, `( e )`, `[ e, ... ]`, a call). Numbers are computed at compile time, so
 * `4 * d` or `1 / sqrt(fan_in)` are plain numbers; `N` is the symbolic batch and may only be
 * scaled by a whole number (`2 * N`). An operator with a tensor on either side becomes one IR
 * node: + - * / give Add Sub Mul Div (numpy broadcasting), @ gives MatMul, unary minus Neg; a
 * number beside a tensor becomes a scalar constant of the tensor's dtype (as a PyTorch export
 * makes `h * 0.5`). Name lookup: the current scope, then the global one, then parameters by
 * their full scoped name (`block1.attn.w`, for weight tying).
 */
#include <math.h>
#include <string.h>

#include "frontend/dsl_imp.h"
#include "rt_half.h"

DVal dsl_num(double x, int is_int)
{
	DVal v = {DV_NUM};
	v.num = x;
	v.is_int = is_int;
	return v;
}

DVal dsl_tensor(Value *t)
{
	DVal v = {DV_TENSOR};
	v.t = t;
	return v;
}

const char *dsl_kind_name(const DVal *v, char *buf, size_t len)
{
	if (v->k == DV_LIST)
		return "a list";
	if (v->k == DV_NUM)
		return "a number";
	char s[128];
	snprintf(buf, len, "a tensor %s%s", ir_dt_name(v->t->dt), ir_shape_str(&v->t->shape, s, sizeof s));
	return buf;
}

/* ---- scopes ---- */

Binding *dsl_lookup(Dsl *d, Scope *s, const char *name)
{
	for (; s; s = s->parent)
		for (Binding *b = s->vars; b; b = b->next)
			if (!strcmp(b->name, name))
				return b;
	return NULL;
}

void dsl_bind(Dsl *d, Scope *s, const char *name, DVal v)
{
	for (Binding *b = s->vars; b; b = b->next)
		if (!strcmp(b->name, name)) {
			b->v = v;
			return;
		}
	Binding *b = ir_alloc(d->g, sizeof *b);
	b->name = name;
	b->v = v;
	b->next = s->vars;
	s->vars = b;
}

static Value *find_param(Dsl *d, const char *name)
{
	for (int i = 0; i < d->g->nparams; i++)
		if (!strcmp(d->g->params[i]->name, name))
			return d->g->params[i];
	return NULL;
}

/* ---- constants ---- */

Value *dsl_const_scalar(Dsl *d, int tok, DType dt, double x)
{
	unsigned char buf[8];
	int integral = x == floor(x) && isfinite(x);
	if (!ir_dt_is_float(dt) && !integral)
		dsl_fail(d, tok, "bad literal: %g is not a whole number, but the other operand is %s", x, ir_dt_name(dt));
	switch (dt) {
	case DT_F32: { float f = (float)x; memcpy(buf, &f, 4); break; }
	case DT_F64: memcpy(buf, &x, 8); break;
	case DT_F16: { uint16_t h = rt_f32_to_f16((float)x); memcpy(buf, &h, 2); break; }
	case DT_BF16: { uint16_t h = rt_f32_to_bf16((float)x); memcpy(buf, &h, 2); break; }
	case DT_I64: { int64_t i = (int64_t)x; memcpy(buf, &i, 8); break; }
	case DT_I32: { int32_t i = (int32_t)x; memcpy(buf, &i, 4); break; }
	default: buf[0] = (unsigned char)x; break;
	}
	return ir_value(d->g, V_CONST, NULL, dt, ir_shape0(), buf);
}

/* ---- numbers ---- */

static int is_whole(const DVal *v) { return v->k == DV_NUM && v->is_int && v->nb == 0; }

static DVal num_binary(Dsl *d, int tok, char op, DVal a, DVal b)
{
	if (a.nb || b.nb) {
		if (op == '*' && (is_whole(&a) || is_whole(&b))) {
			DVal r = a.nb ? a : b;
			r.nb *= (int64_t)(a.nb ? b.num : a.num);
			return r;
		}
		dsl_fail(d, tok, "the batch N can only be multiplied by a whole number (like 2 * N)");
	}
	int ints = a.is_int && b.is_int;
	switch (op) {
	case '+': return dsl_num(a.num + b.num, ints);
	case '-': return dsl_num(a.num - b.num, ints);
	case '*': return dsl_num(a.num * b.num, ints);
	case '/':
		if (b.num == 0)
			dsl_fail(d, tok, "division by zero");
		return dsl_num(a.num / b.num, ints && fmod(a.num, b.num) == 0);
	default: dsl_fail(d, tok, "'@' needs two tensors, not numbers");
	}
}

/* ---- tensors ---- */

static Op binary_op(char op)
{
	switch (op) {
	case '+': return OP_ADD;
	case '-': return OP_SUB;
	case '*': return OP_MUL;
	case '/': return OP_DIV;
	default: return OP_MATMUL;
	}
}

static Value *node2(Dsl *d, int tok, Op op, Value *a, Value *b)
{
	Node *n = ir_begin(d->g, op, NULL, 2, (Value *[]){a, b});
	if (ir_finish(d->g, n) < 0) {
		const char *why = strstr(d->g->err, "): ");
		dsl_fail(d, tok, "'%s' (%s): %s", dsl_tok(d, tok)->text, ir_ops[op].name, why ? why + 3 : d->g->err);
	}
	return n->out[0];
}

static DVal binary(Dsl *d, int tok, char op, DVal a, DVal b)
{
	char ka[160], kb[160];
	if (a.k == DV_LIST || b.k == DV_LIST)
		dsl_fail(d, tok, "'%c' cannot take %s", op, dsl_kind_name(a.k == DV_LIST ? &a : &b, ka, sizeof ka));
	if (a.k == DV_NUM && b.k == DV_NUM)
		return num_binary(d, tok, op, a, b);
	if (op == '@' && (a.k != DV_TENSOR || b.k != DV_TENSOR))
		dsl_fail(d, tok, "'@' needs two tensors, not %s and %s", dsl_kind_name(&a, ka, sizeof ka),
			 dsl_kind_name(&b, kb, sizeof kb));
	if (a.nb || b.nb)
		dsl_fail(d, tok, "the batch N is a dimension, not a value for '%c'", op);
	Value *va = a.k == DV_TENSOR ? a.t : dsl_const_scalar(d, tok, b.t->dt, a.num);
	Value *vb = b.k == DV_TENSOR ? b.t : dsl_const_scalar(d, tok, a.t->dt, b.num);
	return dsl_tensor(node2(d, tok, binary_op(op), va, vb));
}

/* ---- atoms ---- */

static DVal list(Dsl *d)
{
	DVal items[64], v = {DV_LIST};
	int n = 0, open = d->pos - 1;
	while (!dsl_is(d, "]")) {
		if (n == 64)
			dsl_fail(d, open, "a list literal holds at most 64 items");
		items[n++] = dsl_expr(d);
		if (!dsl_accept(d, ","))
			break;
	}
	dsl_expect(d, "]");
	v.n = n;
	v.items = ir_alloc(d->g, (n ? n : 1) * sizeof *v.items);
	memcpy(v.items, items, n * sizeof *items);
	return v;
}

static DVal name_value(Dsl *d, int tok)
{
	Tok *t = dsl_tok(d, tok);
	Binding *b = dsl_lookup(d, d->scope, t->text);
	if (b)
		return b->v;
	Value *p = find_param(d, t->text);
	if (p)
		return dsl_tensor(p);
	if (!t->quoted && !strcmp(t->text, "N")) {
		DVal v = dsl_num(0, 1);
		v.nb = 1;
		return v;
	}
	if (!t->quoted && !strcmp(t->text, "inf"))
		return dsl_num(INFINITY, 0);
	if (!t->quoted && !strcmp(t->text, "nan"))
		return dsl_num(NAN, 0);
	dsl_fail(d, tok, "unknown name '%s'", t->text);
}

static DVal call(Dsl *d, int tok)
{
	const char *name = dsl_tok(d, tok)->text;
	BlockDef *b = dsl_find_block(d, name);
	if (b)
		return dsl_call_block(d, b, tok);
	int op = dsl_find_op(name);
	if (op < 0)
		dsl_fail(d, tok, "unknown function '%s' (not an operator or a block)", name);
	return dsl_call_op(d, op, tok);
}

static DVal atom(Dsl *d)
{
	int at = d->pos;
	Tok *t = dsl_tok(d, at);
	char buf[80];
	d->pos++;
	if (t->k == TK_INT || t->k == TK_FLOAT)
		return dsl_num(t->num, t->k == TK_INT);
	if (t->k == TK_IDENT)
		return dsl_is(d, "(") ? call(d, at) : name_value(d, at);
	if (t->k == TK_PUNCT && !strcmp(t->text, "(")) {
		DVal v = dsl_expr(d);
		dsl_expect(d, ")");
		return v;
	}
	if (t->k == TK_PUNCT && !strcmp(t->text, "["))
		return list(d);
	if (t->k == TK_STRING)
		dsl_fail(d, at, "a string is not a value here");
	snprintf(buf, sizeof buf, t->k == TK_PUNCT ? "'%.40s'" : "%s",
		 t->k == TK_PUNCT ? t->text : t->k == TK_EOF ? "the end of the file" : "the end of the line");
	dsl_fail(d, at, "expected an expression but found %s", buf);
}

static DVal unary(Dsl *d)
{
	int at = d->pos;
	if (++d->depth > DSL_MAX_DEPTH)
		dsl_fail(d, at, "expression nested too deeply");
	DVal v;
	if (dsl_accept(d, "-")) {
		v = unary(d);
		if (v.k == DV_NUM) {
			v.num = -v.num;
			v.nb = -v.nb;
		} else if (v.k == DV_TENSOR) {
			Node *n = ir_begin(d->g, OP_NEG, NULL, 1, &v.t);
			DLCC_ASSERT(ir_finish(d->g, n) == 0);
			v.t = n->out[0];
		} else {
			dsl_fail(d, at, "'-' cannot take a list");
		}
	} else {
		v = atom(d);
	}
	d->depth--;
	return v;
}

static DVal term(Dsl *d)
{
	DVal v = unary(d);
	while (dsl_is(d, "*") || dsl_is(d, "/") || dsl_is(d, "@")) {
		int at = d->pos++;
		v = binary(d, at, dsl_tok(d, at)->text[0], v, unary(d));
	}
	return v;
}

DVal dsl_expr(Dsl *d)
{
	if (++d->depth > DSL_MAX_DEPTH)
		dsl_fail(d, d->pos, "expression nested too deeply");
	DVal v = term(d);
	while (dsl_is(d, "+") || dsl_is(d, "-")) {
		int at = d->pos++;
		v = binary(d, at, dsl_tok(d, at)->text[0], v, term(d));
	}
	d->depth--;
	return v;
}

int64_t dsl_int_expr(Dsl *d, const char *what)
{
	int at = d->pos;
	DVal v = dsl_expr(d);
	if (!is_whole(&v) || fabs(v.num) > 4e15)
		dsl_fail(d, at, "%s must be a whole number", what);
	return (int64_t)v.num;
}

double dsl_num_expr(Dsl *d, const char *what)
{
	int at = d->pos;
	DVal v = dsl_expr(d);
	if (v.k != DV_NUM || v.nb)
		dsl_fail(d, at, "%s must be a number", what);
	return v.num;
}
