/*
 * cg_optim.c — the optimizer updates SgdUpdate, MomentumUpdate and AdamUpdate (torch.optim
 * formulas, see ir/ops.def), one elementwise kernel each.
 *
 * Hyperparameters are literals; the 1-based step number is the kernel argument `step` (it
 * selects momentum's first-step rule and Adam's bias corrections, computed in double once per
 * thread). A learning-rate schedule (attributes of the node, ir/lr_schedule.c) becomes `lr_t`,
 * computed from `step` in double the way ir_lr_at computes it; without one, lr is a literal.
 * Each thread reads every operand of its element before writing any result, so the outputs
 * may alias the parameter and state buffers (the memory plan makes them do so, after
 * checking that nothing reads the old values later).
 * Multi-tensor (cg_emit_optimizer_group): every update of a step with the same op and attributes
 * in one launch. A table in constant memory holds, per tensor, its size, its first chunk and the
 * byte offset of each operand in the parameter block or the workspace (kernel arguments P, W);
 * block b works on chunk b: it finds its tensor in the table and updates CG_OPT_CHUNK elements.
 */
#include <math.h>
#include <stdio.h>

#include "codegen/cg_internal.h"

#define CG_OPT_CHUNK 2048 /* elements per block in the multi-tensor kernel */

static void emit_hyper(CgBuf *d, const char *name, double v)
{
	cg_printf(d, "\tconst R %s = (R)%.17g;\n", name, v);
}

/* lr_t, the learning rate at `step`, in double: ir_lr_at's arithmetic (ir/lr_schedule.c) */
static void emit_lr_at(CgBuf *d, const LrSchedule *s, double lr)
{
	if (s->kind != LR_CONSTANT)
		cg_printf(d, "\tconst long long se = step - %lldLL - 1; /* steps after the warm-up */\n",
			  (long long)s->warmup);
	cg_puts(d, "\tconst double lr_t = ");
	if (s->warmup)
		cg_printf(d, "step <= %lldLL ? %.17g * (double)step / (double)%lldLL : ", (long long)s->warmup, lr,
			  (long long)s->warmup);
	if (s->kind == LR_STEP)
		cg_printf(d, "%.17g * pow(%.17g, (double)(se / %lldLL));\n", lr, s->gamma, (long long)s->step_size);
	else if (s->kind == LR_COSINE)
		cg_printf(d, "se >= %lldLL ? %.17g : %.17g + (%.17g - %.17g) * (1.0 + cos(%.17g * (double)se / "
			     "(double)%lldLL)) / 2.0;\n", (long long)s->steps, s->min_lr, s->min_lr, lr, s->min_lr,
			  M_PI, (long long)s->steps);
	else
		cg_printf(d, "%.17g;\n", lr);
}

/* node n's learning rate as a double expression: a literal, or lr_t from its schedule */
static const char *lr_expr(CgBuf *d, const Node *n, double dflt, char *buf, size_t len)
{
	LrSchedule s;
	double lr = ir_attr_f(n, "lr", dflt);
	DLCC_ASSERT(ir_lr_of(n, &s) == 0); /* the verifier checked the attributes */
	if (!ir_lr_varies(&s)) {
		snprintf(buf, len, "%.17g", lr);
		return buf;
	}
	emit_lr_at(d, &s, lr);
	return "lr_t";
}

/* constants of node n's update, then the statement per element i (operands x0.., results y0..) */
static void sgd_hyper(CgBuf *d, const Node *n)
{
	char buf[32];
	cg_printf(d, "\tconst R lr = (R)%s;\n", lr_expr(d, n, 0.01, buf, sizeof buf));
	emit_hyper(d, "wd", ir_attr_f(n, "weight_decay", 0));
	cg_puts(d, "\t(void)step;\n");
}

static const char *sgd_elem(const Node *n)
{
	(void)n;
	return "\t\tconst R p = x0[i], g = gi + wd * p;\n\t\ty0[i] = p - lr * g;\n";
}

static void momentum_hyper(CgBuf *d, const Node *n)
{
	char buf[32];
	cg_printf(d, "\tconst R lr = (R)%s;\n", lr_expr(d, n, 0.01, buf, sizeof buf));
	emit_hyper(d, "wd", ir_attr_f(n, "weight_decay", 0));
	emit_hyper(d, "mom", ir_attr_f(n, "momentum", 0));
	emit_hyper(d, "damp", ir_attr_f(n, "dampening", 0));
	cg_printf(d, "\tconst int nesterov = %d;\n", (int)ir_attr_i(n, "nesterov", 0));
	if (ir_attr_f(n, "momentum", 0) == 0.0)
		cg_puts(d, "\t(void)nesterov; (void)damp; (void)step; (void)mom;\n");
}

