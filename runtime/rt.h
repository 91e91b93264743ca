/*
 * rt.h — what generated artifact code sees of libdlcc_rt.
 *
 * An artifact is: generated kernels (CUDA C, embedded as CUBIN for sm_80/sm_90 and PTX, and the
 * same source compiled as C against runtime/emu/cuda_emu.h for the CPU), a generated host
 * schedule (train step, inference) and one RtModelDesc describing tensors and memory.
 * libdlcc_rt (linked statically into every artifact) implements the public API of
 * include/dlcc/dlcc.h on top of that description.
 *
 * Memory: two device blocks. The parameter block holds parameters and optimizer state at fixed
 * offsets; the workspace holds inputs, labels, outputs, the loss and every temporary at offsets
 * planned for max_batch. Device pointers are plain `void *` (a CUdeviceptr cast, or host memory
 * in the CPU emulation).
 */
#ifndef DLCC_RT_H
#define DLCC_RT_H

#include <stddef.h>
#include <stdint.h>

#include "dlcc/dlcc.h"

typedef struct Rt Rt;

typedef enum { RT_AUTO = 0, RT_CPU = 1, RT_CUDA = 2 } RtDevice;

/* CPU trampoline of a kernel: unpacks args (cuLaunchKernel layout: an array of pointers to each
 * argument's value) and calls the kernel body for the current blockIdx/threadIdx. */
typedef void (*RtEmuKernel)(void **args);

typedef struct {
	const char *name;  /* extern "C" name in the CUBIN/PTX */
	RtEmuKernel emu;   /* CPU version */
	int uses_sync;     /* 1 if the body uses __syncthreads / shuffles: run threads as coroutines */
} RtKernelInfo;

typedef struct {
	const unsigned char *cubin_sm80; size_t cubin_sm80_size;
	const unsigned char *cubin_sm90; size_t cubin_sm90_size;
	const char *ptx; /* NUL-terminated, compute_80, JIT-compiled on other GPUs */
	const RtKernelInfo *kernels;
	int nkernels;
} RtModuleImage;

