/*
 * test_text.c — the textual IR (ir/print.c, ir/parse.c), the verifier (ir/verify.c) and the
 * clean-up passes (passes/fold.c, passes/dce.c) seen through the interpreter.
 *
 * Round trip: a graph built with the ir.h API that holds every op of the table, every attribute
 * kind, every dtype (constants with awkward values: -0, denormals, inf, NaN, extremes), batch
 * dims N and 2N, names that need quoting, a numeric name that is not its id, states, updates
 * and a loss; print(parse(print(g))) must equal print(g), constants must come back bit-exact
 * and numeric names keep their ids. Parse errors are checked to the exact file:line:col and the
 * caret line; verifier errors by the node they name; fold + dce by the interpreter's results
 * before and after on the same random input.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/interp.h"
#include "passes/passes.h"
#include "passes/pipeline.h"

#define SH(...) ir_shape(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), (int64_t[]){__VA_ARGS__})
#define N (-1)

static char *print_str(const Graph *g)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ir_print(f, g);
	fclose(f);
	return buf;
}

static Node *node(Graph *g, Op op, const char *name, int nin, Value **in)
{
	return ir_begin(g, op, name, nin, in);
}

static Value *fin(Graph *g, Node *n, int k)
{
	cr_assert_eq(ir_finish(g, n), 0, "%s", g->err);
	return n->out[k];
}

static Value *op1a(Graph *g, Op op, Value *a, const char *attr, int64_t v)
{
	Node *n = node(g, op, NULL, 1, &a);
	ir_set_i(g, n, attr, v);
	return fin(g, n, 0);
}

static Value *op_ints(Graph *g, Op op, Value *a, const char *attr, int cnt, const int64_t *v)
{
	Node *n = node(g, op, NULL, 1, &a);
	ir_set_ints(g, n, attr, cnt, v);
	return fin(g, n, 0);
}

/* one constant per dtype, each through an Identity node to an output */
static void add_dtypes(Graph *g)
{
	float f32[6] = {0.1f, -0.0f, 1e-45f, 3.4028235e38f, INFINITY, NAN};
	double f64[4] = {0.1, -1e-310, 1.7976931348623157e308, -INFINITY};
	uint16_t f16[3] = {0x3c00, 0x0001, 0xfbff}, bf16[3] = {0x3f80, 0x0001, 0xff7f};
	int64_t i64[3] = {INT64_MIN + 1, -1, INT64_MAX};
	int32_t i32[2] = {INT32_MIN, 7};
	uint8_t b[2] = {0, 1}, u8[2] = {0, 255};
	const void *data[DT_COUNT] = {[DT_F32] = f32, [DT_F64] = f64, [DT_F16] = f16, [DT_BF16] = bf16,
				      [DT_I64] = i64, [DT_I32] = i32, [DT_BOOL] = b, [DT_U8] = u8};
	int64_t cnt[DT_COUNT] = {[DT_F32] = 6, [DT_F64] = 4, [DT_F16] = 3, [DT_BF16] = 3,
				 [DT_I64] = 3, [DT_I32] = 2, [DT_BOOL] = 2, [DT_U8] = 2};
	for (int dt = 0; dt < DT_COUNT; dt++) {
		Value *c = ir_value(g, V_CONST, NULL, (DType)dt, SH(cnt[dt]), data[dt]);
		ir_add_output(g, ir_op1(g, OP_IDENTITY, c));
	}
	ir_add_output(g, ir_const_scalar(g, DT_F32, -2.5));
}

/* the forward ops on x [N,8]; returns logits [N,4] */
static Value *add_forward(Graph *g, Value *x, Value *w, Value *b, Value *m)
{
	Value *in3[3] = {x, w, b};
	Node *gn = node(g, OP_GEMM, "/fc1/Gemm", 3, in3);
	ir_set_f(g, gn, "alpha", 0.5);
	ir_set_f(g, gn, "beta", 1.0);
	ir_set_i(g, gn, "transB", 1);
	Value *y = fin(g, gn, 0);                                  /* [N,4] */
	Value *mm = ir_op2(g, OP_MATMUL, y, m);
	Value *e = ir_op2(g, OP_DIV, ir_op2(g, OP_MUL, ir_op2(g, OP_SUB, ir_op2(g, OP_ADD, mm, y), y), y), mm);
	Op un[] = {OP_RELU, OP_SIGMOID, OP_TANH, OP_EXP, OP_LOG, OP_SQRT, OP_NEG, OP_IDENTITY};
	for (size_t i = 0; i < sizeof un / sizeof *un; i++)
		e = ir_op1(g, un[i], e);
	Node *lr = node(g, OP_LEAKY_RELU, NULL, 1, &e);
	ir_set_f(g, lr, "alpha", 0.01);
	e = fin(g, lr, 0);
	e = op1a(g, OP_LOG_SOFTMAX, op1a(g, OP_SOFTMAX, e, "axis", 1), "axis", 1);
	Value *r = op_ints(g, OP_RESHAPE, e, "shape", 2, (int64_t[]){-2, 2});   /* [2N,2] */
	r = op1a(g, OP_FLATTEN, op_ints(g, OP_RESHAPE, r, "shape", 3, (int64_t[]){N, 2, 2}), "axis", 1);
	Value *t = op_ints(g, OP_TRANSPOSE, r, "perm", 2, (int64_t[]){1, 0});  /* [4,N] */
	Node *rs = node(g, OP_REDUCE_SUM, NULL, 1, &t);
	ir_set_ints(g, rs, "axes", 1, (int64_t[]){1});
	ir_set_i(g, rs, "keepdims", 0);
	Value *s = fin(g, rs, 0);                                  /* [4] */
	Node *rm = node(g, OP_REDUCE_MEAN, NULL, 1, &s);
	ir_set_ints(g, rm, "axes", 0, NULL);
	ir_set_i(g, rm, "keepdims", 1);
	Value *mean = fin(g, rm, 0);                               /* [1] */
	Value *ex = op_ints(g, OP_EXPAND, mean, "shape", 2, (int64_t[]){N, 4});
	return ir_op2(g, OP_ADD, r, ex);
}

