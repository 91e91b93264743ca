/*
 * cse.c — common-subexpression elimination (pass_cse).
 *
 * Two nodes compute the same thing when they have the same op, the same inputs (the same
 * Values, in order — or in either order for the commutative Add and Mul, whose IEEE results do
 * not depend on the order) and the same attributes (compared as sets, floats bit for bit). One
 * walk in schedule order keeps a hash table of the nodes seen; a node equal to an earlier one
 * leaves the schedule and its outputs' uses move to the earlier node's outputs. Because uses
 * move as the walk goes, chains of duplicates (the same forward recomputed by autodiff, say)
 * collapse in one pass. Constants are numbered first: two V_CONST of one dtype, shape and bytes
 * are one constant, so `Mul(%x, %c1)` and `Mul(%x, %c2)` with equal data merge too.
 *
 * Never merged: the optimizer updates (they write state), ops carrying a `seed` attribute
 * (random draws must stay distinct), and a node or constant whose value is a model output
 * (its name is the output's file name). Preconditions: a verified graph. What is left: dead
 * constants are simply not printed; run dce after it only if something else became dead.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"

static int cse_is_output(const Graph *g, const Value *v)
{
	for (int i = 0; i < g->noutputs; i++)
		if (g->outputs[i] == v)
			return 1;
	return 0;
}

/* a node with effects (state writes, random draws) is never one of a pair */
static int cse_pure(const Node *n)
{
	if (n->op == OP_SGD_UPDATE || n->op == OP_MOMENTUM_UPDATE || n->op == OP_ADAM_UPDATE)
		return 0;
	return ir_attr(n, "seed") == NULL;
}

/* a node whose value is a model output stays (it may still be the one others merge into) */
static int cse_removable(const Graph *g, const Node *n)
{
	for (int k = 0; k < n->nout; k++)
		if (cse_is_output(g, n->out[k]))
			return 0;
	return 1;
}

/* ---- constants ---- */

static int cse_same_const(const Value *a, const Value *b)
{
	return a->dt == b->dt && ir_shape_eq(&a->shape, &b->shape) && a->data && b->data &&
	       memcmp(a->data, b->data, ir_numel(&a->shape) * ir_dt_size(a->dt)) == 0;
}

/* every constant a node reads becomes the first equal constant read before it */
static void cse_constants(Graph *g)
{
	Value **seen = malloc((g->nvalues + 1) * sizeof *seen);
	int nseen = 0;
	for (int i = 0; i < g->nnodes; i++) {
		Node *n = g->nodes[i];
		for (int k = 0; k < n->nin; k++) {
			Value *c = n->in[k];
			if (c->kind != V_CONST || cse_is_output(g, c))
				continue;
			int j = 0;
			while (j < nseen && seen[j] != c && !cse_same_const(seen[j], c))
				j++;
			if (j == nseen)
				seen[nseen++] = c;
			n->in[k] = seen[j];
		}
	}
	free(seen);
}

/* ---- nodes ---- */

static int cse_commutes(Op op) { return op == OP_ADD || op == OP_MUL; }

static unsigned cse_hash(const Node *n)
{
	unsigned h = 2166136261u ^ (unsigned)n->op, sum = 0;
	for (int k = 0; k < n->nin; k++) {
		unsigned id = (unsigned)n->in[k]->id * 2654435761u;
		if (cse_commutes(n->op))
			sum += id;
		else
			h = (h ^ id) * 16777619u;
	}
	return (h ^ sum) * 16777619u ^ (unsigned)n->nattr;
}

static int cse_same_attr(const Attr *a, const Attr *b)
{
	if (strcmp(a->name, b->name) || a->kind != b->kind)
		return 0;
	switch (a->kind) {
	case A_INT: return a->i == b->i;
	case A_FLOAT: return memcmp(&a->f, &b->f, sizeof a->f) == 0;
	case A_INTS: return a->n == b->n && !memcmp(a->ints, b->ints, a->n * sizeof *a->ints);
	case A_FLOATS: return a->n == b->n && !memcmp(a->floats, b->floats, a->n * sizeof *a->floats);
	case A_STRING: return strcmp(a->s, b->s) == 0;
	}
	return 0;
}

static int cse_same_attrs(const Node *a, const Node *b)
{
	if (a->nattr != b->nattr)
		return 0;
	for (int i = 0; i < a->nattr; i++) {
		const Attr *o = ir_attr(b, a->attr[i].name);
		if (!o || !cse_same_attr(&a->attr[i], o))
			return 0;
	}
	return 1;
}

static int cse_same_inputs(const Node *a, const Node *b)
{
	if (a->nin != b->nin)
		return 0;
	int same = 1;
	for (int k = 0; k < a->nin; k++)
		same &= a->in[k] == b->in[k];
	if (!same && cse_commutes(a->op) && a->nin == 2)
		same = a->in[0] == b->in[1] && a->in[1] == b->in[0];
	return same;
}

static int cse_same(const Node *a, const Node *b)
{
	return a->op == b->op && a->nout == b->nout && cse_same_inputs(a, b) && cse_same_attrs(a, b);
}

/* the earlier equal node in the table, or NULL after inserting n */
static Node *cse_lookup(Node **tab, unsigned mask, Node *n)
{
	for (unsigned h = cse_hash(n) & mask;; h = (h + 1) & mask) {
		if (!tab[h]) {
			tab[h] = n;
			return NULL;
		}
		if (cse_same(tab[h], n))
			return tab[h];
	}
}

int pass_cse(Graph *g)
{
	cse_constants(g);
	unsigned size = 16;
	while (size < 2u * (unsigned)g->nnodes + 2)
		size *= 2;
	Node **tab = calloc(size, sizeof *tab);
	char *keep = malloc(g->nnodes + 1);
	DLCC_ASSERT(tab && keep);
	for (int i = 0; i < g->nnodes; i++) {
		Node *n = g->nodes[i], *m = cse_pure(n) ? cse_lookup(tab, size - 1, n) : NULL;
		if (m && !cse_removable(g, n))
			m = NULL;
		keep[i] = m == NULL;
		for (int k = 0; m && k < n->nout; k++)
			ir_replace_uses(g, n->out[k], m->out[k]);
	}
	ir_remove_nodes(g, keep);
	free(tab);
	free(keep);
	return 0;
}
