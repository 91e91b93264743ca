/*
 * precision.c — mixed precision: the op table's precision policy applied (pass_mixed_precision).
 *
 * Every node whose op has policy P_HALF in ir/ops.def (Gemm, MatMul, Conv, ConvGradInput,
 * ConvGradWeight) reads its two matrix operands in half precision (fp16 or bf16): an f32 operand
 * gets a Cast in front of it. The node accumulates in fp32 and returns fp32 (ir_dt_acc), so that
 * everything else — softmax, norms, reductions, exp/log, the loss, the gradients and the optimizer
 * with its fp32 master weights — stays in fp32 (policies P_F32 / P_ANY: nothing to do). A bias
 * operand (Gemm's C, Conv's b) is added in fp32.
 *
 * One Cast per value, placed right before its first half-precision use: a weight read by the
 * forward product and by the backward product of the input gradient is rounded once per step,
 * and so is an activation read forward and by the weight gradient. Casts are ordinary elementwise
 * nodes; fusion (passes/fuse.c) merges them into the kernels that produce their operands.
 *
 * Run after the training program is complete (autodiff and the optimizer see only fp32 values)
 * and on the inference program, so that both compute the same products.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

typedef struct {
	Graph *g;
	DType half;
	Value **cast;  /* by value id: its half-precision copy, or NULL */
	Node **sched;  /* the new schedule */
	int n;
} MixPrec;

static Value *half_of(MixPrec *p, Value *v)
{
	if (v->dt != DT_F32)
		return v;
	if (p->cast[v->id])
		return p->cast[v->id];
	Node *c = ir_begin(p->g, OP_CAST, NULL, 1, &v);
	ir_set_s(p->g, c, "to", ir_dt_name(p->half));
	if (ir_finish(p->g, c) < 0)
		return NULL;
	p->sched[p->n++] = c; /* ir_finish appended it; it goes in front of its first user instead */
	return p->cast[v->id] = c->out[0];
}

int pass_mixed_precision(Graph *g, DType half)
{
	if (half == DT_F32)
		return 0;
	DLCC_ASSERT(ir_dt_is_half(half));
	int nold = g->nnodes; /* each node gains at most two Casts */
	MixPrec p = {g, half, calloc(g->nvalues + 1, sizeof(Value *)), malloc((3 * nold + 1) * sizeof(Node *)), 0};
	Node **old = malloc((nold + 1) * sizeof *old);
	DLCC_ASSERT(p.cast && p.sched && old);
	memcpy(old, g->nodes, nold * sizeof *old);
	int rc = 0;
	for (int i = 0; i < nold && rc == 0; i++) {
		Node *n = old[i];
		if (ir_ops[n->op].prec == P_HALF && n->in[0]->dt == DT_F32 && n->in[1]->dt == DT_F32) {
			Value *a = half_of(&p, n->in[0]), *b = a ? half_of(&p, n->in[1]) : NULL;
			if (!b) {
				rc = -1;
				break;
			}
			n->in[0] = a, n->in[1] = b;
		}
		p.sched[p.n++] = n;
	}
	if (rc == 0) { /* the same nodes (old ones and appended casts), in the new order */
		DLCC_ASSERT(p.n == g->nnodes);
		memcpy(g->nodes, p.sched, p.n * sizeof *p.sched);
	}
	free(p.cast);
	free(p.sched);
	free(old);
	return rc;
}
