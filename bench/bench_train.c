/*
 * bench_train.c — time an artifact's training step through the public API.
 *
 *   dlcc-bench ARTIFACT.so [--batch B] [--steps S] [--warmup W] [--device cuda|cpu] [--ids N]
 *
 * Random float inputs, integer inputs drawn from [0, N) (token ids; N = 1 unless --ids says), and
 * random class ids (or float targets) of the artifact's shapes; W warm-up
 * steps, then S timed steps, each timed on the host around dlcc_train_step (which returns after
 * the step's loss reached the host, so the GPU work is complete). Prints the median, min and max.
 * With DLCC_PROFILE=1 in the environment the runtime also prints where the time went (rt_prof.c).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dlcc/dlcc.h"

#define API(ret, name, args) static ret(*p_##name) args;
API(dlcc_model *, dlcc_create, (dlcc_device, char *, size_t))
API(const char *, dlcc_error, (const dlcc_model *))
API(const char *, dlcc_device_name, (const dlcc_model *))
API(const dlcc_tensor_info *, dlcc_input, (const dlcc_model *, int))
API(int, dlcc_num_inputs, (const dlcc_model *))
API(const dlcc_tensor_info *, dlcc_label, (const dlcc_model *))
API(const dlcc_tensor_info *, dlcc_output, (const dlcc_model *, int))
API(void, dlcc_destroy, (dlcc_model *))
API(int, dlcc_train_step, (dlcc_model *, int, const void *const *, const void *, float *))

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void *random_tensor(const dlcc_tensor_info *t, int batch, long long classes)
{
	long long n = 1;
	for (int i = 0; i < t->rank; i++)
		n *= t->dims[i] < 0 ? -t->dims[i] * batch : t->dims[i];
	if (t->dtype == DLCC_I64) {
		long long *p = malloc(8 * n);
		for (long long i = 0; i < n; i++)
			p[i] = rand() % classes;
		return p;
	}
	float *p = malloc(4 * n);
	for (long long i = 0; i < n; i++)
		p[i] = (float)rand() / RAND_MAX - 0.5f;
	return p;
}

static void load(const char *path)
{
	void *h = dlopen(path, RTLD_NOW);
	if (!h) {
		fprintf(stderr, "dlcc-bench: %s\n", dlerror());
		exit(2);
	}
#define SYM(name) *(void **)&p_##name = dlsym(h, #name);
	SYM(dlcc_create) SYM(dlcc_error) SYM(dlcc_device_name) SYM(dlcc_input) SYM(dlcc_num_inputs)
	SYM(dlcc_label) SYM(dlcc_output) SYM(dlcc_train_step) SYM(dlcc_destroy)
}

int main(int argc, char **argv)
{
	int batch = 128, steps = 30, warmup = 5;
	long long ids = 1;
	dlcc_device dev = DLCC_DEVICE_AUTO;
	if (argc < 2) {
		fprintf(stderr, "usage: dlcc-bench ARTIFACT.so [--batch B] [--steps S] [--warmup W] [--device D] [--ids N]\n");
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--ids")) ids = atoll(argv[i + 1]) > 0 ? atoll(argv[i + 1]) : 1;
		else if (!strcmp(argv[i], "--device")) dev = !strcmp(argv[i + 1], "cpu") ? DLCC_DEVICE_CPU : DLCC_DEVICE_CUDA;
	}
	load(argv[1]);
	char err[512];
	dlcc_model *m = p_dlcc_create(dev, err, sizeof err);
	if (!m) {
		fprintf(stderr, "dlcc-bench: %s\n", err);
		return 1;
	}
	const dlcc_tensor_info *o = p_dlcc_output(m, 0);
	int n = p_dlcc_num_inputs(m);
	const void *in[16];
	for (int i = 0; i < n && i < 16; i++)
		in[i] = random_tensor(p_dlcc_input(m, i), batch, ids);
	void *label = p_dlcc_label(m) ? random_tensor(p_dlcc_label(m), batch, o->dims[o->rank - 1]) : NULL;
	double *t = malloc(sizeof *t * steps);
	float loss;
	for (int s = 0; s < warmup + steps; s++) {
		double t0 = now();
		if (p_dlcc_train_step(m, batch, in, label, &loss) < 0) {
			fprintf(stderr, "dlcc-bench: %s\n", p_dlcc_error(m));
			return 1;
		}
		if (s >= warmup)
			t[s - warmup] = (now() - t0) * 1e3;
	}
	qsort(t, steps, sizeof *t, cmp);
	printf("%s on %s: batch %d, %.4f ms/step median (min %.4f, max %.4f), last loss %.4f\n", argv[1],
	       p_dlcc_device_name(m), batch, t[steps / 2], t[0], t[steps - 1], loss);
	fflush(stdout);
	p_dlcc_destroy(m); /* prints the profile under DLCC_PROFILE */
	return 0;
}
