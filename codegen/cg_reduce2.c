/*
 * cg_reduce2.c — kernels of the reduction, dropout and loss block of ops.def: ReduceMax,
 * ReduceMin, ReduceProd, ArgMax, Dropout, NllLoss, NllLossGrad.
 *
 *   ReduceMax/Min/Prod  one thread per output element, a plain loop over its group (the index
 *                       split of cg_reduce.c: kept dims give the base offset, reduced dims the
 *                       offset added); integer inputs keep their type
 *   ArgMax              one thread per (outer, inner) pair, a loop along the axis
 *   Dropout             one thread per element: the counter-based hash of ir/interp_reduce.c
 *                       (splitmix64 of seed, step, element index; all integer arithmetic), so
 *                       the mask equals the interpreter's bit for bit; `step` is the run-time
 *                       optimizer step the host schedule passes (0 in the inference program,
 *                       whose Dropouts have ratio 0)
 *   NllLoss             one block over all positions, threads striding, block tree sums of the
 *                       loss and of the weight total (uses_sync = 1); a target outside [0, C)
 *                       that is not ignore_index gives NaN (the interpreter reports it)
 *   NllLossGrad         one thread per element of d logp
 * Long reductions (a block per output, as cg_reduce.c does for sums) are left to later work.
 */
#include <stdio.h>
#include <string.h>

#include "codegen/cg_internal.h"

static const char *numel(const Value *v) { return cg_prod(&v->shape, 0, v->shape.rank, "B"); }

static void grid_over(CgKernel *k, const Shape *s)
{
	snprintf(k->grid, sizeof k->grid, "dlcc_grid(%s)", cg_prod(s, 0, s->rank, "b"));
}

/* ---- ReduceMax / ReduceMin / ReduceProd ---- */


static void emit_count(CgBuf *d, const char *name, const Shape *x, int mask, int want)
{
	cg_printf(d, "\tconst long long %s = 1LL", name);
	for (int j = 0; j < x->rank; j++)
		if (((mask >> j) & 1) == want)
			cg_printf(d, " * %s", cg_dim(x->d[j], "B"));
	cg_puts(d, ";\n");
}

/* the value over no elements, and the combining statement of s and v */
static void reduce_phrases(const Node *n, int isint, const char **init, const char **step)
{
	switch (n->op) {
	case OP_REDUCE_MAX:
		*init = isint ? "0" : "-INFINITY";
		*step = "s = j == 0 || v > s ? v : s";
		break;
	case OP_REDUCE_MIN:
		*init = isint ? "0" : "INFINITY";
		*step = "s = j == 0 || v < s ? v : s";
		break;
	default:
		*init = "1";
		*step = "s = s * v";
		break;
	}
}

static int emit_reduce_ext(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *y = n->out[0];
	const char *ty = cg_ctype(y->dt), *init, *step;
	int mask = cg_reduced_mask(n, x->shape.rank);
	reduce_phrases(n, !ir_dt_is_float(x->dt), &init, &step);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x0", x);
	grid_over(&k, &y->shape);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	emit_count(d, "nout", &x->shape, mask, 0);
	emit_count(d, "nred", &x->shape, mask, 1);
	cg_printf(d, "\t%s {\n\t\tlong long t = r, base = 0;\n", cg_loop("r", "nout"));
	cg_emit_split(d, &x->shape, mask, 0, "t", "base");
	cg_printf(d, "\t\t%s s = (%s)%s;\n\t\tfor (long long j = 0; j < nred; j++) {\n"
		     "\t\t\tlong long u = j, o = base;\n", ty, ty, init);
	cg_emit_split(d, &x->shape, mask, 1, "u", "o");
	cg_printf(d, "\t\t\tconst %s v = x0[o];\n\t\t\t%s;\n\t\t}\n\t\ty[r] = s;\n\t}\n", ty, step);
	cg_kernel_close(e, &k);
	return 0;
}

/* ---- ArgMax ---- */

