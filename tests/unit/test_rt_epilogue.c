/*
 * test_rt_epilogue.c — rt_gemm_ep on the CPU against the epilogues' definitions (runtime/rt.h),
 * written here independently: every epilogue, all four transpose combinations, f32 and bf16
 * operands, an f32 result and (where allowed) an fp16/bf16 one, leading dimensions larger than
 * the matrices (the padding untouched). This is the reference a GPU's cuBLASLt is checked
 * against on first use (runtime/rt_cublaslt.c), so the ReLU mask's layout is pinned down here
 * bit for bit: bit i % 8 of byte i / 8 of column j (ldaux bits a column).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "rt_half.h"

enum { M = 9, N = 6, K = 5, LDC = 16, LDM = 128 }; /* LDC: a GELU input's leading dimension is a multiple of 8 */

static double ld(dlcc_dtype dt, const void *p, size_t i)
{
	switch (dt) {
	case DLCC_F16: return rt_f16_to_f32(((const uint16_t *)p)[i]);
	case DLCC_BF16: return rt_bf16_to_f32(((const uint16_t *)p)[i]);
	default: return ((const float *)p)[i];
	}
}

static void st(dlcc_dtype dt, void *p, size_t i, double v)
{
	switch (dt) {
	case DLCC_F16: ((uint16_t *)p)[i] = rt_f32_to_f16((float)v); break;
	case DLCC_BF16: ((uint16_t *)p)[i] = rt_f32_to_bf16((float)v); break;
	default: ((float *)p)[i] = (float)v; break;
	}
}

static double gelu(double v) { return 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))); }

static double gelu_d(double v) /* by a central difference: independent of the runtime's formula */
{
	const double h = 1e-5;
	return (gelu(v + h) - gelu(v - h)) / (2 * h);
}

typedef struct {
	RtEpilogue ep;
	int relu_aux, gelu_aux, bgrad; /* the aux matrix: a mask, a GELU input; a bias gradient out */
} Form;

static void check(Form f, dlcc_dtype dt, dlcc_dtype ct, int ta, int tb)
{
	int lda = (ta ? K : M) + 2, ldb = (tb ? N : K) + 1;
	size_t es = rt_dtype_size(dt), cs = rt_dtype_size(ct);
	void *A = calloc((size_t)lda * (ta ? M : K), es), *B = calloc((size_t)ldb * (tb ? K : N), es);
	void *C = malloc((size_t)LDC * N * cs);
	float bias[M > N ? M : N], aux[LDC * N];
	uint8_t mask[LDM / 8 * N];
	for (size_t i = 0; i < (size_t)lda * (ta ? M : K); i++)
		st(dt, A, i, (double)((int)(i * 7 % 13) - 6) / 8);
	for (size_t i = 0; i < (size_t)ldb * (tb ? K : N); i++)
		st(dt, B, i, (double)((int)(i * 5 % 11) - 5) / 4);
	memset(C, 0x5a, (size_t)LDC * N * cs);
	for (int i = 0; i < M; i++)
		bias[i] = (float)(i % 5) / 2 - 1;
	for (int i = 0; i < LDC * N; i++)
		aux[i] = (float)((i * 3 % 17) - 8) / 3;
	for (int i = 0; i < (int)sizeof mask; i++)
		mask[i] = (uint8_t)(i * 29 + 3);
	float bias0[M > N ? M : N], aux0[LDC * N];
	uint8_t mask0[sizeof mask];
	memcpy(bias0, bias, sizeof bias);
	memcpy(aux0, aux, sizeof aux);
	memcpy(mask0, mask, sizeof mask);
	char err[200];
	Rt *rt = rt_create(RT_CPU, NULL, err, sizeof err);
	cr_assert(rt, "%s", err);
	void *x = f.relu_aux ? (void *)mask : f.gelu_aux ? (void *)aux : NULL;
	long long ldx = f.relu_aux ? LDM : f.gelu_aux ? LDC : 0;
	int rc = rt_gemm_ep(rt, f.ep, dt, ct, ta, tb, M, N, K, A, lda, B, ldb, C, LDC, bias, x, ldx);
	cr_assert_eq(rc, 0, "epilogue %d: rc %d %s", f.ep, rc, rt_error(rt));
	double tol = ct == DLCC_F32 ? 2e-5 : ct == DLCC_F16 ? 1e-3 : 8e-3;
	for (int j = 0; j < N; j++)
		for (int i = 0; i < LDC; i++) {
			size_t ci = (size_t)i + (size_t)j * LDC;
			if (i >= M) {
				cr_assert_eq(((uint8_t *)C)[ci * cs], 0x5a, "padding written");
				continue;
			}
			double p = 0;
			for (int l = 0; l < K; l++)
				p += ld(dt, A, ta ? l + (size_t)i * lda : i + (size_t)l * lda) *
				     ld(dt, B, tb ? j + (size_t)l * ldb : l + (size_t)j * ldb);
			double v = p, want;
			int bit = mask0[j * LDM / 8 + i / 8] >> (i % 8) & 1;
			switch (f.ep) {
			case RT_EP_BIAS: want = v + bias0[i]; break;
			case RT_EP_RELU_BIAS:
			case RT_EP_RELU_AUX_BIAS: want = fmax(v + bias0[i], 0); break;
			case RT_EP_GELU_BIAS:
			case RT_EP_GELU_AUX_BIAS: want = gelu(v + bias0[i]); break;
			case RT_EP_DRELU:
			case RT_EP_DRELU_BGRAD: want = bit ? v : 0; break;
			case RT_EP_DGELU:
			case RT_EP_DGELU_BGRAD: want = v * gelu_d(aux0[ci]); break;
			default: want = v;
			}
			double got = ld(ct, C, ci);
			cr_assert(fabs(got - want) <= tol * (1 + fabs(want)), "epilogue %d ta %d tb %d (%d,%d): %.8g vs %.8g",
				  f.ep, ta, tb, i, j, got, want);
			if (f.ep == RT_EP_RELU_AUX_BIAS)
				cr_assert_eq(mask[j * LDM / 8 + i / 8] >> (i % 8) & 1, v + bias0[i] > 0, "mask bit (%d,%d)", i, j);
			if (f.ep == RT_EP_GELU_AUX_BIAS)
				cr_assert(fabs(aux[ci] - (v + bias0[i])) <= 1e-5 * (1 + fabs(v)), "GELU input (%d,%d)", i, j);
		}
	/* the bias gradients: D's rows (after the activation's gradient), or op(A) / op(B) over k */
	int nb = f.ep == RT_EP_BGRADB ? N : M;
	for (int r = 0; f.bgrad && r < nb; r++) {
		double want = 0;
		if (f.ep == RT_EP_BGRADA)
			for (int l = 0; l < K; l++)
				want += ld(dt, A, ta ? l + (size_t)r * lda : r + (size_t)l * lda);
		else if (f.ep == RT_EP_BGRADB)
			for (int l = 0; l < K; l++)
				want += ld(dt, B, tb ? r + (size_t)l * ldb : l + (size_t)r * ldb);
		else
			for (int j = 0; j < N; j++) {
				double p = 0;
				for (int l = 0; l < K; l++)
					p += ld(dt, A, ta ? l + (size_t)r * lda : r + (size_t)l * lda) *
					     ld(dt, B, tb ? j + (size_t)l * ldb : l + (size_t)j * ldb);
				want += f.ep == RT_EP_DRELU_BGRAD ? (mask0[j * LDM / 8 + r / 8] >> (r % 8) & 1 ? p : 0)
								  : p * gelu_d(aux0[(size_t)r + (size_t)j * LDC]);
			}
		cr_assert(fabs(bias[r] - want) <= 1e-4 * (1 + fabs(want)), "epilogue %d bias gradient %d: %.8g vs %.8g",
			  f.ep, r, bias[r], want);
	}
	rt_destroy(rt);
	free(A), free(B), free(C);
}

