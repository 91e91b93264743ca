/*
 * interp.h — the reference interpreter: runs any Graph on the host in float64 or float32.
 *
 * It is the semantic oracle of dlcc: gradient rules are checked against finite differences
 * through it, passes against it (before vs after), generated kernels against it (through the
 * CPU emulation). It is written for clarity, not speed: one plain loop nest per op.
 *
 * Every floating-point tensor is held in the compute type chosen at creation (f64 or f32);
 * integer and bool tensors are held as int64. Parameters start from their initial data,
 * optimizer state from zero, and both persist across interp_run calls, so several training
 * steps can be run in a row; interp_run applies the graph's updates at its end.
 */
#ifndef DLCC_INTERP_H
#define DLCC_INTERP_H

#include "ir/ir.h"

typedef struct Interp Interp;

/* compute: DT_F64 or DT_F32. batch: the value of N. */
Interp *interp_new(const Graph *g, DType compute, int64_t batch, char *err, size_t errlen);
void interp_free(Interp *it);
const char *interp_error(const Interp *it);

/* Set an input, label, parameter or state from a host array of dtype dt holding
 * ir_numel_at(&v->shape, batch) elements (converted to the held type). */
int interp_set(Interp *it, const Value *v, const void *data, DType dt);
/* Copy any value (after a run, or a graph-level one at any time) out as float64 / float32. */
int interp_get_f64(Interp *it, const Value *v, double *out);
int interp_get_f32(Interp *it, const Value *v, float *out);

/* Run every node in schedule order, then apply the updates. step: the 1-based optimizer step
 * (used by MomentumUpdate and AdamUpdate). */
int interp_run(Interp *it, int64_t step);

#endif
