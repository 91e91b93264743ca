/*
 * emit_dl.c — a forward Graph written as a .dl model (`dlcc M.onnx --emit dl`), which the .dl
 * frontend reads back into the same program: same inputs, parameters (names kept: they are the
 * keys of --load/--save), op sequence, attributes, shapes and outputs.
 *
 * Layout: `model`, the inputs, the parameters (with placeholder initializers: kaiming_uniform for
 * rank >= 2, zeros otherwise — the real weights travel in a .safetensors file), the constants,
 * then one statement per value that needs a name, outputs last. Expressions nest where that keeps
 * the schedule: a temporary used once is written inside its user when it was computed just
 * before it (a stack of pending expressions, each covering a contiguous run of the schedule), so
 * an MLP layer reads `relu(gemm(x, w, b, transB = 1))`. Add/Sub/Mul/Div/MatMul/Neg print infix
 * with the fewest parentheses; a scalar constant used once by one of them prints as a literal.
 * Attributes at their .dl default are left out (the frontend fills them back in, in order).
 * Value order may differ from the original (temporaries and literals get new ids); the program
 * is the same.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/dsl_imp.h"
#include "rt_half.h"

typedef struct {
	char *p;
	size_t n, cap;
	int prec; /* 1 + -, 2 * / @, 3 unary -, 4 atom */
} Str;

static void put(Str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Str *s, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int k = vsnprintf(s->p ? s->p + s->n : NULL, s->p ? s->cap - s->n : 0, fmt, ap);
		va_end(ap);
		if (s->p && s->n + k < s->cap) {
			s->n += k;
			return;
		}
		s->cap = 2 * (s->cap + k + 64);
		s->p = realloc(s->p, s->cap);
		DLCC_ASSERT(s->p);
	}
}

typedef struct {
	const Graph *g;
	FILE *f;
	int *uses;
	char *is_out, *literal;
	Str *pending; /* expressions of pushed nodes, by value id */
	const Value **stack;
	int nstack;
} Emit;

/* ---- names and numbers ---- */

static int plain(const char *s)
{
	static const char *const reserved[] = {"model", "seed", "input", "param", "const", "output", "block",
					       "for", "in", "return", "train", "as", "N", "inf", "nan", NULL};
	if (!isalpha((unsigned char)*s) && *s != '_')
		return 0;
	for (const char *p = s; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_' || (*p == '.' && p[1] && p[1] != '.' && p[-1] != '.')))
			return 0;
	for (int i = 0; reserved[i]; i++)
		if (!strcmp(s, reserved[i]))
			return 0;
	return s[strlen(s) - 1] != '.';
}

static int name_taken(const Graph *g, const char *s)
{
	for (int i = 0; i < g->nvalues; i++)
		if (g->values[i]->kind != V_TEMP && !strcmp(g->values[i]->name, s))
			return 1;
	for (int i = 0; i < g->noutputs; i++)
		if (!strcmp(g->outputs[i]->name, s))
			return 1;
	return 0;
}

static int default_name(const Value *v)
{
	char id[24];
	snprintf(id, sizeof id, "%d", v->id);
	return !strcmp(v->name, id);
}

/* the variable a value is known by in the .dl text */
static void ref(Emit *e, Str *s, const Value *v)
{
	if (!default_name(v)) {
		put(s, plain(v->name) ? "%s" : "`%s`", v->name);
		return;
	}
	char nm[40];
	snprintf(nm, sizeof nm, "%c%d", v->kind == V_CONST ? 'c' : 't', v->id);
	while (name_taken(e->g, nm) && strlen(nm) < sizeof nm - 1)
		strcat(nm, "_");
	put(s, "%s", nm);
}

static void real(Str *s, double x, int f64, int need_dot)
{
	char buf[40];
	if (isnan(x)) {
		put(s, "nan");
		return;
	}
	if (isinf(x)) {
		put(s, x < 0 ? "-inf" : "inf");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, x);
		if (f64 ? strtod(buf, NULL) == x : strtof(buf, NULL) == (float)x)
			break;
	}
	if (x == 0 && signbit(x))
		snprintf(buf, sizeof buf, "-0.0");
	put(s, "%s%s", buf, need_dot && !strpbrk(buf, ".en") ? ".0" : "");
}

