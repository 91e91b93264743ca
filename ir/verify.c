/*
 * verify.c — ir_verify: checks the invariants every pass may rely on and must keep.
 *
 * - value ids: g->values[i]->id == i (clone, the interpreter and codegen index by id);
 * - the value lists: inputs are V_INPUT, params V_PARAM, states V_STATE with their parameter,
 *   the label V_LABEL; constants and parameters carry data and no batch dimension;
 * - nodes in schedule order: arity as in the op table, each input defined before use (a
 *   graph-level value or the output of an earlier node), each output produced once, with its
 *   def/out_index set, and dtype and shape equal to what the op's shape rule gives now (the rule
 *   re-runs on scratch copies of the outputs, so the graph itself is never touched), and a
 *   learning-rate schedule, where a node has one, well formed (ir/lr_schedule.c);
 * - results: outputs and loss defined, the loss a float scalar, each update's value defined and
 *   of its state's dtype and shape.
 * The first problem found is reported as one line in g->err naming the node or value.
 */
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

static const char *vname(const Value *v) { return v && v->name ? v->name : "?"; }

static int verify_node_fail(Graph *g, const Node *n, const char *what, const Value *v)
{
	return ir_error(g, "verify: node '%s' (%s): %s%s%s", n->name ? n->name : "?",
			ir_ops[n->op].name, what, v ? " %" : "", v ? vname(v) : "");
}

static int verify_values(Graph *g)
{
	for (int i = 0; i < g->nvalues; i++) {
		const Value *v = g->values[i];
		if (!v || v->id != i)
			return ir_error(g, "verify: value slot %d holds id %d", i, v ? v->id : -1);
		if ((v->kind == V_CONST || v->kind == V_PARAM) && ir_has_batch(&v->shape))
			return ir_error(g, "verify: value %%%s: a constant or parameter has a batch dimension",
					vname(v));
	}
	return 0;
}

static int verify_listed(Graph *g, Value **list, int n, ValueKind k, const char *what)
{
	for (int i = 0; i < n; i++) {
		const Value *v = list[i];
		if (!v || v->id < 0 || v->id >= g->nvalues || g->values[v->id] != v)
			return ir_error(g, "verify: %s %d is not a value of the graph", what, i);
		if (v->kind != k)
			return ir_error(g, "verify: %%%s is listed as a %s but is not one", vname(v), what);
		if ((k == V_PARAM && !v->data) || (k == V_STATE && !v->param && !v->slot))
			return ir_error(g, "verify: %s %%%s has no %s", what, vname(v),
					k == V_PARAM ? "initial data" : "parameter");
	}
	return 0;
}

static int verify_lists(Graph *g)
{
	if (verify_listed(g, g->inputs, g->ninputs, V_INPUT, "input") < 0 ||
	    verify_listed(g, g->params, g->nparams, V_PARAM, "parameter") < 0 ||
	    verify_listed(g, g->states, g->nstates, V_STATE, "state") < 0)
		return -1;
	if (g->label && verify_listed(g, &g->label, 1, V_LABEL, "label") < 0)
		return -1;
	return 0;
}

/* a value usable now: of this graph, graph-level or already produced */
static int verify_defined(const Graph *g, const Value *v, const char *defined)
{
	if (!v || v->id < 0 || v->id >= g->nvalues || g->values[v->id] != v)
		return 0;
	if (v->kind == V_CONST)
		return v->data != NULL;
	return v->kind != V_TEMP || defined[v->id];
}

/* re-run the shape rule on scratch outputs and compare */
static int verify_shape(Graph *g, const Node *n)
{
	Value scratch[8], *outs[8];
	DLCC_ASSERT(n->nout <= 8);
	for (int i = 0; i < n->nout; i++) {
		scratch[i] = *n->out[i];
		scratch[i].dt = n->nin ? n->in[0]->dt : DT_F32;
		scratch[i].shape = ir_shape0();
		outs[i] = &scratch[i];
	}
	Node tmp = *n;
	tmp.out = outs;
	if (ir_ops[n->op].shape(g, &tmp) < 0)
		return ir_error(g, "verify: %s", g->err);
	for (int i = 0; i < n->nout; i++) {
		const Value *v = n->out[i];
		if (v->dt == outs[i]->dt && ir_shape_eq(&v->shape, &outs[i]->shape))
			continue;
		char a[160], b[160];
		return ir_error(g, "verify: node '%s' (%s): output %%%s is %s%s but the shape rule gives %s%s",
				n->name ? n->name : "?", ir_ops[n->op].name, vname(v), ir_dt_name(v->dt),
				ir_shape_str(&v->shape, a, sizeof a), ir_dt_name(outs[i]->dt),
				ir_shape_str(&outs[i]->shape, b, sizeof b));
	}
	return 0;
}

