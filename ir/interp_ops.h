/*
 * interp_ops.h — private to ir/: what op implementations living outside interp.c (ir/interp_conv.c)
 * need from the reference interpreter: a view of a value's tensor, the rounding of one
 * elementary result to the compute type (see interp.c), and its error channel.
 */
#ifndef DLCC_INTERP_OPS_H
#define DLCC_INTERP_OPS_H

#include "ir/interp.h"

typedef struct {
	int rank;
	int64_t d[IR_MAX_RANK]; /* batch resolved */
	int64_t n;
	double *f;              /* float tensors */
	int64_t *i;             /* integer and bool tensors */
} IView;

IView interp_view(Interp *it, const Value *v);
double interp_round(const Interp *it, double x);
int interp_fail(Interp *it, const Node *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ir/interp_conv.c: Conv, ConvGradInput, ConvGradWeight, pools and their gradients, Pad, PadGrad */
int interp_conv_family(Interp *it, const Node *n);

#endif
