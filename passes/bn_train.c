/*
 * bn_train.c — BatchNormalization in the training step (pass_bn_train).
 *
 * The model graph holds BatchNormalization in its inference form (running statistics). In the
 * training program each such node is replaced, at its place in the schedule, by the batch form
 * built from ordinary ops (ir/norm.h): statistics over N and the spatial axes per channel,
 * y = (x - mean) / sqrt(var + eps) * scale + bias, so autodiff differentiates through the
 * statistics. The running statistics (V_PARAM buffers) get updates, with ONNX's momentum:
 *   running_mean <- momentum * running_mean + (1 - momentum) * mean
 *   running_var  <- momentum * running_var  + (1 - momentum) * var * n / (n - 1)
 * where n is the number of elements per channel (a run-time count: it holds the batch). The
 * unbiased variance in the update is what PyTorch does (its momentum is 1 - ONNX's); the
 * normalisation itself uses the biased variance. Statistics that are not buffers (constants of a
 * hand-made graph) are left as they are. Precondition: mark-params has run. Runs first in
 * pass_build_training, so the loss, autodiff and optimizer see the lowered graph.
 */
#include <stdlib.h>
#include <string.h>

#include "ir/norm.h"
#include "passes/passes.h"

static Value *fin(Graph *g, Node *n) { return ir_finish(g, n) < 0 ? NULL : n->out[0]; }

static Value *op2(Graph *g, Op op, Value *a, Value *b) { return a && b ? ir_op2(g, op, a, b) : NULL; }

static Value *to_shape(Graph *g, Op op, Value *v, const Shape *s)
{
	if (!v)
		return NULL;
	Node *n = ir_begin(g, op, NULL, 1, &v);
	ir_set_ints(g, n, "shape", s->rank, s->d);
	return fin(g, n);
}

/* n / (n - 1), n = the elements of x per channel, computed at run time */
static Value *bessel(Graph *g, Value *x)
{
	Shape s = x->shape;
	s.d[1] = 1;
	Value *ones = to_shape(g, OP_EXPAND, ir_const_scalar(g, x->dt, 1.0), &s);
	Node *r = ones ? ir_begin(g, OP_REDUCE_SUM, NULL, 1, &ones) : NULL;
	if (!r)
		return NULL;
	ir_set_ints(g, r, "axes", 0, NULL);
	ir_set_i(g, r, "keepdims", 0);
	Value *cnt = fin(g, r);
	return op2(g, OP_DIV, cnt, op2(g, OP_SUB, cnt, ir_const_scalar(g, x->dt, 1.0)));
}

/* momentum * run + (1 - momentum) * stat [C], recorded as run's update */
static int running_update(Graph *g, Value *run, Value *stat, double momentum)
{
	if (run->kind != V_PARAM || !run->buffer)
		return 0;
	Value *st = to_shape(g, OP_RESHAPE, stat, &run->shape);
	Value *a = op2(g, OP_MUL, run, ir_const_scalar(g, run->dt, momentum));
	Value *v = op2(g, OP_ADD, a, op2(g, OP_MUL, st, ir_const_scalar(g, run->dt, 1.0 - momentum)));
	if (!v)
		return -1;
	ir_add_update(g, run, v);
	return 0;
}

/* append the batch form of BN node n; its output's uses move to the new y */
static int lower_one(Graph *g, Node *n)
{
	Value *x = n->in[0];
	int r = x->shape.rank, nax = 0;
	int64_t axes[IR_MAX_RANK];
	double momentum = ir_attr_f(n, "momentum", 0.9);
	NormStats st;
	for (int i = 0; i < r; i++)
		if (i != 1)
			axes[nax++] = i;
	if (ir_norm_stats(g, n->name, x, nax, axes, ir_attr_f(n, "epsilon", 1e-5), &st) < 0)
		return -1;
	Value *y = ir_norm_affine(g, n->name, &st, ir_channel_view(g, n->name, n->in[1], r),
				  ir_channel_view(g, n->name, n->in[2], r));
	if (!y || running_update(g, n->in[3], st.mean, momentum) < 0 ||
	    running_update(g, n->in[4], op2(g, OP_MUL, st.var, bessel(g, x)), momentum) < 0)
		return -1;
	ir_replace_uses(g, n->out[0], y);
	return 0;
}

/* the schedule with each BN node replaced by the nodes appended for it (from[i]..from[i+1]) */
static void splice(Graph *g, Node **old, int nold, const int *from)
{
	Node **sched = malloc(g->nnodes * sizeof *sched);
	int k = 0, b = 0;
	DLCC_ASSERT(sched);
	for (int i = 0; i < nold; i++) {
		if (old[i]->op != OP_BATCH_NORM) {
			sched[k++] = old[i];
			continue;
		}
		for (int j = from[b]; j < from[b + 1]; j++)
			sched[k++] = g->nodes[j];
		b++;
	}
	memcpy(g->nodes, sched, k * sizeof *sched);
	g->nnodes = k;
	free(sched);
}

int pass_bn_train(Graph *g)
{
	int nold = g->nnodes, nbn = 0, rc = 0;
	Node **old = malloc((nold + 1) * sizeof *old);
	int *from = malloc((nold + 1) * sizeof *from);
	DLCC_ASSERT(old && from);
	memcpy(old, g->nodes, nold * sizeof *old);
	for (int i = 0; i < nold && rc == 0; i++) {
		if (old[i]->op != OP_BATCH_NORM)
			continue;
		from[nbn++] = g->nnodes;
		rc = lower_one(g, old[i]);
	}
	from[nbn] = g->nnodes;
	if (rc == 0 && nbn)
		splice(g, old, nold, from);
	free(old);
	free(from);
	return rc;
}
