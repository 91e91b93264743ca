/*
 * cg_host.c — the host side of an artifact: the schedule functions, the model description
 * and the initial parameter block.
 *
 * A schedule (train_step, infer) is a straight-line C function: for each node of the program,
 * in order, the launch or rt_gemm call the kernel writers produce, each checked (a fusion group
 * launches once, at its last member; see cg_fuse.c); then the loss
 * store and the end-of-program copies. Reshape/Flatten produce no code (their output is their
 * input's buffer). The model description (runtime/rt.h RtModelDesc) lists every tensor the
 * runtime moves across the API — names, dtypes, dims with the batch as -k, offsets from the
 * memory plan — and points at the kernel table, the embedded GPU code and the parameter blob
 * (symbols defined by the other generated files, see cg_link.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg_internal.h"

static int emit_node(CgEmit *e, const Node *n)
{
	switch (ir_ops[n->op].kclass) {
	case K_UNARY:
	case K_BINARY: return cg_emit_elementwise(e, n);
	case K_SOFTMAX: return cg_emit_softmax(e, n);
	case K_REDUCE: return cg_emit_reduce(e, n);
	case K_GEMM: return n->op == OP_GEMM ? cg_emit_gemm(e, n) : cg_emit_matmul(e, n);
	case K_NONE:
		cg_printf(&e->host, "\t/* %s: alias of its input, no launch */\n", cg_node_comment(n));
		return 0;
	case K_CUSTOM:
		switch (n->op) {
		case OP_TRANSPOSE: return cg_emit_transpose(e, n);
		case OP_SOFTMAX_CROSS_ENTROPY: return cg_emit_cross_entropy(e, n);
		case OP_SOFTMAX_CROSS_ENTROPY_GRAD: return cg_emit_softmax(e, n);
		case OP_SGD_UPDATE:
		case OP_MOMENTUM_UPDATE:
		case OP_ADAM_UPDATE: return cg_emit_optimizer(e, n);
		case OP_ALL_FINITE: return cg_emit_all_finite(e, n);
		case OP_LOSS_SCALE_UPDATE: return cg_emit_loss_scale_update(e, n);
		case OP_GATHER: case OP_GATHER_GRAD: case OP_SLICE: case OP_SLICE_GRAD: case OP_CONCAT:
		case OP_TRILU: case OP_WHERE: case OP_CAST: return cg_emit_tensor(e, n);
		case OP_RELU_MASK: case OP_RELU_MASK_GRAD: return cg_emit_relu_mask(e, n);
		case OP_GATHER_ELEMENTS: case OP_SCATTER_ELEMENTS: case OP_CUM_SUM: return cg_emit_index(e, n);
		case OP_REDUCE_MAX: case OP_REDUCE_MIN: case OP_REDUCE_PROD: case OP_ARG_MAX:
		case OP_DROPOUT: case OP_NLL_LOSS: case OP_NLL_LOSS_GRAD: return cg_emit_reduce2(e, n);
		case OP_BATCH_NORM: return cg_emit_batchnorm(e, n);
		case OP_CONV: case OP_CONV_GRAD_INPUT: case OP_CONV_GRAD_WEIGHT: case OP_MAX_POOL:
		case OP_MAX_POOL_GRAD: case OP_AVERAGE_POOL: case OP_AVERAGE_POOL_GRAD: case OP_PAD:
		case OP_PAD_GRAD: case OP_IM2COL: case OP_COL2IM: return cg_emit_conv_family(e, n);
		default: break;
		}
	}
	return cg_fail(e->err, e->errlen, "codegen: node '%s': no kernel for op %s yet", n->name,
		       ir_ops[n->op].name);
}

int cg_emit_program(CgEmit *e, const CgPlan *p, const char *fname)
{
	const Graph *g = p->g;
	e->plan = p;
	e->launches = e->gemms = 0;
	cg_printf(&e->host, "\nstatic int %s(Rt *rt, char *P, char *W, int64_t b%s)\n{\n", fname,
		  p->training ? ", int64_t step" : "");
	cg_printf(&e->host, "\t(void)P; (void)W; (void)b;%s\n", p->training ? " (void)step;" : "\n\tconst int64_t step = 0; (void)step;");
	for (int i = 0; i < g->nnodes; i++) {
		int G = p->fu.of[i];
		if (G >= 0 && i < p->fu.groups[G].last)
			cg_printf(&e->host, "\t/* %s: in fusion group %d */\n", cg_node_comment(g->nodes[i]),
				  p->fu.groups[G].id);
		else if ((G >= 0 ? cg_emit_group(e, &p->fu.groups[G]) : emit_node(e, g->nodes[i])) < 0)
			return -1;
	}
	if (p->training && !p->loss_direct)
		cg_emit_loss_store(e, g->loss);
	cg_emit_copies(e);
	cg_puts(&e->host, "\treturn 0;\n}\n");
	return 0;
}

/* ---- the model description ---- */

