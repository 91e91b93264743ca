/*
 * onnx_norm.c — importing the normalization and activation ops (BatchNormalization,
 * LayerNormalization, InstanceNormalization, Clip, Gelu, HardSigmoid, Elu, Selu, Pow with a
 * constant exponent). Erf, HardSwish, Softplus and PRelu have no attributes and go through the
 * generic importer of onnx_ops.c.
 *
 * BatchNormalization becomes the IR op of that name in its inference form, whatever
 * training_mode the file says: the training program switches to batch statistics itself
 * (passes/bn_train.c). Its running mean and variance must be initializers (or Identity of
 * one, as exporters share equal initializers); they become buffers
 * (V_PARAM with `buffer` set: saved and loaded with the parameters, updated by the training step,
 * never by the optimizer). The optional training-mode outputs running_mean/running_var are bound
 * to those buffers (the statistics as they are before the step's update).
 * LayerNormalization and InstanceNormalization are expanded into ReduceMean/Sub/Mul/Add/Sqrt/Div
 * (ir/norm.h). Scalar attributes are written explicitly (IR normal form); Clip's bounds, inputs
 * since opset 11, must be known at compile time.
 */
#include <float.h>
#include <string.h>

#include "frontend/onnx_imp.h"
#include "ir/norm.h"

static const char *label(NodeCx *x) { return onnx_node_label(x->c, x->n); }

static Value *input(NodeCx *x, int i, int optional)
{
	if (i >= x->nin || !x->in[i]) {
		if (!optional)
			onnx_fail(x->c, "%s: input %d is missing", x->who, i);
		return NULL;
	}
	return onnx_value(x->c, x->in[i], x->who);
}

static int bind(NodeCx *x, int i, Value *v)
{
	if (!v)
		return x->c->g->err[0] ? onnx_fail(x->c, "%s", x->c->g->err) : -1;
	onnx_bind(x, i, v);
	return 0;
}

/* a one-element tensor known at compile time */
static int const_scalar(NodeCx *x, int i, double *out)
{
	OTensor *t = i < x->nin ? x->in[i] : NULL;
	const Value *v = t ? t->v : NULL;
	const void *data = t && t->host ? t->data : v && (v->kind == V_CONST || v->kind == V_PARAM) ? v->data : NULL;
	DType dt = t && t->host ? t->dt : v ? v->dt : DT_F32;
	if (t && t->host && t->iv && ir_numel(&t->shape) == 1 && !(t->sym && t->sym[0])) {
		*out = (double)t->iv[0];
		return 0;
	}
	if (!data || (dt != DT_F32 && dt != DT_F64) || ir_numel(t->host ? &t->shape : &v->shape) != 1)
		return onnx_fail(x->c, "%s: input %d ('%s') must be a scalar known at compile time (a "
				 "constant or an initializer)", x->who, i, t ? t->name : "");
	*out = dt == DT_F32 ? *(const float *)data : *(const double *)data;
	return 0;
}

/* one IR node on input 0 with float attributes names[i] = vals[i] */
static int emit_act(NodeCx *x, Op op, int nattr, const char *const *names, const double *vals)
{
	Value *v = input(x, 0, 0);
	if (!v)
		return -1;
	Node *n = ir_begin(x->c->g, op, label(x), 1, &v);
	for (int i = 0; i < nattr; i++)
		ir_set_f(x->c->g, n, names[i], vals[i]);
	return bind(x, 0, ir_finish(x->c->g, n) == 0 ? n->out[0] : NULL);
}

int onnx_imp_clip(NodeCx *x)
{
	static const char *const names[] = {"lo", "hi"};
	double b[2] = {-FLT_MAX, FLT_MAX};
	if (x->c->opset < 11) {
		if (onnx_attr_float(x, "min", b[0], &b[0]) < 0 || onnx_attr_float(x, "max", b[1], &b[1]) < 0)
			return -1;
	} else {
		for (int i = 1; i <= 2; i++)
			if (i < x->nin && x->in[i] && const_scalar(x, i, &b[i - 1]) < 0)
				return -1;
	}
	return emit_act(x, OP_CLIP, 2, names, b);
}

