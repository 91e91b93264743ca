/*
 * gemm_cpu.c — cublasGemmStridedBatchedEx on the CPU, for the emulation backend.
 *
 * Semantics are cuBLAS's, column-major: for each batch entry i,
 *   C_i = alpha * op(A_i) * op(B_i) + beta * C_i,   X_i = X + i * strideX elements,
 * op(A) is m x k (A is lda-strided, k x m when transposed), op(B) k x n, C m x n with ldc.
 * beta == 0 means C is only written: whatever it held (NaN included) does not propagate.
 * Compute types follow CUBLAS_COMPUTE_32F / _64F: f32, f16 and bf16 inputs are widened to float
 * and accumulated in float (fp16/bf16 outputs rounded to nearest even at the end, after
 * alpha/beta; fp16/bf16 inputs may also write an f32 C, as mixed precision does); f64 is
 * computed in double.
 *
 * How: per batch entry, op(A) is packed into a contiguous column-major m x k panel unless it is
 * already an untransposed f32/f64 matrix, op(B) is packed into contiguous columns, and the
 * product is formed four columns at a time as axpy updates (C(:,j) += A(:,l) * B(l,j)) whose
 * inner loop runs down a contiguous column and vectorises at -O2. Summation order therefore
 * differs from cuBLAS (which differs between GPUs anyway); results agree to rounding.
 */
/* -O2's "very cheap" vectoriser skips loops of unknown trip count; the kernel needs more. */
#pragma GCC optimize("tree-vectorize", "vect-cost-model=dynamic")

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rt_half.h"
#include "rt_internal.h"

/* acc (m x n, contiguous) = A (m x k, column stride lda) * Bp (k x n, contiguous columns) */
#define DEFINE_KERNEL(T, name)                                                                 \
	static void name(int m, int n, int k, const T *A, size_t lda, const T *Bp, T *acc)    \
	{                                                                                      \
		memset(acc, 0, (size_t)m * n * sizeof(T));                                     \
		int j = 0;                                                                     \
		for (; j + 4 <= n; j += 4) {                                                   \
			T *restrict c0 = acc + (size_t)j * m, *restrict c1 = c0 + m;           \
			T *restrict c2 = c1 + m, *restrict c3 = c2 + m;                        \
			const T *b = Bp + (size_t)j * k;                                       \
			for (int l = 0; l < k; l++) {                                          \
				const T *restrict a = A + (size_t)l * lda;                     \
				T b0 = b[l], b1 = b[k + l], b2 = b[2 * k + l], b3 = b[3 * k + l]; \
				for (int i = 0; i < m; i++) {                                  \
					T x = a[i];                                            \
					c0[i] += x * b0, c1[i] += x * b1;                      \
					c2[i] += x * b2, c3[i] += x * b3;                      \
				}                                                              \
			}                                                                      \
		}                                                                              \
		for (; j < n; j++) {                                                           \
			T *restrict c = acc + (size_t)j * m;                                   \
			const T *b = Bp + (size_t)j * k;                                       \
			for (int l = 0; l < k; l++) {                                          \
				const T *restrict a = A + (size_t)l * lda;                     \
				for (int i = 0; i < m; i++)                                    \
					c[i] += a[i] * b[l];                                   \
			}                                                                      \
		}                                                                              \
	}
DEFINE_KERNEL(float, kernel_f)
DEFINE_KERNEL(double, kernel_d)

/* Element e of a matrix of dtype dt, widened to the compute type. */
static inline float load_f(dlcc_dtype dt, const void *p, size_t e)
{
	switch (dt) {
	case DLCC_F16: return rt_f16_to_f32(((const uint16_t *)p)[e]);
	case DLCC_BF16: return rt_bf16_to_f32(((const uint16_t *)p)[e]);
	default: return ((const float *)p)[e];
	}
}

/* op(X) as a contiguous column-major rows x cols panel; X(r, c) = X[r + c*ld], or X[c + r*ld]
 * when transposed. */
static void pack_f(dlcc_dtype dt, int trans, const void *X, int ld, int rows, int cols, float *out)
{
	for (int c = 0; c < cols; c++)
		for (int r = 0; r < rows; r++)
			out[(size_t)c * rows + r] = load_f(dt, X, trans ? (size_t)c + (size_t)r * ld
								       : (size_t)r + (size_t)c * ld);
}

