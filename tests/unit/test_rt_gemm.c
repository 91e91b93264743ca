/*
 * test_rt_gemm.c — the CPU GEMM against a naive triple loop with cuBLAS's column-major
 * semantics: all four transpose combinations, leading dimensions larger than the matrices,
 * batch strides with gaps, alpha/beta, beta == 0 ignoring NaN in C, untouched padding, and the
 * f32/f64/f16/bf16 dtypes (f16/bf16 widened to float, fp32 accumulation, output rounded).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "rt_half.h"

static double elem(dlcc_dtype dt, const void *p, size_t i)
{
	switch (dt) {
	case DLCC_F64: return ((const double *)p)[i];
	case DLCC_F16: return rt_f16_to_f32(((const uint16_t *)p)[i]);
	case DLCC_BF16: return rt_bf16_to_f32(((const uint16_t *)p)[i]);
	default: return ((const float *)p)[i];
	}
}

static void set_elem(dlcc_dtype dt, void *p, size_t i, double v)
{
	switch (dt) {
	case DLCC_F64: ((double *)p)[i] = v; break;
	case DLCC_F16: ((uint16_t *)p)[i] = rt_f32_to_f16((float)v); break;
	case DLCC_BF16: ((uint16_t *)p)[i] = rt_f32_to_bf16((float)v); break;
	default: ((float *)p)[i] = (float)v; break;
	}
}

static void *rand_buf(dlcc_dtype dt, size_t n)
{
	void *p = malloc(n * rt_dtype_size(dt));
	for (size_t i = 0; i < n; i++)
		set_elem(dt, p, i, (rand() % 2001 - 1000) / 256.0);
	return p;
}

typedef struct { int ta, tb, m, n, k, lda, ldb, ldc; long long sa, sb, sc; int batch; } Case;

static void check(dlcc_dtype dt, Case c, double alpha, double beta, int nan_c)
{
	size_t na = (size_t)c.sa * c.batch, nb = (size_t)c.sb * c.batch, nc = (size_t)c.sc * c.batch;
	void *A = rand_buf(dt, na), *B = rand_buf(dt, nb), *C = rand_buf(dt, nc);
	if (nan_c)
		for (size_t i = 0; i < nc; i++)
			set_elem(dt, C, i, NAN);
	void *C0 = malloc(nc * rt_dtype_size(dt));
	memcpy(C0, C, nc * rt_dtype_size(dt));
	char err[200];
	Rt *rt = rt_create(RT_CPU, NULL, err, sizeof err);
	cr_assert(rt, "%s", err);
	cr_assert_eq(rt_gemm(rt, dt, dt, c.ta, c.tb, c.m, c.n, c.k, alpha, A, c.lda, c.sa, B, c.ldb,
			     c.sb, beta, C, c.ldc, c.sc, c.batch), 0, "%s", rt_error(rt));
	double tol = dt == DLCC_F64 ? 1e-12 : dt == DLCC_F32 ? 1e-5 : dt == DLCC_F16 ? 1e-3 : 8e-3;
	for (int b = 0; b < c.batch; b++)
		for (int j = 0; j < c.n; j++)
			for (int i = 0; i < c.ldc; i++) {
				size_t ci = (size_t)b * c.sc + (size_t)j * c.ldc + i;
				if (i >= c.m) { /* padding rows: untouched */
					cr_assert(!memcmp((char *)C + ci * rt_dtype_size(dt),
							  (char *)C0 + ci * rt_dtype_size(dt),
							  rt_dtype_size(dt)));
					continue;
				}
				double s = 0;
				for (int l = 0; l < c.k; l++) {
					size_t ai = (size_t)b * c.sa + (c.ta ? l + (size_t)i * c.lda
									     : i + (size_t)l * c.lda);
					size_t bi = (size_t)b * c.sb + (c.tb ? j + (size_t)l * c.ldb
									     : l + (size_t)j * c.ldb);
					s += elem(dt, A, ai) * elem(dt, B, bi);
				}
				double want = alpha * s + (beta != 0 ? beta * elem(dt, C0, ci) : 0);
				double got = elem(dt, C, ci);
				cr_assert(fabs(got - want) <= tol * (1 + fabs(want)),
					  "dt %d ta %d tb %d b %d (%d,%d): %.9g vs %.9g", dt, c.ta,
					  c.tb, b, i, j, got, want);
			}
	rt_destroy(rt);
	free(A), free(B), free(C), free(C0);
}

static void all_transposes(dlcc_dtype dt, double alpha, double beta, int nan_c)
{
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			int m = 7, n = 11, k = 5;
			Case c = { ta, tb, m, n, k, (ta ? k : m) + 3, (tb ? n : k) + 2, m + 4, 0, 0, 0, 3 };
			c.sa = (long long)c.lda * (ta ? m : k) + 5;
			c.sb = (long long)c.ldb * (tb ? k : n) + 1;
			c.sc = (long long)c.ldc * n + 7;
			check(dt, c, alpha, beta, nan_c);
		}
}

Test(rt_gemm, f32_all_transposes) { all_transposes(DLCC_F32, 1.0, 0.0, 0); }
Test(rt_gemm, f32_alpha_beta) { all_transposes(DLCC_F32, -0.5, 0.75, 0); }
Test(rt_gemm, f32_beta0_ignores_nan_in_c) { all_transposes(DLCC_F32, 2.0, 0.0, 1); }
Test(rt_gemm, f64) { all_transposes(DLCC_F64, 1.5, -1.0, 0); }
Test(rt_gemm, f16) { all_transposes(DLCC_F16, 1.0, 0.5, 0); }
Test(rt_gemm, bf16) { all_transposes(DLCC_BF16, 1.0, 0.0, 1); }

Test(rt_gemm, k_zero_scales_c)
{
	Case c = { 0, 0, 3, 2, 0, 3, 1, 3, 9, 1, 6, 1 };
	check(DLCC_F32, c, 1.0, 2.0, 0);
}

Test(rt_gemm, bad_sizes_rejected)
{
	char err[200];
	float a[4], b[4], cc[4];
	Rt *rt = rt_create(RT_CPU, NULL, err, sizeof err);
	cr_assert_eq(rt_gemm(rt, DLCC_F32, DLCC_F32, 0, 0, 2, 2, 2, 1, a, 1, 0, b, 2, 0, 0, cc, 2, 0, 1), -1);
	cr_assert(strstr(rt_error(rt), "lda=1"), "%s", rt_error(rt));
	cr_assert_eq(rt_gemm(rt, DLCC_I32, DLCC_I32, 0, 0, 2, 2, 2, 1, a, 2, 0, b, 2, 0, 0, cc, 2, 0, 1), -1);
	rt_destroy(rt);
}
