/*
 * test_train.c — training-program construction: pass_mark_params, pass_loss, pass_optimizer
 * and pass_build_training, run through the reference interpreter.
 *
 * A small MLP must learn (its loss falls under sgd and adam); a one-parameter model
 * (out = x * w, mse loss) checks one or two steps of every optimizer against the torch.optim
 * update written out by hand; each loss kind is checked against its formula; bad requests
 * must fail with one clear message.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ir/interp.h"
#include "passes/passes.h"

#define SH(...) ir_shape(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), (int64_t[]){__VA_ARGS__})
#define N (-1)

static uint64_t rng_state = 12345;

static double urand(void) /* [-1, 1) */
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (double)(rng_state >> 11) / 4503599627370496.0 - 1.0;
}

static void fill(double *d, int n, double scale)
{
	for (int i = 0; i < n; i++)
		d[i] = scale * urand();
}

static Value *gemm_bt(Graph *g, Value *x, Value *w, Value *b)
{
	Node *n = ir_begin(g, OP_GEMM, NULL, 3, (Value *[]){x, w, b});
	ir_set_i(g, n, "transB", 1);
	cr_assert(ir_finish(g, n) == 0, "%s", g->err);
	return n->out[0];
}

/* x[N,4] -> Gemm(W1[8,4]^T, b1) -> Relu -> Gemm(W2[3,8]^T, b2) = logits[N,3] */
static Graph *mlp(void)
{
	Graph *g = ir_graph_new("mlp");
	double w1[32], b1[8], w2[24], b2[3];
	fill(w1, 32, 0.5);
	fill(b1, 8, 0.1);
	fill(w2, 24, 0.5);
	fill(b2, 3, 0.1);
	Value *x = ir_value(g, V_INPUT, "x", DT_F64, SH(N, 4), NULL);
	Value *W1 = ir_value(g, V_PARAM, "W1", DT_F64, SH(8, 4), w1);
	Value *B1 = ir_value(g, V_PARAM, "b1", DT_F64, SH(8), b1);
	Value *W2 = ir_value(g, V_PARAM, "W2", DT_F64, SH(3, 8), w2);
	Value *B2 = ir_value(g, V_PARAM, "b2", DT_F64, SH(3), b2);
	Value *h = ir_op1(g, OP_RELU, gemm_bt(g, x, W1, B1));
	ir_add_output(g, gemm_bt(g, h, W2, B2));
	return g;
}

static Interp *start(Graph *g, int64_t batch)
{
	char err[256];
	cr_assert(ir_verify(g) == 0, "%s", g->err);
	Interp *it = interp_new(g, DT_F64, batch, err, sizeof err);
	cr_assert(it, "%s", err);
	return it;
}

static double step(Interp *it, Graph *g, int64_t k)
{
	double l;
	cr_assert(interp_run(it, k) == 0, "%s", interp_error(it));
	cr_assert(interp_get_f64(it, g->loss, &l) == 0, "%s", interp_error(it));
	return l;
}

/* train the MLP on 8 fixed samples; returns first and last loss */
static void train_mlp(const char *opt, double lr, int steps, double *first, double *last)
{
	Graph *g = mlp();
	TrainOpts o;
	train_opts_default(&o, opt);
	o.lr = lr;
	cr_assert(pass_mark_params(g) == 0, "%s", g->err);
	cr_assert(pass_build_training(g, &o) == 0, "%s", g->err);
	cr_expect(g->nparams == 4 && g->nupdates >= 4 && strcmp(g->optimizer, opt) == 0);
	double x[32];
	int64_t y[8];
	fill(x, 32, 1.0);
	for (int i = 0; i < 8; i++) /* a learnable rule: the class of the largest of x[0..2] */
		y[i] = x[4 * i] > x[4 * i + 1] ? (x[4 * i] > x[4 * i + 2] ? 0 : 2) : (x[4 * i + 1] > x[4 * i + 2] ? 1 : 2);
	Interp *it = start(g, 8);
	cr_assert(interp_set(it, g->inputs[0], x, DT_F64) == 0);
	cr_assert(interp_set(it, g->label, y, DT_I64) == 0);
	for (int k = 1; k <= steps; k++) {
		double l = step(it, g, k);
		if (k == 1)
			*first = l;
		*last = l;
	}
	interp_free(it);
	ir_graph_free(g);
}