static const char *dt_enum(DType dt, DType prec)
{
	static const char *names[] = {"DLCC_F32", "DLCC_F16", "DLCC_BF16", "DLCC_F64",
				      "DLCC_I64", "DLCC_I32", "DLCC_BOOL", "DLCC_U8"};
	return names[ir_dt_is_float(dt) ? prec : dt];
}

static void emit_cstr(CgBuf *b, const char *s)
{
	cg_puts(b, "\"");
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			cg_printf(b, "\\%c", *s);
		else if ((unsigned char)*s < 32 || (unsigned char)*s > 126)
			cg_printf(b, "\\%03o", (unsigned char)*s);
		else
			cg_printf(b, "%c", *s);
	}
	cg_puts(b, "\"");
}

static void emit_tensor(CgBuf *b, const char *name, const Value *v, DType prec, const char *kind,
			size_t off, int param, const char *slot)
{
	cg_puts(b, "\t{{");
	emit_cstr(b, name);
	cg_printf(b, ", %s, %d, {", v ? dt_enum(v->dt, prec) : "DLCC_F32", v ? v->shape.rank : 0);
	for (int i = 0; v && i < v->shape.rank; i++)
		cg_printf(b, "%s%lld", i ? ", " : "", (long long)v->shape.d[i]);
	cg_printf(b, "}}, %s, %zu, %d, ", kind, off, param);
	if (slot)
		emit_cstr(b, slot);
	else
		cg_puts(b, "NULL");
	cg_puts(b, "},\n");
}

static int param_index(const Graph *g, const Value *p)
{
	for (int i = 0; i < g->nparams; i++)
		if (g->params[i] == p)
			return i;
	return -1;
}

/* dynamic loss scaling (passes/loss_scale.c): the state k of scale = alpha * 2^k, and alpha */
static void emit_loss_scale(CgBuf *b, const Graph *train)
{
	for (int i = 0; train && i < train->nstates; i++) {
		const Value *s = train->states[i];
		if (s->param || !s->slot || strcmp(s->slot, "loss_scale_log2"))
			continue;
		for (int j = 0; j < train->nnodes; j++)
			if (train->nodes[j]->op == OP_LOSS_SCALE && train->nodes[j]->in[0] == s)
				cg_printf(b, "\t.loss_scale_log2 = &gen_states[%d], .loss_scale_init = %.17g,\n", i,
					  ir_attr_f(train->nodes[j], "alpha", 1));
	}
}

static void emit_tensor_lists(CgEmit *e, const CgLayout *L, Graph *g, Graph *infer, Graph *train)
{
	CgBuf *b = &e->host;
	cg_puts(b, "\nstatic const RtTensorDesc gen_inputs[] = {\n");
	for (int i = 0; i < g->ninputs; i++)
		emit_tensor(b, g->inputs[i]->name, g->inputs[i], L->prec, "RT_T_INPUT", L->input_off[i], -1, NULL);
	cg_puts(b, "\t{{0}, 0, 0, 0, 0}\n};\nstatic const RtTensorDesc gen_outputs[] = {\n");
	for (int i = 0; infer && i < infer->noutputs; i++)
		emit_tensor(b, infer->outputs[i]->name, infer->outputs[i], L->prec, "RT_T_OUTPUT", L->output_off[i], -1, NULL);
	cg_puts(b, "\t{{0}, 0, 0, 0, 0}\n};\nstatic const RtTensorDesc gen_params[] = {\n");
	for (int i = 0; i < g->nparams; i++)
		emit_tensor(b, g->params[i]->name, g->params[i], L->prec, "RT_T_PARAM", L->param_off[i], -1, NULL);
	cg_puts(b, "\t{{0}, 0, 0, 0, 0}\n};\nstatic const RtTensorDesc gen_states[] = {\n");
	for (int i = 0; train && i < train->nstates; i++) {
		const Value *s = train->states[i];
		int pi = param_index(train, s->param);
		char name[512];
		if (pi >= 0)
			snprintf(name, sizeof name, "%s.%s", s->param->name, s->slot ? s->slot : "state");
		else /* a step-global state (loss scaling) goes by its own name */
			snprintf(name, sizeof name, "%s", s->name);
		emit_tensor(b, name, s, L->prec, "RT_T_STATE", L->state_off[i], pi, s->slot ? s->slot : "state");
	}
	cg_puts(b, "\t{{0}, 0, 0, 0, 0}\n};\n");
	if (train) {
		cg_puts(b, "static const RtTensorDesc gen_loss = ");
		emit_tensor(b, "loss", NULL, L->prec, "RT_T_LOSS", L->loss_off, -1, NULL);
		b->len -= 2; /* drop ",\n" */
		cg_puts(b, ";\n");
	}
	if (train && train->label) {
		cg_puts(b, "static const RtTensorDesc gen_label = ");
		emit_tensor(b, train->label->name, train->label, L->prec, "RT_T_LABEL", L->label_off, -1, NULL);
		b->len -= 2;
		cg_puts(b, ";\n");
	}
}

