/*
 * parse.c — reads the textual IR that ir/print.c writes (grammar and examples: docs/ir.md).
 *
 * A hand-written recursive-descent parser over the raw text (no token list: the grammar is
 * small and newlines are plain whitespace). Nodes are built with ir_begin / ir_set_* /
 * ir_finish, so every node goes through its shape rule; a written output type that differs
 * from the inferred one is an error showing both. A value must be declared before it is used.
 *
 * Errors: the first error stops the parse (longjmp back to ir_parse) and is written to `err` as
 * `file:line:col: message`, then the source line and a caret line under the column.
 *
 * Ids: a value written as an unquoted number (%5) gets that id; the others take the free ids in
 * order of appearance; ids nobody claims become dead placeholder values (kind V_TEMP, no
 * producer), so new values made by later passes never collide with a printed name. Parameters
 * get deterministic pseudo-random data (uniform in [-0.1, 0.1), seeded by their name) unless
 * the text gives `= [...]`; constants must give their data.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "rt_half.h"

#define PARSE_MAX_IN 16
#define PARSE_MAX_ID (1 << 20)

typedef struct {
	const char *key; /* the name; "\"5" for a quoted all-digit name */
	Value *v;
} ParseSym;

typedef struct {
	Graph *g;
	const char *src, *p, *file;
	char *err;
	size_t errlen;
	jmp_buf fail;
	ParseSym *sym; /* open addressing, cap a power of two */
	int nsym, capsym;
	int *want; /* wanted id per value (indexed by the provisional id), -1 = any */
	int capwant;
} Parser;

/* ---- errors ---- */