static const char *momentum_elem(const Node *n)
{
	if (ir_attr_f(n, "momentum", 0) == 0.0) /* torch keeps no buffer without momentum: plain SGD */
		return "\t\tconst R p = x0[i], g = gi + wd * p;\n"
		       "\t\tconst R buf = x2[i], dir = g;\n"
		       "\t\ty0[i] = p - lr * dir;\n\t\ty1[i] = buf;\n";
	return "\t\tconst R p = x0[i], g = gi + wd * p;\n"
	       "\t\tconst R buf = step == 1 ? g : mom * x2[i] + ((R)1 - damp) * g;\n"
	       "\t\tconst R dir = nesterov ? g + mom * buf : buf;\n"
	       "\t\ty0[i] = p - lr * dir;\n\t\ty1[i] = buf;\n";
}

/* AdamW's decay 1 - lr·wd and the step size lr/bc1 follow the schedule's lr */
static void adam_hyper(CgBuf *d, const Node *n)
{
	char buf[32];
	double lr = ir_attr_f(n, "lr", 1e-3), wd = ir_attr_f(n, "weight_decay", 0);
	int decoupled = (int)ir_attr_i(n, "decoupled", 0);
	const char *lrx = lr_expr(d, n, 1e-3, buf, sizeof buf);
	emit_hyper(d, "b1", ir_attr_f(n, "beta1", 0.9));
	emit_hyper(d, "b2", ir_attr_f(n, "beta2", 0.999));
	emit_hyper(d, "eps", ir_attr_f(n, "eps", 1e-8));
	emit_hyper(d, "wd", decoupled ? 0 : wd);
	if (decoupled && lrx != buf)
		cg_printf(d, "\tconst R decay = (R)(1.0 - lr_t * %.17g);\n", wd);
	else
		emit_hyper(d, "decay", decoupled ? 1 - lr * wd : 1);
	cg_printf(d, "\tconst double bc1 = 1.0 - pow(%.17g, (double)step), bc2 = 1.0 - pow(%.17g, (double)step);\n",
		  ir_attr_f(n, "beta1", 0.9), ir_attr_f(n, "beta2", 0.999));
	cg_printf(d, "\tconst R step_size = (R)(%s / bc1), bc2_sqrt = (R)sqrt(bc2);\n", lrx);
}

static const char *adam_elem(const Node *n)
{
	(void)n;
	return "\t\tconst R p = x0[i] * decay, g = gi + wd * x0[i];\n"
	       "\t\tconst R m = b1 * x2[i] + ((R)1 - b1) * g;\n"
	       "\t\tconst R v = b2 * x3[i] + ((R)1 - b2) * g * g;\n"
	       "\t\tconst R denom = r_sqrt(v) / bc2_sqrt + eps;\n"
	       "\t\ty0[i] = p - step_size * m / denom;\n"
	       "\t\ty1[i] = m;\n"
	       "\t\ty2[i] = v;\n";
}

/* the hyperparameters into the kernel; returns the per-element statement */
static const char *emit_update(CgBuf *d, const Node *n)
{
	switch (n->op) {
	case OP_SGD_UPDATE: sgd_hyper(d, n); return sgd_elem(n);
	case OP_MOMENTUM_UPDATE: momentum_hyper(d, n); return momentum_elem(n);
	case OP_ADAM_UPDATE: adam_hyper(d, n); return adam_elem(n);
	default: DLCC_ASSERT(0 && "not an optimizer op");
	}
	return NULL;
}

static const char *const xs[] = {"x0", "x1", "x2", "x3", "x4", "x5"}, *const ys[] = {"y0", "y1", "y2"};

/* Loss scaling (passes/loss_scale.c): the update's last two inputs are the scale and the finite
 * flag. Before the element loop: 1/scale; in it, first: the gradient `gi` the statements use,
 * and when the step is skipped the old values copied to the outputs (a no-op in place). */
static int scaled(const Node *n) { return n->nin == n->nout + 3; }

static void emit_unscale(CgBuf *d, const Node *n, const char *ind)
{
	if (scaled(n))
		cg_printf(d, "%sconst R inv_scale = (R)1 / %s[0];\n", ind, xs[n->nout + 1]);
}

static void emit_grad(CgBuf *d, const Node *n, const char *ind)
{
	if (!scaled(n)) {
		cg_printf(d, "%sconst R gi = x1[i];\n", ind);
		return;
	}
	cg_printf(d, "%sif (%s[0] == (R)0) {\n", ind, xs[n->nout + 2]);
	for (int o = 0; o < n->nout; o++)
		cg_printf(d, "%s\t%s[i] = %s[i];\n", ind, ys[o], xs[o ? o + 1 : 0]);
	cg_printf(d, "%s\tcontinue;\n%s}\n%sconst R gi = x1[i] * inv_scale;\n", ind, ind, ind);
}

