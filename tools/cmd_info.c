/*
 * cmd_info.c — `dlcc info MODEL` and `dlcc opt FILE.dlir`.
 *
 * info: parameters, FLOPs per training step (matrix products counted exactly from the training
 * program: 2·M·N·K each, forward and backward; elementwise work as one op per output element),
 * the optimizer and its learning-rate schedule, the memory plan (parameters + optimizer state,
 * workspace, the lower bound, a naive layout), launches per step, and a roofline estimate of
 * the step time on a few GPUs:
 * max(FLOPs / peak, bytes / bandwidth) + launches × launch overhead. `--counts` prints only one
 * Markdown table row of the plan's counts (bench/counts.sh builds the table from such rows).
 *
 * The workspace figures (codegen/cg_plan.c): the lower bound is the fixed head the program uses
 * (inputs, label, the loss slot; the outputs for inference) plus the most temporary bytes live
 * at one schedule position, after in-place sharing and with sizes rounded to 256 bytes; naive
 * is the same head plus one buffer per temporary. Parameters and optimizer state are a block of
 * their own and count in neither.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "tools/cli.h"
#include "tools/compile_opts.h"

static double node_flops(const Node *n, int64_t b)
{
	const OpInfo *oi = &ir_ops[n->op];
	double out = (double)ir_numel_at(&n->out[0]->shape, b);
	/* convolutions: 2 FLOPs per (output or dy element) x (weight taps per output channel) */
	if (n->op == OP_CONV || n->op == OP_CONV_GRAD_INPUT) {
		const Shape *w = &n->in[1]->shape;
		double dy = (double)ir_numel_at(&(n->op == OP_CONV ? n->out[0] : n->in[0])->shape, b);
		return 2.0 * dy * (double)ir_numel(w) / (double)w->d[0];
	}
	if (n->op == OP_CONV_GRAD_WEIGHT) {
		const Shape *w = &n->out[0]->shape;
		return 2.0 * (double)ir_numel_at(&n->in[0]->shape, b) * (double)ir_numel(w) / (double)w->d[0];
	}
	if (oi->kclass != K_GEMM)
		return oi->kclass == K_NONE ? 0 : out;
	const Shape *a = &n->in[0]->shape;
	int64_t k = n->op == OP_GEMM ? ir_dim_at(a->d[ir_attr_i(n, "transA", 0) ? 0 : 1], b)
				     : ir_dim_at(a->d[a->rank - 1], b);
	return 2.0 * out * (double)k;
}

static double node_bytes(const Node *n, int64_t b)
{
	double s = 0;
	if (ir_ops[n->op].kclass == K_NONE)
		return 0;
	for (int i = 0; i < n->nin; i++)
		s += (double)ir_numel_at(&n->in[i]->shape, b) * ir_dt_size(n->in[i]->dt);
	for (int i = 0; i < n->nout; i++)
		s += (double)ir_numel_at(&n->out[i]->shape, b) * ir_dt_size(n->out[i]->dt);
	return s;
}

static void human(double v, const char *unit, char *buf, size_t len)
{
	const char *p[] = {"", "K", "M", "G", "T", "P"};
	int i = 0;
	while (v >= 1000 && i < 5)
		v /= 1000, i++;
	snprintf(buf, len, "%.3g %s%s", v, p[i], unit);
}