/* the IR-only grads, with string and float-list attributes that no rule reads */
static Value *add_grads(Graph *g, Value *dy, Value *y)
{
	Op bin[] = {OP_RELU_GRAD, OP_LEAKY_RELU_GRAD, OP_SIGMOID_GRAD, OP_TANH_GRAD};
	for (size_t i = 0; i < sizeof bin / sizeof *bin; i++)
		dy = ir_op2(g, bin[i], dy, y);
	Value *in[2] = {dy, y};
	Node *n = node(g, OP_SOFTMAX_GRAD, "odd name \"q\"\n", 2, in);
	ir_set_i(g, n, "axis", 1);
	ir_set_s(g, n, "note", "tab\there \"quoted\" back\\slash");
	ir_set_floats(g, n, "scales", 4, (double[]){0.5, 1e-300, -0.0, INFINITY});
	ir_set_floats(g, n, "none", 0, NULL);
	ir_set_ints(g, n, "empty", 0, NULL);
	ir_set_f(g, n, "whole", 3.0);
	in[0] = fin(g, n, 0);
	n = node(g, OP_LOG_SOFTMAX_GRAD, NULL, 2, in);
	ir_set_i(g, n, "axis", 1);
	return fin(g, n, 0);
}

static void add_updates(Graph *g, Value *w, Value *b, Value *m, Value *gw, Value *gb, Value *gm)
{
	Value *buf = ir_value(g, V_STATE, "fc1.bias.momentum_buffer", DT_F32, b->shape, NULL);
	buf->param = b;
	buf->slot = "momentum_buffer";
	Value *ea = ir_value(g, V_STATE, "m.exp_avg", DT_F32, m->shape, NULL);
	Value *es = ir_value(g, V_STATE, "m.exp_avg_sq", DT_F32, m->shape, NULL);
	ea->param = es->param = m;
	ea->slot = "exp_avg";
	es->slot = "exp_avg_sq";
	Node *n = node(g, OP_SGD_UPDATE, NULL, 2, (Value *[]){w, gw});
	ir_set_f(g, n, "lr", 0.01);
	ir_add_update(g, w, fin(g, n, 0));
	n = node(g, OP_MOMENTUM_UPDATE, NULL, 3, (Value *[]){b, gb, buf});
	ir_set_f(g, n, "momentum", 0.9);
	ir_add_update(g, b, fin(g, n, 0));
	ir_add_update(g, buf, n->out[1]);
	n = node(g, OP_ADAM_UPDATE, NULL, 4, (Value *[]){m, gm, ea, es});
	ir_set_f(g, n, "lr", 1e-3);
	ir_set_f(g, n, "eps", 1e-8);
	fin(g, n, 0);
	for (int k = 0; k < 3; k++)
		ir_add_update(g, (Value *[]){m, ea, es}[k], n->out[k]);
	/* dynamic loss scaling: two step-global states (no parameter) */
	Value *lk = ir_value(g, V_STATE, "dlcc.loss_scale_log2", DT_F32, ir_shape0(), NULL);
	Value *lg = ir_value(g, V_STATE, "dlcc.loss_scale_good", DT_F32, ir_shape0(), NULL);
	lk->slot = "loss_scale_log2";
	lg->slot = "loss_scale_good";
	n = node(g, OP_LOSS_SCALE, NULL, 1, &lk);
	ir_set_f(g, n, "alpha", 65536);
	fin(g, n, 0);
	n = node(g, OP_ALL_FINITE, NULL, 2, (Value *[]){gw, gb});
	Value *finite = fin(g, n, 0);
	n = node(g, OP_LOSS_SCALE_UPDATE, NULL, 3, (Value *[]){lk, lg, finite});
	ir_set_i(g, n, "window", 2000);
	ir_add_update(g, lk, fin(g, n, 0));
	ir_add_update(g, lg, n->out[1]);
}

