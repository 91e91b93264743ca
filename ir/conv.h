/*
 * conv.h — the window geometry shared by the convolution family (Conv, ConvGradInput,
 * ConvGradWeight, MaxPool, AveragePool and their gradients) in the shape rules, the
 * interpreter, the gradient rules and the kernels.
 *
 * IR normal form of these ops' attributes (the ONNX frontend resolves auto_pad, defaults and
 * ConvTranspose's output_shape into it): kernel_shape [S], strides [S], dilations [S], pads [2S]
 * (all begins, then all ends; explicit numbers), group (convolutions), ceil_mode and
 * count_include_pad (pools), with S = 1 or 2 spatial axes. A 1-D op is handled as a 2-D one whose
 * first spatial axis has extent 1, kernel 1, stride 1, no padding: ConvGeom always holds two
 * spatial axes, so every loop nest below is written once.
 */
#ifndef DLCC_IR_CONV_H
#define DLCC_IR_CONV_H

#include "ir/ir.h"

typedef struct {
	int sp;                  /* spatial rank of the op: 1 or 2 */
	int64_t k[2], s[2], d[2];/* kernel, stride, dilation per spatial axis (H, W) */
	int64_t pb[2], pe[2];    /* padding at the begin / end of each axis */
	int64_t group;
	int ceil_mode, count_include_pad;
} ConvGeom;

/* Read a node's window attributes (spatial rank sp); -1 with g->err (g may be NULL) when they
 * are missing or malformed. */
int ir_conv_geom(Graph *g, const Node *n, int sp, ConvGeom *cg);
/* output extent of one spatial axis (0 for H of a 1-D op: returns 1); -1 when the window does
 * not fit */
int64_t ir_conv_out(const ConvGeom *cg, int axis, int64_t in);
/* a rank-(2+sp) shape's spatial extents as (H, W): H = 1 for 1-D */
void ir_conv_hw(const Shape *s, int64_t *h, int64_t *w);
/* AveragePool's divisor for output position o of one axis (the taps counted per
 * count_include_pad) */
int64_t ir_pool_count(const ConvGeom *cg, int axis, int64_t o, int64_t in);

#endif
