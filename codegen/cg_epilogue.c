/*
 * cg_epilogue.c — a matrix product with its epilogue as one rt_gemm_ep call (a cuBLASLt
 * epilogue on a GPU), and the ReluMask / ReluMaskGrad kernels.
 *
 * The groups (passes/fuse.c), first member the product P, and the epilogue each becomes:
 *   [P, Add(bias)]                        BIAS
 *   [P, Add(bias), Relu]                  RELU_BIAS
 *   [P, Add(bias), Relu, ReluMask]        RELU_AUX_BIAS: the mask is the auxiliary output
 *   [P, Add(bias), GeluTanh]              GELU_BIAS, or GELU_AUX_BIAS writing the Add's value
 *                                         when something outside the group reads it (GeluTanhGrad)
 *   [P, ReluMaskGrad(P, mask)]            DRELU           (+ ReduceSum: DRELU_BGRAD)
 *   [P, GeluTanhGrad(P, x)]               DGELU           (+ ReduceSum: DGELU_BGRAD)
 *   [P, ReduceSum(an operand of P)]       BGRADB when the operand is P's A (read transposed:
 *                                         the sum runs over the product's k), BGRADA for B
 *                                         (the operands swap in the column-major call)
 * The ReduceSum of a group sums all but the last axis (a bias gradient). Row-major Y =
 * op(A)·op(B) is the column-major Y^T = op(B)^T·op(A)^T, as in cg_gemm.c: the operands swap,
 * the row-major columns (features) are cuBLASLt's rows m, along which the bias, the bias
 * gradient and the ReLU mask's bits (ldaux = 8 * the mask row's bytes) run.
 * Where the runtime has no such epilogue (rt_gemm_ep returns 1: no cuBLASLt, a failed
 * self-check, the CPU with DLCC_NO_GEMM_EPILOGUE=1, an fp64 check) the schedule computes the
 * product with rt_gemm and the epilogue with small kernels (not counted in the step's launches):
 * the activation in place, the mask from the ReLU's result, the bias gradient as any other
 * column sum (cg_reduce.c).
 */
#include <stdio.h>
#include <string.h>

#include "codegen/cg_internal.h"

typedef struct {
	const char *ep;      /* "RT_EP_..." */
	const Node *p, *act; /* the product; the activation or its gradient (NULL) */
	const Value *D;      /* what the call writes: f32, or half (a Cast's result, its operand internal) */
	const Value *W;      /* f32 values the fallback works on: D, or the product's buffer for a half D */
	const Node *cast_after; /* a Cast to half whose f32 operand is read outside too: a kernel after */
	const Value *bias;   /* forward: the bias operand; the bias-gradient forms: the ReduceSum's result */
	const Value *aux;    /* the ReLU mask or the GELU input; NULL */
	const Value *summed; /* BGRADA / BGRADB: the operand summed */
} EpForm;

static int is_internal(const CgEmit *e, const Value *v) { return e->plan->fu.internal[v->id]; }

/* x is v, or a Reshape / Flatten of v (the same buffer) */
static int reads(const Value *x, const Value *v)
{
	for (; x; x = x->def && ir_ops[x->def->op].kclass == K_NONE ? x->def->in[0] : NULL)
		if (x == v)
			return 1;
	return 0;
}

