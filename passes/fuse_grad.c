/*
 * fuse_grad.c — the backward forms of the matrix-product epilogues (the last step of
 * pass_fuse, on the grouped schedule and its `fuse` ids).
 *
 *   DRELU  a ReluGrad(dy, y) whose dy is a product Q that only it reads, and whose y is the
 *          ReLU of a forward epilogue group [P, Add, Relu]: the forward group also writes the
 *          ReLU's bit-mask (a ReluMask member, the auxiliary output of cuBLASLt's
 *          RELU_AUX_BIAS), the ReluGrad becomes ReluMaskGrad(dy, mask), and Q joins it;
 *   DGELU  a GeluTanhGrad(dy, x) whose dy is such a product: Q joins it (x, the GELU's input,
 *          is the auxiliary input of DGELU; the forward group writes it as GELU_AUX_BIAS);
 *          in both, when the gradient was grouped with its bias gradient [grad, ReduceSum], Q
 *          joins that group (D*_BGRAD: one call for the product, the activation's gradient
 *          and the bias gradient); for a ReLU also with the Cast of the gradient to half
 *          precision (mixed precision: the call writes the half D);
 *   BGRAD  a ReduceSum over all but the last axis (a bias gradient) that is in no group, of a
 *          value v that a 2-D product in no group reads as its operand summed over the
 *          product's k (A read transposed, or B not transposed, possibly through a Reshape):
 *          the two become one group (cuBLASLt's BGRADB / BGRADA).
 * A product joins only in its cuBLASLt form (passes/fuse.c fuse_product_form) with an f32
 * result. A node that joins a group moves down to it (legal: only the group reads the product,
 * or nothing between reads the moved node's result) or, for BGRAD, up (legal when its operands
 * are made before). Groups are numbered again in schedule
 * order at the end. Nothing is recomputed, and the values are the same: the mask holds
 * exactly y > 0, which is what ReluGrad tests (fuse makes ReluGrad read the ReLU's output).
 */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

typedef struct {
	Graph *g;
	int *pos;        /* by node id: schedule position */
	int *use0, *use; /* by value id: its readers' positions, use[use0[id] .. use0[id + 1]) */
	int next_id;     /* a fresh group id */
} Sched;

static void sched_free(Sched *s)
{
	free(s->pos);
	free(s->use0);
	free(s->use);
	s->pos = s->use0 = s->use = NULL;
}

static void sched_index(Sched *s)
{
	Graph *g = s->g;
	sched_free(s);
	s->pos = calloc(g->next_node_id + 1, sizeof *s->pos);
	for (int j = 0; j < g->nnodes; j++) {
		s->pos[g->nodes[j]->id] = j;
		int64_t id = ir_attr_i(g->nodes[j], "fuse", 0);
		s->next_id = id >= s->next_id ? (int)id + 1 : s->next_id;
	}
	fuse_index_uses(g, &s->use0, &s->use);
}

static int nreaders(const Sched *s, const Value *v) { return s->use0[v->id + 1] - s->use0[v->id]; }
static int is_bias_grad(const Node *r);
static int64_t gid(const Node *n) { return ir_attr_i(n, "fuse", 0); }


/* the first position of the group at position j, and its size */
static int group_span(const Sched *s, int j, int *size)
{
	Graph *g = s->g;
	int64_t id = gid(g->nodes[j]);
	if (!id) {
		*size = 1;
		return j;
	}
	int a = j, b = j;
	while (a > 0 && gid(g->nodes[a - 1]) == id)
		a--;
	while (b + 1 < g->nnodes && gid(g->nodes[b + 1]) == id)
		b++;
	*size = b - a + 1;
	return a;
}

/* move the node at position from to position to (to < from: up; to > from: down) */
static void move_node(Graph *g, int from, int to)
{
	Node *n = g->nodes[from];
	if (to > from)
		memmove(g->nodes + from, g->nodes + from + 1, (to - from) * sizeof *g->nodes);
	else
		memmove(g->nodes + to + 1, g->nodes + to, (from - to) * sizeof *g->nodes);
	g->nodes[to] = n;
}

/* the readers of v are all at positions after `at` */
static int read_after(const Sched *s, const Value *v, int at)
{
	for (int u = s->use0[v->id]; u < s->use0[v->id + 1]; u++)
		if (s->use[u] <= at)
			return 0;
	return 1;
}

/* every operand of n is made before position at */
static int made_before(const Sched *s, const Node *n, int at)
{
	for (int k = 0; k < n->nin; k++)
		if (n->in[k]->def && s->pos[n->in[k]->def->id] >= at)
			return 0;
	return 1;
}