Test(train, mlp_loss_decreases)
{
	double first, last;
	train_mlp("sgd", 0.5, 60, &first, &last);
	cr_expect(last < 0.5 * first, "sgd: loss %g -> %g", first, last);
	train_mlp("adam", 0.02, 60, &first, &last);
	cr_expect(last < 0.5 * first, "adam: loss %g -> %g", first, last);
	train_mlp("momentum", 0.1, 60, &first, &last);
	cr_expect(last < 0.5 * first, "momentum: loss %g -> %g", first, last);
}

Test(train, cross_entropy_label_and_value)
{
	Graph *g = mlp();
	TrainOpts o;
	train_opts_default(&o, "sgd");
	cr_assert(pass_loss(g, &o) == 0, "%s", g->err);
	Shape want = SH(N);
	cr_expect(g->label && g->label->kind == V_LABEL && g->label->dt == DT_I64);
	cr_expect(strcmp(g->label->name, "label") == 0 && ir_shape_eq(&g->label->shape, &want));
	cr_expect(strcmp(g->loss_kind, "cross_entropy") == 0 && g->loss->shape.rank == 0);
	/* the loss equals the mean of -log_softmax(logits)[label] */
	double x[8], logits[6];
	int64_t y[2] = {2, 0};
	fill(x, 8, 1.0);
	Interp *it = start(g, 2);
	interp_set(it, g->inputs[0], x, DT_F64);
	interp_set(it, g->label, y, DT_I64);
	double l = step(it, g, 1), want_l = 0;
	interp_get_f64(it, g->outputs[0], logits);
	for (int r = 0; r < 2; r++) {
		double s = 0;
		for (int j = 0; j < 3; j++)
			s += exp(logits[3 * r + j]);
		want_l += (log(s) - logits[3 * r + y[r]]) / 2;
	}
	cr_expect(fabs(l - want_l) < 1e-12, "loss %.15g, expected %.15g", l, want_l);
	interp_free(it);
	ir_graph_free(g);
}

/* ---- the one-parameter model: out[N,2] = x * w, w[2] ---- */

typedef struct {
	Graph *g;
	Value *x, *w;
} Tiny;

static Tiny tiny(const char *opt, const TrainOpts *o)
{
	Tiny t;
	t.g = ir_graph_new("tiny");
	double w0[2] = {0.5, -0.3};
	t.x = ir_value(t.g, V_INPUT, "x", DT_F64, SH(N, 2), NULL);
	t.w = ir_value(t.g, V_PARAM, "w", DT_F64, SH(2), w0);
	ir_add_output(t.g, ir_op2(t.g, OP_MUL, t.x, t.w));
	TrainOpts oo = *o;
	oo.loss = "mse";
	oo.optimizer = opt;
	cr_assert(pass_build_training(t.g, &oo) == 0, "%s", t.g->err);
	return t;
}

static const double TX[6] = {1.0, 2.0, -0.5, 0.25, 3.0, -1.0}; /* x, batch 3 */
static const double TY[6] = {0.2, -1.0, 0.7, 0.1, 1.5, 0.4};   /* label */

/* d mean((x w - y)^2) / dw for the fixed batch */
static void tiny_grad(const double *w, double *gr)
{
	for (int j = 0; j < 2; j++) {
		gr[j] = 0;
		for (int r = 0; r < 3; r++)
			gr[j] += 2.0 * (TX[2 * r + j] * w[j] - TY[2 * r + j]) * TX[2 * r + j] / 6.0;
	}
}

static void tiny_run(Tiny *t, int steps, double *w_out)
{
	Interp *it = start(t->g, 3);
	cr_assert(interp_set(it, t->x, TX, DT_F64) == 0);
	cr_assert(interp_set(it, t->g->label, TY, DT_F64) == 0);
	for (int k = 1; k <= steps; k++)
		step(it, t->g, k);
	cr_assert(interp_get_f64(it, t->w, w_out) == 0, "%s", interp_error(it));
	interp_free(it);
}

