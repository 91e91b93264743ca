/*
 * cmd_check.c — `dlcc check MODEL`: the generated artifact against the reference interpreter.
 *
 * Compiles MODEL like `dlcc MODEL -o X.so` into a temporary directory, then feeds the same
 * seeded random inputs (and labels) to the artifact — on the CPU emulation unless --device says
 * otherwise — and to the interpreter in float64 (in float32 with the same fp16/bf16 roundings
 * under --precision fp16|bf16): inference outputs, the loss of every training
 * step and the parameters after the last step must agree within --rtol/--atol. Integer inputs
 * (token ids) are drawn from [0, R): R from --int-range, else the extent of the Gather axis they
 * index. This is how every
 * end-to-end test shows that the real generated kernels compute what the IR means.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir/interp.h"
#include "tools/cli.h"
#include "tools/compile_opts.h"

typedef struct {
	double rtol, atol, worst;
	int fails;
} Cmp;

/* extra: NULL, or a further absolute allowance per element */
static void compare_d(Cmp *c, const char *what, const double *got, const double *want, int64_t n,
		      const double *extra)
{
	double worst = 0;
	int64_t at = -1;
	for (int64_t i = 0; i < n; i++) {
		double e = fabs(got[i] - want[i]), lim = c->atol + c->rtol * fabs(want[i]) + (extra ? extra[i] : 0);
		double r = e / lim;
		if (!(e <= lim) && at < 0)
			at = i;
		if (r > worst || isnan(got[i]))
			worst = isnan(got[i]) ? INFINITY : r;
	}
	if (worst > c->worst)
		c->worst = worst;
	if (at >= 0) {
		c->fails++;
		printf("MISMATCH %s[%lld]: artifact %.9g, interpreter %.9g\n", what, (long long)at,
		       got[at], want[at]);
	}
}

static void compare_x(Cmp *c, const char *what, const float *got, const double *want, int64_t n,
		      const double *extra)
{
	double *g = malloc((n + 1) * sizeof *g);
	for (int64_t i = 0; i < n; i++)
		g[i] = got[i];
	compare_d(c, what, g, want, n, extra);
	free(g);
}

static void compare(Cmp *c, const char *what, const float *got, const double *want, int64_t n)
{
	compare_x(c, what, got, want, n, NULL);
}

/* --precision fp64: the artifact's float inputs and outputs are float64 (dlcc_tensor_info) */
static int real_f64;

static uint64_t rng_next(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 33;
}

