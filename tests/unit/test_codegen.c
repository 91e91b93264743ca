/*
 * test_codegen.c — generated kernels equal the interpreter.
 *
 * Each test builds a small graph with the ir.h API, compiles it with cg_build (emit "so", which
 * also runs NVRTC for sm_80, sm_90 and compute_80 when libnvrtc is present), opens the artifact
 * with dlopen(RTLD_LOCAL), runs it on the CPU emulation through the public API and compares
 * every output (or the loss and the trained parameters, over several steps) with the reference
 * interpreter run on the same graph and the same inputs: f32 with relative tolerance 1e-5,
 * f64 with 1e-12. Graphs cover every kernel class: unary, binary with broadcasting over batch
 * dims, Gemm in all transposes with bias, MatMul batched and broadcast (one call and a host
 * loop), softmax/logsoftmax and their gradients on short and long rows, reductions, transpose,
 * cross-entropy and its gradient, and each optimizer. Also: the memory plan's figures, the
 * check of in-place updates, and the cuda/ptx emit kinds. Fusion (passes/fuse.c groups, one
 * kernel each): elementwise chains with broadcasting, reductions with elementwise producers (short
 * and long), the loss with its gradient and multi-tensor updates, against the same interpreter.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "dlcc/dlcc.h"
#include "ir/interp.h"
#include "passes/passes.h"

#define DIMS(...) ((int64_t[]){__VA_ARGS__})
#define SHAPE(...) ir_shape(sizeof DIMS(__VA_ARGS__) / sizeof(int64_t), DIMS(__VA_ARGS__))

#include "harness.h"

/* ---- elementwise ---- */

