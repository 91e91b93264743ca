/*
 * ops.c — the op table built from ops.def: names, arity, shape rule, kernel class, precision.
 * Passes read these columns instead of comparing op names.
 */
#include <string.h>

#include "ir/ir.h"

const OpInfo ir_ops[OP_COUNT] = {
#define X(e, nm, onnx, mi, ma, no, shape, grad, kc, body, prec) \
	[OP_##e] = {nm, onnx, mi, ma, no, shape_##shape, kc, body, prec},
#include "ir/ops.def"
#undef X
};

int ir_op_lookup(const char *name)
{
	for (int i = 0; i < OP_COUNT; i++)
		if (strcmp(ir_ops[i].name, name) == 0)
			return i;
	return -1;
}
