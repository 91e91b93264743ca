/*
 * dsl_lex.c — the .dl tokenizer, and the one error path of the frontend.
 *
 * The whole file becomes a token array before anything is evaluated (blocks and loops re-walk
 * it). Tokens: identifiers (letters, digits, '_', and inner dots: `fc1.weight`), names in
 * backticks for anything else (`0.weight`, `onnx::MatMul_24`), integers and floats, strings in
 * double quotes, and punctuation. `#` and `//` start a comment. A newline ends a statement
 * unless it is inside ( ) or [ ] (as in Python), so a long call may wrap.
 *
 * dsl_fail formats `file:line:col: message`, the source line and a caret under the column, then
 * longjmps to the frontend's entry point (dsl.c), which frees everything: errors are plain
 * returns to the user, never aborts. The small token helpers used by the parser live here too.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/dsl_imp.h"

static void format_at(Dsl *d, int line, int col, const char *msg)
{
	const char *p = d->src;
	for (int l = 1; l < line && *p; p++)
		if (*p == '\n')
			l++;
	const char *e = p;
	while (*e && *e != '\n' && *e != '\r')
		e++;
	int len = (int)(e - p) > 300 ? 300 : (int)(e - p);
	char caret[320];
	int c = 0;
	for (; c < col - 1 && c < len && c < 300; c++)
		caret[c] = p[c] == '\t' ? '\t' : ' ';
	caret[c] = 0;
	snprintf(d->err, d->errlen, "%s:%d:%d: %s\n  %.*s\n  %s^", d->file, line, col, msg, len, p, caret);
}

static _Noreturn void fail_at(Dsl *d, int line, int col, const char *msg)
{
	format_at(d, line, col, msg);
	longjmp(d->fail, 1);
}

_Noreturn void dsl_fail(Dsl *d, int tok, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	Tok *t = dsl_tok(d, tok);
	fail_at(d, t->line, t->col, msg);
}

static _Noreturn void lex_fail(Dsl *d, int line, int col, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fail_at(d, line, col, msg);
}

static Tok *push(Dsl *d, TokKind k, int line, int col)
{
	if (d->ntoks == d->cap) {
		int cap = d->cap ? 2 * d->cap : 256;
		Tok *t = realloc(d->toks, cap * sizeof *t);
		if (!t)
			lex_fail(d, line, col, "out of memory");
		d->toks = t;
		d->cap = cap;
	}
	Tok *t = &d->toks[d->ntoks++];
	memset(t, 0, sizeof *t);
	t->k = k;
	t->line = line;
	t->col = col;
	return t;
}

static char *span(Dsl *d, const char *p, size_t n)
{
	char *s = ir_alloc(d->g, n + 1);
	memcpy(s, p, n);
	return s;
}

static int ident_char(int c) { return isalnum(c) || c == '_'; }

static const char *lex_ident(Dsl *d, const char *p, Tok *t)
{
	const char *s = p;
	while (ident_char((unsigned char)*p) || (*p == '.' && ident_char((unsigned char)p[1])))
		p++;
	t->text = span(d, s, p - s);
	return p;
}

static const char *lex_quoted(Dsl *d, const char *p, Tok *t)
{
	const char *s = ++p;
	while (*p && *p != '`' && *p != '\n')
		p++;
	if (*p != '`' || p == s)
		lex_fail(d, t->line, t->col, *p == '`' ? "empty `name`" : "unterminated `name` (a closing ` is missing)");
	t->text = span(d, s, p - s);
	t->quoted = 1;
	return p + 1;
}

static const char *lex_number(Dsl *d, const char *p, Tok *t)
{
	const char *s = p;
	while (isdigit((unsigned char)*p))
		p++;
	int is_float = 0;
	if (*p == '.' && p[1] != '.' && !isalpha((unsigned char)p[1]) && p[1] != '_') {
		is_float = 1;
		for (p++; isdigit((unsigned char)*p); p++) {}
	}
	if ((*p == 'e' || *p == 'E') && (isdigit((unsigned char)p[1]) ||
					 ((p[1] == '+' || p[1] == '-') && isdigit((unsigned char)p[2])))) {
		is_float = 1;
		for (p += 2; isdigit((unsigned char)*p); p++) {}
	}
	const char *e = p;
	while (ident_char((unsigned char)*e) || (*e == '.' && isdigit((unsigned char)e[1])))
		e++;
	if (e != p)
		lex_fail(d, t->line, t->col, "bad number literal '%.*s'", (int)(e - s) > 40 ? 40 : (int)(e - s), s);
	t->num = strtod(span(d, s, p - s), NULL);
	t->k = is_float ? TK_FLOAT : TK_INT;
	if (!is_float && t->num > 9007199254740992.0)
		lex_fail(d, t->line, t->col, "bad number literal '%.*s': too large for an integer",
			 (int)(p - s) > 40 ? 40 : (int)(p - s), s);
	if (isinf(t->num))
		lex_fail(d, t->line, t->col, "bad number literal: out of range");
	return p;
}

static const char *lex_string(Dsl *d, const char *p, Tok *t)
{
	char *buf = ir_alloc(d->g, strlen(p) + 1), *o = buf;
	for (p++; *p != '"'; p++) {
		if (!*p || *p == '\n')
			lex_fail(d, t->line, t->col, "unterminated string (a closing \" is missing)");
		if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
			p++;
		*o++ = *p;
	}
	t->text = buf;
	return p + 1;
}

static const char *lex_punct(Dsl *d, const char *p, Tok *t, int *depth)
{
	static const char *const two[] = {"..", NULL};
	for (int i = 0; two[i]; i++)
		if (!strncmp(p, two[i], 2)) {
			t->text = two[i];
			return p + 2;
		}
	const char *one = "()[]{},:=+-*/@";
	const char *q = *p ? strchr(one, *p) : NULL;
	if (!q) {
		if (isprint((unsigned char)*p))
			lex_fail(d, t->line, t->col, "unexpected character '%c'", *p);
		lex_fail(d, t->line, t->col, "unexpected byte 0x%02x", (unsigned char)*p);
	}
	t->text = span(d, p, 1);
	if (*p == '(' || *p == '[')
		++*depth;
	if ((*p == ')' || *p == ']') && *depth > 0)
		--*depth;
	return p + 1;
}

