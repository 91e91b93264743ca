/*
 * cmd_train.c — `dlcc train` and `dlcc run`: drive an artifact through its public API.
 *
 * train: batches of --batch samples, shuffled each epoch by a seeded generator (or in order
 * with --no-shuffle: step k uses samples [kB, (k+1)B), wrapping to a new epoch at the end);
 * the last batch of an epoch may be smaller. One progress line per epoch; --log writes
 * `step,loss`; --eval-* reports held-out accuracy (cross_entropy) or mean squared error.
 * run: inference over all samples in chunks of the artifact's planned batch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tools/data.h"

typedef struct {
	const char *artifact, *label, *log, *save, *load, *eval_label;
	char *inputs[16], *eval_inputs[16];
	int ninputs, neval, batch, no_shuffle;
	long steps, epochs;
	unsigned long long seed;
	dlcc_device device;
} TrainArgs;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void permute(int64_t *idx, int64_t n, int shuffle, uint64_t *rng)
{
	for (int64_t i = 0; i < n; i++)
		idx[i] = i;
	for (int64_t i = n - 1; shuffle && i > 0; i--) {
		int64_t j = splitmix(rng) % (uint64_t)(i + 1), t = idx[i];
		idx[i] = idx[j];
		idx[j] = t;
	}
}

static void push_spec(char **list, int *n, char *v)
{
	if (*n >= 16)
		die(EXIT_USAGE, "too many --input arguments");
	list[(*n)++] = v;
}

static void parse_train(TrainArgs *t, int argc, char **argv, int train)
{
	memset(t, 0, sizeof *t);
	t->seed = 0;
	for (int i = 1; i < argc; i++) {
		const char *v;
		if ((v = arg_value(argc, argv, &i, "--input"))) push_spec(t->inputs, &t->ninputs, (char *)v);
		else if ((v = arg_value(argc, argv, &i, "--device"))) t->device = arg_device(v);
		else if ((v = arg_value(argc, argv, &i, "--load"))) t->load = v;
		else if ((v = arg_value(argc, argv, &i, "--batch"))) t->batch = arg_long("--batch", v, 1, 1 << 24);
		else if (!train && (v = arg_value(argc, argv, &i, "--output-dir"))) t->save = v;
		else if (train && (v = arg_value(argc, argv, &i, "--label"))) t->label = v;
		else if (train && (v = arg_value(argc, argv, &i, "--steps"))) t->steps = arg_long("--steps", v, 1, 1L << 40);
		else if (train && (v = arg_value(argc, argv, &i, "--epochs"))) t->epochs = arg_long("--epochs", v, 1, 1L << 30);
		else if (train && (v = arg_value(argc, argv, &i, "--log"))) t->log = v;
		else if (train && (v = arg_value(argc, argv, &i, "--save"))) t->save = v;
		else if (train && (v = arg_value(argc, argv, &i, "--seed"))) t->seed = arg_long("--seed", v, 0, 1L << 62);
		else if (train && (v = arg_value(argc, argv, &i, "--eval-input"))) push_spec(t->eval_inputs, &t->neval, (char *)v);
		else if (train && (v = arg_value(argc, argv, &i, "--eval-label"))) t->eval_label = v;
		else if (train && !strcmp(argv[i], "--no-shuffle")) t->no_shuffle = 1;
		else if (argv[i][0] == '-') die(EXIT_USAGE, "unknown option '%s' for dlcc %s", argv[i], train ? "train" : "run");
		else if (t->artifact) die(EXIT_USAGE, "unexpected argument '%s'", argv[i]);
		else t->artifact = argv[i];
	}
	if (!t->artifact)
		die(EXIT_USAGE, "no artifact given (dlcc %s OUT.so ...)", train ? "train" : "run");
	if (!t->ninputs)
		die(EXIT_USAGE, "no --input NAME=FILE.npy given");
	if (train && !(t->steps || t->epochs))
		die(EXIT_USAGE, "give --steps S or --epochs E");
	if (train && t->steps && t->epochs)
		die(EXIT_USAGE, "give --steps or --epochs, not both");
	if (!train && !t->save)
		die(EXIT_USAGE, "--output-dir DIR is required");
	if (!!t->eval_label != !!t->neval)
		die(EXIT_USAGE, "--eval-input and --eval-label go together");
}

/* Staging buffers for one batch: one per input plus the label. */
typedef struct {
	void **in;
	void *label;
} Batch;

