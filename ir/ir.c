/*
 * ir.c — building graphs: the arena, values, nodes, attributes, cloning.
 *
 * Every allocation of a graph comes from its arena (a list of large chunks), so a graph is
 * released with one call. Growing lists (values, nodes, ...) are reallocated inside the arena;
 * the old copy is simply abandoned, which costs little at the sizes compilers see.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

struct Arena {
	struct Arena *next;
	size_t used, cap;
	_Alignas(16) char mem[];
};

static Arena *arena_chunk(size_t cap, Arena *next)
{
	Arena *a = malloc(sizeof(Arena) + cap);
	if (!a)
		dlcc_internal_error(__FILE__, __LINE__, "out of memory");
	a->next = next;
	a->used = 0;
	a->cap = cap;
	return a;
}

void *ir_alloc(Graph *g, size_t bytes)
{
	bytes = (bytes + 15) & ~(size_t)15;
	Arena *a = g->arena;
	if (!a || a->used + bytes > a->cap) {
		size_t cap = bytes > (1 << 20) ? bytes : (1 << 20);
		a = g->arena = arena_chunk(cap, g->arena);
	}
	void *p = a->mem + a->used;
	a->used += bytes;
	memset(p, 0, bytes);
	return p;
}

char *ir_strdup(Graph *g, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	return memcpy(ir_alloc(g, n), s, n);
}

_Noreturn void dlcc_internal_error(const char *file, int line, const char *what)
{
	fprintf(stderr, "dlcc: internal error at %s:%d: %s\n", file, line, what);
	abort();
}

int ir_error(Graph *g, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g->err, sizeof g->err, fmt, ap);
	va_end(ap);
	return -1;
}

Graph *ir_graph_new(const char *name)
{
	Graph *g = calloc(1, sizeof *g);
	if (!g)
		dlcc_internal_error(__FILE__, __LINE__, "out of memory");
	g->name = ir_strdup(g, name ? name : "main");
	return g;
}

void ir_graph_free(Graph *g)
{
	if (!g)
		return;
	for (Arena *a = g->arena, *n; a; a = n) {
		n = a->next;
		free(a);
	}
	free(g);
}

/* Append to an arena-backed array: grow(g, (void**)&arr, &n, &cap, elemsize) returns a slot. */
static void *grow(Graph *g, void **arr, int *n, int *cap, size_t elem)
{
	if (*n == *cap) {
		int nc = *cap ? *cap * 2 : 16;
		void *na = ir_alloc(g, nc * elem);
		if (*n)
			memcpy(na, *arr, *n * elem);
		*arr = na;
		*cap = nc;
	}
	return (char *)*arr + (*n)++ * elem;
}
#define PUSH(g, list, item) (*(__typeof__(*(g)->list) *)grow((g), (void **)&(g)->list, \
	&(g)->n##list, &(g)->cap##list, sizeof *(g)->list) = (item))

static Value *new_value(Graph *g, ValueKind k, const char *name, DType dt, Shape s)
{
	Value *v = ir_alloc(g, sizeof *v);
	v->id = g->nvalues;
	v->kind = k;
	v->dt = dt;
	v->shape = s;
	if (name) {
		v->name = ir_strdup(g, name);
	} else {
		char buf[24];
		snprintf(buf, sizeof buf, "%d", v->id);
		v->name = ir_strdup(g, buf);
	}
	PUSH(g, values, v);
	return v;
}

Value *ir_value(Graph *g, ValueKind k, const char *name, DType dt, Shape s, const void *data)
{
	Value *v = new_value(g, k, name, dt, s);
	if (data) {
		size_t bytes = ir_numel(&s) * ir_dt_size(dt);
		v->data = ir_alloc(g, bytes ? bytes : 1);
		memcpy(v->data, data, bytes);
	}
	switch (k) {
	case V_INPUT: PUSH(g, inputs, v); break;
	case V_PARAM: PUSH(g, params, v); break;
	case V_STATE: PUSH(g, states, v); break;
	case V_LABEL: g->label = v; break;
	default: break;
	}
	return v;
}

Value *ir_const_scalar(Graph *g, DType dt, double x)
{
	char buf[16];
	switch (dt) {
	case DT_F64: memcpy(buf, &x, 8); break;
	case DT_F32: { float f = (float)x; memcpy(buf, &f, 4); break; }
	case DT_I64: { int64_t i = (int64_t)x; memcpy(buf, &i, 8); break; }
	case DT_I32: { int32_t i = (int32_t)x; memcpy(buf, &i, 4); break; }
	default: DLCC_ASSERT(!"scalar constant of this dtype");
	}
	return ir_value(g, V_CONST, NULL, dt, ir_shape0(), buf);
}

void ir_add_output(Graph *g, Value *v) { PUSH(g, outputs, v); }

void ir_add_update(Graph *g, Value *state, Value *value)
{
	Update u = {state, value};
	PUSH(g, updates, u);
}

