/*
 * onnx_ops_reduce.c — importers of ReduceMax, ReduceMin, ReduceProd, ArgMax, Dropout,
 * NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (Einsum: onnx_ops_einsum.c).
 *
 * Each writes IR normal form (ir/shape_reduce.c): Reduce* with an explicit sorted axes list
 * (from the attribute before opset 18, else the optional constant input) and keepdims, an
 * empty axes list with noop_with_empty_axes an Identity; ArgMax with a non-negative axis.
 * Dropout takes its ratio from the attribute (before opset 12) or a constant input, and a seed
 * from the `seed` attribute or else from the node's position, so two Dropouts of one model
 * draw different masks; a `training_mode` that is not the constant false is refused (dlcc
 * applies dropout in the training step and never in inference, whatever the file says).
 * Before opset 10 the mask output has the input's float type (a Cast of the bool mask).
 * The losses keep ONNX's layout (classes at axis 1): NegativeLogLikelihoodLoss is one
 * NllLoss; SoftmaxCrossEntropyLoss is LogSoftmax over axis 1 (its optional log_prob output)
 * followed by NllLoss.
 */
#include <string.h>

#include "frontend/onnx_imp.h"

static Node *begin(NodeCx *x, Op op, int nin, Value **in, const char *suffix)
{
	const char *lbl = onnx_node_label(x->c, x->n);
	char buf[300];
	if (suffix)
		snprintf(buf, sizeof buf, "%s%s", lbl, suffix);
	return ir_begin(x->c->g, op, suffix ? ir_strdup(x->c->g, buf) : lbl, nin, in);
}

static Node *finish(NodeCx *x, Node *nd)
{
	if (ir_finish(x->c->g, nd) < 0) {
		onnx_fail(x->c, "%s", x->c->g->err);
		return NULL;
	}
	return nd;
}

static int bind(NodeCx *x, int i, Value *v) { return v && onnx_bind(x, i, v) ? 0 : -1; }

static int bad_value(NodeCx *x, const char *attr, long long v, const char *why)
{
	return onnx_fail(x->c, "%s: attribute %s=%lld is not supported (%s)", x->who, attr, v, why);
}

/* a string attribute into buf ("" when absent) */
static int attr_str(NodeCx *x, const char *name, const char *dflt, char *buf, size_t len)
{
	const Onnx__AttributeProto *a = onnx_attr(x->n, name);
	snprintf(buf, len, "%s", dflt);
	if (!a)
		return 0;
	if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
		return onnx_fail(x->c, "%s: attribute %s must be a string", x->who, name);
	snprintf(buf, len, "%.*s", (int)a->s.len, (const char *)a->s.data);
	return 0;
}

/* ---- ReduceMax / ReduceMin / ReduceProd ---- */

static Op reduce_op(const char *t)
{
	return !strcmp(t, "ReduceMax") ? OP_REDUCE_MAX : !strcmp(t, "ReduceMin") ? OP_REDUCE_MIN : OP_REDUCE_PROD;
}

static int imp_reduce(NodeCx *x)
{
	int64_t *ax, keep, noop, axes[IR_MAX_RANK];
	int cnt, nax = 0, mask = 0;
	Value *v = onnx_input(x, 0);
	if (!v || onnx_axes(x, 18, &ax, &cnt) < 0 || onnx_attr_int(x, "keepdims", 1, &keep) < 0 ||
	    onnx_attr_int(x, "noop_with_empty_axes", 0, &noop) < 0)
		return -1;
	if (keep != 0 && keep != 1)
		return bad_value(x, "keepdims", keep, "must be 0 or 1");
	if (cnt <= 0 && noop)
		return bind(x, 0, ir_op1(x->c->g, OP_IDENTITY, v));
	for (int i = 0; i < cnt; i++) {
		int64_t a;
		if (onnx_axis(x, ax[i], v->shape.rank, &a) < 0)
			return -1;
		mask |= 1 << a;
	}
	for (int i = 0; i < v->shape.rank; i++)
		if (cnt <= 0 || (mask & (1 << i)))
			axes[nax++] = i;
	Node *nd = begin(x, reduce_op(x->n->op_type), 1, &v, NULL);
	ir_set_ints(x->c->g, nd, "axes", nax, axes);
	ir_set_i(x->c->g, nd, "keepdims", keep);
	return (nd = finish(x, nd)) ? bind(x, 0, nd->out[0]) : -1;
}

static int imp_arg_max(NodeCx *x)
{
	int64_t axis, keep, last;
	Value *v = onnx_input(x, 0);
	if (!v || onnx_attr_int(x, "axis", 0, &axis) < 0 || onnx_attr_int(x, "keepdims", 1, &keep) < 0 ||
	    onnx_attr_int(x, "select_last_index", 0, &last) < 0 || onnx_axis(x, axis, v->shape.rank, &axis) < 0)
		return -1;
	if (keep != 0 && keep != 1)
		return bad_value(x, "keepdims", keep, "must be 0 or 1");
	Node *nd = begin(x, OP_ARG_MAX, 1, &v, NULL);
	ir_set_i(x->c->g, nd, "axis", axis);
	ir_set_i(x->c->g, nd, "keepdims", keep);
	ir_set_i(x->c->g, nd, "select_last_index", last != 0);
	return (nd = finish(x, nd)) ? bind(x, 0, nd->out[0]) : -1;
}

/* ---- Dropout ---- */

