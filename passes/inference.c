/*
 * inference.c — turn the forward graph's clone into the inference program (pass_inference).
 *
 * Ops that behave differently in training and in inference are switched to their inference
 * behaviour here, so that the training program (built from another clone) keeps the training
 * behaviour. Today that is Dropout: its ratio becomes 0, which makes it a copy with an all-true
 * mask (the same kernel, no RNG draw matters); when nothing reads the mask, the node is dropped
 * and its output replaced by its input, unless that output is a model output (then the copy
 * stays, since an output must be a buffer of its own). Precondition: a forward graph (no loss).
 */
#include "passes/passes.h"

static int used(const Graph *g, const Value *v)
{
	for (int i = 0; i < g->nnodes; i++)
		for (int j = 0; j < g->nodes[i]->nin; j++)
			if (g->nodes[i]->in[j] == v)
				return 1;
	for (int i = 0; i < g->noutputs; i++)
		if (g->outputs[i] == v)
			return 1;
	return 0;
}

static int is_output(const Graph *g, const Value *v)
{
	for (int i = 0; i < g->noutputs; i++)
		if (g->outputs[i] == v)
			return 1;
	return 0;
}

int pass_inference(Graph *g)
{
	char *keep = ir_alloc(g, g->nnodes ? g->nnodes : 1);
	int dropped = 0;
	for (int i = 0; i < g->nnodes; i++) {
		Node *n = g->nodes[i];
		keep[i] = 1;
		if (n->op != OP_DROPOUT)
			continue;
		ir_set_f(g, n, "ratio", 0.0);
		if (!used(g, n->out[1]) && !is_output(g, n->out[0])) {
			ir_replace_uses(g, n->out[0], n->in[0]);
			keep[i] = 0;
			dropped = 1;
		}
	}
	if (dropped)
		ir_remove_nodes(g, keep);
	return 0;
}
