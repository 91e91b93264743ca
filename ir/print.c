/*
 * print.c — the textual form of a Graph (docs/ir.md), the same text ir/parse.c reads back.
 *
 * Layout: `graph NAME {`, the graph-level values (inputs, label, parameters, states, then the
 * constants some node or result uses, in id order), the nodes in schedule order, then the
 * updates, loss, loss kind, optimizer and outputs, `}`. Parameters are printed without data;
 * constants with all their data, floats in the shortest form that reads back to the same bits.
 *
 * Round trip: print(parse(print(g))) == print(g). For that, a value whose name is all digits
 * but differs from its id is quoted (%"5"): unquoted numbers name a value by id. A node's name
 * is printed (`@name`) unless it is the parser's default `<Op>_<position>`; float attributes
 * always carry a '.' or an exponent so they read back as floats.
 *
 * The printer never fails: a broken graph prints as well as it can (ir_verify says what is wrong).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "rt_half.h"

static int print_is_plain(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '.'))
			return 0;
	return 1;
}

static int print_all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static void print_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* a bare word if it is one, else a quoted string */
static void print_word(FILE *f, const char *s)
{
	if (print_is_plain(s))
		fputs(s, f);
	else
		print_quoted(f, s);
}

static void print_ref(FILE *f, const Value *v)
{
	char id[24];
	snprintf(id, sizeof id, "%d", v->id);
	fputc('%', f);
	if (!v->name)
		fputs(id, f);
	else if (print_all_digits(v->name) && strcmp(v->name, id) != 0)
		print_quoted(f, v->name);
	else
		print_word(f, v->name);
}

static void print_type(FILE *f, const Value *v)
{
	char s[160];
	fprintf(f, "%s%s", ir_dt_name(v->dt), ir_shape_str(&v->shape, s, sizeof s));
}

static void print_decl(FILE *f, const Value *v)
{
	print_ref(f, v);
	fputs(": ", f);
	print_type(f, v);
}

/* the shortest %.Ng that reads back to the same double (f64) or float (!f64), into buf[40] */
static const char *print_fmt_real(char *buf, double x, int f64)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, 40, "%.*g", prec, x);
		if (isnan(x) || (f64 ? strtod(buf, NULL) == x : strtof(buf, NULL) == (float)x))
			break;
	}
	return buf;
}

static void print_real(FILE *f, double x, int f64)
{
	char buf[40];
	fputs(print_fmt_real(buf, x, f64), f);
}

static void print_elem(FILE *f, DType dt, const void *data, int64_t k)
{
	const char *p = (const char *)data;
	switch (dt) {
	case DT_F32: { float x; memcpy(&x, p + 4 * k, 4); print_real(f, x, 0); break; }
	case DT_F64: { double x; memcpy(&x, p + 8 * k, 8); print_real(f, x, 1); break; }
	case DT_F16: { uint16_t h; memcpy(&h, p + 2 * k, 2); print_real(f, rt_f16_to_f32(h), 0); break; }
	case DT_BF16: { uint16_t h; memcpy(&h, p + 2 * k, 2); print_real(f, rt_bf16_to_f32(h), 0); break; }
	case DT_I64: { int64_t x; memcpy(&x, p + 8 * k, 8); fprintf(f, "%lld", (long long)x); break; }
	case DT_I32: { int32_t x; memcpy(&x, p + 4 * k, 4); fprintf(f, "%d", x); break; }
	case DT_BOOL:
	case DT_U8: fprintf(f, "%u", (unsigned)(unsigned char)p[k]); break;
	default: DLCC_ASSERT(!"dtype");
	}
}

static void print_data(FILE *f, const Value *v)
{
	int64_t n = ir_numel(&v->shape);
	if (v->shape.rank == 0) {
		print_elem(f, v->dt, v->data, 0);
		return;
	}
	fputc('[', f);
	for (int64_t k = 0; k < n; k++) {
		if (k)
			fputs(", ", f);
		print_elem(f, v->dt, v->data, k);
	}
	fputc(']', f);
}

/* a float attribute: always with '.', an exponent, inf or nan so that it reads back as a float */
static void print_attr_float(FILE *f, double x)
{
	char buf[40];
	fputs(print_fmt_real(buf, x, 1), f);
	if (!strpbrk(buf, ".eEnNiI"))
		fputs(".0", f);
}

static void print_attr(FILE *f, const Attr *a)
{
	print_word(f, a->name);
	fputs(" = ", f);
	switch (a->kind) {
	case A_INT: fprintf(f, "%lld", (long long)a->i); break;
	case A_FLOAT: print_attr_float(f, a->f); break;
	case A_STRING: print_quoted(f, a->s ? a->s : ""); break;
	case A_INTS:
	case A_FLOATS:
		if (a->kind == A_FLOATS && a->n == 0)
			fputs("floats", f);
		fputc('[', f);
		for (int i = 0; i < a->n; i++) {
			fputs(i ? ", " : "", f);
			if (a->kind == A_INTS)
				fprintf(f, "%lld", (long long)a->ints[i]);
			else
				print_attr_float(f, a->floats[i]);
		}
		fputc(']', f);
		break;
	}
}