static int emit_arg_max(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *y = n->out[0];
	const Shape *s = &x->shape;
	int axis = (int)ir_attr_i(n, "axis", 0), last = ir_attr_i(n, "select_last_index", 0) != 0;
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x0", x);
	grid_over(&k, &y->shape);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\tconst long long n = %s, A = %s, inner = %s;\n", numel(y), cg_dim(s->d[axis], "B"),
		  cg_prod(s, axis + 1, s->rank, "B"));
	cg_printf(d, "\t%s {\n\t\tconst long long base = (i / inner) * A * inner + i %% inner;\n"
		     "\t\tlong long best = 0;\n", cg_loop("i", "n"));
	cg_printf(d, "\t\tfor (long long a = 1; a < A; a++)\n"
		     "\t\t\tif (x0[base + a * inner] %s x0[base + best * inner])\n\t\t\t\tbest = a;\n",
		  last ? ">=" : ">");
	cg_puts(d, "\t\ty[i] = best;\n\t}\n");
	cg_kernel_close(e, &k);
	return 0;
}

/* ---- Dropout ---- */

static int emit_dropout(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0];
	double ratio = ir_attr_f(n, "ratio", 0.5);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", n->out[0]);
	cg_arg_out(&k, "mask", n->out[1]);
	cg_arg_in(&k, "x0", x);
	cg_arg_ll(&k, "step", "step");
	grid_over(&k, &x->shape);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\tconst long long n = %s;\n\tconst R scale = (R)%.17g;\n", numel(x), 1.0 / (1.0 - ratio));
	cg_printf(d, "\t%s {\n", cg_loop("i", "n"));
	cg_printf(d, "\t\tunsigned long long u = %lluULL;\n"
		     "\t\tconst unsigned long long v[3] = {0ULL, (unsigned long long)step, (unsigned long long)i};\n",
		  (unsigned long long)ir_attr_i(n, "seed", 0));
	cg_puts(d, "\t\tfor (int r = 0; r < 3; r++) { /* splitmix64: mix(mix(mix(seed) ^ step) ^ i) */\n"
		   "\t\t\tu = (u ^ v[r]) + 0x9E3779B97F4A7C15ULL;\n"
		   "\t\t\tu = (u ^ (u >> 30)) * 0xBF58476D1CE4E5B9ULL;\n"
		   "\t\t\tu = (u ^ (u >> 27)) * 0x94D049BB133111EBULL;\n"
		   "\t\t\tu ^= u >> 31;\n\t\t}\n");
	cg_printf(d, "\t\tconst int keep = (u >> 40) >= %lluULL;\n",
		  (unsigned long long)ir_dropout_threshold(ratio));
	cg_puts(d, "\t\tmask[i] = (unsigned char)keep;\n\t\ty[i] = keep ? x0[i] * scale : (R)0;\n\t}\n");
	cg_kernel_close(e, &k);
	return 0;
}

/* ---- NllLoss and its gradient ---- */

static int nll_mode(const Node *n)
{
	const Attr *r = ir_attr(n, "reduction");
	const char *s = r && r->kind == A_STRING ? r->s : "mean";
	return !strcmp(s, "none") ? 0 : !strcmp(s, "sum") ? 1 : 2;
}

/* kernel constants P (positions), C, D (positions per sample) and the ignore test `ign` */
static void emit_nll_consts(CgBuf *d, const Node *n, const Shape *lp)
{
	cg_printf(d, "\tconst long long C = %s, D = %s, P = %s * D;\n", cg_dim(lp->d[1], "B"),
		  cg_prod(lp, 2, lp->rank, "B"), cg_dim(lp->d[0], "B"));
	if (ir_attr(n, "ignore_index"))
		cg_printf(d, "#define ign(c) ((c) == %lldLL)\n", (long long)ir_attr_i(n, "ignore_index", 0));
	else
		cg_puts(d, "#define ign(c) 0\n");
}

