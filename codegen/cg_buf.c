/*
 * cg_buf.c — the small text utilities every emitter uses: a growable buffer with printf,
 * extents as C expressions of the batch variable, and the comment text naming IR nodes.
 *
 * Expressions are returned from a ring of static buffers so that emitters can nest a few calls
 * inside one cg_printf; the compiler is single-threaded, and no caller keeps one across more
 * than a handful of later calls (32 live at most).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg_internal.h"

static void buf_reserve(CgBuf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + extra + 1)
		cap *= 2;
	b->s = realloc(b->s, cap);
	DLCC_ASSERT(b->s);
	b->cap = cap;
}

void cg_printf(CgBuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	DLCC_ASSERT(n >= 0);
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void cg_puts(CgBuf *b, const char *s)
{
	size_t n = strlen(s);
	buf_reserve(b, n);
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

void cg_buf_free(CgBuf *b)
{
	free(b->s);
	memset(b, 0, sizeof *b);
}

static char *ring_next(void)
{
	static char ring[32][256];
	static int at;
	at = (at + 1) % 32;
	return ring[at];
}

const char *cg_dim(int64_t d, const char *bv)
{
	char *s = ring_next();
	if (d >= 0)
		snprintf(s, 256, "%lldLL", (long long)d);
	else if (d == -1)
		snprintf(s, 256, "%s", bv);
	else
		snprintf(s, 256, "(%lldLL * %s)", (long long)-d, bv);
	return s;
}

const char *cg_prod(const Shape *sh, int from, int to, const char *bv)
{
	int64_t c = 1, k = 0; /* constant part, batch multiplicity */
	for (int i = from; i < to; i++) {
		if (sh->d[i] >= 0)
			c *= sh->d[i];
		else
			k = k ? k * -sh->d[i] : -sh->d[i];
	}
	int nb = 0;
	for (int i = from; i < to; i++)
		nb += sh->d[i] < 0;
	char *s = ring_next();
	if (nb == 0)
		snprintf(s, 256, "%lldLL", (long long)c);
	else if (nb == 1)
		snprintf(s, 256, "(%lldLL * %s)", (long long)(c * k), bv);
	else /* batch^nb: never produced by the shape rules, but stay correct */
		snprintf(s, 256, "(%lldLL * %s * %s)", (long long)(c * k), bv, bv);
	DLCC_ASSERT(nb <= 2);
	return s;
}

size_t cg_bytes(const Shape *s, size_t esize, int64_t batch)
{
	return (size_t)ir_numel_at(s, batch) * esize;
}

static void comment_safe(char *s)
{
	for (; *s; s++)
		if ((s[0] == '*' && s[1] == '/') || (s[0] == '/' && s[1] == '*') || *s == '\n')
			s[0] = '_';
}

const char *cg_vname(const Value *v)
{
	char *s = ring_next();
	snprintf(s, 256, "%%%s", v->name ? v->name : "?");
	comment_safe(s);
	return s;
}

const char *cg_node_comment(const Node *n)
{
	static char s[1024];
	size_t o = 0;
	for (int i = 0; i < n->nout && o < sizeof s; i++)
		o += snprintf(s + o, sizeof s - o, "%s%s", i ? ", " : "", cg_vname(n->out[i]));
	if (o < sizeof s)
		o += snprintf(s + o, sizeof s - o, " = %s(", ir_ops[n->op].name);
	for (int i = 0; i < n->nin && o < sizeof s; i++)
		o += snprintf(s + o, sizeof s - o, "%s%s", i ? ", " : "", cg_vname(n->in[i]));
	if (o < sizeof s)
		snprintf(s + o, sizeof s - o, ")  [node %s]", n->name ? n->name : "?");
	comment_safe(s);
	return s;
}

int cg_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}
