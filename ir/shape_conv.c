/*
 * shape_conv.c — shape rules of the convolution family (rows of the conv group in ops.def):
 * Conv, ConvGradInput, ConvGradWeight, MaxPool/AveragePool and their gradients, Pad/PadGrad.
 *
 * Each rule checks what the kernels rely on and names the node when it fails: 1-D or 2-D
 * operands ([N,C,L] / [N,C,H,W]), constant channel and spatial extents (only the batch axis may
 * be N), channels divisible by the group, a kernel_shape equal to the weight's, and for the
 * gradient ops that the forward geometry maps their `shape` attribute onto dy exactly — so a
 * gradient op can never disagree with the forward op it came from. Im2Col and Col2Im (the
 * column form of passes/im2col.c) share the window checks.
 */
#include <string.h>

#include "ir/conv.h"

static const char *nm(const Node *n) { return n->name ? n->name : "?"; }

static int bad(Graph *g, Node *n, const char *what)
{
	return ir_error(g, "node '%s' (%s): %s", nm(n), ir_ops[n->op].name, what);
}

/* x is [batch-or-const, C, spatial..] with rank 3 or 4 and constant non-batch axes */
static int check_nchw(Graph *g, Node *n, const Shape *x, const char *what)
{
	char msg[200];
	snprintf(msg, sizeof msg, "%s must be [N,C,L] or [N,C,H,W] with constant channel and spatial extents", what);
	if (x->rank != 3 && x->rank != 4)
		return bad(g, n, msg);
	for (int i = 1; i < x->rank; i++)
		if (x->d[i] < 0)
			return bad(g, n, msg);
	return 0;
}

/* x and w (dy and w, dy and x) are floats of one dtype; a bias has the result's dtype */
static int check_float(Graph *g, Node *n)
{
	for (int i = 0; i < n->nin; i++)
		if (!ir_dt_is_float(n->in[i]->dt) || n->in[i]->dt != (i < 2 ? n->in[0]->dt : ir_dt_acc(n->in[0]->dt)))
			return bad(g, n, "operands must be floats of one dtype (a bias: the result's)");
	return 0;
}

/* the spatial output of x under the node's geometry into out (rank of x) */
static int window_out(Graph *g, Node *n, const Shape *x, ConvGeom *cg, Shape *out)
{
	if (ir_conv_geom(g, n, x->rank - 2, cg) < 0)
		return -1;
	*out = *x;
	for (int a = 2 - cg->sp; a < 2; a++) {
		int64_t in = x->d[x->rank - 2 + a], o = ir_conv_out(cg, a, in);
		if (o < 1)
			return bad(g, n, "the window is larger than the padded input");
		out->d[x->rank - 2 + a] = o;
	}
	return 0;
}

/* w [M, C/group, k..] agrees with x's channels and the kernel_shape */
static int check_weight(Graph *g, Node *n, const ConvGeom *cg, const Shape *w, int64_t c, int64_t m)
{
	if (w->rank != cg->sp + 2 || w->d[0] != m || w->d[1] * cg->group != c || m % cg->group)
		return bad(g, n, "the weight must be [M, C/group, kernel..] with M divisible by group");
	for (int a = 2 - cg->sp; a < 2; a++)
		if (w->d[w->rank - 2 + a] != cg->k[a])
			return bad(g, n, "kernel_shape differs from the weight's spatial extents");
	return 0;
}

int shape_conv(Graph *g, Node *n)
{
	const Shape *x = &n->in[0]->shape, *w = &n->in[1]->shape;
	ConvGeom cg;
	Shape y;
	if (check_float(g, n) < 0 || check_nchw(g, n, x, "x") < 0 || window_out(g, n, x, &cg, &y) < 0 ||
	    check_weight(g, n, &cg, w, x->d[1], w->d[0]) < 0)
		return -1;
	if (n->nin == 3 && (n->in[2]->shape.rank != 1 || n->in[2]->shape.d[0] != w->d[0]))
		return bad(g, n, "the bias must be [M]");
	y.d[1] = w->d[0];
	n->out[0]->dt = ir_dt_acc(n->in[0]->dt);
	n->out[0]->shape = y;
	return 0;
}

