/*
 * rt_cublaslt.c — matrix products with an epilogue through cuBLASLt (rt_gemm_ep on a GPU),
 * opened with dlopen like cuBLAS.
 *
 * On first use: dlopen libcublasLt (.so.13, .so.12, unversioned, then /usr/local/cuda/lib64),
 * cublasLtCreate and a 4 MiB workspace. On the first use of each epilogue (rt.h RtEpilogue), a
 * self-check: a 24x3x7 product with that epilogue computed by cuBLASLt and compared with
 * rt_ep_host — the result, the bias gradient, and the auxiliary output (the ReLU bit-mask bit
 * for bit, so that a mask cuBLASLt writes means what the generated fallback kernels read; the
 * GELU input). Any failure (no library, a status, a wrong number — an erf GELU where the tanh
 * form is expected) marks that epilogue unavailable for this Rt: rt_gemm_ep then returns 1 and
 * the generated schedule uses rt_gemm and its own small kernels instead, so a surprise in the
 * library costs speed, never correctness. So does a NOT_SUPPORTED / INVALID_VALUE status of one
 * call (sizes or layouts an epilogue does not take). Each call builds its descriptors (cheap,
 * host only): compute type 32F with scale type 32F; A and B in the product's dtype
 * (fp16/bf16/f32), C = D f32; the bias (or bias gradient) f32; the auxiliary matrix with its
 * leading dimension (bits for the ReLU mask). Work goes to the default stream, as everything
 * else.
 */
#include <cublasLt.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rt_half.h"
#include "rt_internal.h"

#define LT_WORKSPACE (4u << 20)

