/*
 * onnx_fold.c — import-time evaluation of the shape subgraphs exporters write around Reshape
 * (Shape -> Gather -> Unsqueeze -> Concat -> Reshape, with Cast, Slice, Squeeze and integer
 * arithmetic in between), and of Constant nodes.
 *
 * A small table of host functions over integer constants held as int64 (OTensor.iv). The
 * batch stays symbolic: Shape of a [N,3,4] tensor is the list (1·N, 3, 4) with the first entry
 * flagged in OTensor.sym, Gather/Concat/Slice carry the flags along, Mul and Div scale them,
 * and Reshape (onnx_ops.c) turns a flagged entry k into the IR dim -k. A result that mixes N
 * with a constant in a way the IR cannot express (N + 3) is an error naming the node.
 *
 * A node is evaluated here when all its present inputs are host constants (Shape and Size need
 * only their input's shape); otherwise onnx_ops.c imports it as IR ops or reports it unsupported.
 * Results are host constants and become V_CONST values only if run-time data uses them.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "frontend/onnx_imp.h"

const char *const onnx_fold_ops[] = {"Constant", "Shape", "Size", "Gather", "Unsqueeze", "Squeeze",
				     "Concat", "Cast", "Slice", "ConstantOfShape", "Range", NULL};

int onnx_is_fold_op(const char *op_type)
{
	for (int i = 0; onnx_fold_ops[i]; i++)
		if (strcmp(onnx_fold_ops[i], op_type) == 0)
			return 1;
	return 0;
}

/* scratch arrays for results: from the arena, sized for n elements */
static int64_t *new_iv(NodeCx *x, int64_t n) { return ir_alloc(x->c->g, (n ? n : 1) * sizeof(int64_t)); }
static unsigned char *new_sym(NodeCx *x, int64_t n) { return ir_alloc(x->c->g, n ? n : 1); }
static int sym_at(const OTensor *t, int64_t i) { return t->sym && t->sym[i]; }

static int set_result(NodeCx *x, DType dt, Shape s, const int64_t *iv, const unsigned char *sym)
{
	OTensor *t = onnx_bind(x, 0, NULL);
	if (!t)
		return -1;
	onnx_set_ints(x->c, t, dt, s, iv, sym);
	return 0;
}

/* output 0 is src's contents with shape s */
static int alias(NodeCx *x, const OTensor *src, Shape s)
{
	OTensor *t = onnx_bind(x, 0, NULL);
	if (!t)
		return -1;
	t->dt = src->dt;
	t->shape = s;
	t->host = 1;
	t->data = src->data;
	t->iv = src->iv;
	t->sym = src->sym;
	return 0;
}

static int need_ints(NodeCx *x, const OTensor *t)
{
	if (t->iv)
		return 0;
	return onnx_fail(x->c, "%s: '%s' must be an integer tensor", x->who, t->name);
}

/* ---- Constant ---- */

static int fold_constant(NodeCx *x)
{
	const Onnx__AttributeProto *a = x->n->n_attribute == 1 ? x->n->attribute[0] : NULL;
	if (!a)
		return onnx_fail(x->c, "%s: expected exactly one value attribute", x->who);
	OTensor *t = onnx_bind(x, 0, NULL);
	if (!t)
		return -1;
	if (strcmp(a->name, "value") == 0 && a->t)
		return onnx_tensor_read(x->c, a->t, t, x->who, 0);
	int is_f = strcmp(a->name, "value_float") == 0, is_fs = strcmp(a->name, "value_floats") == 0;
	int is_i = strcmp(a->name, "value_int") == 0, is_is = strcmp(a->name, "value_ints") == 0;
	if (is_i || is_is) {
		int64_t n = is_i ? 1 : (int64_t)a->n_ints;
		Shape s = is_i ? ir_shape0() : ir_shape(1, &n);
		onnx_set_ints(x->c, t, DT_I64, s, is_i ? &a->i : a->ints, NULL);
		return 0;
	}
	if (!is_f && !is_fs)
		return onnx_fail(x->c, "%s: attribute %s is not supported (use value, value_float(s) or "
				 "value_int(s))", x->who, a->name);
	int64_t n = is_f ? 1 : (int64_t)a->n_floats;
	t->dt = DT_F32;
	t->shape = is_f ? ir_shape0() : ir_shape(1, &n);
	t->host = 1;
	t->data = ir_alloc(x->c->g, (n ? n : 1) * sizeof(float));
	memcpy(t->data, is_f ? &a->f : a->floats, n * sizeof(float));
	return 0;
}

