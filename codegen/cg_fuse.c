/*
 * cg_fuse.c — the fusion groups of a program, as codegen sees them, and their kernels' dispatch.
 *
 * passes/fuse.c marks groups with the node attribute `fuse = K` and makes each contiguous in
 * the schedule; here they are read back (and checked) into a CgFusion: per schedule position
 * the group, per group its kind (decided by its members' ops) and span, and per value whether
 * it is internal — produced by a member and read only by members of the same group (not in the
 * optimizer and loss kernels, which write every result), so it has
 * no buffer (the memory plan skips it) and lives in a register of the group kernel. The memory
 * plan also reads the spans: a group reads its operands at its last position and writes its
 * outputs from its first. cg_emit_group hands a group to the kernel writer of its kind.
 */
#include <stdlib.h>
#include <string.h>

#include "codegen/cg_internal.h"

static int is_update(Op op)
{
	return op == OP_SGD_UPDATE || op == OP_MOMENTUM_UPDATE || op == OP_ADAM_UPDATE;
}

static CgGroupKind group_kind(const CgGroup *gr)
{
	const Node *last = gr->nodes[gr->n - 1];
	if (is_update(last->op))
		return CG_G_OPTIM;
	if (gr->nodes[0]->op == OP_SOFTMAX_CROSS_ENTROPY)
		return CG_G_LOSS;
	if (ir_ops[gr->nodes[0]->op].kclass == K_GEMM)
		return CG_G_GEMM;
	if (gr->nodes[0]->op == OP_TRANSPOSE || gr->nodes[0]->op == OP_CONCAT || gr->nodes[0]->op == OP_SLICE)
		return CG_G_MOVE; /* (a move group that ends in a Concat starts with a Transpose) */
	if (gr->nodes[0]->op == OP_CAST && gr->nodes[0]->in[0]->kind == V_PARAM)
		return CG_G_CASTS;
	const Node *row = last->op == OP_CAST && gr->n >= 2 ? gr->nodes[gr->n - 2] : last; /* + its half copy */
	if (row->op == OP_SOFTMAX || row->op == OP_LOG_SOFTMAX)
		return CG_G_ROW;
	return ir_ops[last->op].kclass == K_REDUCE ? CG_G_REDUCE : CG_G_EW;
}

/* member i of a move group: Transposes (each with its Reshapes) into a Concat, then an optional
 * Cast; or an optional Slice, Reshapes, one Transpose, and Reshapes with a last Cast after it */
static int move_member(const CgGroup *gr, int i)
{
	const Node *n = gr->nodes[i];
	int c = -1, t = -1;
	for (int j = 0; j < gr->n; j++)
		c = gr->nodes[j]->op == OP_CONCAT ? j : c;
	if (c >= 0) /* [Transpose, Reshape...]* Concat [Cast] */
		return i < c ? n->op == OP_TRANSPOSE || ir_ops[n->op].kclass == K_NONE
		       : i == c ? 1 : i == c + 1 && i == gr->n - 1 && n->op == OP_CAST;
	for (int j = 0; j < gr->n; j++)
		if (gr->nodes[j]->op == OP_TRANSPOSE)
			t = t < 0 ? j : -2;
	if (t < 0)
		return 0;
	if (i == t || (i == 0 && n->op == OP_SLICE))
		return 1;
	if (i == gr->n - 1 && i > t)
		return n->op == OP_CAST;
	return ir_ops[n->op].kclass == K_NONE && (i < t || gr->nodes[gr->n - 1]->op == OP_CAST);
}

