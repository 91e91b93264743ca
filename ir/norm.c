/*
 * norm.c — see norm.h: ONNX defaults of the activation attributes, the shape rules of
 * BatchNormalization and PRelu, and the builders that express LayerNormalization,
 * InstanceNormalization and training-mode BatchNormalization with ordinary IR ops.
 *
 * The statistics follow the usual two-pass form: mean = ReduceMean(x), cen = x - mean,
 * var = ReduceMean(cen * cen) (biased, as every framework normalises with), std = sqrt(var + eps),
 * y = cen / std, all with keepdims so that they broadcast back against x. ReduceMean over an axis
 * holding the batch N divides by the run-time count, so the same graph serves every batch.
 * Preconditions: float x; axes sorted and non-negative. Left to others: a fused kernel for
 * the whole pattern (fusion), the parameters' roles (the frontend and passes/bn_train.c).
 */
#include <float.h>
#include <stdio.h>
#include <string.h>

#include "ir/norm.h"

/* ---- attribute defaults ---- */

double ir_act_attr(const Node *n, const char *name)
{
	double d = strcmp(name, "alpha") == 0 ? 1.0 : 0.0;
	switch (n->op) {
	case OP_LEAKY_RELU: case OP_LEAKY_RELU_GRAD: d = strcmp(name, "alpha") == 0 ? 0.01 : d; break;
	case OP_CLIP: case OP_CLIP_GRAD:
		d = strcmp(name, "lo") == 0 ? -FLT_MAX : strcmp(name, "hi") == 0 ? FLT_MAX : d;
		break;
	case OP_HARD_SIGMOID: case OP_HARD_SIGMOID_GRAD:
		d = strcmp(name, "alpha") == 0 ? 0.2 : strcmp(name, "beta") == 0 ? 0.5 : d;
		break;
	case OP_SELU: case OP_SELU_GRAD:
		d = strcmp(name, "alpha") == 0 ? 1.67326319217681884765625
		    : strcmp(name, "gamma") == 0 ? 1.05070102214813232421875 : d;
		break;
	default: break;
	}
	return ir_attr_f(n, name, d);
}

/* ---- shape rules ---- */

static const char *nm(const Node *n) { return n->name ? n->name : "?"; }

/* x [N,C,...]; scale, bias, mean, var [C], all of x's float dtype */
int shape_batchnorm(Graph *g, Node *n)
{
	const Shape *x = &n->in[0]->shape;
	if (x->rank < 2 || x->d[1] < 0)
		return ir_error(g, "node '%s' (BatchNormalization): input must be [N,C,...] with a fixed C",
				nm(n));
	for (int i = 1; i < 5; i++) {
		const Value *v = n->in[i];
		if (v->shape.rank != 1 || v->shape.d[0] != x->d[1] || v->dt != n->in[0]->dt)
			return ir_error(g, "node '%s' (BatchNormalization): input %d must be %s[%lld] (one "
					   "value per channel)", nm(n), i, ir_dt_name(n->in[0]->dt),
					(long long)x->d[1]);
	}
	if (!ir_dt_is_float(n->in[0]->dt))
		return ir_error(g, "node '%s' (BatchNormalization): input is %s, not float", nm(n),
				ir_dt_name(n->in[0]->dt));
	n->out[0]->dt = n->in[0]->dt;
	n->out[0]->shape = *x;
	return 0;
}

/* PRelu: the slope broadcasts to x (one way: the result has x's shape) */
int shape_prelu(Graph *g, Node *n)
{
	Shape s;
	char a[128], b[128];
	const Shape *x = &n->in[0]->shape, *sl = &n->in[1]->shape;
	if (n->in[0]->dt != n->in[1]->dt)
		return ir_error(g, "node '%s' (PRelu): x is %s, the slope %s", nm(n), ir_dt_name(n->in[0]->dt),
				ir_dt_name(n->in[1]->dt));
	if (ir_broadcast(g, x, sl, &s) < 0 || !ir_shape_eq(&s, x))
		return ir_error(g, "node '%s' (PRelu): slope %s does not broadcast to x %s", nm(n),
				ir_shape_str(sl, b, sizeof b), ir_shape_str(x, a, sizeof a));
	n->out[0]->dt = n->in[0]->dt;
	n->out[0]->shape = *x;
	return 0;
}

/* ---- builders ---- */

