/*
 * onnx_conv.c — importing the ONNX convolution family (opsets 11–21): Conv, ConvTranspose,
 * MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Pad.
 *
 * Everything is brought into the IR normal form of ir/conv.h: explicit kernel_shape, strides,
 * dilations and pads (begins, then ends), group. auto_pad is resolved here against the input's
 * (constant) spatial extents: SAME_UPPER/SAME_LOWER give out = ceil(in / stride) with the odd
 * padding at the end / the begin, VALID gives no padding. ConvTranspose becomes ConvGradInput
 * (the gradient of the Conv with the same window, whose input shape is the transpose's output:
 * from output_shape, or stride·(in-1) + output_padding + dilation·(k-1) + 1 - pads), plus an Add
 * of the bias reshaped to [M,1,..]. GlobalAveragePool becomes ReduceMean over the spatial axes,
 * GlobalMaxPool a MaxPool whose window is the whole plane. Pad takes its pads (and axes, opset
 * 18) from constant inputs from opset 11 on, from attributes before; the constant value is a
 * compile-time scalar. Only 1-D and 2-D windows are accepted; anything else is one clear line.
 */
#include <string.h>

#include "frontend/onnx_imp.h"

typedef struct {
	int sp;
	int64_t k[2], s[2], d[2], p[4];
} Win;

static const char *label(NodeCx *x) { return onnx_node_label(x->c, x->n); }

/* a string attribute, dflt when absent */
static int attr_str(NodeCx *x, const char *name, const char *dflt, char *out, size_t len)
{
	const Onnx__AttributeProto *a = onnx_attr(x->n, name);
	snprintf(out, len, "%s", dflt);
	if (!a)
		return 0;
	if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
		return onnx_fail(x->c, "%s: attribute %s must be a string", x->who, name);
	snprintf(out, len, "%.*s", (int)a->s.len, (const char *)a->s.data);
	return 0;
}

/* ints attribute with exactly cnt entries (dflt for each when absent) */
static int attr_n(NodeCx *x, const char *name, int cnt, int64_t dflt, int64_t *out)
{
	int64_t *v;
	int n;
	if (onnx_attr_ints(x, name, &v, &n) < 0)
		return -1;
	if (n >= 0 && n != cnt)
		return onnx_fail(x->c, "%s: attribute %s has %d values, expected %d", x->who, name, n, cnt);
	for (int i = 0; i < cnt; i++)
		out[i] = n >= 0 ? v[i] : dflt;
	return 0;
}

static int check_spatial(NodeCx *x, const Value *v, int *sp)
{
	const Shape *s = &v->shape;
	*sp = s->rank - 2;
	if (*sp != 1 && *sp != 2)
		return onnx_fail(x->c, "%s: only 1-D and 2-D windows are supported (input has rank %d)", x->who, s->rank);
	for (int i = 1; i < s->rank; i++)
		if (s->d[i] < 0)
			return onnx_fail(x->c, "%s: channel and spatial extents must be constant", x->who);
	return 0;
}

/* pads for auto_pad SAME_UPPER / SAME_LOWER: out = ceil(in / s) */
static void same_pads(Win *w, const Shape *xs, int upper)
{
	for (int i = 0; i < w->sp; i++) {
		int64_t in = xs->d[2 + i], out = (in + w->s[i] - 1) / w->s[i];
		int64_t total = (out - 1) * w->s[i] + (w->k[i] - 1) * w->d[i] + 1 - in;
		total = total > 0 ? total : 0;
		w->p[i] = upper ? total / 2 : total - total / 2;
		w->p[w->sp + i] = total - w->p[i];
	}
}

/* strides, dilations, pads and auto_pad of a forward window over x (k already set) */
static int read_window(NodeCx *x, const Shape *xs, Win *w)
{
	char ap[32];
	if (attr_n(x, "strides", w->sp, 1, w->s) < 0 || attr_n(x, "dilations", w->sp, 1, w->d) < 0 ||
	    attr_n(x, "pads", 2 * w->sp, 0, w->p) < 0 || attr_str(x, "auto_pad", "NOTSET", ap, sizeof ap) < 0)
		return -1;
	for (int i = 0; i < w->sp; i++)
		if (w->s[i] < 1 || w->d[i] < 1 || w->k[i] < 1)
			return onnx_fail(x->c, "%s: kernel, strides and dilations must be >= 1", x->who);
	if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER"))
		same_pads(w, xs, ap[5] == 'U');
	else if (!strcmp(ap, "VALID"))
		memset(w->p, 0, sizeof w->p);
	else if (strcmp(ap, "NOTSET") != 0)
		return onnx_fail(x->c, "%s: auto_pad '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", x->who, ap);
	return 0;
}

