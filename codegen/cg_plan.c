/*
 * cg_plan.c — the memory plan: where every tensor of a program lives.
 *
 * Two device blocks (runtime/rt.h). The parameter block holds the parameters (in g->params
 * order, shared by both programs), then the optimizer state, then each program's constants.
 * The workspace starts with a fixed head shared by both programs — inputs, label, the f32 loss
 * slot, then the inference outputs — followed by each program's temporaries, planned for
 * max_batch. Temporaries are placed by liveness over the schedule: a value's buffer is born at
 * its producer and dies after its last reader; a Reshape/Flatten output (kclass K_NONE) is an
 * alias that extends its root's life. At each node the dead buffers return to a free list and
 * the node's outputs take the best-fitting free interval (or grow the top).
 *
 * Updates: an optimizer node's output that is the new value of a parameter/state is written in
 * place into that parameter/state, which is only correct if the node runs after every other
 * read of the old value; that is checked here. Any other update, and any inference output that
 * cannot be placed in its slot (an input, a parameter, a value already placed), becomes a copy
 * at the end of the program. Sizes are rounded up to 256 bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "codegen/cg_internal.h"

#define ALIGN 256
static size_t align_up(size_t x) { return (x + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

size_t cg_elem_size(DType dt, DType prec)
{
	return ir_dt_is_float(dt) ? ir_dt_size(prec) : ir_dt_size(dt);
}

static size_t value_bytes(const CgLayout *L, const Value *v)
{
	return cg_bytes(&v->shape, cg_elem_size(v->dt, L->prec), L->max_batch);
}

/* ---- layout of the shared parts ---- */

static int check_same_params(Graph *a, Graph *b, char *err, size_t errlen)
{
	if (a->nparams != b->nparams || a->ninputs != b->ninputs)
		return cg_fail(err, errlen, "codegen: the inference and training programs differ in "
				   "their parameters or inputs (%d/%d parameters, %d/%d inputs)",
			       a->nparams, b->nparams, a->ninputs, b->ninputs);
	for (int i = 0; i < a->nparams; i++)
		if (!ir_shape_eq(&a->params[i]->shape, &b->params[i]->shape))
			return cg_fail(err, errlen, "codegen: parameter '%s' has different shapes in "
					   "the inference and training programs", a->params[i]->name);
	return 0;
}

static size_t take(size_t *top, size_t bytes)
{
	size_t at = *top;
	*top += align_up(bytes);
	return at;
}

int cg_layout(CgLayout *L, Graph *infer, Graph *train, char *err, size_t errlen)
{
	Graph *g = infer ? infer : train;
	DLCC_ASSERT(g);
	if (infer && train && check_same_params(infer, train, err, errlen) < 0)
		return -1;
	L->param_off = calloc(g->nparams + 1, sizeof(size_t));
	L->state_off = calloc((train ? train->nstates : 0) + 1, sizeof(size_t));
	L->input_off = calloc(g->ninputs + 1, sizeof(size_t));
	L->output_off = calloc((infer ? infer->noutputs : 0) + 1, sizeof(size_t));
	size_t top = 0;
	for (int i = 0; i < g->nparams; i++)
		L->param_off[i] = take(&top, value_bytes(L, g->params[i]));
	for (int i = 0; train && i < train->nstates; i++)
		L->state_off[i] = take(&top, value_bytes(L, train->states[i]));
	L->param_bytes = top;
	top = 0;
	for (int i = 0; i < g->ninputs; i++)
		L->input_off[i] = take(&top, value_bytes(L, g->inputs[i]));
	if (train && train->label)
		L->label_off = take(&top, value_bytes(L, train->label));
	L->loss_off = take(&top, train ? 4 : 0);
	L->train_base = top;
	for (int i = 0; infer && i < infer->noutputs; i++)
		L->output_off[i] = take(&top, value_bytes(L, infer->outputs[i]));
	L->infer_base = top;
	return 0;
}

void cg_layout_free(CgLayout *L)
{
	free(L->param_off);
	free(L->state_off);
	free(L->input_off);
	free(L->output_off);
	L->param_off = L->state_off = L->input_off = L->output_off = NULL;
}

/* ---- one program ---- */

typedef struct {
	CgPlan *p;
	CgLayout *L;
	Graph *g;
	int *def, *last;        /* by root id: producer position, last read position */
	const Value **upd;      /* by value id: the state an optimizer output updates in place */
	char *err;
	size_t errlen;
} PlanCtx;