/* the data-path plumbing ops (ops.def "transformer plumbing" block) on x [N,8] */
static void add_plumbing(Graph *g, Value *x)
{
	int64_t idx[3] = {0, 7, -1}, one = 1, two = 2, six = 6;
	Value *ix = ir_value(g, V_CONST, NULL, DT_I64, SH(3), idx);
	Node *n = node(g, OP_GATHER, NULL, 2, (Value *[]){x, ix});
	ir_set_i(g, n, "axis", 1);
	Value *ga = fin(g, n, 0); /* [N,3] */
	n = node(g, OP_GATHER_GRAD, NULL, 2, (Value *[]){ga, ix});
	ir_set_i(g, n, "axis", 1);
	ir_set_ints(g, n, "shape", 2, (int64_t[]){-1, 8});
	ir_add_output(g, fin(g, n, 0));
	n = node(g, OP_SLICE, NULL, 1, &x);
	ir_set_ints(g, n, "axes", 1, &one);
	ir_set_ints(g, n, "starts", 1, &six);
	ir_set_ints(g, n, "ends", 1, (int64_t[]){-1});
	ir_set_ints(g, n, "steps", 1, (int64_t[]){-2});
	Value *sl = fin(g, n, 0); /* [N,4] */
	n = node(g, OP_SLICE_GRAD, NULL, 1, &sl);
	ir_set_ints(g, n, "axes", 1, &one);
	ir_set_ints(g, n, "starts", 1, &six);
	ir_set_ints(g, n, "ends", 1, (int64_t[]){-1});
	ir_set_ints(g, n, "steps", 1, (int64_t[]){-2});
	ir_set_ints(g, n, "shape", 2, (int64_t[]){-1, 8});
	ir_add_output(g, fin(g, n, 0));
	n = node(g, OP_CONCAT, NULL, 2, (Value *[]){ga, sl});
	ir_set_i(g, n, "axis", 1);
	ir_add_output(g, fin(g, n, 0));
	Value *tr = op1a(g, OP_TRILU, ir_op2(g, OP_MAX, x, ir_op2(g, OP_MIN, x, x)), "k", two);
	Value *c = ir_op2(g, OP_EQUAL, tr, x), *l = ir_op2(g, OP_LESS, tr, x), *gt = ir_op2(g, OP_GREATER, tr, x);
	Value *le = ir_op2(g, OP_LESS_OR_EQUAL, tr, x), *ge = ir_op2(g, OP_GREATER_OR_EQUAL, tr, x);
	Value *b = ir_op2(g, OP_OR, ir_op2(g, OP_AND, c, l), ir_op1(g, OP_NOT, ir_op2(g, OP_AND, gt, ir_op2(g, OP_OR, le, ge))));
	Value *w = ir_op(g, OP_WHERE, 3, (Value *[]){b, ir_op2(g, OP_POW, x, tr), ir_op1(g, OP_RECIPROCAL, x)});
	n = node(g, OP_CAST, NULL, 1, &w);
	ir_set_s(g, n, "to", "i32");
	ir_add_output(g, fin(g, n, 0));
	Value *mask = ir_op1(g, OP_RELU_MASK, ir_op1(g, OP_RELU, x)); /* u8 [N,16] */
	ir_add_output(g, ir_op2(g, OP_RELU_MASK_GRAD, x, mask));
}

/* elementwise math and the element-indexing block on x [N,8] */
static void add_index_block(Graph *g, Value *x)
{
	static const Op un[] = {OP_COS, OP_SIN, OP_ABS, OP_SIGN, OP_CEIL, OP_FLOOR, OP_ROUND};
	Value *y = x;
	for (size_t i = 0; i < sizeof un / sizeof *un; i++)
		y = ir_op1(g, un[i], y);
	Value *b = ir_op2(g, OP_LESS, x, y);
	ir_add_output(g, ir_op2(g, OP_XOR, b, ir_op1(g, OP_NOT, b)));
	int64_t idx[6] = {7, 0, -1, 2, 2, 5};
	Value *ix = ir_value(g, V_CONST, NULL, DT_I64, SH(1, 6), idx);
	Value *tab = ir_value(g, V_INPUT, "tab", DT_F32, SH(3, 8), NULL);
	Value *row = op1a(g, OP_CUM_SUM, tab, "axis", 0);
	Node *n = node(g, OP_GATHER_ELEMENTS, NULL, 2, (Value *[]){tab, ix});
	ir_set_i(g, n, "axis", 1);
	Value *ge = fin(g, n, 0); /* [1,6] */
	n = node(g, OP_SCATTER_ELEMENTS, NULL, 3, (Value *[]){row, ix, ge});
	ir_set_i(g, n, "axis", 1);
	ir_set_s(g, n, "reduction", "add");
	ir_add_output(g, fin(g, n, 0));
	n = node(g, OP_CUM_SUM, NULL, 1, &y);
	ir_set_i(g, n, "axis", 1);
	ir_set_i(g, n, "exclusive", 1);
	ir_set_i(g, n, "reverse", 1);
	ir_add_output(g, fin(g, n, 0));
}

