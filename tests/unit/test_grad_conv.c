/*
 * test_grad_conv.c — float64 finite-difference checks of the convolution family's gradient rules
 * (passes/grad_conv.c): Conv (groups, depthwise, stride 2, dilation 2, asymmetric pads, 1-D,
 * bias), ConvGradInput (= ConvTranspose, incl. output padding), MaxPool (pads, ceil_mode,
 * dilation), AveragePool (count_include_pad 0/1, ceil_mode) and Pad (constant, reflect, edge,
 * negative pads). The harness is test_grad.c's:
 *
 * Each case builds a tiny f64 graph x -> op -> y, then loss = ReduceSum(y * R) with R a fixed
 * random tensor, differentiates it (pass_autodiff when every differentiated input is a batch-free
 * V_PARAM; grad_backward for batch-shaped V_INPUTs), runs the reference interpreter at batch 3
 * and compares each analytic gradient element with a central difference (eps 1e-6, relative
 * tolerance 1e-6). Inputs are random values of magnitude in [0.2, 1] (positive where the op
 * needs it), so kinks (Relu at 0) lie far from every evaluation point.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/interp.h"
#include "passes/grad.h"
#include "passes/passes.h"

#define BATCH 3
#define FD_EPS 1e-6
#define FD_TOL 1e-6
#define MAXW 8

#define SH(...) ir_shape(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), (int64_t[]){__VA_ARGS__})
#define N (-1)

typedef struct {
	Graph *g;
	Value *w[MAXW];      /* differentiated float inputs */
	char pos[MAXW];      /* w[i] must stay positive */
	double *data[MAXW];  /* their values at batch BATCH */
	int nw;
	Value *lab;          /* optional integer label input */
	int64_t classes;
	uint64_t rng;
} Case;

static double rnd(Case *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return (double)(c->rng >> 11) / 9007199254740992.0; /* [0,1) */
}

static Case *case_new(void)
{
	Case *c = calloc(1, sizeof *c);
	c->g = ir_graph_new("grad");
	c->rng = 0x9E3779B97F4A7C15ull;
	return c;
}

static void case_free(Case *c)
{
	for (int i = 0; i < c->nw; i++)
		free(c->data[i]);
	ir_graph_free(c->g);
	free(c);
}

static void fill(Case *c, double *d, int64_t n, int positive)
{
	for (int64_t k = 0; k < n; k++) {
		double m = 0.2 + 0.8 * rnd(c);
		d[k] = positive || rnd(c) < 0.5 ? m : -m;
	}
}

/* a differentiated input: a V_PARAM when batch-free, else a V_INPUT */
static Value *var(Case *c, Shape s, int positive)
{
	int64_t n = ir_numel_at(&s, BATCH);
	double *d = malloc((n ? n : 1) * sizeof *d);
	fill(c, d, n, positive);
	int batched = ir_has_batch(&s);
	char name[16];
	snprintf(name, sizeof name, "w%d", c->nw);
	Value *v = ir_value(c->g, batched ? V_INPUT : V_PARAM, name, DT_F64, s, batched ? NULL : d);
	cr_assert(c->nw < MAXW);
	c->w[c->nw] = v;
	c->pos[c->nw] = positive;
	c->data[c->nw++] = d;
	return v;
}


static Value *fin(Case *c, Node *n)
{
	cr_assert(ir_finish(c->g, n) == 0, "%s", c->g->err);
	return n->out[0];
}


static Value *op2(Case *c, Op op, Value *a, Value *b)
{
	return fin(c, ir_begin(c->g, op, NULL, 2, (Value *[]){a, b}));
}

static Node *begin(Case *c, Op op, int nin, Value **in) { return ir_begin(c->g, op, NULL, nin, in); }

/* ---- the check ---- */

