/*
 * autodiff.c — reverse-mode differentiation of g->loss (pass_autodiff).
 *
 * How: the rule table comes from the `grad` column of ir/ops.def (an X-macro). Two sweeps over
 * the forward schedule find the active values: those that depend on a wrt value through ops that
 * let gradients flow (forward) and that reach the loss (backward); integer values never take
 * part. Then the nodes are visited in reverse schedule order, seeded with dloss/dloss = 1 (a
 * scalar constant of the loss dtype); each active node's rule appends its backward nodes, and a
 * value used several times accumulates its contributions with Add.
 *
 * Precondition: g->loss is a scalar float value of g. Result: the backward program is appended
 * to the schedule; grads[i] is the gradient of wrt[i] (same shape and dtype). A parameter that
 * does not reach the loss gets an explicit zero gradient (Expand of a scalar 0), not an error,
 * so that the optimizer (e.g. weight decay) still treats it uniformly. Dead or duplicate
 * backward nodes are left to DCE and CSE.
 */
#include <stdlib.h>

#include "passes/grad.h"
#include "passes/passes.h"

static const GradRule grad_table[OP_COUNT] = {
#define X(e, nm, onnx, mi, ma, no, shape, grad, ...) [OP_##e] = grad_##grad,
#include "ir/ops.def"
#undef X
};

int grad_flows(Op op) { return grad_table[op] != grad_none && grad_table[op] != grad_zero; }

#define AD_MAX_IO 8

typedef struct {
	int nv, nn;    /* values and nodes of the forward program */
	char *active;  /* [nv] depends on a wrt value and reaches the loss */
	Value **grad;  /* [nv] accumulated gradient, NULL when none yet */
} Sweep;

static int is_float(const Value *v) { return ir_dt_is_float(v->dt); }

/* forward: values depending on a wrt value through ops that let gradients through (a `none` op
 * does propagate, so that differentiating through it is reported rather than ignored) */
static void mark_from_wrt(Graph *g, Sweep *s, char *from, int nwrt, Value *const *wrt)
{
	for (int i = 0; i < nwrt; i++)
		from[wrt[i]->id] = is_float(wrt[i]);
	for (int i = 0; i < s->nn; i++) {
		Node *n = g->nodes[i];
		int any = 0;
		for (int j = 0; j < n->nin; j++)
			any |= from[n->in[j]->id];
		if (!any || grad_table[n->op] == grad_zero)
			continue;
		for (int k = 0; k < n->nout; k++)
			from[n->out[k]->id] = is_float(n->out[k]);
	}
}

/* backward: values the loss depends on */
static void mark_to_loss(Graph *g, Sweep *s, char *to)
{
	to[g->loss->id] = 1;
	for (int i = s->nn - 1; i >= 0; i--) {
		Node *n = g->nodes[i];
		int any = 0;
		for (int k = 0; k < n->nout; k++)
			any |= to[n->out[k]->id];
		for (int j = 0; any && j < n->nin; j++)
			to[n->in[j]->id] = 1;
	}
}

static void sweep_init(Graph *g, Sweep *s, int nwrt, Value *const *wrt)
{
	s->nv = g->nvalues;
	s->nn = g->nnodes;
	s->active = calloc(s->nv, 1);
	s->grad = calloc(s->nv, sizeof *s->grad);
	char *from = calloc(s->nv, 1), *to = calloc(s->nv, 1);
	if (!s->active || !s->grad || !from || !to)
		dlcc_internal_error(__FILE__, __LINE__, "out of memory");
	mark_from_wrt(g, s, from, nwrt, wrt);
	mark_to_loss(g, s, to);
	for (int i = 0; i < s->nv; i++)
		s->active[i] = from[i] && to[i];
	free(from);
	free(to);
}

static void sweep_free(Sweep *s)
{
	free(s->active);
	free(s->grad);
}

/* add a contribution to v's gradient (Add when v fans out) */
static int accumulate(Graph *g, Sweep *s, Value *v, Value *d)
{
	DLCC_ASSERT(ir_shape_eq(&v->shape, &d->shape) && v->dt == d->dt);
	Value **slot = &s->grad[v->id];
	if (!*slot) {
		*slot = d;
		return 0;
	}
	*slot = ir_op2(g, OP_ADD, *slot, d);
	return *slot ? 0 : -1;
}

/* run node n's rule if it has an output gradient and an input that needs one */
static int backprop_node(Graph *g, Sweep *s, Node *n)
{
	Value *dout[AD_MAX_IO] = {0}, *din[AD_MAX_IO] = {0};
	char need[AD_MAX_IO] = {0};
	int any_out = 0, any_in = 0;
	DLCC_ASSERT(n->nin <= AD_MAX_IO && n->nout <= AD_MAX_IO);
	for (int k = 0; k < n->nout; k++)
		any_out |= (dout[k] = s->grad[n->out[k]->id]) != NULL;
	for (int j = 0; j < n->nin; j++)
		any_in |= need[j] = s->active[n->in[j]->id];
	if (!any_out || !any_in)
		return 0;
	if (grad_table[n->op](g, n, dout, need, din) < 0)
		return -1;
	for (int j = 0; j < n->nin; j++)
		if (need[j] && din[j] && accumulate(g, s, n->in[j], din[j]) < 0)
			return -1;
	return 0;
}

static Value *zero_like(Graph *g, const Value *v)
{
	Node *n = ir_begin(g, OP_EXPAND, NULL, 1, (Value *[]){ir_const_scalar(g, v->dt, 0.0)});
	ir_set_ints(g, n, "shape", v->shape.rank, v->shape.d);
	return ir_finish(g, n) < 0 ? NULL : n->out[0];
}

static int check_loss(Graph *g)
{
	if (!g->loss)
		return ir_error(g, "autodiff: the graph has no loss (run the loss pass first)");
	if (g->loss->shape.rank != 0 || !is_float(g->loss))
		return ir_error(g, "autodiff: the loss '%s' must be a float scalar", g->loss->name);
	return 0;
}

int grad_backward(Graph *g, int nwrt, Value *const *wrt, Value **grads)
{
	if (check_loss(g) < 0)
		return -1;
	Sweep s;
	sweep_init(g, &s, nwrt, wrt);
	int rc = 0;
	if (s.active[g->loss->id])
		s.grad[g->loss->id] = ir_const_scalar(g, g->loss->dt, 1.0);
	for (int i = s.nn - 1; i >= 0 && rc == 0; i--)
		rc = backprop_node(g, &s, g->nodes[i]);
	for (int i = 0; i < nwrt && rc == 0; i++) {
		grads[i] = s.grad[wrt[i]->id] ? s.grad[wrt[i]->id] : zero_like(g, wrt[i]);
		rc = grads[i] ? 0 : -1;
	}
	sweep_free(&s);
	return rc;
}

int pass_autodiff(Graph *g, Value **grads)
{
	for (int i = 0; i < g->nparams; i++)
		if (!is_float(g->params[i]))
			return ir_error(g, "autodiff: parameter '%s' is %s; only float parameters can be "
					   "trained", g->params[i]->name, ir_dt_name(g->params[i]->dt));
	return grad_backward(g, g->nparams, g->params, grads);
}
