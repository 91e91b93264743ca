/*
 * harness.c — the unit tests' shared harness code (see harness.h). No Test() here.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "frontend/onnx.h"
#include "npy.h"
#include "passes/grad.h"
#include "passes/passes.h"

/* ---- the float64 finite-difference gradient check ---- */

double th_rnd(ThCase *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return (double)(c->rng >> 11) / 9007199254740992.0; /* [0,1) */
}

ThCase *th_case_new(const char *graph_name, uint64_t seed)
{
	ThCase *c = calloc(1, sizeof *c);
	c->g = ir_graph_new(graph_name);
	c->rng = seed;
	return c;
}

void th_case_free(ThCase *c)
{
	for (int i = 0; i < c->nw; i++)
		free(c->data[i]);
	ir_graph_free(c->g);
	free(c);
}

void th_fill(ThCase *c, double *d, int64_t n, int positive)
{
	for (int64_t k = 0; k < n; k++) {
		double m = 0.2 + 0.8 * th_rnd(c);
		d[k] = positive || th_rnd(c) < 0.5 ? m : -m;
	}
}

Value *th_var(ThCase *c, Shape s, int positive)
{
	int64_t n = ir_numel_at(&s, TH_BATCH);
	double *d = malloc((n ? n : 1) * sizeof *d);
	th_fill(c, d, n, positive);
	int batched = ir_has_batch(&s);
	char name[16];
	snprintf(name, sizeof name, "w%d", c->nw);
	Value *v = ir_value(c->g, batched ? V_INPUT : V_PARAM, name, DT_F64, s, batched ? NULL : d);
	cr_assert(c->nw < TH_MAXW);
	c->w[c->nw] = v;
	c->pos[c->nw] = positive;
	c->data[c->nw++] = d;
	return v;
}

Value *th_labels(ThCase *c, Shape s, int64_t classes)
{
	c->classes = classes;
	return c->lab = ir_value(c->g, V_INPUT, "label", DT_I64, s, NULL);
}

Value *th_fin(ThCase *c, Node *n)
{
	cr_assert(ir_finish(c->g, n) == 0, "%s", c->g->err);
	return n->out[0];
}

Value *th_op1(ThCase *c, Op op, Value *a) { return th_fin(c, ir_begin(c->g, op, NULL, 1, &a)); }

Value *th_op2(ThCase *c, Op op, Value *a, Value *b)
{
	return th_fin(c, ir_begin(c->g, op, NULL, 2, (Value *[]){a, b}));
}

Node *th_begin(ThCase *c, Op op, int nin, Value **in) { return ir_begin(c->g, op, NULL, nin, in); }

/* loss = ReduceSum(y * R), R a random V_INPUT shaped like y */
static Value *random_projection_loss(ThCase *c, Value *y, Value **r)
{
	*r = ir_value(c->g, V_INPUT, "R", DT_F64, y->shape, NULL);
	Node *n = th_begin(c, OP_REDUCE_SUM, 1, (Value *[]){th_op2(c, OP_MUL, y, *r)});
	ir_set_ints(c->g, n, "axes", 0, NULL);
	ir_set_i(c->g, n, "keepdims", 0);
	return th_fin(c, n);
}

static void set_inputs(ThCase *c, Interp *it, Value *r)
{
	int64_t nr = ir_numel_at(&r->shape, TH_BATCH);
	double *rd = malloc((nr ? nr : 1) * sizeof *rd);
	th_fill(c, rd, nr, 0);
	cr_assert(interp_set(it, r, rd, DT_F64) == 0, "%s", interp_error(it));
	free(rd);
	for (int i = 0; i < c->nw; i++)
		cr_assert(interp_set(it, c->w[i], c->data[i], DT_F64) == 0, "%s", interp_error(it));
	if (c->lab) {
		int64_t nl = ir_numel_at(&c->lab->shape, TH_BATCH), *l = malloc(nl * sizeof *l);
		for (int64_t k = 0; k < nl; k++)
			l[k] = (int64_t)(th_rnd(c) * c->classes) % c->classes;
		cr_assert(interp_set(it, c->lab, l, DT_I64) == 0, "%s", interp_error(it));
		free(l);
	}
}

double th_run_loss(Interp *it, Value *loss)
{
	double l;
	cr_assert(interp_run(it, 1) == 0, "%s", interp_error(it));
	cr_assert(interp_get_f64(it, loss, &l) == 0, "%s", interp_error(it));
	return l;
}

static double central_difference(ThCase *c, Interp *it, Value *loss, int i, int64_t k)
{
	double x = c->data[i][k], lp, lm;
	c->data[i][k] = x + TH_FD_EPS;
	interp_set(it, c->w[i], c->data[i], DT_F64);
	lp = th_run_loss(it, loss);
	c->data[i][k] = x - TH_FD_EPS;
	interp_set(it, c->w[i], c->data[i], DT_F64);
	lm = th_run_loss(it, loss);
	c->data[i][k] = x;
	interp_set(it, c->w[i], c->data[i], DT_F64);
	return (lp - lm) / (2 * TH_FD_EPS);
}