/* ---- devices, memory, launches ---- */
Rt *rt_create(RtDevice want, const RtModuleImage *img, char *err, size_t errlen);
void rt_destroy(Rt *rt);
RtDevice rt_device(const Rt *rt);
const char *rt_device_name(const Rt *rt);
const char *rt_error(const Rt *rt);
/* record a formatted error; returns -1 */
int rt_fail(Rt *rt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void *rt_alloc(Rt *rt, size_t bytes); /* zero-filled; NULL (and rt_error) on failure */
void rt_free(Rt *rt, void *p);
int rt_h2d(Rt *rt, void *dst, const void *src, size_t bytes);
int rt_d2h(Rt *rt, void *dst, const void *src, size_t bytes);
int rt_d2d(Rt *rt, void *dst, const void *src, size_t bytes);
int rt_memset0(Rt *rt, void *dst, size_t bytes);
int rt_sync(Rt *rt);

/* Launch kernel number `k` of the image. args as for cuLaunchKernel. */
int rt_launch(Rt *rt, int k, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
	      unsigned bz, unsigned shmem, void **args);

/* cublasGemmStridedBatchedEx semantics, column-major: for each i < batch,
 *   C_i = alpha * op(A_i) * op(B_i) + beta * C_i,  op(A_i) m x k, op(B_i) k x n, C_i m x n,
 * X_i = X + i * strideX (in elements). dt is the type of A and B, ct the type of C: both DLCC_F32
 * (fp32 compute) or both DLCC_F64; or A and B DLCC_F16 / DLCC_BF16 with C of the same type or
 * DLCC_F32 (fp32 compute, tensor cores). transa/transb: 0 = N, 1 = T. */
int rt_gemm(Rt *rt, dlcc_dtype dt, dlcc_dtype ct, int transa, int transb, int m, int n, int k, double alpha,
	    const void *A, int lda, long long strideA, const void *B, int ldb, long long strideB,
	    double beta, void *C, int ldc, long long strideC, int batch);

/* The epilogues of rt_gemm_ep, by cuBLASLt's names. D = op(A)·op(B) column-major m x n, f32;
 * bias: m f32; aux: the epilogue's extra matrix, m x n with leading dimension ldaux:
 *   BIAS           D = P + bias[i]                    RELU_BIAS   D = max(P + bias[i], 0)
 *   RELU_AUX_BIAS  as RELU_BIAS, and aux gets the bit-mask (P + bias[i] > 0): bit i % 8 of byte
 *                  (i / 8 + j * ldaux / 8); ldaux (in bits) a multiple of 128, >= m
 *   GELU_BIAS      D = gelu(P + bias[i]), the tanh form 0.5 v (1 + tanh(0.79788456 (v + 0.044715 v^3)))
 *   GELU_AUX_BIAS  as GELU_BIAS, and aux (f32, ldaux a multiple of 8) gets P + bias[i]
 *   DRELU          D = P where aux's bit is set, else 0 (aux from RELU_AUX_BIAS)
 *   DGELU          D = P * gelu'(aux) (aux from GELU_AUX_BIAS)
 *   DRELU_BGRAD, DGELU_BGRAD   as DRELU, DGELU, and bias[i] (an output) = sum over j of D(i, j)
 *   BGRADA         D = P, and bias[i] (m outputs) = sum over the k of op(A)(i, p)
 *   BGRADB         D = P, and bias[j] (n outputs) = sum over the k of op(B)(p, j)
 * D is f32, or fp16 / bf16 for BIAS, RELU_BIAS, RELU_AUX_BIAS, GELU_BIAS, DRELU and DRELU_BGRAD: the f32
 * result rounded once (the bias gradient is taken before the rounding). */
typedef enum {
	RT_EP_BIAS, RT_EP_RELU_BIAS, RT_EP_RELU_AUX_BIAS, RT_EP_GELU_BIAS, RT_EP_GELU_AUX_BIAS,
	RT_EP_DRELU, RT_EP_DRELU_BGRAD, RT_EP_DGELU, RT_EP_DGELU_BGRAD, RT_EP_BGRADA, RT_EP_BGRADB,
	RT_EP_COUNT
} RtEpilogue;

/* One matrix product with an epilogue, column-major: dt as for rt_gemm, ct the type of C (see
 * above; C is only written: beta is 0). On a GPU
 * this is one cuBLASLt matmul. Returns 0, -1 (rt_error), or 1 when this epilogue is not
 * available here (no cuBLASLt, its self-check of this epilogue failed, cuBLASLt does not
 * support these sizes, or the environment sets DLCC_NO_GEMM_EPILOGUE=1): nothing was done and
 * the caller computes it another way. */
int rt_gemm_ep(Rt *rt, RtEpilogue ep, dlcc_dtype dt, dlcc_dtype ct, int transa, int transb, int m, int n,
	       int k, const void *A, int lda, const void *B, int ldb, void *C, int ldc, void *bias, void *aux,
	       long long ldaux);

/* DLCC_PROFILE (rt_prof.c): forget what was timed so far (model.c calls it after the first step) */
void rt_prof_reset(Rt *rt);

/* ---- the model description emitted by codegen ---- */
typedef enum { RT_T_INPUT, RT_T_LABEL, RT_T_OUTPUT, RT_T_PARAM, RT_T_STATE, RT_T_LOSS } RtTensorKind;

typedef struct {
	dlcc_tensor_info info;
	RtTensorKind kind;
	size_t offset;   /* in the parameter block (PARAM, STATE) or the workspace (others) */
	int param;       /* STATE: index of the parameter it belongs to; else -1 */
	const char *slot;/* STATE: "momentum_buffer", "exp_avg", "exp_avg_sq"; else NULL */
} RtTensorDesc;

typedef struct {
	const RtModuleImage *image;
	int max_batch;
	const char *loss;      /* "cross_entropy", "mse", "none", or NULL (inference only) */
	const char *optimizer; /* "sgd", ... or NULL */
	int ninputs;  const RtTensorDesc *inputs;
	int noutputs; const RtTensorDesc *outputs;  /* inference outputs */
	const RtTensorDesc *label;                  /* NULL if none */
	const RtTensorDesc *loss_value;             /* f32 scalar in the workspace; NULL if infer-only */
	int nparams;  const RtTensorDesc *params;
	int nstates;  const RtTensorDesc *states;
	size_t param_bytes;     /* parameter block size */
	size_t workspace_bytes; /* workspace size for max_batch */
	/* the initial parameter block without its zero span [param_zero_off, + param_zero_bytes)
	 * (the optimizer state): param_bytes - param_zero_bytes bytes */
	const unsigned char *param_init;
	size_t param_zero_off, param_zero_bytes;
	/* dynamic loss scaling (fp16): the f32 state k of the scale loss_scale_init * 2^k; a step
	 * after which k went down was skipped (inf/NaN gradients). NULL without loss scaling. */
	const RtTensorDesc *loss_scale_log2;
	double loss_scale_init;
	/* Generated schedules. params/ws are the device bases of the two blocks; batch <= max_batch;
	 * step is the 1-based number of the optimizer step being taken. Return 0 or -1 (rt_error). */
	int (*train_step)(Rt *rt, char *params, char *ws, int64_t batch, int64_t step);
	int (*infer)(Rt *rt, char *params, char *ws, int64_t batch);
} RtModelDesc;

/* Defined by the generated code of every artifact. */
extern const RtModelDesc dlcc_model_desc;

/* dims resolved for a batch: -k -> k*batch */
int64_t rt_numel(const dlcc_tensor_info *t, int64_t batch);
size_t rt_dtype_size(dlcc_dtype dt);

/* the file readers' and writers' error: "<path>: <message>" into err (when err && errlen); returns -1 */
int rt_path_err(char *err, size_t errlen, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
