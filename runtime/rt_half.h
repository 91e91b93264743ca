/*
 * rt_half.h — bit-exact float16 / bfloat16 conversions shared by the runtime and the emulation.
 *
 * CUDA's __float2half / __float2bfloat16 round to nearest, ties to even; overflow gives ±inf,
 * tiny values become half denormals (or ±0), and every NaN becomes the canonical NaN 0x7fff
 * (sign dropped), as the device's cvt.rn instructions and cuda_fp16.hpp's host code do. The
 * widening conversions are exact and keep NaN payloads. Everything here is integer arithmetic
 * on the IEEE bit patterns, so results do not depend on the host's rounding mode.
 *
 * Included by runtime/emu/cuda_emu.h (which generated kernels include) and by gemm/npy/model
 * code; hence static inline and no dependency beyond <stdint.h>/<string.h>.
 */
#ifndef DLCC_RT_HALF_H
#define DLCC_RT_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t rt_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float rt_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Shift a significand right by `shift`, rounding to nearest even. */
static inline uint32_t rt_round_shift(uint32_t m, int shift)
{
	if (shift <= 0)
		return m;
	if (shift > 31)
		return 0;
	uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
	return q + (rem > half || (rem == half && (q & 1)));
}

static inline uint16_t rt_f32_to_f16(float f)
{
	uint32_t u = rt_f32_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
	if (a > 0x7f800000u)
		return 0x7fff;                       /* NaN: canonical */
	if (a >= 0x477ff000u)
		return (uint16_t)(sign | 0x7c00u);   /* >= 65520 rounds to inf */
	int e = (int)(a >> 23) - 127;
	uint32_t m = (a & 0x7fffffu) | 0x800000u;
	if (e >= -14) /* normal: a carry out of the mantissa bumps the exponent, as it should */
		return (uint16_t)(sign | ((((uint32_t)(e + 15) << 10) | ((m >> 13) & 0x3ffu)) +
					  (rt_round_shift(m, 13) - (m >> 13))));
	if (a == 0)
		return (uint16_t)sign;
	/* denormal: value / 2^-24 = m * 2^(e+1) */
	return (uint16_t)(sign | rt_round_shift(m, -(e + 1)));
}

static inline float rt_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
	if (e == 0x1f)
		return rt_bits_f32(sign | 0x7f800000u | (m << 13));
	if (e != 0)
		return rt_bits_f32(sign | ((e + 112) << 23) | (m << 13));
	if (m == 0)
		return rt_bits_f32(sign);
	int shift = 0; /* normalise the denormal */
	while (!(m & 0x400u)) {
		m <<= 1;
		shift++;
	}
	return rt_bits_f32(sign | ((uint32_t)(113 - shift) << 23) | ((m & 0x3ffu) << 13));
}

static inline uint16_t rt_f32_to_bf16(float f)
{
	uint32_t u = rt_f32_bits(f);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return 0x7fff;
	return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float rt_bf16_to_f32(uint16_t b) { return rt_bits_f32((uint32_t)b << 16); }

#endif
