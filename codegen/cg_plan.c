/*
 * cg_plan.c — the memory plan: where every tensor of a program lives.
 *
 * Two device blocks (runtime/rt.h). The parameter block holds the parameters (in g->params
 * order, shared by both programs), then the optimizer state, then each program's constants.
 * The workspace starts with a fixed head shared by both programs — inputs, label, the f32 loss
 * slot, the grid-wide sums' partials and counter, then the inference outputs — followed by each program's temporaries, planned for
 * max_batch. Temporaries are placed in three steps over the schedule:
 *   1. liveness: a buffer is born at its producer and dies after its last reader; a
 *      Reshape/Flatten output (kclass K_NONE) is an alias that extends its root's life;
 *   2. in-place sharing: an elementwise output (K_UNARY/K_BINARY) of the shape and size of an
 *      input whose buffer dies at that node takes that buffer (never a graph input, parameter,
 *      pinned slot, or a buffer read later);
 *   3. greedy by size: buffers sorted by size (largest first), each at the lowest offset that
 *      overlaps no placed buffer whose lifetime meets its own.
 * The lower bound reported beside the workspace (peak_bytes) is the fixed head this program uses
 * plus the most temporary bytes live at one schedule position after step 2; the naive figure is
 * the fixed head plus one buffer per temporary. cg_plan_check (cg_plan_check.c) re-derives the
 * lifetimes from the graph and checks every plan for overlapping live tensors.
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
	/* f32 values take the compute type's size; half-precision values keep their own */
	return dt == DT_F32 || dt == DT_F64 ? ir_dt_size(prec) : ir_dt_size(dt);
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

/* the reduction scratch a program needs (red_off): the full one when a reduction splits its
 * rows over blocks (cg_column_splits), the grid-wide sum's for a cross-entropy, else none */