/* loss = ReduceSum(y * R), R a random V_INPUT shaped like y */
static Value *random_projection_loss(Case *c, Value *y, Value **r)
{
	*r = ir_value(c->g, V_INPUT, "R", DT_F64, y->shape, NULL);
	Node *n = begin(c, OP_REDUCE_SUM, 1, (Value *[]){op2(c, OP_MUL, y, *r)});
	ir_set_ints(c->g, n, "axes", 0, NULL);
	ir_set_i(c->g, n, "keepdims", 0);
	return fin(c, n);
}

static void set_inputs(Case *c, Interp *it, Value *r)
{
	int64_t nr = ir_numel_at(&r->shape, BATCH);
	double *rd = malloc((nr ? nr : 1) * sizeof *rd);
	fill(c, rd, nr, 0);
	cr_assert(interp_set(it, r, rd, DT_F64) == 0, "%s", interp_error(it));
	free(rd);
	for (int i = 0; i < c->nw; i++)
		cr_assert(interp_set(it, c->w[i], c->data[i], DT_F64) == 0, "%s", interp_error(it));
	if (c->lab) {
		int64_t nl = ir_numel_at(&c->lab->shape, BATCH), *l = malloc(nl * sizeof *l);
		for (int64_t k = 0; k < nl; k++)
			l[k] = (int64_t)(rnd(c) * c->classes) % c->classes;
		cr_assert(interp_set(it, c->lab, l, DT_I64) == 0, "%s", interp_error(it));
		free(l);
	}
}

static double run_loss(Interp *it, Value *loss)
{
	double l;
	cr_assert(interp_run(it, 1) == 0, "%s", interp_error(it));
	cr_assert(interp_get_f64(it, loss, &l) == 0, "%s", interp_error(it));
	return l;
}

static double central_difference(Case *c, Interp *it, Value *loss, int i, int64_t k)
{
	double x = c->data[i][k], lp, lm;
	c->data[i][k] = x + FD_EPS;
	interp_set(it, c->w[i], c->data[i], DT_F64);
	lp = run_loss(it, loss);
	c->data[i][k] = x - FD_EPS;
	interp_set(it, c->w[i], c->data[i], DT_F64);
	lm = run_loss(it, loss);
	c->data[i][k] = x;
	interp_set(it, c->w[i], c->data[i], DT_F64);
	return (lp - lm) / (2 * FD_EPS);
}

/* an: the analytic gradient of w[i], read before any perturbed run */
static void compare_grad(Case *c, Interp *it, Value *loss, int i, const double *an, const char *what)
{
	int64_t n = ir_numel_at(&c->w[i]->shape, BATCH);
	for (int64_t k = 0; k < n; k++) {
		double fd = central_difference(c, it, loss, i, k);
		double tol = FD_TOL * fmax(1.0, fmax(fabs(fd), fabs(an[k])));
		cr_expect(fabs(an[k] - fd) <= tol, "%s: d/d%s[%lld]: analytic %.12g, finite difference %.12g",
			  what, c->w[i]->name, (long long)k, an[k], fd);
	}
}

static int all_params(Case *c)
{
	if (c->nw != c->g->nparams)
		return 0;
	for (int i = 0; i < c->nw; i++)
		if (c->w[i] != c->g->params[i])
			return 0;
	return 1;
}

/* differentiate ReduceSum(y * R) and compare every gradient with central differences */
static void check(Case *c, Value *y, const char *what)
{
	Value *r, *grads[MAXW];
	c->g->loss = random_projection_loss(c, y, &r);
	int rc = all_params(c) ? pass_autodiff(c->g, grads) : grad_backward(c->g, c->nw, c->w, grads);
	cr_assert(rc == 0, "%s: autodiff failed: %s", what, c->g->err);
	cr_assert(ir_verify(c->g) == 0, "%s: %s", what, c->g->err);
	char err[256];
	Interp *it = interp_new(c->g, DT_F64, BATCH, err, sizeof err);
	cr_assert(it, "%s: %s", what, err);
	set_inputs(c, it, r);
	run_loss(it, c->g->loss);
	double *an[MAXW];
	for (int i = 0; i < c->nw; i++) {
		int64_t n = ir_numel_at(&c->w[i]->shape, BATCH);
		an[i] = malloc((n ? n : 1) * sizeof *an[i]);
		cr_assert(ir_shape_eq(&grads[i]->shape, &c->w[i]->shape), "%s: gradient shape", what);
		cr_assert(interp_get_f64(it, grads[i], an[i]) == 0, "%s", interp_error(it));
	}
	for (int i = 0; i < c->nw; i++) {
		compare_grad(c, it, c->g->loss, i, an[i], what);
		free(an[i]);
	}
	interp_free(it);
}

