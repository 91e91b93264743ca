/*
 * test_onnx.c — the ONNX frontend on hand-built files (tests/fixtures/onnx_unit, made by
 * tools/fixtures/make_onnx_unit.py) and on real exporter output.
 *
 * Structure: the ops and attribute normal form of each imported node, value shapes with the
 * symbolic batch, initializer encodings (raw, typed, external), dynamic-batch shape subgraphs
 * folded into Reshapes, opset-11 Softmax on a non-last axis, and one exact message per error.
 * Meaning: the torch-exported models of tests/fixtures/models are run through the reference
 * interpreter and compared with PyTorch's outputs stored beside them.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx.h"
#include "ir/interp.h"
#include "npy.h"

#define UNIT TESTS_DIR "/fixtures/onnx_unit/"
#define DIMS(...) ((int64_t[]){__VA_ARGS__})
#define SHAPE(...) ir_shape(sizeof DIMS(__VA_ARGS__) / sizeof(int64_t), DIMS(__VA_ARGS__))

static Graph *load(const char *path)
{
	char err[512] = "";
	Graph *g = onnx_load(path, 0, err, sizeof err);
	cr_assert(g, "%s", err);
	return g;
}

/* the error line for a file that must fail */
static const char *load_err(const char *path)
{
	static char err[1024];
	err[0] = 0;
	Graph *g = onnx_load(path, 0, err, sizeof err);
	cr_assert_null(g, "%s loaded but should fail", path);
	cr_assert(err[0], "no message for %s", path);
	cr_assert_null(strchr(err, '\n'), "message is not one line: %s", err);
	return err;
}

static void expect_err(const char *path, const char *want)
{
	const char *err = load_err(path);
	cr_expect(strstr(err, want), "message for %s\n got: %s\nwant: ...%s...", path, err, want);
}

static Node *node_named(Graph *g, const char *name)
{
	for (int i = 0; i < g->nnodes; i++)
		if (strcmp(g->nodes[i]->name, name) == 0)
			return g->nodes[i];
	cr_assert_fail("no node '%s'", name);
	return NULL;
}

static Value *output_named(Graph *g, const char *name)
{
	for (int i = 0; i < g->noutputs; i++)
		if (strcmp(g->outputs[i]->name, name) == 0)
			return g->outputs[i];
	cr_assert_fail("no output '%s'", name);
	return NULL;
}

static void expect_shape(const Value *v, Shape want)
{
	char a[64], b[64];
	cr_expect(ir_shape_eq(&v->shape, &want), "value '%s': shape %s, want %s", v->name,
		  ir_shape_str(&v->shape, a, sizeof a), ir_shape_str(&want, b, sizeof b));
}

static void expect_ints(const Node *n, const char *attr, int cnt, const int64_t *want)
{
	int got;
	const int64_t *v = ir_attr_ints(n, attr, &got);
	cr_assert(v, "node '%s' has no ints attribute %s", n->name, attr);
	cr_assert_eq(got, cnt, "node '%s' %s: %d entries, want %d", n->name, attr, got, cnt);
	for (int i = 0; i < cnt; i++)
		cr_expect_eq(v[i], want[i], "node '%s' %s[%d] = %lld, want %lld", n->name, attr, i,
			     (long long)v[i], (long long)want[i]);
}

/* an initializer listed as a graph output is that output itself */
static Value *output_source(Graph *g, const char *name)
{
	Value *o = output_named(g, name);
	cr_assert(o->kind != V_TEMP, "output '%s' is a node output", name);
	return o;
}

/* ---- structure ---- */