static void emit_image(CgEmit *e, size_t cubin80, size_t cubin90, size_t ptx)
{
	CgBuf *b = &e->host;
	cg_puts(b, "\nextern const unsigned char dlcc_blob_params[], dlcc_blob_sm80[], dlcc_blob_sm90[];\n"
		   "extern const char dlcc_blob_ptx[];\n"
		   "extern const RtKernelInfo dlcc_kernel_table[];\n");
	cg_printf(b, "static const RtModuleImage gen_image = {\n"
		     "\t.cubin_sm80 = %s, .cubin_sm80_size = %zu,\n"
		     "\t.cubin_sm90 = %s, .cubin_sm90_size = %zu,\n"
		     "\t.ptx = %s,\n"
		     "\t.kernels = dlcc_kernel_table, .nkernels = %d,\n};\n",
		  cubin80 ? "dlcc_blob_sm80" : "NULL", cubin80, cubin90 ? "dlcc_blob_sm90" : "NULL", cubin90,
		  ptx ? "dlcc_blob_ptx" : "NULL", e->nkernels);
}

void cg_emit_desc(CgEmit *e, const CgLayout *L, Graph *infer, Graph *train, size_t cubin80,
		  size_t cubin90, size_t ptx, size_t ws_bytes)
{
	Graph *g = infer ? infer : train;
	CgBuf *b = &e->host;
	emit_image(e, cubin80, cubin90, ptx);
	emit_tensor_lists(e, L, g, infer, train);
	cg_puts(b, "\nconst RtModelDesc dlcc_model_desc = {\n\t.image = &gen_image,\n");
	cg_printf(b, "\t.max_batch = %d,\n", L->max_batch);
	cg_puts(b, "\t.loss = ");
	train && train->loss_kind ? emit_cstr(b, train->loss_kind) : cg_puts(b, train ? "\"none\"" : "NULL");
	cg_puts(b, ",\n\t.optimizer = ");
	train && train->optimizer ? emit_cstr(b, train->optimizer) : cg_puts(b, "NULL");
	cg_printf(b, ",\n\t.ninputs = %d, .inputs = gen_inputs,\n", g->ninputs);
	cg_printf(b, "\t.noutputs = %d, .outputs = gen_outputs,\n", infer ? infer->noutputs : 0);
	cg_printf(b, "\t.label = %s,\n", train && train->label ? "&gen_label" : "NULL");
	cg_printf(b, "\t.loss_value = %s,\n", train ? "&gen_loss" : "NULL");
	cg_printf(b, "\t.nparams = %d, .params = gen_params,\n", g->nparams);
	cg_printf(b, "\t.nstates = %d, .states = gen_states,\n", train ? train->nstates : 0);
	cg_printf(b, "\t.param_bytes = %zu,\n\t.workspace_bytes = %zu,\n", L->param_bytes, ws_bytes);
	cg_puts(b, "\t.param_init = dlcc_blob_params,\n");
	cg_printf(b, "\t.param_zero_off = %zu, .param_zero_bytes = %zu,\n", L->state_begin, L->state_end - L->state_begin);
	emit_loss_scale(b, train);
	cg_printf(b, "\t.train_step = %s,\n\t.infer = %s,\n};\n", train ? "train_step" : "NULL",
		  infer ? "infer" : "NULL");
}

/* ---- the initial parameter block ---- */

static void put_value(unsigned char *dst, const Value *v, DType prec)
{
	int64_t n = ir_numel(&v->shape);
	if (!v->data)
		return;
	if (!ir_dt_is_float(v->dt) || v->dt == prec) {
		memcpy(dst, v->data, (size_t)n * ir_dt_size(v->dt));
		return;
	}
	DLCC_ASSERT(v->dt == DT_F32 || v->dt == DT_F64);
	for (int64_t i = 0; i < n; i++) {
		double x = v->dt == DT_F32 ? ((const float *)v->data)[i] : ((const double *)v->data)[i];
		if (prec == DT_F64)
			((double *)dst)[i] = x;
		else
			((float *)dst)[i] = (float)x;
	}
}

static void put_consts(unsigned char *blk, const CgPlan *p, DType prec)
{
	for (int i = 0; p && i < p->g->nvalues; i++) {
		const Value *v = p->g->values[i];
		if (v->kind == V_CONST)
			put_value(blk + p->loc[i].offset, v, prec);
	}
}

unsigned char *cg_param_init(const CgLayout *L, const CgPlan *pi, const CgPlan *pt, size_t *size)
{
	unsigned char *blk = calloc(L->param_bytes + 1, 1);
	const Graph *g = pi ? pi->g : pt->g;
	DLCC_ASSERT(blk);
	for (int i = 0; i < g->nparams; i++)
		put_value(blk + L->param_off[i], g->params[i], L->prec);
	put_consts(blk, pi, L->prec);
	put_consts(blk, pt, L->prec);
	/* the optimizer state starts at zero: the artifact does not carry it */
	memmove(blk + L->state_begin, blk + L->state_end, L->param_bytes - L->state_end);
	*size = L->param_bytes - (L->state_end - L->state_begin);
	return blk;
}
