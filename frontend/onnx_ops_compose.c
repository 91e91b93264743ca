/*
 * onnx_ops_compose.c — ONNX ops imported as exact compositions of IR ops, so that they get
 * the IR's shape rules, kernels and gradients for free:
 *
 *   Sum(x...)            a chain of Add (one input: Identity)
 *   Mean(x...)           the Sum divided by the input count
 *   ArgMin(x)            ArgMax(Neg(x)) with the same axis, keepdims, select_last_index
 *                        (negation is exact and turns the first/last minimum into the
 *                        first/last maximum)
 *   ReduceL1(x)          ReduceSum(Abs(x))
 *   ReduceL2(x)          Sqrt(ReduceSum(x * x))
 *   ReduceSumSquare(x)   ReduceSum(x * x)
 *   ReduceLogSum(x)      Log(ReduceSum(x))
 *   ReduceLogSumExp(x)   m + Log(ReduceSum(Exp(x - m))) with m = ReduceMax(x) (kept dims), the
 *                        overflow-free form; the gradients through m cancel to softmax
 *
 * The reductions take their axes from the attribute before opset 18 and from the constant
 * input 1 from then on, plus keepdims; noop_with_empty_axes with no axes is refused.
 */
#include <string.h>

#include "frontend/onnx_imp.h"

/* an attribute-free op on a and b (b may be absent), failing with the shape rule's message */
static Value *op(NodeCx *x, Op o, Value *a, Value *b)
{
	if (!a || (ir_ops[o].min_in == 2 && !b))
		return NULL;
	Value *in[2] = {a, b};
	return onnx_finish(x, ir_begin(x->c->g, o, NULL, b ? 2 : 1, in));
}

static int bind(NodeCx *x, Value *v) { return v && onnx_bind(x, 0, v) ? 0 : -1; }

/* ---- Sum, Mean ---- */

static Value *sum_inputs(NodeCx *x)
{
	Value *acc = onnx_input(x, 0);
	for (int i = 1; acc && i < x->nin; i++)
		acc = op(x, OP_ADD, acc, onnx_input(x, i));
	return acc && x->nin == 1 ? op(x, OP_IDENTITY, acc, NULL) : acc;
}

static int imp_sum(NodeCx *x) { return bind(x, sum_inputs(x)); }

static int imp_mean(NodeCx *x)
{
	Value *s = sum_inputs(x);
	if (!s)
		return -1;
	if (!ir_dt_is_float(s->dt))
		return onnx_fail(x->c, "%s: only float inputs are averaged", x->who);
	return bind(x, op(x, OP_DIV, s, ir_const_scalar(x->c->g, s->dt, (double)x->nin)));
}

/* ---- ArgMin ---- */

static int imp_arg_min(NodeCx *x)
{
	int64_t axis, keep, last;
	Value *v = onnx_input(x, 0);
	if (!v || onnx_attr_int(x, "axis", 0, &axis) < 0 || onnx_attr_int(x, "keepdims", 1, &keep) < 0 ||
	    onnx_attr_int(x, "select_last_index", 0, &last) < 0 || onnx_axis(x, axis, v->shape.rank, &axis) < 0)
		return -1;
	if (keep != 0 && keep != 1)
		return onnx_fail(x->c, "%s: attribute keepdims=%lld is not supported (must be 0 or 1)", x->who,
				 (long long)keep);
	Value *neg = op(x, OP_NEG, v, NULL);
	if (!neg)
		return -1;
	Node *nd = ir_begin(x->c->g, OP_ARG_MAX, onnx_node_label(x->c, x->n), 1, &neg);
	ir_set_i(x->c->g, nd, "axis", axis);
	ir_set_i(x->c->g, nd, "keepdims", keep);
	ir_set_i(x->c->g, nd, "select_last_index", last != 0);
	return bind(x, onnx_finish(x, nd));
}

/* ---- the Reduce* family ---- */

