/*
 * fuse.c — fusion grouping: which nodes run as one kernel.
 *
 * The pass does not change what the program computes; it marks groups with the node attribute
 * `fuse = K` (K = 1, 2, ... in schedule order) and sinks every member to its group's last
 * member, so that each group is contiguous in the schedule. Codegen (codegen/cg_fuse.c) emits
 * one kernel per group; a member output that nothing outside the group reads is never written
 * to memory. Groups, found in one walk over the schedule:
 *   elementwise  K_UNARY/K_BINARY nodes, float-to-float Casts and float Wheres (a bool mask)
 *                with one output shape (the
 *                group's index space); an
 *                operand of another shape broadcasts into it; a node joins the latest group
 *                that produces one of its operands;
 *   reduction    such a group followed by the ReduceSum/ReduceMean of one of its values
 *                (the group's index space is the reduction's input), e.g. ReluGrad + bias grad,
 *                and the Cast of one of its values to half precision (mixed precision);
 *   row          such a group followed by a Softmax / LogSoftmax of one of its values along the
 *                last axis, rows of 256 to 4096 elements (the kernel holds a row in shared
 *                memory, so each element is computed once): attention's scale and mask; and a
 *                Softmax / LogSoftmax (fused or alone) with its Cast to half precision;
 *   loss         SoftmaxCrossEntropy with its SoftmaxCrossEntropyGrad (one kernel reads the
 *                logits), and for class axes under 256 the sum of that gradient over all but
 *                the class axis (the bias gradient), and the gradient's Cast to half precision
 *                (mixed precision);
 *   optimizer    every update node of the step with the same op and attributes (multi-tensor);
 *   epilogue     a matrix product (Gemm, or MatMul by a 2-D matrix) whose result only a group
 *                of exactly [Add(bias)] or [Add(bias), Relu] reads (either operand order), with
 *                a bias vector along its last axis, joins that group as its first member:
 *                codegen makes them one cuBLASLt call with a BIAS / RELU_BIAS epilogue
 *                (codegen/cg_gemm.c).
 *   move         a Transpose whose result only a float-to-float Cast reads (through Reshapes),
 *                with that Cast (mixed precision: the transposed operand of a product is stored
 *                in half), and a Concat with the Cast of its result; a Slice whose result only
 *                a Transpose reads (through Reshapes) joins it (with or without a Cast); and
 *                Transposes whose results only a Concat reads join the Concat;
 *   casts        every Cast of a parameter to half precision (mixed precision: the weights'
 *                copies for the products), in one multi-tensor launch where the first runs.
 * So that the pre-activation is not needed afterwards, ReluGrad(dy, x) reads Relu(x) instead of
 * x where that exists (relu(x) > 0 exactly when x > 0).
 * First, Gemm's bias C (beta = 1) becomes an Add after a bias-free Gemm, so that the bias add
 * joins the elementwise group of the activation that follows. A group runs at one member's
 * position: a joining node either moves the group down to itself (legal when nothing that runs
 * in between reads the group's outputs) or moves up to the group (legal when its operands are
 * made before it), as a bias gradient's ReduceSum moves up to its ReluGrad past the matrix
 * products that also read it. Every member is computed once per element of its own, except a
 * lone elementwise node of a smaller (broadcast) shape that only one later group reads, which
 * that group computes at each of its elements (sink_broadcast_producers: a bounded few
 * operations, never a reduction or a product). Precondition: a verified graph; re-running it
 * regroups.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

#define FUSE_MAX_TENSORS 16 /* kernel arguments of one elementwise group */
#define FUSE_SHORT_ROW 256  /* the logits' bias gradient joins the loss pair below this many classes */
#define FUSE_ROW_MIN 256    /* a softmax takes its producers for rows of FUSE_ROW_MIN .. MAX, */
#define FUSE_ROW_MAX 4096   /* (codegen's block-per-row form with the row in shared memory) */

typedef enum { G_EW, G_REDUCE, G_LOSS, G_OPTIM, G_CASTS, G_ROW } GKind;

typedef struct {
	GKind kind;
	int first;    /* schedule position of the first member */
	int at;       /* where the group runs: a member's position (later ones are hoisted to it) */
	int size, closed;
} Group;

typedef struct {
	Graph *g;
	int *pos;        /* by node id: schedule position */
	int *grp;        /* by schedule position: group index, -1 none */
	int *use0, *use; /* by value id: its readers' positions are use[use0[id] .. use0[id + 1]) */
	Group *groups;
	int ngroups;
} Fuse;