static void pack_d(int trans, const double *X, int ld, int rows, int cols, double *out)
{
	for (int c = 0; c < cols; c++)
		for (int r = 0; r < rows; r++)
			out[(size_t)c * rows + r] = trans ? X[(size_t)c + (size_t)r * ld]
							  : X[(size_t)r + (size_t)c * ld];
}

static void store_f(dlcc_dtype dt, void *C, int ldc, int m, int n, const float *acc, float alpha,
		    float beta)
{
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++) {
			size_t e = (size_t)i + (size_t)j * ldc;
			float v = alpha * acc[(size_t)j * m + i];
			if (beta != 0.0f)
				v += beta * load_f(dt, C, e);
			if (dt == DLCC_F16)
				((uint16_t *)C)[e] = rt_f32_to_f16(v);
			else if (dt == DLCC_BF16)
				((uint16_t *)C)[e] = rt_f32_to_bf16(v);
			else
				((float *)C)[e] = v;
		}
}

static void store_d(double *C, int ldc, int m, int n, const double *acc, double alpha, double beta)
{
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++) {
			double *c = &C[(size_t)i + (size_t)j * ldc];
			*c = alpha * acc[(size_t)j * m + i] + (beta != 0.0 ? beta * *c : 0.0);
		}
}

typedef struct {
	dlcc_dtype dt, ct; /* A and B; C */
	int ta, tb, m, n, k, lda, ldb, ldc;
	double alpha, beta;
	void *pa, *pb, *acc; /* scratch: packed A, packed B, accumulator */
} Gemm;

static void gemm_one_f(const Gemm *g, const void *A, const void *B, void *C)
{
	const float *a = A;
	size_t lda = (size_t)g->lda;
	if (g->ta || g->dt != DLCC_F32) {
		pack_f(g->dt, g->ta, A, g->lda, g->m, g->k, g->pa);
		a = g->pa, lda = (size_t)g->m;
	}
	pack_f(g->dt, g->tb, B, g->ldb, g->k, g->n, g->pb);
	kernel_f(g->m, g->n, g->k, a, lda, g->pb, g->acc);
	store_f(g->ct, C, g->ldc, g->m, g->n, g->acc, (float)g->alpha, (float)g->beta);
}

static void gemm_one_d(const Gemm *g, const void *A, const void *B, void *C)
{
	const double *a = A;
	size_t lda = (size_t)g->lda;
	if (g->ta) {
		pack_d(1, A, g->lda, g->m, g->k, g->pa);
		a = g->pa, lda = (size_t)g->m;
	}
	pack_d(g->tb, B, g->ldb, g->k, g->n, g->pb);
	kernel_d(g->m, g->n, g->k, a, lda, g->pb, g->acc);
	store_d(C, g->ldc, g->m, g->n, g->acc, g->alpha, g->beta);
}

int rt_gemm_cpu(dlcc_dtype dt, dlcc_dtype ct, int transa, int transb, int m, int n, int k, double alpha,
		const void *A, int lda, long long sA, const void *B, int ldb, long long sB,
		double beta, void *C, int ldc, long long sC, int batch)
{
	size_t es = rt_dtype_size(dt), ces = rt_dtype_size(ct), cs = dt == DLCC_F64 ? 8 : 4;
	int half = dt == DLCC_F16 || dt == DLCC_BF16;
	if (dt != DLCC_F32 && dt != DLCC_F64 && !half)
		return -1;
	if (ct != dt && !(half && ct == DLCC_F32))
		return -1;
	if (m <= 0 || n <= 0 || batch <= 0)
		return 0;
	Gemm g = { dt, ct, transa, transb, m, n, k, lda, ldb, ldc, alpha, beta, NULL, NULL, NULL };
	g.pa = malloc(((size_t)m * k + 1) * cs);
	g.pb = malloc(((size_t)k * n + 1) * cs);
	g.acc = malloc((size_t)m * n * cs);
	int ok = g.pa && g.pb && g.acc;
	for (int i = 0; ok && i < batch; i++) {
		const char *a = (const char *)A + (size_t)(i * sA) * es;
		const char *b = (const char *)B + (size_t)(i * sB) * es;
		char *c = (char *)C + (size_t)(i * sC) * ces;
		if (dt == DLCC_F64)
			gemm_one_d(&g, a, b, c);
		else
			gemm_one_f(&g, a, b, c);
	}
	free(g.pa), free(g.pb), free(g.acc);
	return ok ? 0 : -2;
}
