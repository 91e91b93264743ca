/*
 * dlcc.h — the public C API of a dlcc artifact.
 *
 * `dlcc model.onnx -o train.so` produces a shared library that exports the functions below.
 * An application links it (`cc app.c ./train.so -Wl,-rpath,.`) or opens it with dlopen; no
 * other library is needed at link time: libcuda and libcublas are opened at run time when a GPU
 * is present, and otherwise every kernel runs in the built-in CPU emulation.
 *
 * Conventions
 *  - Every function that can fail returns 0 on success and -1 on failure; dlcc_error() then
 *    returns one line saying what failed.
 *  - Tensors cross the API as dense, C-order host arrays of the dtype given in their info.
 *  - A dimension < 0 in dlcc_tensor_info.dims is a multiple of the batch: -k means k*batch.
 *  - batch may be any value from 1 to dlcc_max_batch(); the memory plan is made for the maximum.
 */
#ifndef DLCC_DLCC_H
#define DLCC_DLCC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dlcc_model dlcc_model;

typedef enum {
	DLCC_DEVICE_AUTO = 0, /* the GPU when one is found, else the CPU emulation */
	DLCC_DEVICE_CPU = 1,
	DLCC_DEVICE_CUDA = 2,
} dlcc_device;

/* Same order as the IR's DType. */
typedef enum {
	DLCC_F32, DLCC_F16, DLCC_BF16, DLCC_F64, DLCC_I64, DLCC_I32, DLCC_BOOL, DLCC_U8,
} dlcc_dtype;

#define DLCC_MAX_RANK 8

typedef struct {
	const char *name;
	dlcc_dtype dtype;
	int rank;
	int64_t dims[DLCC_MAX_RANK]; /* -k: k times the batch */
} dlcc_tensor_info;

/* Create an instance: parameters initialised from the model's initializers, optimizer state zero. */
dlcc_model *dlcc_create(dlcc_device device, char *err, size_t errlen);
void dlcc_destroy(dlcc_model *m);
const char *dlcc_error(const dlcc_model *m);
const char *dlcc_device_name(const dlcc_model *m); /* "cuda: NVIDIA H100 ..." or "cpu emulation" */

int dlcc_max_batch(const dlcc_model *m);
int dlcc_num_inputs(const dlcc_model *m);
const dlcc_tensor_info *dlcc_input(const dlcc_model *m, int i);
int dlcc_num_outputs(const dlcc_model *m);
const dlcc_tensor_info *dlcc_output(const dlcc_model *m, int i);
int dlcc_num_params(const dlcc_model *m);
const dlcc_tensor_info *dlcc_param(const dlcc_model *m, int i);

/* Training: NULL label info when the artifact was built with --mode infer. */
int dlcc_has_training(const dlcc_model *m);
const dlcc_tensor_info *dlcc_label(const dlcc_model *m); /* NULL for --loss none */
const char *dlcc_loss_name(const dlcc_model *m);         /* "cross_entropy", "mse", "none" */
const char *dlcc_optimizer_name(const dlcc_model *m);    /* "sgd", "momentum", "adam", "adamw" */
int64_t dlcc_step_count(const dlcc_model *m);            /* optimizer steps taken so far */
/* fp16 dynamic loss scaling: the current scale (0 when the artifact has none), and how many
 * dlcc_train_step calls were skipped (inf/NaN gradients: parameters unchanged, scale halved;
 * they do not count as optimizer steps) */
double dlcc_loss_scale(const dlcc_model *m);
int64_t dlcc_skipped_steps(const dlcc_model *m);

/* One training step on `batch` samples: inputs[i] points to input i, label to the labels (may be
 * NULL for --loss none). The loss of the step (before the update) is stored in *loss. */
int dlcc_train_step(dlcc_model *m, int batch, const void *const *inputs, const void *label,
		    float *loss);

/* Inference on `batch` samples; outputs[i] must hold output i for that batch. */
int dlcc_infer(dlcc_model *m, int batch, const void *const *inputs, void *const *outputs);

/* Parameters, as float32 host arrays in dlcc_param(m, i) order. */
int dlcc_get_param(dlcc_model *m, int i, float *host);
int dlcc_set_param(dlcc_model *m, int i, const float *host);

/* Checkpoints (.safetensors): parameters by name, optimizer state as "<param>.<slot>", the step
 * count as "__step__". dlcc_load accepts a file holding parameters only. */
int dlcc_save(dlcc_model *m, const char *path);
int dlcc_load(dlcc_model *m, const char *path);

#ifdef __cplusplus
}
#endif
#endif
