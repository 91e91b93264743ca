/*
 * cli.c — argument helpers, the error channel and the artifact loader of the dlcc driver.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"

_Noreturn void die(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("dlcc: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(status);
}

void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("dlcc: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

const char *arg_value(int argc, char **argv, int *i, const char *opt)
{
	size_t n = strlen(opt);
	if (strncmp(argv[*i], opt, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != 0)
		return NULL;
	if (*i + 1 >= argc)
		die(EXIT_USAGE, "%s needs a value", opt);
	return argv[++*i];
}

long arg_long(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		die(EXIT_USAGE, "%s: '%s' is not an integer in [%ld, %ld]", opt, s, lo, hi);
	return v;
}

double arg_double(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end)
		die(EXIT_USAGE, "%s: '%s' is not a number", opt, s);
	return v;
}

dlcc_device arg_device(const char *s)
{
	if (!strcmp(s, "cpu"))
		return DLCC_DEVICE_CPU;
	if (!strcmp(s, "cuda") || !strcmp(s, "gpu"))
		return DLCC_DEVICE_CUDA;
	if (!strcmp(s, "auto"))
		return DLCC_DEVICE_AUTO;
	die(EXIT_USAGE, "--device: '%s' is not one of cpu, cuda, auto", s);
}

#define SYM(field, name)                                                                     \
	do {                                                                                 \
		*(void **)&a->field = dlsym(a->handle, name);                                \
		if (!a->field) {                                                             \
			snprintf(err, errlen, "%s: not a dlcc artifact (no symbol %s)", path, name); \
			return -1;                                                           \
		}                                                                            \
	} while (0)

int artifact_try_open(Artifact *a, const char *path, char *err, size_t errlen)
{
	char buf[4096];
	memset(a, 0, sizeof *a);
	/* dlopen searches the library path for names without a slash: make it a path */
	snprintf(buf, sizeof buf, "%s%s", strchr(path, '/') ? "" : "./", path);
	FILE *f = fopen(buf, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	fclose(f);
	a->handle = dlopen(buf, RTLD_NOW | RTLD_LOCAL);
	if (!a->handle) {
		snprintf(err, errlen, "%s: cannot load artifact: %s", path, dlerror());
		return -1;
	}
	SYM(create, "dlcc_create");
	SYM(destroy, "dlcc_destroy");
	SYM(error, "dlcc_error");
	SYM(device_name, "dlcc_device_name");
	SYM(max_batch, "dlcc_max_batch");
	SYM(num_inputs, "dlcc_num_inputs");
	SYM(input, "dlcc_input");
	SYM(num_outputs, "dlcc_num_outputs");
	SYM(output, "dlcc_output");
	SYM(num_params, "dlcc_num_params");
	SYM(param, "dlcc_param");
	SYM(has_training, "dlcc_has_training");
	SYM(label, "dlcc_label");
	SYM(loss_name, "dlcc_loss_name");
	SYM(optimizer_name, "dlcc_optimizer_name");
	SYM(train_step, "dlcc_train_step");
	SYM(infer, "dlcc_infer");
	SYM(get_param, "dlcc_get_param");
	SYM(save, "dlcc_save");
	SYM(load, "dlcc_load");
	SYM(loss_scale, "dlcc_loss_scale");
	SYM(skipped_steps, "dlcc_skipped_steps");
	return 0;
}

void artifact_open(Artifact *a, const char *path)
{
	char err[4200];
	if (artifact_try_open(a, path, err, sizeof err) < 0)
		die(EXIT_USAGE, "%s", err);
}

int temp_so_build(TempSo *t, Graph *infer, Graph *train, CgOpts cg, char *err, size_t errlen)
{
	snprintf(t->dir, sizeof t->dir, "%s", "/tmp/dlcc-so-XXXXXX");
	if (!mkdtemp(t->dir)) {
		snprintf(err, errlen, "cannot make a temporary directory: %s", strerror(errno));
		return -1;
	}
	snprintf(t->so, sizeof t->so, "%s/model.so", t->dir);
	cg.out_path = t->so;
	cg.emit = "so";
	if (cg_build(infer, train, &cg, err, errlen) < 0) {
		rmdir(t->dir);
		return -1;
	}
	return 0;
}

void temp_so_remove(TempSo *t)
{
	unlink(t->so);
	rmdir(t->dir);
}

dlcc_model *artifact_create(Artifact *a, dlcc_device dev)
{
	char err[512] = "";
	dlcc_model *m = a->create(dev, err, sizeof err);
	if (!m)
		die(EXIT_RUNTIME, "%s", err[0] ? err : "cannot create the model");
	return m;
}