/* the group's epilogue; -1 (with e->err) for a group of no known form */
static int ep_form(CgEmit *e, const CgGroup *gr, EpForm *f)
{
	const Node *p = gr->nodes[0], *cast = NULL;
	const Value *res = p->out[0]; /* the group's f32 result so far */
	int kind = 0, bad = 0;        /* 1 forward, 2 an activation's gradient, 3 a bias gradient of an operand */
	memset(f, 0, sizeof *f);
	f->p = p;
	for (int i = 1; i < gr->n && !bad; i++) {
		const Node *x = gr->nodes[i];
		switch (x->op) {
		case OP_ADD:
			bad = i != 1;
			f->bias = x->in[x->in[0] == p->out[0] ? 1 : 0];
			res = x->out[0];
			kind = 1;
			break;
		case OP_RELU:
		case OP_GELU_TANH:
			bad = kind != 1 || f->act;
			f->act = x;
			res = x->out[0];
			break;
		case OP_RELU_MASK:
			bad = !f->act || f->act->op != OP_RELU;
			f->aux = x->out[0];
			break;
		case OP_RELU_MASK_GRAD:
		case OP_GELU_TANH_GRAD:
			bad = i != 1;
			kind = 2;
			f->act = x;
			f->aux = x->in[1];
			res = x->out[0];
			break;
		case OP_REDUCE_SUM:
			bad = i != 1 && kind != 2;
			kind = i == 1 ? 3 : kind;
			f->bias = x->out[0];
			f->summed = kind == 3 ? x->in[0] : NULL;
			break;
		case OP_CAST: cast = x; break;
		default: bad = 1;
		}
	}
	int relu = f->act && (f->act->op == OP_RELU || f->act->op == OP_RELU_MASK_GRAD);
	if (kind == 1 && !f->act)
		f->ep = "RT_EP_BIAS";
	else if (kind == 1 && relu)
		f->ep = f->aux ? "RT_EP_RELU_AUX_BIAS" : "RT_EP_RELU_BIAS";
	else if (kind == 1) {
		const Value *x = gr->nodes[1]->out[0];
		f->ep = is_internal(e, x) ? "RT_EP_GELU_BIAS" : "RT_EP_GELU_AUX_BIAS";
		f->aux = is_internal(e, x) ? NULL : x;
	} else if (kind == 2)
		f->ep = relu ? (f->bias ? "RT_EP_DRELU_BGRAD" : "RT_EP_DRELU") : f->bias ? "RT_EP_DGELU_BGRAD" : "RT_EP_DGELU";
	else if (kind == 3 && gr->n == 2)
		f->ep = reads(p->in[0], f->summed) ? "RT_EP_BGRADB" : reads(p->in[1], f->summed) ? "RT_EP_BGRADA" : NULL;
	f->D = f->W = res;
	if (cast && cast->in[0] == res && is_internal(e, res)) {
		f->D = cast->out[0];
		f->W = p->out[0];
	} else if (cast) {
		f->cast_after = cast;
	}
	if (bad || !f->ep || res->dt != DT_F32 || (cast && (cast->in[0] != res || !ir_dt_is_half(cast->out[0]->dt))) ||
	    (f->D != res && is_internal(e, f->W)))
		return cg_fail(e->err, e->errlen, "codegen: fusion group %d ('%s'): not a product epilogue form",
			       gr->id, p->name);
	return 0;
}

/* ---- kernels: the fallback path, and ReluMask / ReluMaskGrad on their own ---- */

static void kernel_start(CgEmit *e, CgKernel *k, const Node *n, const char *what, const char *suffix)
{
	cg_kernel_begin(e, k, n, what);
	snprintf(k->name, sizeof k->name, "k%d_%s", e->nkernels, suffix);
}

/* m = ReluMask(y): a thread per mask byte, from the 8 columns it covers */
static void emit_relu_mask(CgEmit *e, const Node *n, const char *what, const Value *y, const Value *m)
{
	const Shape *s = &y->shape;
	int64_t C = s->d[s->rank - 1], L = ir_relu_mask_bytes(C);
	CgKernel k;
	kernel_start(e, &k, n, what, "relu_mask");
	cg_arg_out(&k, "m", m);
	cg_arg_in(&k, "y", y);
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%s * %lldLL)", cg_prod(s, 0, s->rank - 1, "b"), (long long)L);
	cg_kernel_open(e, &k);
	cg_printf(&e->dev, "\tconst long long n = %s * %lldLL;\n\t%s {\n", cg_prod(s, 0, s->rank - 1, "B"),
		  (long long)L, cg_loop("i", "n"));
	cg_printf(&e->dev, "\t\tconst long long r = i / %lldLL, c0 = (i %% %lldLL) * 8;\n\t\tunsigned v = 0;\n",
		  (long long)L, (long long)L);
	char el[96];
	snprintf(el, sizeof el, "y[r * %lldLL + c0 + q]", (long long)C);
	cg_printf(&e->dev, "\t\tfor (int q = 0; q < 8 && c0 + q < %lldLL; q++)\n"
			   "\t\t\tv |= (%s > (R)0 ? 1u : 0u) << q;\n\t\tm[i] = (unsigned char)v;\n\t}\n",
		  (long long)C, cg_ld(y->dt, el));
	cg_kernel_close(e, &k);
}