/* the `shape` attribute of a gradient op (the forward input's shape) */
static int shape_attr(Graph *g, Node *n, Shape *s)
{
	int cnt;
	const int64_t *d = ir_attr_ints(n, "shape", &cnt);
	if (!d || cnt < 1 || cnt > IR_MAX_RANK)
		return bad(g, n, "attribute shape is missing");
	*s = ir_shape(cnt, d);
	return 0;
}

/* x (the forward input) maps onto dy under the node's geometry, channels aside */
static int check_maps(Graph *g, Node *n, const Shape *x, const Shape *dy, ConvGeom *cg)
{
	Shape y;
	if (check_nchw(g, n, x, "the forward input") < 0 || window_out(g, n, x, cg, &y) < 0)
		return -1;
	y.d[1] = dy->d[1];
	if (!ir_shape_eq(&y, dy))
		return bad(g, n, "dy does not have the forward output's shape");
	return 0;
}

int shape_conv_grad_input(Graph *g, Node *n)
{
	const Shape *dy = &n->in[0]->shape, *w = &n->in[1]->shape;
	Shape x;
	ConvGeom cg;
	if (check_float(g, n) < 0 || shape_attr(g, n, &x) < 0 || check_maps(g, n, &x, dy, &cg) < 0 ||
	    check_weight(g, n, &cg, w, x.d[1], dy->d[1]) < 0)
		return -1;
	n->out[0]->dt = ir_dt_acc(n->in[0]->dt);
	n->out[0]->shape = x;
	return 0;
}

int shape_conv_grad_weight(Graph *g, Node *n)
{
	const Shape *dy = &n->in[0]->shape, *x = &n->in[1]->shape;
	Shape w;
	ConvGeom cg;
	if (check_float(g, n) < 0 || shape_attr(g, n, &w) < 0 || check_maps(g, n, x, dy, &cg) < 0 ||
	    check_weight(g, n, &cg, &w, x->d[1], dy->d[1]) < 0)
		return -1;
	n->out[0]->dt = ir_dt_acc(n->in[0]->dt);
	n->out[0]->shape = w;
	return 0;
}

int shape_pool(Graph *g, Node *n)
{
	const Shape *x = &n->in[0]->shape;
	ConvGeom cg;
	Shape y;
	if (check_float(g, n) < 0 || check_nchw(g, n, x, "x") < 0 || window_out(g, n, x, &cg, &y) < 0)
		return -1;
	for (int i = 0; i < n->nout; i++) {
		n->out[i]->dt = i ? DT_I64 : n->in[0]->dt;
		n->out[i]->shape = y;
	}
	return 0;
}

int shape_pool_grad(Graph *g, Node *n)
{
	const Shape *dy = &n->in[0]->shape;
	Shape x;
	ConvGeom cg;
	if (!ir_dt_is_float(n->in[0]->dt) || shape_attr(g, n, &x) < 0 || check_maps(g, n, &x, dy, &cg) < 0)
		return -1;
	if (n->nin == 2 && (n->in[1]->dt != DT_I64 || !ir_shape_eq(&n->in[1]->shape, dy)))
		return bad(g, n, "indices must be int64 shaped like dy");
	n->out[0]->dt = n->in[0]->dt;
	n->out[0]->shape = x;
	return 0;
}

/* ---- Im2Col / Col2Im (the columns of passes/im2col.c) ---- */

/* the "image" column shape of x [N, C, spatial..]: [N, group, C/group * taps, positions] */
static int columns_of(Graph *g, Node *n, const Shape *x, Shape *cols)
{
	ConvGeom cg;
	Shape y;
	if (check_nchw(g, n, x, "x") < 0 || window_out(g, n, x, &cg, &y) < 0)
		return -1;
	if (x->d[1] % cg.group)
		return bad(g, n, "the channels must be divisible by group");
	int64_t oh, ow;
	ir_conv_hw(&y, &oh, &ow);
	*cols = ir_shape(4, (int64_t[]){x->d[0], cg.group, x->d[1] / cg.group * cg.k[0] * cg.k[1], oh * ow});
	return 0;
}