/* elementwise: the op table's unary/binary ops with a body, and Casts between float types (the
 * mixed-precision casts, which thus merge into the kernel that computes their operand) */
static int is_ew(const Node *n)
{
	KClass k = ir_ops[n->op].kclass;
	if (n->op == OP_CAST)
		return ir_dt_is_float(n->in[0]->dt) && ir_dt_is_float(n->out[0]->dt);
	if (n->op == OP_WHERE) /* a float select by a bool mask: attention's causal mask */
		return n->in[0]->dt == DT_BOOL && ir_dt_is_float(n->out[0]->dt) && n->in[1]->dt == n->out[0]->dt &&
		       n->in[2]->dt == n->out[0]->dt;
	return (k == K_UNARY || k == K_BINARY) && ir_ops[n->op].body;
}

static int is_update(const Node *n)
{
	return n->op == OP_SGD_UPDATE || n->op == OP_MOMENTUM_UPDATE || n->op == OP_ADAM_UPDATE;
}

/* group of the node producing v, -1 when none */
static int grp_of_value(const Fuse *f, const Value *v)
{
	return v->def ? f->grp[f->pos[v->def->id]] : -1;
}

/* where the node at position j runs */
static int eff(const Fuse *f, int j) { return f->grp[j] >= 0 ? f->groups[f->grp[j]].at : j; }


void fuse_index_uses(const Graph *g, int **use0_out, int **use_out)
{
	int *cnt = calloc(g->nvalues + 2, sizeof *cnt), total = 0;
	for (int j = 0; j < g->nnodes; j++)
		for (int k = 0; k < g->nodes[j]->nin; k++)
			cnt[g->nodes[j]->in[k]->id]++;
	int *use0 = malloc((g->nvalues + 2) * sizeof *use0);
	for (int v = 0; v <= g->nvalues; v++) {
		use0[v] = total;
		total += v < g->nvalues ? cnt[v] : 0;
		cnt[v] = 0;
	}
	int *use = malloc((total + 1) * sizeof *use);
	for (int j = 0; j < g->nnodes; j++)
		for (int k = 0; k < g->nodes[j]->nin; k++) {
			int v = g->nodes[j]->in[k]->id;
			use[use0[v] + cnt[v]++] = j;
		}
	free(cnt);
	*use0_out = use0;
	*use_out = use;
}

static void index_uses(Fuse *f) { fuse_index_uses(f->g, &f->use0, &f->use); }

/* node at position j counts as a member of G (extra: a prospective member) */
static int in_group(const Fuse *f, int G, int j, int extra) { return f->grp[j] == G || j == extra; }

/* running G at position `at` (later than now) is legal: no other node that runs before `at`
 * reads an output of a member */
static int can_sink(const Fuse *f, int G, int at)
{
	Graph *g = f->g;
	for (int j = f->groups[G].first; j < g->nnodes; j++) {
		if (f->grp[j] != G)
			continue;
		const Node *n = g->nodes[j];
		for (int o = 0; o < n->nout; o++)
			for (int u = f->use0[n->out[o]->id]; u < f->use0[n->out[o]->id + 1]; u++)
				if (f->grp[f->use[u]] != G && eff(f, f->use[u]) < at)
					return 0;
	}
	return 1;
}

/* the node at `j` may run at G's position instead: each operand is G's or made before */
static int can_hoist(const Fuse *f, int G, int j)
{
	const Node *n = f->g->nodes[j];
	for (int k = 0; k < n->nin; k++) {
		const Value *v = n->in[k];
		if (v->def && f->grp[f->pos[v->def->id]] != G && eff(f, f->pos[v->def->id]) >= f->groups[G].at)
			return 0;
	}
	return 1;
}

/* a member's output is read outside G (+ extra) */
static int read_outside(const Fuse *f, int G, const Value *v, int extra)
{
	if (ir_value_visible(f->g, v))
		return 1;
	for (int u = f->use0[v->id]; u < f->use0[v->id + 1]; u++)
		if (!in_group(f, G, f->use[u], extra))
			return 1;
	return 0;
}

/* kernel tensors of group G plus the node at `extra`: outside operands (a bound: an operand
 * read by two members counts twice) + outputs read outside the group */