static void batch_alloc(Batch *b, const DataSet *d, const DataArray *label, int size)
{
	b->in = calloc(d->n, sizeof *b->in);
	for (int i = 0; i < d->n; i++)
		b->in[i] = malloc(d->arr[i].row_bytes * size + 1);
	b->label = label ? malloc(label->row_bytes * size + 1) : NULL;
}

static void batch_free(Batch *b, int n)
{
	for (int i = 0; i < n; i++)
		free(b->in[i]);
	free(b->in);
	free(b->label);
}

static void open_model(const TrainArgs *t, Artifact *a, dlcc_model **m, int train)
{
	artifact_open(a, t->artifact);
	*m = artifact_create(a, t->device);
	if (train && !a->has_training(*m))
		die(EXIT_USAGE, "%s: built with --mode infer; recompile with --mode train", t->artifact);
	if (t->load && a->load(*m, t->load) < 0)
		die(EXIT_USAGE, "%s", a->error(*m));
}

static int argmax(const float *v, int64_t c)
{
	int64_t best = 0;
	for (int64_t i = 1; i < c; i++)
		if (v[i] > v[best])
			best = i;
	return (int)best;
}

/* Held-out figure: accuracy in % for cross_entropy, mean squared error for mse. */
static double evaluate(const Artifact *a, dlcc_model *m, const DataSet *d, const DataArray *label)
{
	const dlcc_tensor_info *o = a->output(m, 0);
	int mb = a->max_batch(m), ce = !strcmp(a->loss_name(m), "cross_entropy");
	int64_t per = 1, c = o->dims[o->rank - 1], hits = 0;
	double se = 0;
	for (int i = 0; i < o->rank; i++)
		per *= o->dims[i] < 0 ? -o->dims[i] : o->dims[i];
	float *out = malloc(sizeof(float) * per * mb);
	const void **in = calloc(d->n, sizeof *in);
	for (int64_t s = 0; s < d->samples; s += mb) {
		int b = d->samples - s < mb ? (int)(d->samples - s) : mb;
		for (int i = 0; i < d->n; i++)
			in[i] = (char *)d->arr[i].a.data + s * d->arr[i].row_bytes;
		if (a->infer(m, b, in, (void *const *)&out) < 0)
			die(EXIT_RUNTIME, "%s", a->error(m));
		const char *lab = (const char *)label->a.data + s * label->row_bytes;
		for (int64_t r = 0; r < per * b / c; r++) {
			if (ce)
				hits += argmax(out + r * c, c) == ((const int64_t *)lab)[r];
			else
				for (int64_t k = 0; k < c; k++) {
					double e = out[r * c + k] - ((const float *)lab)[r * c + k];
					se += e * e;
				}
		}
	}
	free(out);
	free(in);
	int64_t rows = per * d->samples / c;
	return ce ? 100.0 * hits / rows : se / (rows * c);
}

static void check_eval_output(const Artifact *a, dlcc_model *m)
{
	const dlcc_tensor_info *o = a->output(m, 0);
	if (o->dtype != DLCC_F32)
		die(EXIT_USAGE, "--eval-input: output '%s' is not float32", o->name);
}

static FILE *open_log(const char *path)
{
	if (!path)
		return NULL;
	FILE *f = fopen(path, "w");
	if (!f)
		die(EXIT_USAGE, "%s: cannot write: %s", path, strerror(errno));
	fprintf(f, "step,loss\n");
	return f;
}