/* ---- elementwise ---- */

/* ---- the convolution family ---- */

#define I(...) ((int64_t[]){__VA_ARGS__})

typedef struct {
	int sp;
	const int64_t *k, *s, *d, *p; /* p: 2*sp */
	int64_t group;
	int ceil, cip;
} Win;

static void set_win(Case *c, Node *n, const Win *w)
{
	ir_set_ints(c->g, n, "kernel_shape", w->sp, w->k);
	ir_set_ints(c->g, n, "strides", w->sp, w->s);
	ir_set_ints(c->g, n, "dilations", w->sp, w->d);
	ir_set_ints(c->g, n, "pads", 2 * w->sp, w->p);
	ir_set_i(c->g, n, "group", w->group ? w->group : 1);
	ir_set_i(c->g, n, "ceil_mode", w->ceil);
	ir_set_i(c->g, n, "count_include_pad", w->cip);
}

static void check_conv(Shape xs, Shape ws, int bias, Win w, const char *what)
{
	Case *c = case_new();
	Value *in[3] = {var(c, xs, 0), var(c, ws, 0), NULL};
	if (bias)
		in[2] = var(c, ir_shape(1, &ws.d[0]), 0);
	Node *n = begin(c, OP_CONV, bias ? 3 : 2, in);
	set_win(c, n, &w);
	check(c, fin(c, n), what);
	case_free(c);
}

Test(grad_conv, conv)
{
	int64_t one[] = {1, 1}, two[] = {2, 2};
	check_conv(SH(2, 3, 5, 5), SH(4, 3, 3, 3), 1, (Win){2, I(3, 3), one, one, I(1, 1, 1, 1)}, "pad 1");
	check_conv(SH(2, 3, 6, 5), SH(2, 3, 3, 2), 0, (Win){2, I(3, 2), two, one, I(0, 1, 1, 0)}, "stride 2, asymmetric pads");
	check_conv(SH(1, 2, 7, 7), SH(3, 2, 3, 3), 1, (Win){2, I(3, 3), one, two, I(2, 1, 2, 1)}, "dilation 2");
	check_conv(SH(2, 4, 5, 5), SH(6, 2, 3, 3), 1, (Win){2, I(3, 3), one, one, I(1, 1, 1, 1), 2}, "groups 2");
	check_conv(SH(2, 3, 6, 6), SH(3, 1, 3, 3), 1, (Win){2, I(3, 3), two, one, I(1, 1, 1, 1), 3}, "depthwise, stride 2");
	check_conv(SH(2, 3, 7), SH(2, 3, 3), 1, (Win){1, I(3), I(2), I(1), I(1, 0)}, "1-D stride 2");
	check_conv(SH(N, 2, 4, 4), SH(2, 2, 2, 2), 1, (Win){2, I(2, 2), two, one, I(0, 0, 0, 0)}, "batch input");
}

/* ConvGradInput as ConvTranspose: a [n, M, oh, ow] and w [M, C/g, k, k] -> shape */
static void check_conv_transpose(Shape as, Shape ws, Shape out, Win w, const char *what)
{
	Case *c = case_new();
	Node *n = begin(c, OP_CONV_GRAD_INPUT, 2, (Value *[]){var(c, as, 0), var(c, ws, 0)});
	set_win(c, n, &w);
	ir_set_ints(c->g, n, "shape", out.rank, out.d);
	check(c, fin(c, n), what);
	case_free(c);
}