static void newline(Dsl *d, int line, int col)
{
	if (d->ntoks && d->toks[d->ntoks - 1].k != TK_NL)
		push(d, TK_NL, line, col);
}

int dsl_lex(Dsl *d)
{
	const char *p = d->src, *bol = p;
	int line = 1, depth = 0;
	for (;;) {
		int col = (int)(p - bol) + 1;
		if (*p == '\n') {
			if (!depth)
				newline(d, line, col);
			line++, p++, bol = p;
		} else if (*p == ' ' || *p == '\t' || *p == '\r') {
			p++;
		} else if (*p == '#' || (*p == '/' && p[1] == '/')) {
			while (*p && *p != '\n')
				p++;
		} else if (!*p) {
			newline(d, line, col);
			push(d, TK_EOF, line, col);
			return 0;
		} else if (isalpha((unsigned char)*p) || *p == '_') {
			p = lex_ident(d, p, push(d, TK_IDENT, line, col));
		} else if (*p == '`') {
			p = lex_quoted(d, p, push(d, TK_IDENT, line, col));
		} else if (isdigit((unsigned char)*p) || (*p == '.' && isdigit((unsigned char)p[1]))) {
			p = lex_number(d, p, push(d, TK_INT, line, col));
		} else if (*p == '"') {
			p = lex_string(d, p, push(d, TK_STRING, line, col));
		} else {
			p = lex_punct(d, p, push(d, TK_PUNCT, line, col), &depth);
		}
	}
}

/* ---- token helpers for the parser ---- */

Tok *dsl_tok(Dsl *d, int i) { return &d->toks[i < d->ntoks ? i : d->ntoks - 1]; }

int dsl_is(Dsl *d, const char *punct)
{
	Tok *t = dsl_tok(d, d->pos);
	return t->k == TK_PUNCT && !strcmp(t->text, punct);
}

int dsl_accept(Dsl *d, const char *punct)
{
	if (!dsl_is(d, punct))
		return 0;
	d->pos++;
	return 1;
}

static const char *describe(Tok *t, char *buf, size_t len)
{
	switch (t->k) {
	case TK_EOF: return "the end of the file";
	case TK_NL: return "the end of the line";
	case TK_INT:
	case TK_FLOAT: snprintf(buf, len, "the number %g", t->num); return buf;
	case TK_STRING: return "a string";
	default: snprintf(buf, len, "'%.60s'", t->text); return buf;
	}
}

void dsl_expect(Dsl *d, const char *punct)
{
	char buf[80];
	if (!dsl_accept(d, punct))
		dsl_fail(d, d->pos, "expected '%s' but found %s", punct, describe(dsl_tok(d, d->pos), buf, sizeof buf));
}

int dsl_is_kw(Dsl *d, const char *kw)
{
	Tok *t = dsl_tok(d, d->pos);
	return t->k == TK_IDENT && !t->quoted && !strcmp(t->text, kw);
}

const char *dsl_ident(Dsl *d, const char *what)
{
	char buf[80];
	Tok *t = dsl_tok(d, d->pos);
	if (t->k != TK_IDENT)
		dsl_fail(d, d->pos, "expected %s but found %s", what, describe(t, buf, sizeof buf));
	d->pos++;
	return t->text;
}

void dsl_skip_nl(Dsl *d)
{
	while (dsl_tok(d, d->pos)->k == TK_NL)
		d->pos++;
}

void dsl_end_stmt(Dsl *d)
{
	char buf[80];
	Tok *t = dsl_tok(d, d->pos);
	if (t->k == TK_NL)
		d->pos++;
	else if (!(t->k == TK_EOF || (t->k == TK_PUNCT && !strcmp(t->text, "}"))))
		dsl_fail(d, d->pos, "expected the end of the statement but found %s", describe(t, buf, sizeof buf));
}
