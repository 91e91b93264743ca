/*
 * dsl_imp.h — what the parts of the .dl frontend share: tokens, the values an expression can
 * have, scopes, and the parser state.
 *
 * The frontend is a token interpreter: dsl_lex.c turns the whole file into a token array once;
 * dsl_stmt.c and dsl_expr.c walk it and build IR as they go. A block definition only records
 * where its body starts; each call re-walks those tokens in a fresh scope, and a `for` loop
 * re-walks its body once per value. So there is no syntax tree, and every error points at the
 * token it is about. Values are numbers (with an optional multiple of the batch N), lists or
 * tensors (IR Values). Everything lives in the graph's arena or in the Dsl struct, freed by
 * dsl_parse in one place.
 */
#ifndef DLCC_FRONTEND_DSL_IMP_H
#define DLCC_FRONTEND_DSL_IMP_H

#include <setjmp.h>

#include "frontend/dsl.h"

typedef enum { TK_EOF, TK_NL, TK_IDENT, TK_INT, TK_FLOAT, TK_STRING, TK_PUNCT } TokKind;

typedef struct {
	TokKind k;
	int line, col;
	const char *text; /* TK_IDENT/TK_STRING: NUL-terminated name; TK_PUNCT: "(" ".." etc. */
	double num;       /* TK_INT, TK_FLOAT */
	int quoted;       /* TK_IDENT written `like this` (never a keyword) */
} Tok;

typedef enum { DV_NUM, DV_LIST, DV_TENSOR, DV_STR } DValKind;

typedef struct DVal {
	DValKind k;
	double num;     /* DV_NUM: the number is num + nb * N */
	int64_t nb;
	int is_int;
	struct DVal *items; /* DV_LIST */
	int n;
	Value *t;       /* DV_TENSOR */
	const char *s;  /* DV_STR: a string attribute (keyword arguments only) */
} DVal;

typedef struct Binding {
	const char *name;
	DVal v;
	struct Binding *next;
} Binding;

typedef struct Scope {
	Binding *vars;
	struct Scope *parent; /* the global scope, for a block call; NULL at the top */
	const char *prefix;   /* parameter name prefix: "" or "h0.attn." */
	int in_block;
	int returned;
	DVal ret;
} Scope;

typedef struct BlockDef {
	const char *name;
	int tok;        /* index of the '(' after the name */
	int body;       /* index of the '{' of the body */
	int nparams;
	const char **params;
	struct BlockDef *next;
} BlockDef;

typedef struct {
	const char *file, *src;
	Tok *toks;
	int ntoks, cap, pos;
	Graph *g;
	DslTrain train;
	Scope global;
	Scope *scope;   /* the scope being evaluated */
	BlockDef *blocks;
	uint64_t seed;
	int depth, model_named;
	int calls, loops;           /* block calls and for loops being evaluated */
	const char *assign_name;    /* NAME of `NAME = expr` being evaluated ... */
	int assign_tok;             /* ... and the token its expression starts at */
	int64_t elements, loop_steps;
	char *err;
	size_t errlen;
	jmp_buf fail;
} Dsl;

/* dsl_lex.c */
int dsl_lex(Dsl *d);                   /* fills toks; -1 with err set */
_Noreturn void dsl_fail(Dsl *d, int tok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
Tok *dsl_tok(Dsl *d, int i);
int dsl_is(Dsl *d, const char *punct); /* the current token is this punctuation */
int dsl_accept(Dsl *d, const char *punct);
void dsl_expect(Dsl *d, const char *punct);
int dsl_is_kw(Dsl *d, const char *kw);  /* an unquoted identifier equal to kw */
const char *dsl_ident(Dsl *d, const char *what);
void dsl_skip_nl(Dsl *d);
void dsl_end_stmt(Dsl *d);

/* dsl_expr.c */
DVal dsl_expr(Dsl *d);
int64_t dsl_int_expr(Dsl *d, const char *what);
double dsl_num_expr(Dsl *d, const char *what);
const char *dsl_kind_name(const DVal *v, char *buf, size_t len);
DVal dsl_num(double x, int is_int);
DVal dsl_tensor(Value *t);
Binding *dsl_lookup(Dsl *d, Scope *s, const char *name);
void dsl_bind(Dsl *d, Scope *s, const char *name, DVal v);
Value *dsl_const_scalar(Dsl *d, int tok, DType dt, double x);

/* dsl_ops.c */
int dsl_find_op(const char *name); /* -1 if no op is called this (case and '_' ignored) */
DVal dsl_call_op(Dsl *d, int op, int name_tok);
int dsl_attr_is_default(const Node *n, const Attr *a);
int dsl_op_has_spec(int op);

/* dsl_stmt.c */
void dsl_program(Dsl *d);
void dsl_statements(Dsl *d, Scope *s, int until_brace);
void dsl_skip_braces(Dsl *d);
DVal dsl_call_block(Dsl *d, BlockDef *b, int name_tok);
BlockDef *dsl_find_block(Dsl *d, const char *name);
void dsl_parse_shape(Dsl *d, Shape *s, int allow_batch);

/* dsl_init.c */
void dsl_param_init(Dsl *d, Value *p, const char *fullname);

/* dsl_train.c */
void dsl_train_section(Dsl *d);

#define DSL_MAX_DEPTH 200

#endif
