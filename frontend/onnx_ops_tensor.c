/*
 * onnx_ops_tensor.c — importers of the data-path plumbing ops: Gather, Slice, Split, Concat,
 * Expand, Cast, Trilu, Pow, Max, Min (the attribute-free Where, Equal, Less, Greater,
 * LessOrEqual, GreaterOrEqual, Not, And, Or, Reciprocal go through onnx_ops.c's generic
 * importer; ConstantOfShape and Range are evaluated in onnx_fold.c).
 *
 * Each writes IR normal form (ir/shape_tensor.c): non-negative axes; Slice with one (axis,
 * start, end, step) per sliced axis, clamped by the ONNX rules (a slice over the whole batch
 * axis is dropped, any other cut of N is an error); Split becomes one Slice per output; a
 * Concat of more than 8 inputs a chain; a variadic Max/Min a chain of binary ones; Expand's
 * target (a compile-time list, maybe holding k·N from a folded Shape) becomes IR dims; Trilu's
 * k (a constant input) an attribute. Every compile-time argument must be a host constant;
 * otherwise the message names the node and the argument.
 */
#include <limits.h>
#include <string.h>

#include "frontend/onnx_imp.h"

static Node *begin(NodeCx *x, Op op, int nin, Value **in, int part)
{
	const char *lbl = onnx_node_label(x->c, x->n);
	char buf[300];
	if (part >= 0)
		snprintf(buf, sizeof buf, "%s/%d", lbl, part);
	return ir_begin(x->c->g, op, part >= 0 ? ir_strdup(x->c->g, buf) : lbl, nin, in);
}

static int bind(NodeCx *x, int i, Value *v) { return v && onnx_bind(x, i, v) ? 0 : -1; }

/* a compile-time scalar or 1-element integer argument */
static int const_int(NodeCx *x, int i, const char *what, int64_t dflt, int64_t *out)
{
	int64_t *v;
	int n;
	*out = dflt;
	if (i >= x->nin || !x->in[i])
		return 0;
	if (onnx_const_ints(x->c, x->in[i], x->who, what, &v, &n) < 0)
		return -1;
	if (n != 1)
		return onnx_fail(x->c, "%s: %s must hold one value", x->who, what);
	*out = v[0];
	return 0;
}

/* ---- Gather ---- */

static int imp_gather(NodeCx *x)
{
	int64_t axis;
	Value *d = onnx_input(x, 0), *ix = d ? onnx_input(x, 1) : NULL;
	if (!ix || onnx_attr_int(x, "axis", 0, &axis) < 0 || onnx_axis(x, axis, d->shape.rank, &axis) < 0)
		return -1;
	Node *nd = begin(x, OP_GATHER, 2, (Value *[]){d, ix}, -1);
	ir_set_i(x->c->g, nd, "axis", axis);
	return bind(x, 0, onnx_finish(x, nd));
}

/* ---- Slice ---- */

typedef struct {
	int n;
	int64_t axes[IR_MAX_RANK], starts[IR_MAX_RANK], ends[IR_MAX_RANK], steps[IR_MAX_RANK];
} SliceSpec;

/* ONNX clamping of one axis of extent dim; 1 when the slice keeps the whole axis in order */
static int clamp_axis(int64_t dim, int64_t *start, int64_t *end, int64_t step)
{
	int64_t s = *start < 0 ? *start + dim : *start, e = *end < 0 ? *end + dim : *end;
	if (step > 0) {
		s = s < 0 ? 0 : s > dim ? dim : s;
		e = e < 0 ? 0 : e > dim ? dim : e;
	} else {
		s = s < 0 ? -1 : s > dim - 1 ? dim - 1 : s;
		e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
	}
	*start = s;
	*end = e;
	return step == 1 && s == 0 && e == dim;
}

