/*
 * conform_report.c — the markdown of `dlcc conform`: one summary row per suite (pass / fail /
 * unsupported, and how many passes needed integer inputs pinned), the operators the frontend
 * accepts, and — in the --report file — every failing case and the unsupported cases grouped by
 * (operator, reason) with a count per suite and one example message, most frequent first.
 */
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx.h"
#include "tools/conform.h"

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s && s[1] ? s + 1 : p;
}

static void summary(FILE *f, const Suite *s, int n)
{
	int t[4] = {0};
	fprintf(f, "| suite | cases | pass | fail | unsupported | pass with pinned inputs | seconds |\n");
	fprintf(f, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (int k = 0; k < n; k++) {
		int c[4] = {0};
		for (int i = 0; i < s[k].n; i++) {
			c[s[k].res[i].verdict]++;
			c[3] += s[k].res[i].verdict == R_PASS && s[k].res[i].pinned;
		}
		fprintf(f, "| %s | %d | %d | %d | %d | %d | %.1f |\n", base(s[k].dir), s[k].n, c[R_PASS],
			c[R_FAIL], c[R_UNSUP], c[3], s[k].seconds);
		for (int j = 0; j < 4; j++)
			t[j] += c[j];
	}
	if (n > 1)
		fprintf(f, "| **total** | %d | %d | %d | %d | %d | |\n", t[0] + t[1] + t[2], t[R_PASS],
			t[R_FAIL], t[R_UNSUP], t[3]);
}

/* a message cell: no '|' and at most 140 characters */
static void cell(FILE *f, const char *msg)
{
	int n = 0;
	for (const char *p = msg; *p && n < 140; p++, n++)
		fputc(*p == '|' ? '/' : *p, f);
	if (strlen(msg) > 140)
		fputs("…", f);
}

typedef struct {
	const char *op, *cat, *example;
	int count[16], total;
} Group;

static int cmp_group(const void *a, const void *b)
{
	const Group *x = a, *y = b;
	if (x->total != y->total)
		return y->total - x->total;
	int c = strcmp(x->op, y->op);
	return c ? c : strcmp(x->cat, y->cat);
}

static Group *group_of(Group **g, int *ng, const CaseResult *r)
{
	for (int i = 0; i < *ng; i++)
		if (!strcmp((*g)[i].op, r->op) && !strcmp((*g)[i].cat, r->cat))
			return &(*g)[i];
	*g = realloc(*g, (*ng + 1) * sizeof **g);
	Group *e = &(*g)[(*ng)++];
	memset(e, 0, sizeof *e);
	e->op = r->op;
	e->cat = r->cat;
	e->example = r->msg;
	return e;
}

static void unsupported(FILE *f, const Suite *s, int n)
{
	Group *g = NULL;
	int ng = 0;
	for (int k = 0; k < n && k < 16; k++)
		for (int i = 0; i < s[k].n; i++)
			if (s[k].res[i].verdict == R_UNSUP) {
				Group *e = group_of(&g, &ng, &s[k].res[i]);
				e->count[k]++;
				e->total++;
			}
	qsort(g, ng, sizeof *g, cmp_group);
	fprintf(f, "\n## Unsupported cases by operator and reason\n\n| operator | reason |");
	for (int k = 0; k < n; k++)
		fprintf(f, " %s |", base(s[k].dir));
	fprintf(f, " example |\n| --- | --- |");
	for (int k = 0; k < n; k++)
		fprintf(f, " ---: |");
	fprintf(f, " --- |\n");
	for (int i = 0; i < ng; i++) {
		fprintf(f, "| %s | %s |", g[i].op, g[i].cat);
		for (int k = 0; k < n; k++)
			fprintf(f, " %d |", g[i].count[k]);
		fputc(' ', f);
		cell(f, strcmp(g[i].cat, "operator") ? g[i].example : "");
		fputs(" |\n", f);
	}
	free(g);
}

static void failures(FILE *f, const Suite *s, int n)
{
	fprintf(f, "\n## Failing cases\n\n");
	int any = 0;
	for (int k = 0; k < n; k++)
		for (int i = 0; i < s[k].n; i++)
			if (s[k].res[i].verdict == R_FAIL) {
				fprintf(f, "- `%s/%s`: ", base(s[k].dir), base(s[k].cases[i]));
				cell(f, s[k].res[i].msg);
				fputc('\n', f);
				any = 1;
			}
	if (!any)
		fprintf(f, "None.\n");
}

void conform_report(FILE *f, const Suite *s, int n, int full)
{
	if (full)
		fprintf(f, "# ONNX conformance\n\nInference through the generated kernels (CPU emulation), "
			   "outputs compared with rtol 1e-3, atol 1e-7.\n\n");
	summary(f, s, n);
	fprintf(f, "\nSupported ONNX operators: %s.\n", onnx_supported_ops());
	if (!full)
		return;
	failures(f, s, n);
	unsupported(f, s, n);
}
