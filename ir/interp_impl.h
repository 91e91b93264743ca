/*
 * interp_impl.h — private to the reference interpreter: its Tensor and Interp structures, shared
 * by ir/interp.c (the core ops and the run loop) and ir/interp_tensor.c (the data-path plumbing
 * ops: Gather, Slice, Concat, Trilu, Where, Cast, comparisons, Pow, Max/Min).
 *
 * Floating-point tensors are held as double (f), integer and bool tensors as int64 (i); see
 * interp.h for the rounding rules of f32 mode. Extents have the batch resolved.
 */
#ifndef DLCC_INTERP_IMPL_H
#define DLCC_INTERP_IMPL_H

#include "ir/interp.h"

typedef struct {
	const Value *v;         /* owner, to check lookups */
	int rank;
	int64_t d[IR_MAX_RANK]; /* extents, batch resolved */
	int64_t n;
	int isint;              /* held as int64 (integer and bool dtypes) */
	double *f;
	int64_t *i;
	int ready;              /* holds data: initial, set, or computed in this run */
} Tensor;

struct Interp {
	const Graph *g;
	int f32;
	int64_t batch, step;
	Tensor *t; /* by value id */
	int nt;
	char err[512];
};

/* one elementary float operation's result in the compute type */
static inline double interp_rd(const Interp *it, double x) { return it->f32 ? (double)(float)x : x; }
/* a node's i-th input / output tensor */
static inline Tensor *interp_tin(Interp *it, const Node *n, int i) { return &it->t[n->in[i]->id]; }
static inline Tensor *interp_tout(Interp *it, const Node *n, int i) { return &it->t[n->out[i]->id]; }

/* run one plumbing op (ir/interp_tensor.c); 0 or -1 with it->err */
int interp_tensor_op(Interp *it, const Node *n);
/* run one reduction / dropout / loss op (ir/interp_reduce.c); 0 or -1 with it->err */
int interp_reduce_op(Interp *it, const Node *n);
/* run GatherElements, ScatterElements or CumSum (ir/interp_index.c); 0 or -1 with it->err */
int interp_index_op(Interp *it, const Node *n);

#endif