/* a slice of the batch axis is allowed only when it keeps all of it */
static int batch_axis(NodeCx *x, const OTensor *st, const OTensor *en, int i, int64_t step)
{
	int64_t s = st->iv[i], e = en->iv[i];
	int esym = en->sym && en->sym[i];
	if (st->sym && st->sym[i])
		return onnx_fail(x->c, "%s: a start that depends on N is not supported", x->who);
	if (step == 1 && s == 0 && ((esym && e == 1) || (!esym && e >= INT_MAX)))
		return 0;
	return onnx_fail(x->c, "%s: slicing the batch dimension N is not supported (only all of it)", x->who);
}

static int slice_spec(NodeCx *x, const Shape *xs, SliceSpec *sp)
{
	OTensor *st = x->nin > 1 ? x->in[1] : NULL, *en = x->nin > 2 ? x->in[2] : NULL;
	int64_t *ax = NULL, *stp = NULL;
	int n = 0, na = -1, ns = -1;
	if (!st || !en || !st->host || !en->host || !st->iv || !en->iv || st->shape.rank != 1 ||
	    ir_numel(&st->shape) != ir_numel(&en->shape))
		return onnx_fail(x->c, "%s: starts and ends must be 1-D integer lists of one length known at "
				 "compile time", x->who);
	n = (int)ir_numel(&st->shape);
	if (x->nin > 3 && x->in[3] && onnx_const_ints(x->c, x->in[3], x->who, "axes", &ax, &na) < 0)
		return -1;
	if (x->nin > 4 && x->in[4] && onnx_const_ints(x->c, x->in[4], x->who, "steps", &stp, &ns) < 0)
		return -1;
	if ((na >= 0 && na != n) || (ns >= 0 && ns != n) || n > IR_MAX_RANK)
		return onnx_fail(x->c, "%s: starts, ends, axes and steps differ in length", x->who);
	sp->n = 0;
	for (int i = 0; i < n; i++) {
		int64_t a = ax ? ax[i] : i, step = stp ? stp[i] : 1, s = st->iv[i], e = en->iv[i];
		if (onnx_axis(x, a, xs->rank, &a) < 0)
			return -1;
		if (step == 0)
			return onnx_fail(x->c, "%s: step 0", x->who);
		if (xs->d[a] < 0) {
			if (batch_axis(x, st, en, i, step) < 0)
				return -1;
			continue;
		}
		if ((st->sym && st->sym[i]) || (en->sym && en->sym[i]))
			return onnx_fail(x->c, "%s: a start or end that depends on N is not supported", x->who);
		if (clamp_axis(xs->d[a], &s, &e, step))
			continue;
		sp->axes[sp->n] = a, sp->starts[sp->n] = s, sp->ends[sp->n] = e, sp->steps[sp->n++] = step;
	}
	return 0;
}

static Value *slice_node(NodeCx *x, Value *v, const SliceSpec *sp, int part)
{
	Graph *g = x->c->g;
	if (sp->n == 0)
		return onnx_finish(x, begin(x, OP_IDENTITY, 1, &v, part));
	Node *nd = begin(x, OP_SLICE, 1, &v, part);
	ir_set_ints(g, nd, "axes", sp->n, sp->axes);
	ir_set_ints(g, nd, "starts", sp->n, sp->starts);
	ir_set_ints(g, nd, "ends", sp->n, sp->ends);
	ir_set_ints(g, nd, "steps", sp->n, sp->steps);
	return onnx_finish(x, nd);
}

static int imp_slice(NodeCx *x)
{
	SliceSpec sp;
	Value *v = onnx_input(x, 0);
	if (!v || slice_spec(x, &v->shape, &sp) < 0)
		return -1;
	return bind(x, 0, slice_node(x, v, &sp, -1));
}

/* ---- Split: one Slice per output ---- */