static Node *window_node(NodeCx *x, Op op, int nin, Value **in, const Win *w, const char *suffix)
{
	char nm[300];
	snprintf(nm, sizeof nm, "%s%s", label(x), suffix);
	Graph *g = x->c->g;
	Node *nd = ir_begin(g, op, ir_strdup(g, nm), nin, in);
	ir_set_ints(g, nd, "kernel_shape", w->sp, w->k);
	ir_set_ints(g, nd, "strides", w->sp, w->s);
	ir_set_ints(g, nd, "dilations", w->sp, w->d);
	ir_set_ints(g, nd, "pads", 2 * w->sp, w->p);
	return nd;
}

/* kernel_shape from the attribute, else from the weight's spatial extents (w may be NULL) */
static int kernel(NodeCx *x, const Value *w, Win *win)
{
	int64_t dflt[2] = {0, 0};
	for (int i = 0; w && i < win->sp; i++)
		dflt[i] = w->shape.d[2 + i];
	int64_t *v;
	int n;
	if (onnx_attr_ints(x, "kernel_shape", &v, &n) < 0)
		return -1;
	if (n < 0 && !w)
		return onnx_fail(x->c, "%s: attribute kernel_shape is required", x->who);
	if (n >= 0 && n != win->sp)
		return onnx_fail(x->c, "%s: kernel_shape has %d values, expected %d", x->who, n, win->sp);
	for (int i = 0; i < win->sp; i++)
		win->k[i] = n >= 0 ? v[i] : dflt[i];
	return 0;
}

/* ---- Conv, ConvTranspose ---- */

int onnx_imp_conv(NodeCx *x)
{
	Value *in[3] = {onnx_input(x, 0), onnx_input(x, 1), NULL};
	Win w = {0};
	int64_t group;
	if (!in[0] || !in[1] || check_spatial(x, in[0], &w.sp) < 0)
		return -1;
	if (x->nin >= 3 && x->in[2] && !(in[2] = onnx_input(x, 2)))
		return -1;
	if (kernel(x, in[1], &w) < 0 || read_window(x, &in[0]->shape, &w) < 0 ||
	    onnx_attr_int(x, "group", 1, &group) < 0)
		return -1;
	Node *nd = window_node(x, OP_CONV, in[2] ? 3 : 2, in, &w, "");
	ir_set_i(x->c->g, nd, "group", group);
	Value *y = onnx_finish(x, nd);
	return y && onnx_bind(x, 0, y) ? 0 : -1;
}

/* the transpose's output extents (IR dims) and its pads, per the ONNX ConvTranspose rules */
static int transpose_geometry(NodeCx *x, const Value *xv, Win *w, int64_t *out)
{
	int64_t op[2], os[IR_MAX_RANK], *v;
	int n;
	char ap[32];
	if (attr_n(x, "output_padding", w->sp, 0, op) < 0 || onnx_attr_ints(x, "output_shape", &v, &n) < 0 ||
	    attr_str(x, "auto_pad", "NOTSET", ap, sizeof ap) < 0)
		return -1;
	int same = !strncmp(ap, "SAME", 4), upper = !strcmp(ap, "SAME_UPPER");
	if (n >= 0 && n < w->sp)
		return onnx_fail(x->c, "%s: output_shape must list the %d spatial extents", x->who, w->sp);
	for (int i = 0; i < w->sp; i++) {
		int64_t in = xv->shape.d[2 + i], full = w->s[i] * (in - 1) + op[i] + (w->k[i] - 1) * w->d[i] + 1;
		if (n >= 0 || same) {
			os[i] = n >= 0 ? v[n - w->sp + i] : in * w->s[i];
			int64_t total = full - os[i];
			/* the spec's total/2 is a floor: a negative total (output_shape larger than the
			 * full result) extends the end, as output_padding does */
			int64_t half = total >= 0 ? total / 2 : -((1 - total) / 2);
			w->p[i] = upper ? half : total - half;
			w->p[w->sp + i] = total - w->p[i];
		} else if (!strcmp(ap, "VALID")) {
			memset(w->p, 0, sizeof w->p);
		}
		out[i] = full - w->p[i] - w->p[w->sp + i];
		if (out[i] < 1)
			return onnx_fail(x->c, "%s: the output would have extent %lld", x->who, (long long)out[i]);
	}
	return 0;
}