typedef struct {
	int64_t axes[IR_MAX_RANK], keep;
	int nax;
} Red;

static int read_red(NodeCx *x, const Value *v, Red *r)
{
	int64_t *ax, noop;
	int cnt;
	if (onnx_axes(x, 18, &ax, &cnt) < 0 || onnx_attr_int(x, "keepdims", 1, &r->keep) < 0 ||
	    onnx_attr_int(x, "noop_with_empty_axes", 0, &noop) < 0)
		return -1;
	if (r->keep != 0 && r->keep != 1)
		return onnx_fail(x->c, "%s: attribute keepdims=%lld is not supported (must be 0 or 1)", x->who,
				 (long long)r->keep);
	if (cnt <= 0 && noop)
		return onnx_fail(x->c, "%s: noop_with_empty_axes without axes is not supported", x->who);
	return onnx_reduce_axes(x, ax, cnt, v->shape.rank, r->axes, &r->nax);
}

static Value *reduce(NodeCx *x, Op o, Value *v, const Red *r, int64_t keep)
{
	if (!v)
		return NULL;
	Node *nd = ir_begin(x->c->g, o, NULL, 1, &v);
	ir_set_ints(x->c->g, nd, "axes", r->nax, r->axes);
	ir_set_i(x->c->g, nd, "keepdims", keep);
	return onnx_finish(x, nd);
}

static Value *log_sum_exp(NodeCx *x, Value *v, const Red *r)
{
	Value *m = reduce(x, OP_REDUCE_MAX, v, r, 1);
	Value *s = reduce(x, OP_REDUCE_SUM, op(x, OP_EXP, op(x, OP_SUB, v, m), NULL), r, r->keep);
	Value *mo = r->keep ? m : reduce(x, OP_REDUCE_MAX, v, r, 0);
	return op(x, OP_ADD, op(x, OP_LOG, s, NULL), mo);
}

static int imp_reduce(NodeCx *x)
{
	const char *t = x->n->op_type;
	Red r;
	Value *v = onnx_input(x, 0), *y;
	if (!v || read_red(x, v, &r) < 0)
		return -1;
	if (!strcmp(t, "ReduceL1"))
		y = reduce(x, OP_REDUCE_SUM, op(x, OP_ABS, v, NULL), &r, r.keep);
	else if (!strcmp(t, "ReduceL2"))
		y = op(x, OP_SQRT, reduce(x, OP_REDUCE_SUM, op(x, OP_MUL, v, v), &r, r.keep), NULL);
	else if (!strcmp(t, "ReduceSumSquare"))
		y = reduce(x, OP_REDUCE_SUM, op(x, OP_MUL, v, v), &r, r.keep);
	else if (!strcmp(t, "ReduceLogSum"))
		y = op(x, OP_LOG, reduce(x, OP_REDUCE_SUM, v, &r, r.keep), NULL);
	else
		y = log_sum_exp(x, v, &r);
	return bind(x, y);
}

static const struct {
	const char *op;
	int (*fn)(NodeCx *x);
} compose_importers[] = {
	{"Sum", imp_sum},           {"Mean", imp_mean},         {"ArgMin", imp_arg_min},
	{"ReduceL1", imp_reduce},   {"ReduceL2", imp_reduce},   {"ReduceSumSquare", imp_reduce},
	{"ReduceLogSum", imp_reduce}, {"ReduceLogSumExp", imp_reduce},
};
#define NCOMPOSE ((int)(sizeof compose_importers / sizeof *compose_importers))

int (*onnx_compose_importer(const char *op_type))(NodeCx *x)
{
	for (int i = 0; i < NCOMPOSE; i++)
		if (!strcmp(compose_importers[i].op, op_type))
			return compose_importers[i].fn;
	return NULL;
}

const char *onnx_compose_op_name(int i) { return i < NCOMPOSE ? compose_importers[i].op : NULL; }