int cmd_train(int argc, char **argv)
{
	TrainArgs t;
	Artifact a;
	dlcc_model *m;
	DataSet d, ev = {0};
	DataArray label = {0}, evlabel = {0};
	parse_train(&t, argc, argv, 1);
	open_model(&t, &a, &m, 1);
	if (!t.batch)
		t.batch = a.max_batch(m) < 64 ? a.max_batch(m) : 64;
	if (t.batch > a.max_batch(m))
		die(EXIT_USAGE, "--batch %d is larger than the batch %s was planned for (%d): recompile with --batch %d",
		    t.batch, t.artifact, a.max_batch(m), t.batch);
	data_inputs(&d, &a, m, t.ninputs, t.inputs);
	if (a.label(m) && !t.label)
		die(EXIT_USAGE, "--label FILE.npy is required (loss %s)", a.loss_name(m));
	if (t.label)
		data_label(&label, &a, m, t.label, d.samples);
	if (t.neval) {
		check_eval_output(&a, m);
		data_inputs(&ev, &a, m, t.neval, t.eval_inputs);
		data_label(&evlabel, &a, m, t.eval_label, ev.samples);
	}
	if (d.samples < 1)
		die(EXIT_USAGE, "%s: no samples", d.arr[0].path);
	printf("dlcc: training %s on %s: %lld samples, batch %d, loss %s, optimizer %s\n", t.artifact,
	       a.device_name(m), (long long)d.samples, t.batch, a.loss_name(m), a.optimizer_name(m));
	FILE *log = open_log(t.log);
	int64_t per_epoch = (d.samples + t.batch - 1) / t.batch;
	int64_t total = t.steps ? t.steps : t.epochs * per_epoch, step = 0;
	int64_t *idx = malloc(sizeof *idx * d.samples);
	uint64_t rng = t.seed;
	Batch b;
	batch_alloc(&b, &d, t.label ? &label : NULL, t.batch);
	double t0 = now();
	for (int64_t epoch = 0; step < total; epoch++) {
		double sum = 0, te = now();
		int64_t cnt = 0;
		permute(idx, d.samples, !t.no_shuffle, &rng);
		for (int64_t s = 0; s < d.samples && step < total; s += t.batch, step++, cnt++) {
			int bs = d.samples - s < t.batch ? (int)(d.samples - s) : t.batch;
			for (int i = 0; i < d.n; i++)
				data_gather(&d.arr[i], idx + s, bs, b.in[i]);
			if (b.label)
				data_gather(&label, idx + s, bs, b.label);
			float loss;
			if (a.train_step(m, bs, (const void *const *)b.in, b.label, &loss) < 0)
				die(EXIT_RUNTIME, "step %lld: %s", (long long)step, a.error(m));
			sum += loss;
			if (log)
				fprintf(log, "%lld,%.9g\n", (long long)step, loss);
		}
		printf("epoch %lld: %lld steps, mean loss %.6f", (long long)epoch + 1, (long long)cnt, sum / cnt);
		if (t.neval)
			printf(", held-out %s %.4g%s", !strcmp(a.loss_name(m), "cross_entropy") ? "accuracy" : "mse",
			       evaluate(&a, m, &ev, &evlabel), !strcmp(a.loss_name(m), "cross_entropy") ? "%" : "");
		printf(" (%.2f s)\n", now() - te);
		fflush(stdout);
	}
	printf("dlcc: %lld steps in %.2f s\n", (long long)step, now() - t0);
	if (a.loss_scale(m) > 0)
		printf("fp16 loss scale: %g (%lld of %lld steps skipped for inf/NaN gradients)\n", a.loss_scale(m),
		       (long long)a.skipped_steps(m), (long long)step);
	if (t.neval)
		printf("held-out %s: %.4g%s\n", !strcmp(a.loss_name(m), "cross_entropy") ? "accuracy" : "mse",
		       evaluate(&a, m, &ev, &evlabel), !strcmp(a.loss_name(m), "cross_entropy") ? "%" : "");
	if (log)
		fclose(log);
	if (t.save && a.save(m, t.save) < 0)
		die(EXIT_RUNTIME, "%s", a.error(m));
	batch_free(&b, d.n);
	free(idx);
	data_free(&d);
	npy_free(&label.a);
	a.destroy(m);
	return 0;
}