/* ---- Shape (start/end from opset 15) ---- */

static int fold_shape(NodeCx *x)
{
	OTensor *in = x->in[0];
	if (!in)
		return onnx_fail(x->c, "%s: input 0 is missing", x->who);
	const Shape *s = in->v ? &in->v->shape : &in->shape;
	int64_t start, end, r = s->rank;
	if (onnx_attr_int(x, "start", 0, &start) < 0 || onnx_attr_int(x, "end", r, &end) < 0)
		return -1;
	start = start < 0 ? start + r : start;
	end = end < 0 ? end + r : end;
	start = start < 0 ? 0 : start > r ? r : start;
	end = end < start ? start : end > r ? r : end;
	int64_t n = end - start, *iv = new_iv(x, n);
	unsigned char *sym = new_sym(x, n);
	for (int64_t i = 0; i < n; i++) {
		int64_t d = s->d[start + i];
		iv[i] = d < 0 ? -d : d;
		sym[i] = d < 0;
	}
	return set_result(x, DT_I64, ir_shape(1, &n), iv, sym);
}

/* ---- Size: the element count, k·N when the batch appears once ---- */

static int fold_size(NodeCx *x)
{
	OTensor *in = x->in[0];
	if (!in)
		return onnx_fail(x->c, "%s: input 0 is missing", x->who);
	const Shape *s = in->v ? &in->v->shape : &in->shape;
	int64_t n = 1, *iv = new_iv(x, 1);
	unsigned char *sym = new_sym(x, 1);
	for (int i = 0; i < s->rank; i++) {
		if (s->d[i] < 0 && sym[0])
			return onnx_fail(x->c, "%s: the batch appears twice in the shape (N*N is not a size dlcc "
					 "can represent)", x->who);
		sym[0] |= s->d[i] < 0;
		n *= s->d[i] < 0 ? -s->d[i] : s->d[i];
	}
	iv[0] = n;
	return set_result(x, DT_I64, ir_shape0(), iv, sym);
}

/* ---- Gather (any axis, constant indices) ---- */

static int fold_gather(NodeCx *x)
{
	OTensor *d = x->in[0], *ix = x->in[1];
	int64_t axis, outer = 1, inner = 1, *id;
	int nid;
	if (!ix || need_ints(x, d) < 0 || need_ints(x, ix) < 0 || onnx_attr_int(x, "axis", 0, &axis) < 0)
		return ix ? -1 : onnx_fail(x->c, "%s: indices are missing", x->who);
	if (d->shape.rank == 0 || onnx_axis(x, axis, d->shape.rank, &axis) < 0)
		return d->shape.rank ? -1 : onnx_fail(x->c, "%s: cannot gather from a scalar", x->who);
	if (d->shape.rank - 1 + ix->shape.rank > IR_MAX_RANK)
		return onnx_fail(x->c, "%s: result rank is too large", x->who);
	id = ix->iv;
	nid = (int)ir_numel(&ix->shape);
	Shape s = {0, {0}};
	for (int i = 0; i < d->shape.rank; i++) {
		if (i == axis)
			for (int j = 0; j < ix->shape.rank; j++)
				s.d[s.rank++] = ix->shape.d[j];
		else
			s.d[s.rank++] = d->shape.d[i];
		if (i < axis) outer *= d->shape.d[i];
		if (i > axis) inner *= d->shape.d[i];
	}
	int64_t A = d->shape.d[axis], *iv = new_iv(x, ir_numel(&s)), o = 0;
	unsigned char *sym = new_sym(x, ir_numel(&s));
	for (int64_t a = 0; a < outer; a++)
		for (int j = 0; j < nid; j++) {
			int64_t k = id[j] < 0 ? id[j] + A : id[j];
			if (k < 0 || k >= A)
				return onnx_fail(x->c, "%s: index %lld is out of range for size %lld", x->who,
						 (long long)id[j], (long long)A);
			for (int64_t b = 0; b < inner; b++, o++) {
				int64_t src = (a * A + k) * inner + b;
				iv[o] = d->iv[src];
				sym[o] = sym_at(d, src);
			}
		}
	return set_result(x, d->dt, s, iv, sym);
}

