/*
 * cmd_compile.c — `dlcc MODEL -o OUT`: load, lower to the inference and training programs,
 * generate the artifact. Also the option parsing shared with `info` and `check`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/dsl.h"
#include "frontend/onnx.h"
#include "passes/pipeline.h"
#include "tools/cli.h"
#include "tools/compile_opts.h"

void compile_opts_init(CompileOpts *o)
{
	memset(o, 0, sizeof *o);
	o->emit = "so";
	o->mode = "train";
	/* precision, batch and optimizer stay unset until compile_opts_finish, so that a .dl
	 * model's training section can fill in what the command line did not say */
}

static const char *one_of(const char *opt, const char *v, const char *const *allowed)
{
	for (int i = 0; allowed[i]; i++)
		if (!strcmp(v, allowed[i]))
			return v;
	die(EXIT_USAGE, "%s: '%s' is not supported", opt, v);
}

/* --schedule constant|step|cosine, --warmup W, --step-size S, --gamma G, --schedule-steps T,
 * --min-lr X: each sets one field of o->sched and its SCHED_* bit */
static int sched_parse(CompileOpts *o, int argc, char **argv, int *i)
{
	const long most = 1L << 40;
	LrSchedule *s = &o->sched;
	const char *v;
	int bit = 0;
	if ((v = arg_value(argc, argv, i, "--schedule"))) {
		if (ir_lr_kind(v) < 0)
			die(EXIT_USAGE, "--schedule: '%s' is not a schedule (constant, step or cosine)", v);
		s->kind = (LrKind)ir_lr_kind(v), bit = SCHED_KIND;
	} else if ((v = arg_value(argc, argv, i, "--warmup"))) s->warmup = arg_long("--warmup", v, 0, most), bit = SCHED_WARMUP;
	else if ((v = arg_value(argc, argv, i, "--step-size"))) s->step_size = arg_long("--step-size", v, 1, most), bit = SCHED_STEP_SIZE;
	else if ((v = arg_value(argc, argv, i, "--schedule-steps"))) s->steps = arg_long("--schedule-steps", v, 1, most), bit = SCHED_STEPS;
	else if ((v = arg_value(argc, argv, i, "--gamma"))) {
		s->gamma = arg_double("--gamma", v), bit = SCHED_GAMMA;
		if (!(s->gamma > 0 && s->gamma <= 1))
			die(EXIT_USAGE, "--gamma: '%s' is not in (0, 1]", v);
	} else if ((v = arg_value(argc, argv, i, "--min-lr"))) {
		s->min_lr = arg_double("--min-lr", v), bit = SCHED_MIN_LR;
		if (!(s->min_lr >= 0 && s->min_lr < 1e6))
			die(EXIT_USAGE, "--min-lr: '%s' is not in [0, 1e6)", v);
	}
	o->sched_set |= bit;
	return bit != 0;
}