Node *ir_begin(Graph *g, Op op, const char *name, int nin, Value *const *in)
{
	Node *n = ir_alloc(g, sizeof *n);
	n->op = op;
	n->nin = nin;
	n->in = ir_alloc(g, (nin ? nin : 1) * sizeof *n->in);
	for (int i = 0; i < nin; i++)
		n->in[i] = in[i];
	n->name = ir_strdup(g, name);
	return n;
}

int ir_finish(Graph *g, Node *n)
{
	const OpInfo *oi = &ir_ops[n->op];
	if (n->nin < oi->min_in || n->nin > oi->max_in)
		return ir_error(g, "node '%s' (%s): %d inputs, expected %d to %d",
				n->name ? n->name : "?", oi->name, n->nin, oi->min_in, oi->max_in);
	n->nout = oi->nout;
	n->out = ir_alloc(g, n->nout * sizeof *n->out);
	for (int i = 0; i < n->nout; i++) {
		n->out[i] = new_value(g, V_TEMP, NULL, n->nin ? n->in[0]->dt : DT_F32, ir_shape0());
		n->out[i]->def = n;
		n->out[i]->out_index = i;
	}
	if (oi->shape(g, n) < 0) {
		g->nvalues -= n->nout; /* the outputs were the last values made */
		return -1;
	}
	n->id = g->next_node_id++;
	if (!n->name) {
		char buf[48];
		snprintf(buf, sizeof buf, "%s_%d", oi->name, n->id);
		n->name = ir_strdup(g, buf);
	}
	PUSH(g, nodes, n);
	return 0;
}

Value *ir_op(Graph *g, Op op, int nin, Value *const *in)
{
	Node *n = ir_begin(g, op, NULL, nin, in);
	return ir_finish(g, n) < 0 ? NULL : n->out[0];
}

Value *ir_op1(Graph *g, Op op, Value *a) { return ir_op(g, op, 1, &a); }

Value *ir_op2(Graph *g, Op op, Value *a, Value *b)
{
	Value *in[2] = {a, b};
	return ir_op(g, op, 2, in);
}

/* ---- attributes ---- */

static Attr *set_attr(Graph *g, Node *n, const char *name, AttrKind k)
{
	for (int i = 0; i < n->nattr; i++)
		if (strcmp(n->attr[i].name, name) == 0) {
			n->attr[i].kind = k;
			return &n->attr[i];
		}
	Attr *na = ir_alloc(g, (n->nattr + 1) * sizeof *na);
	if (n->nattr)
		memcpy(na, n->attr, n->nattr * sizeof *na);
	n->attr = na;
	Attr *a = &n->attr[n->nattr++];
	a->name = ir_strdup(g, name);
	a->kind = k;
	return a;
}

void ir_set_i(Graph *g, Node *n, const char *name, int64_t v) { set_attr(g, n, name, A_INT)->i = v; }
void ir_set_f(Graph *g, Node *n, const char *name, double v) { set_attr(g, n, name, A_FLOAT)->f = v; }
void ir_set_s(Graph *g, Node *n, const char *name, const char *v)
{
	set_attr(g, n, name, A_STRING)->s = ir_strdup(g, v);
}

void ir_set_ints(Graph *g, Node *n, const char *name, int cnt, const int64_t *v)
{
	Attr *a = set_attr(g, n, name, A_INTS);
	a->n = cnt;
	a->ints = ir_alloc(g, (cnt ? cnt : 1) * sizeof *v);
	if (cnt)
		memcpy(a->ints, v, cnt * sizeof *v);
}

void ir_set_floats(Graph *g, Node *n, const char *name, int cnt, const double *v)
{
	Attr *a = set_attr(g, n, name, A_FLOATS);
	a->n = cnt;
	a->floats = ir_alloc(g, (cnt ? cnt : 1) * sizeof *v);
	if (cnt)
		memcpy(a->floats, v, cnt * sizeof *v);
}

const Attr *ir_attr(const Node *n, const char *name)
{
	for (int i = 0; i < n->nattr; i++)
		if (strcmp(n->attr[i].name, name) == 0)
			return &n->attr[i];
	return NULL;
}

int64_t ir_attr_i(const Node *n, const char *name, int64_t dflt)
{
	const Attr *a = ir_attr(n, name);
	return !a ? dflt : a->kind == A_FLOAT ? (int64_t)a->f : a->i;
}

double ir_attr_f(const Node *n, const char *name, double dflt)
{
	const Attr *a = ir_attr(n, name);
	return !a ? dflt : a->kind == A_INT ? (double)a->i : a->f;
}

const int64_t *ir_attr_ints(const Node *n, const char *name, int *cnt)
{
	const Attr *a = ir_attr(n, name);
	if (!a || a->kind != A_INTS)
		return NULL;
	*cnt = a->n;
	return a->ints;
}

/* ---- editing ---- */

