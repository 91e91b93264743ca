/*
 * norm.h — normalization and activation helpers shared by the frontend, the passes, the
 * interpreter and codegen (ir/norm.c).
 *
 * Attribute defaults: the activation rows of ops.def read scalar attributes (alpha, beta, gamma,
 * lo, hi) that the ONNX frontend always writes; ir_act_attr gives ONNX's default for a node
 * that lacks one (a hand-written or parsed graph), so the interpreter and the kernels agree.
 *
 * Normalization builders: LayerNormalization, InstanceNormalization and the training form of
 * BatchNormalization are not IR ops of their own: they are built from ReduceMean, Sub, Mul, Add,
 * Sqrt and Div, so that their gradients (through the statistics) come from the rules of those
 * ops and every piece already has a kernel. Each builder appends nodes to g and returns NULL
 * with g->err set when a shape rule fails.
 */
#ifndef DLCC_IR_NORM_H
#define DLCC_IR_NORM_H

#include "ir/ir.h"

/* the node's float attribute `name`, or the ONNX default of its op */
double ir_act_attr(const Node *n, const char *name);

/* Statistics of x over the sorted axes[0..naxes), keepdims shape: mean, x - mean, the biased
 * variance and sqrt(var + eps). Any of the out-pointers may be NULL except cen and std. */
typedef struct {
	Value *mean, *cen, *var, *std;
} NormStats;
int ir_norm_stats(Graph *g, const char *name, Value *x, int naxes, const int64_t *axes, double eps,
		  NormStats *st);

/* y = cen / std * scale + bias (scale/bias broadcast against x; NULL: none) */
Value *ir_norm_affine(Graph *g, const char *name, const NormStats *st, Value *scale, Value *bias);

/* LayerNormalization over axes [axis, rank): scale/bias shaped like those axes (or broadcastable
 * to them). mean_out/inv_out (may be NULL) receive Mean and 1/sqrt(var+eps) in keepdims form. */
Value *ir_layer_norm(Graph *g, const char *name, Value *x, Value *scale, Value *bias, int axis,
		     double eps, Value **mean_out, Value **inv_out);
/* InstanceNormalization: x [N,C,...], statistics over the spatial axes, scale/bias [C] */
Value *ir_instance_norm(Graph *g, const char *name, Value *x, Value *scale, Value *bias, double eps);
/* x reshaped for per-channel broadcasting against a rank-r tensor: [C] -> [C,1,...,1] */
Value *ir_channel_view(Graph *g, const char *name, Value *v, int rank);

#endif