/* ---- Unsqueeze / Squeeze: only the shape changes ---- */

static int fold_squeeze(NodeCx *x, int un)
{
	Shape s;
	const Shape *in = &x->in[0]->shape;
	if ((un ? onnx_unsqueeze_shape(x, in, &s) : onnx_squeeze_shape(x, in, &s)) < 0)
		return -1;
	return alias(x, x->in[0], s);
}

/* ---- Concat ---- */

static int fold_concat(NodeCx *x)
{
	int64_t axis, outer = 1, inner = 1, total = 0;
	OTensor *a = x->nin ? x->in[0] : NULL;
	if (!a || onnx_attr_int(x, "axis", 0, &axis) < 0 || onnx_axis(x, axis, a->shape.rank, &axis) < 0)
		return a ? -1 : onnx_fail(x->c, "%s: no inputs", x->who);
	for (int i = 0; i < x->nin; i++) {
		const OTensor *t = x->in[i];
		if (!t || need_ints(x, t) < 0 || t->shape.rank != a->shape.rank)
			return t ? -1 : onnx_fail(x->c, "%s: input %d is missing", x->who, i);
		for (int k = 0; k < a->shape.rank; k++)
			if (k != axis && t->shape.d[k] != a->shape.d[k])
				return onnx_fail(x->c, "%s: input shapes differ outside axis %lld", x->who,
						 (long long)axis);
		total += t->shape.d[axis];
	}
	for (int k = 0; k < a->shape.rank; k++)
		if (k < axis) outer *= a->shape.d[k];
		else if (k > axis) inner *= a->shape.d[k];
	Shape s = a->shape;
	s.d[axis] = total;
	int64_t *iv = new_iv(x, ir_numel(&s)), o = 0;
	unsigned char *sym = new_sym(x, ir_numel(&s));
	for (int64_t p = 0; p < outer; p++)
		for (int i = 0; i < x->nin; i++) {
			int64_t chunk = x->in[i]->shape.d[axis] * inner;
			for (int64_t e = 0; e < chunk; e++, o++) {
				iv[o] = x->in[i]->iv[p * chunk + e];
				sym[o] = sym_at(x->in[i], p * chunk + e);
			}
		}
	return set_result(x, a->dt, s, iv, sym);
}

/* ---- Cast ---- */