/* y + b reshaped to [M, 1, ..] */
static Value *add_bias(NodeCx *x, Value *y, Value *b)
{
	Graph *g = x->c->g;
	int64_t d[IR_MAX_RANK] = {b->shape.d[0], 1, 1};
	Node *r = ir_begin(g, OP_RESHAPE, NULL, 1, &b);
	ir_set_ints(g, r, "shape", y->shape.rank - 1, d);
	Value *br = onnx_finish(x, r);
	return br ? onnx_finish(x, ir_begin(g, OP_ADD, ir_strdup(g, label(x)), 2, (Value *[]){y, br})) : NULL;
}

int onnx_imp_conv_transpose(NodeCx *x)
{
	Value *in[2] = {onnx_input(x, 0), onnx_input(x, 1)}, *b = NULL;
	Win w = {0};
	int64_t group, out[2];
	if (!in[0] || !in[1] || check_spatial(x, in[0], &w.sp) < 0)
		return -1;
	if (x->nin >= 3 && x->in[2] && !(b = onnx_input(x, 2)))
		return -1;
	if (in[1]->shape.rank != w.sp + 2 || onnx_attr_int(x, "group", 1, &group) < 0 || group < 1)
		return onnx_fail(x->c, "%s: the weight must be [C, M/group, kernel..] and group >= 1", x->who);
	if (kernel(x, in[1], &w) < 0 || read_window(x, &in[0]->shape, &w) < 0 ||
	    transpose_geometry(x, in[0], &w, out) < 0)
		return -1;
	Shape ys = in[0]->shape;
	ys.d[1] = in[1]->shape.d[1] * group;
	for (int i = 0; i < w.sp; i++)
		ys.d[2 + i] = out[i];
	Node *nd = window_node(x, OP_CONV_GRAD_INPUT, 2, in, &w, b ? "/transpose" : "");
	ir_set_i(x->c->g, nd, "group", group);
	ir_set_ints(x->c->g, nd, "shape", ys.rank, ys.d);
	Value *y = onnx_finish(x, nd);
	if (y && b)
		y = add_bias(x, y, b);
	return y && onnx_bind(x, 0, y) ? 0 : -1;
}

/* ---- pools ---- */

static int pool(NodeCx *x, Op op)
{
	Value *v = onnx_input(x, 0);
	Win w = {0};
	int64_t ceil_mode, cip = 0, order;
	if (!v || check_spatial(x, v, &w.sp) < 0 || kernel(x, NULL, &w) < 0 ||
	    read_window(x, &v->shape, &w) < 0 || onnx_attr_int(x, "ceil_mode", 0, &ceil_mode) < 0 ||
	    onnx_attr_int(x, "storage_order", 0, &order) < 0 ||
	    (op == OP_AVERAGE_POOL && onnx_attr_int(x, "count_include_pad", 0, &cip) < 0))
		return -1;
	if (order != 0)
		return onnx_fail(x->c, "%s: storage_order=%lld is not supported (only 0, row major)", x->who, (long long)order);
	Node *nd = window_node(x, op, 1, &v, &w, "");
	ir_set_i(x->c->g, nd, "ceil_mode", ceil_mode != 0);
	if (op == OP_AVERAGE_POOL)
		ir_set_i(x->c->g, nd, "count_include_pad", cip != 0);
	Value *y = onnx_finish(x, nd);
	if (!y || !onnx_bind(x, 0, y))
		return -1;
	if (op == OP_MAX_POOL && x->n->n_output > 1 && x->n->output[1][0] && !onnx_bind(x, 1, nd->out[1]))
		return -1;
	return 0;
}

int onnx_imp_max_pool(NodeCx *x) { return pool(x, OP_MAX_POOL); }
int onnx_imp_average_pool(NodeCx *x) { return pool(x, OP_AVERAGE_POOL); }