static double elem(const Value *v, int64_t k)
{
	const unsigned char *p = v->data;
	switch (v->dt) {
	case DT_F32: { float x; memcpy(&x, p + 4 * k, 4); return x; }
	case DT_F64: { double x; memcpy(&x, p + 8 * k, 8); return x; }
	case DT_F16: { uint16_t h; memcpy(&h, p + 2 * k, 2); return rt_f16_to_f32(h); }
	case DT_BF16: { uint16_t h; memcpy(&h, p + 2 * k, 2); return rt_bf16_to_f32(h); }
	case DT_I64: { int64_t x; memcpy(&x, p + 8 * k, 8); return (double)x; }
	case DT_I32: { int32_t x; memcpy(&x, p + 4 * k, 4); return x; }
	default: return p[k];
	}
}

static void type(Str *s, DType dt, const Shape *sh)
{
	put(s, "%s[", ir_dt_name(dt));
	for (int i = 0; i < sh->rank; i++) {
		int64_t d = sh->d[i];
		put(s, i ? ", " : "");
		if (d >= 0)
			put(s, "%lld", (long long)d);
		else
			put(s, d == -1 ? "N" : "%lld * N", (long long)-d);
	}
	put(s, "]");
}

/* ---- declarations ---- */

static void flush_line(Emit *e, Str *s)
{
	fprintf(e->f, "%.*s\n", (int)s->n, s->p ? s->p : "");
	s->n = 0;
}

static void decl_head(Emit *e, Str *s, const char *kw, const Value *v)
{
	put(s, "%s ", kw);
	ref(e, s, v);
	put(s, ": ");
	type(s, v->dt, &v->shape);
}

static void declarations(Emit *e, Str *s)
{
	const Graph *g = e->g;
	for (int i = 0; i < g->ninputs; i++) {
		decl_head(e, s, "input", g->inputs[i]);
		flush_line(e, s);
	}
	if (g->nparams)
		fprintf(e->f, "\n# placeholder initializers: the weights come with --load W.safetensors\n");
	for (int i = 0; i < g->nparams; i++) {
		decl_head(e, s, "param", g->params[i]);
		put(s, g->params[i]->shape.rank >= 2 ? " = kaiming_uniform(a = sqrt(5))" : " = zeros");
		flush_line(e, s);
	}
	for (int i = 0; i < g->nvalues; i++) {
		const Value *v = g->values[i];
		if (v->kind != V_CONST || !e->uses[i] || e->literal[i] || !v->data)
			continue;
		decl_head(e, s, "const", v);
		put(s, " = %s", v->shape.rank ? "[" : "");
		for (int64_t k = 0; k < ir_numel(&v->shape); k++) {
			put(s, k ? ", " : "");
			real(s, elem(v, k), v->dt == DT_F64, 0);
		}
		put(s, "%s", v->shape.rank ? "]" : "");
		flush_line(e, s);
	}
}

/* ---- expressions ---- */

static int infix(const Node *n, char *op)
{
	switch (n->op) {
	case OP_ADD: *op = '+'; return 1;
	case OP_SUB: *op = '-'; return 1;
	case OP_MUL: *op = '*'; return 2;
	case OP_DIV: *op = '/'; return 2;
	case OP_MATMUL: *op = '@'; return 2;
	default: return 0;
	}
}