static int fold_cast(NodeCx *x)
{
	int64_t to;
	DType dt;
	OTensor *in = x->in[0];
	if (onnx_attr_int(x, "to", 0, &to) < 0)
		return -1;
	if (!in->iv && in->dt != DT_F32 && in->dt != DT_F64)
		return onnx_fail(x->c, "%s: casting a %s constant is not supported", x->who, ir_dt_name(in->dt));
	if (onnx_dtype((int32_t)to, &dt) < 0 || dt == DT_F16 || dt == DT_BF16)
		return onnx_fail(x->c, "%s: casting a constant to %s is not supported", x->who,
				 onnx_dtype_name((int32_t)to));
	if (ir_dt_is_float(dt)) {
		OTensor *t = onnx_bind(x, 0, NULL);
		if (!t)
			return -1;
		int64_t n = ir_numel(&in->shape);
		for (int64_t i = 0; i < n; i++)
			if (sym_at(in, i))
				return onnx_fail(x->c, "%s: '%s' depends on the batch size N and cannot be cast "
						 "to %s", x->who, in->name, ir_dt_name(dt));
		*t = (OTensor){.name = t->name, .dt = dt, .shape = in->shape, .host = 1};
		t->data = ir_alloc(x->c->g, (n ? n : 1) * ir_dt_size(dt));
		for (int64_t i = 0; i < n; i++) {
			double f = in->iv ? (double)in->iv[i] : in->dt == DT_F64 ? ((double *)in->data)[i]
											 : ((float *)in->data)[i];
			if (dt == DT_F32) ((float *)t->data)[i] = (float)f;
			else ((double *)t->data)[i] = f;
		}
		return 0;
	}
	onnx_host_ints(x->c, in);
	if (need_ints(x, in) < 0)
		return -1;
	int64_t n = ir_numel(&in->shape), *iv = new_iv(x, n);
	for (int64_t i = 0; i < n; i++)
		iv[i] = dt == DT_BOOL ? in->iv[i] != 0 : dt == DT_U8 ? (uint8_t)in->iv[i]
			: dt == DT_I32 ? (int32_t)in->iv[i] : in->iv[i];
	return set_result(x, dt, in->shape, iv, in->sym);
}

/* ---- Slice (opset >= 10 inputs) of a constant along its first axis ---- */

static int slice_param(NodeCx *x, int i, int64_t dflt, int64_t *out)
{
	int64_t *v;
	int n;
	*out = dflt;
	if (i >= x->nin || !x->in[i])
		return 0;
	if (onnx_const_ints(x->c, x->in[i], x->who, "slice parameter", &v, &n) < 0)
		return -1;
	if (n != 1)
		return onnx_fail(x->c, "%s: slicing constants of rank 1 takes one start/end/axis/step", x->who);
	*out = v[0];
	return 0;
}

static int fold_slice(NodeCx *x)
{
	OTensor *d = x->in[0];
	int64_t start, end, axis, step;
	if (need_ints(x, d) < 0)
		return -1;
	if (d->shape.rank < 1)
		return onnx_fail(x->c, "%s: slicing a scalar constant", x->who);
	int64_t dim = d->shape.d[0], inner = dim ? ir_numel(&d->shape) / dim : 0;
	if (slice_param(x, 1, 0, &start) < 0 || slice_param(x, 2, dim, &end) < 0 ||
	    slice_param(x, 3, 0, &axis) < 0 || slice_param(x, 4, 1, &step) < 0)
		return -1;
	/* axis 0 of any rank (the pads subgraph of F.pad reverses the rows of a [r,2] list) */
	if ((axis != 0 && !(axis == -1 && d->shape.rank == 1)) || step == 0)
		return onnx_fail(x->c, "%s: slicing constants is supported along the first axis only (axis %lld, "
				 "step %lld)", x->who, (long long)axis, (long long)step);
	start = start < 0 ? start + dim : start;
	end = end < 0 ? end + dim : end;
	int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? dim : dim - 1;
	start = start < lo ? lo : start > hi ? hi : start;
	end = end < lo ? lo : end > hi ? hi : end;
	int64_t *iv = new_iv(x, dim * inner), n = 0;
	unsigned char *sym = new_sym(x, dim * inner);
	for (int64_t i = start; step > 0 ? i < end : i > end; i += step, n++)
		for (int64_t j = 0; j < inner; j++) {
			iv[n * inner + j] = d->iv[i * inner + j];
			sym[n * inner + j] = sym_at(d, i * inner + j);
		}
	Shape s = d->shape;
	s.d[0] = n;
	return set_result(x, d->dt, s, iv, sym);
}

/* ---- Add / Sub / Mul / Div of integer constants (one side may be a single element) ---- */