static _Noreturn void parse_error(Parser *P, const char *loc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static _Noreturn void parse_error(Parser *P, const char *loc, const char *fmt, ...)
{
	const char *line = P->src;
	int lineno = 1;
	for (const char *q = P->src; q < loc; q++)
		if (*q == '\n') {
			lineno++;
			line = q + 1;
		}
	int len = (int)strcspn(line, "\n");
	char msg[512], caret[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	int col = (int)(loc - line), k = 0;
	for (; k < col && k < (int)sizeof caret - 2; k++)
		caret[k] = line[k] == '\t' ? '\t' : ' ';
	caret[k++] = '^';
	caret[k] = 0;
	snprintf(P->err, P->errlen, "%s:%d:%d: %s\n%.*s\n%s", P->file, lineno, col + 1, msg, len, line,
		 caret);
	longjmp(P->fail, 1);
}

/* ---- characters and words ---- */

static void parse_skip(Parser *P)
{
	for (;;) {
		while (isspace((unsigned char)*P->p))
			P->p++;
		if (*P->p == '#' || (P->p[0] == '/' && P->p[1] == '/'))
			P->p += strcspn(P->p, "\n");
		else
			return;
	}
}

/* after whitespace: consume `s` if it comes next */
static int parse_accept(Parser *P, const char *s)
{
	parse_skip(P);
	size_t n = strlen(s);
	if (strncmp(P->p, s, n) != 0)
		return 0;
	P->p += n;
	return 1;
}

static void parse_expect(Parser *P, const char *s)
{
	if (!parse_accept(P, s))
		parse_error(P, P->p, "expected '%s'", s);
}

static int parse_is_word_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '.'; }

/* a string literal at P->p (after the opening quote has been seen) into the arena */
static char *parse_string(Parser *P)
{
	const char *start = P->p++;
	char *out = ir_alloc(P->g, strlen(start) + 1), *o = out;
	while (*P->p != '"') {
		if (!*P->p || *P->p == '\n')
			parse_error(P, start, "unterminated string");
		if (*P->p != '\\') {
			*o++ = *P->p++;
			continue;
		}
		P->p++;
		if (*P->p == 'x' && isxdigit((unsigned char)P->p[1]) && isxdigit((unsigned char)P->p[2])) {
			char hex[3] = {P->p[1], P->p[2], 0};
			*o++ = (char)strtol(hex, NULL, 16);
			P->p += 3;
		} else if (*P->p == '"' || *P->p == '\\') {
			*o++ = *P->p++;
		} else {
			parse_error(P, P->p - 1, "unknown escape in string");
		}
	}
	P->p++;
	*o = 0;
	return out;
}

/* a bare word [A-Za-z0-9_.]+ or a quoted string; *quoted says which */
static char *parse_word(Parser *P, const char *what, int *quoted)
{
	parse_skip(P);
	if (quoted)
		*quoted = *P->p == '"';
	if (*P->p == '"')
		return parse_string(P);
	const char *s = P->p;
	while (parse_is_word_char(*P->p))
		P->p++;
	if (P->p == s)
		parse_error(P, s, "expected %s", what);
	char *w = ir_alloc(P->g, P->p - s + 1);
	memcpy(w, s, P->p - s);
	return w;
}

static int parse_all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* ---- symbols ---- */

static uint64_t parse_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static ParseSym *parse_slot(Parser *P, const char *key)
{
	for (uint64_t i = parse_hash(key);; i++) {
		ParseSym *s = &P->sym[i & (P->capsym - 1)];
		if (!s->key || strcmp(s->key, key) == 0)
			return s;
	}
}

static void parse_sym_grow(Parser *P)
{
	ParseSym *old = P->sym;
	int oldcap = P->capsym;
	P->capsym = oldcap ? oldcap * 2 : 64;
	P->sym = calloc(P->capsym, sizeof *P->sym);
	DLCC_ASSERT(P->sym);
	for (int i = 0; i < oldcap; i++)
		if (old[i].key)
			*parse_slot(P, old[i].key) = old[i];
	free(old);
}

/* `%name`: returns the symbol key; *loc is where it starts, *name the plain name */
static const char *parse_ref_key(Parser *P, const char **loc, char **name, int *quoted)
{
	parse_skip(P);
	*loc = P->p;
	if (*P->p != '%')
		parse_error(P, P->p, "expected a value (%%name)");
	P->p++;
	if (*P->p != '"' && !parse_is_word_char(*P->p))
		parse_error(P, P->p, "expected a value name after '%%'");
	*name = parse_word(P, "a value name", quoted);
	if (!*quoted || !parse_all_digits(*name))
		return *name;
	char *k = ir_alloc(P->g, strlen(*name) + 2);
	k[0] = '"';
	strcpy(k + 1, *name);
	return k;
}

static Value *parse_use(Parser *P)
{
	const char *loc;
	char *name;
	int quoted;
	const char *key = parse_ref_key(P, &loc, &name, &quoted);
	ParseSym *s = P->capsym ? parse_slot(P, key) : NULL;
	if (!s || !s->key)
		parse_error(P, loc, "unknown value %%%s", name);
	return s->v;
}

/* a declaration `%name`: checks it is new; the value is bound later by parse_bind */
typedef struct {
	const char *loc, *key;
	char *name;
	int want; /* the id an unquoted number asks for, else -1 */
} ParseDecl;

static ParseDecl parse_decl_name(Parser *P)
{
	ParseDecl d;
	int quoted;
	d.key = parse_ref_key(P, &d.loc, &d.name, &quoted);
	d.want = -1;
	if (!quoted && parse_all_digits(d.name)) {
		long id = strlen(d.name) < 9 ? atol(d.name) : PARSE_MAX_ID;
		if (id >= PARSE_MAX_ID)
			parse_error(P, d.loc, "value id %s is too large", d.name);
		d.want = (int)id;
	}
	if (P->capsym && parse_slot(P, d.key)->key)
		parse_error(P, d.loc, "value %%%s is defined twice", d.name);
	return d;
}

/* P->want holds at least n entries; new ones are -1 */
static void parse_want_reserve(Parser *P, int n)
{
	if (n <= P->capwant)
		return;
	int nc = n * 2 + 64;
	P->want = realloc(P->want, nc * sizeof *P->want);
	DLCC_ASSERT(P->want);
	for (int i = P->capwant; i < nc; i++)
		P->want[i] = -1;
	P->capwant = nc;
}

static void parse_bind(Parser *P, const ParseDecl *d, Value *v)
{
	if (2 * (P->nsym + 1) > P->capsym)
		parse_sym_grow(P);
	ParseSym *s = parse_slot(P, d->key);
	s->key = d->key;
	s->v = v;
	P->nsym++;
	v->name = d->name;
	parse_want_reserve(P, v->id + 1);
	P->want[v->id] = d->want;
}

/* ---- types and data ---- */

static int64_t parse_dim(Parser *P)
{
	parse_skip(P);
	const char *s = P->p;
	int64_t k = 1;
	if (isdigit((unsigned char)*P->p)) {
		errno = 0;
		k = strtoll(s, (char **)&P->p, 10);
		if (errno || k > ((int64_t)1 << 48))
			parse_error(P, s, "dimension too large");
		if (*P->p != 'N')
			return k;
		if (k == 0)
			parse_error(P, s, "bad dimension: 0N");
	}
	if (*P->p != 'N' || parse_is_word_char(P->p[1]))
		parse_error(P, s, "bad dimension: expected a number, N or kN (like 2N)");
	P->p++;
	return -k;
}

static Shape parse_shape(Parser *P)
{
	Shape s = ir_shape0();
	parse_expect(P, "[");
	if (parse_accept(P, "]"))
		return s;
	do {
		parse_skip(P);
		if (s.rank == IR_MAX_RANK)
			parse_error(P, P->p, "more than %d dimensions", IR_MAX_RANK);
		s.d[s.rank++] = parse_dim(P);
	} while (parse_accept(P, ","));
	parse_expect(P, "]");
	return s;
}

/* `f32[N,64]`; *loc is where it starts */
static void parse_type(Parser *P, DType *dt, Shape *s, const char **loc)
{
	parse_skip(P);
	*loc = P->p;
	const char *w = P->p;
	while (isalnum((unsigned char)*P->p))
		P->p++;
	char name[16];
	snprintf(name, sizeof name, "%.*s", (int)(P->p - w), w);
	int d = ir_dt_lookup(name);
	if (d < 0)
		parse_error(P, w, "unknown dtype '%s' (f32, f16, bf16, f64, i64, i32, bool, u8)", name);
	*dt = (DType)d;
	*s = parse_shape(P);
}

static void parse_elem(Parser *P, DType dt, void *data, int64_t k)
{
	parse_skip(P);
	const char *s = P->p;
	char *end;
	errno = 0;
	if (ir_dt_is_float(dt)) {
		float x = strtof(s, &end);
		double d = dt == DT_F64 ? strtod(s, &end) : x;
		if (end == s)
			parse_error(P, s, "expected a number");
		char *o = (char *)data;
		if (dt == DT_F32) memcpy(o + 4 * k, &x, 4);
		if (dt == DT_F64) memcpy(o + 8 * k, &d, 8);
		if (dt == DT_F16) ((uint16_t *)data)[k] = rt_f32_to_f16(x);
		if (dt == DT_BF16) ((uint16_t *)data)[k] = rt_f32_to_bf16(x);
	} else {
		long long x = strtoll(s, &end, 10);
		if (end == s || errno)
			parse_error(P, s, "expected an integer");
		if (dt == DT_I64) ((int64_t *)data)[k] = x;
		if (dt == DT_I32) ((int32_t *)data)[k] = (int32_t)x;
		if (dt == DT_BOOL || dt == DT_U8) ((uint8_t *)data)[k] = (uint8_t)x;
	}
	P->p = end;
}

/* a scalar, or `[e, e, ...]` with exactly numel elements; the data lives in the arena */
static void *parse_data(Parser *P, DType dt, const Shape *s, const char *tloc)
{
	if (ir_has_batch(s))
		parse_error(P, tloc, "data cannot have a batch dimension");
	int64_t n = ir_numel(s), k = 0;
	void *data = ir_alloc(P->g, (n ? n : 1) * ir_dt_size(dt));
	parse_skip(P);
	const char *start = P->p;
	if (!parse_accept(P, "[")) {
		if (s->rank != 0 && n != 1)
			parse_error(P, start, "expected '[' and %lld values", (long long)n);
		parse_elem(P, dt, data, 0);
		return data;
	}
	if (!parse_accept(P, "]")) {
		do {
			if (k == n)
				parse_error(P, P->p, "more than %lld values for the type", (long long)n);
			parse_elem(P, dt, data, k++);
		} while (parse_accept(P, ","));
		parse_expect(P, "]");
	}
	if (k != n)
		parse_error(P, start, "%lld values for a type that holds %lld", (long long)k, (long long)n);
	return data;
}

/* small uniform values in [-0.1, 0.1), the same for the same name (splitmix64) */
static void *parse_param_data(Graph *g, const char *name, DType dt, const Shape *s)
{
	int64_t n = ir_numel(s);
	void *data = ir_alloc(g, (n ? n : 1) * ir_dt_size(dt));
	uint64_t x = parse_hash(name);
	for (int64_t k = 0; k < n && ir_dt_is_float(dt); k++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		float u = (float)((double)(z >> 11) / 9007199254740992.0 * 0.2 - 0.1);
		if (dt == DT_F32) ((float *)data)[k] = u;
		if (dt == DT_F64) ((double *)data)[k] = u;
		if (dt == DT_F16) ((uint16_t *)data)[k] = rt_f32_to_f16(u);
		if (dt == DT_BF16) ((uint16_t *)data)[k] = rt_f32_to_bf16(u);
	}
	return data;
}

/* ---- graph-level values ---- */

static void parse_value_stmt(Parser *P, ValueKind kind, const char *kwloc)
{
	ParseDecl d = parse_decl_name(P);
	DType dt;
	Shape s;
	const char *tloc;
	parse_expect(P, ":");
	parse_type(P, &dt, &s, &tloc);
	void *data = NULL;
	Value *param = NULL;
	char *slot = NULL;
	if (parse_accept(P, "=")) {
		if (kind == V_STATE) {
			parse_skip(P);
			if (!parse_accept(P, "slot"))
				parse_error(P, P->p, "expected 'slot NAME of %%param'");
			slot = parse_word(P, "a slot name", NULL);
			if (parse_accept(P, "of")) /* else a step-global state (loss scaling) */
				param = parse_use(P);
		} else if (kind == V_CONST || kind == V_PARAM) {
			data = parse_data(P, dt, &s, tloc);
		} else {
			parse_error(P, P->p - 1, "only const, param and state take '='");
		}
	} else if (kind == V_CONST) {
		parse_error(P, P->p, "const %%%s needs its data: '= ...'", d.name);
	}
	if (kind == V_PARAM && !data) {
		if (ir_has_batch(&s))
			parse_error(P, tloc, "a parameter cannot have a batch dimension");
		data = parse_param_data(P->g, d.name, dt, &s);
	}
	if (kind == V_LABEL && P->g->label)
		parse_error(P, kwloc, "a second label");
	Value *v = ir_value(P->g, kind, d.name, dt, s, data);
	v->param = param;
	v->slot = slot;
	v->buffer = strncmp(kwloc, "buffer", 6) == 0; /* a param the graph updates, not trained */
	parse_bind(P, &d, v);
}

/* ---- nodes ---- */

static void parse_attr_value(Parser *P, Node *n, const char *name);

static void parse_attrs(Parser *P, Node *n)
{
	if (!parse_accept(P, "{"))
		return;
	if (parse_accept(P, "}"))
		return;
	do {
		char *name = parse_word(P, "an attribute name", NULL);
		parse_expect(P, "=");
		parse_attr_value(P, n, name);
	} while (parse_accept(P, ","));
	parse_expect(P, "}");
}

/* one attribute number: int unless its text has '.', an exponent, inf or nan */
static int parse_attr_num(Parser *P, int64_t *i, double *f)
{
	parse_skip(P);
	const char *s = P->p;
	char *end, *iend;
	*f = strtod(s, &end);
	if (end == s)
		parse_error(P, s, "expected a number");
	P->p = end;
	for (const char *q = s; q < end; q++)
		if (strchr(".eEnNiI", *q))
			return 1;
	errno = 0;
	*i = strtoll(s, &iend, 10);
	if (iend != end || errno)
		parse_error(P, s, "bad integer");
	return 0;
}

static void parse_attr_list(Parser *P, Node *n, const char *name, int floats)
{
	int cnt = 0, cap = 8, isf = floats;
	int64_t *iv = ir_alloc(P->g, cap * sizeof *iv);
	double *fv = ir_alloc(P->g, cap * sizeof *fv);
	if (!parse_accept(P, "]")) {
		do {
			if (cnt == cap) { /* grow in the arena; the old arrays are abandoned */
				cap *= 2;
				iv = memcpy(ir_alloc(P->g, cap * sizeof *iv), iv, cnt * sizeof *iv);
				fv = memcpy(ir_alloc(P->g, cap * sizeof *fv), fv, cnt * sizeof *fv);
			}
			if (parse_attr_num(P, &iv[cnt], &fv[cnt]))
				isf = 1;
			else
				fv[cnt] = (double)iv[cnt];
			cnt++;
		} while (parse_accept(P, ","));
		parse_expect(P, "]");
	}
	if (isf)
		ir_set_floats(P->g, n, name, cnt, fv);
	else
		ir_set_ints(P->g, n, name, cnt, iv);
}

static void parse_attr_value(Parser *P, Node *n, const char *name)
{
	parse_skip(P);
	if (*P->p == '"') {
		ir_set_s(P->g, n, name, parse_string(P));
	} else if (parse_accept(P, "[")) {
		parse_attr_list(P, n, name, 0);
	} else if (parse_accept(P, "floats[")) {
		parse_attr_list(P, n, name, 1);
	} else {
		int64_t i;
		double f;
		if (parse_attr_num(P, &i, &f))
			ir_set_f(P->g, n, name, f);
		else
			ir_set_i(P->g, n, name, i);
	}
}

typedef struct {
	ParseDecl d;
	DType dt;
	Shape s;
	const char *tloc;
} ParseOut;

static void parse_check_out(Parser *P, const Node *n, const ParseOut *o, const Value *v)
{
	if (o->dt == v->dt && ir_shape_eq(&o->s, &v->shape))
		return;
	char a[160], b[160];
	parse_error(P, o->tloc, "%%%s is written %s%s but %s gives %s%s", o->d.name, ir_dt_name(o->dt),
		    ir_shape_str(&o->s, a, sizeof a), ir_ops[n->op].name, ir_dt_name(v->dt),
		    ir_shape_str(&v->shape, b, sizeof b));
}

/* `(%a, %b)` into in[]; returns the count */
static int parse_args(Parser *P, Value **in)
{
	int nin = 0;
	parse_expect(P, "(");
	if (parse_accept(P, ")"))
		return 0;
	do {
		parse_skip(P);
		if (nin == PARSE_MAX_IN)
			parse_error(P, P->p, "more than %d inputs", PARSE_MAX_IN);
		in[nin++] = parse_use(P);
	} while (parse_accept(P, ","));
	parse_expect(P, ")");
	return nin;
}

static void parse_node(Parser *P)
{
	ParseOut outs[PARSE_MAX_IN];
	int nout = 0;
	do {
		if (nout == PARSE_MAX_IN)
			parse_error(P, P->p, "too many outputs");
		ParseOut *o = &outs[nout++];
		o->d = parse_decl_name(P);
		for (int i = 0; i < nout - 1; i++)
			if (strcmp(outs[i].d.key, o->d.key) == 0)
				parse_error(P, o->d.loc, "value %%%s is defined twice", o->d.name);
		parse_expect(P, ":");
		parse_type(P, &o->dt, &o->s, &o->tloc);
	} while (parse_accept(P, ","));
	parse_expect(P, "=");
	parse_skip(P);
	const char *oploc = P->p;
	char *opname = parse_word(P, "an op name", NULL);
	int op = ir_op_lookup(opname);
	if (op < 0)
		parse_error(P, oploc, "unknown op '%s'", opname);
	const OpInfo *oi = &ir_ops[op];
	Value *in[PARSE_MAX_IN];
	int nin = parse_args(P, in);
	if ((nin < oi->min_in || nin > oi->max_in) && oi->min_in == oi->max_in)
		parse_error(P, oploc, "%s takes %d input%s, not %d", oi->name, oi->min_in,
			    oi->min_in == 1 ? "" : "s", nin);
	if (nin < oi->min_in || nin > oi->max_in)
		parse_error(P, oploc, "%s takes %d to %d inputs, not %d", oi->name, oi->min_in, oi->max_in, nin);
	if (nout != oi->nout)
		parse_error(P, outs[0].d.loc, "%s has %d output%s, %d written", oi->name, oi->nout,
			    oi->nout == 1 ? "" : "s", nout);
	Node *n = ir_begin(P->g, (Op)op, NULL, nin, in);
	parse_attrs(P, n);
	if (parse_accept(P, "@")) {
		n->name = parse_word(P, "a node name", NULL);
	} else { /* ir_finish's default, known before the shape rule runs (for its messages) */
		char dflt[64];
		snprintf(dflt, sizeof dflt, "%s_%d", oi->name, P->g->nnodes);
		n->name = ir_strdup(P->g, dflt);
	}
	if (ir_finish(P->g, n) < 0)
		parse_error(P, oploc, "%s", P->g->err);
	for (int i = 0; i < nout; i++) {
		parse_check_out(P, n, &outs[i], n->out[i]);
		parse_bind(P, &outs[i].d, n->out[i]);
	}
}

/* ---- results ---- */

static void parse_update(Parser *P)
{
	parse_skip(P);
	const char *loc = P->p;
	Value *s = parse_use(P);
	parse_expect(P, "<-");
	Value *v = parse_use(P);
	char a[160], b[160];
	if (s->kind != V_PARAM && s->kind != V_STATE)
		parse_error(P, loc, "update of %%%s, which is not a param or state", s->name);
	if (s->dt != v->dt || !ir_shape_eq(&s->shape, &v->shape))
		parse_error(P, loc, "update of %%%s (%s%s) with %%%s (%s%s)", s->name, ir_dt_name(s->dt),
			    ir_shape_str(&s->shape, a, sizeof a), v->name, ir_dt_name(v->dt),
			    ir_shape_str(&v->shape, b, sizeof b));
	ir_add_update(P->g, s, v);
}

static void parse_loss(Parser *P)
{
	parse_skip(P);
	const char *loc = P->p;
	Value *v = parse_use(P);
	if (v->shape.rank != 0)
		parse_error(P, loc, "the loss %%%s must be a scalar", v->name);
	P->g->loss = v;
}

/* one statement; 0 at the closing brace */
static int parse_stmt(Parser *P)
{
	static const struct { const char *kw; ValueKind k; } decls[] = {
		{"input", V_INPUT}, {"label", V_LABEL}, {"param", V_PARAM},
		{"state", V_STATE}, {"const", V_CONST}, {"buffer", V_PARAM},
	};
	parse_skip(P);
	const char *loc = P->p;
	if (parse_accept(P, "}"))
		return 0;
	if (*P->p == '%') {
		parse_node(P);
		return 1;
	}
	if (!*P->p)
		parse_error(P, loc, "missing '}' at the end of the graph");
	char *kw = parse_word(P, "a statement", NULL);
	for (size_t i = 0; i < sizeof decls / sizeof *decls; i++)
		if (strcmp(kw, decls[i].kw) == 0) {
			parse_value_stmt(P, decls[i].k, loc);
			return 1;
		}
	if (strcmp(kw, "update") == 0)
		parse_update(P);
	else if (strcmp(kw, "loss") == 0)
		parse_loss(P);
	else if (strcmp(kw, "output") == 0)
		ir_add_output(P->g, parse_use(P));
	else if (strcmp(kw, "loss_kind") == 0)
		P->g->loss_kind = parse_word(P, "a loss kind", NULL);
	else if (strcmp(kw, "optimizer") == 0)
		P->g->optimizer = parse_word(P, "an optimizer name", NULL);
	else
		parse_error(P, loc, "unknown statement '%s'", kw);
	return 1;
}

/* ---- ids ---- */

/* g->values[i]->id == i afterwards, with the ids the text asked for (see the header) */
static void parse_renumber(Parser *P)
{
	Graph *g = P->g;
	int n = g->nvalues, max = n;
	for (int i = 0; i < n; i++)
		if (P->want[i] >= max)
			max = P->want[i] + 1;
	Value **vals = ir_alloc(g, (max ? max : 1) * sizeof *vals);
	for (int i = 0; i < n; i++)
		if (P->want[i] >= 0)
			vals[P->want[i]] = g->values[i];
	int free_id = 0;
	for (int i = 0; i < n; i++) {
		if (P->want[i] >= 0)
			continue;
		while (vals[free_id])
			free_id++;
		vals[free_id] = g->values[i];
	}
	for (int i = 0; i < max; i++) {
		if (!vals[i]) {
			char name[24];
			snprintf(name, sizeof name, "%d", i);
			vals[i] = ir_alloc(g, sizeof *vals[i]);
			vals[i]->kind = V_TEMP;
			vals[i]->name = ir_strdup(g, name);
		}
		vals[i]->id = i;
	}
	g->values = vals;
	g->nvalues = g->capvalues = max;
}

static void parse_graph(Parser *P)
{
	parse_skip(P);
	if (!parse_accept(P, "graph"))
		parse_error(P, P->p, "expected 'graph NAME {'");
	P->g->name = parse_word(P, "a graph name", NULL);
	parse_expect(P, "{");
	while (parse_stmt(P))
		;
	parse_skip(P);
	if (*P->p)
		parse_error(P, P->p, "text after the end of the graph");
	parse_want_reserve(P, P->g->nvalues + 1);
	parse_renumber(P);
}

Graph *ir_parse(const char *text, const char *filename, char *err, size_t errlen)
{
	Parser *P = calloc(1, sizeof *P);
	DLCC_ASSERT(P);
	P->g = ir_graph_new("main");
	P->src = P->p = text;
	P->file = filename ? filename : "<input>";
	P->err = err;
	P->errlen = errlen;
	Graph *g = P->g;
	if (setjmp(P->fail)) {
		ir_graph_free(P->g);
		g = NULL;
	} else {
		parse_graph(P);
	}
	free(P->sym);
	free(P->want);
	free(P);
	return g;
}