/* n's operands are made before position at, or are views (Reshape, Flatten) whose operand
 * is: such views can move up to at with n (batch-merge reshapes the weight gradient's rows) */
static int hoistable(const Sched *s, const Node *n, int at)
{
	for (int k = 0; k < n->nin; k++) {
		const Node *d = n->in[k]->def;
		if (d && s->pos[d->id] >= at && (ir_ops[d->op].kclass != K_NONE || !made_before(s, d, at)))
			return 0;
	}
	return 1;
}

/* move the views hoistable() allows up to position at, in operand order; returns how many
 * moved (the node that was at `at` is now that much later; n, after them all, stays) */
static int hoist_views(Sched *s, const Node *n, int at)
{
	int moved = 0;
	for (int k = 0; k < n->nin; k++) {
		const Node *d = n->in[k]->def;
		if (d && s->pos[d->id] >= at + moved) {
			move_node(s->g, s->pos[d->id], at + moved);
			sched_index(s);
			moved++;
		}
	}
	return moved;
}

/* r is a ReduceSum of all but the last axis of its operand */
static int is_bias_grad(const Node *r)
{
	if (r->op != OP_REDUCE_SUM || r->in[0]->shape.rank < 2)
		return 0;
	int cnt = 0;
	const int64_t *ax = ir_attr_ints(r, "axes", &cnt);
	int mask = 0;
	for (int i = 0; ax && i < cnt; i++)
		mask |= 1 << ax[i];
	return ax && cnt > 0 && mask == (1 << (r->in[0]->shape.rank - 1)) - 1;
}

/* ---- DRELU / DGELU ---- */

/* y = Relu(..) in a group [P, Add, Relu] (+ a Cast of y to half precision, + a ReluMask): the
 * mask member, made when missing; NULL when y has no such group */
static Value *relu_mask_of(Sched *s, Value *y)
{
	Graph *g = s->g;
	const Node *rl = y->def;
	if (!rl || rl->op != OP_RELU || !gid(rl))
		return NULL;
	int size, j = s->pos[rl->id], a = group_span(s, j, &size), last = a + size - 1;
	if (a + 2 != j || ir_ops[g->nodes[a]->op].kclass != K_GEMM || g->nodes[a + 1]->op != OP_ADD)
		return NULL;
	for (int k = j + 1; k <= last; k++) {
		const Node *x = g->nodes[k];
		if (x->op == OP_RELU_MASK && x->in[0] == y)
			return x->out[0];
		if (x->op != OP_CAST || x->in[0] != y)
			return NULL;
	}
	char name[512];
	snprintf(name, sizeof name, "%s/mask", rl->name ? rl->name : "Relu");
	Node *m = ir_begin(g, OP_RELU_MASK, name, 1, &y);
	if (ir_finish(g, m) < 0)
		return NULL;
	ir_set_i(g, m, "fuse", gid(rl));
	move_node(g, g->nnodes - 1, last + 1);
	return m->out[0];
}

/* the members after r in its group (from position j) are its bias gradient and, for a ReLU,
 * its Cast to half precision (the mixed-precision operand of the next products), each at most
 * once */
static int grad_group_ok(const Sched *s, const Node *r, int j, int size)
{
	int sums = 0, casts = 0;
	for (int k = j + 1; k < j + size; k++) {
		const Node *x = s->g->nodes[k];
		if (x->in[0] != r->out[0])
			return 0;
		if (is_bias_grad(x))
			sums++;
		else if (x->op == OP_CAST && ir_dt_is_half(x->out[0]->dt) && r->op != OP_GELU_TANH_GRAD)
			casts++;
		else
			return 0;
	}
	return sums <= 1 && casts <= 1;
}

/* r (ReluGrad, ReluMaskGrad, GeluTanhGrad) at position j: its product joins it; 1 when done */
static int grad_epilogue(Sched *s, int j)
{
	Graph *g = s->g;
	Node *r = g->nodes[j];
	Value *dy = r->in[0];
	Node *q = dy->def;
	if (!q || ir_ops[q->op].kclass != K_GEMM || gid(q) || !fuse_product_form(q) || nreaders(s, dy) != 1 ||
	    ir_value_visible(g, dy) || r->out[0]->dt != DT_F32)
		return 0;
	if (r->op != OP_RELU_MASK_GRAD && !ir_shape_eq(&r->in[1]->shape, &dy->shape))
		return 0;
	int size, a = group_span(s, j, &size);
	if (size > 3 || a != j || !grad_group_ok(s, r, j, size))
		return 0;
	if (r->op == OP_RELU_GRAD) {
		Value *m = relu_mask_of(s, r->in[1]);
		if (!m)
			return 0;
		r->op = OP_RELU_MASK_GRAD;
		r->in[1] = m;
		sched_index(s); /* the mask node moved the schedule */
		j = s->pos[r->id];
	}
	int64_t id = gid(r);
	if (!id) {
		id = s->next_id++;
		ir_set_i(g, r, "fuse", id);
	}
	ir_set_i(g, q, "fuse", id);
	move_node(g, s->pos[q->id], j - 1);
	return 1;
}