/* the reduction, dropout and loss block: ReduceMax/Min/Prod, ArgMax, Dropout, NllLoss(Grad) */
static void add_reduce_block(Graph *g, Value *x, Value *lab)
{
	static const Op red[] = {OP_REDUCE_MAX, OP_REDUCE_MIN, OP_REDUCE_PROD};
	for (int i = 0; i < 3; i++) {
		Node *n = node(g, red[i], NULL, 1, &x);
		ir_set_ints(g, n, "axes", 1, (int64_t[]){1});
		ir_set_i(g, n, "keepdims", i);
		ir_add_output(g, fin(g, n, 0));
	}
	Node *n = node(g, OP_ARG_MAX, NULL, 1, &x);
	ir_set_i(g, n, "axis", 1);
	ir_set_i(g, n, "select_last_index", 1);
	ir_add_output(g, fin(g, n, 0));
	n = node(g, OP_DROPOUT, NULL, 1, &x);
	ir_set_f(g, n, "ratio", 0.25);
	ir_set_i(g, n, "seed", 1234567);
	Value *d = fin(g, n, 0);
	ir_add_output(g, n->out[1]);
	n = node(g, OP_NLL_LOSS, NULL, 2, (Value *[]){d, lab});
	ir_set_s(g, n, "reduction", "sum");
	ir_set_i(g, n, "ignore_index", -1);
	Value *l = fin(g, n, 0), *ws = n->out[1];
	n = node(g, OP_NLL_LOSS_GRAD, NULL, 4, (Value *[]){l, d, lab, ws});
	ir_set_s(g, n, "reduction", "sum");
	ir_set_i(g, n, "ignore_index", -1);
	ir_add_output(g, fin(g, n, 0));
}

/* normalization and activations: every op of that group once, a buffer, attributes */
static Value *add_normact(Graph *g, Value *z)
{
	static const Op un[] = {OP_ERF, OP_GELU, OP_GELU_TANH, OP_HARD_SWISH, OP_SOFTPLUS, OP_ELU, OP_SELU};
	static const Op bin[] = {OP_CLIP_GRAD, OP_ERF_GRAD, OP_GELU_GRAD, OP_GELU_TANH_GRAD, OP_HARD_SIGMOID_GRAD,
				 OP_HARD_SWISH_GRAD, OP_SOFTPLUS_GRAD, OP_ELU_GRAD, OP_SELU_GRAD, OP_PRELU};
	float one[4] = {1, 1, 1, 1}, zero[4] = {0, 0.5f, 0, 0};
	Value *sc = ir_value(g, V_PARAM, "bn.weight", DT_F32, SH(4), one);
	Value *mu = ir_value(g, V_PARAM, "bn.running_mean", DT_F32, SH(4), zero);
	Value *var = ir_value(g, V_PARAM, "bn.running_var", DT_F32, SH(4), one);
	mu->buffer = var->buffer = 1;
	Node *n = node(g, OP_BATCH_NORM, NULL, 5, (Value *[]){z, sc, sc, mu, var});
	ir_set_f(g, n, "epsilon", 1e-5);
	Value *y = fin(g, n, 0);
	n = node(g, OP_CLIP, NULL, 1, &y);
	ir_set_f(g, n, "lo", -1.0);
	ir_set_f(g, n, "hi", 6.0);
	y = fin(g, n, 0);
	n = node(g, OP_HARD_SIGMOID, NULL, 1, &y);
	ir_set_f(g, n, "alpha", 0.25);
	y = fin(g, n, 0);
	n = node(g, OP_POW_SCALAR, NULL, 1, &y);
	ir_set_f(g, n, "alpha", 2.0);
	y = fin(g, n, 0);
	for (size_t i = 0; i < sizeof un / sizeof *un; i++)
		y = ir_op1(g, un[i], y);
	for (size_t i = 0; i < sizeof bin / sizeof *bin; i++)
		y = ir_op2(g, bin[i], y, z);
	return y;
}

/* the convolution family (conv group): every op with its window attributes, on inputs */
static void conv_win(Graph *g, Node *n)
{
	ir_set_ints(g, n, "kernel_shape", 2, (int64_t[]){3, 3});
	ir_set_ints(g, n, "strides", 2, (int64_t[]){2, 2});
	ir_set_ints(g, n, "dilations", 2, (int64_t[]){1, 1});
	ir_set_ints(g, n, "pads", 4, (int64_t[]){1, 1, 1, 1});
	ir_set_i(g, n, "group", 1);
}

