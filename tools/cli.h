/*
 * cli.h — shared pieces of the dlcc driver: argument helpers, the error channel, and the
 * artifact loader used by `train` and `run` (dlopen of the generated library).
 *
 * Exit statuses: 0 success, 1 runtime failure, 2 bad usage or bad input. Every error is one
 * line on stderr starting with "dlcc: ".
 */
#ifndef DLCC_CLI_H
#define DLCC_CLI_H

#include <stdint.h>

#include "codegen/codegen.h"
#include "dlcc/dlcc.h"

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

_Noreturn void die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "--opt value" or "--opt=value": returns the value and advances *i, or NULL if argv[*i] is not opt */
const char *arg_value(int argc, char **argv, int *i, const char *opt);
long arg_long(const char *opt, const char *s, long lo, long hi);
double arg_double(const char *opt, const char *s);
dlcc_device arg_device(const char *s);

/* The public API of an artifact, resolved with dlsym. */
typedef struct {
	void *handle;
	dlcc_model *(*create)(dlcc_device, char *, size_t);
	void (*destroy)(dlcc_model *);
	const char *(*error)(const dlcc_model *);
	const char *(*device_name)(const dlcc_model *);
	int (*max_batch)(const dlcc_model *);
	int (*num_inputs)(const dlcc_model *);
	const dlcc_tensor_info *(*input)(const dlcc_model *, int);
	int (*num_outputs)(const dlcc_model *);
	const dlcc_tensor_info *(*output)(const dlcc_model *, int);
	int (*num_params)(const dlcc_model *);
	const dlcc_tensor_info *(*param)(const dlcc_model *, int);
	int (*has_training)(const dlcc_model *);
	const dlcc_tensor_info *(*label)(const dlcc_model *);
	const char *(*loss_name)(const dlcc_model *);
	const char *(*optimizer_name)(const dlcc_model *);
	int (*train_step)(dlcc_model *, int, const void *const *, const void *, float *);
	int (*infer)(dlcc_model *, int, const void *const *, void *const *);
	int (*get_param)(dlcc_model *, int, float *);
	int (*save)(dlcc_model *, const char *);
	int (*load)(dlcc_model *, const char *);
	double (*loss_scale)(const dlcc_model *);
	int64_t (*skipped_steps)(const dlcc_model *);
} Artifact;

void artifact_open(Artifact *a, const char *path); /* dies with status 2 on failure */
int artifact_try_open(Artifact *a, const char *path, char *err, size_t errlen); /* 0 or -1 */
dlcc_model *artifact_create(Artifact *a, dlcc_device dev); /* dies with status 1 on failure */

/* An artifact compiled into a fresh temporary directory (cg.out_path and cg.emit are set here:
 * a shared library); temp_so_remove deletes it again. 0, or -1 with err set. */
typedef struct {
	char dir[64], so[96];
} TempSo;
int temp_so_build(TempSo *t, Graph *infer, Graph *train, CgOpts cg, char *err, size_t errlen);
void temp_so_remove(TempSo *t);

int cmd_compile(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_opt(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_conform(int argc, char **argv);

#endif
