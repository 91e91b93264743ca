/*
 * test_codegen_conv.c — the convolution family's generated kernels (codegen/cg_conv.c) equal
 * the interpreter: each graph is compiled with cg_build (which also NVRTC-compiles the kernels
 * for sm_80/sm_90 when libnvrtc is present), run through the CPU emulation and compared output
 * by output (f32, relative tolerance 1e-5; one f64 case at 1e-12). The graphs take batch-shaped
 * inputs so the batch extent B is a run-time value, and cover every attribute that changes the
 * kernel text: bias, groups, depthwise, stride, dilation, asymmetric pads, 1-D, ceil_mode,
 * count_include_pad, the gradient ops fed by their forward ops (MaxPoolGrad by MaxPool's
 * indices), and Pad/PadGrad in each mode, negative pads included.
 * The harness (artifact open, random inputs, compare) follows test_codegen.c.
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

#define DIMS(...) ((int64_t[]){__VA_ARGS__})
#define SHAPE(...) ir_shape(sizeof DIMS(__VA_ARGS__) / sizeof(int64_t), DIMS(__VA_ARGS__))
#define MAXN 4096

/* ---- graph helpers ---- */

static uint64_t rng = 88172645463325252ull;
static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0 * 2 - 1;
}

static Value *input(Graph *g, const char *name, Shape s) { return ir_value(g, V_INPUT, name, DT_F32, s, NULL); }

static Value *param(Graph *g, const char *name, Shape s)
{
	float d[MAXN];
	int64_t n = ir_numel(&s);
	cr_assert(n <= MAXN);
	for (int64_t i = 0; i < n; i++)
		d[i] = (float)(urand() * 0.5);
	return ir_value(g, V_PARAM, name, DT_F32, s, d);
}

static Value *fin(Graph *g, Node *n)
{
	cr_assert_eq(ir_finish(g, n), 0, "%s", g->err);
	return n->out[0];
}


static Value *out(Graph *g, Value *v)
{
	ir_add_output(g, v);
	return v;
}

/* ---- the artifact ---- */

typedef struct {
	void *so;
	dlcc_model *m;
	int (*infer)(dlcc_model *, int, const void *const *, void *const *);
	int (*train)(dlcc_model *, int, const void *const *, const void *, float *);
	int (*get_param)(dlcc_model *, int, float *);
	const char *(*error)(const dlcc_model *);
	void (*destroy)(dlcc_model *);
	char dir[64];
} Art;

static void *sym(Art *a, const char *name)
{
	void *p = dlsym(a->so, name);
	cr_assert(p, "artifact lacks %s", name);
	return p;
}

static int build_so(Graph *infer, Graph *train, int max_batch, DType prec, const char *path, char *err)
{
	CgOpts o = {path, "so", max_batch, prec, NULL, 0};
	return cg_build(infer, train, &o, err, 512);
}

static Art art_open(Graph *infer, Graph *train, int max_batch, DType prec)
{
	Art a;
	char path[128], err[512];
	memset(&a, 0, sizeof a);
	snprintf(a.dir, sizeof a.dir, "/tmp/dlcc-test-XXXXXX");
	cr_assert(mkdtemp(a.dir));
	snprintf(path, sizeof path, "%s/model.so", a.dir);
	cr_assert_eq(build_so(infer, train, max_batch, prec, path, err), 0, "cg_build: %s", err);
	a.so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	cr_assert(a.so, "dlopen: %s", dlerror());
	dlcc_model *(*create)(dlcc_device, char *, size_t) = sym(&a, "dlcc_create");
	*(void **)&a.infer = sym(&a, "dlcc_infer");
	*(void **)&a.train = sym(&a, "dlcc_train_step");
	*(void **)&a.get_param = sym(&a, "dlcc_get_param");
	*(void **)&a.error = sym(&a, "dlcc_error");
	*(void **)&a.destroy = sym(&a, "dlcc_destroy");
	a.m = create(DLCC_DEVICE_CPU, err, sizeof err);
	cr_assert(a.m, "dlcc_create: %s", err);
	unlink(path);
	rmdir(a.dir);
	return a;
}

static void art_close(Art *a)
{
	a->destroy(a->m);
	dlclose(a->so);
}