int compile_opts_parse(CompileOpts *o, int argc, char **argv, int *i)
{
	static const char *const losses[] = {"cross_entropy", "mse", "none", NULL};
	static const char *const opts[] = {"sgd", "momentum", "adam", "adamw", NULL};
	static const char *const emits[] = {"so", "a", "cuda", "ptx", "ir", "dot", "dl", NULL};
	static const char *const modes[] = {"train", "infer", NULL};
	static const char *const precs[] = {"fp32", "fp16", "bf16", "fp64", NULL};
	static const char *const convs[] = {"auto", "direct", "im2col", NULL};
	const char *v;
	if ((v = arg_value(argc, argv, i, "-o"))) o->out = v;
	else if ((v = arg_value(argc, argv, i, "--mode"))) o->mode = one_of("--mode", v, modes);
	else if ((v = arg_value(argc, argv, i, "--loss"))) o->train.loss = one_of("--loss", v, losses);
	else if ((v = arg_value(argc, argv, i, "--optimizer"))) o->train.optimizer = one_of("--optimizer", v, opts);
	else if ((v = arg_value(argc, argv, i, "--lr"))) o->train.lr = arg_double("--lr", v), o->lr_set = 1;
	else if ((v = arg_value(argc, argv, i, "--momentum"))) o->train.momentum = arg_double("--momentum", v), o->momentum_set = 1;
	else if ((v = arg_value(argc, argv, i, "--weight-decay"))) o->train.weight_decay = arg_double("--weight-decay", v), o->wd_set = 1;
	else if ((v = arg_value(argc, argv, i, "--beta1"))) o->train.beta1 = arg_double("--beta1", v);
	else if ((v = arg_value(argc, argv, i, "--beta2"))) o->train.beta2 = arg_double("--beta2", v);
	else if ((v = arg_value(argc, argv, i, "--eps"))) o->train.eps = arg_double("--eps", v);
	else if (sched_parse(o, argc, argv, i)) return 1;
	else if ((v = arg_value(argc, argv, i, "--precision"))) o->precision = one_of("--precision", v, precs);
	else if ((v = arg_value(argc, argv, i, "--loss-scale"))) o->loss_scale = arg_double("--loss-scale", v);
	else if ((v = arg_value(argc, argv, i, "--loss-scale-window")))
		o->loss_scale_window = arg_long("--loss-scale-window", v, 1, 1 << 30);
	else if ((v = arg_value(argc, argv, i, "--conv"))) o->conv = one_of("--conv", v, convs);
	else if ((v = arg_value(argc, argv, i, "--batch"))) o->batch = arg_long("--batch", v, 1, 1 << 20);
	else if ((v = arg_value(argc, argv, i, "--emit"))) o->emit = one_of("--emit", v, emits);
	else if ((v = arg_value(argc, argv, i, "--dump-ir"))) o->dump = v;
	else if ((v = arg_value(argc, argv, i, "--arch"))) o->arch = v;
	else if (!strcmp(argv[*i], "-v") || !strcmp(argv[*i], "--verbose")) o->verbose = 1;
	else if (!strcmp(argv[*i], "--no-fuse")) o->no_fuse = 1;
	else return 0;
	return 1;
}

static int is_dl(const char *path)
{
	const char *dot = path ? strrchr(path, '.') : NULL;
	return dot && !strcmp(dot, ".dl");
}

/* The `train { }` section of a .dl model, for every setting the command line left unset; its
 * schedule goes to *sched. */
static void apply_dl_train(CompileOpts *o, LrSchedule *sched)
{
	DslTrain t;
	char err[1024];
	Graph *g = dsl_load(o->model, &t, err, sizeof err);
	if (!g)
		die(EXIT_USAGE, "%s", err);
	ir_graph_free(g);
	if (t.loss_set && !o->train.loss) o->train.loss = t.loss;
	if (t.optimizer_set && !o->train.optimizer) o->train.optimizer = t.optimizer;
	if (t.lr_set && !o->lr_set) o->train.lr = t.lr, o->lr_set = 1;
	if (t.momentum_set && !o->momentum_set) o->train.momentum = t.momentum, o->momentum_set = 1;
	if (t.weight_decay_set && !o->wd_set) o->train.weight_decay = t.weight_decay, o->wd_set = 1;
	if ((t.betas_set & 1) && !o->train.beta1) o->train.beta1 = t.beta1;
	if ((t.betas_set & 2) && !o->train.beta2) o->train.beta2 = t.beta2;
	if (t.eps_set && !o->train.eps) o->train.eps = t.eps;
	if (t.batch_set && !o->batch) o->batch = (int)t.batch;
	if (t.precision_set && !o->precision)
		o->precision = t.precision;
	if (t.schedule_set)
		*sched = t.schedule;
}

/* The schedule flags over the file's schedule s: --schedule with another kind starts that
 * kind afresh (keeping the warm-up); each parameter flag must belong to the resulting kind. */