static int is_update_op(Op op)
{
	return op == OP_SGD_UPDATE || op == OP_MOMENTUM_UPDATE || op == OP_ADAM_UPDATE;
}

static void set_loc(CgPlan *p, const Value *v, CgSpace sp, size_t off, size_t bytes)
{
	p->loc[v->id] = (CgLoc){sp, off, bytes};
}

/* roots: aliases follow their input; in-place optimizer outputs become their state */
static void find_roots(PlanCtx *c)
{
	Graph *g = c->g;
	for (int i = 0; i < g->nvalues; i++)
		c->p->root[i] = g->values[i];
	for (int i = 0; i < g->nnodes; i++) {
		Node *n = g->nodes[i];
		for (int j = 0; j < n->nout; j++) {
			const Value *o = n->out[j];
			if (ir_ops[n->op].kclass == K_NONE)
				c->p->root[o->id] = c->p->root[n->in[0]->id];
			else if (c->upd[o->id])
				c->p->root[o->id] = c->upd[o->id];
		}
	}
}

static int node_pos(Graph *g, const Node *n)
{
	for (int i = 0; i < g->nnodes; i++)
		if (g->nodes[i] == n)
			return i;
	return -1;
}

/* an optimizer node at position at may overwrite state s only if nobody reads s later */
static int check_update_order(PlanCtx *c, const Value *s, const Node *un, int at)
{
	Graph *g = c->g;
	for (int i = at + 1; i < g->nnodes; i++) {
		Node *n = g->nodes[i];
		for (int j = 0; j < n->nin; j++)
			if (c->p->root[n->in[j]->id] == s && !c->upd[n->in[j]->id])
				return cg_fail(c->err, c->errlen,
					       "codegen: node '%s' reads '%s' after node '%s' updated it in place; "
					       "the optimizer update must come after every use",
					       n->name, s->name, un->name);
	}
	return 0;
}

static int mark_updates(PlanCtx *c)
{
	Graph *g = c->g;
	for (int i = 0; i < g->nupdates; i++) {
		Update *u = &g->updates[i];
		if (u->state->kind != V_PARAM && u->state->kind != V_STATE)
			return cg_fail(c->err, c->errlen, "codegen: update of '%s', which is not a "
					   "parameter or optimizer state", u->state->name);
		for (int k = 0; k < i; k++)
			if (g->updates[k].state == u->state)
				return cg_fail(c->err, c->errlen, "codegen: '%s' is updated twice", u->state->name);
		if (u->value->def && is_update_op(u->value->def->op) && !c->upd[u->value->id])
			c->upd[u->value->id] = u->state;
	}
	return 0;
}

static int check_updates(PlanCtx *c)
{
	for (int i = 0; i < c->g->nupdates; i++) {
		Update *u = &c->g->updates[i];
		if (c->upd[u->value->id] != u->state)
			continue;
		if (check_update_order(c, u->state, u->value->def, node_pos(c->g, u->value->def)) < 0)
			return -1;
	}
	return 0;
}

static void place_graph_values(PlanCtx *c)
{
	Graph *g = c->g;
	CgLayout *L = c->L;
	for (int i = 0; i < g->nparams; i++)
		set_loc(c->p, g->params[i], CG_PARAMS, L->param_off[i], value_bytes(L, g->params[i]));
	for (int i = 0; c->p->training && i < g->nstates; i++)
		set_loc(c->p, g->states[i], CG_PARAMS, L->state_off[i], value_bytes(L, g->states[i]));
	for (int i = 0; i < g->ninputs; i++)
		set_loc(c->p, g->inputs[i], CG_WS, L->input_off[i], value_bytes(L, g->inputs[i]));
	if (g->label && c->p->training)
		set_loc(c->p, g->label, CG_WS, L->label_off, value_bytes(L, g->label));
	for (int i = 0; i < g->nvalues; i++) {
		Value *v = g->values[i];
		if (v->kind == V_CONST)
			set_loc(c->p, v, CG_PARAMS, take(&L->param_bytes, value_bytes(L, v)), value_bytes(L, v));
	}
}

static void add_copy(CgPlan *p, const Value *from, CgLoc to)
{
	p->copies = realloc(p->copies, (p->ncopies + 1) * sizeof *p->copies);
	p->copies[p->ncopies++] = (CgCopy){from, to};
}