static int tensor_count(const Fuse *f, int G, int extra)
{
	Graph *g = f->g;
	int cnt = 0;
	for (int j = f->groups[G].first; j < g->nnodes; j++) {
		if (!in_group(f, G, j, extra))
			continue;
		const Node *n = g->nodes[j];
		for (int k = 0; k < n->nin; k++) {
			const Value *v = n->in[k];
			int dup = v->def && in_group(f, G, f->pos[v->def->id], extra);
			for (int m = 0; m < k && !dup; m++)
				dup = n->in[m] == v;
			cnt += !dup;
		}
		for (int o = 0; o < n->nout; o++)
			cnt += read_outside(f, G, n->out[o], extra);
	}
	return cnt;
}

static int new_group(Fuse *f, GKind kind, int at)
{
	f->groups[f->ngroups] = (Group){kind, at, at, 1, 0};
	f->grp[at] = f->ngroups;
	return f->ngroups++;
}

/* the node at `at` joins G: G runs at `at` (sink) or the node runs at G's position (hoist) */
static int try_join(Fuse *f, int G, int at)
{
	Group *gr = &f->groups[G];
	if (gr->closed || tensor_count(f, G, at) > FUSE_MAX_TENSORS)
		return 0;
	if (can_sink(f, G, at))
		gr->at = at;
	else if (!can_hoist(f, G, at))
		return 0;
	f->grp[at] = G;
	gr->size++;
	return 1;
}

/* the latest open elementwise group producing an operand of n with the shape `domain` */
static int producer_group(const Fuse *f, const Node *n, const Shape *domain)
{
	int best = -1;
	for (int k = 0; k < n->nin; k++) {
		int G = grp_of_value(f, n->in[k]);
		if (G < 0 || f->groups[G].kind != G_EW || f->groups[G].closed)
			continue;
		const Node *p = n->in[k]->def;
		if (ir_shape_eq(&p->out[0]->shape, domain) && (best < 0 || f->groups[G].at > f->groups[best].at))
			best = G;
	}
	return best;
}

/* the members of group G with op `op` */
static int group_count(const Fuse *f, int G, Op op)
{
	int c = 0;
	for (int j = f->groups[G].first; j < f->g->nnodes; j++)
		c += f->grp[j] == G && f->g->nodes[j]->op == op;
	return c;
}

/* n casts an f32 value to half precision (mixed precision: a product's operand) */
static int half_cast(const Node *n)
{
	return n->op == OP_CAST && n->in[0]->dt == DT_F32 && ir_dt_is_half(n->out[0]->dt);
}

/* the node at `at` joins G where G runs, when its operands are made by then */
static int hoist_into(Fuse *f, int G, int at)
{
	if (!can_hoist(f, G, at))
		return 0;
	f->grp[at] = G;
	f->groups[G].size++;
	return 1;
}

/* A half Cast joins the kernel that makes its operand, which writes the half copy beside (or
 * instead of) the f32 value:
 *   the loss group, for the logits' gradient;
 *   a reduction group, for an elementwise member (a gradient also summed into a bias
 *   gradient; apply() keeps the reduction last);
 *   a Softmax / LogSoftmax, fused or alone (attention's probabilities). */
static int join_cast(Fuse *f, int at)
{
	const Node *n = f->g->nodes[at], *d = n->in[0]->def;
	if (!half_cast(n) || !d)
		return 0;
	int j = f->pos[d->id], G = f->grp[j];
	if (G >= 0 && f->groups[G].kind == G_LOSS)
		return d->op == OP_SOFTMAX_CROSS_ENTROPY_GRAD && !group_count(f, G, OP_CAST) && hoist_into(f, G, at);
	if (G >= 0 && f->groups[G].kind == G_REDUCE) {
		if (ir_ops[d->op].kclass == K_REDUCE || tensor_count(f, G, at) > FUSE_MAX_TENSORS)
			return 0;
		for (int k = f->groups[G].first; k < f->g->nnodes; k++) /* the index space: the summed value's */
			if (f->grp[k] == G && ir_ops[f->g->nodes[k]->op].kclass == K_REDUCE &&
			    !ir_shape_eq(&f->g->nodes[k]->in[0]->shape, &n->out[0]->shape))
				return 0;
		return hoist_into(f, G, at);
	}
	if ((d->op != OP_SOFTMAX && d->op != OP_LOG_SOFTMAX) ||
	    (G >= 0 && (f->groups[G].kind != G_ROW || group_count(f, G, OP_CAST))))
		return 0;
	if (G >= 0)
		return hoist_into(f, G, at);
	G = new_group(f, G_ROW, j);
	f->groups[G].closed = 1;
	if (hoist_into(f, G, at))
		return 1;
	f->grp[j] = -1, f->ngroups--; /* the group made here: undo it */
	return 0;
}

