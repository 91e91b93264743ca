/*
 * rt_cublaslt.c — matrix products with a bias [+ ReLU] epilogue through cuBLASLt (rt_gemm_bias on
 * a GPU), opened with dlopen like cuBLAS.
 *
 * On first use: dlopen libcublasLt (.so.13, .so.12, unversioned, then /usr/local/cuda/lib64),
 * cublasLtCreate, a 4 MiB workspace, and a self-check — a 5x3x7 product with a bias and ReLU
 * computed by cuBLASLt and compared with the host's result. Any failure there (no library, a
 * status, a wrong number) marks the epilogue unavailable for this Rt: rt_gemm_bias then returns
 * 1 and the generated schedule uses rt_gemm and its own small kernel instead, so a surprise in
 * the library costs speed, never correctness. Each call builds its descriptors (cheap, host
 * only): compute type 32F with scale type 32F; A and B in the product's dtype (fp16/bf16/f32),
 * C = D f32; the bias f32, one per row of D; CUBLASLT_EPILOGUE_BIAS or _RELU_BIAS. Work goes to
 * the default stream, as everything else.
 */
#include <cublasLt.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

#define LT_WORKSPACE (4u << 20)

typedef struct RtLt {
	void *lib;
	int state; /* 1 usable, -1 not */
	cublasLtHandle_t handle;
	void *ws;
	cublasStatus_t (*Create)(cublasLtHandle_t *);
	cublasStatus_t (*Destroy)(cublasLtHandle_t);
	cublasStatus_t (*DescCreate)(cublasLtMatmulDesc_t *, cublasComputeType_t, cudaDataType_t);
	cublasStatus_t (*DescDestroy)(cublasLtMatmulDesc_t);
	cublasStatus_t (*DescSet)(cublasLtMatmulDesc_t, cublasLtMatmulDescAttributes_t, const void *, size_t);
	cublasStatus_t (*LayoutCreate)(cublasLtMatrixLayout_t *, cudaDataType, uint64_t, uint64_t, int64_t);
	cublasStatus_t (*LayoutDestroy)(cublasLtMatrixLayout_t);
	cublasStatus_t (*Matmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void *, const void *,
				 cublasLtMatrixLayout_t, const void *, cublasLtMatrixLayout_t, const void *,
				 const void *, cublasLtMatrixLayout_t, void *, cublasLtMatrixLayout_t,
				 const cublasLtMatmulAlgo_t *, void *, size_t, cudaStream_t);
} RtLt;

static int lt_load(RtLt *l)
{
	static const char *names[] = { "libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so",
				       "/usr/local/cuda/lib64/libcublasLt.so.13",
				       "/usr/local/cuda/lib64/libcublasLt.so.12" };
	for (size_t i = 0; i < sizeof names / sizeof *names && !l->lib; i++)
		l->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!l->lib)
		return -1;
	*(void **)&l->Create = dlsym(l->lib, "cublasLtCreate");
	*(void **)&l->Destroy = dlsym(l->lib, "cublasLtDestroy");
	*(void **)&l->DescCreate = dlsym(l->lib, "cublasLtMatmulDescCreate");
	*(void **)&l->DescDestroy = dlsym(l->lib, "cublasLtMatmulDescDestroy");
	*(void **)&l->DescSet = dlsym(l->lib, "cublasLtMatmulDescSetAttribute");
	*(void **)&l->LayoutCreate = dlsym(l->lib, "cublasLtMatrixLayoutCreate");
	*(void **)&l->LayoutDestroy = dlsym(l->lib, "cublasLtMatrixLayoutDestroy");
	*(void **)&l->Matmul = dlsym(l->lib, "cublasLtMatmul");
	if (!l->Create || !l->Destroy || !l->DescCreate || !l->DescDestroy || !l->DescSet || !l->LayoutCreate ||
	    !l->LayoutDestroy || !l->Matmul)
		return -1;
	return l->Create(&l->handle) == CUBLAS_STATUS_SUCCESS ? 0 : -1;
}

static int lt_type(dlcc_dtype dt, cudaDataType *t)
{
	switch (dt) {
	case DLCC_F32: *t = CUDA_R_32F; return 0;
	case DLCC_F16: *t = CUDA_R_16F; return 0;
	case DLCC_BF16: *t = CUDA_R_16BF; return 0;
	default: return -1;
	}
}

