/*
 * rt_epilogue.c — what rt_gemm_ep's epilogues compute, on host memory.
 *
 * The CPU backend runs a product with an epilogue as rt_gemm_cpu followed by rt_ep_host; the
 * cuBLASLt backend (rt_cublaslt.c) checks each epilogue against rt_ep_host on a small product
 * before it uses it. The definitions follow cuBLASLt's (rt.h lists them): the bias runs along
 * the rows of the column-major D, the ReLU mask is one bit per element of D in columns of
 * ldaux bits (bit i % 8 of byte i / 8 of column j), the GELU is the tanh form, and the bias
 * gradients of the D*_BGRAD forms sum a row of the result D (after the activation's gradient)
 * while BGRADA / BGRADB sum the product's operands over k. Sums run in double, in index order.
 */
#include <math.h>
#include <stdint.h>

#include "rt_half.h"
#include "rt_internal.h"

#define GELU_K 0.79788456080286536 /* sqrt(2 / pi) */
#define GELU_C 0.044715

static double gelu_tanh(double v) { return 0.5 * v * (1 + tanh(GELU_K * (v + GELU_C * v * v * v))); }

static double gelu_tanh_d(double x)
{
	double t = tanh(GELU_K * (x + GELU_C * x * x * x));
	return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_K * (1 + 3 * GELU_C * x * x);
}

static double load(dlcc_dtype dt, const void *p, size_t e)
{
	switch (dt) {
	case DLCC_F16: return rt_f16_to_f32(((const uint16_t *)p)[e]);
	case DLCC_BF16: return rt_bf16_to_f32(((const uint16_t *)p)[e]);
	case DLCC_F64: return ((const double *)p)[e];
	default: return ((const float *)p)[e];
	}
}

/* bias[r] = sum over c < cols of op(X)(r, c), for r < rows */
static void row_sums(dlcc_dtype dt, int trans, const void *X, int ld, int rows, int cols, float *bias)
{
	for (int r = 0; r < rows; r++) {
		double s = 0;
		for (int c = 0; c < cols; c++)
			s += load(dt, X, trans ? (size_t)c + (size_t)r * ld : (size_t)r + (size_t)c * ld);
		bias[r] = (float)s;
	}
}

static int mask_bit(const void *aux, long long ldaux, int i, int j)
{
	const uint8_t *b = (const uint8_t *)aux + (size_t)j * (size_t)(ldaux / 8);
	return b[i / 8] >> (i % 8) & 1;
}

static void set_mask_bit(void *aux, long long ldaux, int i, int j, int on)
{
	uint8_t *b = (uint8_t *)aux + (size_t)j * (size_t)(ldaux / 8) + i / 8;
	*b = (uint8_t)(on ? *b | 1u << (i % 8) : *b & ~(1u << (i % 8)));
}

/* one element of D after the epilogue; v is P(i, j) */
static float ep_elem(RtEpilogue ep, float v, const float *bias, void *aux, long long ldaux, int i, int j)
{
	float *a = aux;
	size_t ai = (size_t)i + (size_t)j * (size_t)ldaux;
	switch (ep) {
	case RT_EP_BIAS: return v + bias[i];
	case RT_EP_RELU_BIAS:
	case RT_EP_RELU_AUX_BIAS:
		v += bias[i];
		if (ep == RT_EP_RELU_AUX_BIAS)
			set_mask_bit(aux, ldaux, i, j, v > 0.0f);
		return v > 0.0f ? v : 0.0f;
	case RT_EP_GELU_BIAS:
	case RT_EP_GELU_AUX_BIAS:
		v += bias[i];
		if (ep == RT_EP_GELU_AUX_BIAS)
			a[ai] = v;
		return (float)gelu_tanh(v);
	case RT_EP_DRELU:
	case RT_EP_DRELU_BGRAD: return mask_bit(aux, ldaux, i, j) ? v : 0.0f;
	case RT_EP_DGELU:
	case RT_EP_DGELU_BGRAD: return (float)(v * gelu_tanh_d(a[ai]));
	default: return v;
	}
}

void rt_ep_host(RtEpilogue ep, dlcc_dtype dt, int transa, int transb, int m, int n, int k, const void *A, int lda,
		const void *B, int ldb, float *C, int ldc, void *bias, void *aux, long long ldaux)
{
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++) {
			float *c = C + (size_t)i + (size_t)j * ldc;
			*c = ep_elem(ep, *c, bias, aux, ldaux, i, j);
		}
	if (ep == RT_EP_DRELU_BGRAD || ep == RT_EP_DGELU_BGRAD)
		row_sums(DLCC_F32, 0, C, ldc, m, n, bias);
	else if (ep == RT_EP_BGRADA)
		row_sums(dt, transa, A, lda, m, k, bias);
	else if (ep == RT_EP_BGRADB) /* columns of op(B): rows of op(B)^T */
		row_sums(dt, !transb, B, ldb, n, k, bias);
}

int rt_ep_valid(RtEpilogue ep, int m, long long ldaux)
{
	switch (ep) {
	case RT_EP_RELU_AUX_BIAS:
	case RT_EP_DRELU:
	case RT_EP_DRELU_BGRAD: return ldaux % 128 == 0 && ldaux >= m ? 0 : -1;
	case RT_EP_GELU_AUX_BIAS:
	case RT_EP_DGELU:
	case RT_EP_DGELU_BGRAD: return ldaux < m ? -1 : ldaux % 8 ? 1 : 0; /* cuBLASLt wants a multiple of 8 */
	default: return ep >= 0 && ep < RT_EP_COUNT ? 0 : -1;
	}
}

int rt_ep_half_ok(RtEpilogue ep)
{
	return ep == RT_EP_BIAS || ep == RT_EP_RELU_BIAS || ep == RT_EP_RELU_AUX_BIAS || ep == RT_EP_GELU_BIAS ||
	       ep == RT_EP_DRELU || ep == RT_EP_DRELU_BGRAD;
}

void rt_ep_round(dlcc_dtype ct, const float *t, int m, int n, void *C, int ldc)
{
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++) {
			float v = t[(size_t)i + (size_t)j * m];
			uint16_t *c = (uint16_t *)C + (size_t)i + (size_t)j * ldc;
			*c = ct == DLCC_F16 ? rt_f32_to_f16(v) : rt_f32_to_bf16(v);
		}
}
