/*
 * fold.c — constant folding (pass_fold_constants).
 *
 * In schedule order, a node whose inputs are all V_CONST is run once on the host by the
 * reference interpreter (ir/interp.h), in float64, on a scratch one-node graph; each of its
 * outputs then becomes a V_CONST in place (same Value, same id and name, data converted to the
 * output dtype) and the node leaves the schedule. Since outputs turn into constants as the walk
 * goes, whole constant chains (ONNX shape arithmetic, scaled constants) fold in one pass.
 *
 * Only small results are folded: no batch dimension and at most FOLD_MAX_ELEMS elements each,
 * so folding never bloats the artifact. The optimizer updates are never folded (Momentum/Adam
 * depend on the run-time step). A node the interpreter cannot evaluate is left alone for the
 * kernels to run. Constants that become unused are simply no longer printed or emitted.
 */
#include <stdlib.h>
#include <string.h>

#include "ir/interp.h"
#include "passes/passes.h"
#include "rt_half.h"

#define FOLD_MAX_ELEMS (64 * 1024)

static int fold_candidate(const Node *n)
{
	if (n->op == OP_SGD_UPDATE || n->op == OP_MOMENTUM_UPDATE || n->op == OP_ADAM_UPDATE)
		return 0;
	if (n->nin == 0 || ir_attr(n, "seed")) /* seeded (random) ops draw anew each step */
		return 0;
	for (int k = 0; k < n->nin; k++)
		if (n->in[k]->kind != V_CONST || !n->in[k]->data)
			return 0;
	for (int k = 0; k < n->nout; k++)
		if (ir_has_batch(&n->out[k]->shape) || ir_numel(&n->out[k]->shape) > FOLD_MAX_ELEMS)
			return 0;
	return 1;
}

static void fold_copy_attrs(Graph *s, Node *c, const Node *n)
{
	for (int i = 0; i < n->nattr; i++) {
		const Attr *a = &n->attr[i];
		switch (a->kind) {
		case A_INT: ir_set_i(s, c, a->name, a->i); break;
		case A_FLOAT: ir_set_f(s, c, a->name, a->f); break;
		case A_INTS: ir_set_ints(s, c, a->name, a->n, a->ints); break;
		case A_FLOATS: ir_set_floats(s, c, a->name, a->n, a->floats); break;
		case A_STRING: ir_set_s(s, c, a->name, a->s); break;
		}
	}
}

/* the node alone in a scratch graph over copies of its constant inputs */
static Node *fold_scratch(Graph *s, const Node *n)
{
	Value *in[16];
	DLCC_ASSERT(n->nin <= 16);
	for (int k = 0; k < n->nin; k++)
		in[k] = ir_value(s, V_CONST, NULL, n->in[k]->dt, n->in[k]->shape, n->in[k]->data);
	Node *c = ir_begin(s, n->op, n->name, n->nin, in);
	fold_copy_attrs(s, c, n);
	return ir_finish(s, c) < 0 ? NULL : c;
}

/* float64 values into v->data of v's dtype */
static void fold_store(Graph *g, Value *v, const double *x)
{
	int64_t cnt = ir_numel(&v->shape);
	char *d = ir_alloc(g, (cnt ? cnt : 1) * ir_dt_size(v->dt));
	for (int64_t k = 0; k < cnt; k++) {
		switch (v->dt) {
		case DT_F32: ((float *)d)[k] = (float)x[k]; break;
		case DT_F64: ((double *)d)[k] = x[k]; break;
		case DT_F16: ((uint16_t *)d)[k] = rt_f32_to_f16((float)x[k]); break;
		case DT_BF16: ((uint16_t *)d)[k] = rt_f32_to_bf16((float)x[k]); break;
		case DT_I64: ((int64_t *)d)[k] = (int64_t)x[k]; break;
		case DT_I32: ((int32_t *)d)[k] = (int32_t)x[k]; break;
		case DT_BOOL: ((uint8_t *)d)[k] = x[k] != 0; break;
		case DT_U8: ((uint8_t *)d)[k] = (uint8_t)x[k]; break;
		default: DLCC_ASSERT(!"dtype");
		}
	}
	v->data = d;
}

/* evaluate n; on success its outputs are constants. 0 folded, -1 left alone */
static int fold_node(Graph *g, Node *n)
{
	Graph *s = ir_graph_new("fold");
	Node *c = fold_scratch(s, n);
	char err[256];
	Interp *it = c ? interp_new(s, DT_F64, 1, err, sizeof err) : NULL;
	int rc = it && interp_run(it, 1) == 0 ? 0 : -1;
	double *x[8] = {0};
	DLCC_ASSERT(n->nout <= 8);
	for (int k = 0; k < n->nout && rc == 0; k++) {
		x[k] = malloc((ir_numel(&n->out[k]->shape) + 1) * sizeof *x[k]);
		DLCC_ASSERT(x[k]);
		rc = interp_get_f64(it, c->out[k], x[k]);
	}
	for (int k = 0; k < n->nout && rc == 0; k++) {
		Value *v = n->out[k];
		fold_store(g, v, x[k]);
		v->kind = V_CONST;
		v->def = NULL;
		v->out_index = 0;
	}
	for (int k = 0; k < n->nout; k++)
		free(x[k]);
	interp_free(it);
	ir_graph_free(s);
	return rc;
}

int pass_fold_constants(Graph *g)
{
	char *keep = malloc(g->nnodes + 1);
	DLCC_ASSERT(keep);
	for (int i = 0; i < g->nnodes; i++)
		keep[i] = !(fold_candidate(g->nodes[i]) && fold_node(g, g->nodes[i]) == 0);
	ir_remove_nodes(g, keep);
	free(keep);
	return 0;
}