static const char *sub_name(Graph *g, const char *name, const char *suffix)
{
	char buf[300];
	if (!name)
		return NULL;
	snprintf(buf, sizeof buf, "%s/%s", name, suffix);
	return ir_strdup(g, buf);
}

static Value *fin(Graph *g, Node *n) { return n && ir_finish(g, n) == 0 ? n->out[0] : NULL; }

static Value *bin(Graph *g, Op op, const char *name, const char *suffix, Value *a, Value *b)
{
	if (!a || !b)
		return NULL;
	return fin(g, ir_begin(g, op, sub_name(g, name, suffix), 2, (Value *[]){a, b}));
}

static Value *mean_over(Graph *g, const char *name, const char *suffix, Value *x, int naxes,
			const int64_t *axes)
{
	if (!x)
		return NULL;
	Node *n = ir_begin(g, OP_REDUCE_MEAN, sub_name(g, name, suffix), 1, &x);
	ir_set_ints(g, n, "axes", naxes, axes);
	ir_set_i(g, n, "keepdims", 1);
	return fin(g, n);
}

int ir_norm_stats(Graph *g, const char *name, Value *x, int naxes, const int64_t *axes, double eps,
		  NormStats *st)
{
	memset(st, 0, sizeof *st);
	st->mean = mean_over(g, name, "mean", x, naxes, axes);
	st->cen = bin(g, OP_SUB, name, "center", x, st->mean);
	st->var = mean_over(g, name, "var", bin(g, OP_MUL, name, "square", st->cen, st->cen), naxes, axes);
	Value *ve = bin(g, OP_ADD, name, "add_eps", st->var, ir_const_scalar(g, x->dt, eps));
	st->std = ve ? fin(g, ir_begin(g, OP_SQRT, sub_name(g, name, "std"), 1, &ve)) : NULL;
	return st->std ? 0 : -1;
}

Value *ir_channel_view(Graph *g, const char *name, Value *v, int rank)
{
	if (!v || rank <= 2 || v->shape.rank != 1)
		return v;
	Shape s = ir_shape0();
	s.rank = rank - 1;
	s.d[0] = v->shape.d[0];
	for (int i = 1; i < s.rank; i++)
		s.d[i] = 1;
	Node *n = ir_begin(g, OP_RESHAPE, sub_name(g, name, "channel_view"), 1, &v);
	ir_set_ints(g, n, "shape", s.rank, s.d);
	return fin(g, n);
}

Value *ir_norm_affine(Graph *g, const char *name, const NormStats *st, Value *scale, Value *bias)
{
	Value *y = bin(g, OP_DIV, name, "normalize", st->cen, st->std);
	y = scale ? bin(g, OP_MUL, name, "scale", y, scale) : y;
	return bias ? bin(g, OP_ADD, name, "bias", y, bias) : y;
}

Value *ir_layer_norm(Graph *g, const char *name, Value *x, Value *scale, Value *bias, int axis,
		     double eps, Value **mean_out, Value **inv_out)
{
	int64_t axes[IR_MAX_RANK];
	int r = x->shape.rank;
	NormStats st;
	for (int i = axis; i < r; i++)
		axes[i - axis] = i;
	if (ir_norm_stats(g, name, x, r - axis, axes, eps, &st) < 0)
		return NULL;
	if (mean_out)
		*mean_out = st.mean;
	if (inv_out && !(*inv_out = bin(g, OP_DIV, name, "inv_std", ir_const_scalar(g, x->dt, 1.0), st.std)))
		return NULL;
	return ir_norm_affine(g, name, &st, scale, bias);
}

Value *ir_instance_norm(Graph *g, const char *name, Value *x, Value *scale, Value *bias, double eps)
{
	int64_t axes[IR_MAX_RANK];
	int r = x->shape.rank;
	NormStats st;
	for (int i = 2; i < r; i++)
		axes[i - 2] = i;
	if (r < 3)
		return ir_error(g, "node '%s' (InstanceNormalization): input must be [N,C,D1,...], not "
				   "rank %d", name ? name : "?", r), NULL;
	if (ir_norm_stats(g, name, x, r - 2, axes, eps, &st) < 0)
		return NULL;
	return ir_norm_affine(g, name, &st, ir_channel_view(g, name, scale, r),
			      ir_channel_view(g, name, bias, r));
}