/* a temp root not placed yet can go straight into a fixed slot */
static int placeable(PlanCtx *c, const Value *r)
{
	return r->kind == V_TEMP && c->p->loc[r->id].space == CG_NOWHERE && !c->upd[r->id];
}

static void place_pinned(PlanCtx *c)
{
	CgPlan *p = c->p;
	Graph *g = c->g;
	if (p->training) {
		const Value *r = p->root[g->loss->id];
		if (placeable(c, r) && c->L->prec == DT_F32 && r->dt == DT_F32 && r == g->loss) {
			set_loc(p, r, CG_WS, c->L->loss_off, 4);
			p->loss_direct = 1;
		}
		for (int i = 0; i < g->nupdates; i++) {
			Update *u = &g->updates[i];
			if (c->upd[u->value->id] != u->state)
				add_copy(p, u->value, p->loc[u->state->id]);
		}
		return;
	}
	for (int i = 0; i < g->noutputs; i++) {
		const Value *o = g->outputs[i], *r = p->root[o->id];
		CgLoc slot = {CG_WS, c->L->output_off[i], value_bytes(c->L, o)};
		if (placeable(c, r))
			p->loc[r->id] = slot;
		else
			add_copy(p, o, slot);
	}
}

static void liveness(PlanCtx *c)
{
	Graph *g = c->g;
	CgPlan *p = c->p;
	for (int i = 0; i < g->nvalues; i++)
		c->def[i] = c->last[i] = -1;
	for (int i = 0; i < g->nnodes; i++) {
		Node *n = g->nodes[i];
		int rd = cg_fusion_last(&p->fu, i), wr = cg_fusion_first(&p->fu, i); /* a fused group */
		for (int j = 0; j < n->nin; j++)
			if (c->last[p->root[n->in[j]->id]->id] < rd)
				c->last[p->root[n->in[j]->id]->id] = rd;
		for (int j = 0; j < n->nout; j++) {
			int r = p->root[n->out[j]->id]->id;
			if (c->def[r] < 0)
				c->def[r] = wr;
			if (c->last[r] < rd)
				c->last[r] = rd;
		}
	}
	for (int i = 0; i < p->ncopies; i++)
		c->last[p->root[p->copies[i].from->id]->id] = g->nnodes;
	if (p->training)
		c->last[p->root[g->loss->id]->id] = g->nnodes;
}

/* ---- best fit over free intervals ---- */

typedef struct {
	size_t off, size;
} Interval;

typedef struct {
	Interval *v;
	int n;
	size_t top;
} FreeList;

static void fl_insert(FreeList *f, size_t off, size_t size)
{
	int i = 0;
	while (i < f->n && f->v[i].off < off)
		i++;
	f->v = realloc(f->v, (f->n + 1) * sizeof *f->v);
	memmove(f->v + i + 1, f->v + i, (f->n - i) * sizeof *f->v);
	f->v[i] = (Interval){off, size};
	f->n++;
	if (i + 1 < f->n && f->v[i].off + f->v[i].size == f->v[i + 1].off) {
		f->v[i].size += f->v[i + 1].size;
		memmove(f->v + i + 1, f->v + i + 2, (f->n - i - 2) * sizeof *f->v);
		f->n--;
	}
	if (i > 0 && f->v[i - 1].off + f->v[i - 1].size == f->v[i].off) {
		f->v[i - 1].size += f->v[i].size;
		memmove(f->v + i, f->v + i + 1, (f->n - i - 1) * sizeof *f->v);
		f->n--;
	}
}

static size_t fl_alloc(FreeList *f, size_t size)
{
	int best = -1;
	for (int i = 0; i < f->n; i++)
		if (f->v[i].size >= size && (best < 0 || f->v[i].size < f->v[best].size))
			best = i;
	if (best >= 0) {
		size_t off = f->v[best].off;
		f->v[best].off += size;
		f->v[best].size -= size;
		if (!f->v[best].size) {
			memmove(f->v + best, f->v + best + 1, (f->n - best - 1) * sizeof *f->v);
			f->n--;
		}
		return off;
	}
	/* grow: reuse a free interval that ends at the top */
	if (f->n && f->v[f->n - 1].off + f->v[f->n - 1].size == f->top) {
		size_t off = f->v[f->n - 1].off;
		f->n--;
		f->top = off + size;
		return off;
	}
	size_t off = f->top;
	f->top += size;
	return off;
}

