/*
 * dsl_stmt.c — statements of the .dl language: declarations, assignments, outputs, blocks and
 * loops (docs/dl.md has the grammar).
 *
 * Top level: `model`, `seed`, `input`, `block` definitions, `train { }`, `output`; anywhere:
 * `param`, `const`, `NAME = expr`, `for i in A..B { }`; in a block: `return expr` as its last
 * statement. A block call runs the block's tokens again in a new scope whose parameter prefix is
 * the instance name: `linear(h, 64, 10) as fc` (or, for `fc = linear(h, 64, 10)`, the name it is
 * assigned to) declares `fc.weight`; calls nest (`h0.attn.wq`). A `for` loop re-runs its body
 * in the same scope, so `x = block(x) as "h{i}"` chains twelve layers. Limits keep any input
 * finite: block calls nest at most 64 deep, loops run at most 100000 bodies in all.
 */
#include <math.h>
#include <string.h>

#include "frontend/dsl_imp.h"

static const char *cat(Dsl *d, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = ir_alloc(d->g, la + lb + 1);
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	return s;
}

static int top(Dsl *d) { return d->scope == &d->global; }

static void need_top(Dsl *d, int tok, const char *what)
{
	if (!top(d))
		dsl_fail(d, tok, "'%s' is only allowed at the top level, not inside a block", what);
}

/* a graph-level value or output already called this */
static void check_unique(Dsl *d, int tok, const char *name)
{
	for (int i = 0; i < d->g->nvalues; i++) {
		Value *v = d->g->values[i];
		if (v->kind != V_TEMP && !strcmp(v->name, name))
			dsl_fail(d, tok, "'%s' is already defined", name);
	}
	for (int i = 0; i < d->g->noutputs; i++)
		if (!strcmp(d->g->outputs[i]->name, name))
			dsl_fail(d, tok, "'%s' is already an output", name);
}

/* ---- types ---- */

void dsl_parse_shape(Dsl *d, Shape *s, int allow_batch)
{
	int open = d->pos;
	dsl_expect(d, "[");
	s->rank = 0;
	while (!dsl_is(d, "]")) {
		int at = d->pos;
		if (s->rank == IR_MAX_RANK)
			dsl_fail(d, at, "at most %d dimensions", IR_MAX_RANK);
		DVal v = dsl_expr(d);
		if (v.k == DV_NUM && v.nb > 0 && v.num == 0 && allow_batch)
			s->d[s->rank++] = -v.nb;
		else if (v.k == DV_NUM && v.nb)
			dsl_fail(d, at, "bad dimension: %s", allow_batch ? "use N or k * N (k > 0)"
				 : "a parameter or constant cannot have the batch dimension N");
		else if (v.k != DV_NUM || !v.is_int || v.num < 0 || v.num > 4294967296.0)
			dsl_fail(d, at, "bad dimension: expected a whole number >= 0, N or k * N");
		else
			s->d[s->rank++] = (int64_t)v.num;
		if (!dsl_accept(d, ","))
			break;
	}
	dsl_expect(d, "]");
	if (ir_numel_at(s, 1) > ((int64_t)1 << 40))
		dsl_fail(d, open, "the shape is too large");
}

static DType parse_type(Dsl *d, Shape *s, int allow_batch)
{
	int at = d->pos;
	const char *dt = dsl_ident(d, "a dtype (f32, f16, bf16, f64, i64, i32, bool, u8)");
	int k = ir_dt_lookup(dt);
	if (k < 0)
		dsl_fail(d, at, "unknown dtype '%s' (f32, f16, bf16, f64, i64, i32, bool, u8)", dt);
	dsl_parse_shape(d, s, allow_batch);
	return (DType)k;
}

/* ---- declarations ---- */

static void stmt_input(Dsl *d)
{
	Shape s;
	int at = d->pos;
	need_top(d, at - 1, "input");
	const char *name = dsl_ident(d, "the input's name");
	check_unique(d, at, name);
	dsl_expect(d, ":");
	DType dt = parse_type(d, &s, 1);
	dsl_bind(d, d->scope, name, dsl_tensor(ir_value(d->g, V_INPUT, name, dt, s, NULL)));
}