static void visit_ew(Fuse *f, int at)
{
	const Node *n = f->g->nodes[at];
	if (join_cast(f, at))
		return;
	int G = producer_group(f, n, &n->out[0]->shape);
	if (G < 0 || !try_join(f, G, at))
		new_group(f, G_EW, at);
}

/* the reduction sums over every axis but the last (a bias gradient of logits) */
static int reduces_leading(const Node *n)
{
	int cnt = 0, rank = n->in[0]->shape.rank, mask = 0;
	const int64_t *ax = ir_attr_ints(n, "axes", &cnt);
	for (int i = 0; ax && i < cnt; i++)
		mask |= 1 << (ax[i] < 0 ? ax[i] + rank : ax[i]);
	return rank >= 2 && ax && cnt == rank - 1 && mask == (1 << (rank - 1)) - 1;
}

/* the bias gradient of the logits joins the loss pair that makes their gradient */
static int join_loss(Fuse *f, int at)
{
	const Node *n = f->g->nodes[at];
	int G = grp_of_value(f, n->in[0]);
	const Shape *z = &n->in[0]->shape;
	if (G < 0 || f->groups[G].kind != G_LOSS || f->groups[G].size - group_count(f, G, OP_CAST) != 2 ||
	    !reduces_leading(n) ||
	    z->d[z->rank - 1] < 0 || z->d[z->rank - 1] >= FUSE_SHORT_ROW ||
	    n->in[0]->def->op != OP_SOFTMAX_CROSS_ENTROPY_GRAD || !can_hoist(f, G, at))
		return 0;
	f->grp[at] = G;
	f->groups[G].size++;
	return 1;
}

static void visit_reduce(Fuse *f, int at)
{
	const Node *n = f->g->nodes[at];
	if (join_loss(f, at))
		return;
	int G = producer_group(f, n, &n->in[0]->shape);
	if (G >= 0 && try_join(f, G, at)) {
		f->groups[G].kind = G_REDUCE;
		f->groups[G].closed = 1;
	}
}

/* Softmax / LogSoftmax along the last axis, of a row length the kernel keeps in shared memory,
 * joins the elementwise group that makes its input (attention: scale, mask, then softmax) */
static void visit_row(Fuse *f, int at)
{
	const Node *n = f->g->nodes[at];
	const Shape *x = &n->in[0]->shape;
	int64_t axis = ir_attr_i(n, "axis", -1), len = x->rank ? x->d[x->rank - 1] : 0;
	if (axis < 0)
		axis += x->rank;
	if (axis != x->rank - 1 || len < FUSE_ROW_MIN || len > FUSE_ROW_MAX || n->in[0]->dt != n->out[0]->dt)
		return;
	int G = producer_group(f, n, x);
	if (G >= 0 && try_join(f, G, at)) {
		f->groups[G].kind = G_ROW;
		f->groups[G].closed = 1;
	}
}

/* SoftmaxCrossEntropyGrad(dl, z, t) joins the SoftmaxCrossEntropy(z, t) before it */
static void visit_ce_grad(Fuse *f, int at)
{
	const Node *n = f->g->nodes[at];
	const Shape *z = &n->in[1]->shape;
	int64_t classes = z->rank ? z->d[z->rank - 1] : 0;
	if (classes < 0)
		return;
	for (int j = at - 1; j >= 0; j--) {
		const Node *c = f->g->nodes[j];
		if (c->op != OP_SOFTMAX_CROSS_ENTROPY || c->in[0] != n->in[1] || c->in[1] != n->in[2] || f->grp[j] >= 0)
			continue;
		int G = new_group(f, G_LOSS, j);
		if (!try_join(f, G, at))
			f->grp[j] = -1, f->ngroups--;
		else
			f->groups[G].closed = 1;
		return;
	}
}

static int same_attrs(const Node *a, const Node *b)
{
	if (a->op != b->op || a->nattr != b->nattr)
		return 0;
	for (int i = 0; i < a->nattr; i++) {
		const Attr *x = &a->attr[i], *y = ir_attr(b, x->name);
		if (!y || x->kind != y->kind || x->i != y->i || x->f != y->f ||
		    (x->kind == A_STRING && strcmp(x->s, y->s)))
			return 0;
	}
	return 1;
}

