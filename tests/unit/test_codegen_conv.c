/*
 * test_codegen_conv.c — the convolution family's generated kernels (codegen/cg_conv.c) equal
 * the interpreter: each graph is compiled with cg_build (which also NVRTC-compiles the kernels
 * for sm_80/sm_90 when libnvrtc is present), run through the CPU emulation and compared output
 * by output (f32, relative tolerance 1e-5; one f64 case at 1e-12). The graphs take batch-shaped
 * inputs so the batch extent B is a run-time value, and cover every attribute that changes the
 * kernel text: bias, groups, depthwise, stride, dilation, asymmetric pads, 1-D, ceil_mode,
 * count_include_pad, the gradient ops fed by their forward ops (MaxPoolGrad by MaxPool's
 * indices), and Pad/PadGrad in each mode, negative pads included. The convolutions again after
 * pass_im2col (Im2Col, Col2Im, MatMul), in f32 and under mixed precision.
 * The harness (artifact open, random inputs, compare) is th_check_infer in harness.c.
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

/* ---- the convolution family ---- */

#define I(...) ((int64_t[]){__VA_ARGS__})

typedef struct {
	int sp;
	const int64_t *k, *s, *d, *p;
	int64_t group;
	int ceil, cip;
} Win;

static Node *win_node(Graph *g, Op op, int nin, Value **in, Win w)
{
	Node *n = ir_begin(g, op, ir_ops[op].name, nin, in);
	ir_set_ints(g, n, "kernel_shape", w.sp, w.k);
	ir_set_ints(g, n, "strides", w.sp, w.s);
	ir_set_ints(g, n, "dilations", w.sp, w.d);
	ir_set_ints(g, n, "pads", 2 * w.sp, w.p);
	ir_set_i(g, n, "group", w.group ? w.group : 1);
	ir_set_i(g, n, "ceil_mode", w.ceil);
	ir_set_i(g, n, "count_include_pad", w.cip);
	return n;
}

/* Conv forward, its two gradient ops on a dy input, and bias */
static void conv_case(Graph *g, const char *tag, Shape xs, Shape ws, Win w, int bias)
{
	char nm[64];
	snprintf(nm, sizeof nm, "x_%s", tag);
	Value *x = th_input(g, nm, xs);
	snprintf(nm, sizeof nm, "w_%s", tag);
	Value *wt = th_param(g, nm, ws);
	Value *in[3] = {x, wt, NULL};
	if (bias) {
		snprintf(nm, sizeof nm, "b_%s", tag);
		in[2] = th_param(g, nm, ir_shape(1, &ws.d[0]));
	}
	Value *y = th_out(g, th_gfin(g, win_node(g, OP_CONV, bias ? 3 : 2, in, w)));
	snprintf(nm, sizeof nm, "dy_%s", tag);
	Value *dy = th_input(g, nm, y->shape);
	Node *n = win_node(g, OP_CONV_GRAD_INPUT, 2, (Value *[]){dy, wt}, w);
	ir_set_ints(g, n, "shape", xs.rank, xs.d);
	th_out(g, th_gfin(g, n));
	n = win_node(g, OP_CONV_GRAD_WEIGHT, 2, (Value *[]){dy, x}, w);
	ir_set_ints(g, n, "shape", ws.rank, ws.d);
	th_out(g, th_gfin(g, n));
}

