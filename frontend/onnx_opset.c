/*
 * onnx_opset.c — models older than opset 11, one operator at a time.
 *
 * dlcc implements each operator as the ONNX spec defines it from opset 11 on (with the opset-
 * dependent details the importers handle: Softmax's flattening before 13, axes as attributes
 * before 13/18, Pad's and Clip's attributes before 11, ...). An older model is read only if
 * every node's operator meant the same at the model's opset: the table gives, per operator, the
 * opset from which its definition is the one dlcc implements, read from the ONNX operator
 * changelog (Add/Sub/Mul/Div: numpy broadcasting at 7; Reshape: shape as an input at 5; Cast:
 * `to` as an integer at 6; Concat: `axis` required at 4; Slice: starts/ends as inputs at 10;
 * And/Or/Xor: numpy broadcasting at 7; Tile: repeats as an input at 6; Sum/Mean: same shapes at
 * 6, a case of broadcasting; Expand, ConstantOfShape, Scatter: from their first version; the
 * `consumed_inputs` of opset 1 is gone at 6). An operator missing from the table is refused
 * below opset 11 (operators the frontend does not know are left to the importer's "unsupported
 * operator"), so a newly added operator is safe until its row is written.
 *
 * Some rows hold only with a condition checked here: before 11, auto_pad SAME_UPPER/SAME_LOWER
 * of Conv, ConvTranspose and AveragePool meant other pads (refused; NOTSET and VALID are the
 * same); before 9, BatchNormalization's `spatial` must be 1 (the per-channel statistics of 9);
 * binary ops of opset 6 with `axis` use the legacy broadcast (B's shape lines up with A's from
 * `axis`), which onnx_legacy_importer translates into numpy broadcasting by a Reshape of B with
 * trailing 1s; PRelu of opset 6 applies a 1-D slope of C values per channel (dim 1), also made
 * numpy broadcasting by a Reshape to [C, 1, ..].
 */
#include <stdio.h>
#include <string.h>

#include "frontend/onnx_imp.h"

#define OPSET_FULL 11 /* from here on every supported operator is read */

static const struct {
	const char *op;
	int since;
} since_table[] = {
	{"Add", 6}, {"Sub", 6}, {"Mul", 6}, {"Div", 6}, /* 6: with the axis check below */
	{"Gemm", 6}, {"MatMul", 1},
	{"Relu", 1}, {"LeakyRelu", 1}, {"Sigmoid", 1}, {"Tanh", 1}, {"Exp", 1}, {"Log", 1},
	{"Sqrt", 1}, {"Neg", 1}, {"Identity", 1}, {"Softmax", 1}, {"LogSoftmax", 1},
	{"Reshape", 5}, {"Flatten", 1}, {"Transpose", 1}, {"ReduceSum", 1}, {"ReduceMean", 1},
	{"Squeeze", 1}, {"Unsqueeze", 1}, {"Cast", 6}, {"Constant", 1}, {"Shape", 1},
	{"Gather", 1}, {"Concat", 4}, {"Slice", 10},
	/* reductions and dropout (onnx_ops_reduce.c); Dropout's is_test went at 7 */
	{"ReduceMax", 1}, {"ReduceMin", 1}, {"ReduceProd", 1}, {"ArgMax", 1}, {"Dropout", 7},
	/* convolution family, normalization, activations (conditions below) */
	{"Conv", 1}, {"ConvTranspose", 1}, {"MaxPool", 1}, {"AveragePool", 1}, {"GlobalAveragePool", 1},
	{"GlobalMaxPool", 1}, {"Pad", 2}, {"BatchNormalization", 6}, {"InstanceNormalization", 6},
	{"PRelu", 6}, {"Elu", 6}, {"Selu", 6}, {"HardSigmoid", 6}, {"Softplus", 1}, {"Clip", 6},
	{"Split", 2}, {"Expand", 8}, {"ConstantOfShape", 9}, {"And", 7}, {"Or", 7}, {"Xor", 7}, {"Not", 1},
	/* elementwise math, indexing, compositions */
	{"Abs", 6}, {"Ceil", 6}, {"Floor", 6}, {"Cos", 7}, {"Sin", 7}, {"Sign", 9}, {"Sum", 6}, {"Mean", 6},
	{"ArgMin", 1}, {"ReduceL1", 1}, {"ReduceL2", 1}, {"ReduceSumSquare", 1}, {"ReduceLogSum", 1},
	{"ReduceLogSumExp", 1}, {"Tile", 6}, {"Scatter", 9}, {"Size", 1},
};

static int since_of(const char *op)
{
	for (size_t i = 0; i < sizeof since_table / sizeof *since_table; i++)
		if (!strcmp(since_table[i].op, op))
			return since_table[i].since;
	return OPSET_FULL;
}

static int is_supported(const char *op)
{
	const char *s = onnx_supported_ops();
	size_t n = strlen(op);
	for (const char *p = strstr(s, op); p; p = strstr(p + 1, op))
		if ((p == s || p[-1] == ' ') && (p[n] == ',' || p[n] == 0))
			return 1;
	return 0;
}

static int attr_is(const Onnx__NodeProto *n, const char *name, const char *v)
{
	const Onnx__AttributeProto *a = onnx_attr(n, name);
	return a && a->s.len == strlen(v) && !memcmp(a->s.data, v, a->s.len);
}