static int needs_dynamic(PlanCtx *c, const Value *r)
{
	return r->kind == V_TEMP && c->p->loc[r->id].space == CG_NOWHERE && !c->p->fu.internal[r->id];
}

static void allocate(PlanCtx *c, size_t base, size_t fixed_live)
{
	Graph *g = c->g;
	CgPlan *p = c->p;
	FreeList fl = {0};
	const Value **live = calloc(g->nvalues + 1, sizeof *live);
	int nlive = 0;
	size_t live_bytes = 0;
	p->peak_bytes = fixed_live;
	for (int i = 0; i < g->nnodes; i++) {
		for (int k = 0; k < nlive;) {
			if (c->last[live[k]->id] < i) {
				CgLoc *l = &p->loc[live[k]->id];
				fl_insert(&fl, l->offset - base, align_up(l->bytes));
				live_bytes -= align_up(l->bytes);
				live[k] = live[--nlive];
			} else {
				k++;
			}
		}
		Node *n = g->nodes[i];
		for (int j = 0; j < n->nout; j++) {
			const Value *r = p->root[n->out[j]->id];
			if (!needs_dynamic(c, r))
				continue;
			size_t bytes = value_bytes(c->L, r);
			set_loc(p, r, CG_WS, base + fl_alloc(&fl, align_up(bytes)), bytes);
			live[nlive++] = r;
			live_bytes += align_up(bytes);
			p->naive_bytes += align_up(bytes);
		}
		if (fixed_live + live_bytes > p->peak_bytes)
			p->peak_bytes = fixed_live + live_bytes;
	}
	p->ws_bytes = base + fl.top;
	free(live);
	free(fl.v);
}

/* bytes of the fixed head this program uses (inputs, label, loss / outputs) */
static size_t fixed_used(PlanCtx *c)
{
	size_t s = 0;
	Graph *g = c->g;
	for (int i = 0; i < g->ninputs; i++)
		s += align_up(value_bytes(c->L, g->inputs[i]));
	if (c->p->training) {
		s += g->label ? align_up(value_bytes(c->L, g->label)) : 0;
		s += ALIGN;
	} else {
		for (int i = 0; i < g->noutputs; i++)
			s += align_up(value_bytes(c->L, g->outputs[i]));
	}
	return s;
}

static void resolve_aliases(CgPlan *p, Graph *g)
{
	for (int i = 0; i < g->nvalues; i++) {
		const Value *r = p->root[i];
		if (r != g->values[i]) {
			p->loc[i] = p->loc[r->id];
			p->loc[i].bytes = 0; /* not counted again */
		}
	}
}

static int check_program(PlanCtx *c)
{
	Graph *g = c->g;
	if (c->p->training && !g->loss)
		return cg_fail(c->err, c->errlen, "codegen: the training program has no loss");
	for (int i = 0; i < g->nvalues; i++)
		if (g->values[i]->id != i)
			return cg_fail(c->err, c->errlen, "codegen: value ids are not dense (value '%s')",
				       g->values[i]->name);
	return 0;
}

int cg_plan_program(CgPlan *p, CgLayout *L, Graph *g, int training, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	p->g = g;
	p->training = training;
	p->loc = calloc(g->nvalues + 1, sizeof *p->loc);
	p->root = calloc(g->nvalues + 1, sizeof *p->root);
	PlanCtx c = {p, L, g, calloc(g->nvalues + 1, sizeof(int)), calloc(g->nvalues + 1, sizeof(int)),
		     calloc(g->nvalues + 1, sizeof(Value *)), err, errlen};
	int rc = check_program(&c);
	if (rc == 0)
		rc = cg_fusion_build(&p->fu, g, err, errlen);
	if (rc == 0 && training)
		rc = mark_updates(&c);
	if (rc == 0) {
		find_roots(&c);
		rc = training ? check_updates(&c) : 0;
	}
	if (rc == 0) {
		place_graph_values(&c);
		place_pinned(&c);
		liveness(&c);
		size_t fixed = fixed_used(&c);
		p->naive_bytes = fixed;
		allocate(&c, training ? L->train_base : L->infer_base, fixed);
		resolve_aliases(p, g);
	}
	free(c.def);
	free(c.last);
	free(c.upd);
	return rc;
}

void cg_plan_free(CgPlan *p)
{
	free(p->loc);
	free(p->root);
	free(p->copies);
	cg_fusion_free(&p->fu);
	memset(p, 0, sizeof *p);
}