static void expect_w(const double *got, const double *want, const char *what)
{
	for (int j = 0; j < 2; j++)
		cr_expect(fabs(got[j] - want[j]) <= 1e-12 * fmax(1, fabs(want[j])), "%s: w[%d] = %.15g, expected %.15g",
			  what, j, got[j], want[j]);
}

Test(train, sgd_step_by_hand)
{
	TrainOpts o;
	train_opts_default(&o, "sgd");
	o.lr = 0.1;
	o.weight_decay = 0.01;
	Tiny t = tiny("sgd", &o);
	double w[2] = {0.5, -0.3}, gr[2], got[2];
	for (int k = 0; k < 2; k++) {
		tiny_grad(w, gr);
		for (int j = 0; j < 2; j++)
			w[j] -= 0.1 * (gr[j] + 0.01 * w[j]);
	}
	tiny_run(&t, 2, got);
	expect_w(got, w, "sgd");
	cr_expect(t.g->nstates == 0 && t.g->nupdates == 1);
	ir_graph_free(t.g);
}

static void momentum_by_hand(int nesterov, double *w)
{
	double buf[2] = {0, 0}, gr[2];
	const double lr = 0.1, mom = 0.9, damp = 0.1, wd = 0.01;
	for (int k = 1; k <= 3; k++) {
		tiny_grad(w, gr);
		for (int j = 0; j < 2; j++) {
			double gg = gr[j] + wd * w[j];
			buf[j] = k == 1 ? gg : mom * buf[j] + (1 - damp) * gg;
			w[j] -= lr * (nesterov ? gg + mom * buf[j] : buf[j]);
		}
	}
}

Test(train, momentum_steps_by_hand)
{
	for (int nesterov = 0; nesterov < 2; nesterov++) {
		TrainOpts o;
		train_opts_default(&o, "momentum");
		o.lr = 0.1;
		o.dampening = 0.1;
		o.weight_decay = 0.01;
		o.nesterov = nesterov;
		Tiny t = tiny("momentum", &o);
		cr_assert(t.g->nstates == 1);
		Value *s = t.g->states[0];
		cr_expect(strcmp(s->name, "w.momentum_buffer") == 0 && strcmp(s->slot, "momentum_buffer") == 0);
		cr_expect(s->param == t.w && s->kind == V_STATE && ir_shape_eq(&s->shape, &t.w->shape));
		double w[2] = {0.5, -0.3}, got[2];
		momentum_by_hand(nesterov, w);
		tiny_run(&t, 3, got);
		expect_w(got, w, nesterov ? "nesterov" : "momentum");
		ir_graph_free(t.g);
	}
}

static void adam_by_hand(int decoupled, double wd, double *w)
{
	double m[2] = {0, 0}, v[2] = {0, 0}, gr[2];
	const double lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
	for (int k = 1; k <= 3; k++) {
		tiny_grad(w, gr);
		for (int j = 0; j < 2; j++) {
			double gg = gr[j];
			if (decoupled)
				w[j] *= 1 - lr * wd;
			else
				gg += wd * w[j];
			m[j] = b1 * m[j] + (1 - b1) * gg;
			v[j] = b2 * v[j] + (1 - b2) * gg * gg;
			double mh = m[j] / (1 - pow(b1, k)), vh = v[j] / (1 - pow(b2, k));
			w[j] -= lr * mh / (sqrt(vh) + eps);
		}
	}
}