/* a op b where either may be k*N; -1 when the result is not c or c*N */
static int arith1(char op, int64_t a, int sa, int64_t b, int sb, int64_t *r, unsigned char *sr)
{
	*sr = 0;
	switch (op) {
	case '+': case '-':
		if (sa != sb && (sa ? b : a) != 0)
			return -1;
		*r = op == '+' ? a + b : a - b;
		*sr = (sa || sb) && *r != 0;
		return 0;
	case '*':
		if (sa && sb)
			return -1;
		*r = a * b;
		*sr = (sa || sb) && *r != 0;
		return 0;
	default:
		if (sb || b == 0 || (sa && a % b != 0))
			return -1;
		*r = a / b;
		*sr = sa && *r != 0;
		return 0;
	}
}

static int fold_arith(NodeCx *x, char op)
{
	OTensor *a = x->in[0], *b = x->in[1];
	int64_t na = ir_numel(&a->shape), nb = ir_numel(&b->shape);
	if (a->dt != b->dt)
		return onnx_fail(x->c, "%s: operand types differ: %s and %s", x->who, ir_dt_name(a->dt),
				 ir_dt_name(b->dt));
	if (na != nb && na != 1 && nb != 1)
		return onnx_fail(x->c, "%s: constant operands of %lld and %lld elements do not broadcast",
				 x->who, (long long)na, (long long)nb);
	const OTensor *big = nb > na || (nb == na && b->shape.rank > a->shape.rank) ? b : a;
	int64_t n = ir_numel(&big->shape), *iv = new_iv(x, n);
	unsigned char *sym = new_sym(x, n);
	for (int64_t i = 0; i < n; i++) {
		int64_t ia = na == 1 ? 0 : i, ib = nb == 1 ? 0 : i;
		if (arith1(op, a->iv[ia], sym_at(a, ia), b->iv[ib], sym_at(b, ib), &iv[i], &sym[i]) < 0)
			return onnx_fail(x->c, "%s: the result depends on the batch size N in a way dlcc cannot "
					 "represent (or divides by zero)", x->who);
	}
	return set_result(x, a->dt, big->shape, iv, sym);
}

/* ---- ConstantOfShape: a host constant, or an IR Expand of a scalar when N is in the shape ---- */

/* the one-element `value` attribute (default float32 0) */
static int fill_value(NodeCx *x, OTensor *v)
{
	const Onnx__AttributeProto *a = onnx_attr(x->n, "value");
	*v = (OTensor){.name = "value", .dt = DT_F32, .shape = ir_shape0(), .host = 1};
	if (!a) {
		v->data = ir_alloc(x->c->g, sizeof(float));
		return 0;
	}
	if (!a->t)
		return onnx_fail(x->c, "%s: attribute value must be a tensor", x->who);
	if (onnx_tensor_read(x->c, a->t, v, x->who, 0) < 0)
		return -1;
	if (ir_numel(&v->shape) != 1)
		return onnx_fail(x->c, "%s: value must hold one element", x->who);
	v->shape = ir_shape0();
	return 0;
}

static int fold_constant_of_shape(NodeCx *x)
{
	OTensor *s = x->in[0], v;
	if (!s || !s->host || !s->iv || s->shape.rank != 1 || ir_numel(&s->shape) > IR_MAX_RANK)
		return onnx_fail(x->c, "%s: the shape must be a 1-D integer list known at compile time", x->who);
	if (fill_value(x, &v) < 0)
		return -1;
	int rank = (int)ir_numel(&s->shape);
	int64_t d[IR_MAX_RANK];
	for (int i = 0; i < rank; i++)
		d[i] = sym_at(s, i) ? -s->iv[i] : s->iv[i];
	Shape out = ir_shape(rank, d);
	char nm[300];
	snprintf(nm, sizeof nm, "%s/value", onnx_node_label(x->c, x->n));
	v.name = ir_strdup(x->c->g, nm);
	if (ir_has_batch(&out)) { /* run-time data: Expand(scalar) */
		Value *c = onnx_value(x->c, &v, x->who);
		Node *nd = ir_begin(x->c->g, OP_EXPAND, onnx_node_label(x->c, x->n), 1, &c);
		ir_set_ints(x->c->g, nd, "shape", rank, d);
		if (ir_finish(x->c->g, nd) < 0)
			return onnx_fail(x->c, "%s", x->c->g->err);
		return onnx_bind(x, 0, nd->out[0]) ? 0 : -1;
	}
	int64_t n = ir_numel(&out);
	OTensor *t = onnx_bind(x, 0, NULL);
	if (!t)
		return -1;
	if (v.iv) {
		int64_t *iv = new_iv(x, n);
		for (int64_t i = 0; i < n; i++)
			iv[i] = v.iv[0];
		onnx_set_ints(x->c, t, v.dt, out, iv, NULL);
		return 0;
	}
	size_t es = ir_dt_size(v.dt);
	*t = (OTensor){.name = t->name, .dt = v.dt, .shape = out, .host = 1};
	t->data = ir_alloc(x->c->g, (n ? n : 1) * es);
	for (int64_t i = 0; i < n; i++)
		memcpy((char *)t->data + i * es, v.data, es);
	return 0;
}

