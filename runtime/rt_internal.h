/*
 * rt_internal.h — the Rt object shared by the runtime's device files (not generated code).
 *
 * rt_device.c owns Rt and the CPU backend and dispatches every call; rt_cuda.c implements the
 * CUDA backend behind the rt_cuda_* functions (libcuda and libcublas through dlopen);
 * gemm_cpu.c is the CPU version of the one cuBLAS call the generated code makes.
 */
#ifndef DLCC_RT_INTERNAL_H
#define DLCC_RT_INTERNAL_H

#include "rt.h"

typedef struct RtCuda RtCuda;
typedef struct RtProf RtProf;

struct Rt {
	RtDevice dev;              /* RT_CPU or RT_CUDA once created */
	const RtModuleImage *img;  /* may be NULL: no kernels */
	RtCuda *cuda;              /* CUDA backend state, NULL on the CPU */
	struct RtLt *lt;           /* cuBLASLt (rt_cublaslt.c), opened on first use; NULL before */
	RtProf *prof;              /* DLCC_PROFILE (rt_prof.c); NULL when not profiling */
	char name[160];
	char err[512];
};

/* CUDA backend (rt_cuda.c). rt_cuda_probe returns 1 when a usable GPU exists; rt_cuda_open
 * creates the context, loads the module and the kernels, opens cuBLAS (error in rt->err). */
int rt_cuda_probe(char *why, size_t whylen);
int rt_cuda_open(Rt *rt);
void rt_cuda_close(Rt *rt);
void rt_lt_close(Rt *rt); /* rt_cublaslt.c: before rt_cuda_close */
void *rt_cuda_alloc(Rt *rt, size_t bytes);
void rt_cuda_free(Rt *rt, void *p);
typedef enum { RT_COPY_H2D, RT_COPY_D2H, RT_COPY_D2D } RtCopyKind;
int rt_cuda_copy(Rt *rt, void *dst, const void *src, size_t bytes, RtCopyKind kind);
int rt_cuda_memset0(Rt *rt, void *dst, size_t bytes);
int rt_cuda_sync(Rt *rt);
int rt_cuda_launch(Rt *rt, int k, const unsigned g[3], const unsigned b[3], unsigned shmem,
		   void **args);
int rt_cuda_gemm(Rt *rt, dlcc_dtype dt, dlcc_dtype ct, int transa, int transb, int m, int n, int k,
		 double alpha, const void *A, int lda, long long sA, const void *B, int ldb,
		 long long sB, double beta, void *C, int ldc, long long sC, int batch);

/* cuBLASLt matmul with an epilogue (rt_cublaslt.c); 1 when not available */
int rt_cuda_gemm_ep(Rt *rt, RtEpilogue ep, dlcc_dtype dt, dlcc_dtype ct, int transa, int transb, int m, int n, int k,
		    const void *A, int lda, const void *B, int ldb, void *C, int ldc, void *bias, void *aux,
		    long long ldaux);

/* rt_epilogue.c: the epilogue ep on host memory, after C = op(A)·op(B) (f32) was computed;
 * rt_ep_valid: 0 when ldaux suits ep (rt.h), 1 when cuBLASLt would not take it, -1 wrong */
void rt_ep_host(RtEpilogue ep, dlcc_dtype dt, int transa, int transb, int m, int n, int k, const void *A, int lda,
		const void *B, int ldb, float *C, int ldc, void *bias, void *aux, long long ldaux);
int rt_ep_valid(RtEpilogue ep, int m, long long ldaux);
/* the epilogues that may write a half-precision D (f32 bias, ReLU mask); t (m x n, f32) rounded
 * into C of type ct (DLCC_F16 / DLCC_BF16) */
int rt_ep_half_ok(RtEpilogue ep);
void rt_ep_round(dlcc_dtype ct, const float *t, int m, int n, void *C, int ldc);

/* The profile (rt_prof.c): open reads DLCC_PROFILE; begin synchronises and returns the time;
 * end synchronises and adds the call's time to `name`; close prints the table and frees it;
 * rt_prof_reset (rt.h) forgets the entries. */
void rt_prof_open(Rt *rt);
double rt_prof_begin(Rt *rt);
void rt_prof_end(Rt *rt, double t0, const char *name);
void rt_prof_close(Rt *rt);

/* CPU GEMM (gemm_cpu.c): rt_gemm's semantics on host memory; -1 for an unsupported dtype. */
int rt_gemm_cpu(dlcc_dtype dt, dlcc_dtype ct, int transa, int transb, int m, int n, int k, double alpha,
		const void *A, int lda, long long sA, const void *B, int ldb, long long sB,
		double beta, void *C, int ldc, long long sC, int batch);

#endif