/* output names may hold '/' or ':' (exporters' names): make them file names */
static void out_path(char *buf, size_t len, const char *dir, const char *name)
{
	int o = snprintf(buf, len, "%s/", dir);
	for (const char *p = name; *p && o + 5 < (int)len; p++)
		buf[o++] = (*p == '/' || *p == ':' || *p == '\\') ? '_' : *p;
	snprintf(buf + o, len - o, ".npy");
}

static void write_outputs(const Artifact *a, dlcc_model *m, const char *dir, void **out, int64_t samples)
{
	char path[4096], err[512];
	if (mkdir(dir, 0777) < 0 && errno != EEXIST)
		die(EXIT_USAGE, "%s: cannot create: %s", dir, strerror(errno));
	for (int i = 0; i < a->num_outputs(m); i++) {
		const dlcc_tensor_info *o = a->output(m, i);
		int64_t dims[DLCC_MAX_RANK];
		for (int k = 0; k < o->rank; k++)
			dims[k] = o->dims[k] < 0 ? -o->dims[k] * samples : o->dims[k];
		out_path(path, sizeof path, dir, o->name);
		if (npy_save(path, o->dtype, o->rank, dims, out[i], err, sizeof err) < 0)
			die(EXIT_RUNTIME, "%s", err);
	}
}

static size_t row_bytes(const dlcc_tensor_info *o, int64_t *fixed)
{
	int64_t n = 1;
	*fixed = 1;
	for (int k = 0; k < o->rank; k++) {
		n *= o->dims[k] < 0 ? -o->dims[k] : o->dims[k];
		if (o->dims[k] < 0)
			*fixed = 0;
	}
	size_t es = o->dtype == DLCC_F64 || o->dtype == DLCC_I64 ? 8 : o->dtype == DLCC_F32 || o->dtype == DLCC_I32 ? 4 :
		    o->dtype == DLCC_F16 || o->dtype == DLCC_BF16 ? 2 : 1;
	return n * es;
}

int cmd_run(int argc, char **argv)
{
	TrainArgs t;
	Artifact a;
	dlcc_model *m;
	DataSet d;
	parse_train(&t, argc, argv, 0);
	open_model(&t, &a, &m, 0);
	data_inputs(&d, &a, m, t.ninputs, t.inputs);
	int no = a.num_outputs(m), mb = a.max_batch(m);
	void **out = calloc(no, sizeof *out), **chunk = calloc(no, sizeof *chunk);
	size_t *rb = calloc(no, sizeof *rb);
	int64_t *fixed = calloc(no, sizeof *fixed);
	for (int i = 0; i < no; i++) {
		rb[i] = row_bytes(a.output(m, i), &fixed[i]);
		out[i] = malloc(rb[i] * (fixed[i] ? 1 : d.samples) + 1);
	}
	const void **in = calloc(d.n, sizeof *in);
	for (int64_t s = 0; s < d.samples; s += mb) {
		int b = d.samples - s < mb ? (int)(d.samples - s) : mb;
		for (int i = 0; i < d.n; i++)
			in[i] = (char *)d.arr[i].a.data + s * d.arr[i].row_bytes;
		for (int i = 0; i < no; i++)
			chunk[i] = (char *)out[i] + (fixed[i] ? 0 : s * rb[i]);
		if (a.infer(m, b, in, chunk) < 0)
			die(EXIT_RUNTIME, "%s", a.error(m));
	}
	write_outputs(&a, m, t.save, out, d.samples);
	for (int i = 0; i < no; i++)
		free(out[i]);
	free(out); free(chunk); free(rb); free(fixed); free(in);
	data_free(&d);
	a.destroy(m);
	return 0;
}
