/*
 * cg_plan_check.c — an independent check of a finished memory plan (cg_plan_check).
 *
 * The planner (cg_plan.c) decides where every workspace tensor lives; a mistake there makes a
 * kernel overwrite a tensor that a later kernel still reads, which shows up only as wrong
 * numbers. This checker recomputes every workspace tensor's lifetime from the graph alone — the
 * schedule position of its producer to the last position reading it or any alias of it (a
 * Reshape/Flatten shares its root's buffer); graph inputs and the label live all program long;
 * the loss, the inference outputs and the sources of end-of-program copies live to the end — and
 * then requires that any two tensors whose byte ranges overlap have disjoint lifetimes. The one
 * permitted meeting is the in-place hand-over: an elementwise node whose output starts at the
 * very offset of an input that dies at that node. A fused group runs as one kernel: what any
 * member reads lives to the group's last position, what any member writes from its first, and
 * values internal to a group have no place at all. It shares nothing with the planner's own
 * bookkeeping (buffers, intervals, sort order), so it catches the planner's bugs rather than
 * repeating them. Cost: a sort by offset and a sweep, O(T log T + overlapping pairs).
 */
#include <stdlib.h>
#include <string.h>

#include "codegen/cg_internal.h"

typedef struct {
	const Value *v;
	size_t off, bytes;
	int start, end;
} Life;

/* start/end by root id, from the schedule */
static void lifetimes(const CgPlan *p, int *start, int *end)
{
	const Graph *g = p->g;
	int n = g->nnodes;
	for (int i = 0; i < g->nvalues; i++) {
		int fixed = g->values[i]->kind != V_TEMP;
		start[i] = fixed ? 0 : -1;
		end[i] = fixed ? n : -1;
	}
	for (int i = 0; i < n; i++) {
		const Node *nd = g->nodes[i];
		int rd = cg_fusion_last(&p->fu, i), wr = cg_fusion_first(&p->fu, i);
		for (int k = 0; k < nd->nin; k++) {
			int r = p->root[nd->in[k]->id]->id;
			end[r] = end[r] < rd ? rd : end[r];
		}
		for (int k = 0; k < nd->nout; k++) {
			int r = p->root[nd->out[k]->id]->id;
			if (start[r] < 0 || start[r] > wr)
				start[r] = wr;
			if (end[r] < rd)
				end[r] = rd;
		}
	}
	for (int i = 0; i < p->ncopies; i++)
		end[p->root[p->copies[i].from->id]->id] = n;
	if (p->training && g->loss)
		end[p->root[g->loss->id]->id] = n;
	for (int i = 0; !p->training && i < g->noutputs; i++)
		end[p->root[g->outputs[i]->id]->id] = n;
}

static int by_offset(const void *a, const void *b)
{
	const Life *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* the kernel at position b->start (a node, or a fused group of elementwise nodes) reads a value
 * rooted at a, which dies there, and writes one rooted at b at the same offset, element by element */
static int handover(const CgPlan *p, const Life *a, const Life *b)
{
	if (a->off != b->off || b->start >= p->g->nnodes || a->end != cg_fusion_last(&p->fu, b->start))
		return 0;
	int reads = 0, writes = 0;
	for (int i = b->start; i <= a->end; i++) {
		const Node *n = p->g->nodes[i];
		KClass kc = ir_ops[n->op].kclass;
		if (kc != K_UNARY && kc != K_BINARY)
			return 0;
		for (int k = 0; k < n->nin; k++)
			reads |= p->root[n->in[k]->id] == a->v;
		for (int k = 0; k < n->nout; k++)
			writes |= p->root[n->out[k]->id] == b->v;
	}
	return reads && writes;
}

static int collect(const CgPlan *p, Life *t, const int *start, const int *end, char *err, size_t errlen)
{
	const Graph *g = p->g;
	int nt = 0;
	for (int i = 0; i < g->nvalues; i++) {
		const Value *v = g->values[i];
		const CgLoc *l = &p->loc[i];
		if (p->root[i] != v || start[i] < 0 || p->fu.internal[i])
			continue;
		if (v->kind == V_TEMP && l->space == CG_NOWHERE)
			return cg_fail(err, errlen, "codegen: memory plan: '%s' has no place", v->name);
		if (l->space == CG_WS && l->bytes)
			t[nt++] = (Life){v, l->offset, l->bytes, start[i], end[i]};
	}
	return nt;
}

int cg_plan_check(const CgPlan *p, char *err, size_t errlen)
{
	const Graph *g = p->g;
	int *start = malloc((g->nvalues + 1) * sizeof *start), *end = malloc((g->nvalues + 1) * sizeof *end);
	Life *t = malloc((g->nvalues + 1) * sizeof *t);
	lifetimes(p, start, end);
	int nt = collect(p, t, start, end, err, errlen), rc = nt < 0 ? -1 : 0;
	qsort(t, nt > 0 ? nt : 0, sizeof *t, by_offset);
	for (int i = 0; i < nt && rc == 0; i++) {
		for (int j = i + 1; j < nt && t[j].off < t[i].off + t[i].bytes && rc == 0; j++) {
			const Life *a = &t[i], *b = &t[j];
			if (a->end < b->start || b->end < a->start || handover(p, a, b) || handover(p, b, a))
				continue;
			rc = cg_fail(err, errlen, "codegen: memory plan: '%s' [%d,%d] and '%s' [%d,%d] are live "
				     "together at workspace bytes %zu..%zu and %zu..%zu",
				     a->v->name, a->start, a->end, b->v->name, b->start, b->end, a->off,
				     a->off + a->bytes, b->off, b->off + b->bytes);
		}
	}
	free(start);
	free(end);
	free(t);
	return rc;
}