Test(onnx, basic_ops_and_attributes)
{
	Graph *g = load(UNIT "basic.onnx");
	cr_assert_eq(g->ninputs, 1, "the initializer listed as input must not be an input");
	cr_expect_str_eq(g->inputs[0]->name, "x");
	expect_shape(g->inputs[0], SHAPE(-1, 4));
	cr_expect_eq(g->nparams, 3);
	static const Op want[] = {OP_GEMM, OP_RELU, OP_LEAKY_RELU, OP_SIGMOID, OP_TANH, OP_EXP, OP_LOG,
				  OP_SQRT, OP_NEG, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_IDENTITY,
				  OP_MATMUL, OP_GEMM, OP_SOFTMAX, OP_LOG_SOFTMAX};
	cr_assert_eq(g->nnodes, (int)(sizeof want / sizeof *want), "%d nodes", g->nnodes);
	for (int i = 0; i < g->nnodes; i++)
		cr_expect_eq(g->nodes[i]->op, want[i], "node %d is %s", i, ir_ops[g->nodes[i]->op].name);
	Node *gm = node_named(g, "gemm");
	cr_expect_eq(ir_attr_f(gm, "alpha", 0), 0.5);
	cr_expect_eq(ir_attr_f(gm, "beta", 0), 2.0);
	cr_expect_eq(ir_attr_i(gm, "transA", -1), 0);
	cr_expect_eq(ir_attr_i(gm, "transB", -1), 1);
	cr_expect_eq(gm->in[1]->kind, V_PARAM);
	cr_expect_str_eq(gm->in[1]->name, "w");
	expect_shape(gm->out[0], SHAPE(-1, 3));
	cr_expect_eq(node_named(g, "gemm_noc")->nin, 2);
	cr_expect_eq(ir_attr_i(node_named(g, "gemm_noc"), "transB", -1), 0);
	cr_expect_float_eq(ir_attr_f(node_named(g, "lrelu"), "alpha", 0), 0.2, 1e-7);
	Node *add = node_named(g, "add");
	cr_expect_eq(add->in[1]->kind, V_CONST);
	cr_expect_eq(*(float *)add->in[1]->data, 2.0f);
	cr_expect_eq(ir_attr_i(node_named(g, "softmax"), "axis", -9), 1);
	cr_expect_eq(ir_attr_i(node_named(g, "logsoftmax"), "axis", -9), 0);
	cr_assert_eq(g->noutputs, 3);
	cr_expect_str_eq(g->outputs[0]->name, "sm");
	cr_expect_str_eq(g->outputs[2]->name, "g2");
	expect_shape(g->outputs[0], SHAPE(-1, 5));
	cr_expect_eq(ir_verify(g), 0, "%s", g->err);
	ir_graph_free(g);
}

Test(onnx, fixed_first_dim_stays_fixed)
{
	Graph *g = load(UNIT "fixed_batch.onnx");
	expect_shape(g->inputs[0], SHAPE(5, 7));
	expect_shape(g->outputs[0], SHAPE(5, 7));
	ir_graph_free(g);
}

Test(onnx, initializer_encodings)
{
	Graph *g = load(UNIT "encodings.onnx");
	Value *v = output_source(g, "raw_f32");
	cr_expect_eq(v->kind, V_PARAM);
	expect_shape(v, SHAPE(2, 2));
	cr_expect_eq(((float *)v->data)[2], 3.25f);
	v = output_source(g, "typed_f32");
	cr_expect_eq(v->kind, V_PARAM);
	cr_expect_eq(((float *)v->data)[2], 2.5f);
	v = output_source(g, "typed_f64");
	cr_expect_eq(v->dt, DT_F64);
	cr_expect_eq(((double *)v->data)[1], -7.0);
	v = output_source(g, "typed_i64");
	cr_expect_eq(v->kind, V_CONST);
	cr_expect_eq(((int64_t *)v->data)[2], (int64_t)1 << 40);
	v = output_source(g, "typed_i32");
	cr_expect_eq(v->dt, DT_I32);
	cr_expect_eq(((int32_t *)v->data)[0], -3);
	v = output_source(g, "typed_f16");
	cr_expect_eq(v->dt, DT_F16);
	cr_expect_eq(((uint16_t *)v->data)[0], 0x3C00); /* 1.0 */
	cr_expect_eq(((uint16_t *)v->data)[1], 0xC100); /* -2.5 */
	v = output_source(g, "typed_bf16");
	cr_expect_eq(v->dt, DT_BF16);
	cr_expect_eq(((uint16_t *)v->data)[1], 0xC000);
	v = output_source(g, "typed_bool");
	cr_expect_eq(v->dt, DT_BOOL);
	cr_expect(((uint8_t *)v->data)[0] == 1 && ((uint8_t *)v->data)[1] == 0);
	v = output_source(g, "typed_u8");
	cr_expect_eq(((uint8_t *)v->data)[1], 255);
	v = output_source(g, "raw_i64");
	cr_expect_eq(((int64_t *)v->data)[1], -12);
	v = output_source(g, "ext_f32");
	cr_expect_eq(v->kind, V_PARAM);
	expect_shape(v, SHAPE(2, 3));
	for (int i = 0; i < 6; i++)
		cr_expect_eq(((float *)v->data)[i], 0.5f * i, "ext_f32[%d]", i);
	ir_graph_free(g);
}

