/*
 * loss_scale.c — dynamic loss scaling for fp16 training, inside the training program.
 *
 * fp16 gradients underflow where fp32 ones do not, so the backward program differentiates the
 * loss times a scale S, and the optimizer divides the gradients by S again. S adapts the way
 * torch.cuda.amp.GradScaler does: a step whose gradients hold an inf or NaN is skipped (parameters
 * and optimizer state keep their values) and S halves; after `window` good steps in a row S
 * doubles. Everything is in the graph (ops in ir/ops.def), so the interpreter, the kernels and
 * checkpoints see the same thing:
 *
 *   state k = slot "loss_scale_log2" (f32 [], starts at 0); state good = slot "loss_scale_good"
 *   %S      = LossScale(k) {alpha = initial scale}            S = alpha * 2^k, exact
 *   %Ls     = Mul(loss, S)                                     differentiated instead of loss
 *   %finite = AllFinite(grad1, ..., gradn)                     1 or 0
 *   XxxUpdate(p, grad, state.., S, finite)                     skip or use grad / S
 *   (k', good') = LossScaleUpdate(k, good, finite) {window}    k <- k', good <- good'
 *
 * The two states belong to no parameter (value->param NULL); the runtime finds k by its slot to
 * report the scale and to tell a skipped step (k went down) from a taken one.
 */
#include <string.h>

#include "passes/loss_scale.h"

static Value *global_state(Graph *g, const char *slot)
{
	char name[64];
	snprintf(name, sizeof name, "dlcc.%s", slot);
	Value *s = ir_value(g, V_STATE, name, DT_F32, ir_shape0(), NULL);
	s->slot = ir_strdup(g, slot);
	return s;
}

int loss_scale_begin(Graph *g, const TrainOpts *o, LossScaling *ls)
{
	memset(ls, 0, sizeof *ls);
	if (o->loss_scale <= 0)
		return 0;
	ls->log2 = global_state(g, "loss_scale_log2");
	ls->good = global_state(g, "loss_scale_good");
	Node *n = ir_begin(g, OP_LOSS_SCALE, NULL, 1, &ls->log2);
	ir_set_f(g, n, "alpha", o->loss_scale);
	if (ir_finish(g, n) < 0)
		return -1;
	ls->scale = n->out[0];
	ls->loss = g->loss;
	if (!(g->loss = ir_op2(g, OP_MUL, ls->loss, ls->scale)))
		return -1;
	return 0;
}

int loss_scale_grads(Graph *g, LossScaling *ls, Value **grads)
{
	if (!ls->scale)
		return 0;
	g->loss = ls->loss; /* the program reports the loss itself */
	Value **in = ir_alloc(g, (g->nparams + 1) * sizeof *in);
	int n = 0;
	for (int i = 0; i < g->nparams; i++)
		if (!g->params[i]->buffer)
			in[n++] = grads[i];
	if (n == 0)
		return ir_error(g, "loss scaling: the model has no trained parameters");
	return (ls->finite = ir_op(g, OP_ALL_FINITE, n, in)) ? 0 : -1;
}

/* the update nodes take (scale, finite) as their last two inputs */
static void extend_update(Graph *g, Node *n, const LossScaling *ls)
{
	Value **in = ir_alloc(g, (n->nin + 2) * sizeof *in);
	memcpy(in, n->in, n->nin * sizeof *in);
	in[n->nin] = ls->scale;
	in[n->nin + 1] = ls->finite;
	n->in = in;
	n->nin += 2;
}

int loss_scale_finish(Graph *g, const TrainOpts *o, const LossScaling *ls)
{
	if (!ls->scale)
		return 0;
	for (int i = 0; i < g->nnodes; i++) {
		Node *n = g->nodes[i];
		if (n->op == OP_SGD_UPDATE || n->op == OP_MOMENTUM_UPDATE || n->op == OP_ADAM_UPDATE)
			extend_update(g, n, ls);
	}
	Node *u = ir_begin(g, OP_LOSS_SCALE_UPDATE, NULL, 3, (Value *[]){ls->log2, ls->good, ls->finite});
	ir_set_i(g, u, "window", o->loss_scale_window > 0 ? o->loss_scale_window : 2000);
	if (ir_finish(g, u) < 0)
		return -1;
	ir_add_update(g, ls->log2, u->out[0]);
	ir_add_update(g, ls->good, u->out[1]);
	return 0;
}
