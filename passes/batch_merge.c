/*
 * batch_merge.c — a batched product summed over its batch becomes one 2-D product
 * (pass_batch_merge).
 *
 * The gradient of a 2-D weight that a batched MatMul reads (a linear layer on [N,T,C1]) comes
 * out of autodiff as N products [C1,C2] written to memory and then summed:
 *   P = MatMul(A, B) {transA = 1}      A [b.., K, M], B [b.., K, C]  →  P [b.., M, C]
 *   S = ReduceSum(P) {axes = [0 .. r-3]}
 * The batch rows and the contraction rows of both operands are one index, so S is one product
 * over all of them: Ra = Reshape(A, [b..·K, M]), Rb = Reshape(B, [b..·K, C]),
 * S = MatMul(Ra, Rb) {transA = 1} (keepdims = 0), or Reshape(that, S's shape) (keepdims = 1).
 * The ReduceSum node becomes that last node in place, so S keeps its value and every reader of
 * S is unchanged; P dies (pass_dce removes it). The reshapes are views, so the rewrite saves
 * P's memory, its write and read, and the reduction kernel.
 *
 * Only transA = 1, transB = 0 is rewritten: only then is the contraction index the row index of
 * both operands as they are stored, so that batch and contraction merge by a Reshape (with
 * transA = 0 or transB = 1 the merge would need a Transpose). Also required: A and B of the same
 * rank r >= 3 with equal batch dims (no broadcasting), the ReduceSum's axes exactly 0 .. r-3,
 * P read by that ReduceSum alone and not a model output (else P is still computed), and at most
 * one batch dim among b.. and K (a Reshape has one symbolic dim per extent).
 *
 * Not bit for bit: one dot product of b..·K terms replaces per-batch dot products that are
 * rounded and then summed, so the summation order changes and results differ by rounding only
 * (either order is within the usual bound of a sum of n terms, about n·eps·Σ|terms|). Run on the
 * training program after simplify, before dce (P is left for it), precision and fusion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

typedef struct {
	Graph *g;
	int *uses;    /* by value id: how many node inputs read it */
	Value **rows; /* by value id (below nvalues): its row view, made once */
	int nvalues;
	Node **sched; /* the new schedule */
	int n;
} Merge;


/* the product of dims d[0..n-1]; -1 when two of them are batch dims */
static int rows_of(const Shape *s, int n, int64_t *rows)
{
	int64_t r = 1;
	int batch = 0;
	for (int i = 0; i < n; i++) {
		batch += s->d[i] < 0;
		r *= s->d[i] < 0 ? -s->d[i] : s->d[i];
	}
	if (batch > 1)
		return -1;
	*rows = batch ? -r : r;
	return 0;
}

/* the ReduceSum n sums exactly the batch axes 0 .. r-3 of its rank-r input */
static int sums_batch_axes(const Node *n, int r)
{
	int cnt, mask = 0;
	const int64_t *ax = ir_attr_ints(n, "axes", &cnt);
	if (!ax || cnt == 0)
		return 0; /* no axes: every axis */
	for (int i = 0; i < cnt; i++)
		mask |= ax[i] >= 0 && ax[i] < r ? 1 << ax[i] : 1 << IR_MAX_RANK;
	return mask == (1 << (r - 2)) - 1;
}

/* P = MatMul(A, B) {transA = 1, transB = 0}, A and B of one rank >= 3 and equal batch dims */
static int mergeable_product(const Node *p)
{
	if (!p || p->op != OP_MATMUL || ir_attr_i(p, "transA", 0) != 1 || ir_attr_i(p, "transB", 0) != 0)
		return 0;
	const Shape *a = &p->in[0]->shape, *b = &p->in[1]->shape;
	if (a->rank < 3 || a->rank != b->rank)
		return 0;
	for (int i = 0; i < a->rank - 2; i++)
		if (a->d[i] != b->d[i])
			return 0;
	return 1;
}

/* n is ReduceSum(P) over P's batch axes, P a mergeable product read by n alone */
static int wanted(const Merge *m, const Node *n)
{
	if (n->op != OP_REDUCE_SUM)
		return 0;
	const Value *p = n->in[0];
	int64_t rows;
	return mergeable_product(p->def) && m->uses[p->id] == 1 && !ir_value_visible(m->g, p) &&
	       sums_batch_axes(n, p->shape.rank) && rows_of(&p->def->in[0]->shape, p->shape.rank - 1, &rows) == 0;
}