static int split_sizes(NodeCx *x, int64_t dim, int nout, int64_t *size)
{
	int64_t *sz = NULL, num;
	int n = -1;
	if (x->c->opset < 13 && onnx_attr_ints(x, "split", &sz, &n) < 0)
		return -1;
	if (x->c->opset >= 13 && x->nin > 1 && x->in[1] &&
	    onnx_const_ints(x->c, x->in[1], x->who, "split", &sz, &n) < 0)
		return -1;
	if (n >= 0) {
		if (n != nout)
			return onnx_fail(x->c, "%s: %d split sizes for %d outputs", x->who, n, nout);
		memcpy(size, sz, n * sizeof *sz);
		return 0;
	}
	if (onnx_attr_int(x, "num_outputs", nout, &num) < 0)
		return -1;
	if (num != nout)
		return onnx_fail(x->c, "%s: num_outputs %lld but %d outputs", x->who, (long long)num, nout);
	int64_t chunk = (dim + nout - 1) / nout; /* the last one may be smaller (opset 18) */
	for (int i = 0; i < nout; i++)
		size[i] = i < nout - 1 ? chunk : dim - chunk * (nout - 1);
	return 0;
}

static int imp_split(NodeCx *x)
{
	int64_t axis, size[64], at = 0;
	int nout = (int)x->n->n_output;
	Value *v = onnx_input(x, 0);
	if (!v || onnx_attr_int(x, "axis", 0, &axis) < 0 || onnx_axis(x, axis, v->shape.rank, &axis) < 0)
		return -1;
	if (nout > 64 || v->shape.d[axis] < 0)
		return onnx_fail(x->c, "%s: cannot split the batch dimension or into more than 64 parts", x->who);
	if (split_sizes(x, v->shape.d[axis], nout, size) < 0)
		return -1;
	for (int i = 0; i < nout; i++) {
		SliceSpec sp = {1, {axis}, {at}, {at + size[i]}, {1}};
		if (size[i] < 0 || at + size[i] > v->shape.d[axis])
			return onnx_fail(x->c, "%s: split sizes exceed the axis", x->who);
		if (sp.starts[0] == 0 && size[i] == v->shape.d[axis])
			sp.n = 0;
		at += size[i];
		if (x->n->output[i][0] && bind(x, i, slice_node(x, v, &sp, i)) < 0)
			return -1;
	}
	return 0;
}

/* ---- Concat (chained by 8) ---- */

static int imp_concat(NodeCx *x)
{
	int64_t axis;
	Value *acc = NULL, *v[8];
	if (x->nin < 1 || !onnx_input(x, 0) || onnx_attr_int(x, "axis", 0, &axis) < 0 ||
	    onnx_axis(x, axis, x->in[0]->v->shape.rank, &axis) < 0)
		return x->nin < 1 ? onnx_fail(x->c, "%s: no inputs", x->who) : -1;
	for (int i = 0, part = 0; i < x->nin; part++) {
		int k = 0;
		if (acc)
			v[k++] = acc;
		for (; k < 8 && i < x->nin; i++)
			if (!(v[k++] = onnx_input(x, i)))
				return -1;
		Node *nd = begin(x, OP_CONCAT, k, v, x->nin > 8 ? part : -1);
		ir_set_i(x->c->g, nd, "axis", axis);
		if (!(acc = onnx_finish(x, nd)))
			return -1;
	}
	return bind(x, 0, acc);
}

/* ---- Expand ---- */

static int imp_expand(NodeCx *x)
{
	Value *v = onnx_input(x, 0);
	OTensor *t = x->nin > 1 ? x->in[1] : NULL;
	if (!v)
		return -1;
	if (!t || !t->host || !t->iv || t->shape.rank != 1 || ir_numel(&t->shape) > IR_MAX_RANK)
		return onnx_fail(x->c, "%s: the shape must be a 1-D integer list known at compile time", x->who);
	int n = (int)ir_numel(&t->shape);
	int64_t d[IR_MAX_RANK];
	for (int i = 0; i < n; i++)
		d[i] = t->sym && t->sym[i] ? -t->iv[i] : t->iv[i];
	Node *nd = begin(x, OP_EXPAND, 1, &v, -1);
	ir_set_ints(x->c->g, nd, "shape", n, d);
	return bind(x, 0, onnx_finish(x, nd));
}