/* every ungrouped update node like the one at `at` joins one group, if the group can sink */
static void group_updates(Fuse *f, int at)
{
	Graph *g = f->g;
	int G = new_group(f, G_OPTIM, at);
	for (int j = at + 1; j < g->nnodes; j++)
		if (f->grp[j] < 0 && is_update(g->nodes[j]) && same_attrs(g->nodes[at], g->nodes[j]) &&
		    can_sink(f, G, j)) {
			f->grp[j] = G;
			f->groups[G].at = j;
			f->groups[G].size++;
		}
	f->groups[G].closed = 1;
}

static void walk(Fuse *f)
{
	Graph *g = f->g;
	for (int at = 0; at < g->nnodes; at++) {
		const Node *n = g->nodes[at];
		if (f->grp[at] >= 0)
			continue;
		if (is_ew(n))
			visit_ew(f, at);
		else if (ir_ops[n->op].kclass == K_REDUCE)
			visit_reduce(f, at);
		else if (n->op == OP_SOFTMAX_CROSS_ENTROPY_GRAD)
			visit_ce_grad(f, at);
		else if (n->op == OP_SOFTMAX || n->op == OP_LOG_SOFTMAX)
			visit_row(f, at);
	}
	for (int at = 0; at < g->nnodes; at++)
		if (f->grp[at] < 0 && is_update(g->nodes[at]))
			group_updates(f, at);
}

/* ---- matrix-product epilogues ---- */

/* ReluGrad(dy, x) → ReluGrad(dy, Relu(x)) when Relu(x) runs earlier: same values */
static void relu_grads_read_outputs(Fuse *f)
{
	Graph *g = f->g;
	for (int j = 0; j < g->nnodes; j++) {
		Node *n = g->nodes[j];
		if (n->op != OP_RELU_GRAD)
			continue;
		const Value *x = n->in[1];
		for (int u = f->use0[x->id]; u < f->use0[x->id + 1]; u++) {
			const Node *r = g->nodes[f->use[u]];
			if (r->op == OP_RELU && f->use[u] < j && ir_shape_eq(&r->out[0]->shape, &x->shape)) {
				n->in[1] = r->out[0];
				break;
			}
		}
	}
}

/* the only reader of v is the node at position j, and the graph does not read v itself */
static int sole_reader(const Fuse *f, const Value *v, int j)
{
	return f->use0[v->id + 1] - f->use0[v->id] == 1 && f->use[f->use0[v->id]] == j && !ir_value_visible(f->g, v);
}

/* p is a product with a cuBLASLt epilogue form: Gemm without C and alpha 1, or MatMul of a
 * rank >= 2 operand (not transposed: its rows are the product's rows) by a 2-D matrix; f32 result */
int fuse_product_form(const Node *p)
{
	if (p->out[0]->dt != DT_F32)
		return 0;
	if (p->op == OP_GEMM)
		return p->nin == 2 && ir_attr_f(p, "alpha", 1.0) == 1.0;
	return p->op == OP_MATMUL && p->in[0]->shape.rank >= 2 && p->in[1]->shape.rank == 2 &&
	       !ir_attr_i(p, "transA", 0);
}

/* group G is [Add(P, bias)], [Add(P, bias), Relu(that)] or [Add(P, bias), GeluTanh(that)],
 * each optionally ending in a Cast of the last result to half precision (mixed precision: the
 * next product's operand), with P a product whose only reader is the Add: P joins G */