static void apply_schedule_flags(const CompileOpts *o, LrSchedule *s)
{
	static const struct { int bit; const char *flag; LrKind kind; } own[] = {
		{SCHED_STEP_SIZE, "--step-size", LR_STEP}, {SCHED_GAMMA, "--gamma", LR_STEP},
		{SCHED_STEPS, "--schedule-steps", LR_COSINE}, {SCHED_MIN_LR, "--min-lr", LR_COSINE}};
	const LrSchedule *c = &o->sched;
	if ((o->sched_set & SCHED_KIND) && c->kind != s->kind) {
		int64_t w = s->warmup;
		ir_lr_default(s);
		s->kind = c->kind, s->warmup = w;
	}
	for (size_t i = 0; i < sizeof own / sizeof *own; i++)
		if ((o->sched_set & own[i].bit) && s->kind != own[i].kind)
			die(EXIT_USAGE, "%s applies to --schedule %s, not %s", own[i].flag,
			    ir_lr_kind_name(own[i].kind), ir_lr_kind_name(s->kind));
	if (o->sched_set & SCHED_WARMUP) s->warmup = c->warmup;
	if (o->sched_set & SCHED_STEP_SIZE) s->step_size = c->step_size;
	if (o->sched_set & SCHED_GAMMA) s->gamma = c->gamma;
	if (o->sched_set & SCHED_STEPS) s->steps = c->steps;
	if (o->sched_set & SCHED_MIN_LR) s->min_lr = c->min_lr;
	if (s->kind == LR_STEP && !s->step_size)
		die(EXIT_USAGE, "--schedule step needs --step-size S (and --gamma G, default 0.1)");
	if (s->kind == LR_COSINE && !s->steps)
		die(EXIT_USAGE, "--schedule cosine needs --schedule-steps T (and --min-lr X, default 0)");
	DLCC_ASSERT(!ir_lr_invalid(s));
}

/* --conv, else DLCC_CONV, else auto: which convolutions become im2col + GEMM (passes/im2col.c) */
static int conv_path(const char *flag)
{
	const char *v = flag ? flag : getenv("DLCC_CONV");
	if (!v || !*v || !strcmp(v, "auto"))
		return IM2COL_AUTO;
	if (!strcmp(v, "direct"))
		return IM2COL_NONE;
	if (!strcmp(v, "im2col"))
		return IM2COL_ALL;
	die(EXIT_USAGE, "DLCC_CONV=%s: expected auto, direct or im2col", v);
}

void compile_opts_finish(CompileOpts *o)
{
	TrainOpts d;
	LrSchedule sched;
	ir_lr_default(&sched);
	if (is_dl(o->model))
		apply_dl_train(o, &sched);
	apply_schedule_flags(o, &sched);
	if (!o->precision)
		o->precision = "fp32";
	if (!o->batch)
		o->batch = 256;
	train_opts_default(&d, o->train.optimizer);
	d.loss = o->train.loss;
	if (o->lr_set) d.lr = o->train.lr;
	if (o->momentum_set) d.momentum = o->train.momentum;
	if (o->wd_set) d.weight_decay = o->train.weight_decay;
	if (o->train.beta1) d.beta1 = o->train.beta1;
	if (o->train.beta2) d.beta2 = o->train.beta2;
	if (o->train.eps) d.eps = o->train.eps;
	d.schedule = sched;
	if (!strcmp(d.optimizer, "momentum") && d.momentum == 0)
		die(EXIT_USAGE, "--optimizer momentum needs --momentum > 0");
	d.conv = conv_path(o->conv);
	d.half = !strcmp(o->precision, "fp16") ? DT_F16 : !strcmp(o->precision, "bf16") ? DT_BF16 : DT_F32;
	if ((o->loss_scale || o->loss_scale_window) && d.half != DT_F16)
		die(EXIT_USAGE, "--loss-scale and --loss-scale-window apply to --precision fp16 only");
	if (o->loss_scale && !(o->loss_scale >= 1 && o->loss_scale <= 1e30))
		die(EXIT_USAGE, "--loss-scale %g: the initial scale must be in [1, 1e30]", o->loss_scale);
	if (d.half == DT_F16) { /* torch.cuda.amp.GradScaler's defaults */
		d.loss_scale = o->loss_scale ? o->loss_scale : 65536.0;
		d.loss_scale_window = o->loss_scale_window ? o->loss_scale_window : 2000;
	}
	o->train = d;
}

