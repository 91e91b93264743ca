/*
 * conform_case.c — one ONNX test case through dlcc: read the test data, import the model
 * (pinning integer inputs when the plain import refuses them), lower for inference, compile a
 * CPU-only artifact into a temporary directory, run every data set through it and compare.
 *
 * Verdicts: a refusal by the frontend or the pipeline is "unsupported", classified from dlcc's
 * one-line message (operator, opset, dtype, attribute, input, other); anything after that —
 * codegen errors, a runtime error, a wrong shape or dtype, a value outside rtol 1e-3 + atol 1e-7
 * — is "fail", with the first differing element. The batch: an input whose first axis is a
 * dim_param gets the symbolic N, and N is the test data's size along it; fixed first axes stay
 * fixed. Runs in a forked worker (cmd_conform.c), which exits right after, so test data is not
 * freed piece by piece.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/onnx.h"
#include "passes/pipeline.h"
#include "tools/cli.h"
#include "tools/conform.h"

#define RTOL 1e-3
#define ATOL 1e-7
#define MAXT 32 /* tensors per data set */

typedef struct {
	int nin, nout;
	OnnxData in[MAXT], out[MAXT];
} DataSet;

typedef struct {
	const char *dir;
	DataSet sets[8];
	int nsets;
	const char *names[MAXT]; /* graph inputs (not initializers) by index, from the pin callback */
	int pin_ints;            /* second import: pin integer inputs */
	int pinned;
	int64_t batch[8];        /* per data set */
	char data_err[1024];     /* why the test data could not be read */
	int max_batch;
} Case;