int onnx_imp_gelu(NodeCx *x)
{
	const Onnx__AttributeProto *a = onnx_attr(x->n, "approximate");
	char s[16] = "none";
	if (a && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
		return onnx_fail(x->c, "%s: attribute approximate must be a string", x->who);
	if (a)
		snprintf(s, sizeof s, "%.*s", (int)a->s.len, (const char *)a->s.data);
	if (strcmp(s, "none") != 0 && strcmp(s, "tanh") != 0)
		return onnx_fail(x->c, "%s: approximate='%s' is not supported (none or tanh)", x->who, s);
	return emit_act(x, strcmp(s, "tanh") == 0 ? OP_GELU_TANH : OP_GELU, 0, NULL, NULL);
}

int onnx_imp_hard_sigmoid(NodeCx *x)
{
	static const char *const names[] = {"alpha", "beta"};
	double v[2];
	if (onnx_attr_float(x, "alpha", 0.2, &v[0]) < 0 || onnx_attr_float(x, "beta", 0.5, &v[1]) < 0)
		return -1;
	return emit_act(x, OP_HARD_SIGMOID, 2, names, v);
}

int onnx_imp_elu_selu(NodeCx *x)
{
	static const char *const names[] = {"alpha", "gamma"};
	int selu = strcmp(x->n->op_type, "Selu") == 0;
	double v[2];
	if (onnx_attr_float(x, "alpha", selu ? 1.67326319217681884765625 : 1.0, &v[0]) < 0 ||
	    onnx_attr_float(x, "gamma", 1.05070102214813232421875, &v[1]) < 0)
		return -1;
	return emit_act(x, selu ? OP_SELU : OP_ELU, selu ? 2 : 1, names, v);
}

/* Pow(x, c) with a compile-time scalar exponent (what decomposed normalizations use) */
int onnx_imp_pow(NodeCx *x)
{
	static const char *const names[] = {"alpha"};
	double p;
	if (x->nin < 2 || !x->in[1] || (!x->in[1]->host && !(x->in[1]->v && x->in[1]->v->data)))
		return onnx_fail(x->c, "%s: only a constant scalar exponent is supported", x->who);
	if (const_scalar(x, 1, &p) < 0)
		return -1;
	return emit_act(x, OP_POW_SCALAR, 1, names, &p);
}

/* ---- normalizations ---- */

/* Input i must be a float initializer, or an Identity of one (exporters share equal initializers:
 * running_var = Identity(weight) when both are ones); it becomes a buffer of its own, named by
 * the input's ONNX name. */
static Value *running_stat(NodeCx *x, int i)
{
	Value *v = input(x, i, 0), *src = v;
	while (src && src->def && src->def->op == OP_IDENTITY)
		src = src->def->in[0];
	if (v && v->kind == V_PARAM) {
		v->buffer = 1;
		return v;
	}
	if (!src || !(src->kind == V_PARAM || src->kind == V_CONST) || !src->data) {
		if (v)
			onnx_fail(x->c, "%s: the running %s '%s' must be a float initializer", x->who,
				  i == 3 ? "mean" : "variance", x->n->input[i]);
		return NULL;
	}
	Value *b = ir_value(x->c->g, V_PARAM, x->n->input[i], src->dt, src->shape, src->data);
	b->buffer = 1;
	x->in[i]->v = b;
	return b;
}

int onnx_imp_batchnorm(NodeCx *x)
{
	double eps, mom;
	Value *in[5];
	if (onnx_attr_float(x, "epsilon", 1e-5, &eps) < 0 || onnx_attr_float(x, "momentum", 0.9, &mom) < 0)
		return -1;
	for (int i = 0; i < 3; i++)
		if (!(in[i] = input(x, i, 0)))
			return -1;
	if (!(in[3] = running_stat(x, 3)) || !(in[4] = running_stat(x, 4)))
		return -1;
	Node *n = ir_begin(x->c->g, OP_BATCH_NORM, label(x), 5, in);
	ir_set_f(x->c->g, n, "epsilon", eps);
	ir_set_f(x->c->g, n, "momentum", mom);
	if (bind(x, 0, ir_finish(x->c->g, n) == 0 ? n->out[0] : NULL) < 0)
		return -1;
	onnx_bind(x, 1, in[3]);
	onnx_bind(x, 2, in[4]);
	return 0;
}

int onnx_imp_layernorm(NodeCx *x)
{
	int64_t axis;
	double eps;
	Value *v = input(x, 0, 0), *scale = input(x, 1, 0), *bias = input(x, 2, 1), *mean = NULL, *inv = NULL;
	if (!v || !scale || (x->nin > 2 && x->in[2] && !bias))
		return -1;
	if (onnx_attr_int(x, "axis", -1, &axis) < 0 || onnx_attr_float(x, "epsilon", 1e-5, &eps) < 0 ||
	    onnx_axis(x, axis, v->shape.rank, &axis) < 0)
		return -1;
	int want_stats = x->n->n_output > 1;
	Value *y = ir_layer_norm(x->c->g, label(x), v, scale, bias, (int)axis, eps, want_stats ? &mean : NULL,
				 want_stats ? &inv : NULL);
	if (bind(x, 0, y) < 0)
		return -1;
	onnx_bind(x, 1, mean);
	onnx_bind(x, 2, inv);
	return 0;
}

int onnx_imp_instancenorm(NodeCx *x)
{
	double eps;
	Value *v = input(x, 0, 0), *scale = input(x, 1, 0), *bias = input(x, 2, 0);
	if (!v || !scale || !bias || onnx_attr_float(x, "epsilon", 1e-5, &eps) < 0)
		return -1;
	return bind(x, 0, ir_instance_norm(x->c->g, label(x), v, scale, bias, eps));
}