/* members agree with their kind: the shape of the index space, the ops */
static int check_group(const CgGroup *gr, char *err, size_t errlen)
{
	int row = gr->n - 1 - (gr->kind == CG_G_ROW && gr->nodes[gr->n - 1]->op == OP_CAST); /* the row op */
	const Shape *dom = gr->kind == CG_G_REDUCE ? &gr->nodes[gr->n - 1]->in[0]->shape
			   : gr->kind == CG_G_ROW  ? &gr->nodes[row]->in[0]->shape
						   : &gr->nodes[gr->n - 1]->out[0]->shape;
	for (int i = 0; i < gr->n; i++) {
		const Node *n = gr->nodes[i];
		KClass k = ir_ops[n->op].kclass;
		int ok;
		switch (gr->kind) {
		case CG_G_OPTIM: ok = n->op == gr->nodes[0]->op; break;
		case CG_G_MOVE: /* [Slice, Reshape...]? [Transpose, Reshape..., Cast]?, or [Concat, Cast] */
			ok = move_member(gr, i);
			break;
		case CG_G_CASTS:
			ok = n->op == OP_CAST && n->in[0]->kind == V_PARAM && n->out[0]->dt == gr->nodes[0]->out[0]->dt;
			break;
		case CG_G_GEMM: /* a product and its epilogue (passes/fuse.c; the forms: cg_epilogue.c) */
			ok = gr->n <= 5 && (i == 0 ? k == K_GEMM
					    : n->op == OP_ADD || n->op == OP_RELU || n->op == OP_RELU_MASK ||
						      n->op == OP_GELU_TANH || n->op == OP_RELU_MASK_GRAD ||
						      n->op == OP_GELU_TANH_GRAD || n->op == OP_REDUCE_SUM || n->op == OP_CAST);
			break;
		case CG_G_LOSS: /* the pair, then the bias gradient and / or the gradient's half copy */
			ok = gr->n <= 4 && (i >= 2 ? k == K_REDUCE || n->op == OP_CAST :
				n->op == (i ? OP_SOFTMAX_CROSS_ENTROPY_GRAD : OP_SOFTMAX_CROSS_ENTROPY));
			break;
		default:
			ok = (i == gr->n - 1 && gr->kind == CG_G_REDUCE) || (gr->kind == CG_G_ROW && i == row) ||
			     (gr->kind == CG_G_ROW && i > row && n->op == OP_CAST && n->in[0] == gr->nodes[row]->out[0]) ||
			     ((k == K_UNARY || k == K_BINARY || n->op == OP_CAST || n->op == OP_WHERE) &&
			      gr->kind != CG_G_ROW && ir_broadcasts_to(&n->out[0]->shape, dom)) ||
			     ((k == K_UNARY || k == K_BINARY || n->op == OP_CAST || n->op == OP_WHERE) &&
			      ir_shape_eq(&n->out[0]->shape, dom));
		}
		if (!ok)
			return cg_fail(err, errlen, "codegen: node '%s' (%s) cannot be fused with node '%s' (%s)",
				       n->name, ir_ops[n->op].name, gr->nodes[0]->name, ir_ops[gr->nodes[0]->op].name);
	}
	return 0;
}

static int read_groups(CgFusion *f, const Graph *g, char *err, size_t errlen)
{
	for (int i = 0; i < g->nnodes; i++) {
		int64_t id = ir_attr_i(g->nodes[i], "fuse", 0);
		f->of[i] = -1;
		if (id <= 0)
			continue;
		CgGroup *gr = f->ngroups ? &f->groups[f->ngroups - 1] : NULL;
		if (!gr || gr->id != id) {
			for (int k = 0; k < f->ngroups; k++)
				if (f->groups[k].id == id)
					return cg_fail(err, errlen, "codegen: fusion group %lld is not contiguous "
							   "in the schedule (node '%s')", (long long)id, g->nodes[i]->name);
			gr = &f->groups[f->ngroups++];
			*gr = (CgGroup){.id = (int)id, .first = i, .nodes = (const Node **)g->nodes + i};
		}
		gr->last = i;
		gr->n++;
		f->of[i] = f->ngroups - 1;
	}
	for (int k = 0; k < f->ngroups; k++) {
		f->groups[k].kind = group_kind(&f->groups[k]);
		if (check_group(&f->groups[k], err, errlen) < 0)
			return -1;
	}
	return 0;
}


/* a loss group writes every result, except the f32 gradient when only its half copy is kept
 * (no bias-gradient member, which reads the gradient back from memory) */
static int loss_grad_internal(const CgGroup *gr, const Node *n)
{
	int cast = 0;
	for (int i = 2; i < gr->n; i++) {
		if (gr->nodes[i]->op != OP_CAST)
			return 0;
		cast = 1;
	}
	return cast && n->op == OP_SOFTMAX_CROSS_ENTROPY_GRAD;
}