int onnx_imp_global_pool(NodeCx *x)
{
	Value *v = onnx_input(x, 0);
	Win w = {0};
	if (!v || check_spatial(x, v, &w.sp) < 0)
		return -1;
	Graph *g = x->c->g;
	Node *nd;
	if (!strcmp(x->n->op_type, "GlobalAveragePool")) {
		nd = ir_begin(g, OP_REDUCE_MEAN, ir_strdup(g, label(x)), 1, &v);
		ir_set_ints(g, nd, "axes", w.sp, (int64_t[]){2, 3});
		ir_set_i(g, nd, "keepdims", 1);
	} else {
		for (int i = 0; i < w.sp; i++) {
			w.k[i] = v->shape.d[2 + i];
			w.s[i] = w.d[i] = 1;
		}
		nd = window_node(x, OP_MAX_POOL, 1, &v, &w, "");
		ir_set_i(g, nd, "ceil_mode", 0);
	}
	Value *y = onnx_finish(x, nd);
	return y && onnx_bind(x, 0, y) ? 0 : -1;
}

/* ---- Pad ---- */

static int pad_value(NodeCx *x, double *val)
{
	OTensor *t = x->nin >= 3 ? x->in[2] : NULL;
	*val = 0;
	if (!t)
		return 0;
	const void *data = t->host ? t->data : t->v && t->v->data ? t->v->data : NULL; /* an initializer */
	DType dt = t->host ? t->dt : t->v ? t->v->dt : t->dt;
	if (!t->iv && !data)
		return onnx_fail(x->c, "%s: constant_value must be a compile-time constant", x->who);
	if (t->iv)
		*val = (double)t->iv[0];
	else if (dt == DT_F32)
		*val = ((const float *)data)[0];
	else if (dt == DT_F64)
		*val = ((const double *)data)[0];
	else
		return onnx_fail(x->c, "%s: constant_value of type %s is not supported", x->who, ir_dt_name(dt));
	return 0;
}

/* pads [2r] from the attribute (opset < 11) or the constant inputs pads and axes (>= 11, 18) */
static int pad_list(NodeCx *x, int rank, int64_t *pads)
{
	int64_t *p, *ax = NULL;
	int np, na = -1;
	if (x->c->opset < 11) {
		if (onnx_attr_ints(x, "pads", &p, &np) < 0)
			return -1;
	} else if (x->nin < 2 || !x->in[1] || onnx_const_ints(x->c, x->in[1], x->who, "pads", &p, &np) < 0) {
		return x->nin < 2 || !x->in[1] ? onnx_fail(x->c, "%s: input pads is missing", x->who) : -1;
	}
	if (x->nin >= 4 && x->in[3] && onnx_const_ints(x->c, x->in[3], x->who, "axes", &ax, &na) < 0)
		return -1;
	int cnt = na >= 0 ? na : rank;
	if (np != 2 * cnt)
		return onnx_fail(x->c, "%s: pads has %d values, expected %d", x->who, np, 2 * cnt);
	memset(pads, 0, 2 * rank * sizeof *pads);
	for (int i = 0; i < cnt; i++) {
		int64_t a = ax ? ax[i] : i;
		if (ax && onnx_axis(x, a, rank, &a) < 0)
			return -1;
		pads[a] = p[i];
		pads[rank + a] = p[cnt + i];
	}
	return 0;
}

int onnx_imp_pad(NodeCx *x)
{
	Value *v = onnx_input(x, 0);
	int64_t pads[2 * IR_MAX_RANK];
	double val;
	char mode[32];
	if (!v || pad_list(x, v->shape.rank, pads) < 0 || attr_str(x, "mode", "constant", mode, sizeof mode) < 0)
		return -1;
	if (x->c->opset < 11 ? onnx_attr_float(x, "value", 0.0, &val) < 0 : pad_value(x, &val) < 0)
		return -1;
	if (strcmp(mode, "constant") && strcmp(mode, "reflect") && strcmp(mode, "edge"))
		return onnx_fail(x->c, "%s: mode '%s' is not supported (constant, reflect, edge)", x->who, mode);
	Graph *g = x->c->g;
	Node *nd = ir_begin(g, OP_PAD, ir_strdup(g, label(x)), 1, &v);
	ir_set_ints(g, nd, "pads", 2 * v->shape.rank, pads);
	ir_set_s(g, nd, "mode", mode);
	ir_set_f(g, nd, "value", val);
	Value *y = onnx_finish(x, nd);
	return y && onnx_bind(x, 0, y) ? 0 : -1;
}