static int dropout_ratio(NodeCx *x, double *ratio)
{
	if (x->c->opset < 12)
		return onnx_attr_float(x, "ratio", 0.5, ratio);
	*ratio = 0.5;
	if (x->nin < 2 || !x->in[1])
		return 0;
	OTensor *t = x->in[1];
	if (!t->host || !t->data || ir_numel(&t->shape) != 1)
		return onnx_fail(x->c, "%s: the ratio '%s' must be a compile-time constant scalar", x->who, t->name);
	*ratio = t->dt == DT_F64 ? *(const double *)t->data : *(const float *)t->data;
	return 0;
}

static int training_mode_off(NodeCx *x)
{
	OTensor *t = x->nin > 2 ? x->in[2] : NULL;
	if (!t)
		return 0;
	if (t->host && t->iv && ir_numel(&t->shape) == 1 && t->iv[0] == 0)
		return 0;
	return onnx_fail(x->c, "%s: training_mode must be absent or the constant false (dlcc applies "
			 "dropout in the training step and never in inference)", x->who);
}

static int imp_dropout(NodeCx *x)
{
	double ratio;
	int64_t seed;
	Value *v = onnx_input(x, 0);
	if (!v || dropout_ratio(x, &ratio) < 0 || training_mode_off(x) < 0 ||
	    onnx_attr_int(x, "seed", 0x5EED0000 + x->c->node_index, &seed) < 0)
		return -1;
	if (!(ratio >= 0 && ratio < 1))
		return onnx_fail(x->c, "%s: ratio %g is outside [0, 1)", x->who, ratio);
	Node *nd = begin(x, OP_DROPOUT, 1, &v, NULL);
	ir_set_f(x->c->g, nd, "ratio", ratio);
	ir_set_i(x->c->g, nd, "seed", seed);
	if (!(nd = finish(x, nd)) || bind(x, 0, nd->out[0]) < 0)
		return -1;
	if (x->n->n_output < 2 || !x->n->output[1][0])
		return 0;
	Value *mask = nd->out[1];
	if (x->c->opset < 10) {
		Node *c = begin(x, OP_CAST, 1, &mask, "/mask");
		ir_set_s(x->c->g, c, "to", ir_dt_name(v->dt));
		mask = (c = finish(x, c)) ? c->out[0] : NULL;
	}
	return bind(x, 1, mask);
}

/* ---- NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss ---- */

static Node *nll(NodeCx *x, Value *logp, const char *suffix)
{
	char red[16];
	Value *in[3] = {logp, onnx_input(x, 1), x->nin > 2 && x->in[2] ? onnx_input(x, 2) : NULL};
	if (!in[1] || (x->nin > 2 && x->in[2] && !in[2]) || attr_str(x, "reduction", "mean", red, sizeof red) < 0)
		return NULL;
	if (strcmp(red, "none") && strcmp(red, "sum") && strcmp(red, "mean")) {
		onnx_fail(x->c, "%s: reduction '%s' is not one of none, sum, mean", x->who, red);
		return NULL;
	}
	if (logp->shape.rank < 2) {
		onnx_fail(x->c, "%s: the input must be [N, C, ...] (rank >= 2)", x->who);
		return NULL;
	}
	Node *nd = begin(x, OP_NLL_LOSS, in[2] ? 3 : 2, in, suffix);
	ir_set_s(x->c->g, nd, "reduction", red);
	if (onnx_attr(x->n, "ignore_index")) {
		int64_t ii;
		if (onnx_attr_int(x, "ignore_index", 0, &ii) < 0)
			return NULL;
		ir_set_i(x->c->g, nd, "ignore_index", ii);
	}
	return finish(x, nd);
}

static int imp_nll_loss(NodeCx *x)
{
	Value *v = onnx_input(x, 0);
	Node *nd = v ? nll(x, v, NULL) : NULL;
	return nd ? bind(x, 0, nd->out[0]) : -1;
}

static int imp_sce_loss(NodeCx *x)
{
	Value *v = onnx_input(x, 0);
	if (!v)
		return -1;
	if (v->shape.rank < 2)
		return onnx_fail(x->c, "%s: the scores must be [N, C, ...] (rank >= 2)", x->who);
	Node *ls = begin(x, OP_LOG_SOFTMAX, 1, &v, "/log_softmax");
	ir_set_i(x->c->g, ls, "axis", 1);
	Node *nd = (ls = finish(x, ls)) ? nll(x, ls->out[0], "/nll") : NULL;
	if (!nd || bind(x, 0, nd->out[0]) < 0)
		return -1;
	return x->n->n_output > 1 && x->n->output[1][0] ? bind(x, 1, ls->out[0]) : 0;
}

static const struct {
	const char *op;
	int (*fn)(NodeCx *x);
} reduce_importers[] = {
	{"ReduceMax", imp_reduce}, {"ReduceMin", imp_reduce}, {"ReduceProd", imp_reduce},
	{"ArgMax", imp_arg_max}, {"Dropout", imp_dropout}, {"NegativeLogLikelihoodLoss", imp_nll_loss},
	{"SoftmaxCrossEntropyLoss", imp_sce_loss}, {"Einsum", onnx_import_einsum},
};
#define NREDUCE ((int)(sizeof reduce_importers / sizeof *reduce_importers))

int (*onnx_reduce_importer(const char *op_type))(NodeCx *x)
{
	for (int i = 0; i < NREDUCE; i++)
		if (!strcmp(reduce_importers[i].op, op_type))
			return reduce_importers[i].fn;
	return NULL;
}

const char *onnx_reduce_op_name(int i) { return i < NREDUCE ? reduce_importers[i].op : NULL; }