static void add_conv_family(Graph *g)
{
	Value *x = ir_value(g, V_INPUT, "img", DT_F32, SH(N, 2, 5, 5), NULL);
	Value *w = ir_value(g, V_INPUT, "filt", DT_F32, SH(2, 2, 3, 3), NULL);
	Node *n = node(g, OP_CONV, NULL, 2, (Value *[]){x, w});
	conv_win(g, n);
	Value *y = fin(g, n, 0); /* [N,2,3,3] */
	n = node(g, OP_CONV_GRAD_INPUT, NULL, 2, (Value *[]){y, w});
	conv_win(g, n);
	ir_set_ints(g, n, "shape", 4, (int64_t[]){N, 2, 5, 5});
	ir_add_output(g, fin(g, n, 0));
	n = node(g, OP_CONV_GRAD_WEIGHT, NULL, 2, (Value *[]){y, x});
	conv_win(g, n);
	ir_set_ints(g, n, "shape", 4, (int64_t[]){2, 2, 3, 3});
	ir_add_output(g, fin(g, n, 0));
	Node *mp = node(g, OP_MAX_POOL, NULL, 1, &x);
	conv_win(g, mp);
	ir_set_i(g, mp, "ceil_mode", 1);
	Value *m = fin(g, mp, 0);
	n = node(g, OP_MAX_POOL_GRAD, NULL, 2, (Value *[]){m, mp->out[1]});
	conv_win(g, n);
	ir_set_ints(g, n, "shape", 4, (int64_t[]){N, 2, 5, 5});
	ir_add_output(g, fin(g, n, 0));
	n = node(g, OP_AVERAGE_POOL, NULL, 1, &x);
	conv_win(g, n);
	ir_set_i(g, n, "count_include_pad", 1);
	Value *a = fin(g, n, 0);
	n = node(g, OP_AVERAGE_POOL_GRAD, NULL, 1, &a);
	conv_win(g, n);
	ir_set_ints(g, n, "shape", 4, (int64_t[]){N, 2, 5, 5});
	ir_add_output(g, fin(g, n, 0));
	n = node(g, OP_PAD, NULL, 1, &x);
	ir_set_ints(g, n, "pads", 8, (int64_t[]){0, 0, 1, 2, 0, 0, 2, -1});
	ir_set_s(g, n, "mode", "reflect");
	Value *p = fin(g, n, 0);
	n = node(g, OP_PAD_GRAD, NULL, 1, &p);
	ir_set_ints(g, n, "pads", 8, (int64_t[]){0, 0, 1, 2, 0, 0, 2, -1});
	ir_set_s(g, n, "mode", "reflect");
	ir_add_output(g, fin(g, n, 0));
	n = node(g, OP_IM2COL, NULL, 1, &x);
	conv_win(g, n);
	Value *cols = fin(g, n, 0); /* [N,1,18,9] */
	n = node(g, OP_COL2IM, NULL, 1, &cols);
	conv_win(g, n);
	ir_set_ints(g, n, "shape", 4, (int64_t[]){N, 2, 5, 5});
	ir_add_output(g, fin(g, n, 0));
	n = node(g, OP_IM2COL, NULL, 1, &x);
	conv_win(g, n);
	ir_set_s(g, n, "layout", "pixel");
	ir_add_output(g, fin(g, n, 0)); /* [1,9N,18] */
}

static Graph *build_everything(void)
{
	Graph *g = ir_graph_new("every thing");
	Value *x = ir_value(g, V_INPUT, "x", DT_F32, SH(N, 8), NULL);
	Value *lab = ir_value(g, V_LABEL, "label", DT_I64, SH(N), NULL);
	float wd[32] = {0}, bd[4] = {0}, md[16] = {0};
	Value *w = ir_value(g, V_PARAM, "onnx::Gemm_5", DT_F32, SH(4, 8), wd);
	Value *b = ir_value(g, V_PARAM, "fc1.bias", DT_F32, SH(4), bd);
	Value *m = ir_value(g, V_PARAM, "77", DT_F32, SH(4, 4), md); /* numeric name, not its id */
	Value *z = add_forward(g, x, w, b, m);
	ir_add_output(g, z);
	add_plumbing(g, x);
	add_index_block(g, x);
	add_reduce_block(g, x, lab);
	ir_add_output(g, add_normact(g, z));
	Value *loss = ir_op2(g, OP_SOFTMAX_CROSS_ENTROPY, z, lab);
	Value *one = ir_const_scalar(g, DT_F32, 1.0);
	Value *dz = ir_op(g, OP_SOFTMAX_CROSS_ENTROPY_GRAD, 3, (Value *[]){one, z, lab});
	dz = add_grads(g, dz, z);
	Value *gw = ir_op2(g, OP_MATMUL, op_ints(g, OP_TRANSPOSE, dz, "perm", 2, (int64_t[]){1, 0}), x);
	Node *rs = node(g, OP_REDUCE_SUM, NULL, 1, &dz);
	ir_set_ints(g, rs, "axes", 1, (int64_t[]){0});
	ir_set_i(g, rs, "keepdims", 0);
	Value *gb = fin(g, rs, 0);
	Value *gm = ir_op2(g, OP_MATMUL, op_ints(g, OP_TRANSPOSE, dz, "perm", 2, (int64_t[]){1, 0}), dz);
	add_updates(g, w, b, m, gw, gb, gm);
	g->loss = loss;
	g->loss_kind = "cross_entropy";
	g->optimizer = "adam";
	add_dtypes(g);
	add_conv_family(g);
	return g;
}

static Value *find(const Graph *g, const char *name)
{
	for (int i = 0; i < g->nvalues; i++)
		if (g->values[i]->name && strcmp(g->values[i]->name, name) == 0 && g->values[i]->kind != V_TEMP)
			return g->values[i];
	for (int i = 0; i < g->nvalues; i++)
		if (g->values[i]->name && strcmp(g->values[i]->name, name) == 0 && g->values[i]->def)
			return g->values[i];
	return NULL;
}