Test(onnx, shape_subgraphs_fold_with_dynamic_batch)
{
	Graph *g = load(UNIT "shape_fold.onnx");
	for (int i = 0; i < g->nnodes; i++) {
		Op op = g->nodes[i]->op;
		cr_expect(op == OP_RESHAPE || op == OP_FLATTEN || op == OP_TRANSPOSE || op == OP_IDENTITY,
			  "node '%s' is %s: shape arithmetic must be folded", g->nodes[i]->name, ir_ops[op].name);
	}
	Node *n = node_named(g, "reshape_dyn");
	expect_ints(n, "shape", 2, DIMS(-1, 12));
	expect_shape(n->out[0], SHAPE(-1, 12));
	expect_ints(node_named(g, "reshape_back"), "shape", 3, DIMS(-1, 3, 4));
	expect_ints(node_named(g, "reshape_m1"), "shape", 2, DIMS(-3, 4));
	expect_ints(node_named(g, "reshape_0"), "shape", 2, DIMS(-1, 12));
	expect_ints(node_named(g, "reshape_mul"), "shape", 2, DIMS(-3, 4));
	expect_ints(node_named(g, "unsq_data"), "shape", 3, DIMS(1, -1, 12));
	expect_ints(node_named(g, "sq_data"), "shape", 2, DIMS(-1, 12));
	cr_expect_eq(ir_attr_i(node_named(g, "flatten"), "axis", -9), 2);
	expect_shape(output_named(g, "fl"), SHAPE(-3, 4));
	expect_ints(node_named(g, "transpose"), "perm", 3, DIMS(2, 1, 0));
	expect_shape(output_named(g, "tr"), SHAPE(4, 3, -1));
	for (int i = 0; i < g->nvalues; i++)
		cr_expect(g->values[i]->kind != V_CONST, "constant '%s' left behind", g->values[i]->name);
	cr_expect_eq(ir_verify(g), 0, "%s", g->err);
	ir_graph_free(g);
}

Test(onnx, opset11_softmax_non_last_axis_flattens)
{
	Graph *g = load(UNIT "softmax11.onnx");
	Node *f = node_named(g, "sm_axis1/flatten"), *s = node_named(g, "sm_axis1/softmax");
	Node *r = node_named(g, "sm_axis1");
	cr_expect_eq(f->op, OP_RESHAPE);
	expect_ints(f, "shape", 2, DIMS(-1, 12));
	cr_expect_eq(s->op, OP_SOFTMAX);
	cr_expect_eq(ir_attr_i(s, "axis", -9), 1);
	cr_expect_eq(r->op, OP_RESHAPE);
	expect_ints(r, "shape", 3, DIMS(-1, 3, 4));
	Node *last = node_named(g, "sm_last");
	cr_expect_eq(last->op, OP_SOFTMAX);
	cr_expect_eq(ir_attr_i(last, "axis", -9), 2);
	cr_expect_eq(node_named(g, "lsm_default/softmax")->op, OP_LOG_SOFTMAX);
	cr_expect_eq(g->nnodes, 7);

	/* meaning: each sample's 12 values sum to one */
	char err[256];
	Interp *it = interp_new(g, DT_F64, 2, err, sizeof err);
	cr_assert(it, "%s", err);
	double x[24], y[24];
	for (int i = 0; i < 24; i++)
		x[i] = sin(i * 0.7) * 3;
	cr_assert_eq(interp_set(it, g->inputs[0], x, DT_F64), 0, "%s", interp_error(it));
	cr_assert_eq(interp_run(it, 1), 0, "%s", interp_error(it));
	cr_assert_eq(interp_get_f64(it, g->outputs[0], y), 0, "%s", interp_error(it));
	for (int b = 0; b < 2; b++) {
		double sum = 0, den = 0;
		for (int i = 0; i < 12; i++)
			sum += y[b * 12 + i], den += exp(x[b * 12 + i]);
		cr_expect_float_eq(sum, 1.0, 1e-12);
		cr_expect_float_eq(y[b * 12 + 5], exp(x[b * 12 + 5]) / den, 1e-12);
	}
	interp_free(it);
	ir_graph_free(g);
}