/* internal: a group member's output that only members of its group read — except the product
 * of an epilogue group that writes a half-precision value: where the runtime has no such
 * epilogue, the f32 product goes there (cg_epilogue.c) */
static void find_internal(CgFusion *f, const Graph *g, const int *pos)
{
	for (int i = 0; i < g->nnodes; i++) {
		const Node *n = g->nodes[i];
		for (int o = 0; o < n->nout; o++)
			f->internal[n->out[o]->id] = f->of[i] >= 0 && f->groups[f->of[i]].kind != CG_G_OPTIM &&
						     (f->groups[f->of[i]].kind != CG_G_LOSS || loss_grad_internal(&f->groups[f->of[i]], n)) &&
						     !ir_value_visible(g, n->out[o]);
		for (int k = 0; k < n->nin; k++) {
			const Value *v = n->in[k];
			if (v->def && (f->of[i] < 0 || f->of[pos[v->def->id]] != f->of[i]))
				f->internal[v->id] = 0;
		}
	}
	for (int k = 0; k < f->ngroups; k++)
		for (int i = 1; f->groups[k].kind == CG_G_GEMM && i < f->groups[k].n; i++)
			if (f->groups[k].nodes[i]->op == OP_CAST && f->internal[f->groups[k].nodes[0]->out[0]->id]) {
				f->internal[f->groups[k].nodes[0]->out[0]->id] = 0;
				f->scratch[f->groups[k].nodes[0]->out[0]->id] = 1;
			}
}

int cg_fusion_build(CgFusion *f, const Graph *g, char *err, size_t errlen)
{
	memset(f, 0, sizeof *f);
	f->of = malloc((g->nnodes + 1) * sizeof *f->of);
	f->groups = calloc(g->nnodes + 1, sizeof *f->groups);
	f->internal = calloc(g->nvalues + 1, 1);
	f->scratch = calloc(g->nvalues + 1, 1);
	if (read_groups(f, g, err, errlen) < 0)
		return -1;
	int maxid = 0;
	for (int i = 0; i < g->nnodes; i++)
		maxid = g->nodes[i]->id > maxid ? g->nodes[i]->id : maxid;
	int *pos = calloc(maxid + 1, sizeof *pos);
	for (int i = 0; i < g->nnodes; i++)
		pos[g->nodes[i]->id] = i;
	find_internal(f, g, pos);
	free(pos);
	return 0;
}

void cg_fusion_free(CgFusion *f)
{
	free(f->of);
	free(f->groups);
	free(f->internal);
	free(f->scratch);
	memset(f, 0, sizeof *f);
}

int cg_fusion_first(const CgFusion *f, int at) { return f->of && f->of[at] >= 0 ? f->groups[f->of[at]].first : at; }
int cg_fusion_last(const CgFusion *f, int at) { return f->of && f->of[at] >= 0 ? f->groups[f->of[at]].last : at; }

/* "fuses: %8 = Add(%7, %b) [node ...]; %9 = Relu(%8) [node ...]" for comments */
const char *cg_group_comment(const CgGroup *gr)
{
	static char s[4096];
	size_t o = snprintf(s, sizeof s, "fuses %d ops: ", gr->n);
	for (int i = 0; i < gr->n && o < sizeof s; i++)
		o += snprintf(s + o, sizeof s - o, "%s%s", i ? "; " : "", cg_node_comment(gr->nodes[i]));
	return s;
}

int cg_emit_group(CgEmit *e, const CgGroup *gr)
{
	switch (gr->kind) {
	case CG_G_EW: return cg_emit_ew_group(e, gr);
	case CG_G_REDUCE: return cg_emit_reduce_group(e, gr);
	case CG_G_LOSS: return cg_emit_loss_group(e, gr);
	case CG_G_OPTIM: return cg_emit_optimizer_group(e, gr);
	case CG_G_GEMM: return cg_emit_gemm_group(e, gr);
	case CG_G_MOVE: return cg_emit_transpose_cast(e, gr);
	case CG_G_CASTS: return cg_emit_param_casts(e, gr);
	case CG_G_ROW: return cg_emit_softmax_group(e, gr);
	}
	return -1;
}