static size_t red_scratch(const Graph *g, int64_t max_batch)
{
	size_t need = 0;
	for (int i = 0; g && i < g->nnodes; i++) {
		const Node *n = g->nodes[i];
		if (n->op == OP_SOFTMAX_CROSS_ENTROPY && need < CG_RED_CE_BYTES)
			need = CG_RED_CE_BYTES;
		if ((n->op == OP_REDUCE_SUM || n->op == OP_REDUCE_MEAN) && n->in[0]->shape.rank > 0 &&
		    cg_column_splits(&n->in[0]->shape, cg_reduced_mask(n, n->in[0]->shape.rank), max_batch) > 1)
			need = CG_RED_BYTES;
	}
	return need;
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
	L->state_begin = top;
	for (int i = 0; train && i < train->nstates; i++)
		L->state_off[i] = take(&top, value_bytes(L, train->states[i]));
	L->state_end = top;
	L->param_bytes = top;
	top = 0;
	for (int i = 0; i < g->ninputs; i++)
		L->input_off[i] = take(&top, value_bytes(L, g->inputs[i]));
	if (train && train->label)
		L->label_off = take(&top, value_bytes(L, train->label));
	L->loss_off = take(&top, train ? 4 : 0);
	size_t ri = red_scratch(infer, L->max_batch), rt = red_scratch(train, L->max_batch);
	L->red_bytes = ri > rt ? ri : rt;
	L->red_off = take(&top, L->red_bytes);
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

/* ---- buffers: in-place sharing, lower bound, greedy-by-size placement ---- */

/* One workspace buffer: the roots that share it (an in-place chain) live in [start, end]. */
typedef struct {
	int start, end;   /* schedule positions, inclusive */
	size_t size;      /* aligned bytes */
	size_t off;       /* from the program's base */
} Buf;

typedef struct {
	Buf *v;
	int n;
	int *of;          /* by root id: buffer index, -1 none */
} Bufs;

static int needs_dynamic(PlanCtx *c, const Value *r)
{
	return r->kind == V_TEMP && c->p->loc[r->id].space == CG_NOWHERE && !c->p->fu.internal[r->id];
}

/* The buffer n's output may take in place: an elementwise node whose output has the shape and
 * element size of an input that is a workspace temporary dying at this node (its whole buffer:
 * no later reader, no alias read later, not an output, copy or the loss). The kernels read
 * operand element i and then write element i, in the same thread, so this is safe. */
static int inplace_source(PlanCtx *c, Bufs *B, const Node *n, int at)
{
	KClass kc = ir_ops[n->op].kclass;
	int G = c->p->fu.of ? c->p->fu.of[at] : -1;
	if ((kc != K_UNARY && kc != K_BINARY) || n->nout != 1 || (G >= 0 && c->p->fu.groups[G].kind == CG_G_GEMM))
		return -1; /* a product's epilogue reads its operands while it writes */
	const Value *o = n->out[0];
	for (int k = 0; k < n->nin; k++) {
		const Value *in = n->in[k], *r = c->p->root[in->id];
		int b = B->of[r->id];
		if (b < 0 || B->v[b].end != at || !ir_shape_eq(&in->shape, &o->shape) ||
		    value_bytes(c->L, in) != value_bytes(c->L, o))
			continue;
		return b;
	}
	return -1;
}

static int new_buf(Bufs *B, int start, int end, size_t size)
{
	B->v = realloc(B->v, (B->n + 1) * sizeof *B->v);
	B->v[B->n] = (Buf){start, end, size, 0};
	return B->n++;
}

/* one buffer per dynamic root, in schedule order, except where an output takes its input's */
static void collect_bufs(PlanCtx *c, Bufs *B)
{
	Graph *g = c->g;
	CgPlan *p = c->p;
	for (int i = 0; i < g->nnodes; i++) {
		Node *n = g->nodes[i];
		for (int j = 0; j < n->nout; j++) {
			const Value *r = p->root[n->out[j]->id];
			if (!needs_dynamic(c, r) || B->of[r->id] >= 0)
				continue;
			size_t size = align_up(value_bytes(c->L, r));
			p->naive_bytes += size;
			int b = r == n->out[j] ? inplace_source(c, B, n, i) : -1;
			if (b >= 0) {
				B->v[b].end = c->last[r->id];
				p->ninplace++;
			} else {
				b = new_buf(B, i, c->last[r->id], size);
			}
			B->of[r->id] = b;
		}
	}
}

/* The lower bound: the most bytes live at one schedule position — buffers whose [start, end]
 * holds it, after in-place sharing — plus the fixed head this program uses. No placement of
 * these buffers can need less, since buffers live at the same position must be disjoint. */
static size_t peak_live(const Bufs *B, int nnodes, size_t fixed)
{
	size_t *at = calloc(nnodes + 2, sizeof *at), peak = 0;
	for (int b = 0; b < B->n; b++)
		for (int i = B->v[b].start; i <= B->v[b].end && i <= nnodes; i++)
			at[i] += B->v[b].size;
	for (int i = 0; i <= nnodes; i++)
		peak = at[i] > peak ? at[i] : peak;
	free(at);
	return fixed + peak;
}

static const Buf *sort_bufs_base;
static int by_size_desc(const void *a, const void *b)
{
	const Buf *x = &sort_bufs_base[*(const int *)a], *y = &sort_bufs_base[*(const int *)b];
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return x->start - y->start;
}

static int by_off(const void *a, const void *b)
{
	const Buf *x = *(const Buf *const *)a, *y = *(const Buf *const *)b;
	return (x->off > y->off) - (x->off < y->off);
}

/* Best fit: among the gaps between placed buffers whose lifetimes meet b's, the smallest one
 * that holds b; else the top of them. */
static size_t best_fit(const Bufs *B, const char *placed, int b)
{
	const Buf *x = &B->v[b];
	const Buf **live = malloc((B->n + 1) * sizeof *live);
	int n = 0;
	for (int k = 0; k < B->n; k++) {
		const Buf *y = &B->v[k];
		if (placed[k] && !(y->end < x->start || x->end < y->start))
			live[n++] = y;
	}
	qsort(live, n, sizeof *live, by_off);
	size_t at = 0, best = (size_t)-1, waste = (size_t)-1;
	for (int i = 0; i <= n; i++) {
		size_t next = i < n ? live[i]->off : (size_t)-1;
		if (next >= at && next - at >= x->size && (i == n ? best == (size_t)-1 : next - at - x->size < waste)) {
			best = at;
			waste = i < n ? next - at - x->size : waste;
		}
		if (i < n && live[i]->off + live[i]->size > at)
			at = live[i]->off + live[i]->size;
	}
	free(live);
	return best;
}
static int by_start(const void *a, const void *b)
{
	const Buf *x = &sort_bufs_base[*(const int *)a], *y = &sort_bufs_base[*(const int *)b];
	if (x->start != y->start)
		return x->start - y->start;
	return by_size_desc(a, b);
}

static int by_area_desc(const void *a, const void *b)
{
	const Buf *x = &sort_bufs_base[*(const int *)a], *y = &sort_bufs_base[*(const int *)b];
	double ax = (double)x->size * (x->end - x->start + 1), ay = (double)y->size * (y->end - y->start + 1);
	if (ax != ay)
		return ax > ay ? -1 : 1;
	return by_size_desc(a, b);
}

static int by_life_desc(const void *a, const void *b)
{
	const Buf *x = &sort_bufs_base[*(const int *)a], *y = &sort_bufs_base[*(const int *)b];
	if (x->end - x->start != y->end - y->start)
		return (y->end - y->start) - (x->end - x->start);
	return by_size_desc(a, b);
}

static int by_end_desc(const void *a, const void *b)
{
	const Buf *x = &sort_bufs_base[*(const int *)a], *y = &sort_bufs_base[*(const int *)b];
	if (x->end != y->end)
		return y->end - x->end;
	return by_size_desc(a, b);
}

/* greedy placement in the order given: each buffer at the lowest offset that fits; returns the top */
static size_t place_order(Bufs *B, const int *order)
{
	char *placed = calloc(B->n + 1, 1);
	size_t top = 0;
	for (int k = 0; k < B->n; k++) {
		Buf *x = &B->v[order[k]];
		x->off = best_fit(B, placed, order[k]);
		placed[order[k]] = 1;
		top = x->off + x->size > top ? x->off + x->size : top;
	}
	free(placed);
	return top;
}

static void sorted_order(Bufs *B, int *order, int (*cmp)(const void *, const void *))
{
	for (int b = 0; b < B->n; b++)
		order[b] = b;
	sort_bufs_base = B->v;
	qsort(order, B->n, sizeof *order, cmp);
}

#define PLAN_SHUFFLES 256          /* perturbed orders tried, at most ... */
#define PLAN_SHUFFLE_WORK 4000000.0 /* ... and fewer for larger programs: tries * buffers^2 */

/* Greedy placement is a heuristic: try it in five orders (largest first, earliest first, largest
 * size x lifetime first, longest-lived first, latest-dying first) and, as many times as the
 * program's size allows, in perturbations of the best order so far (a few buffers swapped, from
 * a fixed seed: the plan is the same on every run); keep the smallest workspace. */
static size_t place_bufs(Bufs *B)
{
	int (*orders[])(const void *, const void *) = {by_size_desc, by_start, by_area_desc, by_life_desc, by_end_desc};
	int *best = malloc((B->n + 1) * sizeof *best), *o = malloc((B->n + 1) * sizeof *o);
	size_t best_top = (size_t)-1;
	for (int i = 0; i < 5; i++) {
		sorted_order(B, o, orders[i]);
		size_t top = place_order(B, o);
		if (top < best_top) {
			best_top = top;
			memcpy(best, o, B->n * sizeof *o);
		}
	}
	unsigned seed = 12345;
	double fit = PLAN_SHUFFLE_WORK / ((double)B->n * B->n + 1);
	int tries = fit < PLAN_SHUFFLES ? (int)fit : PLAN_SHUFFLES;
	for (int t = 0; B->n > 1 && t < tries; t++) {
		memcpy(o, best, B->n * sizeof *o);
		for (int s = 0; s < 1 + B->n / 16; s++) {
			seed = seed * 1103515245u + 12345u;
			int k = (int)((seed >> 8) % (unsigned)B->n), tmp = o[k];
			seed = seed * 1103515245u + 12345u;
			int l = (int)((seed >> 8) % (unsigned)B->n);
			o[k] = o[l];
			o[l] = tmp;
		}
		size_t top = place_order(B, o);
		if (top < best_top) {
			best_top = top;
			memcpy(best, o, B->n * sizeof *o);
		}
	}
	size_t top = place_order(B, best);
	free(best);
	free(o);
	return top;
}

static void allocate(PlanCtx *c, size_t base, size_t fixed)
{
	Graph *g = c->g;
	CgPlan *p = c->p;
	Bufs B = {NULL, 0, malloc((g->nvalues + 1) * sizeof(int))};
	for (int i = 0; i < g->nvalues; i++)
		B.of[i] = -1;
	collect_bufs(c, &B);
	p->fixed_bytes = fixed;
	p->peak_bytes = peak_live(&B, g->nnodes, fixed);
	p->ws_bytes = base + place_bufs(&B);
	for (int i = 0; i < g->nvalues; i++)
		if (B.of[i] >= 0)
			set_loc(p, g->values[i], CG_WS, base + B.v[B.of[i]].off, value_bytes(c->L, g->values[i]));
	free(B.v);
	free(B.of);
}

/* bytes of the fixed head this program uses (inputs, label, loss / outputs) */
static size_t fixed_used(PlanCtx *c)
{
	size_t s = 0;
	Graph *g = c->g;
	s += align_up(c->L->red_bytes);
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
		rc = cg_plan_check(p, err, errlen); /* cheap: always on */
	}
	free(c.def);
	free(c.last);
	free(c.upd);
	return rc;
}