static void count_elements(Dsl *d, int tok, const Shape *s)
{
	d->elements += ir_numel(s);
	if (d->elements > dsl_limit_elements)
		dsl_fail(d, tok, "the parameters and constants hold more than %lld elements in all",
			 (long long)dsl_limit_elements);
}

static Value *param_decl(Dsl *d)
{
	Shape s;
	int at = d->pos;
	const char *name = dsl_ident(d, "the parameter's name");
	const char *full = cat(d, d->scope->prefix, name);
	check_unique(d, at, full);
	dsl_expect(d, ":");
	int tt = d->pos;
	DType dt = parse_type(d, &s, 0);
	if (!ir_dt_is_float(dt))
		dsl_fail(d, tt, "a parameter must have a float dtype, not %s", ir_dt_name(dt));
	count_elements(d, tt, &s);
	dsl_expect(d, "=");
	Value *p = ir_value(d->g, V_PARAM, full, dt, s, NULL);
	dsl_param_init(d, p, full);
	dsl_bind(d, d->scope, name, dsl_tensor(p));
	return p;
}

static void stmt_param(Dsl *d) { param_decl(d); }

/* `buffer NAME: TYPE = INIT`: state the training step updates but the optimizer does not train
 * (BatchNormalization's running statistics) */
static void stmt_buffer(Dsl *d) { param_decl(d)->buffer = 1; }

static void store(void *data, DType dt, int64_t k, double x)
{
	unsigned char *p = data;
	switch (dt) {
	case DT_F64: memcpy(p + 8 * k, &x, 8); break;
	case DT_I64: { int64_t i = (int64_t)x; memcpy(p + 8 * k, &i, 8); break; }
	case DT_I32: { int32_t i = (int32_t)x; memcpy(p + 4 * k, &i, 4); break; }
	case DT_BOOL:
	case DT_U8: p[k] = (unsigned char)x; break;
	default: { float f = (float)x; memcpy(p + 4 * k, &f, 4); break; }
	}
}

static double literal(Dsl *d, const DVal *v, int tok, DType dt)
{
	if (v->k != DV_NUM || v->nb)
		dsl_fail(d, tok, "bad literal: expected a number");
	if (!ir_dt_is_float(dt) && v->num != floor(v->num))
		dsl_fail(d, tok, "bad literal: %g is not a whole number (the constant is %s)", v->num, ir_dt_name(dt));
	return v->num;
}

static void stmt_const(Dsl *d)
{
	Shape s;
	int at = d->pos;
	const char *name = dsl_ident(d, "the constant's name");
	const char *full = cat(d, d->scope->prefix, name);
	check_unique(d, at, full);
	dsl_expect(d, ":");
	int tt = d->pos;
	DType dt = parse_type(d, &s, 0);
	if (dt == DT_F16 || dt == DT_BF16)
		dsl_fail(d, tt, "constants of dtype %s are not supported; use f32", ir_dt_name(dt));
	count_elements(d, tt, &s);
	dsl_expect(d, "=");
	int vt = d->pos;
	DVal v = dsl_expr(d);
	int64_t n = ir_numel(&s), cnt = v.k == DV_LIST ? v.n : 1;
	if (v.k == DV_LIST && cnt != n)
		dsl_fail(d, vt, "%lld values for a constant of %lld elements", (long long)cnt, (long long)n);
	void *data = ir_alloc(d->g, n * ir_dt_size(dt) + 1);
	for (int64_t k = 0; k < n; k++)
		store(data, dt, k, literal(d, v.k == DV_LIST ? &v.items[k] : &v, vt, dt));
	dsl_bind(d, d->scope, name, dsl_tensor(ir_value(d->g, V_CONST, full, dt, s, data)));
}

/* ---- outputs ---- */

static int has_default_name(const Value *v)
{
	char id[24];
	snprintf(id, sizeof id, "%d", v->id);
	return !strcmp(v->name, id);
}

