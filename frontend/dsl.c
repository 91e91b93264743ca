/*
 * dsl.c — the entry points of the .dl frontend: read the file, tokenize it, evaluate it into a
 * Graph, and hand back the graph and the training section.
 *
 * Every error anywhere in the frontend longjmps back here (dsl_fail in dsl_lex.c); the only
 * memory outside the graph's arena is the source text and the token array, both freed here, so
 * a failed parse frees the graph and returns NULL with the three-line message in err. The graph
 * is checked by ir_verify before it is returned: a .dl file gives a graph as well formed as an
 * ONNX import, or an error.
 */
#include <stdlib.h>
#include <string.h>

#include "frontend/dsl_imp.h"

int64_t dsl_limit_elements = (int64_t)1 << 31;

static const char *base_name(Graph *g, const char *path)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	char *s = ir_strdup(g, b);
	char *dot = strrchr(s, '.');
	if (dot && dot != s)
		*dot = 0;
	return s;
}

Graph *dsl_parse(const char *text, size_t len, const char *filename, DslTrain *train_out, char *err,
		 size_t errlen)
{
	Dsl *d = calloc(1, sizeof *d);
	char *src = malloc(len + 1);
	if (!d || !src) {
		free(d);
		free(src);
		snprintf(err, errlen, "%s: out of memory", filename);
		return NULL;
	}
	memcpy(src, text, len);
	src[len] = 0;
	d->file = filename;
	d->src = src;
	d->err = err;
	d->errlen = errlen;
	d->g = ir_graph_new("dl");
	d->g->name = base_name(d->g, filename);
	Graph *volatile g = d->g;
	if (setjmp(d->fail)) {
		ir_graph_free(g);
		g = NULL;
	} else {
		dsl_lex(d);
		dsl_program(d);
		if (ir_verify(g) < 0) {
			snprintf(err, errlen, "%s: internal error: the graph does not verify: %s", filename, g->err);
			ir_graph_free(g);
			g = NULL;
		}
	}
	if (g && train_out)
		*train_out = d->train;
	free(d->toks);
	free(src);
	free(d);
	return g;
}

Graph *dsl_load(const char *path, DslTrain *train_out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open the file", path);
		return NULL;
	}
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	for (size_t got; buf && (got = fread(buf + len, 1, cap - len, f)) > 0;) {
		len += got;
		if (len == cap) {
			char *nb = cap < ((size_t)1 << 28) ? realloc(buf, cap *= 2) : NULL;
			if (!nb) {
				free(buf);
				buf = NULL;
			}
			buf = nb;
		}
	}
	fclose(f);
	if (!buf) {
		snprintf(err, errlen, "%s: the file is too large or memory ran out", path);
		return NULL;
	}
	Graph *g = dsl_parse(buf, len, path, train_out, err, errlen);
	free(buf);
	return g;
}
