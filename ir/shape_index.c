/*
 * shape_index.c — shape rules of the element-indexing ops and the scan (ops.def "element
 * indexing and scans" block): GatherElements, ScatterElements, CumSum.
 *
 * The index tensor has the data's rank; off the axis its extents are at most the data's (a
 * batch extent only against the same batch extent). The indexed axis must be constant: the
 * batch N is never indexed. Attributes are in IR normal form (frontend/onnx_ops_index.c): a
 * non-negative axis, reduction spelled out.
 */
#include <string.h>

#include "ir/ir.h"

static int bad(Graph *g, const Node *n, const char *what)
{
	return ir_error(g, "node '%s' (%s): %s", n->name ? n->name : "?", ir_ops[n->op].name, what);
}

static int axis_of(Graph *g, const Node *n, const Shape *x, int *axis)
{
	*axis = (int)ir_attr_i(n, "axis", 0);
	if (*axis < 0 || *axis >= x->rank)
		return bad(g, n, "axis out of range");
	if (x->d[*axis] < 0)
		return bad(g, n, "cannot index along the batch dimension");
	return 0;
}

/* idx fits inside x off the axis */
static int index_fits(Graph *g, const Node *n, const Shape *x, const Value *ix, int axis)
{
	if (ix->dt != DT_I64 && ix->dt != DT_I32)
		return bad(g, n, "indices must be int64 or int32");
	if (ix->shape.rank != x->rank)
		return bad(g, n, "indices must have the data's rank");
	for (int i = 0; i < x->rank; i++) {
		int64_t a = x->d[i], b = ix->shape.d[i];
		if (i != axis && (a < 0 || b < 0 ? a != b : b > a))
			return bad(g, n, "indices are larger than the data off the axis");
	}
	return 0;
}

int shape_gather_elements(Graph *g, Node *n)
{
	const Shape *x = &n->in[0]->shape;
	int axis;
	if (axis_of(g, n, x, &axis) < 0 || index_fits(g, n, x, n->in[1], axis) < 0)
		return -1;
	n->out[0]->dt = n->in[0]->dt;
	n->out[0]->shape = n->in[1]->shape;
	return 0;
}

int shape_scatter_elements(Graph *g, Node *n)
{
	const Shape *x = &n->in[0]->shape;
	const Attr *r = ir_attr(n, "reduction");
	int axis;
	if (axis_of(g, n, x, &axis) < 0 || index_fits(g, n, x, n->in[1], axis) < 0)
		return -1;
	if (r && (r->kind != A_STRING || (strcmp(r->s, "none") && strcmp(r->s, "add"))))
		return bad(g, n, "reduction must be \"none\" or \"add\"");
	if (n->in[2]->dt != n->in[0]->dt || !ir_shape_eq(&n->in[2]->shape, &n->in[1]->shape))
		return bad(g, n, "updates must have the indices' shape and the data's dtype");
	n->out[0]->dt = n->in[0]->dt;
	n->out[0]->shape = *x;
	return 0;
}

int shape_cum_sum(Graph *g, Node *n)
{
	const Shape *x = &n->in[0]->shape;
	int axis = (int)ir_attr_i(n, "axis", 0);
	if (axis < 0 || axis >= x->rank)
		return bad(g, n, "axis out of range");
	n->out[0]->dt = n->in[0]->dt;
	n->out[0]->shape = *x;
	return 0;
}