static void stmt_output(Dsl *d)
{
	int at = d->pos;
	need_top(d, at - 1, "output");
	const char *name = dsl_ident(d, "the output's name");
	DVal v;
	if (dsl_accept(d, "=")) {
		int et = d->pos;
		v = dsl_expr(d);
		if (v.k != DV_TENSOR)
			dsl_fail(d, et, "an output must be a tensor");
		if (v.t->kind != V_TEMP || !has_default_name(v.t))
			dsl_fail(d, et, "this value is already called '%s'; write `output %s`", v.t->name, v.t->name);
		check_unique(d, at, name);
		v.t->name = name;
		dsl_bind(d, d->scope, name, v);
	} else {
		Binding *b = dsl_lookup(d, d->scope, name);
		if (!b || b->v.k != DV_TENSOR)
			dsl_fail(d, at, b ? "'%s' is not a tensor" : "unknown name '%s'", name);
		v = b->v;
		if (v.t->kind == V_TEMP && has_default_name(v.t)) {
			check_unique(d, at, name);
			v.t->name = name;
		}
	}
	for (int i = 0; i < d->g->noutputs; i++)
		if (d->g->outputs[i] == v.t)
			dsl_fail(d, at, "this value is already an output");
	ir_add_output(d->g, v.t);
}

/* ---- blocks and loops ---- */

BlockDef *dsl_find_block(Dsl *d, const char *name)
{
	for (BlockDef *b = d->blocks; b; b = b->next)
		if (!strcmp(b->name, name))
			return b;
	return NULL;
}

void dsl_skip_braces(Dsl *d)
{
	int open = d->pos, depth = 0;
	dsl_expect(d, "{");
	for (depth = 1; depth; d->pos++) {
		Tok *t = dsl_tok(d, d->pos);
		if (t->k == TK_EOF)
			dsl_fail(d, open, "this '{' is never closed");
		if (t->k == TK_PUNCT && t->text[0] == '{')
			depth++;
		if (t->k == TK_PUNCT && t->text[0] == '}')
			depth--;
	}
}

static void stmt_block(Dsl *d)
{
	int at = d->pos;
	need_top(d, at - 1, "block");
	const char *name = dsl_ident(d, "the block's name");
	if (dsl_find_block(d, name))
		dsl_fail(d, at, "block '%s' is already defined", name);
	if (dsl_find_op(name) >= 0)
		dsl_fail(d, at, "'%s' is an operator; choose another block name", name);
	BlockDef *b = ir_alloc(d->g, sizeof *b);
	b->name = name;
	b->tok = d->pos;
	b->params = ir_alloc(d->g, 64 * sizeof *b->params);
	dsl_expect(d, "(");
	while (!dsl_is(d, ")")) {
		if (b->nparams == 64)
			dsl_fail(d, d->pos, "at most 64 block arguments");
		b->params[b->nparams++] = dsl_ident(d, "an argument name");
		if (!dsl_accept(d, ","))
			break;
	}
	dsl_expect(d, ")");
	b->body = d->pos;
	dsl_skip_braces(d);
	b->next = d->blocks;
	d->blocks = b;
}

/* `as NAME`, `as 3`, `as "h{i}"` (each {name} replaced by that whole number) */
static const char *instance_name(Dsl *d)
{
	Tok *t = dsl_tok(d, d->pos);
	char buf[256];
	if (t->k == TK_INT && t->num >= 0) {
		snprintf(buf, sizeof buf, "%lld", (long long)t->num);
		d->pos++;
		return ir_strdup(d->g, buf);
	}
	if (t->k != TK_STRING)
		return dsl_ident(d, "an instance name");
	size_t o = 0;
	for (const char *p = t->text; *p && o < sizeof buf - 24; p++) {
		const char *e = *p == '{' ? strchr(p, '}') : NULL;
		if (!e) {
			buf[o++] = *p;
			continue;
		}
		char var[64];
		snprintf(var, sizeof var, "%.*s", (int)(e - p - 1), p + 1);
		Binding *b = dsl_lookup(d, d->scope, var);
		if (!b || b->v.k != DV_NUM || !b->v.is_int || b->v.nb)
			dsl_fail(d, d->pos, "'{%s}' in an instance name must name a whole number", var);
		o += snprintf(buf + o, sizeof buf - o, "%lld", (long long)b->v.num);
		p = e;
	}
	buf[o] = 0;
	if (!o)
		dsl_fail(d, d->pos, "empty instance name");
	d->pos++;
	return ir_strdup(d->g, buf);
}