static void bytes_str(double v, char *buf, size_t len)
{
	const char *p[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;
	while (v >= 1024 && i < 4)
		v /= 1024, i++;
	snprintf(buf, len, "%.4g %s", v, p[i]);
}

static void estimate(double flops, double bytes, int launches)
{
	static const struct { const char *name; double tflops, tbps; } gpus[] = {
		{"A100-SXM (19.5 TF/s fp32, 2.0 TB/s)", 19.5, 2.0},
		{"H100-SXM (67 TF/s fp32, 3.35 TB/s)", 67, 3.35},
		{"H200 (67 TF/s fp32, 4.8 TB/s)", 67, 4.8},
	};
	printf("estimated step time (roofline + %d launches x 3 us):\n", launches);
	for (size_t i = 0; i < sizeof gpus / sizeof *gpus; i++) {
		double tc = flops / (gpus[i].tflops * 1e12), tm = bytes / (gpus[i].tbps * 1e12);
		double t = (tc > tm ? tc : tm) + launches * 3e-6;
		printf("  %-40s %.3f ms (%s-bound)\n", gpus[i].name, t * 1e3, tc > tm ? "compute" : "memory");
	}
}

static void plan_lines(FILE *f, const char *lead, const CgStats *st, int batch)
{
	char a[64], b[64], c[64], d[64], e[64];
	bytes_str(st->workspace_bytes, a, sizeof a);
	bytes_str(st->peak_live_bytes, b, sizeof b);
	bytes_str(st->fixed_bytes, c, sizeof c);
	bytes_str(st->naive_bytes, d, sizeof d);
	bytes_str(st->traffic_bytes, e, sizeof e);
	fprintf(f, "%sworkspace %s at batch %d = %.3fx the lower bound %s (fixed head %s: inputs, label, "
		   "loss slot or outputs; + the most temporary bytes live at one node); naive %s\n",
		lead, a, batch, (double)st->workspace_bytes / (double)st->peak_live_bytes, b, c, d);
	fprintf(f, "%sper step: %d kernel launches, %d cuBLAS calls, %s read+written, %d outputs "
		   "written in place\n", lead, st->kernels, st->gemms, e, st->inplace);
}

void info_plan_comment(FILE *f, Graph *g, int batch)
{
	CgStats st;
	char err[512];
	if (cg_plan(g, batch, &st, err, sizeof err) < 0)
		return;
	fprintf(f, "# memory plan of this program (fp32):\n");
	plan_lines(f, "#   ", &st, batch);
}

/* | model | launches | cuBLAS | bytes/step | workspace | lower bound | ratio | naive | */
static void counts_row(const char *model, const CgStats *st)
{
	const char *base = strrchr(model, '/');
	char a[64], b[64], c[64], d[64];
	bytes_str(st->traffic_bytes, a, sizeof a);
	bytes_str(st->workspace_bytes, b, sizeof b);
	bytes_str(st->peak_live_bytes, c, sizeof c);
	bytes_str(st->naive_bytes, d, sizeof d);
	printf("| %s | %d | %d | %s | %s | %s | %.3f | %s |\n", base ? base + 1 : model, st->kernels,
	       st->gemms, a, b, c, (double)st->workspace_bytes / (double)st->peak_live_bytes, d);
}

int cmd_info(int argc, char **argv)
{
	CompileOpts o;
	compile_opts_init(&o);
	o.quiet = 1;
	int counts = 0;
	for (int i = 1; i < argc; i++) {
		if (compile_opts_parse(&o, argc, argv, &i))
			continue;
		if (!strcmp(argv[i], "--counts")) {
			counts = 1;
			continue;
		}
		if (argv[i][0] == '-')
			die(EXIT_USAGE, "unknown option '%s' for dlcc info", argv[i]);
		o.model = argv[i];
	}
	if (!o.model)
		die(EXIT_USAGE, "no model given (dlcc info MODEL)");
	compile_opts_finish(&o);
	Graph *infer = NULL, *train = NULL;
	o.train.no_fuse = o.no_fuse;
	compile_front(&o, &infer, &train);
	Graph *g = train ? train : infer;
	int64_t params = 0;
	for (int i = 0; i < g->nparams; i++)
		params += ir_numel(&g->params[i]->shape);
	double flops = 0, bytes = 0;
	for (int i = 0; i < g->nnodes; i++) {
		flops += node_flops(g->nodes[i], o.batch);
		bytes += node_bytes(g->nodes[i], o.batch);
	}
	CgStats st;
	char err[512], a[64], b[64];
	if (cg_plan(g, o.batch, &st, err, sizeof err) < 0)
		die(EXIT_RUNTIME, "%s: %s", o.model, err);
	if (counts) {
		counts_row(o.model, &st);
		ir_graph_free(infer);
		ir_graph_free(train);
		return 0;
	}
	printf("model: %s\n", o.model);
	printf("parameters: %lld in %d tensors\n", (long long)params, g->nparams);
	human(flops, "FLOP", a, sizeof a);
	human(bytes, "B", b, sizeof b);
	printf("%s step at batch %d: %s, %s moved (unfused), %d kernel launches, %d matrix products\n",
	       train ? "training" : "inference", o.batch, a, b, st.kernels, st.gemms);
	if (train) {
		char lr[200];
		printf("optimizer: %s, learning rate %s\n", o.train.optimizer,
		       ir_lr_str(&o.train.schedule, o.train.lr, lr, sizeof lr));
	}
	bytes_str(st.param_bytes, a, sizeof a);
	printf("memory: parameters + optimizer state %s (a block of their own)\n", a);
	plan_lines(stdout, "memory: ", &st, o.batch);
	estimate(flops, bytes, st.kernels + st.gemms);
	ir_graph_free(infer);
	ir_graph_free(train);
	return 0;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die(EXIT_USAGE, "%s: cannot open: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc(n + 1);
	if (fread(s, 1, n, f) != (size_t)n)
		die(EXIT_USAGE, "%s: read error", path);
	s[n] = 0;
	fclose(f);
	return s;
}

int cmd_opt(int argc, char **argv)
{
	const char *file = NULL, *passes = "";
	for (int i = 1; i < argc; i++) {
		const char *v;
		if ((v = arg_value(argc, argv, &i, "--passes")))
			passes = v;
		else if (argv[i][0] == '-' && argv[i][1])
			die(EXIT_USAGE, "unknown option '%s' for dlcc opt", argv[i]);
		else
			file = argv[i];
	}
	if (!file)
		die(EXIT_USAGE, "no input (dlcc opt FILE.dlir --passes a,b)");
	char *text = read_file(file), err[2048];
	Graph *g = ir_parse(text, file, err, sizeof err);
	free(text);
	if (!g) {
		fprintf(stderr, "%s\n", err);
		return EXIT_USAGE;
	}
	char *list = strdup(passes), *save = NULL;
	for (char *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save))
		if (pass_run_named(g, p) < 0)
			die(EXIT_USAGE, "%s: pass %s: %s", file, p, g->err);
	free(list);
	ir_print(stdout, g);
	ir_graph_free(g);
	return 0;
}
