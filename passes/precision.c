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
 * and so is an activation read forward and by the weight gradient. An operand that is a Reshape
 * of an f32 value that another product reads as it is reads the Reshape of that value's Cast
 * instead (the same numbers), so the cast stays shared when a product reads the value reshaped
 * (pass_batch_merge's row views); the f32 Reshape leaves when nothing else reads it. Casts are
 * ordinary elementwise nodes; fusion (passes/fuse.c) merges them into the kernels that produce
 * their operands.
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
	Value **cast;  /* by value id (below nvalues): its half-precision copy, or NULL */
	char *direct;  /* by value id: a product reads it as an operand as it is */
	int nvalues;
	Node **sched;  /* the new schedule */
	int n;
} MixPrec;

/* the new node n, finished, in the new schedule (ir_finish appended it; it goes in front of its
 * first user instead) */
static Value *put(MixPrec *p, Node *n)
{
	if (ir_finish(p->g, n) < 0)
		return NULL;
	p->sched[p->n++] = n;
	return n->out[0];
}

static Value *half_of(MixPrec *p, Value *v);

/* v = Reshape(x), x read by a product as it is too: Reshape(half_of(x)), so that x is cast once
 * for the products that read it, reshaped or not (pass_batch_merge's row views of an activation
 * and a gradient) */
static Value *half_reshape(MixPrec *p, Value *v)
{
	const Node *d = v->def;
	int cnt;
	const int64_t *shape = ir_attr_ints(d, "shape", &cnt);
	Value *h = half_of(p, d->in[0]);
	if (!h)
		return NULL;
	Node *r = ir_begin(p->g, OP_RESHAPE, d->name, 1, &h);
	ir_set_ints(p->g, r, "shape", cnt, shape);
	return p->cast[v->id] = put(p, r);
}

static Value *half_of(MixPrec *p, Value *v)
{
	if (v->dt != DT_F32)
		return v;
	if (p->cast[v->id])
		return p->cast[v->id];
	const Node *d = v->def;
	if (d && d->op == OP_RESHAPE && d->in[0]->dt == DT_F32 && p->direct[d->in[0]->id])
		return half_reshape(p, v);
	Node *c = ir_begin(p->g, OP_CAST, NULL, 1, &v);
	ir_set_s(p->g, c, "to", ir_dt_name(p->half));
	return p->cast[v->id] = put(p, c);
}

/* the f32 Reshapes that products read through (half_reshape) and nothing reads any more leave
 * the schedule: they would keep their f32 input alive until their position */
static void drop_unread_reshapes(MixPrec *p)
{
	Graph *g = p->g;
	int *uses = calloc(g->nvalues + 1, sizeof *uses);
	char *keep = malloc(g->nnodes + 1);
	DLCC_ASSERT(uses && keep);
	for (int i = 0; i < g->nnodes; i++)
		for (int k = 0; k < g->nodes[i]->nin; k++)
			uses[g->nodes[i]->in[k]->id]++;
	for (int i = 0; i < g->noutputs; i++)
		uses[g->outputs[i]->id]++;
	for (int i = 0; i < g->nupdates; i++)
		uses[g->updates[i].value->id]++;
	if (g->loss)
		uses[g->loss->id]++;
	for (int i = 0; i < g->nnodes; i++) {
		int id = g->nodes[i]->op == OP_RESHAPE ? g->nodes[i]->out[0]->id : p->nvalues;
		keep[i] = id >= p->nvalues || !p->cast[id] || uses[id];
	}
	ir_remove_nodes(g, keep);
	free(uses);
	free(keep);
}

static int is_product(const Node *n)
{
	return ir_ops[n->op].prec == P_HALF && n->in[0]->dt == DT_F32 && n->in[1]->dt == DT_F32;
}

int pass_mixed_precision(Graph *g, DType half)
{
	if (half == DT_F32)
		return 0;
	DLCC_ASSERT(ir_dt_is_half(half));
	int nold = g->nnodes; /* at most two Casts per node, one half Reshape per f32 Reshape */
	MixPrec p = {g, half, calloc(g->nvalues + 1, sizeof(Value *)), calloc(g->nvalues + 1, 1), g->nvalues,
		     malloc((4 * nold + 1) * sizeof(Node *)), 0};
	Node **old = malloc((nold + 1) * sizeof *old);
	DLCC_ASSERT(p.cast && p.direct && p.sched && old);
	memcpy(old, g->nodes, nold * sizeof *old);
	for (int i = 0; i < nold; i++)
		if (is_product(old[i]))
			p.direct[old[i]->in[0]->id] = p.direct[old[i]->in[1]->id] = 1;
	int rc = 0;
	for (int i = 0; i < nold && rc == 0; i++) {
		Node *n = old[i];
		if (is_product(n)) {
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
		drop_unread_reshapes(&p);
	}
	free(p.cast);
	free(p.direct);
	free(p.sched);
	free(old);
	return rc;
}