Test(train, adam_steps_by_hand)
{
	static const char *const opts[] = {"adam", "adamw"};
	for (int i = 0; i < 2; i++) {
		TrainOpts o;
		train_opts_default(&o, opts[i]);
		o.lr = 0.01;
		o.weight_decay = 0.05;
		Tiny t = tiny(opts[i], &o);
		cr_assert(t.g->nstates == 2 && t.g->nupdates == 3);
		cr_expect(strcmp(t.g->states[0]->name, "w.exp_avg") == 0 && strcmp(t.g->states[1]->slot, "exp_avg_sq") == 0);
		cr_expect(t.g->states[0]->param == t.w && t.g->states[1]->param == t.w);
		double w[2] = {0.5, -0.3}, got[2];
		adam_by_hand(i == 1, 0.05, w);
		tiny_run(&t, 3, got);
		expect_w(got, w, opts[i]);
		ir_graph_free(t.g);
	}
}

Test(train, mse_label_and_value)
{
	TrainOpts o;
	train_opts_default(&o, "sgd");
	Tiny t = tiny("sgd", &o);
	cr_expect(t.g->label->dt == DT_F64 && ir_shape_eq(&t.g->label->shape, &t.g->outputs[0]->shape));
	cr_expect(strcmp(t.g->loss_kind, "mse") == 0);
	Interp *it = start(t.g, 3);
	interp_set(it, t.x, TX, DT_F64);
	interp_set(it, t.g->label, TY, DT_F64);
	double l = step(it, t.g, 1), want = 0, w[2] = {0.5, -0.3};
	for (int k = 0; k < 6; k++)
		want += pow(TX[k] * w[k % 2] - TY[k], 2) / 6;
	cr_expect(fabs(l - want) < 1e-13, "mse %.15g, expected %.15g", l, want);
	interp_free(it);
	ir_graph_free(t.g);
}

/* loss none: the model computes sum(w*w) itself, as a scalar or as a [1] tensor */
static void none_loss(Shape out_shape)
{
	Graph *g = ir_graph_new("none");
	double w0[2] = {1.0, -2.0}, got[2];
	Value *w = ir_value(g, V_PARAM, "w", DT_F64, SH(2), w0);
	Node *n = ir_begin(g, OP_REDUCE_SUM, NULL, 1, (Value *[]){ir_op2(g, OP_MUL, w, w)});
	ir_set_ints(g, n, "axes", 0, NULL);
	ir_set_i(g, n, "keepdims", out_shape.rank == 1);
	cr_assert(ir_finish(g, n) == 0, "%s", g->err);
	ir_add_output(g, n->out[0]);
	TrainOpts o;
	train_opts_default(&o, "sgd");
	o.loss = "none";
	o.lr = 0.25;
	cr_assert(pass_build_training(g, &o) == 0, "%s", g->err);
	cr_expect(g->label == NULL && g->loss->shape.rank == 0 && strcmp(g->loss_kind, "none") == 0);
	Interp *it = start(g, 1);
	cr_expect(fabs(step(it, g, 1) - 5.0) < 1e-15);
	interp_get_f64(it, w, got);
	cr_expect(got[0] == 0.5 && got[1] == -1.0, "w = %g %g", got[0], got[1]); /* w - 0.25 * 2w */
	interp_free(it);
	ir_graph_free(g);
}

Test(train, none_loss)
{
	none_loss(ir_shape0());
	none_loss(SH(1));
}

/* ---- errors ---- */

static Graph *single_output(Shape s, DType dt)
{
	Graph *g = ir_graph_new("bad");
	Value *x = ir_value(g, V_INPUT, "x", dt, s, NULL);
	ir_add_output(g, ir_op1(g, OP_IDENTITY, x));
	return g;
}

static void expect_loss_error(Shape s, DType dt, const char *loss, const char *words)
{
	Graph *g = single_output(s, dt);
	TrainOpts o;
	train_opts_default(&o, "sgd");
	o.loss = loss;
	cr_expect(pass_build_training(g, &o) == -1, "%s accepted", loss);
	cr_expect(strstr(g->err, words) != NULL, "error '%s' lacks '%s'", g->err, words);
	cr_expect(strchr(g->err, '\n') == NULL);
	ir_graph_free(g);
}