static int layout_pixel(Graph *g, Node *n, int *pixel)
{
	const Attr *l = ir_attr(n, "layout");
	if (l && (l->kind != A_STRING || (strcmp(l->s, "image") && strcmp(l->s, "pixel"))))
		return bad(g, n, "layout must be \"image\" or \"pixel\"");
	*pixel = l && !strcmp(l->s, "pixel");
	return 0;
}

int shape_im2col(Graph *g, Node *n)
{
	Shape c;
	int pixel = 0;
	if (!ir_dt_is_float(n->in[0]->dt) || layout_pixel(g, n, &pixel) < 0 ||
	    columns_of(g, n, &n->in[0]->shape, &c) < 0)
		return !ir_dt_is_float(n->in[0]->dt) ? bad(g, n, "x must be a float tensor") : -1;
	if (pixel) /* [group, N·P, K]; a batch N·P is stored as -P (ir/ir.h) */
		c = ir_shape(3, (int64_t[]){c.d[1], c.d[0] * c.d[3], c.d[2]});
	n->out[0]->dt = n->in[0]->dt;
	n->out[0]->shape = c;
	return 0;
}

int shape_col2im(Graph *g, Node *n)
{
	Shape x, c;
	if (!ir_dt_is_float(n->in[0]->dt) || shape_attr(g, n, &x) < 0 || columns_of(g, n, &x, &c) < 0)
		return -1;
	if (!ir_shape_eq(&c, &n->in[0]->shape))
		return bad(g, n, "cols must be [N, group, C/group * taps, positions] of the shape attribute");
	n->out[0]->dt = n->in[0]->dt;
	n->out[0]->shape = x;
	return 0;
}

/* pads [2r] and mode; out = in + sign * (begin + end) per axis */
static int pad_shape(Graph *g, Node *n, int sign)
{
	const Shape *x = &n->in[0]->shape;
	int cnt;
	const int64_t *p = ir_attr_ints(n, "pads", &cnt);
	const Attr *mode = ir_attr(n, "mode");
	if (!p || cnt != 2 * x->rank)
		return bad(g, n, "pads must list a begin and an end per axis");
	if (mode && (mode->kind != A_STRING || (strcmp(mode->s, "constant") && strcmp(mode->s, "reflect") &&
						 strcmp(mode->s, "edge"))))
		return bad(g, n, "mode must be constant, reflect or edge");
	if (!ir_dt_is_float(n->in[0]->dt))
		return bad(g, n, "only float tensors are padded");
	Shape y = *x;
	for (int i = 0; i < x->rank; i++) {
		int64_t t = p[i] + p[x->rank + i];
		if (x->d[i] < 0 && t != 0)
			return bad(g, n, "the batch axis cannot be padded");
		y.d[i] = x->d[i] < 0 ? x->d[i] : x->d[i] + sign * t;
		if (x->d[i] >= 0 && y.d[i] < 0)
			return bad(g, n, "negative pads remove more than the axis holds");
		if (sign > 0 && mode && strcmp(mode->s, "constant") && x->d[i] >= 0 &&
		    (x->d[i] == 0 || (!strcmp(mode->s, "reflect") && (p[i] >= x->d[i] || p[x->rank + i] >= x->d[i]))))
			return bad(g, n, "reflect pads must be shorter than the axis (edge needs a non-empty axis)");
	}
	n->out[0]->dt = n->in[0]->dt;
	n->out[0]->shape = y;
	return 0;
}

int shape_pad(Graph *g, Node *n) { return pad_shape(g, n, 1); }
int shape_pad_grad(Graph *g, Node *n) { return pad_shape(g, n, -1); }
