/*
 * shape_reduce.c — shape rules of the reduction, dropout and loss block of ops.def: ArgMax,
 * Dropout, NllLoss (ReduceMax/Min/Prod share shape_reduce of ir/shape.c; NllLossGrad takes
 * logp's shape through shape_second).
 *
 * Attributes are in IR normal form (frontend/onnx_ops_reduce.c writes them): ArgMax's `axis`
 * non-negative; NllLoss's `reduction` one of "none", "sum", "mean", `ignore_index` present
 * only when the model gives one. NllLoss puts the class axis at 1 (ONNX layout): logp is
 * [N, C, d1, ...], the targets [N, d1, ...], the optional weights [C]; the class extent must be
 * a constant (the batch is never a class axis).
 */
#include <string.h>

#include "ir/ir.h"

static const char *nm(const Node *n) { return n->name ? n->name : "?"; }

static int bad(Graph *g, const Node *n, const char *what)
{
	return ir_error(g, "node '%s' (%s): %s", nm(n), ir_ops[n->op].name, what);
}

int shape_arg_max(Graph *g, Node *n)
{
	const Shape *x = &n->in[0]->shape;
	int axis = (int)ir_attr_i(n, "axis", 0), keep = ir_attr_i(n, "keepdims", 1) != 0;
	if (axis < 0 || axis >= x->rank)
		return bad(g, n, "axis out of range");
	Shape s = {0, {0}};
	for (int i = 0; i < x->rank; i++)
		if (i != axis || keep)
			s.d[s.rank++] = i == axis ? 1 : x->d[i];
	n->out[0]->dt = DT_I64;
	n->out[0]->shape = s;
	return 0;
}

int shape_dropout(Graph *g, Node *n)
{
	double r = ir_attr_f(n, "ratio", 0.5);
	if (!ir_dt_is_float(n->in[0]->dt))
		return bad(g, n, "the input must be floating point");
	if (!(r >= 0 && r < 1))
		return bad(g, n, "ratio must lie in [0, 1)");
	n->out[0]->dt = n->in[0]->dt;
	n->out[0]->shape = n->in[0]->shape;
	n->out[1]->dt = DT_BOOL;
	n->out[1]->shape = n->in[0]->shape;
	return 0;
}

/* t's shape must be logp's without axis 1 */
static int nll_targets_fit(const Shape *lp, const Shape *t)
{
	if (lp->rank < 2 || t->rank != lp->rank - 1)
		return 0;
	for (int i = 0; i < t->rank; i++)
		if (t->d[i] != lp->d[i ? i + 1 : 0])
			return 0;
	return 1;
}

int shape_nll_loss(Graph *g, Node *n)
{
	const Shape *lp = &n->in[0]->shape, *t = &n->in[1]->shape;
	const Attr *red = ir_attr(n, "reduction");
	const char *r = red && red->kind == A_STRING ? red->s : "mean";
	if (!ir_dt_is_float(n->in[0]->dt))
		return bad(g, n, "the log-probabilities must be floating point");
	if (n->in[1]->dt != DT_I64 && n->in[1]->dt != DT_I32)
		return bad(g, n, "the targets must be integer class ids");
	if (!nll_targets_fit(lp, t) || lp->d[1] < 0)
		return bad(g, n, "targets must be shaped like the input without its class axis 1");
	if (n->nin > 2 && (n->in[2]->shape.rank != 1 || n->in[2]->shape.d[0] != lp->d[1] ||
			   n->in[2]->dt != n->in[0]->dt))
		return bad(g, n, "weights must be a 1-D tensor of one weight per class");
	if (strcmp(r, "none") && strcmp(r, "sum") && strcmp(r, "mean"))
		return bad(g, n, "reduction must be \"none\", \"sum\" or \"mean\"");
	n->out[0]->dt = n->in[0]->dt;
	n->out[0]->shape = strcmp(r, "none") ? ir_shape0() : *t;
	n->out[1]->dt = n->in[0]->dt;
	n->out[1]->shape = ir_shape0();
	return 0;
}