/* ---- BGRAD ---- */

/* x is v, or a Reshape / Flatten chain of v */
static int aliases(const Value *x, const Value *v)
{
	for (; x; x = x->def && (x->def->op == OP_RESHAPE || x->def->op == OP_FLATTEN) ? x->def->in[0] : NULL)
		if (x == v)
			return 1;
	return 0;
}

/* the operand of product p summed over k that is v (0: A, read transposed; 1: B), or -1 */
static int summed_operand(const Node *p, const Value *v)
{
	if (ir_ops[p->op].kclass != K_GEMM || gid(p) || p->nin != 2 || p->out[0]->dt != DT_F32 ||
	    p->in[0]->shape.rank != 2 || p->in[1]->shape.rank != 2 || p->in[0]->dt != v->dt ||
	    (p->op == OP_GEMM && ir_attr_f(p, "alpha", 1.0) != 1.0))
		return -1;
	int64_t c = v->shape.d[v->shape.rank - 1];
	int a = aliases(p->in[0], v), b = aliases(p->in[1], v);
	if (a && !b && ir_attr_i(p, "transA", 0) && p->in[0]->shape.d[1] == c)
		return 0;
	if (b && !a && !ir_attr_i(p, "transB", 0) && p->in[1]->shape.d[1] == c)
		return 1;
	return -1;
}

/* a product that reads v (directly or through Reshapes) summed over k, in no group; NULL */
static Node *bgrad_product(const Sched *s, const Value *v, int depth)
{
	for (int u = s->use0[v->id]; u < s->use0[v->id + 1]; u++) {
		Node *n = s->g->nodes[s->use[u]];
		if (summed_operand(n, v) >= 0)
			return n;
		if (depth < 3 && (n->op == OP_RESHAPE || n->op == OP_FLATTEN)) {
			Node *p = bgrad_product(s, n->out[0], depth + 1);
			if (p)
				return p;
		}
	}
	return NULL;
}

/* the ReduceSum at position j and its product become a group; 1 when done */
static int bgrad_epilogue(Sched *s, int j)
{
	Graph *g = s->g;
	Node *r = g->nodes[j];
	if (gid(r) || !is_bias_grad(r) || r->in[0]->dt != DT_F32)
		return 0;
	Node *p = bgrad_product(s, r->in[0], 0);
	if (!p)
		return 0;
	int pp = s->pos[p->id]; /* the group is [p, r]: the earlier one moves down, or the later up */
	if (pp < j && read_after(s, p->out[0], j))
		move_node(g, pp, j - 1);
	else if (pp < j && made_before(s, r, pp))
		move_node(g, j, pp + 1);
	else if (pp > j && read_after(s, r->out[0], pp))
		move_node(g, j, pp);
	else if (pp > j && hoistable(s, p, j)) {
		int moved = hoist_views(s, p, j); /* r is now at j + moved */
		move_node(g, s->pos[p->id], j + moved);
	} else {
		return 0;
	}
	int64_t id = s->next_id++;
	ir_set_i(g, p, "fuse", id);
	ir_set_i(g, r, "fuse", id);
	return 1;
}

/* group ids in schedule order, 1, 2, ... */
static void renumber(Graph *g)
{
	int64_t last = 0, next = 0;
	for (int j = 0; j < g->nnodes; j++) {
		int64_t id = gid(g->nodes[j]);
		if (!id)
			continue;
		if (id != last)
			next++;
		last = id;
		ir_set_i(g, g->nodes[j], "fuse", next);
	}
}

int fuse_grad_epilogues(Graph *g)
{
	Sched s = {g, NULL, NULL, NULL, 1};
	sched_index(&s);
	for (int j = 0; j < g->nnodes; j++) {
		Op op = g->nodes[j]->op;
		int done = op == OP_RELU_GRAD || op == OP_RELU_MASK_GRAD || op == OP_GELU_TANH_GRAD ? grad_epilogue(&s, j)
			   : op == OP_REDUCE_SUM ? bgrad_epilogue(&s, j) : 0;
		if (done) {
			sched_index(&s);
			j = -1; /* positions moved: look again from the start (done nodes are grouped) */
		}
	}
	sched_free(&s);
	renumber(g);
	return 0;
}