/* y = ReluMaskGrad(dy, m): dy where the mask's bit is set (y may be dy: in place) */
static void emit_relu_mask_grad(CgEmit *e, const Node *n, const char *what, const Value *dy, const Value *m,
				const Value *y)
{
	const Shape *s = &dy->shape;
	int64_t C = s->d[s->rank - 1], L = ir_relu_mask_bytes(C);
	CgKernel k;
	kernel_start(e, &k, n, what, "relu_mask_grad");
	cg_arg_out(&k, "y", y);
	if (dy != y)
		cg_arg_in(&k, "dy", dy);
	cg_arg_in(&k, "m", m);
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%s)", cg_prod(s, 0, s->rank, "b"));
	cg_kernel_open(e, &k);
	cg_printf(&e->dev, "\tconst long long n = %s;\n\t%s {\n", cg_prod(s, 0, s->rank, "B"), cg_loop("i", "n"));
	cg_printf(&e->dev, "\t\tconst long long r = i / %lldLL, c = i %% %lldLL;\n", (long long)C, (long long)C);
	cg_printf(&e->dev, "\t\tconst R v = %s;\n", cg_ld(dy->dt, dy != y ? "dy[i]" : "y[i]"));
	char sel[128];
	snprintf(sel, sizeof sel, "(m[r * %lldLL + c / 8] >> (c %% 8)) & 1 ? v : (R)0", (long long)L);
	cg_printf(&e->dev, "\t\ty[i] = %s;\n\t}\n", cg_st(y->dt, sel));
	cg_kernel_close(e, &k);
}

/* the fallback's activation on D in place: forward D = act(D + bias) [aux = D + bias]; DGELU
 * D *= gelu'(aux) */
static void emit_act_kernel(CgEmit *e, const CgGroup *gr, const EpForm *f)
{
	const Shape *s = &f->W->shape;
	int64_t C = s->d[s->rank - 1];
	int fwd = gr->nodes[1]->op == OP_ADD;
	CgKernel k;
	kernel_start(e, &k, NULL, cg_group_comment(gr), "gemm_epilogue");
	cg_arg_out(&k, "y", f->W);
	if (fwd)
		cg_arg_in(&k, "bias", f->bias);
	if (f->aux && f->aux->dt != DT_U8)
		(fwd ? cg_arg_out : cg_arg_in)(&k, "aux", f->aux);
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%s)", cg_prod(s, 0, s->rank, "b"));
	cg_kernel_open(e, &k);
	cg_printf(&e->dev, "\tconst long long n = %s;\n\t%s {\n", cg_prod(s, 0, s->rank, "B"), cg_loop("i", "n"));
	if (!fwd) {
		cg_puts(&e->dev, "\t\ty[i] = y[i] * r_gelu_tanh_d(aux[i]);\n\t}\n");
	} else {
		cg_printf(&e->dev, "\t\tconst R v = y[i] + bias[i %% %lldLL];\n", (long long)C);
		if (f->aux && f->aux->dt != DT_U8)
			cg_puts(&e->dev, "\t\taux[i] = v;\n");
		/* the activation's body from the op table, over its operand a */
		cg_printf(&e->dev, "\t\tconst R a = v;\n\t\ty[i] = %s;\n\t}\n", f->act ? ir_ops[f->act->op].body : "a");
	}
	cg_kernel_close(e, &k);
}

/* the fallback's half D: y = x rounded */
static void emit_round(CgEmit *e, const CgGroup *gr, const Value *x, const Value *y)
{
	const Shape *s = &y->shape;
	CgKernel k;
	kernel_start(e, &k, NULL, cg_group_comment(gr), "round");
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x", x);
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%s)", cg_prod(s, 0, s->rank, "b"));
	cg_kernel_open(e, &k);
	cg_printf(&e->dev, "\tconst long long n = %s;\n\t%s\n\t\ty[i] = %s;\n", cg_prod(s, 0, s->rank, "B"),
		  cg_loop("i", "n"), cg_st(y->dt, cg_ld(x->dt, "x[i]")));
	cg_kernel_close(e, &k);
}

int cg_emit_relu_mask(CgEmit *e, const Node *n)
{
	if (n->op == OP_RELU_MASK)
		emit_relu_mask(e, n, NULL, n->in[0], n->out[0]);
	else
		emit_relu_mask_grad(e, n, NULL, n->in[0], n->in[1], n->out[0]);
	e->launches++;
	return 0;
}

/* the fallback's bias gradient: the group's ReduceSum as the program's other column sums run
 * (cg_reduce.c: split over blocks, the plan's reduction scratch), over W when it holds what the
 * ReduceSum reads (a half D: the ReduceSum's own operand stays inside the epilogue) */