/* an operand: a pending expression (consumed), a literal, or a name */
static void operand(Emit *e, Str *s, const Value *v, int min_prec)
{
	Str *p = &e->pending[v->id];
	int prec = p->p ? p->prec : 4;
	int paren = prec < min_prec;
	put(s, paren ? "(" : "");
	if (p->p) {
		put(s, "%.*s", (int)p->n, p->p);
		free(p->p);
		memset(p, 0, sizeof *p);
	} else if (e->literal[v->id]) {
		real(s, elem(v, 0), v->dt == DT_F64, 0);
	} else {
		ref(e, s, v);
	}
	put(s, paren ? ")" : "");
}

static void snake(Str *s, const char *name)
{
	for (const char *p = name; *p; p++) {
		if (p != name && isupper((unsigned char)*p) && islower((unsigned char)p[-1]))
			put(s, "_");
		put(s, "%c", tolower((unsigned char)*p));
	}
}

static void attr_value(Str *s, const Attr *a)
{
	switch (a->kind) {
	case A_INT: put(s, "%lld", (long long)a->i); break;
	case A_FLOAT: real(s, a->f, 1, 1); break;
	case A_INTS:
		put(s, "[");
		for (int k = 0; k < a->n; k++) {
			int64_t d = a->ints[k];
			put(s, k ? ", " : "");
			if (d >= 0)
				put(s, "%lld", (long long)d);
			else
				put(s, d == -1 ? "N" : "%lld * N", (long long)-d);
		}
		put(s, "]");
		break;
	case A_FLOATS:
		put(s, "[");
		for (int k = 0; k < a->n; k++) {
			put(s, k ? ", " : "");
			real(s, a->floats[k], 1, 1);
		}
		put(s, "]");
		break;
	default: put(s, "\"%s\"", a->s); break;
	}
}

static void expression(Emit *e, Str *s, const Node *n)
{
	char op;
	int prec = n->nin == 2 ? infix(n, &op) : 0;
	if (prec) {
		operand(e, s, n->in[0], prec);
		put(s, " %c ", op);
		operand(e, s, n->in[1], prec + 1);
	} else if (n->op == OP_NEG) {
		put(s, "-");
		operand(e, s, n->in[0], 4);
		prec = 3;
	} else {
		snake(s, ir_ops[n->op].name);
		put(s, "(");
		for (int i = 0; i < n->nin; i++) {
			put(s, i ? ", " : "");
			operand(e, s, n->in[i], 0);
		}
		for (int i = 0; i < n->nattr; i++) {
			if (dsl_op_has_spec(n->op) && dsl_attr_is_default(n, &n->attr[i]))
				continue;
			if (!strcmp(n->attr[i].name, "fuse")) /* a kernel grouping, not part of the model */
				continue;
			put(s, ", %s = ", n->attr[i].name);
			attr_value(s, &n->attr[i]);
		}
		put(s, ")");
		prec = 4;
	}
	s->prec = prec;
}

/* ---- statements ---- */

static int inlinable(Emit *e, const Value *v)
{
	return v->kind == V_TEMP && v->def && v->def->nout == 1 && e->uses[v->id] == 1 && !e->is_out[v->id];
}

static void emit_stmt(Emit *e, const Value *v, Str *expr)
{
	Str s = {0};
	ref(e, &s, v);
	put(&s, " = %.*s", (int)expr->n, expr->p ? expr->p : "");
	flush_line(e, &s);
	free(s.p);
}

/* write every pending expression below stack position `keep` as a statement */
static void flush_stack(Emit *e, int keep)
{
	for (int i = 0; i < keep; i++) {
		Str *p = &e->pending[e->stack[i]->id];
		emit_stmt(e, e->stack[i], p);
		free(p->p);
		memset(p, 0, sizeof *p);
	}
	memmove(e->stack, e->stack + keep, (e->nstack - keep) * sizeof *e->stack);
	e->nstack -= keep;
}

/* The pending inputs of n must be the top of the stack, in argument order, and short: then
 * they are popped (expression() takes them); otherwise everything pending becomes a statement. */
