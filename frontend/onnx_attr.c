/*
 * onnx_attr.c — reading ONNX node attributes with their types checked, and axis normalisation.
 *
 * Every getter returns the default when the attribute is absent and fails with one line naming
 * the node, its op, the attribute and the type it has when the type is wrong (e.g. LeakyRelu
 * with an integer alpha). Checking the *values* (transA in {0,1}, ...) is left to the op
 * importers in onnx_ops.c, which know what each op accepts.
 */
#include <string.h>

#include "frontend/onnx_imp.h"

static const char *attr_type_name(int t)
{
	switch (t) {
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return "a float";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return "an integer";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: return "a string";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: return "a tensor";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: return "a list of floats";
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: return "a list of integers";
	default: return "an unsupported kind";
	}
}

const Onnx__AttributeProto *onnx_attr(const Onnx__NodeProto *n, const char *name)
{
	for (size_t i = 0; i < n->n_attribute; i++)
		if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
			return n->attribute[i];
	return NULL;
}

static int wrong_type(NodeCx *x, const Onnx__AttributeProto *a, int want)
{
	return onnx_fail(x->c, "%s: attribute %s must be %s, not %s", x->who, a->name,
			 attr_type_name(want), attr_type_name(a->type));
}

int onnx_attr_int(NodeCx *x, const char *name, int64_t dflt, int64_t *out)
{
	const Onnx__AttributeProto *a = onnx_attr(x->n, name);
	*out = dflt;
	if (!a)
		return 0;
	if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT)
		return wrong_type(x, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	*out = a->i;
	return 0;
}

int onnx_attr_float(NodeCx *x, const char *name, double dflt, double *out)
{
	const Onnx__AttributeProto *a = onnx_attr(x->n, name);
	*out = dflt;
	if (!a)
		return 0;
	if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
		return wrong_type(x, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
	*out = a->f;
	return 0;
}

int onnx_attr_ints(NodeCx *x, const char *name, int64_t **v, int *cnt)
{
	const Onnx__AttributeProto *a = onnx_attr(x->n, name);
	*v = NULL;
	*cnt = -1;
	if (!a)
		return 0;
	if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
		return wrong_type(x, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
	*v = a->ints;
	*cnt = (int)a->n_ints;
	return 0;
}

int onnx_axis(NodeCx *x, int64_t axis, int rank, int64_t *out)
{
	if (axis < -rank || axis >= rank)
		return onnx_fail(x->c, "%s: axis %lld is out of range for rank %d", x->who, (long long)axis, rank);
	*out = axis < 0 ? axis + rank : axis;
	return 0;
}

int onnx_axes(NodeCx *x, int input_from, int64_t **v, int *cnt)
{
	if (x->c->opset < input_from)
		return onnx_attr_ints(x, "axes", v, cnt);
	*v = NULL;
	*cnt = -1;
	if (x->nin < 2 || !x->in[1])
		return 0;
	return onnx_const_ints(x->c, x->in[1], x->who, "axes", v, cnt);
}