/* the value of kind k named name (names may repeat across kinds: param "77" and const %77) */
static Value *find_kind(const Graph *g, const char *name, ValueKind k)
{
	for (int i = 0; i < g->nvalues; i++)
		if (g->values[i]->name && strcmp(g->values[i]->name, name) == 0 && g->values[i]->kind == k)
			return g->values[i];
	return NULL;
}

static Graph *parse_ok(const char *text)
{
	char err[1024];
	Graph *g = ir_parse(text, "t.dlir", err, sizeof err);
	cr_assert(g, "parse failed: %s\n--- text:\n%s", err, text);
	return g;
}

Test(text, every_op_covered)
{
	Graph *g = build_everything();
	char *seen = calloc(OP_COUNT, 1);
	for (int i = 0; i < g->nnodes; i++)
		seen[g->nodes[i]->op] = 1;
	for (int op = 0; op < OP_COUNT; op++)
		cr_expect(seen[op], "op %s is not in the round-trip graph", ir_ops[op].name);
	cr_assert_eq(ir_verify(g), 0, "%s", g->err);
	free(seen);
	ir_graph_free(g);
}

Test(text, round_trip)
{
	Graph *g = build_everything();
	char *t1 = print_str(g);
	Graph *g2 = parse_ok(t1);
	cr_assert_eq(ir_verify(g2), 0, "%s", g2->err);
	char *t2 = print_str(g2);
	cr_assert_str_eq(t2, t1);
	cr_assert_eq(g2->nupdates, g->nupdates);
	cr_assert_eq(g2->nparams, 6);
	cr_assert(find_kind(g2, "bn.running_var", V_PARAM)->buffer, "a buffer reads back as one");
	cr_assert_eq(g2->nstates, 5);
	cr_assert(!g2->states[3]->param && !strcmp(g2->states[3]->slot, "loss_scale_log2"), "a step-global state");
	cr_assert_str_eq(g2->states[1]->param->name, "77");
	cr_assert_str_eq(g2->states[1]->slot, "exp_avg");
	cr_assert_str_eq(g2->name, "every thing");
	cr_assert_str_eq(g2->nodes[0]->name, "/fc1/Gemm");
	int odd = 0;
	for (int i = 0; i < g2->nnodes; i++)
		odd |= g2->nodes[i]->op == OP_SOFTMAX_GRAD && !strcmp(g2->nodes[i]->name, "odd name \"q\"\n");
	cr_assert(odd, "the quoted node name came back");
	cr_assert(strstr(t1, "param %\"77\": f32[4,4]\n"), "%s", t1);
	free(t1);
	free(t2);
	ir_graph_free(g2);
	ir_graph_free(g);
}

Test(text, constants_bit_exact_and_ids_kept)
{
	Graph *g = build_everything();
	char *t1 = print_str(g);
	Graph *g2 = parse_ok(t1);
	int consts = 0;
	for (int i = 0; i < g->nvalues; i++) {
		const Value *v = g->values[i];
		if (v->kind != V_CONST)
			continue;
		const Value *u = find_kind(g2, v->name, V_CONST);
		cr_assert(u, "constant %s lost", v->name);
		cr_assert_eq(u->id, v->id, "constant %s: id %d, was %d", v->name, u->id, v->id);
		cr_assert_eq(u->dt, v->dt);
		size_t bytes = ir_numel(&v->shape) * ir_dt_size(v->dt);
		cr_assert_eq(memcmp(u->data, v->data, bytes), 0, "constant %s changed", v->name);
		consts++;
	}
	cr_assert_eq(consts, DT_COUNT + 4); /* + the indices of add_plumbing and add_index_block */
	for (int i = 0; i < g->nnodes; i++)
		for (int k = 0; k < g->nodes[i]->nout; k++) {
			const Value *v = g->nodes[i]->out[k], *u = g2->nodes[i]->out[k];
			cr_assert_str_eq(u->name, v->name);
			cr_assert_eq(u->id, v->id, "%%%s: id %d, was %d", v->name, u->id, v->id);
		}
	cr_assert_eq(find(g2, "77")->kind, V_PARAM);
	free(t1);
	ir_graph_free(g2);
	ir_graph_free(g);
}

Test(text, new_values_after_parse_do_not_collide)
{
	Graph *g = parse_ok("graph g {\n input %x: f32[N,4]\n %9: f32[N,4] = Relu(%x)\n output %9\n}\n");
	cr_assert_eq(g->nvalues, 10);
	Value *y = ir_op1(g, OP_NEG, g->outputs[0]);
	cr_assert_str_eq(y->name, "10");
	cr_assert_eq(ir_verify(g), 0, "%s", g->err);
	ir_graph_free(g);
}

Test(text, params_get_deterministic_small_data)
{
	const char *src = "graph g {\n param %w: f32[3,5]\n param %v: f32[2] = [0.25, -1]\n output %w\n output %v\n}";
	Graph *a = parse_ok(src), *b = parse_ok(src);
	const float *wa = a->params[0]->data, *wb = b->params[0]->data, *v = a->params[1]->data;
	int differ = 0;
	for (int k = 0; k < 15; k++) {
		cr_assert_eq(wa[k], wb[k]);
		cr_assert(wa[k] >= -0.1f && wa[k] < 0.1f);
		differ |= wa[k] != wa[0];
	}
	cr_assert(differ);
	cr_assert(v[0] == 0.25f && v[1] == -1.0f);
	ir_graph_free(a);
	ir_graph_free(b);
}