Test(codegen_conv, conv_and_grads)
{
	int64_t one[] = {1, 1}, two[] = {2, 2};
	Graph *g = ir_graph_new("conv");
	conv_case(g, "p1", SHAPE(-1, 3, 5, 5), SHAPE(4, 3, 3, 3), (Win){2, I(3, 3), one, one, I(1, 1, 1, 1)}, 1);
	conv_case(g, "s2", SHAPE(-1, 3, 6, 5), SHAPE(2, 3, 3, 2), (Win){2, I(3, 2), two, one, I(0, 1, 1, 0)}, 0);
	conv_case(g, "d2", SHAPE(-1, 2, 7, 7), SHAPE(3, 2, 3, 3), (Win){2, I(3, 3), one, two, I(2, 1, 2, 1)}, 1);
	conv_case(g, "g2", SHAPE(-1, 4, 5, 5), SHAPE(6, 2, 3, 3), (Win){2, I(3, 3), one, one, I(1, 1, 1, 1), 2}, 1);
	conv_case(g, "dw", SHAPE(-1, 3, 6, 6), SHAPE(3, 1, 3, 3), (Win){2, I(3, 3), two, one, I(1, 1, 1, 1), 3}, 1);
	conv_case(g, "1d", SHAPE(-1, 3, 7), SHAPE(2, 3, 3), (Win){1, I(3), I(2), I(1), I(1, 0)}, 1);
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

/* g after pass_im2col (every convolution; mixed precision first when half is not f32): the
 * interpreter gives what it gave on g (float64, to 1e-12), and the kernels (Im2Col, Col2Im,
 * the GEMMs through the CPU cuBLAS) give what the interpreter gives */
static void check_lowered(Graph *g, DType half)
{
	Graph *h = ir_graph_clone(g);
	cr_assert_eq(pass_mixed_precision(h, half), 0, "%s", h->err);
	cr_assert_eq(pass_im2col(h, IM2COL_ALL), 0, "%s", h->err);
	cr_assert_eq(ir_verify(h), 0, "%s", h->err);
	for (int i = 0; i < h->nnodes; i++)
		cr_assert(h->nodes[i]->op != OP_CONV && h->nodes[i]->op != OP_CONV_GRAD_INPUT &&
			  h->nodes[i]->op != OP_CONV_GRAD_WEIGHT, "a convolution was left: %s", h->nodes[i]->name);
	if (half == DT_F32) {
		void **in = th_make_inputs(g, 3, DT_F64, 0);
		Interp *a = th_interp(g, DT_F64, 3), *b = th_interp(h, DT_F64, 3);
		th_set_inputs(a, g, in, DT_F64);
		th_set_inputs(b, h, in, DT_F64);
		cr_assert_eq(interp_run(a, 1), 0, "%s", interp_error(a));
		cr_assert_eq(interp_run(b, 1), 0, "%s", interp_error(b));
		for (int i = 0; i < g->noutputs; i++) {
			int64_t n = ir_numel_at(&g->outputs[i]->shape, 3);
			double *want = calloc(n + 1, 8), *got = calloc(n + 1, 8);
			cr_assert_eq(interp_get_f64(a, g->outputs[i], want), 0);
			cr_assert_eq(interp_get_f64(b, h->outputs[i], got), 0);
			th_expect_close(g->outputs[i]->name, got, want, n, 1e-12);
			free(want);
			free(got);
		}
		interp_free(a);
		interp_free(b);
		th_free_list(in, g->ninputs);
	}
	th_check_infer(h, 4, 3, 0);
	ir_graph_free(h);
}

/* the same configurations as im2col + GEMM: groups, depthwise, stride, dilation, asymmetric
 * pads, 1-D, a pointwise window (no Im2Col / Col2Im), in f32, fp16 and bf16 */
Test(codegen_conv, im2col_conv_and_grads)
{
	int64_t one[] = {1, 1}, two[] = {2, 2};
	Graph *g = ir_graph_new("conv_im2col");
	conv_case(g, "p1", SHAPE(-1, 3, 5, 5), SHAPE(4, 3, 3, 3), (Win){2, I(3, 3), one, one, I(1, 1, 1, 1)}, 1);
	conv_case(g, "s2", SHAPE(-1, 3, 6, 5), SHAPE(2, 3, 3, 2), (Win){2, I(3, 2), two, one, I(0, 1, 1, 0)}, 0);
	conv_case(g, "d2", SHAPE(-1, 2, 7, 7), SHAPE(3, 2, 3, 3), (Win){2, I(3, 3), one, two, I(2, 1, 2, 1)}, 1);
	conv_case(g, "g2", SHAPE(-1, 4, 5, 5), SHAPE(6, 2, 3, 3), (Win){2, I(3, 3), one, one, I(1, 1, 1, 1), 2}, 1);
	conv_case(g, "dw", SHAPE(-1, 3, 6, 6), SHAPE(3, 1, 3, 3), (Win){2, I(3, 3), two, one, I(1, 1, 1, 1), 3}, 1);
	conv_case(g, "1d", SHAPE(-1, 3, 7), SHAPE(2, 3, 3), (Win){1, I(3), I(2), I(1), I(1, 0)}, 1);
	conv_case(g, "pw", SHAPE(-1, 4, 3, 5), SHAPE(6, 2, 1, 1), (Win){2, I(1, 1), one, one, I(0, 0, 0, 0), 2}, 1);
	conv_case(g, "pw2", SHAPE(-1, 4, 5, 5), SHAPE(3, 4, 1, 1), (Win){2, I(1, 1), two, one, I(0, 0, 0, 0)}, 0);
	check_lowered(g, DT_F32);
	check_lowered(g, DT_F16);
	check_lowered(g, DT_BF16);
	ir_graph_free(g);
}

/* ConvGradWeight's reduction over N*OH*OW is longer than a block: the stride loop and the tree sum */
Test(codegen_conv, conv_grad_weight_long_reduction)
{
	int64_t one[] = {1, 1};
	Graph *g = ir_graph_new("convlong");
	conv_case(g, "big", SHAPE(-1, 2, 12, 12), SHAPE(3, 2, 3, 3), (Win){2, I(3, 3), one, one, I(1, 1, 1, 1)}, 1);
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

static void pool_case(Graph *g, const char *tag, Op op, Shape xs, Win w)
{
	char nm[64];
	snprintf(nm, sizeof nm, "x_%s", tag);
	Value *x = th_input(g, nm, xs);
	Node *f = win_node(g, op, 1, &x, w);
	Value *y = th_out(g, th_gfin(g, f));
	snprintf(nm, sizeof nm, "dy_%s", tag);
	Value *dy = th_input(g, nm, y->shape);
	Node *n = op == OP_MAX_POOL ? win_node(g, OP_MAX_POOL_GRAD, 2, (Value *[]){dy, f->out[1]}, w)
				    : win_node(g, OP_AVERAGE_POOL_GRAD, 1, &dy, w);
	ir_set_ints(g, n, "shape", xs.rank, xs.d);
	th_out(g, th_gfin(g, n)); /* MaxPool's indices are checked through MaxPoolGrad */
}

Test(codegen_conv, pools_and_grads)
{
	int64_t one[] = {1, 1}, two[] = {2, 2};
	Graph *g = ir_graph_new("pools");
	pool_case(g, "mp", OP_MAX_POOL, SHAPE(-1, 2, 5, 5), (Win){2, I(3, 3), two, one, I(1, 1, 1, 1)});
	pool_case(g, "mpc", OP_MAX_POOL, SHAPE(-1, 2, 6, 6), (Win){2, I(3, 3), two, one, I(0, 0, 0, 0), 0, 1});
	pool_case(g, "mpd", OP_MAX_POOL, SHAPE(-1, 2, 6, 6), (Win){2, I(2, 2), one, two, I(0, 1, 0, 1)});
	pool_case(g, "mp1", OP_MAX_POOL, SHAPE(-1, 3, 8), (Win){1, I(2), I(2), I(1), I(0, 0)});
	pool_case(g, "ap0", OP_AVERAGE_POOL, SHAPE(-1, 2, 5, 5), (Win){2, I(3, 3), two, one, I(1, 1, 1, 1)});
	pool_case(g, "ap1", OP_AVERAGE_POOL, SHAPE(-1, 2, 5, 5), (Win){2, I(3, 3), two, one, I(1, 1, 1, 1), 0, 0, 1});
	pool_case(g, "apc", OP_AVERAGE_POOL, SHAPE(-1, 2, 6, 6), (Win){2, I(3, 3), two, one, I(1, 0, 1, 0), 0, 1, 1});
	pool_case(g, "apc0", OP_AVERAGE_POOL, SHAPE(-1, 2, 6, 6), (Win){2, I(3, 3), two, one, I(1, 0, 1, 0), 0, 1, 0});
	pool_case(g, "apd", OP_AVERAGE_POOL, SHAPE(-1, 2, 7, 7), (Win){2, I(2, 2), two, two, I(1, 1, 0, 0), 0, 1, 1});
	pool_case(g, "ap1d", OP_AVERAGE_POOL, SHAPE(-1, 3, 8), (Win){1, I(3), I(2), I(1), I(1, 1)});
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

static void pad_case(Graph *g, const char *tag, Shape xs, const char *mode, const int64_t *pads)
{
	char nm[64];
	snprintf(nm, sizeof nm, "x_%s_%s", tag, mode);
	Value *x = th_input(g, nm, xs);
	Node *n = ir_begin(g, OP_PAD, "pad", 1, &x);
	ir_set_ints(g, n, "pads", 2 * xs.rank, pads);
	ir_set_s(g, n, "mode", mode);
	ir_set_f(g, n, "value", -0.25);
	Value *y = th_out(g, th_gfin(g, n));
	snprintf(nm, sizeof nm, "dy_%s_%s", tag, mode);
	Value *dy = th_input(g, nm, y->shape);
	n = ir_begin(g, OP_PAD_GRAD, "padgrad", 1, &dy);
	ir_set_ints(g, n, "pads", 2 * xs.rank, pads);
	ir_set_s(g, n, "mode", mode);
	th_out(g, th_gfin(g, n));
}

Test(codegen_conv, pad_and_grad)
{
	const char *modes[] = {"constant", "reflect", "edge"};
	Graph *g = ir_graph_new("pad");
	for (int m = 0; m < 3; m++) {
		pad_case(g, "a", SHAPE(-1, 3, 4, 5), modes[m], I(0, 0, 1, 2, 0, 0, 2, 1));
		pad_case(g, "b", SHAPE(-1, 3, 4), modes[m], I(0, 1, 3, 0, 0, -1));
	}
	th_check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

Test(codegen_conv, f64_precision)
{
	int64_t one[] = {1, 1}, two[] = {2, 2};
	Graph *g = ir_graph_new("conv64");
	Value *x = ir_value(g, V_INPUT, "x", DT_F64, SHAPE(-1, 2, 5, 5), NULL);
	double wd[2 * 2 * 9];
	for (int i = 0; i < 36; i++)
		wd[i] = th_urand();
	Value *w = ir_value(g, V_PARAM, "w", DT_F64, SHAPE(2, 2, 3, 3), wd);
	Value *y = th_gfin(g, win_node(g, OP_CONV, 2, (Value *[]){x, w}, (Win){2, I(3, 3), two, one, I(1, 1, 1, 1)}));
	Node *p = win_node(g, OP_MAX_POOL, 1, &y, (Win){2, I(2, 2), one, one, I(0, 0, 0, 0)});
	th_out(g, th_gfin(g, p));
	th_check_infer_prec(g, 4, 3, 0, DT_F64);
	ir_graph_free(g);
}