/* ---- Range of compile-time scalars ---- */

static double host_scalar(const OTensor *t)
{
	if (t->iv)
		return (double)t->iv[0];
	return t->dt == DT_F64 ? ((const double *)t->data)[0] : ((const float *)t->data)[0];
}

static int fold_range(NodeCx *x)
{
	for (int i = 0; i < 3; i++) {
		const OTensor *t = i < x->nin ? x->in[i] : NULL;
		if (!t || !t->host || ir_numel(&t->shape) != 1 || sym_at(t, 0) || (!t->iv && t->dt != DT_F32 && t->dt != DT_F64))
			return onnx_fail(x->c, "%s: start, limit and delta must be scalars known at compile time "
					 "(not depending on N)", x->who);
	}
	double s = host_scalar(x->in[0]), l = host_scalar(x->in[1]), dl = host_scalar(x->in[2]);
	if (dl == 0)
		return onnx_fail(x->c, "%s: delta is 0", x->who);
	double cnt = ceil((l - s) / dl);
	int64_t n = cnt > 0 ? (int64_t)cnt : 0;
	if (n > (1 << 24))
		return onnx_fail(x->c, "%s: %lld elements is too many", x->who, (long long)n);
	DType dt = x->in[0]->dt;
	if (x->in[0]->iv) {
		int64_t *iv = new_iv(x, n);
		for (int64_t i = 0; i < n; i++)
			iv[i] = x->in[0]->iv[0] + i * x->in[2]->iv[0];
		return set_result(x, dt, ir_shape(1, &n), iv, NULL);
	}
	OTensor *t = onnx_bind(x, 0, NULL);
	if (!t)
		return -1;
	*t = (OTensor){.name = t->name, .dt = dt, .shape = ir_shape(1, &n), .host = 1};
	t->data = ir_alloc(x->c->g, (n ? n : 1) * ir_dt_size(dt));
	for (int64_t i = 0; i < n; i++) {
		if (dt == DT_F64) ((double *)t->data)[i] = s + i * dl;
		else ((float *)t->data)[i] = (float)(s + i * dl);
	}
	return 0;
}

/* ---- Reshape and Transpose of host integer constants (the pads subgraph exporters emit for F.pad) ---- */

static int fold_reshape(NodeCx *x)
{
	int64_t *d, known = 1, n0 = ir_numel(&x->in[0]->shape);
	int n, neg = -1;
	if (need_ints(x, x->in[0]) < 0 || onnx_const_ints(x->c, x->in[1], x->who, "shape", &d, &n) < 0)
		return -1;
	Shape s = ir_shape(n, d);
	for (int i = 0; i < n; i++) {
		if (d[i] == 0 && i < x->in[0]->shape.rank)
			s.d[i] = x->in[0]->shape.d[i];
		if (d[i] == -1)
			neg = i;
		else
			known *= s.d[i];
	}
	if (neg >= 0)
		s.d[neg] = known ? n0 / known : 0;
	if (ir_numel(&s) != n0)
		return onnx_fail(x->c, "%s: cannot reshape %lld constant elements", x->who, (long long)n0);
	return alias(x, x->in[0], s);
}