Test(codegen, unary_ops)
{
	Graph *g = ir_graph_new("unary");
	Value *x = th_input(g, "x", SHAPE(-1, 5));
	th_out(g, th_gop1(g, OP_RELU, x));
	th_out(g, th_gop1(g, OP_SIGMOID, x));
	th_out(g, th_gop1(g, OP_TANH, x));
	th_out(g, th_gop1(g, OP_NEG, x));
	th_out(g, th_gop1(g, OP_IDENTITY, x));
	Value *e = th_out(g, th_gop1(g, OP_EXP, x));
	th_out(g, th_gop1(g, OP_LOG, e));
	th_out(g, th_gop1(g, OP_SQRT, e));
	Node *n = ir_begin(g, OP_LEAKY_RELU, "lrelu", 1, &x);
	ir_set_f(g, n, "alpha", 0.2);
	th_out(g, th_gfin(g, n));
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

Test(codegen, binary_broadcast)
{
	Graph *g = ir_graph_new("binary");
	Value *x = th_input(g, "x", SHAPE(-1, 3, 4));
	Value *e = th_input(g, "e", SHAPE(-1, 1, 4));
	Value *w = th_param(g, "w", SHAPE(4));
	Value *c = ir_value(g, V_CONST, "c", DT_F32, SHAPE(3, 1), (float[]){0.5f, -2.0f, 3.0f});
	th_out(g, th_gop2(g, OP_ADD, x, w));
	th_out(g, th_gop2(g, OP_MUL, x, c));
	th_out(g, th_gop2(g, OP_SUB, c, x));
	th_out(g, th_gop2(g, OP_DIV, x, th_gop1(g, OP_EXP, e)));
	th_out(g, th_gop2(g, OP_ADD, e, w));
	th_out(g, th_gop2(g, OP_MUL, x, ir_const_scalar(g, DT_F32, 1.5)));
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

Test(codegen, activation_grads_and_expand)
{
	Graph *g = ir_graph_new("grads");
	Value *dy = th_input(g, "dy", SHAPE(-1, 6)), *x = th_input(g, "x", SHAPE(-1, 6));
	th_out(g, th_gop2(g, OP_RELU_GRAD, dy, x));
	th_out(g, th_gop2(g, OP_SIGMOID_GRAD, dy, x));
	th_out(g, th_gop2(g, OP_TANH_GRAD, dy, x));
	Node *n = ir_begin(g, OP_LEAKY_RELU_GRAD, "lrg", 2, (Value *[]){dy, x});
	ir_set_f(g, n, "alpha", 0.1);
	th_out(g, th_gfin(g, n));
	/* ClipGrad on x exactly at its bounds (and inside, outside): zero at lo and hi */
	Value *at = ir_value(g, V_CONST, "at", DT_F32, SHAPE(6), (float[]){-1.0f, 0.0f, 3.0f, 6.0f, 7.0f, 0.5f});
	n = ir_begin(g, OP_CLIP_GRAD, "cg", 2, (Value *[]){dy, at});
	ir_set_f(g, n, "lo", 0.0);
	ir_set_f(g, n, "hi", 6.0);
	th_out(g, th_gfin(g, n));
	Value *b = th_param(g, "b", SHAPE(6));
	n = ir_begin(g, OP_EXPAND, "expand", 1, &b);
	ir_set_ints(g, n, "shape", 2, DIMS(-1, 6));
	th_out(g, th_gfin(g, n));
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

/* ---- matrix products ---- */

static Value *gemm(Graph *g, Value *a, Value *b, Value *c, int ta, int tb, double alpha, double beta)
{
	Value *in[3] = {a, b, c};
	Node *n = ir_begin(g, OP_GEMM, "gemm", c ? 3 : 2, in);
	ir_set_i(g, n, "transA", ta);
	ir_set_i(g, n, "transB", tb);
	ir_set_f(g, n, "alpha", alpha);
	ir_set_f(g, n, "beta", beta);
	return th_gfin(g, n);
}

Test(codegen, gemm_transposes_and_bias)
{
	Graph *g = ir_graph_new("gemm");
	Value *x = th_input(g, "x", SHAPE(-1, 5)), *xt = th_input(g, "xt", SHAPE(5, -1));
	Value *w = th_param(g, "w", SHAPE(5, 7)), *wt = th_param(g, "wt", SHAPE(7, 5));
	Value *bias = th_param(g, "bias", SHAPE(7)), *bcol = th_param(g, "bcol", SHAPE(1, 7));
	th_out(g, gemm(g, x, w, bias, 0, 0, 1, 1));
	th_out(g, gemm(g, x, wt, NULL, 0, 1, 1, 1));
	th_out(g, gemm(g, xt, w, bcol, 1, 0, 0.5, 2));
	th_out(g, gemm(g, xt, wt, bias, 1, 1, 1, 0));
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

Test(codegen, matmul_batched_broadcast)
{
	Graph *g = ir_graph_new("matmul");
	Value *a = th_input(g, "a", SHAPE(-1, 2, 3, 4)), *w = th_param(g, "w", SHAPE(4, 5));
	Value *a1 = th_input(g, "a1", SHAPE(-1, 1, 3, 4)), *b1 = th_param(g, "b1", SHAPE(1, 2, 4, 5));
	Value *v = th_param(g, "v", SHAPE(4)), *x = th_input(g, "x", SHAPE(-1, 4));
	th_out(g, th_gop2(g, OP_MATMUL, a, w));   /* B broadcast: one strided call */
	th_out(g, th_gop2(g, OP_MATMUL, a1, b1)); /* mixed broadcast: host loop */
	th_out(g, th_gop2(g, OP_MATMUL, x, v));   /* 1-D right operand */
	th_out(g, th_gop2(g, OP_MATMUL, v, w));   /* 1-D left operand */
	th_out(g, th_gop2(g, OP_MATMUL, x, w));
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

static Value *matmul_t(Graph *g, Value *a, Value *b, int ta, int tb)
{
	Node *n = ir_begin(g, OP_MATMUL, "MatMul", 2, (Value *[]){a, b});
	ir_set_i(g, n, "transA", ta);
	ir_set_i(g, n, "transB", tb);
	return th_gfin(g, n);
}

/* transA / transB (folded transposes): cuBLAS op flags with the operands' own leading dims */
Test(codegen, matmul_transposed)
{
	Graph *g = ir_graph_new("matmul_t");
	Value *a = th_input(g, "a", SHAPE(-1, 2, 4, 3)), *w = th_param(g, "w", SHAPE(5, 4));
	Value *c = th_input(g, "c", SHAPE(-1, 2, 3, 4)), *x = th_input(g, "x", SHAPE(-1, 4));
	Value *b1 = th_param(g, "b1", SHAPE(1, 2, 5, 4));
	th_out(g, matmul_t(g, a, w, 1, 1));  /* both swapped, B broadcast: one strided call */
	th_out(g, matmul_t(g, c, c, 0, 1));  /* [N,2,3,4] @ [N,2,3,4]^T: attention scores */
	th_out(g, matmul_t(g, a, c, 1, 1));
	th_out(g, matmul_t(g, c, b1, 0, 1)); /* mixed broadcast: host loop */
	th_out(g, matmul_t(g, x, w, 0, 1));  /* 2-D: a Linear's x W^T */
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

/* ---- softmax family ---- */

static Value *axis_op(Graph *g, Op op, int nin, Value **in, int axis)
{
	Node *n = ir_begin(g, op, ir_ops[op].name, nin, in);
	ir_set_i(g, n, "axis", axis);
	return th_gfin(g, n);
}

static void softmax_graph(int width)
{
	Graph *g = ir_graph_new("softmax");
	Value *x = th_input(g, "x", SHAPE(-1, width)), *dy = th_input(g, "dy", SHAPE(-1, width));
	Value *x3 = th_input(g, "x3", SHAPE(-1, width, 3));
	Value *s = th_out(g, axis_op(g, OP_SOFTMAX, 1, &x, 1));
	Value *l = th_out(g, axis_op(g, OP_LOG_SOFTMAX, 1, &x, 1));
	th_out(g, axis_op(g, OP_SOFTMAX_GRAD, 2, (Value *[]){dy, s}, 1));
	th_out(g, axis_op(g, OP_LOG_SOFTMAX_GRAD, 2, (Value *[]){dy, l}, 1));
	th_out(g, axis_op(g, OP_SOFTMAX, 1, &x3, 1)); /* inner extent 3 */
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

Test(codegen, softmax_short_rows) { softmax_graph(10); }
Test(codegen, softmax_long_rows) { softmax_graph(300); }
Test(codegen, softmax_rows_online) { softmax_graph(7000); } /* past the shared-memory row: one pass for max and sum */

/* ---- reductions and layout ---- */

static Value *reduce(Graph *g, Op op, Value *x, int n, const int64_t *axes, int keep)
{
	Node *nd = ir_begin(g, op, ir_ops[op].name, 1, &x);
	ir_set_ints(g, nd, "axes", n, axes);
	ir_set_i(g, nd, "keepdims", keep);
	return th_gfin(g, nd);
}

Test(codegen, reduce_and_transpose)
{
	Graph *g = ir_graph_new("reduce");
	Value *x = th_input(g, "x", SHAPE(-1, 3, 4)), *w = th_input(g, "w", SHAPE(-1, 300));
	th_out(g, reduce(g, OP_REDUCE_SUM, x, 2, DIMS(0, 2), 1));
	th_out(g, reduce(g, OP_REDUCE_MEAN, x, 1, DIMS(1), 0));
	th_out(g, reduce(g, OP_REDUCE_MEAN, x, 0, NULL, 0));
	th_out(g, reduce(g, OP_REDUCE_SUM, w, 1, DIMS(1), 0));  /* long rows */
	th_out(g, reduce(g, OP_REDUCE_MEAN, w, 0, NULL, 1));    /* long, everything */
	Node *n = ir_begin(g, OP_TRANSPOSE, "tr", 1, &x);
	ir_set_ints(g, n, "perm", 3, DIMS(2, 0, 1));
	th_out(g, th_gfin(g, n));
	n = ir_begin(g, OP_RESHAPE, "rs", 1, &x);
	ir_set_ints(g, n, "shape", 2, DIMS(-1, 12));
	th_out(g, th_gop1(g, OP_RELU, th_gfin(g, n))); /* through an alias */
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

/* ---- cross-entropy ---- */

static int kernels_of(Graph *g, int max_batch);
static void fuse(Graph *g);

/* the loss and its gradient, separate or fused (one kernel: passes/fuse.c) */
static void ce_graph(int classes, int fused)
{
	Graph *g = ir_graph_new("ce");
	Value *z = th_input(g, "z", SHAPE(-1, 2, classes));
	Value *t = ir_value(g, V_INPUT, "t", DT_I64, SHAPE(-1, 2), NULL);
	Value *loss = th_out(g, th_gop2(g, OP_SOFTMAX_CROSS_ENTROPY, z, t));
	Value *dl = ir_const_scalar(g, DT_F32, 0.75);
	th_out(g, ir_op(g, OP_SOFTMAX_CROSS_ENTROPY_GRAD, 3, (Value *[]){dl, z, t}));
	(void)loss;
	if (fused) {
		fuse(g);
		cr_assert_eq(kernels_of(g, 4), 1);
	}
	th_check_infer(g, 4, 3, classes);
	ir_graph_free(g);
}

Test(codegen, cross_entropy_short) { ce_graph(10, 0); }
Test(codegen, cross_entropy_long) { ce_graph(300, 0); }
Test(fusion, cross_entropy_short) { ce_graph(10, 1); }
Test(fusion, cross_entropy_long) { ce_graph(300, 1); } /* a vocabulary: online max/sum, then the gradient */

Test(codegen, f64_precision)
{
	Graph *g = ir_graph_new("f64");
	Value *x = ir_value(g, V_INPUT, "x", DT_F64, SHAPE(-1, 5), NULL);
	double wd[35];
	for (int i = 0; i < 35; i++)
		wd[i] = th_urand();
	Value *w = ir_value(g, V_PARAM, "w", DT_F64, SHAPE(5, 7), wd);
	Value *y = th_gop1(g, OP_TANH, gemm(g, x, w, NULL, 0, 0, 1, 1));
	th_out(g, axis_op(g, OP_SOFTMAX, 1, &y, 1));
	th_check_infer_prec(g, 4, 3, 0, DT_F64);
	ir_graph_free(g);
}

/* ---- training: x -> Gemm(w, b) -> SoftmaxCrossEntropy, grads and updates by hand ---- */

typedef struct {
	Value *x, *t, *w, *b, *loss, *dw, *db;
} Mlp;

static void mlp_forward(Graph *g, Mlp *m, int training)
{
	th_urand_seed(12345); /* the same initial parameters in both programs */
	m->x = th_input(g, "x", SHAPE(-1, 6));
	m->w = th_param(g, "w", SHAPE(6, 4));
	m->b = th_param(g, "b", SHAPE(4));
	Value *z = gemm(g, m->x, m->w, m->b, 0, 0, 1, 1);
	if (!training) {
		th_out(g, z);
		return;
	}
	m->t = ir_value(g, V_LABEL, "t", DT_I64, SHAPE(-1), NULL);
	m->loss = th_gop2(g, OP_SOFTMAX_CROSS_ENTROPY, z, m->t);
	g->loss = m->loss;
	Value *dz = ir_op(g, OP_SOFTMAX_CROSS_ENTROPY_GRAD, 3, (Value *[]){ir_const_scalar(g, DT_F32, 1), z, m->t});
	m->dw = gemm(g, m->x, dz, NULL, 1, 0, 1, 0);
	m->db = reduce(g, OP_REDUCE_SUM, dz, 1, DIMS(0), 0);
}

static Value *state(Graph *g, Value *p, const char *slot)
{
	char name[64];
	snprintf(name, sizeof name, "%s.%s", p->name, slot);
	Value *s = ir_value(g, V_STATE, name, DT_F32, p->shape, NULL);
	s->param = p;
	s->slot = ir_strdup(g, slot);
	return s;
}

static const LrSchedule *update_sched; /* add_update's learning-rate schedule; NULL: constant */

static void add_update(Graph *g, const char *opt, Value *p, Value *grad)
{
	Node *n;
	if (!strcmp(opt, "sgd")) {
		n = ir_begin(g, OP_SGD_UPDATE, "sgd", 2, (Value *[]){p, grad});
		ir_set_f(g, n, "lr", 0.1);
		ir_set_f(g, n, "weight_decay", 0.01);
	} else if (!strcmp(opt, "momentum")) {
		n = ir_begin(g, OP_MOMENTUM_UPDATE, "mom", 3, (Value *[]){p, grad, state(g, p, "momentum_buffer")});
		ir_set_f(g, n, "lr", 0.1);
		ir_set_f(g, n, "momentum", 0.9);
		ir_set_f(g, n, "dampening", 0.1);
		ir_set_f(g, n, "weight_decay", 0.01);
		ir_set_i(g, n, "nesterov", 1);
	} else {
		n = ir_begin(g, OP_ADAM_UPDATE, "adam", 4,
			     (Value *[]){p, grad, state(g, p, "exp_avg"), state(g, p, "exp_avg_sq")});
		ir_set_f(g, n, "lr", 0.01);
		ir_set_f(g, n, "beta1", 0.9);
		ir_set_f(g, n, "beta2", 0.999);
		ir_set_f(g, n, "eps", 1e-8);
		ir_set_f(g, n, "weight_decay", 0.05);
		ir_set_i(g, n, "decoupled", !strcmp(opt, "adamw"));
	}
	if (update_sched)
		ir_set_lr_schedule(g, n, update_sched);
	th_gfin(g, n);
	for (int i = 0; i < n->nout; i++)
		ir_add_update(g, i == 0 ? p : n->in[i + 1], n->out[i]);
}

static Graph *mlp_train(const char *opt, Mlp *m)
{
	Graph *g = ir_graph_new("train");
	mlp_forward(g, m, 1);
	g->loss_kind = "cross_entropy";
	g->optimizer = opt;
	add_update(g, opt, m->w, m->dw);
	add_update(g, opt, m->b, m->db);
	return g;
}

static int fuse_programs; /* check_training runs pass_fuse on both programs */

static void check_training(const char *opt, int steps)
{
	Mlp mi, mt;
	Graph *inf = ir_graph_new("infer");
	mlp_forward(inf, &mi, 0);
	Graph *tr = mlp_train(opt, &mt);
	if (fuse_programs) {
		cr_assert_eq(pass_fuse(inf), 0, "%s", inf->err);
		cr_assert_eq(pass_fuse(tr), 0, "%s", tr->err);
		cr_assert_eq(ir_verify(tr), 0, "%s", tr->err);
	}
	ThArt a = th_art_open(inf, tr, 8, DT_F32);
	Interp *it = th_interp(tr, DT_F32, 5);
	for (int s = 1; s <= steps; s++) {
		void **in = th_make_inputs(tr, 5, DT_F32, 4);
		int64_t lab[5];
		for (int i = 0; i < 5; i++)
			lab[i] = (int64_t)((th_urand() + 1) * 2) % 4;
		float loss;
		cr_assert_eq(a.train(a.m, 5, (const void *const *)in, lab, &loss), 0, "%s", a.error(a.m));
		th_set_inputs(it, tr, in, DT_F32);
		cr_assert_eq(interp_set(it, tr->label, lab, DT_I64), 0, "%s", interp_error(it));
		cr_assert_eq(interp_run(it, s), 0, "%s", interp_error(it));
		double want;
		cr_assert_eq(interp_get_f64(it, tr->loss, &want), 0, "%s", interp_error(it));
		double got = loss;
		th_expect_close("loss", &got, &want, 1, 1e-5);
		th_free_list(in, tr->ninputs);
	}
	for (int i = 0; i < tr->nparams; i++) {
		float gp[64], wp[64];
		int64_t n = ir_numel(&tr->params[i]->shape);
		cr_assert_eq(a.get_param(a.m, i, gp), 0, "%s", a.error(a.m));
		cr_assert_eq(interp_get_f32(it, tr->params[i], wp), 0, "%s", interp_error(it));
		double g[64], w[64];
		for (int64_t k = 0; k < n; k++)
			g[k] = gp[k], w[k] = wp[k];
		th_expect_close(tr->params[i]->name, g, w, n, 1e-5);
	}
	interp_free(it);
	th_art_close(&a);
	ir_graph_free(inf);
	ir_graph_free(tr);
}

Test(codegen, train_sgd) { check_training("sgd", 3); }
Test(codegen, train_momentum) { check_training("momentum", 3); }
Test(codegen, train_adam) { check_training("adam", 3); }
Test(codegen, train_adamw) { check_training("adamw", 3); }

/* the update kernels' lr_t against ir_lr_at: warm-up, decay and the hold at min_lr (or steps
 * of gamma) within 7 steps; fused says whether the multi-tensor kernel runs them */
static void check_schedule(const char *opt, LrKind kind, int fused)
{
	LrSchedule s;
	ir_lr_default(&s);
	s.kind = kind, s.warmup = 2, s.step_size = 2, s.gamma = 0.5, s.steps = 3, s.min_lr = 0.002;
	update_sched = &s;
	fuse_programs = fused;
	check_training(opt, 7);
	fuse_programs = 0;
	update_sched = NULL;
}

Test(codegen, train_sgd_step_schedule) { check_schedule("sgd", LR_STEP, 0); }
Test(codegen, train_momentum_cosine_schedule) { check_schedule("momentum", LR_COSINE, 0); }
Test(codegen, train_adamw_cosine_schedule) { check_schedule("adamw", LR_COSINE, 0); }
Test(codegen, train_adam_warmup_schedule) { check_schedule("adam", LR_CONSTANT, 0); }
Test(fusion, train_adamw_cosine_schedule) { check_schedule("adamw", LR_COSINE, 1); }
Test(fusion, train_momentum_step_schedule) { check_schedule("momentum", LR_STEP, 1); }

/* ---- the memory plan and its checks ---- */

Test(codegen, plan_reuses_memory)
{
	Graph *g = ir_graph_new("chain");
	Value *v = th_input(g, "x", SHAPE(-1, 64));
	for (int i = 0; i < 8; i++)
		v = th_gop1(g, i % 2 ? OP_RELU : OP_TANH, v);
	th_out(g, v);
	CgStats st;
	char err[512];
	cr_assert_eq(cg_plan(g, 16, &st, err, sizeof err), 0, "%s", err);
	size_t t = 16 * 64 * 4; /* one tensor at max batch */
	cr_assert_eq(st.naive_bytes, 9 * t);
	/* input, output slot, and one temporary: each op writes over its dying input */
	cr_assert_eq(st.peak_live_bytes, 3 * t, "peak %zu", st.peak_live_bytes);
	cr_assert_eq(st.workspace_bytes, 3 * t, "workspace %zu", st.workspace_bytes);
	cr_assert_eq(st.fixed_bytes, 2 * t);
	cr_assert_eq(st.inplace, 6, "ops 2..7 in place (1 reads the input, 8 writes the slot)");
	cr_assert_eq(st.kernels, 8);
	cr_assert_eq(st.gemms, 0);
	ir_graph_free(g);
}

Test(codegen, plan_training_counts)
{
	Mlp m;
	Graph *g = mlp_train("adam", &m);
	CgStats st;
	char err[512];
	cr_assert_eq(cg_plan(g, 8, &st, err, sizeof err), 0, "%s", err);
	cr_assert_eq(st.gemms, 2);
	cr_assert_eq(st.kernels, 6); /* bias broadcast, CE, CE grad, reduce, 2 updates */
	/* w, b, two Adam states each, and the constant 1 of the loss gradient */
	cr_assert_eq(st.param_bytes, 7 * 256, "%zu", st.param_bytes);
	ir_graph_free(g);
}

Test(codegen, update_after_read_is_refused)
{
	Mlp m;
	Graph *g = mlp_train("sgd", &m);
	th_out(g, th_gop1(g, OP_RELU, m.w)); /* reads w after its update */
	char err[512], path[] = "/tmp/dlcc-never.so";
	CgOpts o = {path, "cuda", 8, DT_F32, NULL, 0};
	cr_assert_eq(cg_build(NULL, g, &o, err, sizeof err), -1);
	cr_assert(strstr(err, "after"), "%s", err);
	cr_assert_eq(access(path, F_OK), -1);
	ir_graph_free(g);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert(f, "%s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = calloc(n + 1, 1);
	cr_assert_eq(fread(s, 1, n, f), (size_t)n);
	fclose(f);
	return s;
}

Test(codegen, emit_cuda_and_ptx)
{
	Graph *g = ir_graph_new("text");
	Value *x = th_input(g, "x", SHAPE(-1, 300));
	Node *n = ir_begin(g, OP_RELU, "Relu_3", 1, &x);
	th_out(g, axis_op(g, OP_SOFTMAX, 1, (Value *[]){th_gfin(g, n)}, 1));
	char err[512], path[] = "/tmp/dlcc-test-emit.cu";
	CgOpts o = {path, "cuda", 8, DT_F32, NULL, 0};
	cr_assert_eq(cg_build(g, NULL, &o, err, sizeof err), 0, "%s", err);
	char *s = slurp(path);
	cr_assert(strstr(s, "[node Relu_3] */\nDLCC_KERNEL void k0_relu("), "%s", s);
	cr_assert(strstr(s, "extern \"C\""));
	cr_assert(strstr(s, "__syncthreads"));
	cr_assert(strstr(s, "static int infer(Rt *rt"));
	free(s);
	o.emit = "ptx";
	if (cg_build(g, NULL, &o, err, sizeof err) == 0) {
		s = slurp(path);
		cr_assert(strstr(s, ".entry k1_softmax"), "%s", s);
		free(s);
	} else {
		cr_assert(strstr(err, "NVRTC"), "%s", err);
	}
	unlink(path);
	ir_graph_free(g);
}

/* outputs that cannot be computed in place: an input, a parameter, one value twice, an alias
 * of a parameter — each is copied into its slot at the end of the program */
Test(codegen, outputs_by_copy)
{
	Graph *g = ir_graph_new("copies");
	Value *x = th_input(g, "x", SHAPE(-1, 4)), *w = th_param(g, "w", SHAPE(2, 4));
	Value *y = th_gop1(g, OP_RELU, x);
	th_out(g, x);
	th_out(g, w);
	th_out(g, y);
	th_out(g, y);
	Node *n = ir_begin(g, OP_FLATTEN, "fl", 1, &w);
	ir_set_i(g, n, "axis", 0);
	th_out(g, th_gfin(g, n));
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

/* an update that is no optimizer node (SGD spelt with elementwise ops) is copied at the end */
Test(codegen, update_by_copy)
{
	Mlp mi, mt;
	Graph *inf = ir_graph_new("infer");
	mlp_forward(inf, &mi, 0);
	Graph *tr = ir_graph_new("train");
	mlp_forward(tr, &mt, 1);
	Value *lr = ir_const_scalar(tr, DT_F32, 0.5);
	ir_add_update(tr, mt.w, th_gop2(tr, OP_SUB, mt.w, th_gop2(tr, OP_MUL, lr, mt.dw)));
	ir_add_update(tr, mt.b, th_gop2(tr, OP_SUB, mt.b, th_gop2(tr, OP_MUL, lr, mt.db)));
	ThArt a = th_art_open(inf, tr, 8, DT_F32);
	Interp *it = th_interp(tr, DT_F32, 2);
	for (int s = 1; s <= 2; s++) {
		void **in = th_make_inputs(tr, 2, DT_F32, 4);
		int64_t lab[2] = {s % 4, (s + 1) % 4};
		float loss;
		cr_assert_eq(a.train(a.m, 2, (const void *const *)in, lab, &loss), 0, "%s", a.error(a.m));
		th_set_inputs(it, tr, in, DT_F32);
		cr_assert_eq(interp_set(it, tr->label, lab, DT_I64), 0);
		cr_assert_eq(interp_run(it, s), 0, "%s", interp_error(it));
		th_free_list(in, tr->ninputs);
	}
	float gp[64], wp[64];
	cr_assert_eq(a.get_param(a.m, 0, gp), 0);
	cr_assert_eq(interp_get_f32(it, tr->params[0], wp), 0);
	for (int k = 0; k < 24; k++)
		cr_assert(fabsf(gp[k] - wp[k]) <= 1e-5f * (1 + fabsf(wp[k])), "w[%d]: %g vs %g", k, gp[k], wp[k]);
	interp_free(it);
	th_art_close(&a);
	ir_graph_free(inf);
	ir_graph_free(tr);
}

/* emit "a": one archive that a C program links with -ldl -lm -lpthread alone */
Test(codegen, emit_static_library)
{
	Graph *g = ir_graph_new("static");
	Value *x = th_input(g, "x", SHAPE(-1, 3));
	Value *c = ir_value(g, V_CONST, "c", DT_F32, SHAPE(3), (float[]){1, 2, 3});
	th_out(g, th_gop2(g, OP_MUL, x, c));
	char dir[] = "/tmp/dlcc-test-XXXXXX", lib[96], app[96], exe[96], cmd[1024], err[512];
	cr_assert(mkdtemp(dir));
	snprintf(lib, sizeof lib, "%s/m.a", dir);
	snprintf(app, sizeof app, "%s/app.c", dir);
	snprintf(exe, sizeof exe, "%s/app", dir);
	CgOpts o = {lib, "a", 2, DT_F32, NULL, 0};
	cr_assert_eq(cg_build(g, NULL, &o, err, sizeof err), 0, "%s", err);
	FILE *f = fopen(app, "w");
	fputs("#include \"dlcc/dlcc.h\"\nint main(void) { char e[256]; float x[3] = {1, 1, 2}, y[3];\n"
	      "dlcc_model *m = dlcc_create(DLCC_DEVICE_CPU, e, sizeof e); const void *in[] = {x};\n"
	      "void *out[] = {y}; if (!m || dlcc_infer(m, 1, in, out)) return 1;\n"
	      "return y[0] == 1 && y[1] == 2 && y[2] == 6 ? 0 : 2; }\n", f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "cc -o %s %s -I%s/include %s -ldl -lm -lpthread && %s", exe, app,
		 DLCC_SOURCE_DIR, lib, exe);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	ir_graph_free(g);
}

/* a class id outside [0, C) gives a NaN loss, never an out-of-bounds read */
Test(codegen, cross_entropy_bad_label_is_nan)
{
	for (int classes = 10; classes <= 300; classes += 290) {
		Graph *g = ir_graph_new("ce_bad");
		Value *z = th_input(g, "z", SHAPE(-1, classes));
		Value *t = ir_value(g, V_INPUT, "t", DT_I64, SHAPE(-1), NULL);
		th_out(g, th_gop2(g, OP_SOFTMAX_CROSS_ENTROPY, z, t));
		ThArt a = th_art_open(g, NULL, 4, DT_F32);
		float zd[2 * 300] = {0}, loss = 0;
		int64_t td[2] = {1, classes};
		const void *in[] = {zd, td};
		void *outs[] = {&loss};
		cr_assert_eq(a.infer(a.m, 2, in, outs), 0, "%s", a.error(a.m));
		cr_assert(isnan(loss), "classes %d: loss %g", classes, loss);
		td[1] = 0;
		cr_assert_eq(a.infer(a.m, 2, in, outs), 0, "%s", a.error(a.m));
		cr_assert(fabsf(loss - logf((float)classes)) < 1e-5f, "classes %d: loss %g", classes, loss);
		th_art_close(&a);
		ir_graph_free(g);
	}
}

/* ---- data-path plumbing (codegen/cg_tensor.c), integer and bool paths included ---- */

#include "passes/grad.h"

static Value *attr_op(Graph *g, Op op, int nin, Value **in, const char *name, int64_t v)
{
	Node *n = ir_begin(g, op, NULL, nin, in);
	ir_set_i(g, n, name, v);
	return th_gfin(g, n);
}

static Value *cast(Graph *g, Value *x, const char *to)
{
	Node *n = ir_begin(g, OP_CAST, NULL, 1, &x);
	ir_set_s(g, n, "to", to);
	return th_gfin(g, n);
}

static Value *slice(Graph *g, Value *x, int cnt, const int64_t *ax, const int64_t *st, const int64_t *en,
		    const int64_t *sp)
{
	Node *n = ir_begin(g, OP_SLICE, NULL, 1, &x);
	ir_set_ints(g, n, "axes", cnt, ax);
	ir_set_ints(g, n, "starts", cnt, st);
	ir_set_ints(g, n, "ends", cnt, en);
	ir_set_ints(g, n, "steps", cnt, sp);
	return th_gfin(g, n);
}

/* forward ops on x [N,4,5] (float), tok [N,3] (int64 ids in [0,5)) and an i64/bool table */
static void plumbing_forward(Graph *g, Value *x, Value *tok, Value *emb)
{
	int64_t tab[10] = {3, -1, 4, 1, -5, 9, 2, -6, 5, 3};
	Value *itab = ir_value(g, V_CONST, "itab", DT_I64, SHAPE(5, 2), tab);
	th_out(g, attr_op(g, OP_GATHER, 2, (Value *[]){emb, tok}, "axis", 0));             /* [N,3,6] */
	th_out(g, cast(g, attr_op(g, OP_GATHER, 2, (Value *[]){itab, tok}, "axis", 0), "f32")); /* int */
	th_out(g, attr_op(g, OP_GATHER, 2, (Value *[]){x, ir_value(g, V_CONST, "ix", DT_I64, SHAPE(3),
		(int64_t[]){4, -1, 0})}, "axis", 2));
	th_out(g, slice(g, x, 2, DIMS(1, 2), DIMS(3, 1), DIMS(-1, 5), DIMS(-2, 2)));
	Value *tr = attr_op(g, OP_TRILU, 1, &x, "k", -1);
	th_out(g, tr);
	th_out(g, attr_op(g, OP_CONCAT, 3, (Value *[]){x, tr, x}, "axis", 1));
	Value *m = th_gop2(g, OP_LESS, x, ir_const_scalar(g, DT_F32, 0.25));
	Value *bm = attr_op(g, OP_TRILU, 1, &m, "upper", 0);                                /* bool */
	Value *any = th_gop2(g, OP_OR, th_gop2(g, OP_AND, bm, th_gop1(g, OP_NOT, m)), th_gop2(g, OP_EQUAL, x, x));
	th_out(g, cast(g, any, "f32"));
	Value *x10 = th_gop2(g, OP_MUL, x, ir_const_scalar(g, DT_F32, 10)), *t10 = th_gop2(g, OP_MUL, tr, ir_const_scalar(g, DT_F32, 10));
	th_out(g, cast(g, th_gop2(g, OP_GREATER_OR_EQUAL, cast(g, x10, "i32"), cast(g, t10, "i32")), "f32"));
	th_out(g, cast(g, th_gop2(g, OP_MAX, cast(g, x10, "i64"), cast(g, t10, "i64")), "f32"));
	Value *ninf = ir_const_scalar(g, DT_F32, -INFINITY);
	th_out(g, th_gop1(g, OP_EXP, ir_op(g, OP_WHERE, 3, (Value *[]){bm, ninf, x})));
	th_out(g, th_gop2(g, OP_POW, th_gop1(g, OP_EXP, x), x));
	th_out(g, th_gop1(g, OP_RECIPROCAL, th_gop1(g, OP_EXP, x)));
	th_out(g, th_gop2(g, OP_MAX, x, th_gop2(g, OP_MIN, tr, ir_const_scalar(g, DT_F32, 0.1))));
}

Test(codegen, plumbing_ops)
{
	Graph *g = ir_graph_new("plumbing");
	Value *x = th_input(g, "x", SHAPE(-1, 4, 5));
	Value *tok = ir_value(g, V_INPUT, "tok", DT_I64, SHAPE(-1, 3), NULL);
	plumbing_forward(g, x, tok, th_param(g, "emb", SHAPE(5, 6)));
	th_check_infer(g, 4, 3, 5);
	ir_graph_free(g);
}

/* the gradient kernels: d ReduceSum(f(w)) / dw as inference outputs */
Test(codegen, plumbing_grads)
{
	Graph *g = ir_graph_new("plumbing_grads");
	Value *x = th_input(g, "x", SHAPE(-1, 4, 5));
	Value *tok = ir_value(g, V_INPUT, "tok", DT_I64, SHAPE(-1, 3), NULL);
	Value *emb = th_param(g, "emb", SHAPE(5, 5)), *w = th_param(g, "w", SHAPE(4, 5));
	Value *xw = th_gop2(g, OP_MUL, x, w);
	Value *e = attr_op(g, OP_GATHER, 2, (Value *[]){emb, tok}, "axis", 0);            /* [N,3,5] */
	Value *s = slice(g, xw, 1, DIMS(1), DIMS(3), DIMS(0), DIMS(-1));                    /* [N,3,5] */
	Value *c = attr_op(g, OP_CONCAT, 2, (Value *[]){e, s}, "axis", 1);                  /* [N,6,5] */
	Value *m = attr_op(g, OP_TRILU, 1, &c, "k", 1);
	Value *wh = ir_op(g, OP_WHERE, 3, (Value *[]){th_gop2(g, OP_GREATER, m, ir_const_scalar(g, DT_F32, 0)), m,
						      th_gop1(g, OP_RECIPROCAL, th_gop1(g, OP_EXP, m))});
	Value *y = th_gop2(g, OP_MAX, wh, th_gop2(g, OP_POW, th_gop1(g, OP_EXP, c), ir_const_scalar(g, DT_F32, 0.5)));
	Node *n = ir_begin(g, OP_REDUCE_SUM, NULL, 1, &y);
	ir_set_ints(g, n, "axes", 0, NULL);
	ir_set_i(g, n, "keepdims", 0);
	g->loss = th_gfin(g, n);
	Value *grads[2];
	cr_assert_eq(grad_backward(g, 2, (Value *[]){emb, w}, grads), 0, "%s", g->err);
	g->loss = NULL;
	th_out(g, grads[0]);
	th_out(g, grads[1]);
	th_check_infer(g, 4, 3, 5);
	ir_graph_free(g);
}
/* an embedding gradient over more indices than a block holds (two chunks) and more rows than
 * bands (two rows a band), with repeated indices: GatherGrad's order-preserving hit lists */
Test(codegen, gather_grad_bands)
{
	Graph *g = ir_graph_new("gather_grad_bands");
	Value *x = th_input(g, "x", SHAPE(-1, 100, 3));
	Value *tok = ir_value(g, V_INPUT, "tok", DT_I64, SHAPE(-1, 100), NULL);
	Value *emb = th_param(g, "emb", SHAPE(1300, 3));
	Value *y = th_gop2(g, OP_MUL, attr_op(g, OP_GATHER, 2, (Value *[]){emb, tok}, "axis", 0), x);
	Node *n = ir_begin(g, OP_REDUCE_SUM, NULL, 1, &y);
	ir_set_ints(g, n, "axes", 0, NULL);
	ir_set_i(g, n, "keepdims", 0);
	g->loss = th_gfin(g, n);
	Value *grads[1];
	cr_assert_eq(grad_backward(g, 1, (Value *[]){emb}, grads), 0, "%s", g->err);
	g->loss = NULL;
	th_out(g, grads[0]);
	th_check_infer(g, 4, 3, 1300);
	th_check_infer(g, 4, 3, 40); /* many repeats */
	ir_graph_free(g);
}

/* ---- element indexing, scans and elementwise math (codegen/cg_index.c, the prelude) ---- */

static Value *index_op(Graph *g, Op op, int nin, Value **in, int64_t axis, const char *red)
{
	Node *n = ir_begin(g, op, NULL, nin, in);
	ir_set_i(g, n, "axis", axis);
	if (red)
		ir_set_s(g, n, "reduction", red);
	return th_gfin(g, n);
}

static Value *cum_sum(Graph *g, Value *x, int64_t axis, int excl, int rev)
{
	Node *n = ir_begin(g, OP_CUM_SUM, NULL, 1, &x);
	ir_set_i(g, n, "axis", axis);
	ir_set_i(g, n, "exclusive", excl);
	ir_set_i(g, n, "reverse", rev);
	return th_gfin(g, n);
}

/* x [N,4,5], tok [N,3] int64 ids in [0,5): batched indices, smaller extents, both reductions */
Test(codegen, index_ops)
{
	Graph *g = ir_graph_new("index");
	Value *x = th_input(g, "x", SHAPE(-1, 4, 5));
	Value *tok = ir_value(g, V_INPUT, "tok", DT_I64, SHAPE(-1, 3), NULL);
	Value *ix3 = ir_value(g, V_CONST, "ix3", DT_I64, SHAPE(2, 3, 2), (int64_t[]){3, -1, 0, 2, 2, 0, 1, 1, -4, 3, 0, 2});
	Value *x3 = th_param(g, "x3", SHAPE(4, 3, 2)), *u3 = th_param(g, "u3", SHAPE(2, 3, 2));
	Value *tok3 = th_gop2(g, OP_ADD, ir_op1(g, OP_IDENTITY, tok), ir_const_scalar(g, DT_I64, 0));
	Node *r = ir_begin(g, OP_RESHAPE, NULL, 1, &tok3);
	ir_set_ints(g, r, "shape", 3, (int64_t[]){-1, 1, 3});
	Value *tb = th_gfin(g, r); /* [N,1,3] */
	Value *gb = th_out(g, index_op(g, OP_GATHER_ELEMENTS, 2, (Value *[]){x, tb}, 2, NULL)); /* [N,1,3] */
	th_out(g, index_op(g, OP_GATHER_ELEMENTS, 2, (Value *[]){x3, ix3}, 0, NULL));
	th_out(g, index_op(g, OP_SCATTER_ELEMENTS, 3, (Value *[]){x3, ix3, u3}, 0, "none"));
	th_out(g, index_op(g, OP_SCATTER_ELEMENTS, 3, (Value *[]){x3, ix3, u3}, 0, "add"));
	th_out(g, index_op(g, OP_SCATTER_ELEMENTS, 3, (Value *[]){x, tb, th_gop1(g, OP_EXP, gb)}, 2, "add"));
	for (int k = 0; k < 4; k++)
		th_out(g, cum_sum(g, x, k % 2 ? 2 : 0, k & 1, k >> 1));
	static const Op math[] = {OP_COS, OP_SIN, OP_ABS, OP_SIGN, OP_CEIL, OP_FLOOR, OP_ROUND};
	Value *x8 = th_gop2(g, OP_MUL, x, ir_const_scalar(g, DT_F32, 8));
	for (size_t i = 0; i < sizeof math / sizeof *math; i++)
		th_out(g, th_gop1(g, math[i], x8));
	Value *b = th_gop2(g, OP_LESS, x, ir_const_scalar(g, DT_F32, 0.25));
	th_out(g, cast(g, th_gop2(g, OP_XOR, b, th_gop2(g, OP_GREATER, x, ir_const_scalar(g, DT_F32, -0.25))), "f32"));
	th_check_infer(g, 4, 3, 5);
	ir_graph_free(g);
}

/* the gradient kernels of the index ops and the scan: d ReduceSum(f(w)) / dw */
Test(codegen, index_grads)
{
	Graph *g = ir_graph_new("index_grads");
	Value *x = th_input(g, "x", SHAPE(-1, 4, 5)), *w = th_param(g, "w", SHAPE(4, 5));
	Value *u = th_param(g, "u", SHAPE(2, 5));
	Value *ix = ir_value(g, V_CONST, "ix", DT_I64, SHAPE(2, 5), (int64_t[]){0, 3, 3, -1, 1, 2, 3, 0, 1, 1});
	Value *xw = th_gop2(g, OP_MUL, x, w);                                           /* [N,4,5] */
	Value *ge = index_op(g, OP_GATHER_ELEMENTS, 2, (Value *[]){w, ix}, 0, NULL);      /* [2,5] */
	Value *sc = index_op(g, OP_SCATTER_ELEMENTS, 3, (Value *[]){w, ix, th_gop2(g, OP_MUL, u, ge)}, 0, "none");
	Value *cs = cum_sum(g, th_gop2(g, OP_MUL, xw, sc), 1, 1, 1);
	Value *y = th_gop1(g, OP_SIN, th_gop1(g, OP_ABS, cs));
	Node *n = ir_begin(g, OP_REDUCE_SUM, NULL, 1, &y);
	ir_set_ints(g, n, "axes", 0, NULL);
	ir_set_i(g, n, "keepdims", 0);
	g->loss = th_gfin(g, n);
	Value *grads[2];
	cr_assert_eq(grad_backward(g, 2, (Value *[]){w, u}, grads), 0, "%s", g->err);
	g->loss = NULL;
	th_out(g, grads[0]);
	th_out(g, grads[1]);
	th_check_infer(g, 4, 3, 5);
	ir_graph_free(g);
}

/* ---- fusion: passes/fuse.c groups, one kernel each ---- */

static int kernels_of(Graph *g, int max_batch)
{
	CgStats st;
	char err[512];
	cr_assert_eq(cg_plan(g, max_batch, &st, err, sizeof err), 0, "%s", err);
	return st.kernels;
}

static void fuse(Graph *g)
{
	cr_assert_eq(pass_fuse(g), 0, "%s", g->err);
	cr_assert_eq(ir_verify(g), 0, "%s", g->err);
}

Test(fusion, chain_with_broadcasts)
{
	Graph *g = ir_graph_new("chain");
	Value *x = th_input(g, "x", SHAPE(-1, 3, 4));
	Value *e = th_input(g, "e", SHAPE(-1, 1, 4));
	Value *w = th_param(g, "w", SHAPE(4));
	Value *c = ir_value(g, V_CONST, "c", DT_F32, SHAPE(3, 1), (float[]){0.5f, -2.0f, 3.0f});
	Value *a = th_gop2(g, OP_ADD, x, w);
	Value *m = th_out(g, th_gop2(g, OP_MUL, a, c)); /* read outside: written by the group */
	Value *t = th_gop2(g, OP_SUB, th_gop1(g, OP_TANH, m), e);
	Node *n = ir_begin(g, OP_LEAKY_RELU, "lrelu", 1, &t);
	ir_set_f(g, n, "alpha", 0.2);
	th_out(g, th_gop2(g, OP_MUL, th_gfin(g, n), ir_const_scalar(g, DT_F32, 1.5)));
	cr_assert_eq(kernels_of(g, 4), 6);
	fuse(g);
	cr_assert_eq(kernels_of(g, 4), 1);
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

/* ReluGrad + bias gradient (and a ReduceMean of an Exp chain) with short or long reductions */
static void reduce_group_graph(int max_batch, int batch)
{
	Graph *g = ir_graph_new("reduce");
	Value *x = th_input(g, "x", SHAPE(-1, 5)), *dy = th_input(g, "dy", SHAPE(-1, 5));
	Value *w = th_param(g, "w", SHAPE(5, 5));
	Value *r = th_gop2(g, OP_RELU_GRAD, dy, x);
	th_out(g, ir_op2(g, OP_MATMUL, r, w)); /* a product reads r: the reduction moves up to r */
	th_out(g, reduce(g, OP_REDUCE_SUM, r, 1, DIMS(0), 0));
	Value *h = th_gop2(g, OP_MUL, th_gop1(g, OP_EXP, x), dy);
	th_out(g, reduce(g, OP_REDUCE_MEAN, h, 1, DIMS(0), 1));
	fuse(g);
	cr_assert_eq(kernels_of(g, max_batch), 2);
	th_check_infer(g, max_batch, batch, 0);
	ir_graph_free(g);
}

/* column reductions (innermost dim kept): a warp per 32 neighbouring outputs, groups splitting
 * the reduction; 45 outputs leave the second tile part-empty */
Test(codegen, reduce_columns)
{
	Graph *g = ir_graph_new("reduce_columns");
	Value *x = th_input(g, "x", SHAPE(-1, 3, 45)), *w = th_input(g, "w", SHAPE(-1, 45));
	th_out(g, reduce(g, OP_REDUCE_SUM, x, 2, DIMS(0, 1), 0));
	th_out(g, reduce(g, OP_REDUCE_MEAN, x, 2, DIMS(0, 1), 1));
	th_out(g, reduce(g, OP_REDUCE_SUM, w, 1, DIMS(0), 0));
	th_out(g, reduce(g, OP_REDUCE_MEAN, th_gop1(g, OP_EXP, w), 1, DIMS(0), 1));
	Value *m = th_input(g, "m", SHAPE(3, -1, 45)); /* not the leading dims: the index split */
	th_out(g, reduce(g, OP_REDUCE_SUM, m, 1, DIMS(1), 0));
	th_check_infer(g, 40, 37, 0);
	ir_graph_free(g);
	/* many rows, two tiles: the rows split over several blocks per tile, which meet in the
	 * reduction scratch (twice in one run: the counters must be back at zero) */
	g = ir_graph_new("reduce_columns_split");
	Value *z = th_input(g, "z", SHAPE(-1, 300, 45)), *v = th_input(g, "v", SHAPE(-1, 300, 45));
	th_out(g, reduce(g, OP_REDUCE_SUM, z, 2, DIMS(0, 1), 0));
	th_out(g, reduce(g, OP_REDUCE_MEAN, th_gop2(g, OP_MUL, th_gop1(g, OP_EXP, z), v), 2, DIMS(0, 1), 1));
	th_out(g, reduce(g, OP_REDUCE_SUM, v, 2, DIMS(0, 1), 1));
	th_check_infer(g, 4, 3, 0);
	th_check_infer(g, 40, 3, 0);
	ir_graph_free(g);
}

/* attention's scale and additive mask fuse into the softmax that reads them (the row is held in
 * shared memory, each element computed once); a LogSoftmax of a Relu likewise */
Test(fusion, softmax_producers)
{
	Graph *g = ir_graph_new("softmax_fused");
	Value *x = th_input(g, "x", SHAPE(-1, 2, 300)), *mask = th_param(g, "mask", SHAPE(300));
	Value *h = th_gop2(g, OP_ADD, th_gop2(g, OP_MUL, x, ir_const_scalar(g, DT_F32, 0.125)), mask);
	th_out(g, axis_op(g, OP_SOFTMAX, 1, &h, 2));
	Value *r = th_gop1(g, OP_RELU, x);
	th_out(g, axis_op(g, OP_LOG_SOFTMAX, 1, &r, 2));
	th_out(g, axis_op(g, OP_SOFTMAX, 1, &x, 1)); /* not the last axis: alone */
	cr_assert_eq(kernels_of(g, 4), 6);
	fuse(g);
	cr_assert_eq(kernels_of(g, 4), 3);
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

Test(fusion, reduce_short) { reduce_group_graph(8, 5); }
Test(fusion, reduce_long) { reduce_group_graph(300, 270); }

Test(fusion, training_groups)
{
	Mlp m;
	Graph *g = mlp_train("adam", &m);
	fuse(g);
	/* the bias add is the product's epilogue (no kernel); loss + gradient + bias gradient; one
	 * update for both parameters */
	cr_assert_eq(kernels_of(g, 8), 2);
	ir_graph_free(g);
}

static void check_training_fused(const char *opt)
{
	fuse_programs = 1;
	check_training(opt, 3);
	fuse_programs = 0;
}

Test(fusion, train_sgd) { check_training_fused("sgd"); }
Test(fusion, train_momentum) { check_training_fused("momentum"); }
Test(fusion, train_adam) { check_training_fused("adam"); }

/* ReluMask / ReluMaskGrad on their own (the fallback of the product epilogues uses the same
 * kernels): 200 columns, two 128-bit groups a row with padding bits, against the interpreter */
Test(codegen, relu_mask)
{
	Graph *g = ir_graph_new("relu_mask");
	Value *x = th_input(g, "x", SHAPE(-1, 3, 200));
	Value *m = th_gop1(g, OP_RELU_MASK, x); /* u8 [N,3,32] */
	cr_assert_eq(m->dt, DT_U8);
	cr_assert_eq(m->shape.d[2], 32);
	th_out(g, cast(g, m, "f32"));
	th_out(g, th_gop2(g, OP_RELU_MASK_GRAD, th_gop1(g, OP_EXP, x), m));
	th_check_infer(g, 4, 3, 5);
	ir_graph_free(g);
}

/* the move groups of passes/fuse.c against the interpreter: attention's split into heads (a
 * Slice read in place by its Transpose, with and without the Cast to half), the merge of the
 * heads ([Transpose, Reshape, Cast]), a Concat writing its half copy beside its result, and a
 * Concat reading two transposes in place */
Test(codegen, move_groups)
{
	Graph *g = ir_graph_new("moves");
	Value *x = th_input(g, "x", SHAPE(-1, 4, 18));
	Value *parts[3];
	for (int i = 0; i < 3; i++) {
		Node *n = ir_begin(g, OP_SLICE, NULL, 1, &x);
		ir_set_ints(g, n, "axes", 1, (int64_t[]){2});
		ir_set_ints(g, n, "starts", 1, (int64_t[]){6 * i});
		ir_set_ints(g, n, "ends", 1, (int64_t[]){6 * i + 6});
		ir_set_ints(g, n, "steps", 1, (int64_t[]){1});
		Value *s = th_gfin(g, n);
		n = ir_begin(g, OP_RESHAPE, NULL, 1, &s);
		ir_set_ints(g, n, "shape", 4, (int64_t[]){-1, 4, 2, 3});
		Value *r = th_gfin(g, n);
		n = ir_begin(g, OP_TRANSPOSE, NULL, 1, &r);
		ir_set_ints(g, n, "perm", 4, (int64_t[]){0, 2, 1, 3});
		parts[i] = th_gfin(g, n); /* [N,2,4,3] */
	}
	th_out(g, cast(g, cast(g, parts[0], "bf16"), "f32"));
	th_out(g, parts[1]);
	Node *n = ir_begin(g, OP_TRANSPOSE, NULL, 1, &parts[2]);
	ir_set_ints(g, n, "perm", 4, (int64_t[]){0, 2, 1, 3});
	Value *t = th_gfin(g, n);
	n = ir_begin(g, OP_RESHAPE, NULL, 1, &t);
	ir_set_ints(g, n, "shape", 3, (int64_t[]){-1, 4, 6});
	th_out(g, cast(g, cast(g, th_gfin(g, n), "bf16"), "f32"));
	Value *cat = attr_op(g, OP_CONCAT, 2, (Value *[]){parts[1], parts[2]}, "axis", 1); /* [N,4,4,3] */
	th_out(g, cat);
	th_out(g, cast(g, cast(g, cat, "f16"), "f32"));
	Value *tin[2]; /* a Concat of two transposes that only it reads (the split's gradient) */
	for (int i = 0; i < 2; i++) {
		Node *r = ir_begin(g, OP_RESHAPE, NULL, 1, &x);
		ir_set_ints(g, r, "shape", 4, (int64_t[]){-1, 4, 3, 6});
		Value *rx = th_gfin(g, r);
		Node *tn = ir_begin(g, OP_TRANSPOSE, NULL, 1, &rx);
		ir_set_ints(g, tn, "perm", 4, i ? (int64_t[]){0, 3, 1, 2} : (int64_t[]){0, 1, 3, 2});
		Value *tv = th_gfin(g, tn); /* [N,6,4,3] or [N,4,6,3] */
		Node *rr = ir_begin(g, OP_RESHAPE, NULL, 1, &tv);
		ir_set_ints(g, rr, "shape", 3, (int64_t[]){-1, 4, 18});
		tin[i] = th_gfin(g, rr);
	}
	th_out(g, attr_op(g, OP_CONCAT, 2, tin, "axis", 2)); /* [N,4,36] */
	cr_assert_eq(pass_fuse(g), 0, "%s", g->err);
	int in_concat = 0;
	for (int i = 0; i < g->nnodes; i++)
		in_concat += g->nodes[i]->op == OP_TRANSPOSE && i + 2 < g->nnodes && ir_attr_i(g->nodes[i], "fuse", 0) > 0 &&
			     ir_attr_i(g->nodes[i], "fuse", 0) == ir_attr_i(g->nodes[g->nnodes - 1], "fuse", -1);
	cr_assert_eq(in_concat, 2, "both transposes in the Concat's group");
	int moves = 0;
	for (int i = 0; i < g->nnodes; i++)
		moves += g->nodes[i]->op == OP_SLICE && ir_attr_i(g->nodes[i], "fuse", 0) > 0;
	cr_assert_eq(moves, 3, "every Slice in its Transpose's group");
	th_check_infer(g, 4, 3, 5);
	ir_graph_free(g);
}