static int emit_bias_grad(CgEmit *e, const CgGroup *gr, const Value *W)
{
	const Node *s = NULL;
	for (int i = 1; i < gr->n; i++)
		s = gr->nodes[i]->op == OP_REDUCE_SUM ? gr->nodes[i] : s;
	DLCC_ASSERT(s);
	if (!is_internal(e, s->in[0]))
		return cg_emit_reduce(e, s);
	Node t = *s;
	Value *in[1] = {(Value *)W};
	t.in = in;
	return cg_emit_reduce(e, &t);
}

/* ---- the group ---- */

int cg_emit_gemm_group(CgEmit *e, const CgGroup *gr)
{
	EpForm f;
	if (ep_form(e, gr, &f) < 0 || cg_gemm_check_float(e, f.p) < 0)
		return -1;
	const Node *p = f.p;
	const Value *A = p->in[0], *B = p->in[1], *D = f.D;
	int ta = (int)ir_attr_i(p, "transA", 0), tb = (int)ir_attr_i(p, "transB", 0);
	const Shape *a = &A->shape;
	if (B->shape.rank != 2 || (ta && a->rank != 2))
		return cg_fail(e->err, e->errlen, "codegen: fusion group %d ('%s'): the product is not 2-D", gr->id,
			       p->name);
	char M[256];
	int64_t K = ta ? a->d[0] : a->d[a->rank - 1], N = B->shape.d[1 - tb];
	snprintf(M, sizeof M, "%s", ta || p->op == OP_GEMM ? cg_dim(a->d[ta], "b") : cg_prod(a, 0, a->rank - 1, "b"));
	long long ldaux = !f.aux ? 0 : f.aux->dt == DT_U8 ? 8 * ir_relu_mask_bytes(N) : N;
	const char *dab = cg_gemm_dt(e, A->dt), *dc = cg_gemm_dt(e, D->dt);
	CgBuf *h = &e->host;
	char bias[64], aux[64];
	snprintf(bias, sizeof bias, "%s", f.bias ? cg_addr(e, f.bias) : "NULL");
	snprintf(aux, sizeof aux, "%s", f.aux ? cg_addr(e, f.aux) : "NULL");
	cg_printf(h, "\t/* %s */\n\t{\n", cg_group_comment(gr));
	cg_printf(h, "\t\tconst int m = (int)%s, n = (int)%s, k = (int)%s;\n", cg_dim(N, "b"), M, cg_dim(K, "b"));
	cg_printf(h, "\t\tconst int lda = (int)%s, ldb = (int)%s;\n", tb ? cg_dim(K, "b") : cg_dim(N, "b"),
		  ta ? M : cg_dim(K, "b"));
	cg_printf(h, "\t\tconst int rc = rt_gemm_ep(rt, %s, %s, %s, %d, %d, m, n, k, %s, lda, %s, ldb, %s, m, %s, %s, %lldLL);\n",
		  f.ep, dab, dc, tb, ta, cg_addr(e, B), cg_addr(e, A), cg_addr(e, D), bias, aux, ldaux);
	cg_puts(h, "\t\tif (rc < 0)\n\t\t\treturn -1;\n\t\tif (rc > 0) {\n");
	const Value *W = f.W; /* the fallback: the product in f32, the epilogue by kernels */
	cg_printf(h, "\t\t\tif (rt_gemm(rt, %s, %s, %d, %d, m, n, k, 1.0, %s, lda, 0, %s, ldb, 0, 0.0, %s, m, 0, 1) < 0)\n"
		     "\t\t\t\treturn -1;\n", dab, cg_gemm_dt(e, W->dt), tb, ta, cg_addr(e, B), cg_addr(e, A), cg_addr(e, W));
	int launches = e->launches;
	const char *what = cg_group_comment(gr);
	if (gr->nodes[1]->op == OP_ADD || (f.act && f.act->op == OP_GELU_TANH_GRAD))
		emit_act_kernel(e, gr, &f);
	if (f.aux && f.aux->dt == DT_U8 && gr->nodes[1]->op == OP_ADD)
		emit_relu_mask(e, NULL, what, W, f.aux);
	if (f.act && f.act->op == OP_RELU_MASK_GRAD)
		emit_relu_mask_grad(e, NULL, what, W, f.aux, W);
	if (f.bias && gr->nodes[1]->op != OP_ADD && emit_bias_grad(e, gr, W) < 0) /* a bias gradient */
		return -1;
	if (W != D)
		emit_round(e, gr, W, D);
	e->launches = launches;
	cg_puts(h, "\t\t}\n\t}\n");
	if (f.cast_after && cg_emit_tensor(e, f.cast_after) < 0) /* the half copy of an f32 result read elsewhere */
		return -1;
	e->gemms++;
	return 0;
}