Test(grad_conv, conv_transpose)
{
	int64_t one[] = {1, 1}, two[] = {2, 2};
	check_conv_transpose(SH(2, 4, 3, 3), SH(4, 2, 3, 3), SH(2, 2, 6, 6), (Win){2, I(3, 3), two, one, I(1, 1, 1, 1)},
			     "stride 2, output padding 1");
	check_conv_transpose(SH(1, 4, 3, 4), SH(4, 1, 2, 2), SH(1, 2, 4, 5), (Win){2, I(2, 2), one, one, I(0, 0, 0, 0), 2},
			     "groups 2");
	check_conv_transpose(SH(2, 2, 4), SH(2, 3, 3), SH(2, 3, 9), (Win){1, I(3), I(2), I(1), I(0, 0)}, "1-D");
}

static void check_pool(Op op, Shape xs, Win w, const char *what)
{
	Case *c = case_new();
	Node *n = begin(c, op, 1, (Value *[]){var(c, xs, 0)});
	set_win(c, n, &w);
	check(c, fin(c, n), what);
	case_free(c);
}

Test(grad_conv, max_pool)
{
	int64_t one[] = {1, 1}, two[] = {2, 2};
	check_pool(OP_MAX_POOL, SH(2, 2, 5, 5), (Win){2, I(3, 3), two, one, I(1, 1, 1, 1)}, "k3 s2 p1");
	check_pool(OP_MAX_POOL, SH(1, 2, 6, 6), (Win){2, I(3, 3), two, one, I(0, 0, 0, 0), 0, 1}, "ceil_mode");
	check_pool(OP_MAX_POOL, SH(1, 2, 6, 6), (Win){2, I(2, 2), one, two, I(0, 1, 0, 1)}, "dilation 2, asymmetric pads");
	check_pool(OP_MAX_POOL, SH(2, 3, 8), (Win){1, I(2), I(2), I(1), I(0, 0)}, "1-D");
	check_pool(OP_MAX_POOL, SH(N, 2, 4, 4), (Win){2, I(2, 2), two, one, I(0, 0, 0, 0)}, "batch input");
}

Test(grad_conv, average_pool)
{
	int64_t one[] = {1, 1}, two[] = {2, 2};
	for (int cip = 0; cip < 2; cip++) {
		check_pool(OP_AVERAGE_POOL, SH(2, 2, 5, 5), (Win){2, I(3, 3), two, one, I(1, 1, 1, 1), 0, 0, cip}, "k3 s2 p1");
		check_pool(OP_AVERAGE_POOL, SH(1, 2, 6, 6), (Win){2, I(3, 3), two, one, I(1, 0, 1, 0), 0, 1, cip}, "ceil_mode");
		check_pool(OP_AVERAGE_POOL, SH(1, 2, 7, 7), (Win){2, I(2, 2), two, two, I(1, 1, 0, 0), 0, 1, cip}, "dilation 2");
	}
	check_pool(OP_AVERAGE_POOL, SH(2, 3, 8), (Win){1, I(3), I(2), I(1), I(1, 1)}, "1-D");
}

static void check_pad(Shape xs, const char *mode, const int64_t *pads)
{
	Case *c = case_new();
	Node *n = begin(c, OP_PAD, 1, (Value *[]){var(c, xs, 0)});
	ir_set_ints(c->g, n, "pads", 2 * xs.rank, pads);
	ir_set_s(c->g, n, "mode", mode);
	ir_set_f(c->g, n, "value", 0.5);
	check(c, fin(c, n), mode);
	case_free(c);
}

Test(grad_conv, pad)
{
	const char *modes[] = {"constant", "reflect", "edge"};
	for (int m = 0; m < 3; m++) {
		check_pad(SH(2, 3, 4, 5), modes[m], I(0, 0, 1, 2, 0, 0, 2, 1));
		check_pad(SH(2, 3, 4), modes[m], I(0, 1, 3, 0, 0, -1));
		check_pad(SH(N, 2, 3), modes[m], I(0, 0, 2, 0, 1, 2));
	}
}