/* the matmul itself; a cuBLAS status, or -1 for an unsupported type */
static int lt_run(RtLt *l, dlcc_dtype dt, int transa, int transb, int m, int n, int k, const void *A, int lda,
		  const void *B, int ldb, void *C, int ldc, const void *bias, int relu)
{
	cudaDataType tab, tc = CUDA_R_32F, tbias = CUDA_R_32F;
	if (lt_type(dt, &tab))
		return -1;
	cublasLtMatmulDesc_t op = NULL;
	cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
	cublasOperation_t oa = transa ? CUBLAS_OP_T : CUBLAS_OP_N, ob = transb ? CUBLAS_OP_T : CUBLAS_OP_N;
	cublasLtEpilogue_t ep = relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
	float one = 1.0f, zero = 0.0f;
	cublasStatus_t s = l->DescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
	if (s == CUBLAS_STATUS_SUCCESS) s = l->DescSet(op, CUBLASLT_MATMUL_DESC_TRANSA, &oa, sizeof oa);
	if (s == CUBLAS_STATUS_SUCCESS) s = l->DescSet(op, CUBLASLT_MATMUL_DESC_TRANSB, &ob, sizeof ob);
	if (s == CUBLAS_STATUS_SUCCESS) s = l->DescSet(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep);
	if (s == CUBLAS_STATUS_SUCCESS) s = l->DescSet(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
	if (s == CUBLAS_STATUS_SUCCESS) s = l->DescSet(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &tbias, sizeof tbias);
	/* stored (not op'd) shapes: A is m x k, or k x m when transposed; B k x n, or n x k */
	if (s == CUBLAS_STATUS_SUCCESS) s = l->LayoutCreate(&la, tab, transa ? k : m, transa ? m : k, lda);
	if (s == CUBLAS_STATUS_SUCCESS) s = l->LayoutCreate(&lb, tab, transb ? n : k, transb ? k : n, ldb);
	if (s == CUBLAS_STATUS_SUCCESS) s = l->LayoutCreate(&lc, tc, m, n, ldc);
	if (s == CUBLAS_STATUS_SUCCESS)
		s = l->Matmul(l->handle, op, &one, A, la, B, lb, &zero, C, lc, C, lc, NULL, l->ws, LT_WORKSPACE, 0);
	if (lc) l->LayoutDestroy(lc);
	if (lb) l->LayoutDestroy(lb);
	if (la) l->LayoutDestroy(la);
	if (op) l->DescDestroy(op);
	return (int)s;
}

/* a small product with bias and ReLU, by cuBLASLt and by the host: 0 when they agree */
static int lt_selfcheck(Rt *rt, RtLt *l)
{
	enum { M = 5, N = 3, K = 7 };
	float a[M * K], b[K * N], bias[M], want[M * N], got[M * N];
	for (int i = 0; i < M * K; i++)
		a[i] = (float)((i * 7 % 11) - 5) / 4;
	for (int i = 0; i < K * N; i++)
		b[i] = (float)((i * 5 % 9) - 4) / 2;
	for (int i = 0; i < M; i++)
		bias[i] = (float)i - 2;
	for (int j = 0; j < N; j++)
		for (int i = 0; i < M; i++) {
			float s = bias[i];
			for (int p = 0; p < K; p++)
				s += a[i + p * M] * b[p + j * K];
			want[i + j * M] = s > 0 ? s : 0;
		}
	char *d = rt_cuda_alloc(rt, sizeof a + sizeof b + sizeof bias + sizeof got);
	if (!d)
		return -1;
	char *da = d, *db = da + sizeof a, *dbias = db + sizeof b, *dc = dbias + sizeof bias;
	int rc = rt_cuda_copy(rt, da, a, sizeof a, RT_COPY_H2D) || rt_cuda_copy(rt, db, b, sizeof b, RT_COPY_H2D) ||
		 rt_cuda_copy(rt, dbias, bias, sizeof bias, RT_COPY_H2D) ||
		 lt_run(l, DLCC_F32, 0, 0, M, N, K, da, M, db, K, dc, M, dbias, 1) != CUBLAS_STATUS_SUCCESS ||
		 rt_cuda_copy(rt, got, dc, sizeof got, RT_COPY_D2H) ? -1 : 0;
	for (int i = 0; rc == 0 && i < M * N; i++)
		rc = fabsf(got[i] - want[i]) <= 1e-4f * (1 + fabsf(want[i])) ? 0 : -1;
	rt_cuda_free(rt, d);
	return rc;
}

static RtLt *lt_open(Rt *rt)
{
	if (rt->lt)
		return rt->lt->state > 0 ? rt->lt : NULL;
	RtLt *l = rt->lt = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->state = -1;
	if (lt_load(l) == 0 && (l->ws = rt_cuda_alloc(rt, LT_WORKSPACE)) && lt_selfcheck(rt, l) == 0)
		l->state = 1;
	else if (getenv("DLCC_VERBOSE"))
		fprintf(stderr, "dlcc: cuBLASLt epilogues unavailable (%s); using cuBLAS and a kernel\n",
			!l->lib ? "no libcublasLt" : "its self-check failed");
	rt->err[0] = 0; /* a failed probe is not an error of the step */
	return l->state > 0 ? l : NULL;
}

int rt_cuda_gemm_bias(Rt *rt, dlcc_dtype dt, dlcc_dtype ct, int transa, int transb, int m, int n, int k,
		      const void *A, int lda, const void *B, int ldb, void *C, int ldc, const void *bias,
		      int relu)
{
	RtLt *l = lt_open(rt);
	if (!l || ct != DLCC_F32 || m <= 0 || n <= 0)
		return 1;
	int s = lt_run(l, dt, transa, transb, m, n, k, A, lda, B, ldb, C, ldc, bias, relu);
	if (s == -1 || s == CUBLAS_STATUS_NOT_SUPPORTED)
		return 1;
	if (s != CUBLAS_STATUS_SUCCESS)
		return rt_fail(rt, "cublasLtMatmul(m=%d n=%d k=%d, bias%s epilogue): cuBLAS status %d", m, n, k,
			       relu ? " + ReLU" : "", s);
	return 0;
}

void rt_lt_close(Rt *rt)
{
	RtLt *l = rt->lt;
	if (!l)
		return;
	if (l->ws)
		rt_cuda_free(rt, l->ws);
	if (l->handle)
		l->Destroy(l->handle);
	if (l->lib)
		dlclose(l->lib);
	free(l);
	rt->lt = NULL;
}
