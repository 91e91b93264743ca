/*
 * onnx_ops_index.c — importers of GatherElements, ScatterElements (and its opset 9–10 name
 * Scatter), CumSum and Tile.
 *
 * GatherElements, ScatterElements and CumSum map onto their IR ops (ops.def "element indexing
 * and scans") with a non-negative axis; ScatterElements' reduction is "none" or "add" (mul, max
 * and min are refused), CumSum's axis must be a compile-time scalar. Tile is an exact
 * composition: x [d0, d1, ..] becomes Reshape [1, d0, 1, d1, ..] (a 1 only before the repeated
 * axes) -> Expand [r0, d0, r1, d1, ..] -> Reshape [r0·d0, r1·d1, ..], so the row-major order of
 * the result is Tile's and its gradient (a sum over the copies) comes from Expand's rule. The
 * repeats must be a constant list of positive counts.
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

static int bind(NodeCx *x, Value *v) { return v && onnx_bind(x, 0, v) ? 0 : -1; }

/* ---- GatherElements, ScatterElements ---- */

static int imp_gather_elements(NodeCx *x)
{
	int64_t axis;
	Value *d = onnx_input(x, 0), *ix = d ? onnx_input(x, 1) : NULL;
	if (!ix || onnx_attr_int(x, "axis", 0, &axis) < 0 || onnx_axis(x, axis, d->shape.rank, &axis) < 0)
		return -1;
	Node *nd = begin(x, OP_GATHER_ELEMENTS, 2, (Value *[]){d, ix}, NULL);
	ir_set_i(x->c->g, nd, "axis", axis);
	return bind(x, onnx_finish(x, nd));
}

static int reduction(NodeCx *x, char *buf, size_t len)
{
	const Onnx__AttributeProto *a = onnx_attr(x->n, "reduction");
	snprintf(buf, len, "none");
	if (!a)
		return 0;
	if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
		return onnx_fail(x->c, "%s: attribute reduction must be a string", x->who);
	snprintf(buf, len, "%.*s", (int)a->s.len, (const char *)a->s.data);
	if (strcmp(buf, "none") && strcmp(buf, "add"))
		return onnx_fail(x->c, "%s: reduction '%s' is not supported (only none and add)", x->who, buf);
	return 0;
}

static int imp_scatter_elements(NodeCx *x)
{
	int64_t axis;
	char red[16];
	Value *d = onnx_input(x, 0), *ix = d ? onnx_input(x, 1) : NULL, *u = ix ? onnx_input(x, 2) : NULL;
	if (!u || onnx_attr_int(x, "axis", 0, &axis) < 0 || onnx_axis(x, axis, d->shape.rank, &axis) < 0 ||
	    reduction(x, red, sizeof red) < 0)
		return -1;
	Node *nd = begin(x, OP_SCATTER_ELEMENTS, 3, (Value *[]){d, ix, u}, NULL);
	ir_set_i(x->c->g, nd, "axis", axis);
	ir_set_s(x->c->g, nd, "reduction", red);
	return bind(x, onnx_finish(x, nd));
}

/* ---- CumSum ---- */

static int flag(NodeCx *x, const char *name, int64_t *v)
{
	if (onnx_attr_int(x, name, 0, v) < 0)
		return -1;
	if (*v != 0 && *v != 1)
		return onnx_fail(x->c, "%s: attribute %s=%lld is not supported (must be 0 or 1)", x->who, name,
				 (long long)*v);
	return 0;
}

