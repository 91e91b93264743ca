/*
 * dce.c — dead-code elimination (pass_dce).
 *
 * A node is live when one of its outputs is live; the roots are the model outputs, the loss
 * and every update's new value. One backward sweep over the schedule marks liveness (the
 * schedule is topological, so every user is seen before its producers), then the dead nodes
 * leave the schedule with ir_remove_nodes. Their output Values stay in g->values as dead
 * entries (ids are never reused); constants and parameters are never removed here — an unused
 * parameter is pass_mark_params' business, and unused constants are simply not printed.
 */
#include <stdlib.h>

#include "passes/passes.h"

static void dce_mark(char *live, const Value *v)
{
	if (v)
		live[v->id] = 1;
}

int pass_dce(Graph *g)
{
	char *live = calloc(g->nvalues + 1, 1), *keep = calloc(g->nnodes + 1, 1);
	DLCC_ASSERT(live && keep);
	for (int i = 0; i < g->noutputs; i++)
		dce_mark(live, g->outputs[i]);
	for (int i = 0; i < g->nupdates; i++)
		dce_mark(live, g->updates[i].value);
	dce_mark(live, g->loss);
	for (int i = g->nnodes - 1; i >= 0; i--) {
		const Node *n = g->nodes[i];
		for (int k = 0; k < n->nout; k++)
			keep[i] |= live[n->out[k]->id];
		for (int k = 0; keep[i] && k < n->nin; k++)
			dce_mark(live, n->in[k]);
	}
	ir_remove_nodes(g, keep);
	free(live);
	free(keep);
	return 0;
}