/* ---- parse errors: first line exactly, then the source line and the caret ---- */

static void expect_error(const char *src, const char *first, const char *line, const char *caret)
{
	char err[1024], want[1024];
	Graph *g = ir_parse(src, "t.dlir", err, sizeof err);
	cr_assert_null(g, "parsed but should fail with: %s", first);
	snprintf(want, sizeof want, "%s\n%s\n%s", first, line, caret);
	cr_assert_str_eq(err, want);
}

Test(text_errors, unknown_op)
{
	expect_error("graph g {\n  input %x: f32[N,4]\n  %1: f32[N,4] = Frob(%x)\n}\n",
		     "t.dlir:3:18: unknown op 'Frob'", "  %1: f32[N,4] = Frob(%x)", "                 ^");
}

Test(text_errors, unknown_value)
{
	expect_error("graph g {\n  input %x: f32[N,4]\n  %1: f32[N,4] = Add(%x, %y)\n}\n",
		     "t.dlir:3:26: unknown value %y", "  %1: f32[N,4] = Add(%x, %y)",
		     "                         ^");
}

Test(text_errors, bad_dim)
{
	expect_error("graph g {\n  input %x: f32[N,M]\n}\n",
		     "t.dlir:2:19: bad dimension: expected a number, N or kN (like 2N)",
		     "  input %x: f32[N,M]", "                  ^");
	expect_error("graph g {\n  input %x: f32[0N]\n}\n", "t.dlir:2:17: bad dimension: 0N",
		     "  input %x: f32[0N]", "                ^");
}

Test(text_errors, type_mismatch)
{
	expect_error("graph g {\n  input %x: f32[N,4]\n  param %w: f32[3,4]\n"
		     "  %2: f32[N,4] = Gemm(%x, %w) {transB = 1}\n}\n",
		     "t.dlir:4:7: %2 is written f32[N,4] but Gemm gives f32[N,3]",
		     "  %2: f32[N,4] = Gemm(%x, %w) {transB = 1}", "      ^");
}

Test(text_errors, missing_brace)
{
	expect_error("graph g {\n  input %x: f32[N,4]\n  output %x\n",
		     "t.dlir:4:1: missing '}' at the end of the graph", "", "^");
}

Test(text_errors, shape_rule_and_arity)
{
	expect_error("graph g {\n  input %x: f32[N,4]\n  %1: f32[N,4] = Relu(%x, %x)\n}",
		     "t.dlir:3:18: Relu takes 1 input, not 2", "  %1: f32[N,4] = Relu(%x, %x)",
		     "                 ^");
	expect_error("graph g {\n  input %x: f32[N,4]\n  input %y: f32[3]\n  %1: f32[N,4] = Add(%x, %y)\n}",
		     "t.dlir:4:18: node 'Add_0' (Add): shapes do not broadcast: [N,4] and [3]",
		     "  %1: f32[N,4] = Add(%x, %y)", "                 ^");
}

Test(text_errors, redefinition_and_data_count)
{
	expect_error("graph g {\n  input %x: f32[4]\n  input %x: f32[4]\n}",
		     "t.dlir:3:9: value %x is defined twice", "  input %x: f32[4]", "        ^");
	expect_error("graph g {\n  const %c: i64[3] = [1, 2]\n}",
		     "t.dlir:2:22: 2 values for a type that holds 3", "  const %c: i64[3] = [1, 2]",
		     "                     ^");
}

/* ---- verifier ---- */

static Graph *small(void)
{
	return parse_ok("graph g {\n input %x: f32[N,4]\n param %w: f32[4]\n"
			" %2: f32[N,4] = Mul(%x, %w)\n %3: f32[N,4] = Relu(%2)\n"
			" %4: f32[4] = Relu(%w)\n %5: f32[] = ReduceSum(%3) {axes = [], keepdims = 0}\n"
			" update %w <- %4\n loss %5\n output %3\n}");
}

static void expect_verify(Graph *g, const char *needle)
{
	cr_assert_eq(ir_verify(g), -1, "verify passed, expected: %s", needle);
	cr_assert(strstr(g->err, needle), "got '%s', expected '%s'", g->err, needle);
	cr_assert(!strchr(g->err, '\n'));
	ir_graph_free(g);
}