static void verdict(CaseResult *r, Verdict v, const char *cat, const char *op, const char *msg)
{
	r->verdict = v;
	snprintf(r->cat, sizeof r->cat, "%s", cat);
	snprintf(r->op, sizeof r->op, "%s", op && op[0] ? op : "-");
	snprintf(r->msg, sizeof r->msg, "%s", msg);
	for (char *p = r->msg; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
}

/* the text between open and the next close after it, or "" */
static void between(const char *s, const char *open, char close, char *out, size_t len)
{
	const char *p = strstr(s, open);
	out[0] = 0;
	if (!p)
		return;
	p += strlen(open);
	const char *e = strchr(p, close);
	if (e && (size_t)(e - p) < len)
		snprintf(out, len, "%.*s", (int)(e - p), p);
}

/* the message without the case directory in front and the list of supported operators */
static const char *shorten(const Case *c, const char *msg, char *buf, size_t len)
{
	size_t n = strlen(c->dir);
	if (!strncmp(msg, c->dir, n) && msg[n] == '/')
		msg += n + 1;
	snprintf(buf, len, "%s", msg);
	char *s = strstr(buf, " (supported: ");
	if (s)
		*s = 0;
	return buf;
}

/* a refusal, from dlcc's one-line message: category and operator */
static void refused(const Case *c, CaseResult *r, const char *full)
{
	char op[64], buf[1024];
	const char *msg = shorten(c, full, buf, sizeof buf);
	const char *cat = "other";
	between(msg, "unsupported operator '", '\'', op, sizeof op);
	if (op[0])
		cat = "operator";
	else if (strstr(msg, "opset"))
		cat = "opset";
	else if (strstr(msg, "element type") || strstr(msg, "casting") || strstr(msg, "dtype"))
		cat = "dtype";
	else if (strstr(msg, "attribute"))
		cat = "attribute";
	else if (strstr(msg, "compile-time") || strstr(msg, "known at compile time") ||
		 strstr(msg, "symbolic") || strstr(msg, "not a tensor") || strstr(msg, "depends on the batch"))
		cat = "input";
	if (!op[0]) {
		const char *n = strstr(msg, "node '");
		n = n ? strstr(n, "' (") : NULL;
		if (n)
			between(n, "' (", ')', op, sizeof op);
	}
	verdict(r, R_UNSUP, cat, op, msg);
}

/* ---- test data ---- */

static int read_tensors(Case *c, const char *set, const char *kind, OnnxData *t, int *n)
{
	char p[4200];
	for (*n = 0; *n < MAXT; (*n)++) {
		snprintf(p, sizeof p, "%s/%s_%d.pb", set, kind, *n);
		if (access(p, R_OK) != 0)
			return 0;
		if (onnx_read_tensor_file(p, &t[*n], c->data_err, sizeof c->data_err) < 0)
			return -1;
	}
	return 0;
}

/* every test_data_set_K; -1 with c->data_err set (sequences, strings, ... are not tensors) */
static int read_sets(Case *c)
{
	char set[4200];
	for (c->nsets = 0; c->nsets < 8; c->nsets++) {
		DataSet *d = &c->sets[c->nsets];
		snprintf(set, sizeof set, "%s/test_data_set_%d", c->dir, c->nsets);
		if (access(set, R_OK) != 0)
			break;
		if (read_tensors(c, set, "input", d->in, &d->nin) < 0 ||
		    read_tensors(c, set, "output", d->out, &d->nout) < 0)
			return -1;
	}
	if (c->nsets == 0)
		snprintf(c->data_err, sizeof c->data_err, "no test_data_set_0 directory");
	return c->nsets ? 0 : -1;
}

/* ---- import ---- */

static int pin_cb(void *user, int index, const char *name, OnnxData *t)
{
	Case *c = user;
	if (index >= MAXT)
		return 0;
	c->names[index] = strdup(name);
	const DataSet *d = &c->sets[0];
	if (!c->pin_ints || index >= d->nin || ir_dt_is_float(d->in[index].dt))
		return 0;
	*t = d->in[index];
	c->pinned = 1;
	return 1;
}

static int any_int_input(const DataSet *d)
{
	for (int i = 0; i < d->nin; i++)
		if (!ir_dt_is_float(d->in[i].dt))
			return 1;
	return 0;
}

static Graph *import(Case *c, CaseResult *r)
{
	char path[4200], err[1024];
	snprintf(path, sizeof path, "%s/model.onnx", c->dir);
	Graph *g = onnx_load_pinned(path, 0, pin_cb, c, err, sizeof err);
	if (!g && !c->data_err[0] && any_int_input(&c->sets[0])) {
		c->pin_ints = 1;
		g = onnx_load_pinned(path, 0, pin_cb, c, err, sizeof err);
	}
	if (!g)
		refused(c, r, err);
	return g;
}

static Graph *lower(const Case *c, Graph *g, CaseResult *r)
{
	TrainOpts o;
	Graph *infer = NULL, *train = NULL;
	train_opts_default(&o, "sgd");
	if (pass_pipeline(g, &o, 0, &infer, &train, NULL, NULL) < 0)
		refused(c, r, g->err);
	ir_graph_free(g);
	return infer;
}

/* ---- the batch ---- */

static const OnnxData *input_data(const Case *c, const DataSet *d, const char *name)
{
	for (int i = 0; i < d->nin && i < MAXT; i++)
		if (c->names[i] && !strcmp(c->names[i], name))
			return &d->in[i];
	return NULL;
}

/* N for each data set: the data's size along a symbolic first axis, else 1 */
static int find_batch(Case *c, const Graph *g, CaseResult *r)
{
	c->max_batch = 1;
	for (int s = 0; s < c->nsets; s++) {
		c->batch[s] = 1;
		for (int i = 0; i < g->ninputs; i++) {
			const Value *v = g->inputs[i];
			const OnnxData *d = input_data(c, &c->sets[s], v->name);
			if (!d) {
				verdict(r, R_FAIL, "data", "-", "the test data has no value for an input");
				return -1;
			}
			if (v->shape.rank && v->shape.d[0] < 0 && d->shape.rank)
				c->batch[s] = d->shape.d[0] / -v->shape.d[0];
		}
		if (c->batch[s] > c->max_batch)
			c->max_batch = (int)c->batch[s];
	}
	return 0;
}

/* ---- comparison ---- */

/* f32 and f64 stand for each other: the artifact's precision decides which it holds */
static int same_kind(DType a, DType b)
{
	return a == b || ((a == DT_F32 || a == DT_F64) && (b == DT_F32 || b == DT_F64));
}

static double elem(DType dt, const void *p, int64_t i)
{
	switch (dt) {
	case DT_F32: return ((const float *)p)[i];
	case DT_F64: return ((const double *)p)[i];
	case DT_I64: return (double)((const int64_t *)p)[i];
	case DT_I32: return ((const int32_t *)p)[i];
	default: return ((const uint8_t *)p)[i]; /* bool, u8 */
	}
}

static int close_enough(double got, double want, int exact)
{
	if (isnan(want) || isnan(got))
		return isnan(want) && isnan(got);
	if (isinf(want) || exact)
		return got == want;
	return fabs(got - want) <= ATOL + RTOL * fabs(want);
}

static void shape_of(const dlcc_tensor_info *t, int64_t b, Shape *s)
{
	s->rank = t->rank;
	for (int i = 0; i < t->rank; i++)
		s->d[i] = t->dims[i] < 0 ? -t->dims[i] * b : t->dims[i];
}

static int compare(const dlcc_tensor_info *t, int64_t b, const void *got, const OnnxData *want,
		   CaseResult *r)
{
	char msg[600], s1[128], s2[128];
	Shape gs;
	shape_of(t, b, &gs);
	if (!ir_shape_eq(&gs, &want->shape) || !same_kind((DType)t->dtype, want->dt)) {
		snprintf(msg, sizeof msg, "output '%s' is %s %s, expected %s %s", t->name,
			 ir_dt_name((DType)t->dtype), ir_shape_str(&gs, s1, sizeof s1), ir_dt_name(want->dt),
			 ir_shape_str(&want->shape, s2, sizeof s2));
		verdict(r, R_FAIL, "shape", "-", msg);
		return -1;
	}
	int exact = !ir_dt_is_float(want->dt);
	for (int64_t i = 0; i < ir_numel(&gs); i++) {
		double g = elem((DType)t->dtype, got, i), w = elem(want->dt, want->data, i);
		if (close_enough(g, w, exact))
			continue;
		snprintf(msg, sizeof msg, "output '%s'[%lld]: got %.9g, expected %.9g (rtol %g, atol %g)",
			 t->name, (long long)i, g, w, RTOL, ATOL);
		verdict(r, R_FAIL, "mismatch", "-", msg);
		return -1;
	}
	return 0;
}

/* ---- running the artifact ---- */

/* the data in dtype `to`: itself, or converted between f32 and f64 (the artifact's precision) */
static const void *as_dtype(const OnnxData *x, DType to)
{
	if (x->dt == to)
		return x->data;
	if (!same_kind(x->dt, to))
		return NULL;
	int64_t n = ir_numel(&x->shape);
	void *p = malloc(n * ir_dt_size(to) + 8);
	for (int64_t i = 0; i < n; i++)
		if (to == DT_F32)
			((float *)p)[i] = (float)elem(x->dt, x->data, i);
		else
			((double *)p)[i] = elem(x->dt, x->data, i);
	return p;
}

static const OnnxData *expected(const DataSet *d, const char *name, int j)
{
	for (int i = 0; i < d->nout; i++)
		if (!strcmp(d->out[i].name, name))
			return &d->out[i];
	return j < d->nout ? &d->out[j] : NULL;
}

static int run_set(Case *c, Artifact *a, dlcc_model *m, int s, CaseResult *r)
{
	const DataSet *d = &c->sets[s];
	int ni = a->num_inputs(m), no = a->num_outputs(m);
	const void *in[MAXT];
	void *out[MAXT];
	if (ni > MAXT || no > MAXT)
		return verdict(r, R_FAIL, "data", "-", "too many inputs or outputs"), -1;
	for (int i = 0; i < ni; i++) {
		const OnnxData *x = input_data(c, d, a->input(m, i)->name);
		if (!x || !(in[i] = as_dtype(x, (DType)a->input(m, i)->dtype)))
			return verdict(r, R_FAIL, "data", "-", "an input's test data is missing or of another dtype"), -1;
	}
	for (int j = 0; j < no; j++) {
		Shape sh;
		shape_of(a->output(m, j), c->batch[s], &sh);
		out[j] = calloc(ir_numel(&sh) + 1, 8);
	}
	if (a->infer(m, (int)c->batch[s], in, out) < 0)
		return verdict(r, R_FAIL, "runtime", "-", a->error(m)), -1;
	for (int j = 0; j < no; j++) {
		const OnnxData *w = expected(d, a->output(m, j)->name, j);
		if (!w)
			return verdict(r, R_FAIL, "data", "-", "the test data has fewer outputs than the model"), -1;
		if (compare(a->output(m, j), c->batch[s], out[j], w, r) < 0)
			return -1;
	}
	return 0;
}

/* fp64 when the model's inputs or outputs are f64, else fp32 */
static DType precision(const Graph *g)
{
	for (int i = 0; i < g->ninputs; i++)
		if (g->inputs[i]->dt == DT_F64)
			return DT_F64;
	for (int i = 0; i < g->noutputs; i++)
		if (g->outputs[i]->dt == DT_F64)
			return DT_F64;
	return DT_F32;
}

static void run_artifact(Case *c, Graph *g, CaseResult *r)
{
	char err[1024];
	TempSo so;
	CgOpts cg = {NULL, "so", c->max_batch, precision(g), NULL, 0};
	if (temp_so_build(&so, g, NULL, cg, err, sizeof err) < 0) {
		verdict(r, R_FAIL, "codegen", "-", err);
		return;
	}
	Artifact a;
	dlcc_model *m = NULL;
	if (artifact_try_open(&a, so.so, err, sizeof err) < 0 || !(m = a.create(DLCC_DEVICE_CPU, err, sizeof err)))
		verdict(r, R_FAIL, "runtime", "-", err);
	for (int s = 0; m && s < c->nsets; s++)
		if (run_set(c, &a, m, s, r) < 0)
			break;
	if (m)
		a.destroy(m);
	temp_so_remove(&so);
}

void conform_case(const char *dir, CaseResult *r)
{
	static Case c; /* large; one per worker process */
	memset(&c, 0, sizeof c);
	memset(r, 0, sizeof *r);
	c.dir = dir;
	verdict(r, R_PASS, "pass", "-", "");
	int data_ok = read_sets(&c) == 0; /* the model's own refusal, if any, is the better reason */
	Graph *g = import(&c, r);
	if (g && !data_ok) {
		refused(&c, r, c.data_err);
		ir_graph_free(g);
		return;
	}
	if (!g || !(g = lower(&c, g, r)) || find_batch(&c, g, r) < 0) {
		ir_graph_free(g);
		return;
	}
	r->pinned = c.pinned;
	run_artifact(&c, g, r);
	ir_graph_free(g);
}