/* an optimizer update's learning-rate schedule attributes (ir/lr_schedule.c) */
static int verify_schedule(Graph *g, const Node *n)
{
	LrSchedule s;
	if (!ir_attr(n, "schedule") && !ir_attr(n, "warmup"))
		return 0;
	if (ir_lr_of(n, &s) == 0)
		return 0;
	const char *why = ir_lr_invalid(&s);
	return verify_node_fail(g, n, why && ir_attr(n, "schedule") ? why
			        : "schedule must be \"constant\", \"step\" or \"cosine\" (warmup needs it)", NULL);
}

static int verify_node(Graph *g, const Node *n, char *defined)
{
	const OpInfo *oi = &ir_ops[n->op];
	if (n->nin < oi->min_in || n->nin > oi->max_in || n->nout != oi->nout)
		return verify_node_fail(g, n, "wrong number of inputs or outputs", NULL);
	for (int k = 0; k < n->nin; k++)
		if (!verify_defined(g, n->in[k], defined))
			return verify_node_fail(g, n, "uses a value not defined before it:", n->in[k]);
	for (int k = 0; k < n->nout; k++) {
		const Value *v = n->out[k];
		if (!v || v->id < 0 || v->id >= g->nvalues || g->values[v->id] != v || v->kind != V_TEMP)
			return verify_node_fail(g, n, "an output is not a temporary of the graph", NULL);
		if (v->def != n || v->out_index != k)
			return verify_node_fail(g, n, "output does not point back to its node:", v);
		if (defined[v->id])
			return verify_node_fail(g, n, "output is produced twice:", v);
	}
	if (verify_shape(g, n) < 0 || verify_schedule(g, n) < 0)
		return -1;
	for (int k = 0; k < n->nout; k++)
		defined[n->out[k]->id] = 1;
	return 0;
}

static int verify_results(Graph *g, const char *defined)
{
	char a[160], b[160];
	for (int i = 0; i < g->noutputs; i++)
		if (!verify_defined(g, g->outputs[i], defined))
			return ir_error(g, "verify: output %d %%%s is not defined", i, vname(g->outputs[i]));
	if (g->loss && !verify_defined(g, g->loss, defined))
		return ir_error(g, "verify: the loss %%%s is not defined", vname(g->loss));
	if (g->loss && (g->loss->shape.rank != 0 || !ir_dt_is_float(g->loss->dt)))
		return ir_error(g, "verify: the loss %%%s is not a float scalar", vname(g->loss));
	for (int i = 0; i < g->nupdates; i++) {
		const Update *u = &g->updates[i];
		if (!verify_defined(g, u->state, defined) ||
		    (u->state->kind != V_PARAM && u->state->kind != V_STATE))
			return ir_error(g, "verify: update %d: %%%s is not a parameter or state", i,
					vname(u->state));
		if (!verify_defined(g, u->value, defined))
			return ir_error(g, "verify: update of %%%s: %%%s is not defined", vname(u->state),
					vname(u->value));
		if (u->state->dt != u->value->dt || !ir_shape_eq(&u->state->shape, &u->value->shape))
			return ir_error(g, "verify: update of %%%s (%s%s) with %%%s (%s%s)", vname(u->state),
					ir_dt_name(u->state->dt), ir_shape_str(&u->state->shape, a, sizeof a),
					vname(u->value), ir_dt_name(u->value->dt),
					ir_shape_str(&u->value->shape, b, sizeof b));
	}
	return 0;
}

/* node ids are unique and below g->next_node_id (passes index per-node tables by id) */
static int verify_node_ids(Graph *g)
{
	char *seen = calloc(g->next_node_id + 1, 1);
	DLCC_ASSERT(seen);
	int rc = 0;
	for (int i = 0; i < g->nnodes && rc == 0; i++) {
		int id = g->nodes[i]->id;
		if (id < 0 || id >= g->next_node_id || seen[id])
			rc = ir_error(g, "node '%s': id %d is %s", g->nodes[i]->name, id,
				      id < 0 || id >= g->next_node_id ? "out of range" : "used twice");
		else
			seen[id] = 1;
	}
	free(seen);
	return rc;
}

int ir_verify(Graph *g)
{
	if (verify_values(g) < 0 || verify_lists(g) < 0 || verify_node_ids(g) < 0)
		return -1;
	char *defined = calloc(g->nvalues + 1, 1);
	DLCC_ASSERT(defined);
	int rc = 0;
	for (int i = 0; i < g->nnodes && rc == 0; i++)
		rc = verify_node(g, g->nodes[i], defined);
	if (rc == 0)
		rc = verify_results(g, defined);
	free(defined);
	return rc;
}