static double rng_normal(uint64_t *s)
{
	double u = (rng_next(s) + 1.0) / 2147483649.0, v = (rng_next(s) + 1.0) / 2147483649.0;
	return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* random data for a graph-level value: normal floats, or class ids in [0, classes) */
static void *random_data(const Value *v, int64_t b, int64_t classes, uint64_t *rng)
{
	int64_t n = ir_numel_at(&v->shape, b);
	if (v->dt == DT_I64) {
		int64_t *p = malloc(8 * n + 8);
		for (int64_t i = 0; i < n; i++)
			p[i] = rng_next(rng) % classes;
		return p;
	}
	if (v->dt != DT_F32)
		die(EXIT_USAGE, "check: input '%s' has dtype %s; only f32 and i64 inputs are generated",
		    v->name, ir_dt_name(v->dt));
	if (real_f64) {
		double *p = malloc(8 * n + 8);
		for (int64_t i = 0; i < n; i++)
			p[i] = (float)rng_normal(rng);
		return p;
	}
	float *p = malloc(4 * n + 4);
	for (int64_t i = 0; i < n; i++)
		p[i] = (float)rng_normal(rng);
	return p;
}

/* the range [0, R) of an integer input: --int-range, else the extent of the axis a Gather
 * indexes with it (an embedding's vocabulary) */
static int64_t int_range(const Graph *g, const Value *v, int64_t given)
{
	if (given > 0)
		return given;
	int64_t r = 0;
	for (int i = 0; i < g->nnodes; i++) {
		const Node *n = g->nodes[i];
		if (n->op == OP_GATHER && n->in[1] == v) {
			int64_t a = n->in[0]->shape.d[ir_attr_i(n, "axis", 0)];
			r = r == 0 || a < r ? a : r;
		}
	}
	if (r <= 0)
		die(EXIT_USAGE, "check: integer input '%s' indexes no Gather; give its range with --int-range R",
		    v->name);
	return r;
}

static double *interp_value(Interp *it, const Value *v, int64_t b)
{
	double *d = malloc(8 * ir_numel_at(&v->shape, b) + 8);
	if (interp_get_f64(it, v, d) < 0)
		die(EXIT_RUNTIME, "interpreter: %s", interp_error(it));
	return d;
}

/* float64, or float32 with fp16/bf16 rounding where the program stores half-precision values
 * (mixed precision: the interpreter then computes what the kernels compute) */
static DType interp_precision;

static Interp *new_interp(Graph *g, int64_t b)
{
	char err[512];
	Interp *it = interp_new(g, interp_precision, b, err, sizeof err);
	if (!it)
		die(EXIT_RUNTIME, "interpreter: %s", err);
	return it;
}

static void check_infer(Cmp *c, Artifact *a, dlcc_model *m, Graph *g, void **in, int64_t b)
{
	Interp *it = new_interp(g, b);
	for (int i = 0; i < g->ninputs; i++)
		interp_set(it, g->inputs[i], in[i], real_f64 && g->inputs[i]->dt == DT_F32 ? DT_F64 : g->inputs[i]->dt);
	if (interp_run(it, 0) < 0)
		die(EXIT_RUNTIME, "interpreter: %s", interp_error(it));
	void **out = calloc(g->noutputs, sizeof *out);
	for (int i = 0; i < g->noutputs; i++)
		out[i] = malloc(8 * ir_numel_at(&g->outputs[i]->shape, b) + 8);
	if (a->infer(m, (int)b, (const void *const *)in, out) < 0)
		die(EXIT_RUNTIME, "artifact: %s", a->error(m));
	for (int i = 0; i < g->noutputs; i++) {
		double *want = interp_value(it, g->outputs[i], b);
		char what[256];
		snprintf(what, sizeof what, "output %s", g->outputs[i]->name);
		if (a->output(m, i)->dtype == DLCC_F64)
			compare_d(c, what, out[i], want, ir_numel_at(&g->outputs[i]->shape, b), NULL);
		else
			compare(c, what, out[i], want, ir_numel_at(&g->outputs[i]->shape, b));
		free(want);
		free(out[i]);
	}
	free(out);
	interp_free(it);
}

/* Adam and AdamW move an element by about lr a step whatever the size of its gradient, so where
 * the gradient is rounding noise — its RMS (the root of exp_avg_sq) below adam_noise of the
 * largest in its tensor: 16 units of the kernels' rounding (2^-24 in fp32, 2^-11 fp16, 2^-8
 * bf16, 2^-53 fp64); an exactly zero true gradient, as attention's key bias has (softmax
 * ignores a constant per row) — the sign of each step is noise too, on both sides: there the
 * check allows 2·lr a step. NULL for other optimizers and elements with a real gradient. */
static double adam_noise = 0x1p-20;
static double *adam_allowance(Graph *g, Interp *it, const Value *p, int64_t b, int64_t n, int steps)
{
	const Value *v = NULL;
	const Node *u = NULL;
	for (int i = 0; i < g->nstates; i++)
		if (g->states[i]->param == p && g->states[i]->slot && !strcmp(g->states[i]->slot, "exp_avg_sq"))
			v = g->states[i];
	for (int i = 0; i < g->nnodes; i++)
		if (g->nodes[i]->op == OP_ADAM_UPDATE && g->nodes[i]->in[0] == p)
			u = g->nodes[i];
	if (!v || !u)
		return NULL;
	double lr = ir_attr_f(u, "lr", 0), mx = 0, *sq = interp_value(it, v, b), *extra = calloc(n + 1, sizeof *extra);
	for (int64_t i = 0; i < n; i++)
		mx = fmax(mx, sqrt(fmax(sq[i], 0)));
	for (int64_t i = 0; i < n; i++)
		extra[i] = sqrt(fmax(sq[i], 0)) <= adam_noise * mx ? 2 * lr * steps : 0;
	free(sq);
	return extra;
}

static void check_train(Cmp *c, Artifact *a, dlcc_model *m, Graph *g, void **in, void *label,
			int64_t b, int steps)
{
	Interp *it = new_interp(g, b);
	for (int i = 0; i < g->ninputs; i++)
		interp_set(it, g->inputs[i], in[i], real_f64 && g->inputs[i]->dt == DT_F32 ? DT_F64 : g->inputs[i]->dt);
	if (g->label)
		interp_set(it, g->label, label, g->label->dt);
	const Value *ls = NULL; /* fp16 loss scaling: the state k of the scale */
	for (int i = 0; i < g->nstates; i++)
		if (!g->states[i]->param && g->states[i]->slot && !strcmp(g->states[i]->slot, "loss_scale_log2"))
			ls = g->states[i];
	double k_prev = 0;
	int64_t taken = 0; /* optimizer steps taken: a skipped step does not count, as in the runtime */
	for (int s = 1; s <= steps; s++) {
		float loss;
		if (interp_run(it, taken + 1) < 0)
			die(EXIT_RUNTIME, "interpreter: %s", interp_error(it));
		double k = 0;
		if (ls)
			interp_get_f64(it, ls, &k);
		taken += !(ls && k < k_prev);
		k_prev = k;
		if (a->train_step(m, (int)b, (const void *const *)in, label, &loss) < 0)
			die(EXIT_RUNTIME, "artifact: %s", a->error(m));
		double want;
		interp_get_f64(it, g->loss, &want);
		char what[64];
		snprintf(what, sizeof what, "loss at step %d", s);
		compare(c, what, &loss, &want, 1);
	}
	for (int i = 0; i < g->nparams; i++) {
		int64_t n = ir_numel(&g->params[i]->shape);
		float *got = malloc(4 * n);
		double *want = interp_value(it, g->params[i], b);
		int found = 0;
		for (int k = 0; k < a->num_params(m); k++)
			if (!strcmp(a->param(m, k)->name, g->params[i]->name))
				found = a->get_param(m, k, got) == 0;
		if (!found)
			die(EXIT_RUNTIME, "artifact has no parameter '%s'", g->params[i]->name);
		char what[256];
		snprintf(what, sizeof what, "parameter %s after %d steps", g->params[i]->name, steps);
		double *extra = adam_allowance(g, it, g->params[i], b, n, steps);
		compare_x(c, what, got, want, n, extra);
		free(extra);
		free(got);
		free(want);
	}
	interp_free(it);
}

static void *labels_for(Graph *g, int64_t b, uint64_t *rng)
{
	if (!g->label)
		return NULL;
	const Shape *o = &g->outputs[0]->shape;
	return random_data(g->label, b, o->rank ? ir_dim_at(o->d[o->rank - 1], b) : 1, rng);
}

int cmd_check(int argc, char **argv)
{
	CompileOpts o;
	Cmp c = {1e-4, 1e-5, 0, 0};
	int steps = 3, tol_set = 0;
	int64_t b = 4, irange = 0;
	dlcc_device dev = DLCC_DEVICE_CPU;
	compile_opts_init(&o);
	o.quiet = 1;
	o.batch = 8;
	for (int i = 1; i < argc; i++) {
		const char *v;
		if (compile_opts_parse(&o, argc, argv, &i)) continue;
		else if ((v = arg_value(argc, argv, &i, "--steps"))) steps = arg_long("--steps", v, 0, 100000);
		else if ((v = arg_value(argc, argv, &i, "--run-batch"))) b = arg_long("--run-batch", v, 1, 1 << 20);
		else if ((v = arg_value(argc, argv, &i, "--rtol"))) c.rtol = arg_double("--rtol", v), tol_set = 1;
		else if ((v = arg_value(argc, argv, &i, "--int-range"))) irange = arg_long("--int-range", v, 1, 1L << 40);
		else if ((v = arg_value(argc, argv, &i, "--atol"))) c.atol = arg_double("--atol", v), tol_set = 1;
		else if ((v = arg_value(argc, argv, &i, "--device"))) dev = arg_device(v);
		else if (argv[i][0] == '-') die(EXIT_USAGE, "unknown option '%s' for dlcc check", argv[i]);
		else o.model = argv[i];
	}
	if (!o.model)
		die(EXIT_USAGE, "no model given (dlcc check MODEL)");
	if (b > o.batch)
		die(EXIT_USAGE, "--run-batch %lld is larger than --batch %d", (long long)b, o.batch);
	compile_opts_finish(&o);
	interp_precision = o.train.half != DT_F32 ? DT_F32 : DT_F64;
	real_f64 = compile_precision(&o) == DT_F64;
	adam_noise = 16 * (o.train.half == DT_F16 ? 0x1p-11 : o.train.half == DT_BF16 ? 0x1p-8 : real_f64 ? 0x1p-53 : 0x1p-24);
	/* Under mixed precision the interpreter and the kernels round the same products to half
	 * precision but accumulate them in a different order, so a value close to a rounding boundary
	 * can round to neighbouring halves: one fp16 ulp is 2^-11 of the value, one bf16 ulp 2^-8. */
	if (!tol_set && o.train.half == DT_F16)
		c.rtol = 5e-3, c.atol = 5e-4;
	if (!tol_set && o.train.half == DT_BF16)
		c.rtol = 3e-2, c.atol = 3e-3;
	Graph *infer = NULL, *train = NULL;
	o.train.no_fuse = o.no_fuse;
	compile_front(&o, &infer, &train);
	char err[1024];
	TempSo so;
	CgOpts cg = {NULL, "so", o.batch, compile_precision(&o), o.arch, o.verbose};
	if (temp_so_build(&so, infer, train, cg, err, sizeof err) < 0)
		die(EXIT_RUNTIME, "%s: %s", o.model, err);
	Artifact a;
	artifact_open(&a, so.so);
	dlcc_model *m = artifact_create(&a, dev);
	uint64_t rng = 42;
	void **in = calloc(infer->ninputs, sizeof *in);
	for (int i = 0; i < infer->ninputs; i++)
		in[i] = random_data(infer->inputs[i], b,
				    infer->inputs[i]->dt == DT_I64 ? int_range(infer, infer->inputs[i], irange) : 1, &rng);
	check_infer(&c, &a, m, infer, in, b);
	void *labels = train && steps ? labels_for(train, b, &rng) : NULL;
	if (labels)
		check_train(&c, &a, m, train, in, labels, b, steps);
	printf("check %s on %s: %s (worst error %.3g of tolerance; batch %lld, %d training steps)\n",
	       o.model, a.device_name(m), c.fails ? "FAILED" : "ok", c.worst, (long long)b,
	       train ? steps : 0);
	a.destroy(m);
	temp_so_remove(&so);
	for (int i = 0; i < infer->ninputs; i++)
		free(in[i]);
	free(in);
	free(labels);
	ir_graph_free(infer);
	if (train)
		ir_graph_free(train);
	return c.fails ? EXIT_RUNTIME : 0;
}
