/*
 * grad_norm.c — gradient rules of the normalization and activation rows of ir/ops.def.
 *
 * Activations: dx = <Act>Grad(dy, x), an IR-only elementwise op whose body is the derivative
 * (ops.def), carrying the forward node's scalar attributes. PRelu and PowScalar compose ordinary
 * ops: PRelu's slope gradient is summed over the axes the slope was broadcast along.
 * BatchNormalization here is its inference form (fixed statistics: an affine map per channel);
 * the training program never differentiates it, because passes/bn_train.c first lowers it to
 * batch statistics built from ReduceMean/Sub/Mul/Sqrt/Div, whose rules give the full gradient
 * through the statistics. LayerNormalization and InstanceNormalization are built from those ops
 * by the frontend and need no rule of their own.
 */
#include "ir/norm.h"
#include "passes/grad.h"

static Value *fin(Graph *g, Node *n) { return ir_finish(g, n) < 0 ? NULL : n->out[0]; }

static Value *op1(Graph *g, Op op, Value *a) { return a ? ir_op1(g, op, a) : NULL; }

static Value *op2(Graph *g, Op op, Value *a, Value *b) { return a && b ? ir_op2(g, op, a, b) : NULL; }

static int done(Node *n, const char *need, Value **din)
{
	for (int j = 0; j < n->nin; j++)
		if (need[j] && !din[j])
			return -1;
	return 0;
}

/* dx = gop(dy, x) with the forward node's float attributes */
static int act_grad(Graph *g, Node *n, Op gop, Value *const *dout, const char *need, Value **din)
{
	Node *m = ir_begin(g, gop, NULL, 2, (Value *[]){dout[0], n->in[0]});
	for (int i = 0; i < n->nattr; i++)
		if (n->attr[i].kind == A_FLOAT)
			ir_set_f(g, m, n->attr[i].name, n->attr[i].f);
	din[0] = fin(g, m);
	return done(n, need, din);
}

#define ACT_RULE(rule, GOP)                                                                    \
	int grad_##rule(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)   \
	{                                                                                       \
		return act_grad(g, n, GOP, dout, need, din);                                    \
	}
ACT_RULE(clip, OP_CLIP_GRAD)
ACT_RULE(erf, OP_ERF_GRAD)
ACT_RULE(gelu, OP_GELU_GRAD)
ACT_RULE(gelu_tanh, OP_GELU_TANH_GRAD)
ACT_RULE(hard_sigmoid, OP_HARD_SIGMOID_GRAD)
ACT_RULE(hard_swish, OP_HARD_SWISH_GRAD)
ACT_RULE(softplus, OP_SOFTPLUS_GRAD)
ACT_RULE(elu, OP_ELU_GRAD)
ACT_RULE(selu, OP_SELU_GRAD)
#undef ACT_RULE

/* y = x > 0 ? x : slope * x: with r = ReluGrad(dy, x) and m = dy - r (dy where x <= 0),
 * dx = r + m * slope and dslope = sum_to(m * x) */
int grad_prelu(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *x = n->in[0], *slope = n->in[1];
	Value *r = op2(g, OP_RELU_GRAD, dout[0], x), *m = op2(g, OP_SUB, dout[0], r);
	if (need[0])
		din[0] = op2(g, OP_ADD, r, op2(g, OP_MUL, m, slope));
	if (need[1])
		din[1] = grad_sum_to(g, op2(g, OP_MUL, m, x), &slope->shape);
	return done(n, need, din);
}

/* y = x^p: dx = dy * p * x^(p-1) */
int grad_pow_scalar(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	double p = ir_act_attr(n, "alpha");
	Value *x = n->in[0];
	Node *m = ir_begin(g, OP_POW_SCALAR, NULL, 1, &x);
	ir_set_f(g, m, "alpha", p - 1);
	Value *d = op2(g, OP_MUL, fin(g, m), ir_const_scalar(g, x->dt, p));
	din[0] = op2(g, OP_MUL, dout[0], d);
	return done(n, need, din);
}

/* ---- BatchNormalization, inference form ---- */

/* a per-channel view [C,1,..] (or [C] for rank 2) summed back to [C] */
static Value *chan_sum(Graph *g, Value *v, const Value *like, int rank)
{
	Shape view = like->shape;
	view.rank = rank - 1;
	for (int i = 1; i < view.rank; i++)
		view.d[i] = 1;
	Value *s = grad_sum_to(g, v, &view);
	if (!s || rank <= 2)
		return s;
	Node *m = ir_begin(g, OP_RESHAPE, NULL, 1, &s);
	ir_set_ints(g, m, "shape", 1, like->shape.d);
	return fin(g, m);
}

/* y = (x - mean) * inv * scale + bias with inv = 1/sqrt(var + eps), per channel:
 *   dx = dy * scale * inv          dscale = sum(dy * (x - mean) * inv)     dbias = sum(dy)
 *   dmean = -sum(dy * scale * inv)  dvar = sum(dy * scale * (x - mean)) * -inv^3 / 2 */
int grad_batchnorm(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	int r = n->in[0]->shape.rank;
	Value *v[5], *dy = dout[0];
	for (int i = 1; i < 5; i++)
		v[i] = ir_channel_view(g, NULL, n->in[i], r);
	Value *se = op2(g, OP_ADD, v[4], ir_const_scalar(g, dy->dt, ir_attr_f(n, "epsilon", 1e-5)));
	Value *inv = op2(g, OP_DIV, ir_const_scalar(g, dy->dt, 1.0), op1(g, OP_SQRT, se));
	Value *cen = op2(g, OP_SUB, n->in[0], v[3]), *dys = op2(g, OP_MUL, dy, v[1]);
	if (need[0])
		din[0] = op2(g, OP_MUL, dys, inv);
	if (need[1])
		din[1] = chan_sum(g, op2(g, OP_MUL, op2(g, OP_MUL, dy, cen), inv), n->in[1], r);
	if (need[2])
		din[2] = chan_sum(g, dy, n->in[2], r);
	if (need[3])
		din[3] = chan_sum(g, op1(g, OP_NEG, op2(g, OP_MUL, dys, inv)), n->in[3], r);
	if (need[4]) {
		Value *k = op2(g, OP_MUL, op2(g, OP_MUL, inv, op2(g, OP_MUL, inv, inv)),
			       ir_const_scalar(g, dy->dt, -0.5));
		din[4] = chan_sum(g, op2(g, OP_MUL, op2(g, OP_MUL, dys, cen), k), n->in[4], r);
	}
	return done(n, need, din);
}