static void attach_epilogue(Fuse *f, int G)
{
	Graph *g = f->g;
	int m[4] = {0, 0, 0, 0}, n = 0;
	for (int j = f->groups[G].first; j < g->nnodes && n < 4; j++)
		if (f->grp[j] == G)
			m[n++] = j;
	if (n != f->groups[G].size || n > 3)
		return;
	const Node *add = g->nodes[m[0]], *act = NULL, *cast = NULL;
	for (int i = 1; i < n; i++) {
		const Node *x = g->nodes[m[i]];
		const Value *prev = g->nodes[m[i - 1]]->out[0];
		if (x->op == OP_CAST && i == n - 1 && x->in[0] == prev && prev->dt == DT_F32 && ir_dt_is_half(x->out[0]->dt))
			cast = x;
		else if (i == 1 && (x->op == OP_RELU || x->op == OP_GELU_TANH) && x->in[0] == add->out[0])
			act = x;
		else
			return;
	}
	if (add->op != OP_ADD || (act && (act->op == OP_RELU || cast) && !sole_reader(f, add->out[0], m[1])))
		return; /* a GELU's input may be read later, when D is f32: GELU_AUX_BIAS writes it */
	int pi = add->in[0]->def && fuse_product_form(add->in[0]->def) ? 0 : 1; /* Add(P, b) or Add(b, P) */
	const Value *y = add->in[pi], *b = add->in[1 - pi];
	if (!y->def || !fuse_product_form(y->def) || !sole_reader(f, y, m[0]) || b == y)
		return;
	int64_t cols = y->shape.d[y->shape.rank - 1];
	if (b->dt != DT_F32 || ir_has_batch(&b->shape) || ir_numel(&b->shape) != cols || cols < 1 ||
	    b->shape.d[b->shape.rank - 1] != cols || !ir_shape_eq(&add->out[0]->shape, &y->shape))
		return;
	int p = f->pos[y->def->id];
	f->grp[p] = G;
	f->groups[G].first = p < f->groups[G].first ? p : f->groups[G].first;
	f->groups[G].size++;
	/* a ReLU's mask (made by an earlier run: fuse_grad.c) joins as the auxiliary output */
	const Value *r = act ? act->out[0] : NULL;
	for (int u = r && act->op == OP_RELU ? f->use0[r->id] : 0; r && u < f->use0[r->id + 1]; u++) {
		int j = f->use[u];
		if (g->nodes[j]->op == OP_RELU_MASK && f->grp[j] < 0) {
			f->grp[j] = G;
			f->groups[G].size++;
			break;
		}
	}
}

/* [Transpose, Cast]: a Cast alone in its group whose operand only it reads, made by an
 * ungrouped Transpose (through Reshapes, which join too: the transposed layout is theirs),
 * takes the Transpose in; a Cast of a Concat's result joins the Concat (one kernel writes the
 * half copy beside the result) */
/* from the node at position `reader`, up its operand v through Reshapes that only the chain
 * reads and no group holds (at most 4): their positions in views, the count in *nv, the value
 * they view (v itself when none); *reader becomes the position of the last view */
static const Value *up_views(const Fuse *f, const Value *v, int *reader, int *views, int *nv)
{
	*nv = 0;
	while (v->def && ir_ops[v->def->op].kclass == K_NONE && *nv < 4 && sole_reader(f, v, *reader) &&
	       f->grp[f->pos[v->def->id]] < 0) {
		*reader = views[(*nv)++] = f->pos[v->def->id];
		v = v->def->in[0];
	}
	return v;
}

/* nodes at positions views[0..nv) and p join group G, which now starts at p */
static void join_chain(Fuse *f, int G, int p, const int *views, int nv)
{
	f->grp[p] = G;
	f->groups[G].first = p < f->groups[G].first ? p : f->groups[G].first;
	f->groups[G].size += 1 + nv;
	for (int v = 0; v < nv; v++)
		f->grp[views[v]] = G;
}

/* Nodes of op `sink` (in no group, or first in a move group) take in the nodes of op `src` whose
 * results only they read (through Reshapes), which then run in the sink's kernel, read in place:
 *   [Slice, Reshape..., Transpose, ...]  attention's split of q, k, v into heads
 *   [Transpose, Reshape...]* Concat      its gradient */
static void attach_sources(Fuse *f, Op sink, Op src)
{
	Graph *g = f->g;
	for (int j = 0; j < g->nnodes; j++) {
		const Node *n = g->nodes[j];
		int G = f->grp[j];
		if (n->op != sink || (G >= 0 && (f->groups[G].kind != G_EW || f->groups[G].first != j)))
			continue;
		for (int i = 0; i < n->nin; i++) {
			int views[4], nv, reader = j;
			const Value *x = up_views(f, n->in[i], &reader, views, &nv);
			if (!x->def || x->def->op != src || !sole_reader(f, x, reader) || f->grp[f->pos[x->def->id]] >= 0)
				continue;
			if (G < 0) {
				G = new_group(f, G_EW, j);
				f->groups[G].closed = 1;
			}
			join_chain(f, G, f->pos[x->def->id], views, nv);
		}
	}
}