static int imp_cum_sum(NodeCx *x)
{
	int64_t *ax, axis, excl, rev;
	int n;
	Value *v = onnx_input(x, 0);
	if (!v || x->nin < 2 || !x->in[1])
		return v ? onnx_fail(x->c, "%s: the axis input is missing", x->who) : -1;
	if (onnx_const_ints(x->c, x->in[1], x->who, "the axis", &ax, &n) < 0)
		return -1;
	if (n != 1)
		return onnx_fail(x->c, "%s: the axis must hold one value", x->who);
	if (onnx_axis(x, ax[0], v->shape.rank, &axis) < 0 || flag(x, "exclusive", &excl) < 0 ||
	    flag(x, "reverse", &rev) < 0)
		return -1;
	Node *nd = begin(x, OP_CUM_SUM, 1, &v, NULL);
	ir_set_i(x->c->g, nd, "axis", axis);
	ir_set_i(x->c->g, nd, "exclusive", excl);
	ir_set_i(x->c->g, nd, "reverse", rev);
	return bind(x, onnx_finish(x, nd));
}

/* ---- Tile ---- */

static Value *reshape(NodeCx *x, Value *v, int rank, const int64_t *d, const char *suffix)
{
	Node *nd = begin(x, OP_RESHAPE, 1, &v, suffix);
	ir_set_ints(x->c->g, nd, "shape", rank, d);
	return onnx_finish(x, nd);
}

/* the split shape [1, d] / target [r, d] per repeated axis, [d] elsewhere, and the result */
static int tile_shapes(NodeCx *x, const Shape *s, const int64_t *r, int64_t *split, int64_t *big, int *nsplit,
		       int64_t *out)
{
	int k = 0;
	for (int i = 0; i < s->rank; i++) {
		if (r[i] < 1)
			return onnx_fail(x->c, "%s: repeat count %lld is not supported (must be >= 1)", x->who,
					 (long long)r[i]);
		if (k + (r[i] > 1) >= IR_MAX_RANK)
			return onnx_fail(x->c, "%s: too many repeated axes for rank %d (at most %d dims with the "
					 "copies split out)", x->who, s->rank, IR_MAX_RANK);
		if (r[i] > 1)
			split[k] = 1, big[k++] = r[i];
		split[k] = big[k] = s->d[i];
		k++;
		out[i] = r[i] * s->d[i]; /* a batch extent -k stays a multiple of N */
	}
	*nsplit = k;
	return 0;
}

static int imp_tile(NodeCx *x)
{
	int64_t *r, split[IR_MAX_RANK], big[IR_MAX_RANK], out[IR_MAX_RANK];
	int n, k = 0;
	Value *v = onnx_input(x, 0);
	if (!v || x->nin < 2 || !x->in[1])
		return v ? onnx_fail(x->c, "%s: the repeats input is missing", x->who) : -1;
	if (onnx_const_ints(x->c, x->in[1], x->who, "the repeats", &r, &n) < 0)
		return -1;
	if (n != v->shape.rank)
		return onnx_fail(x->c, "%s: %d repeats for rank %d", x->who, n, v->shape.rank);
	if (tile_shapes(x, &v->shape, r, split, big, &k, out) < 0)
		return -1;
	if (k == v->shape.rank)
		return bind(x, ir_op1(x->c->g, OP_IDENTITY, v));
	Value *s = reshape(x, v, k, split, "/split");
	if (!s)
		return -1;
	Node *e = begin(x, OP_EXPAND, 1, &s, "/expand");
	ir_set_ints(x->c->g, e, "shape", k, big);
	Value *ev = onnx_finish(x, e);
	return ev ? bind(x, reshape(x, ev, v->shape.rank, out, NULL)) : -1;
}

static const struct {
	const char *op;
	int (*fn)(NodeCx *x);
} index_importers[] = {
	{"GatherElements", imp_gather_elements}, {"ScatterElements", imp_scatter_elements},
	{"Scatter", imp_scatter_elements},       {"CumSum", imp_cum_sum},
	{"Tile", imp_tile},
};
#define NINDEX ((int)(sizeof index_importers / sizeof *index_importers))

int (*onnx_index_importer(const char *op_type))(NodeCx *x)
{
	for (int i = 0; i < NINDEX; i++)
		if (!strcmp(index_importers[i].op, op_type))
			return index_importers[i].fn;
	return NULL;
}

const char *onnx_index_op_name(int i) { return i < NINDEX ? index_importers[i].op : NULL; }