Test(onnx, reduce_axes_normal_form)
{
	Graph *g = load(UNIT "reduce13.onnx");
	Node *n = node_named(g, "rsum");
	cr_expect_eq(n->op, OP_REDUCE_SUM);
	expect_ints(n, "axes", 1, DIMS(2));
	cr_expect_eq(ir_attr_i(n, "keepdims", -9), 0);
	expect_shape(n->out[0], SHAPE(-1, 3));
	n = node_named(g, "rmean");
	expect_ints(n, "axes", 2, DIMS(0, 2));
	cr_expect_eq(ir_attr_i(n, "keepdims", -9), 1);
	expect_shape(n->out[0], SHAPE(1, 3, 1));
	cr_expect_eq(node_named(g, "rsum_noop")->op, OP_IDENTITY);
	n = node_named(g, "rmean_all");
	expect_ints(n, "axes", 3, DIMS(0, 1, 2));
	expect_shape(n->out[0], SHAPE());
	ir_graph_free(g);

	g = load(UNIT "reduce18.onnx");
	n = node_named(g, "rmean18");
	expect_ints(n, "axes", 1, DIMS(1));
	expect_shape(n->out[0], SHAPE(2, 1, 4));
	ir_graph_free(g);
}

/* the printed IR parses back into a graph that prints the same (names from ONNX files need
 * quoting; the printer may write a quoted name that matches the parsed id without quotes, so the
 * comparison is between the first and the second reading) */
static char *print_str(Graph *g)
{
	char *a = NULL;
	size_t la;
	FILE *f = open_memstream(&a, &la);
	ir_print(f, g);
	fclose(f);
	return a;
}

static Graph *parse_str(const char *text)
{
	char err[512];
	Graph *h = ir_parse(text, "printed", err, sizeof err);
	cr_assert(h, "%s\n%s", err, text);
	return h;
}

static void expect_round_trip(Graph *g)
{
	char *a = print_str(g);
	Graph *h1 = parse_str(a);
	char *b = print_str(h1);
	Graph *h2 = parse_str(b);
	char *c = print_str(h2);
	cr_expect_str_eq(c, b);
	cr_expect_eq(h1->nnodes, g->nnodes);
	cr_expect_eq(h1->nvalues, g->nvalues);
	ir_graph_free(h1);
	ir_graph_free(h2);
	free(a);
	free(b);
	free(c);
}

Test(onnx, numeric_tensor_names_stay_unique)
{
	Graph *g = load(UNIT "numeric_names.onnx");
	for (int i = 0; i < g->nvalues; i++)
		for (int j = i + 1; j < g->nvalues; j++)
			cr_expect_str_neq(g->values[i]->name, g->values[j]->name, "two values named '%s'",
					  g->values[i]->name);
	cr_expect_str_eq(g->outputs[0]->name, "2");
	cr_expect_str_eq(g->inputs[0]->name, "0");
	expect_round_trip(g);
	ir_graph_free(g);
}

Test(onnx, printed_imports_read_back)
{
	static const char *files[] = {"basic", "shape_fold", "softmax11", "reduce13", "encodings"};
	char path[256];
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		snprintf(path, sizeof path, UNIT "%s.onnx", files[i]);
		Graph *g = load(path);
		expect_round_trip(g);
		ir_graph_free(g);
	}
}

/* ---- errors ---- */

Test(onnx, error_messages)
{
	expect_err(UNIT "no_such_file.onnx", "no_such_file.onnx: cannot open: No such file or directory");
	expect_err(UNIT "bad_empty.onnx", "bad_empty.onnx: not a valid ONNX model (empty file)");
	expect_err(UNIT "bad_truncated.onnx", "bad_truncated.onnx: not a valid ONNX model (protobuf parse failed)");
	expect_err(UNIT "bad_random.onnx", "bad_random.onnx: not a valid ONNX model");
	expect_err(UNIT "bad_unknown_op.onnx",
		   "bad_unknown_op.onnx: node 'n7': unsupported operator 'Hardmax' (supported: Gemm, MatMul, ");
	expect_err(UNIT "bad_attr.onnx",
		   "bad_attr.onnx: node 'Gemm_3' (Gemm): attribute transA=2 is not supported");
	expect_err(UNIT "bad_leaky.onnx",
		   "bad_leaky.onnx: node 'lk' (LeakyRelu): attribute alpha must be a float, not an integer");
	expect_err(UNIT "bad_ir2.onnx", "bad_ir2.onnx: ONNX ir_version 2 is not supported");
	expect_err(UNIT "bad_undefined.onnx",
		   "bad_undefined.onnx: node 'add1' (Add): input 'ghost' is not defined");
	expect_err(UNIT "bad_symaxis.onnx", "input 'x': axis 1 has symbolic size 'seq'");
	expect_err(UNIT "bad_escape.onnx",
		   "initializer 'w': external data location '../escape.bin' leaves the model's directory");
}