/* bytes read and written by the launched nodes: a value read inside the kernel that made it (a
 * member of its group, except the loss kernel's bias sum, which reads the gradient back) and
 * a value that never leaves a kernel count once, as written, or not at all */
size_t cg_plan_traffic(const CgPlan *p, const CgLayout *L)
{
	const Graph *g = p->g;
	int maxid = 0;
	for (int i = 0; i < g->nnodes; i++)
		maxid = g->nodes[i]->id > maxid ? g->nodes[i]->id : maxid;
	int *grp = malloc((maxid + 1) * sizeof *grp); /* by node id: its group, -1 none */
	for (int i = 0; i < g->nnodes; i++)
		grp[g->nodes[i]->id] = p->fu.of ? p->fu.of[i] : -1;
	size_t s = 0;
	for (int i = 0; i < g->nnodes; i++) {
		const Node *n = g->nodes[i];
		int G = grp[n->id];
		if (ir_ops[n->op].kclass == K_NONE)
			continue;
		for (int k = 0; k < n->nin; k++) {
			const Value *v = n->in[k];
			/* in a register of the group's kernel, or a fallback's scratch */
			int seen = p->fu.internal[v->id] || p->fu.scratch[v->id] ||
				   (G >= 0 && v->def && grp[v->def->id] == G && p->fu.groups[G].kind != CG_G_LOSS);
			for (int j = 0; j < k; j++)
				seen |= n->in[j] == v;
			s += seen ? 0 : value_bytes(L, v);
		}
		for (int k = 0; k < n->nout; k++)
			s += p->fu.internal[n->out[k]->id] || p->fu.scratch[n->out[k]->id] ? 0 : value_bytes(L, n->out[k]);
	}
	for (int i = 0; i < p->ncopies; i++)
		s += 2 * value_bytes(L, p->copies[i].from);
	free(grp);
	return s;
}

void cg_plan_free(CgPlan *p)
{
	free(p->loc);
	free(p->root);
	free(p->copies);
	cg_fusion_free(&p->fu);
	memset(p, 0, sizeof *p);
}
