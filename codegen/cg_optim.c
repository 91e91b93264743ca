/*
 * cg_optim.c — the optimizer updates SgdUpdate, MomentumUpdate and AdamUpdate (torch.optim
 * formulas, see ir/ops.def), one elementwise kernel each.
 *
 * Hyperparameters are literals; the 1-based step number is the kernel argument `step` (it
 * selects momentum's first-step rule and Adam's bias corrections, computed in double once per
 * thread). Each thread reads every operand of its element before writing any result, so the
 * outputs may alias the parameter and state buffers (the memory plan makes them do so, after
 * checking that nothing reads the old values later).
 */
#include <stdio.h>

#include "codegen/cg_internal.h"

static void emit_hyper(CgBuf *d, const char *name, double v)
{
	cg_printf(d, "\tconst R %s = (R)%.17g;\n", name, v);
}

static void emit_sgd(CgBuf *d, const Node *n)
{
	emit_hyper(d, "lr", ir_attr_f(n, "lr", 0.01));
	emit_hyper(d, "wd", ir_attr_f(n, "weight_decay", 0));
	cg_printf(d, "\t%s {\n\t\tconst R p = x0[i], g = x1[i] + wd * p;\n\t\ty0[i] = p - lr * g;\n\t}\n",
		  cg_loop("i", "n"));
}

static void emit_momentum(CgBuf *d, const Node *n)
{
	double mom = ir_attr_f(n, "momentum", 0);
	emit_hyper(d, "lr", ir_attr_f(n, "lr", 0.01));
	emit_hyper(d, "wd", ir_attr_f(n, "weight_decay", 0));
	emit_hyper(d, "mom", mom);
	emit_hyper(d, "damp", ir_attr_f(n, "dampening", 0));
	cg_printf(d, "\tconst int nesterov = %d;\n", (int)ir_attr_i(n, "nesterov", 0));
	cg_printf(d, "\t%s {\n", cg_loop("i", "n"));
	cg_puts(d, "\t\tconst R p = x0[i], g = x1[i] + wd * p;\n");
	if (mom == 0.0) /* torch keeps no buffer without momentum: plain SGD */
		cg_puts(d, "\t\tconst R buf = x2[i], dir = g;\n\t\t(void)nesterov; (void)damp; (void)step;\n");
	else
		cg_puts(d, "\t\tconst R buf = step == 1 ? g : mom * x2[i] + ((R)1 - damp) * g;\n"
			   "\t\tconst R dir = nesterov ? g + mom * buf : buf;\n");
	cg_puts(d, "\t\ty0[i] = p - lr * dir;\n"
		   "\t\ty1[i] = buf;\n\t}\n");
}

static void emit_adam(CgBuf *d, const Node *n)
{
	double lr = ir_attr_f(n, "lr", 1e-3), wd = ir_attr_f(n, "weight_decay", 0);
	int decoupled = (int)ir_attr_i(n, "decoupled", 0);
	emit_hyper(d, "b1", ir_attr_f(n, "beta1", 0.9));
	emit_hyper(d, "b2", ir_attr_f(n, "beta2", 0.999));
	emit_hyper(d, "eps", ir_attr_f(n, "eps", 1e-8));
	emit_hyper(d, "wd", decoupled ? 0 : wd);
	emit_hyper(d, "decay", decoupled ? 1 - lr * wd : 1);
	cg_printf(d, "\tconst double bc1 = 1.0 - pow(%.17g, (double)step), bc2 = 1.0 - pow(%.17g, (double)step);\n",
		  ir_attr_f(n, "beta1", 0.9), ir_attr_f(n, "beta2", 0.999));
	cg_printf(d, "\tconst R step_size = (R)(%.17g / bc1), bc2_sqrt = (R)sqrt(bc2);\n", lr);
	cg_printf(d, "\t%s {\n", cg_loop("i", "n"));
	cg_puts(d, "\t\tconst R p = x0[i] * decay, g = x1[i] + wd * x0[i];\n"
		   "\t\tconst R m = b1 * x2[i] + ((R)1 - b1) * g;\n"
		   "\t\tconst R v = b2 * x3[i] + ((R)1 - b2) * g * g;\n"
		   "\t\tconst R denom = r_sqrt(v) / bc2_sqrt + eps;\n"
		   "\t\ty0[i] = p - step_size * m / denom;\n"
		   "\t\ty1[i] = m;\n"
		   "\t\ty2[i] = v;\n\t}\n");
}

int cg_emit_optimizer(CgEmit *e, const Node *n)
{
	static const char *xs[] = {"x0", "x1", "x2", "x3"}, *ys[] = {"y0", "y1", "y2"};
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
	switch (n->op) {
	case OP_SGD_UPDATE: emit_sgd(d, n); cg_puts(d, "\t(void)step;\n"); break;
	case OP_MOMENTUM_UPDATE: emit_momentum(d, n); break;
	case OP_ADAM_UPDATE: emit_adam(d, n); break;
	default: DLCC_ASSERT(0 && "not an optimizer op");
	}
	cg_kernel_close(e, &k);
	return 0;
}