/* the conditions under which an old row holds (see the file head) */
static int condition(OnnxCtx *c, const Onnx__NodeProto *n, const char *lbl)
{
	const char *op = n->op_type;
	const Onnx__AttributeProto *sp = onnx_attr(n, "spatial");
	if ((!strcmp(op, "Conv") || !strcmp(op, "ConvTranspose") || !strcmp(op, "AveragePool")) &&
	    (attr_is(n, "auto_pad", "SAME_UPPER") || attr_is(n, "auto_pad", "SAME_LOWER")))
		return onnx_fail(c, "node '%s' (%s): auto_pad SAME_* of opset %d is not supported (its pads "
				 "differ from opset 11's; re-export with e.g. opset_version=17)", lbl, op, c->opset);
	if (!strcmp(op, "BatchNormalization") && c->opset < 9 && sp && sp->i != 1)
		return onnx_fail(c, "node '%s' (%s): spatial=%lld (per-activation statistics of opset %d) is not "
				 "supported", lbl, op, (long long)sp->i, c->opset);
	return 0;
}

int onnx_opset_check(OnnxCtx *c, const Onnx__NodeProto *n)
{
	if (c->opset >= OPSET_FULL || !n->op_type || (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx")))
		return 0;
	const char *op = n->op_type, *lbl = onnx_node_label(c, n);
	int since = since_of(op);
	if (since == OPSET_FULL && !is_supported(op))
		return 0; /* the importer says "unsupported operator" */
	if (c->opset < since)
		return onnx_fail(c, "node '%s' (%s): opset %d is too old for this operator (dlcc reads it from "
				 "opset %d; re-export with e.g. opset_version=17)", lbl, op, c->opset, since);
	return condition(c, n, lbl);
}

/* ---- legacy forms translated into numpy broadcasting ---- */

static int is_binary(const char *op)
{
	return !strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div");
}

static Value *reshape(NodeCx *x, Value *v, Shape s)
{
	const char *lbl = onnx_node_label(x->c, x->n);
	char nm[300];
	snprintf(nm, sizeof nm, "%s/legacy", lbl);
	Node *nd = ir_begin(x->c->g, OP_RESHAPE, ir_strdup(x->c->g, nm), 1, &v);
	ir_set_ints(x->c->g, nd, "shape", s.rank, s.d);
	if (ir_finish(x->c->g, nd) < 0) {
		onnx_fail(x->c, "%s", x->c->g->err);
		return NULL;
	}
	return nd->out[0];
}

/* op(a, b) with b first reshaped to s */
static int emit_with(NodeCx *x, Op op, Value *a, Value *b, Shape s)
{
	Value *br = reshape(x, b, s);
	if (!br)
		return -1;
	Node *nd = ir_begin(x->c->g, op, onnx_node_label(x->c, x->n), 2, (Value *[]){a, br});
	if (ir_finish(x->c->g, nd) < 0)
		return onnx_fail(x->c, "%s", x->c->g->err);
	return onnx_bind(x, 0, nd->out[0]) ? 0 : -1;
}

static int inputs2(NodeCx *x, Value **a, Value **b)
{
	if (x->nin < 2 || !x->in[0] || !x->in[1])
		return onnx_fail(x->c, "%s: needs two inputs", x->who);
	*a = onnx_value(x->c, x->in[0], x->who);
	*b = *a ? onnx_value(x->c, x->in[1], x->who) : NULL;
	return *b ? 0 : -1;
}

/* opset 6 Add/Sub/Mul/Div with `axis`: B's dims line up with A's from axis (1s broadcast) */
static int imp_legacy_binary(NodeCx *x)
{
	Value *a, *b;
	int64_t axis;
	if (inputs2(x, &a, &b) < 0 || onnx_attr_int(x, "axis", 0, &axis) < 0)
		return -1;
	int ra = a->shape.rank, rb = b->shape.rank;
	if (axis < 0 || axis + rb > ra)
		return onnx_fail(x->c, "%s: legacy broadcast of rank %d at axis %lld does not fit rank %d", x->who, rb,
				 (long long)axis, ra);
	Shape s = b->shape;
	for (int i = 0; i < rb; i++)
		if (s.d[i] != 1 && s.d[i] != a->shape.d[axis + i])
			return onnx_fail(x->c, "%s: legacy broadcast: dim %d of B does not match A at axis %lld", x->who, i,
					 (long long)axis);
	while (s.rank < ra - axis)
		s.d[s.rank++] = 1;
	return emit_with(x, (Op)ir_op_lookup(x->n->op_type), a, b, s);
}

/* opset 6 PRelu with a 1-D slope of C values: one slope per channel */
static int imp_legacy_prelu(NodeCx *x)
{
	Value *v, *sl;
	if (inputs2(x, &v, &sl) < 0)
		return -1;
	Shape s = ir_shape(1, (int64_t[]){ir_numel(&sl->shape)});
	for (int i = 2; i < v->shape.rank; i++)
		s.d[s.rank++] = 1;
	return emit_with(x, OP_PRELU, v, sl, s);
}

int (*onnx_legacy_importer(OnnxCtx *c, const Onnx__NodeProto *n))(NodeCx *x)
{
	if (c->opset >= 7 || !n->op_type || (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx")))
		return NULL;
	if (is_binary(n->op_type) && onnx_attr(n, "axis"))
		return imp_legacy_binary;
	if (!strcmp(n->op_type, "PRelu") && n->n_input == 2 && n->input[1][0]) {
		OTensor *t = onnx_lookup(c, n->input[1]);
		if (t && t->shape.rank == 1 && t->shape.d[0] > 1)
			return imp_legacy_prelu;
	}
	return NULL;
}