Test(onnx, supported_list_names_every_mapped_op)
{
	const char *s = onnx_supported_ops();
	static const char *ops[] = {"Gemm", "MatMul", "Add", "Relu", "LeakyRelu", "Softmax", "Reshape",
				    "Flatten", "Transpose", "ReduceSum", "ReduceMean", "Identity",
				    "Constant", "Shape", "Gather", "Concat", "Slice"};
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
		cr_expect(strstr(s, ops[i]), "%s missing from: %s", ops[i], s);
	cr_expect_null(strstr(s, "SgdUpdate"));
	cr_expect_null(strstr(s, ",,"));
}

/* ---- real exporter output ---- */

/* models older than opset 11 are read operator by operator (frontend/onnx_opset.c): those
 * whose operators meant then what they mean now load, the others say which node is too old */
Test(onnx, old_opsets_are_read_per_operator)
{
	ir_graph_free(load("/work/shared/onnx-tests/pytorch-converted/test_Linear/model.onnx"));
	ir_graph_free(load(UNIT "bad_opset10.onnx")); /* a Relu at opset 10 */
	expect_err("/work/shared/onnx-tests/pytorch-operator/test_operator_index/model.onnx",
		   "node 'Slice#0' (Slice): opset 6 is too old for this operator (dlcc reads it from opset 10");
	/* opset 6 forms translated into numpy broadcasting: Add along an axis, per-channel PRelu */
	static const char *const ok[] = {
		"pytorch-operator/test_operator_add_broadcast", "pytorch-converted/test_PReLU_2d_multiparam",
		"pytorch-converted/test_Conv2d_strided", "pytorch-converted/test_BatchNorm2d_eval",
		"pytorch-converted/test_ConstantPad2d", "pytorch-converted/test_ConvTranspose2d",
	};
	char path[512];
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		snprintf(path, sizeof path, "/work/shared/onnx-tests/%s/model.onnx", ok[i]);
		ir_graph_free(load(path));
	}
	expect_err(UNIT "bad_old_same.onnx", "node 'c' (Conv): auto_pad SAME_* of opset 6 is not supported");
	expect_err(UNIT "bad_old_spatial.onnx", "node 'bn' (BatchNormalization): spatial=0 (per-activation");
	expect_err(UNIT "bad_old_axis.onnx", "node 'add' (Add): legacy broadcast: dim 0 of B does not match A");
}

/* node tests of supported ops (opset 13..17, fixed shapes) all load and verify */
Test(onnx, onnx_node_tests_with_supported_ops_load)
{
	static const char *cases[] = {
		"test_gemm_default_single_elem_vector_bias", "test_gemm_all_attributes", "test_gemm_transposeA",
		"test_gemm_default_no_bias", "test_matmul_3d", "test_relu", "test_leakyrelu",
		"test_softmax_axis_0", "test_softmax_negative_axis", "test_logsoftmax_axis_1",
		"test_flatten_axis0", "test_flatten_negative_axis1", "test_transpose_default",
		"test_transpose_all_permutations_3", "test_reduce_mean_do_not_keepdims_example",
		"test_reduce_mean_default_axes_keepdims_example", "test_reduce_mean_negative_axes_keepdims_example",
		"test_add_bcast", "test_div", "test_sqrt", "test_sigmoid", "test_tanh", "test_exp", "test_log",
		"test_neg", "test_identity", "test_constant", "test_matmul_4d", "test_shape_start_1_end_negative_1",
		"test_logsoftmax_large_number", "test_sub_uint8",
	};
	char path[512];
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		snprintf(path, sizeof path, "/work/shared/onnx-tests/node/%s/model.onnx", cases[i]);
		Graph *g = load(path);
		cr_expect_eq(ir_verify(g), 0, "%s: %s", cases[i], g->err);
		ir_graph_free(g);
	}
	/* a Reshape whose target shape is run-time data cannot be compiled */
	expect_err("/work/shared/onnx-tests/node/test_reshape_negative_dim/model.onnx",
		   "node 'Reshape#0' (Reshape): the target shape 'shape' must be a 1-D integer list known at "
		   "compile time");
}

/* tests/fixtures/models: every torch-exported model loads, and the interpreter reproduces
 * PyTorch's output from the stored input */
