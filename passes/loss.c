/*
 * loss.c — attach the training loss to the model's first output (pass_loss).
 *
 *   cross_entropy  label "label": i64 class ids shaped like outputs[0] without its last axis;
 *                  loss = SoftmaxCrossEntropy(outputs[0], label) (mean over all positions)
 *   mse            label "label": outputs[0]'s dtype and shape;
 *                  loss = ReduceMean over all axes, keepdims 0, of (out - label)^2
 *   none           outputs[0] already is the loss: a float scalar (a one-element tensor without
 *                  batch dims is reshaped to a scalar)
 *
 * Sets g->label (except for none), g->loss and g->loss_kind. Precondition: a forward graph with
 * at least one output and no loss yet. Differentiation is left to pass_autodiff.
 */
#include <string.h>

#include "passes/passes.h"

static int loss_fail(Graph *g, const char *kind, const char *what)
{
	char s[128];
	ir_shape_str(&g->outputs[0]->shape, s, sizeof s);
	return ir_error(g, "loss '%s': the model output '%s' %s %s is %s", kind, g->outputs[0]->name,
			ir_dt_name(g->outputs[0]->dt), s, what);
}

static Value *new_label(Graph *g, DType dt, Shape s)
{
	return ir_value(g, V_LABEL, "label", dt, s, NULL);
}

static Value *loss_cross_entropy(Graph *g, Value *out)
{
	if (out->shape.rank < 1) {
		loss_fail(g, "cross_entropy", "a scalar; cross_entropy needs class scores on a last "
			  "axis (use --loss none for a model that outputs its loss)");
		return NULL;
	}
	Shape ls = out->shape;
	ls.rank--;
	return ir_op2(g, OP_SOFTMAX_CROSS_ENTROPY, out, new_label(g, DT_I64, ls));
}

static Value *loss_mse(Graph *g, Value *out)
{
	Value *diff = ir_op2(g, OP_SUB, out, new_label(g, out->dt, out->shape));
	Value *sq = diff ? ir_op2(g, OP_MUL, diff, diff) : NULL;
	if (!sq)
		return NULL;
	Node *n = ir_begin(g, OP_REDUCE_MEAN, NULL, 1, &sq);
	ir_set_ints(g, n, "axes", 0, NULL);
	ir_set_i(g, n, "keepdims", 0);
	return ir_finish(g, n) < 0 ? NULL : n->out[0];
}

static Value *loss_none(Graph *g, Value *out)
{
	if (out->shape.rank == 0)
		return out;
	if (ir_has_batch(&out->shape) || ir_numel(&out->shape) != 1) {
		loss_fail(g, "none", "not a scalar; --loss none needs a model whose first output is "
			  "its scalar loss");
		return NULL;
	}
	Node *n = ir_begin(g, OP_RESHAPE, NULL, 1, &out);
	ir_set_ints(g, n, "shape", 0, NULL);
	return ir_finish(g, n) < 0 ? NULL : n->out[0];
}

int pass_loss(Graph *g, const TrainOpts *o)
{
	const char *kind = o->loss ? o->loss : "cross_entropy";
	if (g->noutputs < 1)
		return ir_error(g, "loss: the graph '%s' has no outputs", g->name);
	if (g->loss || g->label)
		return ir_error(g, "loss: the graph '%s' already has a loss or a label", g->name);
	Value *out = g->outputs[0], *loss;
	if (!ir_dt_is_float(out->dt))
		return loss_fail(g, kind, "not floating point; a loss needs a float output");
	if (strcmp(kind, "cross_entropy") == 0)
		loss = loss_cross_entropy(g, out);
	else if (strcmp(kind, "mse") == 0)
		loss = loss_mse(g, out);
	else if (strcmp(kind, "none") == 0)
		loss = loss_none(g, out);
	else
		return ir_error(g, "loss: unknown loss '%s' (expected cross_entropy, mse or none)", kind);
	if (!loss)
		return -1;
	g->loss = loss;
	g->loss_kind = ir_strdup(g, kind);
	return 0;
}