static const char *call_scope_name(Dsl *d, BlockDef *b, int name_tok)
{
	if (dsl_is_kw(d, "as")) {
		d->pos++;
		return instance_name(d);
	}
	Tok *t = dsl_tok(d, d->pos);
	int ends = t->k == TK_NL || t->k == TK_EOF || (t->k == TK_PUNCT && !strcmp(t->text, "}"));
	if (d->assign_name && d->assign_tok == name_tok && ends)
		return d->assign_name;
	dsl_fail(d, name_tok, "name this instance of block '%s': `%s(...) as NAME` (its parameters "
		 "are then NAME.<param>)", b->name, b->name);
}

DVal dsl_call_block(Dsl *d, BlockDef *b, int name_tok)
{
	DVal args[64];
	int n = 0;
	dsl_expect(d, "(");
	while (!dsl_is(d, ")")) {
		if (n == 64)
			dsl_fail(d, d->pos, "too many arguments");
		args[n++] = dsl_expr(d);
		if (!dsl_accept(d, ","))
			break;
	}
	dsl_expect(d, ")");
	if (n != b->nparams)
		dsl_fail(d, name_tok, "wrong argument count: block %s takes %d argument%s, got %d", b->name,
			 b->nparams, b->nparams == 1 ? "" : "s", n);
	const char *inst = call_scope_name(d, b, name_tok);
	if (d->calls >= 64)
		dsl_fail(d, name_tok, "blocks call each other more than 64 deep");
	Scope s = {0};
	s.parent = &d->global;
	s.prefix = cat(d, cat(d, d->scope->prefix, inst), ".");
	s.in_block = 1;
	for (int i = 0; i < n; i++)
		dsl_bind(d, &s, b->params[i], args[i]);
	int back = d->pos, loops = d->loops;
	Scope *caller = d->scope;
	const char *an = d->assign_name;
	d->pos = b->body + 1;
	d->calls++;
	d->loops = 0;
	dsl_statements(d, &s, 1);
	d->calls--;
	d->loops = loops;
	d->scope = caller;
	d->assign_name = an;
	if (!s.returned)
		dsl_fail(d, name_tok, "block '%s' ends without `return`", b->name);
	d->pos = back;
	return s.ret;
}

static void stmt_for(Dsl *d)
{
	int at = d->pos;
	const char *var = dsl_ident(d, "the loop variable");
	if (!dsl_is_kw(d, "in"))
		dsl_fail(d, d->pos, "expected 'in' (for %s in A..B)", var);
	d->pos++;
	int64_t lo = dsl_int_expr(d, "the start of the range");
	dsl_expect(d, "..");
	int64_t hi = dsl_int_expr(d, "the end of the range");
	int body = d->pos;
	dsl_skip_braces(d);
	int end = d->pos;
	for (int64_t i = lo; i < hi; i++) {
		if (++d->loop_steps > 100000)
			dsl_fail(d, at, "loops run more than 100000 times in all");
		dsl_bind(d, d->scope, var, dsl_num((double)i, 1));
		d->pos = body + 1;
		d->loops++;
		dsl_statements(d, d->scope, 1);
		d->loops--;
	}
	d->pos = end;
}

/* ---- one statement ---- */

