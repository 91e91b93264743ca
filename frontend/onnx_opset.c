/*
 * onnx_opset.c — models older than opset 11, one operator at a time.
 *
 * dlcc implements each operator as the ONNX spec defines it from opset 11 on (with the opset-
 * dependent details the importers handle: Softmax's flattening before 13, axes as attributes
 * before 13/18, ...). An older model is read only if every node's operator meant the same at the
 * model's opset: the table gives, per operator, the opset from which its definition is the one
 * dlcc implements, read from the ONNX operator changelog (Add/Sub/Mul/Div: numpy broadcasting at
 * 7; Reshape: shape as an input at 5; Cast: `to` as an integer at 6; Concat: `axis` required at 4;
 * Slice: starts/ends as inputs at 10). An operator missing from the table is refused below
 * opset 11 (operators the frontend does not know are left to the importer's "unsupported
 * operator"), so a newly added operator is safe until its row is written. Binary ops of opset 6 are
 * accepted when they use no `axis` (legacy broadcasting without it aligns trailing dims, a case
 * of numpy's rule).
 */
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

static int is_binary(const char *op)
{
	return !strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div");
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
	if (c->opset < 7 && is_binary(op) && onnx_attr(n, "axis"))
		return onnx_fail(c, "node '%s' (%s): opset %d broadcasting along an axis is not supported "
				 "(re-export with e.g. opset_version=17)", lbl, op, c->opset);
	return 0;
}