/* the compute type R of the kernels: fp32 also under mixed precision (fp16/bf16 products) */
DType compile_precision(const CompileOpts *o)
{
	return !strcmp(o->precision, "fp64") ? DT_F64 : DT_F32;
}

static Graph *load_model(const CompileOpts *o)
{
	char err[1024];
	Graph *g = is_dl(o->model) ? dsl_load(o->model, NULL, err, sizeof err)
				   : onnx_load(o->model, o->batch, err, sizeof err);
	if (!g)
		die(EXIT_USAGE, "%s", err);
	return g;
}

/* The model's first output decides the default loss: a scalar is already a loss. */
static void choose_loss(CompileOpts *o, Graph *g)
{
	if (o->train.loss) {
		note("loss: %s (--loss)", o->train.loss);
		return;
	}
	if (g->noutputs && g->outputs[0]->shape.rank == 0) {
		o->train.loss = "none";
		note("loss: none (the model's first output '%s' is a scalar)", g->outputs[0]->name);
	} else {
		o->train.loss = "cross_entropy";
		if (!o->quiet)
			note("loss: cross_entropy on output '%s' (default; --loss mse|none to change)",
			     g->noutputs ? g->outputs[0]->name : "?");
	}
}

void compile_front(CompileOpts *o, Graph **infer, Graph **train)
{
	Graph *g = load_model(o);
	int training = !strcmp(o->mode, "train");
	if (training)
		choose_loss(o, g);
	if (training && !o->quiet && ir_lr_varies(&o->train.schedule)) {
		char b[200];
		note("learning rate: %s", ir_lr_str(&o->train.schedule, o->train.lr, b, sizeof b));
	}
	if (pass_pipeline(g, &o->train, training, infer, train, o->dump, stderr) < 0)
		die(EXIT_USAGE, "%s: %s", o->model, g->err);
	ir_graph_free(g);
}

static void emit_ir(const CompileOpts *o, Graph *g)
{
	FILE *f = o->out ? fopen(o->out, "w") : stdout;
	if (!f)
		die(EXIT_USAGE, "%s: cannot write", o->out);
	if (!strcmp(o->emit, "dot"))
		ir_print_dot(f, g);
	else if (!strcmp(o->emit, "dl"))
		ir_print_dl(f, g);
	else
		ir_print(f, g), info_plan_comment(f, g, o->batch);
	if (f != stdout)
		fclose(f);
}

int cmd_compile(int argc, char **argv)
{
	CompileOpts o;
	compile_opts_init(&o);
	for (int i = 1; i < argc; i++) {
		if (compile_opts_parse(&o, argc, argv, &i))
			continue;
		if (argv[i][0] == '-' && argv[i][1])
			die(EXIT_USAGE, "unknown option '%s' (dlcc --help lists them)", argv[i]);
		if (o.model)
			die(EXIT_USAGE, "unexpected argument '%s': one model at a time", argv[i]);
		o.model = argv[i];
	}
	if (!o.model)
		die(EXIT_USAGE, "no model given (dlcc --help)");
	int text = !strcmp(o.emit, "ir") || !strcmp(o.emit, "dot") || !strcmp(o.emit, "dl");
	if (!o.out && !text)
		die(EXIT_USAGE, "-o OUT is required for --emit %s", o.emit);
	compile_opts_finish(&o);
	o.train.no_fuse = o.no_fuse || !strcmp(o.emit, "dl");
	Graph *infer = NULL, *train = NULL;
	compile_front(&o, &infer, &train);
	if (text) {
		emit_ir(&o, train && strcmp(o.emit, "dl") ? train : infer);
	} else {
		CgOpts cg = {o.out, o.emit, o.batch, compile_precision(&o), o.arch, o.verbose};
		char err[1024];
		if (cg_build(infer, train, &cg, err, sizeof err) < 0)
			die(EXIT_RUNTIME, "%s: %s", o.model, err);
	}
	ir_graph_free(infer);
	ir_graph_free(train);
	return 0;
}