static const char *derived(Graph *g, const Node *p, const char *suffix)
{
	char name[512];
	snprintf(name, sizeof name, "%s/%s", p->name ? p->name : "MatMul", suffix);
	return ir_strdup(g, name);
}

/* a new node, finished, in the new schedule; its output or NULL */
static Value *put(Merge *m, Node *n)
{
	if (ir_finish(m->g, n) < 0)
		return NULL;
	m->sched[m->n++] = n;
	return n->out[0];
}

/* v [b.., K, X] as [b..·K, X]; one view per value (an activation feeds several products) */
static Value *as_rows(Merge *m, const Node *p, Value *v, const char *suffix)
{
	if (v->id < m->nvalues && m->rows[v->id])
		return m->rows[v->id];
	const Shape *s = &v->shape;
	int64_t d[2] = {0, s->d[s->rank - 1]};
	DLCC_ASSERT(rows_of(s, s->rank - 1, &d[0]) == 0);
	Node *n = ir_begin(m->g, OP_RESHAPE, derived(m->g, p, suffix), 1, &v);
	ir_set_ints(m->g, n, "shape", 2, d);
	Value *r = put(m, n);
	if (v->id < m->nvalues)
		m->rows[v->id] = r;
	return r;
}

/* node n becomes op(in..) with no attributes (its output value stays) */
static void become(Graph *g, Node *n, Op op, const char *name, int nin, Value *const *in)
{
	n->op = op;
	n->name = name;
	n->nin = nin;
	n->in = ir_alloc(g, nin * sizeof *n->in);
	for (int i = 0; i < nin; i++)
		n->in[i] = in[i];
	n->nattr = 0;
	n->attr = NULL;
}

/* the ReduceSum n over P = MatMul(A, B): Ra, Rb, their product and n as the product's
 * Reshape (or as the product itself when the shapes agree, keepdims = 0) */
static int merge(Merge *m, Node *n)
{
	Graph *g = m->g;
	const Node *p = n->in[0]->def;
	Value *ab[2] = {as_rows(m, p, p->in[0], "rows_a"), as_rows(m, p, p->in[1], "rows_b")};
	if (!ab[0] || !ab[1])
		return -1;
	const Shape *s = &n->out[0]->shape;
	Shape mc = ir_shape(2, (int64_t[]){ab[0]->shape.d[1], ab[1]->shape.d[1]});
	if (ir_shape_eq(s, &mc)) {
		become(g, n, OP_MATMUL, derived(g, p, "merged"), 2, ab);
		ir_set_i(g, n, "transA", 1);
		return 0;
	}
	Node *q = ir_begin(g, OP_MATMUL, derived(g, p, "merged"), 2, ab);
	ir_set_i(g, q, "transA", 1);
	Value *prod = put(m, q);
	if (!prod)
		return -1;
	become(g, n, OP_RESHAPE, derived(g, p, "merged/reshape"), 1, &prod);
	ir_set_ints(g, n, "shape", s->rank, s->d);
	return 0;
}

static int *count_uses(const Graph *g)
{
	int *uses = calloc(g->nvalues + 1, sizeof *uses);
	DLCC_ASSERT(uses);
	for (int i = 0; i < g->nnodes; i++)
		for (int k = 0; k < g->nodes[i]->nin; k++)
			uses[g->nodes[i]->in[k]->id]++;
	return uses;
}

int pass_batch_merge(Graph *g)
{
	int nold = g->nnodes, more = 0, rc = 0;
	Merge m = {g, count_uses(g), NULL, g->nvalues, NULL, 0};
	for (int i = 0; i < nold; i++)
		more += wanted(&m, g->nodes[i]);
	if (!more) {
		free(m.uses);
		return 0;
	}
	m.rows = calloc(g->nvalues + 1, sizeof *m.rows);
	m.sched = malloc((nold + 3 * more + 1) * sizeof *m.sched); /* each merge adds up to 3 */
	Node **old = malloc((nold + 1) * sizeof *old);
	DLCC_ASSERT(m.rows && m.sched && old);
	memcpy(old, g->nodes, nold * sizeof *old);
	for (int i = 0; i < nold && rc == 0; i++) {
		if (wanted(&m, old[i]))
			rc = merge(&m, old[i]);
		m.sched[m.n++] = old[i];
	}
	if (rc == 0) { /* the old nodes and the appended ones, each new one before its reader */
		DLCC_ASSERT(m.n == g->nnodes);
		memcpy(g->nodes, m.sched, m.n * sizeof *m.sched);
	}
	free(m.uses);
	free(m.rows);
	free(m.sched);
	free(old);
	return rc;
}