static void print_node(FILE *f, const Node *n, int pos)
{
	const char *op = ir_ops[n->op].name;
	fputs("  ", f);
	for (int i = 0; i < n->nout; i++) {
		fputs(i ? ", " : "", f);
		print_decl(f, n->out[i]);
	}
	fprintf(f, " = %s(", op);
	for (int i = 0; i < n->nin; i++) {
		fputs(i ? ", " : "", f);
		print_ref(f, n->in[i]);
	}
	fputc(')', f);
	if (n->nattr) {
		fputs(" {", f);
		for (int i = 0; i < n->nattr; i++) {
			fputs(i ? ", " : "", f);
			print_attr(f, &n->attr[i]);
		}
		fputc('}', f);
	}
	char dflt[64];
	snprintf(dflt, sizeof dflt, "%s_%d", op, pos);
	if (n->name && strcmp(n->name, dflt) != 0) {
		fputs(" @", f);
		print_word(f, n->name);
	}
	fputc('\n', f);
}

static void print_value_line(FILE *f, const Value *v)
{
	static const char *const kw[] = {[V_INPUT] = "input", [V_LABEL] = "label", [V_PARAM] = "param",
					 [V_STATE] = "state", [V_CONST] = "const", [V_TEMP] = "temp"};
	fprintf(f, "  %s ", v->kind == V_PARAM && v->buffer ? "buffer" : kw[v->kind]);
	print_decl(f, v);
	if (v->kind == V_STATE && v->slot) {
		fputs(" = slot ", f);
		print_word(f, v->slot);
		if (v->param) {
			fputs(" of ", f);
			print_ref(f, v->param);
		}
	}
	if ((v->kind == V_CONST || (v->kind == V_PARAM && v->buffer)) && v->data) {
		fputs(" = ", f);
		print_data(f, v);
	}
	fputc('\n', f);
}

/* graph-level values a node or a result refers to; marks them in `used` (indexed by id) */
static void print_mark_used(const Graph *g, char *used)
{
#define MARK(v) do { if ((v) && (v)->id >= 0 && (v)->id < g->nvalues) used[(v)->id] = 1; } while (0)
	for (int i = 0; i < g->nnodes; i++)
		for (int k = 0; k < g->nodes[i]->nin; k++)
			MARK(g->nodes[i]->in[k]);
	for (int i = 0; i < g->noutputs; i++)
		MARK(g->outputs[i]);
	for (int i = 0; i < g->nupdates; i++) {
		MARK(g->updates[i].state);
		MARK(g->updates[i].value);
	}
	MARK(g->loss);
#undef MARK
}

static void print_once(FILE *f, const Value *v, char *done)
{
	if (v && !done[v->id]) {
		done[v->id] = 1;
		print_value_line(f, v);
	}
}

static void print_values(FILE *f, const Graph *g)
{
	char *used = calloc(g->nvalues + 1, 1), *done = calloc(g->nvalues + 1, 1);
	DLCC_ASSERT(used && done);
	print_mark_used(g, used);
	for (int i = 0; i < g->ninputs; i++)
		print_once(f, g->inputs[i], done);
	print_once(f, g->label, done);
	for (int i = 0; i < g->nparams; i++)
		print_once(f, g->params[i], done);
	for (int i = 0; i < g->nstates; i++)
		print_once(f, g->states[i], done);
	for (int i = 0; i < g->nvalues; i++)
		if (used[i] && g->values[i]->kind != V_TEMP)
			print_once(f, g->values[i], done);
	free(used);
	free(done);
}

static void print_results(FILE *f, const Graph *g)
{
	for (int i = 0; i < g->nupdates; i++) {
		fputs("  update ", f);
		print_ref(f, g->updates[i].state);
		fputs(" <- ", f);
		print_ref(f, g->updates[i].value);
		fputc('\n', f);
	}
	if (g->loss) {
		fputs("  loss ", f);
		print_ref(f, g->loss);
		fputc('\n', f);
	}
	if (g->loss_kind) {
		fputs("  loss_kind ", f);
		print_word(f, g->loss_kind);
		fputc('\n', f);
	}
	if (g->optimizer) {
		fputs("  optimizer ", f);
		print_word(f, g->optimizer);
		fputc('\n', f);
	}
	for (int i = 0; i < g->noutputs; i++) {
		fputs("  output ", f);
		print_ref(f, g->outputs[i]);
		fputc('\n', f);
	}
}

void ir_print(FILE *f, const Graph *g)
{
	fputs("graph ", f);
	print_word(f, g->name ? g->name : "main");
	fputs(" {\n", f);
	print_values(f, g);
	for (int i = 0; i < g->nnodes; i++)
		print_node(f, g->nodes[i], i);
	print_results(f, g);
	fputs("}\n", f);
}