/* ---- Cast ---- */

static Value *cast_to(NodeCx *x, Value *v, DType dt, int part)
{
	if (v->dt == dt)
		return onnx_finish(x, begin(x, OP_IDENTITY, 1, &v, part));
	Node *nd = begin(x, OP_CAST, 1, &v, part);
	ir_set_s(x->c->g, nd, "to", ir_dt_name(dt));
	return onnx_finish(x, nd);
}

static int imp_cast(NodeCx *x)
{
	int64_t to;
	DType dt;
	Value *v = onnx_input(x, 0);
	if (!v || onnx_attr_int(x, "to", 0, &to) < 0)
		return -1;
	if (onnx_dtype((int32_t)to, &dt) < 0 || dt == DT_F16 || dt == DT_BF16)
		return onnx_fail(x->c, "%s: casting to %s is not supported", x->who, onnx_dtype_name((int32_t)to));
	return bind(x, 0, cast_to(x, v, dt, -1));
}

/* ---- Trilu ---- */

static int imp_trilu(NodeCx *x)
{
	int64_t upper, k;
	Value *v = onnx_input(x, 0);
	if (!v || onnx_attr_int(x, "upper", 1, &upper) < 0 || const_int(x, 1, "k", 0, &k) < 0)
		return -1;
	if (v->shape.rank < 2)
		return onnx_fail(x->c, "%s: input has rank %d, needs at least 2", x->who, v->shape.rank);
	Node *nd = begin(x, OP_TRILU, 1, &v, -1);
	ir_set_i(x->c->g, nd, "upper", upper != 0);
	ir_set_i(x->c->g, nd, "k", k);
	return bind(x, 0, onnx_finish(x, nd));
}

/* ---- Pow: the exponent takes the base's dtype ---- */

static int imp_pow(NodeCx *x)
{
	Value *a = onnx_input(x, 0), *b = a ? onnx_input(x, 1) : NULL;
	if (!b)
		return -1;
	if (b->dt != a->dt && !(b = cast_to(x, b, a->dt, 0)))
		return -1;
	return bind(x, 0, onnx_finish(x, begin(x, OP_POW, 2, (Value *[]){a, b}, -1)));
}

/* ---- Max / Min: a chain of binary ops ---- */

static int imp_extreme(NodeCx *x)
{
	Op op = strcmp(x->n->op_type, "Max") == 0 ? OP_MAX : OP_MIN;
	Value *acc = onnx_input(x, 0);
	if (!acc)
		return -1;
	if (x->nin == 1)
		return bind(x, 0, onnx_finish(x, begin(x, OP_IDENTITY, 1, &acc, -1)));
	for (int i = 1; i < x->nin; i++) {
		Value *v = onnx_input(x, i);
		if (!v || !(acc = onnx_finish(x, begin(x, op, 2, (Value *[]){acc, v}, x->nin > 2 ? i : -1))))
			return -1;
	}
	return bind(x, 0, acc);
}

static const struct {
	const char *op;
	int (*fn)(NodeCx *x);
} tensor_importers[] = {
	{"Gather", imp_gather}, {"Slice", imp_slice}, {"Split", imp_split}, {"Concat", imp_concat},
	{"Expand", imp_expand}, {"Cast", imp_cast},   {"Trilu", imp_trilu}, {"Pow", imp_pow},
	{"Max", imp_extreme},   {"Min", imp_extreme}, {NULL, NULL},
};

int (*onnx_tensor_importer(const char *op_type))(NodeCx *x)
{
	for (int i = 0; tensor_importers[i].op; i++)
		if (strcmp(tensor_importers[i].op, op_type) == 0)
			return tensor_importers[i].fn;
	return NULL;
}

const char *onnx_tensor_op_name(int i) { return tensor_importers[i].op; }