static int fold_transpose(NodeCx *x)
{
	const OTensor *t = x->in[0];
	int64_t *perm, idx[IR_MAX_RANK], n = ir_numel(&t->shape);
	int cnt, r = t->shape.rank;
	if (need_ints(x, t) < 0 || onnx_attr_ints(x, "perm", &perm, &cnt) < 0)
		return -1;
	Shape s = t->shape;
	for (int i = 0; i < r; i++)
		s.d[i] = t->shape.d[cnt >= 0 ? perm[i] : r - 1 - i];
	int64_t *iv = new_iv(x, n);
	unsigned char *sym = new_sym(x, n);
	for (int64_t k = 0; k < n; k++) { /* output element k gathers input offset `off` */
		int64_t rem = k, off = 0, stride = 1;
		for (int j = r - 1; j >= 0; j--) {
			idx[j] = rem % s.d[j];
			rem /= s.d[j];
		}
		for (int a = r - 1; a >= 0; a--) { /* input axis a: its index is idx[j] with perm[j] == a */
			for (int j = 0; j < r; j++)
				if ((cnt >= 0 ? perm[j] : r - 1 - j) == a)
					off += idx[j] * stride;
			stride *= t->shape.d[a];
		}
		iv[k] = t->iv[off];
		sym[k] = sym_at(t, off);
	}
	return set_result(x, t->dt, s, iv, sym);
}

/* ---- dispatch ---- */

static int all_host(const NodeCx *x)
{
	int any = 0;
	for (int i = 0; i < x->nin; i++) {
		if (x->in[i] && !x->in[i]->host)
			return 0;
		any |= x->in[i] != NULL;
	}
	return any;
}

int onnx_fold_node(NodeCx *x, int *rc)
{
	const char *op = x->n->op_type;
	static const char arith_ops[][4] = {"Add", "Sub", "Mul", "Div"};
	if (strcmp(op, "Constant") == 0)
		return *rc = fold_constant(x), 1;
	if (strcmp(op, "Shape") == 0)
		return *rc = fold_shape(x), 1;
	if (strcmp(op, "Size") == 0)
		return *rc = fold_size(x), 1;
	if (!all_host(x) || !x->in[0])
		return 0;
	if (strcmp(op, "Identity") == 0)
		return *rc = alias(x, x->in[0], x->in[0]->shape), 1;
	if (strcmp(op, "ConstantOfShape") == 0)
		return *rc = fold_constant_of_shape(x), 1;
	if (strcmp(op, "Range") == 0)
		return *rc = fold_range(x), 1;
	if (!x->in[0]->iv && (!strcmp(op, "Gather") || !strcmp(op, "Concat") || !strcmp(op, "Slice")))
		return 0; /* float data: an IR op (onnx_ops_tensor.c), folded later if constant */
	if (strcmp(op, "Gather") == 0)
		return *rc = fold_gather(x), 1;
	if (strcmp(op, "Unsqueeze") == 0 || strcmp(op, "Squeeze") == 0)
		return *rc = fold_squeeze(x, op[0] == 'U'), 1;
	if (strcmp(op, "Concat") == 0)
		return *rc = fold_concat(x), 1;
	if (strcmp(op, "Cast") == 0)
		return *rc = fold_cast(x), 1;
	if (strcmp(op, "Slice") == 0)
		return *rc = fold_slice(x), 1;
	if (strcmp(op, "Reshape") == 0 && x->nin == 2 && x->in[1] && x->in[0]->iv)
		return *rc = fold_reshape(x), 1;
	if (strcmp(op, "Transpose") == 0 && x->in[0]->iv)
		return *rc = fold_transpose(x), 1;
	for (int i = 0; i < 4; i++)
		if (strcmp(op, arith_ops[i]) == 0 && x->nin == 2 && x->in[1] && x->in[0]->iv && x->in[1]->iv)
			return *rc = fold_arith(x, "+-*/"[i]), 1;
	return 0;
}
