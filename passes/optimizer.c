/*
 * optimizer.c — lower the optimizer step into the graph (pass_optimizer).
 *
 * For every parameter p with gradient gr it appends one update node and records the updates:
 *   sgd        SgdUpdate(p, gr) {lr, weight_decay}                      p <- out0
 *   momentum   MomentumUpdate(p, gr, buf) {lr, momentum, dampening,    p <- out0, buf <- out1
 *              weight_decay, nesterov}
 *   adam/adamw AdamUpdate(p, gr, m, v) {lr, beta1, beta2, eps,         p <- out0, m <- out1,
 *              weight_decay, decoupled}                                  v <- out2
 * Optimizer state is a V_STATE per slot, named "<p>.<slot>", shaped and typed like p, starting
 * at zero (no host data: the runtime and interpreter zero it); value->param and value->slot say
 * whose it is. The step number used by momentum and Adam is a run-time value, not an attribute.
 * A learning-rate schedule other than a constant rate adds the attributes schedule, warmup,
 * step_size, gamma, schedule_steps, min_lr to every update (ir/lr_schedule.c; the rate at a
 * step then depends on that run-time step).
 *
 * Precondition: grads[i] is the gradient of g->params[i] (pass_autodiff). Sets g->optimizer.
 */
#include <stdio.h>
#include <string.h>

#include "passes/passes.h"

static Value *new_state(Graph *g, Value *p, const char *slot)
{
	char name[256];
	snprintf(name, sizeof name, "%s.%s", p->name, slot);
	Value *s = ir_value(g, V_STATE, name, p->dt, p->shape, NULL);
	s->param = p;
	s->slot = ir_strdup(g, slot);
	return s;
}

/* output 0 is the new parameter (input 0), output k > 0 the new state held in input k + 1 */
static Node *finish_updates(Graph *g, const TrainOpts *o, Node *n)
{
	ir_set_lr_schedule(g, n, &o->schedule);
	if (ir_finish(g, n) < 0)
		return NULL;
	for (int k = 0; k < n->nout; k++)
		ir_add_update(g, k == 0 ? n->in[0] : n->in[k + 1], n->out[k]);
	return n;
}

static Node *update_sgd(Graph *g, const TrainOpts *o, Value *p, Value *gr)
{
	Node *n = ir_begin(g, OP_SGD_UPDATE, NULL, 2, (Value *[]){p, gr});
	ir_set_f(g, n, "lr", o->lr);
	ir_set_f(g, n, "weight_decay", o->weight_decay);
	return finish_updates(g, o, n);
}

static Node *update_momentum(Graph *g, const TrainOpts *o, Value *p, Value *gr)
{
	Value *in[3] = {p, gr, new_state(g, p, "momentum_buffer")};
	Node *n = ir_begin(g, OP_MOMENTUM_UPDATE, NULL, 3, in);
	ir_set_f(g, n, "lr", o->lr);
	ir_set_f(g, n, "momentum", o->momentum);
	ir_set_f(g, n, "dampening", o->dampening);
	ir_set_f(g, n, "weight_decay", o->weight_decay);
	ir_set_i(g, n, "nesterov", o->nesterov);
	return finish_updates(g, o, n);
}

static Node *update_adam(Graph *g, const TrainOpts *o, Value *p, Value *gr, int decoupled)
{
	Value *in[4] = {p, gr, new_state(g, p, "exp_avg"), new_state(g, p, "exp_avg_sq")};
	Node *n = ir_begin(g, OP_ADAM_UPDATE, NULL, 4, in);
	ir_set_f(g, n, "lr", o->lr);
	ir_set_f(g, n, "beta1", o->beta1);
	ir_set_f(g, n, "beta2", o->beta2);
	ir_set_f(g, n, "eps", o->eps);
	ir_set_f(g, n, "weight_decay", o->weight_decay);
	ir_set_i(g, n, "decoupled", decoupled);
	return finish_updates(g, o, n);
}

static Node *update_one(Graph *g, const TrainOpts *o, const char *opt, Value *p, Value *gr)
{
	if (strcmp(opt, "sgd") == 0)
		return update_sgd(g, o, p, gr);
	if (strcmp(opt, "momentum") == 0)
		return update_momentum(g, o, p, gr);
	return update_adam(g, o, p, gr, strcmp(opt, "adamw") == 0);
}

int pass_optimizer(Graph *g, const TrainOpts *o, Value **grads)
{
	static const char *const known[] = {"sgd", "momentum", "adam", "adamw"};
	const char *opt = o->optimizer ? o->optimizer : "sgd";
	int ok = 0;
	for (size_t i = 0; i < sizeof known / sizeof *known; i++)
		ok |= strcmp(opt, known[i]) == 0;
	if (!ok)
		return ir_error(g, "optimizer: unknown optimizer '%s' (expected sgd, momentum, adam or "
				   "adamw)", opt);
	if (ir_lr_invalid(&o->schedule))
		return ir_error(g, "optimizer: learning-rate schedule: %s", ir_lr_invalid(&o->schedule));
	for (int i = 0; i < g->nparams; i++) {
		DLCC_ASSERT(grads[i] && ir_shape_eq(&grads[i]->shape, &g->params[i]->shape));
		if (g->params[i]->buffer) /* running statistics: updated by the graph, not trained */
			continue;
		if (!update_one(g, o, opt, g->params[i], grads[i]))
			return -1;
	}
	g->optimizer = ir_strdup(g, opt);
	return 0;
}
