/*
 * mark_params.c — decide which V_PARAM values are trained (pass_mark_params).
 *
 * A parameter stays one only when it is float and lies on a differentiable path to outputs[0]:
 * one backward sweep from outputs[0] marks every float value whose gradient can reach it,
 * stepping over a node only when its op's gradient rule lets gradients through (ops.def `grad`
 * column neither `zero` nor `none`, see grad_flows). Every other parameter (an integer shape
 * initializer, a float table only read by a comparison, a weight that no output uses) becomes a
 * V_CONST keeping its data, so that folding can consume it; the remaining params keep their order.
 *
 * Precondition: g has at least one output. Runs before the inference graph is cloned and
 * before the training program is built (passes/pipeline.c).
 */
#include <stdlib.h>

#include "passes/grad.h"
#include "passes/passes.h"

/* live[v]: v is float and a gradient from outputs[0] reaches it */
static char *mark_live(Graph *g)
{
	char *live = calloc(g->nvalues, 1);
	if (!live)
		dlcc_internal_error(__FILE__, __LINE__, "out of memory");
	live[g->outputs[0]->id] = ir_dt_is_float(g->outputs[0]->dt);
	for (int i = g->nnodes - 1; i >= 0; i--) {
		Node *n = g->nodes[i];
		int any = 0;
		for (int k = 0; k < n->nout; k++)
			any |= live[n->out[k]->id];
		if (!any || !grad_flows(n->op))
			continue;
		for (int j = 0; j < n->nin; j++)
			live[n->in[j]->id] |= ir_dt_is_float(n->in[j]->dt);
	}
	return live;
}

int pass_mark_params(Graph *g)
{
	if (g->noutputs < 1)
		return ir_error(g, "mark-params: the graph '%s' has no outputs", g->name);
	char *live = mark_live(g);
	int kept = 0;
	for (int i = 0; i < g->nparams; i++) {
		Value *p = g->params[i];
		if (live[p->id]) {
			g->params[kept++] = p;
			continue;
		}
		DLCC_ASSERT(p->data);
		p->kind = V_CONST;
	}
	g->nparams = kept;
	free(live);
	return 0;
}
