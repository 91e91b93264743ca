/*
 * test_grad_conv.c — float64 finite-difference checks of the convolution family's gradient rules
 * (passes/grad_conv.c): Conv (groups, depthwise, stride 2, dilation 2, asymmetric pads, 1-D,
 * bias), ConvGradInput (= ConvTranspose, incl. output padding), MaxPool (pads, ceil_mode,
 * dilation), AveragePool (count_include_pad 0/1, ceil_mode) and Pad (constant, reflect, edge,
 * negative pads). The harness is th_check in harness.c:
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

#include "harness.h"

#define SH(...) ir_shape(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), (int64_t[]){__VA_ARGS__})
#define N (-1)

static ThCase *case_new(void) { return th_case_new("grad", 0x9E3779B97F4A7C15ull); }

/* ---- elementwise ---- */

/* ---- the convolution family ---- */

#define I(...) ((int64_t[]){__VA_ARGS__})

typedef struct {
	int sp;
	const int64_t *k, *s, *d, *p; /* p: 2*sp */
	int64_t group;
	int ceil, cip;
} Win;

static void set_win(ThCase *c, Node *n, const Win *w)
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
	ThCase *c = case_new();
	Value *in[3] = {th_var(c, xs, 0), th_var(c, ws, 0), NULL};
	if (bias)
		in[2] = th_var(c, ir_shape(1, &ws.d[0]), 0);
	Node *n = th_begin(c, OP_CONV, bias ? 3 : 2, in);
	set_win(c, n, &w);
	th_check(c, th_fin(c, n), what);
	th_case_free(c);
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
	ThCase *c = case_new();
	Node *n = th_begin(c, OP_CONV_GRAD_INPUT, 2, (Value *[]){th_var(c, as, 0), th_var(c, ws, 0)});
	set_win(c, n, &w);
	ir_set_ints(c->g, n, "shape", out.rank, out.d);
	th_check(c, th_fin(c, n), what);
	th_case_free(c);
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
	ThCase *c = case_new();
	Node *n = th_begin(c, op, 1, (Value *[]){th_var(c, xs, 0)});
	set_win(c, n, &w);
	th_check(c, th_fin(c, n), what);
	th_case_free(c);
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
	ThCase *c = case_new();
	Node *n = th_begin(c, OP_PAD, 1, (Value *[]){th_var(c, xs, 0)});
	ir_set_ints(c->g, n, "pads", 2 * xs.rank, pads);
	ir_set_s(c->g, n, "mode", mode);
	ir_set_f(c->g, n, "value", 0.5);
	th_check(c, th_fin(c, n), mode);
	th_case_free(c);
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