static Interp *interp(Graph *g, DType dt, int batch)
{
	char err[256];
	Interp *it = interp_new(g, dt, batch, err, sizeof err);
	cr_assert(it, "interp_new: %s", err);
	return it;
}

/* random data for every input (floats in [-1,1], integers in [0, classes)) */
static void **make_inputs(Graph *g, int batch, DType prec, int classes)
{
	void **d = calloc(g->ninputs + 1, sizeof *d);
	for (int i = 0; i < g->ninputs; i++) {
		const Value *v = g->inputs[i];
		int64_t n = ir_numel_at(&v->shape, batch);
		d[i] = calloc(n + 1, 8);
		for (int64_t k = 0; k < n; k++) {
			if (v->dt == DT_I64)
				((int64_t *)d[i])[k] = (int64_t)((urand() + 1) / 2 * classes) % classes;
			else if (prec == DT_F64)
				((double *)d[i])[k] = urand();
			else
				((float *)d[i])[k] = (float)urand();
		}
	}
	return d;
}

static void free_list(void **d, int n)
{
	for (int i = 0; i < n; i++)
		free(d[i]);
	free(d);
}

static void set_inputs(Interp *it, Graph *g, void **d, DType prec)
{
	for (int i = 0; i < g->ninputs; i++) {
		DType dt = g->inputs[i]->dt == DT_I64 ? DT_I64 : prec;
		cr_assert_eq(interp_set(it, g->inputs[i], d[i], dt), 0, "%s", interp_error(it));
	}
}

static void expect_close(const char *what, const double *got, const double *want, int64_t n, double tol)
{
	for (int64_t k = 0; k < n; k++)
		cr_assert(fabs(got[k] - want[k]) <= tol * (1 + fabs(want[k])),
			  "%s element %lld: generated %.9g, interpreter %.9g", what, (long long)k, got[k], want[k]);
}

/* run g through the artifact and the interpreter; compare every output */
static void check_infer_prec(Graph *g, int max_batch, int batch, int classes, DType prec)
{
	double tol = prec == DT_F64 ? 1e-12 : 1e-5;
	Art a = art_open(g, NULL, max_batch, prec);
	void **in = make_inputs(g, batch, prec, classes);
	void **outs = calloc(g->noutputs + 1, sizeof *outs);
	for (int i = 0; i < g->noutputs; i++)
		outs[i] = calloc(ir_numel_at(&g->outputs[i]->shape, batch) + 1, 8);
	cr_assert_eq(a.infer(a.m, batch, (const void *const *)in, outs), 0, "dlcc_infer: %s", a.error(a.m));
	Interp *it = interp(g, prec, batch);
	set_inputs(it, g, in, prec);
	cr_assert_eq(interp_run(it, 1), 0, "%s", interp_error(it));
	for (int i = 0; i < g->noutputs; i++) {
		const Value *v = g->outputs[i];
		int64_t n = ir_numel_at(&v->shape, batch);
		double *want = calloc(n + 1, 8), *got = calloc(n + 1, 8);
		cr_assert_eq(interp_get_f64(it, v, want), 0, "%s", interp_error(it));
		for (int64_t k = 0; k < n; k++)
			got[k] = prec == DT_F64 ? ((double *)outs[i])[k] : ((float *)outs[i])[k];
		char what[128];
		snprintf(what, sizeof what, "output %d (%s)", i, v->name);
		expect_close(what, got, want, n, tol);
		free(want);
		free(got);
	}
	interp_free(it);
	free_list(in, g->ninputs);
	free_list(outs, g->noutputs);
	art_close(&a);
}

static void check_infer(Graph *g, int max_batch, int batch, int classes)
{
	check_infer_prec(g, max_batch, batch, classes, DT_F32);
}

/* ---- elementwise ---- */


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
	Value *x = input(g, nm, xs);
	snprintf(nm, sizeof nm, "w_%s", tag);
	Value *wt = param(g, nm, ws);
	Value *in[3] = {x, wt, NULL};
	if (bias) {
		snprintf(nm, sizeof nm, "b_%s", tag);
		in[2] = param(g, nm, ir_shape(1, &ws.d[0]));
	}
	Value *y = out(g, fin(g, win_node(g, OP_CONV, bias ? 3 : 2, in, w)));
	snprintf(nm, sizeof nm, "dy_%s", tag);
	Value *dy = input(g, nm, y->shape);
	Node *n = win_node(g, OP_CONV_GRAD_INPUT, 2, (Value *[]){dy, wt}, w);
	ir_set_ints(g, n, "shape", xs.rank, xs.d);
	out(g, fin(g, n));
	n = win_node(g, OP_CONV_GRAD_WEIGHT, 2, (Value *[]){dy, x}, w);
	ir_set_ints(g, n, "shape", ws.rank, ws.d);
	out(g, fin(g, n));
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
	check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