int cg_emit_optimizer(CgEmit *e, const Node *n)
{
	const Value *p = n->in[0];
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	for (int i = 0; i < n->nout; i++)
		cg_arg_out(&k, ys[i], n->out[i]);
	for (int i = 0; i < n->nin; i++)
		cg_arg_in(&k, xs[i], n->in[i]);
	cg_arg_ll(&k, "step", "step");
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%s)", cg_prod(&p->shape, 0, p->shape.rank, "b"));
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\tconst long long n = %s;\n", cg_prod(&p->shape, 0, p->shape.rank, "B"));
	const char *elem = emit_update(d, n);
	emit_unscale(d, n, "\t");
	cg_printf(d, "\t%s {\n", cg_loop("i", "n"));
	emit_grad(d, n, "\t\t");
	cg_printf(d, "%s\t}\n", elem);
	cg_kernel_close(e, &k);
	return 0;
}

/* ---- multi-tensor ---- */

/* byte offset in its block, times two, plus 1 for the workspace */
long long cg_table_ref(const CgEmit *e, const Value *v)
{
	const CgLoc *l = &e->plan->loc[v->id];
	DLCC_ASSERT(l->space != CG_NOWHERE);
	return (long long)l->offset * 2 + (l->space == CG_WS);
}

/* per tensor: numel, first chunk, then the refs of outputs and inputs; returns the chunks */
static long long emit_table(CgEmit *e, const CgGroup *gr, const char *name)
{
	CgBuf *d = &e->dev;
	long long chunk = 0;
	cg_printf(d, "\n__constant__ long long %s_tab[] = {\n", name);
	for (int t = 0; t < gr->n; t++) {
		const Node *n = gr->nodes[t];
		long long numel = ir_numel(&n->in[0]->shape);
		DLCC_ASSERT(!ir_has_batch(&n->in[0]->shape));
		cg_printf(d, "\t%lldLL, %lldLL,", numel, chunk);
		for (int i = 0; i < n->nout; i++)
			cg_printf(d, " %lldLL,", cg_table_ref(e, n->out[i]));
		for (int i = 0; i < n->nin; i++)
			cg_printf(d, " %lldLL,", cg_table_ref(e, n->in[i]));
		cg_puts(d, "\n");
		chunk += (numel + CG_OPT_CHUNK - 1) / CG_OPT_CHUNK;
	}
	cg_puts(d, "};\n");
	return chunk;
}

/* `R *y0 = (R *)(row[2] & 1 ? W : P) + ...` for every operand of the row's tensor */
static void emit_operands(CgBuf *d, const Node *n)
{
	for (int i = 0; i < n->nout + n->nin; i++) {
		int out = i < n->nout;
		cg_printf(d, "\t\t%sR *%s = (%sR *)((row[%d] & 1 ? W : P) + (row[%d] >> 1));\n", out ? "" : "const ",
			  out ? ys[i] : xs[i - n->nout], out ? "" : "const ", 2 + i, 2 + i);
	}
}

int cg_emit_optimizer_group(CgEmit *e, const CgGroup *gr)
{
	const Node *n0 = gr->nodes[0];
	int width = 2 + n0->nin + n0->nout;
	CgKernel k;
	cg_kernel_begin(e, &k, NULL, cg_group_comment(gr));
	snprintf(k.name, sizeof k.name, "k%d_fused_%s", e->nkernels, n0->op == OP_SGD_UPDATE ? "sgd" :
		 n0->op == OP_MOMENTUM_UPDATE ? "momentum" : "adam");
	long long chunks = emit_table(e, gr, k.name);
	cg_arg_raw(&k, "char *", "P", "P");
	cg_arg_raw(&k, "char *", "W", "W");
	cg_arg_ll(&k, "step", "step");
	snprintf(k.grid, sizeof k.grid, "dlcc_blocks(%lld)", chunks);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	const char *elem = emit_update(d, n0);
	cg_printf(d, "\tfor (long long blk = blockIdx.x; blk < %lldLL; blk += gridDim.x) {\n"
		     "\t\tint t = 0;\n\t\twhile (t + 1 < %d && %s_tab[(t + 1) * %d + 1] <= blk)\n\t\t\tt++;\n"
		     "\t\tconst long long *row = %s_tab + t * %d;\n", chunks, gr->n, k.name, width, k.name, width);
	emit_operands(d, n0);
	cg_printf(d, "\t\tconst long long lo = (blk - row[1]) * %dLL, n = row[0] < lo + %dLL ? row[0] : lo + %dLL;\n",
		  CG_OPT_CHUNK, CG_OPT_CHUNK, CG_OPT_CHUNK);
	emit_unscale(d, n0, "\t\t");
	cg_puts(d, "\t\tfor (long long i = lo + threadIdx.x; i < n; i += blockDim.x) {\n");
	emit_grad(d, n0, "\t\t\t");
	cg_printf(d, "%s\t\t}\n\t}\n", elem);
	cg_kernel_close(e, &k);
	return 0;
}