static void attach_transposes(Fuse *f)
{
	Graph *g = f->g;
	for (int j = 0; j < g->nnodes; j++) {
		const Node *c = g->nodes[j];
		int G = f->grp[j];
		if (c->op != OP_CAST || G < 0 || f->groups[G].size != 1 || f->groups[G].kind != G_EW)
			continue;
		int views[4], nv, reader = j;
		const Value *t = up_views(f, c->in[0], &reader, views, &nv);
		if (t->def && t->def->op == OP_CONCAT && !nv && f->grp[f->pos[t->def->id]] < 0) {
			/* [Concat, Cast]: the Cast moves up to the Concat (others may read the f32 result) */
			int p = f->pos[t->def->id];
			f->grp[p] = G;
			f->groups[G].first = f->groups[G].at = p;
			f->groups[G].size++;
			continue;
		}
		if (!t->def || t->def->op != OP_TRANSPOSE || !sole_reader(f, t, reader) || f->grp[f->pos[t->def->id]] >= 0)
			continue;
		join_chain(f, G, f->pos[t->def->id], views, nv);
	}
}

/* An elementwise node alone (in no group, or in one of its own) whose result only one later
 * elementwise or reduction group
 * reads, of a shape that broadcasts to that group's index space (a per-row scalar between a
 * LayerNorm's reductions: Div(sum, n)), joins it: the kernel computes it at each element from
 * operands it reads there anyway — a few operations recomputed per element instead of a
 * launch and a round trip through memory. */
static void sink_broadcast_producers(Fuse *f)
{
	Graph *g = f->g;
	for (int j = 0; j < g->nnodes; j++) {
		const Node *n = g->nodes[j];
		int own = f->grp[j]; /* none, or a group of its own */
		if (!is_ew(n) || (own >= 0 && (f->groups[own].size != 1 || f->groups[own].kind != G_EW)) ||
		    ir_value_visible(g, n->out[0]) || f->use0[n->out[0]->id + 1] == f->use0[n->out[0]->id])
			continue;
		int G = f->grp[f->use[f->use0[n->out[0]->id]]];
		for (int u = f->use0[n->out[0]->id]; u < f->use0[n->out[0]->id + 1] && G >= 0; u++)
			G = f->grp[f->use[u]] == G ? G : -1;
		if (G < 0 || (f->groups[G].kind != G_EW && f->groups[G].kind != G_REDUCE) || f->groups[G].at < j ||
		    ir_ops[g->nodes[f->groups[G].first]->op].kclass == K_GEMM || tensor_count(f, G, j) > FUSE_MAX_TENSORS)
			continue;
		const Shape *dom = NULL;
		for (int k = f->groups[G].first; k < g->nnodes; k++)
			if (f->grp[k] == G)
				dom = f->groups[G].kind == G_REDUCE ? &g->nodes[k]->in[0]->shape : &g->nodes[k]->out[0]->shape;
		if (!dom || !ir_broadcasts_to(&n->out[0]->shape, dom))
			continue;
		if (own >= 0)
			f->groups[own].size = 0;
		f->grp[j] = G;
		f->groups[G].first = j < f->groups[G].first ? j : f->groups[G].first;
		f->groups[G].size++;
	}
}

/* the mixed-precision Casts of parameters (each alone in its group) become one group that runs
 * where the first of them does: their operands exist from the start */
static void group_param_casts(Fuse *f)
{
	Graph *g = f->g;
	int G = -1;
	for (int j = 0; j < g->nnodes; j++) {
		const Node *c = g->nodes[j];
		int old = f->grp[j];
		if (c->op != OP_CAST || c->in[0]->kind != V_PARAM || !ir_dt_is_half(c->out[0]->dt) ||
		    c->in[0]->dt != DT_F32 || (old >= 0 && f->groups[old].size != 1) || ir_value_visible(g, c->out[0]))
			continue;
		if (old >= 0)
			f->groups[old].size = 0;
		if (G < 0) {
			G = new_group(f, G_CASTS, j);
			f->groups[G].closed = 1;
			continue;
		}
		f->grp[j] = G;
		f->groups[G].size++;
	}
}

static void attach_epilogues(Fuse *f)
{
	for (int G = 0; G < f->ngroups; G++)
		if (f->groups[G].kind == G_EW)
			attach_epilogue(f, G);
}

/* ---- Gemm bias → Add ---- */