/* ConvGradWeight's reduction over N*OH*OW is longer than a block: the stride loop and the tree sum */
Test(codegen_conv, conv_grad_weight_long_reduction)
{
	int64_t one[] = {1, 1};
	Graph *g = ir_graph_new("convlong");
	conv_case(g, "big", SHAPE(-1, 2, 12, 12), SHAPE(3, 2, 3, 3), (Win){2, I(3, 3), one, one, I(1, 1, 1, 1)}, 1);
	check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

static void pool_case(Graph *g, const char *tag, Op op, Shape xs, Win w)
{
	char nm[64];
	snprintf(nm, sizeof nm, "x_%s", tag);
	Value *x = input(g, nm, xs);
	Node *f = win_node(g, op, 1, &x, w);
	Value *y = out(g, fin(g, f));
	snprintf(nm, sizeof nm, "dy_%s", tag);
	Value *dy = input(g, nm, y->shape);
	Node *n = op == OP_MAX_POOL ? win_node(g, OP_MAX_POOL_GRAD, 2, (Value *[]){dy, f->out[1]}, w)
				    : win_node(g, OP_AVERAGE_POOL_GRAD, 1, &dy, w);
	ir_set_ints(g, n, "shape", xs.rank, xs.d);
	out(g, fin(g, n)); /* MaxPool's indices are checked through MaxPoolGrad */
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
	check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

static void pad_case(Graph *g, const char *tag, Shape xs, const char *mode, const int64_t *pads)
{
	char nm[64];
	snprintf(nm, sizeof nm, "x_%s_%s", tag, mode);
	Value *x = input(g, nm, xs);
	Node *n = ir_begin(g, OP_PAD, "pad", 1, &x);
	ir_set_ints(g, n, "pads", 2 * xs.rank, pads);
	ir_set_s(g, n, "mode", mode);
	ir_set_f(g, n, "value", -0.25);
	Value *y = out(g, fin(g, n));
	snprintf(nm, sizeof nm, "dy_%s_%s", tag, mode);
	Value *dy = input(g, nm, y->shape);
	n = ir_begin(g, OP_PAD_GRAD, "padgrad", 1, &dy);
	ir_set_ints(g, n, "pads", 2 * xs.rank, pads);
	ir_set_s(g, n, "mode", mode);
	out(g, fin(g, n));
}

Test(codegen_conv, pad_and_grad)
{
	const char *modes[] = {"constant", "reflect", "edge"};
	Graph *g = ir_graph_new("pad");
	for (int m = 0; m < 3; m++) {
		pad_case(g, "a", SHAPE(-1, 3, 4, 5), modes[m], I(0, 0, 1, 2, 0, 0, 2, 1));
		pad_case(g, "b", SHAPE(-1, 3, 4), modes[m], I(0, 1, 3, 0, 0, -1));
	}
	check_infer(g, 4, 3, 0);
	ir_graph_free(g);
}

Test(codegen_conv, f64_precision)
{
	int64_t one[] = {1, 1}, two[] = {2, 2};
	Graph *g = ir_graph_new("conv64");
	Value *x = ir_value(g, V_INPUT, "x", DT_F64, SHAPE(-1, 2, 5, 5), NULL);
	double wd[2 * 2 * 9];
	for (int i = 0; i < 36; i++)
		wd[i] = urand();
	Value *w = ir_value(g, V_PARAM, "w", DT_F64, SHAPE(2, 2, 3, 3), wd);
	Value *y = fin(g, win_node(g, OP_CONV, 2, (Value *[]){x, w}, (Win){2, I(3, 3), two, one, I(1, 1, 1, 1)}));
	Node *p = win_node(g, OP_MAX_POOL, 1, &y, (Win){2, I(2, 2), one, one, I(0, 0, 0, 0)});
	out(g, fin(g, p));
	check_infer_prec(g, 4, 3, 0, DT_F64);
	ir_graph_free(g);
}