static int emit_nll_loss(CgEmit *e, const Node *n)
{
	int mode = nll_mode(n), weighted = n->nin > 2;
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", n->out[0]);
	cg_arg_out(&k, "wsum", n->out[1]);
	cg_arg_in(&k, "lp", n->in[0]);
	cg_arg_in(&k, "t", n->in[1]);
	if (weighted)
		cg_arg_in(&k, "w", n->in[2]);
	k.uses_sync = 1;
	snprintf(k.grid, sizeof k.grid, "1");
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\t__shared__ R sh[%d];\n", CG_BLOCK);
	emit_nll_consts(d, n, &n->in[0]->shape);
	cg_puts(d, "\tR acc = (R)0, wacc = (R)0;\n"
		   "\tfor (long long q = threadIdx.x; q < P; q += blockDim.x) {\n"
		   "\t\tconst long long c = (long long)t[q];\n\t\tR l = (R)0, wc = (R)0;\n"
		   "\t\tif (!ign(c) && c >= 0 && c < C) {\n");
	cg_printf(d, "\t\t\twc = %s;\n\t\t\tl = -(wc * lp[((q / D) * C + c) * D + q %% D]);\n", weighted ? "w[c]" : "(R)1");
	cg_puts(d, "\t\t} else if (!ign(c)) {\n\t\t\tl = (R)NAN;\n\t\t}\n");
	if (mode == 0)
		cg_puts(d, "\t\ty[q] = l;\n");
	cg_puts(d, "\t\tacc += l;\n\t\twacc += wc;\n\t}\n#undef ign\n"
		   "\tacc = dlcc_block_sum(acc, sh);\n\twacc = dlcc_block_sum(wacc, sh);\n"
		   "\tif (threadIdx.x == 0) {\n\t\twsum[0] = wacc;\n");
	if (mode)
		cg_printf(d, "\t\ty[0] = %s;\n", mode == 1 ? "acc" : "acc / wacc");
	cg_puts(d, "\t}\n");
	cg_kernel_close(e, &k);
	return 0;
}

static int emit_nll_loss_grad(CgEmit *e, const Node *n)
{
	int mode = nll_mode(n), weighted = n->nin > 4;
	const Value *dx = n->out[0];
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "dx", dx);
	cg_arg_in(&k, "dy", n->in[0]);
	cg_arg_in(&k, "t", n->in[2]);
	cg_arg_in(&k, "wsum", n->in[3]);
	if (weighted)
		cg_arg_in(&k, "w", n->in[4]);
	grid_over(&k, &dx->shape);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	emit_nll_consts(d, n, &dx->shape);
	cg_printf(d, "\tconst long long n = %s;\n\t(void)P; (void)wsum;\n", numel(dx));
	cg_printf(d, "\t%s {\n\t\tconst long long c = (i / D) %% C, q = (i / (C * D)) * D + i %% D;\n"
		     "\t\tconst long long tc = (long long)t[q];\n", cg_loop("i", "n"));
	cg_printf(d, "\t\tconst R g = %s;\n", mode == 0 ? "dy[q]" : mode == 1 ? "dy[0]" : "dy[0] / wsum[0]");
	cg_printf(d, "\t\tdx[i] = c == tc && !ign(tc) ? -(%s * g) : (R)0;\n\t}\n#undef ign\n",
		  weighted ? "w[c]" : "(R)1");
	cg_kernel_close(e, &k);
	return 0;
}

int cg_emit_reduce2(CgEmit *e, const Node *n)
{
	switch (n->op) {
	case OP_REDUCE_MAX: case OP_REDUCE_MIN: case OP_REDUCE_PROD: return emit_reduce_ext(e, n);
	case OP_ARG_MAX: return emit_arg_max(e, n);
	case OP_DROPOUT: return emit_dropout(e, n);
	case OP_NLL_LOSS: return emit_nll_loss(e, n);
	case OP_NLL_LOSS_GRAD: return emit_nll_loss_grad(e, n);
	default: break;
	}
	return cg_fail(e->err, e->errlen, "codegen: node '%s': no kernel for op %s", n->name, ir_ops[n->op].name);
}