/* Y = Gemm(A, B, C) {beta = 1} becomes P = Gemm(A, B); Y = Add(P, C): Y keeps its value */
static int split_bias(Graph *g, int at)
{
	Node *n = g->nodes[at];
	Node *p = ir_begin(g, OP_GEMM, n->name, 2, n->in);
	ir_set_f(g, p, "alpha", ir_attr_f(n, "alpha", 1.0));
	ir_set_i(g, p, "transA", ir_attr_i(n, "transA", 0));
	ir_set_i(g, p, "transB", ir_attr_i(n, "transB", 0));
	if (ir_finish(g, p) < 0)
		return -1;
	memmove(g->nodes + at + 1, g->nodes + at, (g->nnodes - 1 - at) * sizeof *g->nodes);
	g->nodes[at] = p;
	Value **in = ir_alloc(g, 2 * sizeof *in);
	in[0] = p->out[0];
	in[1] = n->in[2];
	char name[512];
	snprintf(name, sizeof name, "%s/bias", n->name ? n->name : "Gemm");
	n->op = OP_ADD;
	n->in = in;
	n->nin = 2;
	n->nattr = 0;
	n->name = ir_strdup(g, name);
	return 0;
}

static int split_biases(Graph *g)
{
	for (int at = 0; at < g->nnodes; at++) {
		Node *n = g->nodes[at];
		if (n->op == OP_GEMM && n->nin == 3 && ir_attr_f(n, "beta", 1.0) == 1.0 && split_bias(g, at) < 0)
			return -1;
	}
	return 0;
}

/* ---- attributes and the new schedule ---- */

static void drop_fuse_attr(Node *n)
{
	for (int i = 0; i < n->nattr; i++)
		if (!strcmp(n->attr[i].name, "fuse")) {
			memmove(n->attr + i, n->attr + i + 1, (n->nattr - i - 1) * sizeof *n->attr);
			n->nattr--;
			return;
		}
}

/* groups of two or more get ids in the order they run; their members run together */
static void apply(Fuse *f)
{
	Graph *g = f->g;
	Node **order = malloc(g->nnodes * sizeof *order);
	int next = 1, k = 0;
	for (int at = 0; at < g->nnodes; at++) {
		int G = f->grp[at];
		if (G < 0 || f->groups[G].size < 2) {
			order[k++] = g->nodes[at];
			continue;
		}
		if (at != f->groups[G].at)
			continue;
		/* members in schedule order, a reduction group's reduction last (a Cast joined after it) */
		const Node *last = NULL;
		for (int j = f->groups[G].first; j < g->nnodes; j++)
			if (f->grp[j] == G) {
				ir_set_i(g, g->nodes[j], "fuse", next);
				if (f->groups[G].kind == G_REDUCE && ir_ops[g->nodes[j]->op].kclass == K_REDUCE)
					last = g->nodes[j];
				else
					order[k++] = g->nodes[j];
			}
		if (last)
			order[k++] = (Node *)last;
		next++;
	}
	DLCC_ASSERT(k == g->nnodes);
	memcpy(g->nodes, order, g->nnodes * sizeof *order);
	free(order);
}

int pass_fuse(Graph *g)
{
	for (int i = 0; i < g->nnodes; i++)
		drop_fuse_attr(g->nodes[i]);
	if (split_biases(g) < 0)
		return -1;
	int maxid = g->next_node_id; /* node ids are below it */
	Fuse f = {g, calloc(maxid + 1, sizeof(int)), malloc((g->nnodes + 1) * sizeof(int)), NULL, NULL,
		  calloc(g->nnodes + 1, sizeof(Group)), 0};
	for (int i = 0; i < g->nnodes; i++) {
		f.pos[g->nodes[i]->id] = i;
		f.grp[i] = -1;
	}
	index_uses(&f);
	relu_grads_read_outputs(&f);
	free(f.use0);
	free(f.use);
	index_uses(&f);
	walk(&f);
	attach_epilogues(&f);
	sink_broadcast_producers(&f);
	attach_transposes(&f);
	attach_sources(&f, OP_TRANSPOSE, OP_SLICE);
	attach_sources(&f, OP_CONCAT, OP_TRANSPOSE);
	group_param_casts(&f);
	apply(&f);
	fuse_grad_epilogues(g);
	free(f.use0);
	free(f.use);
	free(f.pos);
	free(f.grp);
	free(f.groups);
	return 0;
}