typedef struct RtLt {
	void *lib;
	int state; /* 1 usable, -1 not */
	int checked[RT_EP_COUNT][3]; /* per epilogue and D type (f32, f16, bf16): 0 not yet, 1 passed its self-check, -1 failed */
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

static const cublasLtEpilogue_t lt_epilogue[RT_EP_COUNT] = {
	CUBLASLT_EPILOGUE_BIAS, CUBLASLT_EPILOGUE_RELU_BIAS, CUBLASLT_EPILOGUE_RELU_AUX_BIAS,
	CUBLASLT_EPILOGUE_GELU_BIAS, CUBLASLT_EPILOGUE_GELU_AUX_BIAS, CUBLASLT_EPILOGUE_DRELU,
	CUBLASLT_EPILOGUE_DRELU_BGRAD, CUBLASLT_EPILOGUE_DGELU, CUBLASLT_EPILOGUE_DGELU_BGRAD,
	CUBLASLT_EPILOGUE_BGRADA, CUBLASLT_EPILOGUE_BGRADB};

static int ep_has_aux(RtEpilogue ep) { return ep == RT_EP_RELU_AUX_BIAS || ep == RT_EP_GELU_AUX_BIAS || (ep >= RT_EP_DRELU && ep <= RT_EP_DGELU_BGRAD); }
static int ep_has_bias(RtEpilogue ep) { return ep != RT_EP_DRELU && ep != RT_EP_DGELU; }

/* the matmul itself (C = D of type ct); a cuBLAS status, or -1 for an unsupported type */
static int lt_run(RtLt *l, RtEpilogue ep, dlcc_dtype dt, dlcc_dtype ct, int transa, int transb, int m, int n,
		  int k, const void *A, int lda, const void *B, int ldb, void *C, int ldc, void *bias, void *aux,
		  long long ldaux)
{
	cudaDataType tab, tc, tbias = CUDA_R_32F;
	if (lt_type(dt, &tab) || lt_type(ct, &tc))
		return -1;
	cublasLtMatmulDesc_t op = NULL;
	cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
	cublasOperation_t oa = transa ? CUBLAS_OP_T : CUBLAS_OP_N, ob = transb ? CUBLAS_OP_T : CUBLAS_OP_N;
	cublasLtEpilogue_t e = lt_epilogue[ep];
	int64_t ld = ldaux;
	float one = 1.0f, zero = 0.0f;
	cublasStatus_t s = l->DescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
	if (s == CUBLAS_STATUS_SUCCESS) s = l->DescSet(op, CUBLASLT_MATMUL_DESC_TRANSA, &oa, sizeof oa);
	if (s == CUBLAS_STATUS_SUCCESS) s = l->DescSet(op, CUBLASLT_MATMUL_DESC_TRANSB, &ob, sizeof ob);
	if (s == CUBLAS_STATUS_SUCCESS) s = l->DescSet(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e);
	if (s == CUBLAS_STATUS_SUCCESS && ep_has_bias(ep))
		s = l->DescSet(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
	if (s == CUBLAS_STATUS_SUCCESS && ep_has_bias(ep))
		s = l->DescSet(op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &tbias, sizeof tbias);
	if (s == CUBLAS_STATUS_SUCCESS && ep_has_aux(ep))
		s = l->DescSet(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof aux);
	if (s == CUBLAS_STATUS_SUCCESS && ep_has_aux(ep))
		s = l->DescSet(op, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof ld);
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

/* ---- the self-check of one epilogue: a small product by cuBLASLt and by rt_ep_host ---- */

enum { SC_M = 24, SC_N = 3, SC_K = 7, SC_LDM = 128 }; /* SC_LDM: the mask's leading dimension in bits; SC_M rows span 3 of its bytes */

typedef struct {
	float a[SC_M * SC_K], b[SC_K * SC_N + 3], c[SC_M * SC_N]; /* each array 16-byte aligned */
	float bias[SC_M > SC_N ? SC_M : SC_N];
	float aux[SC_M * SC_N]; /* GELU's input; the ReLU mask (SC_N columns of 16 bytes) uses the first 48 bytes */
	uint16_t ah[SC_M * SC_K], bh[SC_K * SC_N + 3], ch[SC_M * SC_N]; /* a half-precision check */
} ScData;

/* inputs: small dyadic numbers (the products are exact in f32), pre-activations in [-3, 3] */
static void sc_inputs(ScData *d, RtEpilogue ep)
{
	for (int i = 0; i < SC_M * SC_K; i++)
		d->a[i] = (float)((i * 7 % 11) - 5) / 8;
	for (int i = 0; i < SC_K * SC_N; i++)
		d->b[i] = (float)((i * 5 % 9) - 4) / 4;
	for (int i = 0; i < SC_M; i++)
		d->bias[i] = (float)i / 4 - 1;
	for (int i = 0; i < SC_M * SC_N; i++)
		d->aux[i] = (float)((i * 13 % 25) - 12) / 4;
	if (ep == RT_EP_DRELU || ep == RT_EP_DRELU_BGRAD) {
		uint8_t *mask = (uint8_t *)d->aux;
		for (int i = 0; i < SC_N * SC_LDM / 8; i++)
			mask[i] = (uint8_t)(i * 37 + 11);
	}
}

static int sc_close(const float *got, const float *want, int n, float tol)
{
	for (int i = 0; i < n; i++)
		if (!(fabsf(got[i] - want[i]) <= tol * (1 + fabsf(want[i]))))
			return -1;
	return 0;
}

/* the mask bits of the SC_M rows */
static int sc_same_mask(const void *got, const void *want)
{
	const uint8_t *g = got, *w = want;
	for (int j = 0; j < SC_N; j++)
		for (int i = 0; i < SC_M; i++) {
			int o = j * SC_LDM / 8 + i / 8;
			if ((g[o] >> (i % 8) & 1) != (w[o] >> (i % 8) & 1))
				return -1;
		}
	return 0;
}

static uint16_t sc_half(dlcc_dtype ct, float v) { return ct == DLCC_F16 ? rt_f32_to_f16(v) : rt_f32_to_bf16(v); }
static float sc_float(dlcc_dtype ct, uint16_t h) { return ct == DLCC_F16 ? rt_f16_to_f32(h) : rt_bf16_to_f32(h); }

/* BGRADA / BGRADB with B transposed: the weight gradient's form in cg_epilogue.c. With a half
 * ct, A and B are of that type too (the mixed-precision products) and D is compared after its
 * rounding, to one unit in the last place. */
static int lt_selfcheck(Rt *rt, RtLt *l, RtEpilogue ep, dlcc_dtype ct)
{
	ScData in, want, got;
	int half = ct != DLCC_F32;
	int tb = ep == RT_EP_BGRADA || ep == RT_EP_BGRADB, ldb = tb ? SC_N : SC_K;
	long long ldaux = ep == RT_EP_RELU_AUX_BIAS || ep == RT_EP_DRELU || ep == RT_EP_DRELU_BGRAD ? SC_LDM : SC_M;
	memset(&in, 0, sizeof in);
	sc_inputs(&in, ep);
	want = in;
	if (rt_gemm_cpu(DLCC_F32, DLCC_F32, 0, tb, SC_M, SC_N, SC_K, 1.0, in.a, SC_M, 0, in.b, ldb, 0, 0.0, want.c,
			SC_M, 0, 1))
		return -1;
	rt_ep_host(ep, DLCC_F32, 0, tb, SC_M, SC_N, SC_K, in.a, SC_M, in.b, ldb, want.c, SC_M, want.bias, want.aux,
		   ldaux);
	for (int i = 0; half && i < SC_M * SC_K; i++)
		in.ah[i] = sc_half(ct, in.a[i]); /* exact: multiples of 1/8 below 1 */
	for (int i = 0; half && i < SC_K * SC_N; i++)
		in.bh[i] = sc_half(ct, in.b[i]);
	ScData *dv = rt_cuda_alloc(rt, sizeof in);
	if (!dv)
		return -1;
	int rc = rt_cuda_copy(rt, dv, &in, sizeof in, RT_COPY_H2D) ||
		 lt_run(l, ep, half ? ct : DLCC_F32, ct, 0, tb, SC_M, SC_N, SC_K, half ? (void *)dv->ah : (void *)dv->a,
			SC_M, half ? (void *)dv->bh : (void *)dv->b, ldb, half ? (void *)dv->ch : (void *)dv->c, SC_M,
			dv->bias, dv->aux, ldaux) != CUBLAS_STATUS_SUCCESS ||
		 rt_cuda_copy(rt, &got, dv, sizeof got, RT_COPY_D2H) ? -1 : 0;
	rt_cuda_free(rt, dv);
	float tol = ep == RT_EP_GELU_BIAS || ep == RT_EP_GELU_AUX_BIAS || ep == RT_EP_DGELU || ep == RT_EP_DGELU_BGRAD
			    ? 2e-5f /* tight enough to tell the tanh GELU from the erf one */ : 1e-5f;
	for (int i = 0; half && i < SC_M * SC_N; i++) { /* D compared as rounded; the bias gradient as f32 */
		got.c[i] = sc_float(ct, got.ch[i]);
		want.c[i] = sc_float(ct, sc_half(ct, want.c[i]));
	}
	if (rc == 0)
		rc = sc_close(got.c, want.c, SC_M * SC_N, !half ? tol : ct == DLCC_F16 ? 1e-3f : 8e-3f);
	tol = half ? 8e-3f : tol; /* a bias gradient summed from the rounded D would pass too */
	if (rc == 0 && (ep == RT_EP_DRELU_BGRAD || ep == RT_EP_DGELU_BGRAD || ep == RT_EP_BGRADA))
		rc = sc_close(got.bias, want.bias, SC_M, tol);
	if (rc == 0 && ep == RT_EP_BGRADB)
		rc = sc_close(got.bias, want.bias, SC_N, tol);
	if (rc == 0 && ep == RT_EP_GELU_AUX_BIAS)
		rc = sc_close(got.aux, want.aux, SC_M * SC_N, tol);
	if (rc == 0 && ep == RT_EP_RELU_AUX_BIAS)
		rc = sc_same_mask(got.aux, want.aux);
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
	if (lt_load(l) == 0 && (l->ws = rt_cuda_alloc(rt, LT_WORKSPACE)))
		l->state = 1;
	else if (getenv("DLCC_VERBOSE"))
		fprintf(stderr, "dlcc: cuBLASLt epilogues unavailable (%s); using cuBLAS and kernels\n",
			!l->lib ? "no libcublasLt" : "no handle or workspace");
	rt->err[0] = 0; /* a failed probe is not an error of the step */
	return l->state > 0 ? l : NULL;
}

/* whether epilogue ep with a D of type ct passed its self-check (run on its first use; a half
 * D also needs the f32 form to pass) */
static int lt_usable(Rt *rt, RtLt *l, RtEpilogue ep, dlcc_dtype ct)
{
	int c = ct == DLCC_F16 ? 1 : ct == DLCC_BF16 ? 2 : 0;
	static const char *const names[RT_EP_COUNT] = {
		"BIAS", "RELU_BIAS", "RELU_AUX_BIAS", "GELU_BIAS", "GELU_AUX_BIAS", "DRELU", "DRELU_BGRAD",
		"DGELU", "DGELU_BGRAD", "BGRADA", "BGRADB"};
	if (c && !lt_usable(rt, l, ep, DLCC_F32))
		return 0;
	if (!l->checked[ep][c]) {
		l->checked[ep][c] = lt_selfcheck(rt, l, ep, ct) == 0 ? 1 : -1;
		rt->err[0] = 0;
		if (getenv("DLCC_VERBOSE"))
			fprintf(stderr, "dlcc: cuBLASLt epilogue %s (D %s) %s\n", names[ep],
				c == 1 ? "fp16" : c == 2 ? "bf16" : "fp32",
				l->checked[ep][c] > 0 ? "passed its self-check" : "failed its self-check; using cuBLAS and kernels");
	}
	return l->checked[ep][c] > 0;
}

int rt_cuda_gemm_ep(Rt *rt, RtEpilogue ep, dlcc_dtype dt, dlcc_dtype ct, int transa, int transb, int m, int n,
		    int k, const void *A, int lda, const void *B, int ldb, void *C, int ldc, void *bias, void *aux,
		    long long ldaux)
{
	RtLt *l = lt_open(rt);
	if (!l || m <= 0 || n <= 0 || !lt_usable(rt, l, ep, ct))
		return 1;
	int s = lt_run(l, ep, dt, ct, transa, transb, m, n, k, A, lda, B, ldb, C, ldc, bias, aux, ldaux);
	if (s == -1 || s == CUBLAS_STATUS_NOT_SUPPORTED || s == CUBLAS_STATUS_INVALID_VALUE)
		return 1;
	if (s != CUBLAS_STATUS_SUCCESS)
		return rt_fail(rt, "cublasLtMatmul(m=%d n=%d k=%d, epilogue %d): cuBLAS status %d", m, n, k, (int)ep, s);
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