Test(text_verify, accepts_and_rejects)
{
	Graph *g = small();
	cr_assert_eq(ir_verify(g), 0, "%s", g->err);
	ir_graph_free(g);

	g = small(); /* use before definition */
	Node *t = g->nodes[0];
	g->nodes[0] = g->nodes[1];
	g->nodes[1] = t;
	expect_verify(g, "node 'Relu_1' (Relu): uses a value not defined before it: %2");

	g = small(); /* a stale output shape */
	g->nodes[1]->out[0]->shape = SH(N, 5);
	expect_verify(g, "node 'Relu_1' (Relu): output %3 is f32[N,5] but the shape rule gives f32[N,4]");

	g = small(); /* a broken id */
	g->values[2]->id = 7;
	expect_verify(g, "value slot 2 holds id 7");

	g = small(); /* arity */
	g->nodes[0]->nin = 1;
	expect_verify(g, "node 'Mul_0' (Mul): wrong number of inputs");

	g = small(); /* update type */
	g->updates[0].value = g->nodes[1]->out[0];
	expect_verify(g, "update of %w (f32[4]) with %3 (f32[N,4])");

	g = small(); /* loss not scalar */
	g->loss = g->nodes[1]->out[0];
	expect_verify(g, "the loss %3 is not a float scalar");

	g = small(); /* dead producer */
	char keep[4] = {1, 0, 1, 1};
	ir_remove_nodes(g, keep);
	expect_verify(g, "uses a value not defined before it: %3");
}

/* ---- fold + dce preserve meaning ---- */

static void run_graph(const Graph *g, const float *x, float *out)
{
	char err[256];
	Interp *it = interp_new(g, DT_F64, 3, err, sizeof err);
	cr_assert(it, "%s", err);
	cr_assert_eq(interp_set(it, g->inputs[0], x, DT_F32), 0);
	cr_assert_eq(interp_run(it, 1), 0, "%s", interp_error(it));
	cr_assert_eq(interp_get_f32(it, g->outputs[0], out), 0);
	interp_free(it);
}

Test(text_passes, fold_dce_preserve_results)
{
	const char *src =
		"graph g {\n input %x: f32[N,4]\n param %w: f32[4,4]\n"
		" const %a: f32[4] = [1, 2, 3, 4]\n const %b: f32[] = 0.5\n"
		" %5: f32[4] = Mul(%a, %b)\n %6: f32[4] = Exp(%5)\n %7: f32[1,4] = Reshape(%6) {shape = [1, 4]}\n"
		" %8: f32[N,4] = MatMul(%x, %w)\n %9: f32[N,4] = Add(%8, %7)\n %10: f32[N,4] = Tanh(%8)\n"
		" output %9\n}";
	Graph *g = parse_ok(src);
	float x[12], before[12], after[12];
	for (int k = 0; k < 12; k++)
		x[k] = (float)((k * 37 % 11) - 5) / 7.0f;
	run_graph(g, x, before);
	cr_assert_eq(pass_fold_constants(g), 0, "%s", g->err);
	cr_assert_eq(g->nnodes, 3, "Mul, Exp, Reshape folded");
	cr_assert_eq(pass_dce(g), 0);
	cr_assert_eq(g->nnodes, 2, "the Tanh is dead");
	cr_assert_eq(ir_verify(g), 0, "%s", g->err);
	run_graph(g, x, after);
	for (int k = 0; k < 12; k++)
		cr_assert_float_eq(after[k], before[k], 1e-6, "element %d", k);
	Value *c = find(g, "7");
	cr_assert_eq(c->kind, V_CONST);
	cr_assert_float_eq(((float *)c->data)[3], expf(2.0f), 1e-5);
	ir_graph_free(g);
}

Test(text_passes, run_named_and_pipeline)
{
	Graph *g = small();
	cr_assert_eq(pass_run_named(g, "nope"), -1);
	cr_assert(strstr(g->err, "unknown pass 'nope' (known: fold, dce, cse, simplify, verify, mark-params, train, fuse, "
			     "mixed-fp16, mixed-bf16, im2col, im2col-all, batch-merge)"), "%s",
		  g->err);
	const char *const *names = pass_names();
	int n = 0;
	while (names[n])
		n++;
	cr_assert_eq(n, 13);
	ir_graph_free(g);

	g = parse_ok("graph g {\n input %x: f32[N,4]\n param %w: f32[4,3]\n const %c: f32[] = 2\n"
		     " %3: f32[] = Mul(%c, %c)\n %4: f32[N,3] = MatMul(%x, %w)\n %5: f32[N,3] = Mul(%4, %3)\n"
		     " %6: f32[N,3] = Relu(%4)\n output %5\n}");
	TrainOpts o;
	train_opts_default(&o, "sgd");
	Graph *inf = NULL, *tr = NULL;
	char *dump = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&dump, &len);
	cr_assert_eq(pass_pipeline(g, &o, 1, &inf, &tr, "fold,train", f), 0, "%s", g->err);
	fclose(f);
	cr_assert(strstr(dump, "# IR after fold\ngraph g {"), "%s", dump);
	cr_assert(strstr(dump, "# IR after train\n"), "%s", dump);
	cr_assert(!strstr(dump, "# IR after dce"), "%s", dump);
	cr_assert_eq(inf->nnodes, 2, "MatMul and Mul remain");
	cr_assert(tr->loss && tr->nupdates == 1);
	cr_assert_eq(ir_verify(tr), 0, "%s", tr->err);
	ir_graph_free(inf);
	ir_graph_free(tr);
	free(dump);

	Graph *bad = NULL;
	cr_assert_eq(pass_pipeline(g, &o, 0, &inf, &bad, "fold,frob", stderr), -1);
	cr_assert(strstr(g->err, "--dump-ir: unknown pass 'frob'"), "%s", g->err);
	ir_graph_free(g);
}