/* an: the analytic gradient of w[i], read before any perturbed run */
static void compare_grad(ThCase *c, Interp *it, Value *loss, int i, const double *an, const char *what)
{
	int64_t n = ir_numel_at(&c->w[i]->shape, TH_BATCH);
	for (int64_t k = 0; k < n; k++) {
		double fd = central_difference(c, it, loss, i, k);
		double tol = TH_FD_TOL * fmax(1.0, fmax(fabs(fd), fabs(an[k])));
		cr_expect(fabs(an[k] - fd) <= tol, "%s: d/d%s[%lld]: analytic %.12g, finite difference %.12g",
			  what, c->w[i]->name, (long long)k, an[k], fd);
	}
}

static int all_params(ThCase *c)
{
	if (c->nw != c->g->nparams)
		return 0;
	for (int i = 0; i < c->nw; i++)
		if (c->w[i] != c->g->params[i])
			return 0;
	return 1;
}

void th_check(ThCase *c, Value *y, const char *what)
{
	Value *r, *grads[TH_MAXW];
	c->g->loss = random_projection_loss(c, y, &r);
	int rc = !c->backward_only && all_params(c) ? pass_autodiff(c->g, grads)
						    : grad_backward(c->g, c->nw, c->w, grads);
	cr_assert(rc == 0, "%s: autodiff failed: %s", what, c->g->err);
	cr_assert(ir_verify(c->g) == 0, "%s: %s", what, c->g->err);
	char err[256];
	Interp *it = interp_new(c->g, DT_F64, TH_BATCH, err, sizeof err);
	cr_assert(it, "%s: %s", what, err);
	set_inputs(c, it, r);
	th_run_loss(it, c->g->loss);
	double *an[TH_MAXW];
	for (int i = 0; i < c->nw; i++) {
		int64_t n = ir_numel_at(&c->w[i]->shape, TH_BATCH);
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

/* ---- generated code against the interpreter ---- */

static uint64_t rng = 88172645463325252ull;

void th_urand_seed(uint64_t seed) { rng = seed; }

double th_urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0 * 2 - 1;
}

Value *th_input(Graph *g, const char *name, Shape s) { return ir_value(g, V_INPUT, name, DT_F32, s, NULL); }

Value *th_param(Graph *g, const char *name, Shape s)
{
	float d[TH_MAXN];
	int64_t n = ir_numel(&s);
	cr_assert(n <= TH_MAXN);
	for (int64_t i = 0; i < n; i++)
		d[i] = (float)(th_urand() * 0.5);
	return ir_value(g, V_PARAM, name, DT_F32, s, d);
}

Value *th_gfin(Graph *g, Node *n)
{
	cr_assert_eq(ir_finish(g, n), 0, "%s", g->err);
	return n->out[0];
}

Value *th_gop1(Graph *g, Op op, Value *a)
{
	Value *y = ir_op1(g, op, a);
	cr_assert(y, "%s", g->err);
	return y;
}

Value *th_gop2(Graph *g, Op op, Value *a, Value *b)
{
	Value *y = ir_op2(g, op, a, b);
	cr_assert(y, "%s", g->err);
	return y;
}

Value *th_out(Graph *g, Value *v)
{
	ir_add_output(g, v);
	return v;
}

/* ---- the artifact ---- */

static void *sym(ThArt *a, const char *name)
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

ThArt th_art_open(Graph *infer, Graph *train, int max_batch, DType prec)
{
	ThArt a;
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

void th_art_close(ThArt *a)
{
	a->destroy(a->m);
	dlclose(a->so);
}

Interp *th_interp(Graph *g, DType dt, int batch)
{
	char err[256];
	Interp *it = interp_new(g, dt, batch, err, sizeof err);
	cr_assert(it, "interp_new: %s", err);
	return it;
}

/* random data for every input (floats in [-1,1], integers in [0, classes)) */
void **th_make_inputs(Graph *g, int batch, DType prec, int classes)
{
	void **d = calloc(g->ninputs + 1, sizeof *d);
	for (int i = 0; i < g->ninputs; i++) {
		const Value *v = g->inputs[i];
		int64_t n = ir_numel_at(&v->shape, batch);
		d[i] = calloc(n + 1, 8);
		for (int64_t k = 0; k < n; k++) {
			if (v->dt == DT_I64)
				((int64_t *)d[i])[k] = (int64_t)((th_urand() + 1) / 2 * classes) % classes;
			else if (prec == DT_F64)
				((double *)d[i])[k] = th_urand();
			else
				((float *)d[i])[k] = (float)th_urand();
		}
	}
	return d;
}

void th_free_list(void **d, int n)
{
	for (int i = 0; i < n; i++)
		free(d[i]);
	free(d);
}

void th_set_inputs(Interp *it, Graph *g, void **d, DType prec)
{
	for (int i = 0; i < g->ninputs; i++) {
		DType dt = g->inputs[i]->dt == DT_I64 ? DT_I64 : prec;
		cr_assert_eq(interp_set(it, g->inputs[i], d[i], dt), 0, "%s", interp_error(it));
	}
}

void th_expect_close(const char *what, const double *got, const double *want, int64_t n, double tol)
{
	for (int64_t k = 0; k < n; k++)
		cr_assert(fabs(got[k] - want[k]) <= tol * (1 + fabs(want[k])),
			  "%s element %lld: generated %.9g, interpreter %.9g", what, (long long)k, got[k], want[k]);
}

/* run g through the artifact and the interpreter; compare every output */
void th_check_infer_prec(Graph *g, int max_batch, int batch, int classes, DType prec)
{
	double tol = prec == DT_F64 ? 1e-12 : 1e-5;
	ThArt a = th_art_open(g, NULL, max_batch, prec);
	void **in = th_make_inputs(g, batch, prec, classes);
	void **outs = calloc(g->noutputs + 1, sizeof *outs);
	for (int i = 0; i < g->noutputs; i++)
		outs[i] = calloc(ir_numel_at(&g->outputs[i]->shape, batch) + 1, 8);
	cr_assert_eq(a.infer(a.m, batch, (const void *const *)in, outs), 0, "dlcc_infer: %s", a.error(a.m));
	Interp *it = th_interp(g, prec, batch);
	th_set_inputs(it, g, in, prec);
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
		th_expect_close(what, got, want, n, tol);
		free(want);
		free(got);
	}
	interp_free(it);
	th_free_list(in, g->ninputs);
	th_free_list(outs, g->noutputs);
	th_art_close(&a);
}

void th_check_infer(Graph *g, int max_batch, int batch, int classes)
{
	th_check_infer_prec(g, max_batch, batch, classes, DT_F32);
}

/* ---- PyTorch fixtures through the ONNX frontend and the interpreter ---- */

static DType npy_dt(dlcc_dtype d)
{
	return d == DLCC_I64 ? DT_I64 : d == DLCC_BOOL ? DT_BOOL : d == DLCC_F64 ? DT_F64 : DT_F32;
}

static void load_npy(const char *path, NpyArray *a)
{
	char err[512];
	cr_assert_eq(npy_load(path, a, err, sizeof err), 0, "%s", err);
}

static void run_case(const char *dir, const char *name)
{
	char path[512], err[512] = "";
	snprintf(path, sizeof path, "%s%s.onnx", dir, name);
	Graph *g = onnx_load(path, 0, err, sizeof err);
	cr_assert(g, "%s: %s", name, err);
	Interp *it = interp_new(g, DT_F64, 1, err, sizeof err);
	cr_assert(it, "%s: %s", name, err);
	for (int i = 0; i < g->ninputs; i++) {
		NpyArray a;
		snprintf(path, sizeof path, "%s%s_in%d.npy", dir, name, i);
		load_npy(path, &a);
		cr_assert_eq(interp_set(it, g->inputs[i], a.data, npy_dt(a.dtype)), 0, "%s", interp_error(it));
		npy_free(&a);
	}
	cr_assert_eq(interp_run(it, 0), 0, "%s: %s", name, interp_error(it));
	NpyArray want;
	snprintf(path, sizeof path, "%s%s_out.npy", dir, name);
	load_npy(path, &want);
	char e2[256];
	cr_assert_eq(npy_convert(&want, DLCC_F64, e2, sizeof e2), 0, "%s", e2);
	const Value *y = g->outputs[0];
	int64_t n = ir_numel(&y->shape);
	cr_assert_eq(n, npy_numel(&want), "%s: %lld elements, PyTorch %lld", name, (long long)n,
		     (long long)npy_numel(&want));
	double *got = malloc((n + 1) * sizeof *got), *w = want.data;
	cr_assert_eq(interp_get_f64(it, y, got), 0, "%s", interp_error(it));
	double tol = ir_dt_is_float(y->dt) ? 1e-6 : 0;
	for (int64_t k = 0; k < n; k++)
		cr_expect(fabs(got[k] - w[k]) <= tol * (1 + fabs(w[k])), "%s[%lld]: interpreter %.9g, PyTorch %.9g",
			  name, (long long)k, got[k], w[k]);
	free(got);
	npy_free(&want);
	interp_free(it);
	ir_graph_free(g);
}

/* run every <dir>*.onnx case; returns the number of cases */
int th_torch_fixtures(const char *dir)
{
	DIR *d = opendir(dir);
	cr_assert(d, "no %s", dir);
	int cases = 0;
	for (struct dirent *e; (e = readdir(d));) {
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".onnx") != 0)
			continue;
		char name[256];
		snprintf(name, sizeof name, "%.*s", (int)(len - 5), e->d_name);
		run_case(dir, name);
		cases++;
	}
	closedir(d);
	return cases;
}
