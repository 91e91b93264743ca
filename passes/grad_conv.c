/*
 * grad_conv.c — gradient rules of the convolution family (the `grad` column entries conv,
 * conv_grad_input, max_pool, average_pool and pad of ops.def; see passes/grad.h).
 *
 * Conv(x, w, b):        dx = ConvGradInput(dy, w), dw = ConvGradWeight(dy, x), db = ReduceSum(dy)
 *                       over every axis but the channel.
 * ConvGradInput(a, w):  linear in a and in w (it is also ONNX ConvTranspose), so
 *                       da = Conv(dz, w) and dw = ConvGradWeight(a, dz) — the same window.
 * MaxPool:              MaxPoolGrad(dy, indices) routes dy to each window's argmax.
 * AveragePool:          AveragePoolGrad(dy) spreads dy / count over each window.
 * Pad:                  PadGrad(dy) sums dy back onto the elements Pad copied from.
 * The gradient ops take the forward node's window attributes verbatim plus the forward input's
 * shape, so their shape rules re-check the geometry. ConvGradWeight and the *Grad ops are not
 * differentiated further (grad none): dlcc takes first derivatives only.
 */
#include <string.h>

#include "passes/grad.h"

static Value *fin(Graph *g, Node *n) { return ir_finish(g, n) < 0 ? NULL : n->out[0]; }

static void copy_attrs(Graph *g, Node *to, const Node *from)
{
	for (int i = 0; i < from->nattr; i++) {
		const Attr *a = &from->attr[i];
		switch (a->kind) {
		case A_INT: ir_set_i(g, to, a->name, a->i); break;
		case A_FLOAT: ir_set_f(g, to, a->name, a->f); break;
		case A_INTS: ir_set_ints(g, to, a->name, a->n, a->ints); break;
		case A_FLOATS: ir_set_floats(g, to, a->name, a->n, a->floats); break;
		case A_STRING: ir_set_s(g, to, a->name, a->s); break;
		}
	}
}

/* op(in...) with the window attributes of `like` and, when s is given, shape = s */
static Value *windowed(Graph *g, Op op, const Node *like, int nin, Value **in, const Shape *s)
{
	for (int i = 0; i < nin; i++)
		if (!in[i])
			return NULL;
	Node *n = ir_begin(g, op, NULL, nin, in);
	copy_attrs(g, n, like);
	if (s)
		ir_set_ints(g, n, "shape", s->rank, s->d);
	return fin(g, n);
}

static int done(Node *n, const char *need, Value **din)
{
	for (int j = 0; j < n->nin; j++)
		if (need[j] && !din[j])
			return -1;
	return 0;
}

/* dy summed over every axis but 1: [N,M,..] -> [M] */
static Value *channel_sum(Graph *g, Value *dy)
{
	int64_t axes[IR_MAX_RANK];
	int na = 0;
	for (int i = 0; i < dy->shape.rank; i++)
		if (i != 1)
			axes[na++] = i;
	Node *n = ir_begin(g, OP_REDUCE_SUM, NULL, 1, &dy);
	ir_set_ints(g, n, "axes", na, axes);
	ir_set_i(g, n, "keepdims", 0);
	return fin(g, n);
}

int grad_conv(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *dy = dout[0], *x = n->in[0], *w = n->in[1];
	if (need[0])
		din[0] = windowed(g, OP_CONV_GRAD_INPUT, n, 2, (Value *[]){dy, w}, &x->shape);
	if (need[1])
		din[1] = windowed(g, OP_CONV_GRAD_WEIGHT, n, 2, (Value *[]){dy, x}, &w->shape);
	if (n->nin == 3 && need[2])
		din[2] = channel_sum(g, dy);
	return done(n, need, din);
}

/* z = ConvGradInput(a, w): da = Conv(dz, w), dw = ConvGradWeight(a, dz) */
int grad_conv_grad_input(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	Value *dz = dout[0], *a = n->in[0], *w = n->in[1];
	if (need[0]) {
		Node *c = ir_begin(g, OP_CONV, NULL, 2, (Value *[]){dz, w});
		for (int i = 0; i < n->nattr; i++)
			if (strcmp(n->attr[i].name, "shape") != 0)
				copy_attrs(g, c, &(Node){.nattr = 1, .attr = &n->attr[i]});
		din[0] = fin(g, c);
	}
	if (need[1])
		din[1] = windowed(g, OP_CONV_GRAD_WEIGHT, n, 2, (Value *[]){a, dz}, &w->shape);
	return done(n, need, din);
}

int grad_max_pool(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = windowed(g, OP_MAX_POOL_GRAD, n, 2, (Value *[]){dout[0], n->out[1]}, &n->in[0]->shape);
	return done(n, need, din);
}

int grad_average_pool(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = windowed(g, OP_AVERAGE_POOL_GRAD, n, 1, (Value *[]){dout[0]}, &n->in[0]->shape);
	return done(n, need, din);
}

int grad_pad(Graph *g, Node *n, Value *const *dout, const char *need, Value **din)
{
	din[0] = windowed(g, OP_PAD_GRAD, n, 1, (Value *[]){dout[0]}, NULL);
	return done(n, need, din);
}