static const Form forms[] = {
	{RT_EP_BIAS, 0, 0, 0},         {RT_EP_RELU_BIAS, 0, 0, 0},  {RT_EP_RELU_AUX_BIAS, 1, 0, 0},
	{RT_EP_GELU_BIAS, 0, 0, 0},    {RT_EP_GELU_AUX_BIAS, 0, 1, 0}, {RT_EP_DRELU, 1, 0, 0},
	{RT_EP_DRELU_BGRAD, 1, 0, 1},  {RT_EP_DGELU, 0, 1, 0},      {RT_EP_DGELU_BGRAD, 0, 1, 1},
	{RT_EP_BGRADA, 0, 0, 1},       {RT_EP_BGRADB, 0, 0, 1},
};

static void all(dlcc_dtype dt, dlcc_dtype ct)
{
	for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
		int half_ok = forms[f].ep == RT_EP_BIAS || forms[f].ep == RT_EP_RELU_BIAS || forms[f].ep == RT_EP_RELU_AUX_BIAS ||
			      forms[f].ep == RT_EP_GELU_BIAS || forms[f].ep == RT_EP_DRELU || forms[f].ep == RT_EP_DRELU_BGRAD;
		if (ct != DLCC_F32 && !half_ok)
			continue;
		for (int ta = 0; ta < 2; ta++)
			for (int tb = 0; tb < 2; tb++)
				check(forms[f], dt, ct, ta, tb);
	}
}

Test(rt_epilogue, f32) { all(DLCC_F32, DLCC_F32); }
Test(rt_epilogue, bf16_operands) { all(DLCC_BF16, DLCC_F32); }
Test(rt_epilogue, bf16_result) { all(DLCC_BF16, DLCC_BF16); }
Test(rt_epilogue, f16_result) { all(DLCC_F16, DLCC_F16); }

/* what the runtime declines (1: the caller's fallback runs) and refuses (-1) */
Test(rt_epilogue, declined_and_refused)
{
	char err[200];
	Rt *rt = rt_create(RT_CPU, NULL, err, sizeof err);
	cr_assert(rt, "%s", err);
	float a[4] = {1, 2, 3, 4}, c[4], bias[2] = {0, 0}, aux[4];
	uint16_t h[4];
	/* a GELU input whose leading dimension is not a multiple of 8 (cuBLASLt's rule) */
	cr_assert_eq(rt_gemm_ep(rt, RT_EP_GELU_AUX_BIAS, DLCC_F32, DLCC_F32, 0, 0, 2, 2, 2, a, 2, a, 2, c, 2, bias, aux, 2), 1);
	/* a half D for a GELU gradient */
	cr_assert_eq(rt_gemm_ep(rt, RT_EP_DGELU, DLCC_F16, DLCC_F16, 0, 0, 2, 2, 2, h, 2, h, 2, h, 2, NULL, aux, 8), 1);
	/* an f64 result */
	cr_assert_eq(rt_gemm_ep(rt, RT_EP_BIAS, DLCC_F64, DLCC_F64, 0, 0, 2, 2, 2, a, 2, a, 2, c, 2, bias, NULL, 0), 1);
	/* a ReLU mask whose leading dimension is not a multiple of 128 bits: a caller's error */
	cr_assert_eq(rt_gemm_ep(rt, RT_EP_DRELU, DLCC_F32, DLCC_F32, 0, 0, 2, 2, 2, a, 2, a, 2, c, 2, NULL, aux, 64), -1);
	cr_assert(strstr(rt_error(rt), "ldaux"), "%s", rt_error(rt));
	rt_destroy(rt);
}