static void stmt_assign(Dsl *d)
{
	int at = d->pos;
	const char *name = dsl_ident(d, "a statement");
	Tok *t = dsl_tok(d, at);
	if (!dsl_is(d, "="))
		dsl_fail(d, at, "expected a statement (input, param, const, output, block, for, train, "
			 "or NAME = expression) but found '%s'", t->text);
	if (!t->quoted && !strcmp(name, "N"))
		dsl_fail(d, at, "N is the batch dimension and cannot be assigned");
	d->pos++;
	d->assign_name = name;
	d->assign_tok = d->pos;
	DVal v = dsl_expr(d);
	d->assign_name = NULL;
	dsl_bind(d, d->scope, name, v);
}

static void stmt_return(Dsl *d)
{
	if (!d->scope->in_block)
		dsl_fail(d, d->pos - 1, "'return' outside a block");
	if (d->loops)
		dsl_fail(d, d->pos - 1, "'return' inside a for loop");
	d->scope->ret = dsl_expr(d);
	d->scope->returned = 1;
	dsl_end_stmt(d);
	dsl_skip_nl(d);
	if (!dsl_is(d, "}"))
		dsl_fail(d, d->pos, "'return' must be the last statement of the block");
}

static void stmt_model(Dsl *d)
{
	need_top(d, d->pos - 1, "model");
	if (d->model_named)
		dsl_fail(d, d->pos - 1, "the model is already named");
	d->g->name = dsl_ident(d, "the model's name");
	d->model_named = 1;
}

static void stmt_seed(Dsl *d)
{
	need_top(d, d->pos - 1, "seed");
	if (d->g->nparams)
		dsl_fail(d, d->pos - 1, "'seed' must come before the first parameter");
	int at = d->pos;
	int64_t s = dsl_int_expr(d, "the seed");
	if (s < 0)
		dsl_fail(d, at, "the seed must be >= 0");
	d->seed = (uint64_t)s;
}

static int statement(Dsl *d)
{
	static const struct {
		const char *kw;
		void (*fn)(Dsl *);
	} kws[] = {{"input", stmt_input}, {"param", stmt_param}, {"buffer", stmt_buffer},   {"const", stmt_const},
		   {"output", stmt_output}, {"block", stmt_block},  {"for", stmt_for},
		   {"return", stmt_return}, {"model", stmt_model}, {"seed", stmt_seed}};
	Tok *t = dsl_tok(d, d->pos), *nx = dsl_tok(d, d->pos + 1);
	int kw = t->k == TK_IDENT && !t->quoted && !(nx->k == TK_PUNCT && !strcmp(nx->text, "="));
	for (int i = 0; kw && i < (int)(sizeof kws / sizeof *kws); i++)
		if (!strcmp(t->text, kws[i].kw)) {
			d->pos++;
			kws[i].fn(d);
			return kws[i].fn == stmt_return;
		}
	if (kw && !strcmp(t->text, "train")) {
		need_top(d, d->pos, "train");
		d->pos++;
		dsl_train_section(d);
		return 0;
	}
	if (t->k != TK_IDENT) {
		char buf[64];
		snprintf(buf, sizeof buf, t->k == TK_PUNCT ? "'%s'" : "a %s", t->k == TK_PUNCT ? t->text :
			 t->k == TK_STRING ? "string" : "number");
		dsl_fail(d, d->pos, "expected a statement but found %s", buf);
	}
	stmt_assign(d);
	return 0;
}

void dsl_statements(Dsl *d, Scope *s, int until_brace)
{
	d->scope = s;
	for (;;) {
		dsl_skip_nl(d);
		if (until_brace && dsl_accept(d, "}"))
			return;
		if (dsl_tok(d, d->pos)->k == TK_EOF) {
			if (until_brace)
				dsl_fail(d, d->pos, "expected '}' before the end of the file");
			return;
		}
		if (!until_brace && dsl_is(d, "}"))
			dsl_fail(d, d->pos, "unexpected '}'");
		if (statement(d)) {
			dsl_expect(d, "}");
			return;
		}
		d->scope = s;
		dsl_end_stmt(d);
	}
}

void dsl_program(Dsl *d)
{
	d->global.prefix = "";
	dsl_statements(d, &d->global, 0);
	if (!d->g->noutputs)
		dsl_fail(d, 0, "the model has no output (write `output NAME = expression`)");
}