void ir_remove_nodes(Graph *g, const char *keep)
{
	int j = 0;
	for (int i = 0; i < g->nnodes; i++)
		if (keep[i])
			g->nodes[j++] = g->nodes[i];
	g->nnodes = j;
}

void ir_replace_uses(Graph *g, Value *from, Value *to)
{
	for (int i = 0; i < g->nnodes; i++)
		for (int k = 0; k < g->nodes[i]->nin; k++)
			if (g->nodes[i]->in[k] == from)
				g->nodes[i]->in[k] = to;
	for (int i = 0; i < g->noutputs; i++)
		if (g->outputs[i] == from)
			g->outputs[i] = to;
	for (int i = 0; i < g->nupdates; i++)
		if (g->updates[i].value == from)
			g->updates[i].value = to;
	if (g->loss == from)
		g->loss = to;
}

/* ---- cloning: values are copied in id order so ids (and printed names) stay the same ---- */

static Value *clone_value(Graph *d, const Value *v)
{
	Value *c = ir_alloc(d, sizeof *c);
	*c = *v;
	c->name = ir_strdup(d, v->name);
	c->slot = ir_strdup(d, v->slot);
	if (v->data) {
		size_t bytes = ir_numel(&v->shape) * ir_dt_size(v->dt);
		c->data = memcpy(ir_alloc(d, bytes ? bytes : 1), v->data, bytes);
	}
	return c;
}

static Node *clone_node(Graph *d, const Node *n, Value **map)
{
	Node *c = ir_alloc(d, sizeof *c);
	*c = *n;
	c->name = ir_strdup(d, n->name);
	c->in = ir_alloc(d, (n->nin ? n->nin : 1) * sizeof *c->in);
	c->out = ir_alloc(d, (n->nout ? n->nout : 1) * sizeof *c->out);
	for (int i = 0; i < n->nin; i++)
		c->in[i] = map[n->in[i]->id];
	for (int i = 0; i < n->nout; i++) {
		c->out[i] = map[n->out[i]->id];
		c->out[i]->def = c;
	}
	c->attr = ir_alloc(d, (n->nattr ? n->nattr : 1) * sizeof *c->attr);
	for (int i = 0; i < n->nattr; i++) {
		Attr *a = &c->attr[i];
		*a = n->attr[i];
		a->name = ir_strdup(d, a->name);
		a->s = ir_strdup(d, a->s);
		if (a->kind == A_INTS)
			a->ints = memcpy(ir_alloc(d, (a->n + 1) * 8), n->attr[i].ints, a->n * 8);
		if (a->kind == A_FLOATS)
			a->floats = memcpy(ir_alloc(d, (a->n + 1) * 8), n->attr[i].floats, a->n * 8);
	}
	return c;
}

Graph *ir_graph_clone(const Graph *g)
{
	Graph *d = ir_graph_new(g->name);
	Value **map = calloc(g->nvalues + 1, sizeof *map);
	for (int i = 0; i < g->nvalues; i++)
		PUSH(d, values, map[i] = clone_value(d, g->values[i]));
	for (int i = 0; i < g->nvalues; i++)
		if (map[i]->param)
			map[i]->param = map[g->values[i]->param->id];
	for (int i = 0; i < g->nnodes; i++)
		PUSH(d, nodes, clone_node(d, g->nodes[i], map));
	for (int i = 0; i < g->ninputs; i++) PUSH(d, inputs, map[g->inputs[i]->id]);
	for (int i = 0; i < g->noutputs; i++) PUSH(d, outputs, map[g->outputs[i]->id]);
	for (int i = 0; i < g->nparams; i++) PUSH(d, params, map[g->params[i]->id]);
	for (int i = 0; i < g->nstates; i++) PUSH(d, states, map[g->states[i]->id]);
	for (int i = 0; i < g->nupdates; i++) {
		Update u = {map[g->updates[i].state->id], map[g->updates[i].value->id]};
		PUSH(d, updates, u);
	}
	d->next_node_id = g->next_node_id;
	d->label = g->label ? map[g->label->id] : NULL;
	d->loss = g->loss ? map[g->loss->id] : NULL;
	d->loss_kind = ir_strdup(d, g->loss_kind);
	d->optimizer = ir_strdup(d, g->optimizer);
	free(map);
	return d;
}

int ir_value_visible(const Graph *g, const Value *v)
{
	for (int i = 0; i < g->noutputs; i++)
		if (g->outputs[i] == v)
			return 1;
	for (int i = 0; i < g->nupdates; i++)
		if (g->updates[i].value == v)
			return 1;
	return g->loss == v;
}

int ir_broadcasts_to(const Shape *s, const Shape *d)
{
	if (s->rank > d->rank)
		return 0;
	for (int i = 1; i <= s->rank; i++)
		if (s->d[s->rank - i] != 1 && s->d[s->rank - i] != d->d[d->rank - i])
			return 0;
	return 1;
}