static void check_model_output(const char *dir, const char *stem)
{
	char path[512], err[512];
	snprintf(path, sizeof path, "%s/%s.onnx", dir, stem);
	Graph *g = load(path);
	cr_assert_eq(ir_verify(g), 0, "%s: %s", stem, g->err);
	NpyArray x, want;
	snprintf(path, sizeof path, "%s/%s_x.npy", dir, stem);
	cr_assert_eq(npy_load(path, &x, err, sizeof err), 0, "%s", err);
	snprintf(path, sizeof path, "%s/%s_out.npy", dir, stem);
	cr_assert_eq(npy_load(path, &want, err, sizeof err), 0, "%s", err);
	cr_assert_eq(npy_convert(&x, DLCC_F64, err, sizeof err), 0, "%s", err);
	cr_assert_eq(npy_convert(&want, DLCC_F64, err, sizeof err), 0, "%s", err);
	Interp *it = interp_new(g, DT_F64, x.dims[0], err, sizeof err);
	cr_assert(it, "%s: %s", stem, err);
	cr_assert_eq(interp_set(it, g->inputs[0], x.data, DT_F64), 0, "%s", interp_error(it));
	cr_assert_eq(interp_run(it, 1), 0, "%s: %s", stem, interp_error(it));
	int64_t n = npy_numel(&want);
	cr_assert_eq(ir_numel_at(&g->outputs[0]->shape, x.dims[0]), n, "%s: output size", stem);
	double *got = malloc(n * sizeof *got), *w = want.data;
	cr_assert_eq(interp_get_f64(it, g->outputs[0], got), 0, "%s", interp_error(it));
	for (int64_t i = 0; i < n; i++)
		cr_expect(fabs(got[i] - w[i]) <= 1e-4 + 1e-4 * fabs(w[i]), "%s[%lld]: %g vs torch %g", stem,
			  (long long)i, got[i], w[i]);
	free(got);
	interp_free(it);
	npy_free(&x);
	npy_free(&want);
	ir_graph_free(g);
}

Test(onnx, fixture_models_load_and_match_torch)
{
	const char *dir = TESTS_DIR "/fixtures/models";
	DIR *d = opendir(dir);
	cr_assert(d, "no %s", dir);
	int count = 0;
	for (struct dirent *e; (e = readdir(d));) {
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".onnx") != 0)
			continue;
		char stem[256];
		snprintf(stem, sizeof stem, "%.*s", (int)(len - 5), e->d_name);
		check_model_output(dir, stem);
		count++;
	}
	closedir(d);
	cr_expect_gt(count, 0);
}

/* the conformance runner's entry points: test-data TensorProto files, and inputs pinned as
 * compile-time constants (a Reshape whose target shape is a graph input) */
static int pin_shape(void *user, int index, const char *name, OnnxData *t)
{
	static int64_t shape[3] = {2, -1, 2};
	if (strcmp(name, "shape") != 0)
		return 0;
	*t = (OnnxData){.name = name, .dt = DT_I64, .shape = SHAPE(3), .data = shape};
	++*(int *)user;
	return 1;
}

Test(onnx, test_data_files_and_pinned_inputs)
{
	char err[512] = "";
	OnnxData d;
	const char *node = "/work/shared/onnx-tests/node/";
	char path[512];
	snprintf(path, sizeof path, "%s/test_reshape_negative_dim/test_data_set_0/input_0.pb", node);
	cr_assert_eq(onnx_read_tensor_file(path, &d, err, sizeof err), 0, "%s", err);
	cr_expect_eq(d.dt, DT_F32);
	Shape want = SHAPE(2, 3, 4);
	cr_expect(ir_shape_eq(&d.shape, &want));
	free(d.data);
	free((char *)d.name);
	snprintf(path, sizeof path, "%s/test_reshape_negative_dim/model.onnx", node);
	int pinned = 0;
	Graph *g = onnx_load_pinned(path, 0, pin_shape, &pinned, err, sizeof err);
	cr_assert(g, "%s", err);
	cr_expect_eq(pinned, 1);
	cr_expect_eq(g->ninputs, 1);
	want = SHAPE(2, 6, 2);
	cr_expect(ir_shape_eq(&g->outputs[0]->shape, &want));
	ir_graph_free(g);
	snprintf(path, sizeof path, "%s/test_sequence_insert_at_back/test_data_set_0/input_0.pb", node);
	cr_expect_eq(onnx_read_tensor_file(path, &d, err, sizeof err), -1); /* a SequenceProto */
}