#define DL_NEST_MAX 64
static void settle_inputs(Emit *e, const Node *n)
{
	int cnt = 0, longest = 0;
	for (int i = 0; i < n->nin; i++) {
		Str *p = &e->pending[n->in[i]->id];
		cnt += p->p != NULL;
		longest = p->p && (int)p->n > longest ? (int)p->n : longest;
	}
	if (!cnt)
		return;
	if (longest > DL_NEST_MAX) {
		flush_stack(e, e->nstack);
		return;
	}
	int base = e->nstack - cnt, k = base;
	for (int i = 0; i < n->nin && k >= 0; i++)
		if (e->pending[n->in[i]->id].p)
			k = k >= 0 && e->stack[k] == n->in[i] ? k + 1 : -1;
	if (base < 0 || k < 0)
		flush_stack(e, e->nstack);
	else
		e->nstack = base;
}

/* results after the first that nothing reads (MaxPool's indices, mostly) */
static int extra_results_unused(const Emit *e, const Node *n)
{
	for (int i = 1; i < n->nout; i++)
		if (e->uses[n->out[i]->id] || e->is_out[n->out[i]->id])
			return 0;
	return 1;
}

static void node(Emit *e, const Node *n)
{
	if (n->nout != 1 && !extra_results_unused(e, n)) {
		fprintf(e->f, "# %s has %d results: not expressible in .dl\n", ir_ops[n->op].name, n->nout);
		return;
	}
	settle_inputs(e, n);
	Str s = {0};
	expression(e, &s, n);
	const Value *v = n->out[0];
	if (inlinable(e, v)) {
		e->pending[v->id] = s;
		e->stack[e->nstack++] = v;
		return;
	}
	flush_stack(e, e->nstack);
	emit_stmt(e, v, &s);
	free(s.p);
}

/* ---- the graph ---- */

static void count_uses(Emit *e)
{
	const Graph *g = e->g;
	for (int i = 0; i < g->nnodes; i++)
		for (int k = 0; k < g->nodes[i]->nin; k++)
			e->uses[g->nodes[i]->in[k]->id]++;
	for (int i = 0; i < g->noutputs; i++) {
		e->uses[g->outputs[i]->id]++;
		e->is_out[g->outputs[i]->id] = 1;
	}
	for (int i = 0; i < g->nnodes; i++) {
		const Node *n = g->nodes[i];
		char op;
		if (n->nin != 2 || !infix(n, &op) || n->op == OP_MATMUL)
			continue;
		for (int k = 0; k < 2; k++) {
			const Value *c = n->in[k], *o = n->in[1 - k];
			if (c->kind == V_CONST && c->data && c->shape.rank == 0 && e->uses[c->id] == 1 &&
			    o->kind != V_CONST && (c->dt == DT_F32 || c->dt == DT_F64 || c->dt == DT_I64))
				e->literal[c->id] = 1;
		}
	}
}

void ir_print_dl(FILE *f, const Graph *g)
{
	int nv = g->nvalues + 1;
	Emit e = {g, f, calloc(nv, sizeof(int)), calloc(nv, 1), calloc(nv, 1), calloc(nv, sizeof(Str)),
		  calloc(nv, sizeof(Value *)), 0};
	DLCC_ASSERT(e.uses && e.is_out && e.literal && e.pending && e.stack);
	Str s = {0};
	count_uses(&e);
	fprintf(f, "# written by dlcc --emit dl\n");
	put(&s, "model %s%s%s", plain(g->name) ? "" : "`", g->name, plain(g->name) ? "" : "`");
	flush_line(&e, &s);
	declarations(&e, &s);
	fputc('\n', f);
	for (int i = 0; i < g->nnodes; i++)
		node(&e, g->nodes[i]);
	flush_stack(&e, e.nstack);
	for (int i = 0; i < g->noutputs; i++) {
		put(&s, "output ");
		ref(&e, &s, g->outputs[i]);
		flush_line(&e, &s);
	}
	free(s.p);
	free(e.uses);
	free(e.is_out);
	free(e.literal);
	free(e.pending);
	free(e.stack);
}
