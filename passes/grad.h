/*
 * grad.h — private to passes/: the gradient-rule interface shared by autodiff.c (the reverse
 * sweep and the rule table built from ops.def), grad_rules.c (one grad_<rule> per `grad`
 * column entry) and mark_params.c (which asks whether a gradient flows through an op).
 *
 * A rule receives the forward node n, the gradients of its outputs (dout[k], NULL when output
 * k receives none) and need[j] (1 when input j wants a gradient: a float value on a path from a
 * parameter). It appends ordinary IR nodes and stores in din[j] a value with exactly the shape
 * and dtype of n->in[j] for every needed input, leaving the others NULL. It returns 0, or -1
 * with g->err set (a user error such as differentiating through a `none` op).
 */
#ifndef DLCC_GRAD_H
#define DLCC_GRAD_H

#include "ir/ir.h"

typedef int (*GradRule)(Graph *g, Node *n, Value *const *dout, const char *need, Value **din);

#define X(e, nm, onnx, mi, ma, no, shape, grad, ...) \
	int grad_##grad(Graph *g, Node *n, Value *const *dout, const char *need, Value **din);
#include "ir/ops.def"
#undef X

/* dy (a broadcast result) summed down to shape s (ReduceSum + Reshape); NULL in, NULL out */
Value *grad_sum_to(Graph *g, Value *dy, const Shape *s);

/* 1 when the op's rule lets a gradient through (its grad column is neither none nor zero). */
int grad_flows(Op op);

/* Reverse mode from g->loss with respect to any float graph values (params, inputs): grads[i]
 * = dloss/dwrt[i], a zero tensor when wrt[i] does not reach the loss. pass_autodiff is this
 * with wrt = g->params. Returns 0 or -1 with g->err. */
int grad_backward(Graph *g, int nwrt, Value *const *wrt, Value **grads);

#endif