Test(train, loss_errors)
{
	expect_loss_error(ir_shape0(), DT_F32, "cross_entropy", "a scalar");
	expect_loss_error(SH(N, 3), DT_F32, "none", "not a scalar");
	expect_loss_error(SH(2), DT_F32, "none", "not a scalar");
	expect_loss_error(SH(N, 3), DT_F32, "hinge", "unknown loss 'hinge'");
	expect_loss_error(SH(N, 3), DT_I64, "mse", "not floating point");
}

Test(train, unknown_optimizer)
{
	Graph *g = mlp();
	TrainOpts o;
	train_opts_default(&o, "lion");
	cr_expect(pass_build_training(g, &o) == -1);
	cr_expect(strstr(g->err, "unknown optimizer 'lion'"), "%s", g->err);
	ir_graph_free(g);
}

Test(train, second_loss_is_an_error)
{
	Graph *g = mlp();
	TrainOpts o;
	train_opts_default(&o, "sgd");
	cr_assert(pass_loss(g, &o) == 0, "%s", g->err);
	cr_expect(pass_loss(g, &o) == -1 && strstr(g->err, "already"), "%s", g->err);
	ir_graph_free(g);
}

/* ---- parameters ---- */

Test(train, mark_params)
{
	Graph *g = ir_graph_new("mp");
	double d[3] = {1, 2, 3};
	int64_t shape_data[2] = {3, 1};
	Value *x = ir_value(g, V_INPUT, "x", DT_F32, SH(N, 3), NULL);
	Value *a = ir_value(g, V_PARAM, "a", DT_F32, SH(3), (float[]){1, 2, 3});
	Value *unused = ir_value(g, V_PARAM, "unused", DT_F32, SH(3), (float[]){1, 2, 3});
	Value *ints = ir_value(g, V_PARAM, "ints", DT_I64, SH(2), shape_data);
	Value *side = ir_value(g, V_PARAM, "side", DT_F64, SH(3), d);
	Value *b = ir_value(g, V_PARAM, "b", DT_F32, SH(3), (float[]){4, 5, 6});
	ir_add_output(g, ir_op2(g, OP_ADD, ir_op2(g, OP_MUL, x, a), b));
	ir_add_output(g, ir_op2(g, OP_MUL, side, side)); /* reaches only outputs[1] */
	ir_add_output(g, ir_op1(g, OP_NEG, ints));
	cr_assert(pass_mark_params(g) == 0, "%s", g->err);
	cr_expect(g->nparams == 2 && g->params[0] == a && g->params[1] == b);
	cr_expect(unused->kind == V_CONST && ints->kind == V_CONST && side->kind == V_CONST);
	cr_expect(side->data && ((double *)side->data)[2] == 3 && a->kind == V_PARAM);
	ir_graph_free(g);
}

Test(train, mark_params_stops_at_non_differentiable_ops)
{
	Graph *g = ir_graph_new("mp");
	Value *x = ir_value(g, V_INPUT, "x", DT_F32, SH(N, 3), NULL);
	Value *p = ir_value(g, V_PARAM, "p", DT_F32, SH(3), (float[]){1, 2, 3});
	ir_add_output(g, ir_op2(g, OP_RELU_GRAD, x, p)); /* ReluGrad has no gradient rule */
	cr_assert(pass_mark_params(g) == 0, "%s", g->err);
	cr_expect(g->nparams == 0 && p->kind == V_CONST);
	ir_graph_free(g);
}

Test(train, opts_defaults)
{
	TrainOpts o;
	train_opts_default(&o, "adamw");
	cr_expect(o.lr == 1e-3 && o.weight_decay == 1e-2 && o.beta1 == 0.9 && o.beta2 == 0.999 && o.eps == 1e-8);
	cr_expect(strcmp(o.loss, "cross_entropy") == 0 && strcmp(o.optimizer, "adamw") == 0);
	train_opts_default(&o, "adam");
	cr_expect(o.lr == 1e-3 && o.weight_decay == 0);
	train_opts_default(&o, "momentum");
	cr_expect(o.lr == 0.01 && o.momentum == 0.9 && o.dampening == 0 && o.nesterov == 0);
	train_opts_default(&o, "sgd");
	cr_expect(o.lr == 0.01 && o.momentum == 0);
}
