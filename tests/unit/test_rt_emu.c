/*
 * test_rt_emu.c — the CPU emulation of CUDA C: kernels below are written as codegen writes them
 * (CUDA C subset + a trampoline per kernel) and run through rt_emu_launch. Covered: a shared-
 * memory tree reduction with __syncthreads, warp-shuffle reductions (float, double, int, inside
 * a branch taken by one warp only), atomicAdd across blocks, 2-D blocks, dynamic shared memory,
 * deadlock and misuse reports, and bit-exact __half / __nv_bfloat16 conversions.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "emu.h"
#include "emu/cuda_emu.h"

/* ---- kernels ---- */
__global__ void emut_tree_sum(const float *__restrict__ x, float *__restrict__ out, int n)
{
	__shared__ float s[256];
	unsigned t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
	s[t] = i < (unsigned)n ? x[i] : 0.0f;
	__syncthreads();
	for (unsigned st = blockDim.x / 2; st > 0; st >>= 1) {
		if (t < st)
			s[t] += s[t + st];
		__syncthreads();
	}
	if (t == 0)
		atomicAdd(out, s[0]);
}
static void emut_tree_sum_emu(void **a)
{
	emut_tree_sum(RT_EMU_ARG(a, 0, const float *), RT_EMU_ARG(a, 1, float *), RT_EMU_ARG(a, 2, int));
}

__device__ __forceinline__ float warp_sum(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_down_sync(0xffffffffu, v, o);
	return v;
}

/* block sum: shuffles per warp, partial sums in shared memory, warp 0 finishes */
__global__ void emut_shfl_sum(const float *__restrict__ x, float *__restrict__ out)
{
	__shared__ float part[32];
	unsigned t = threadIdx.x, lane = t % warpSize, w = t / warpSize;
	float v = warp_sum(x[blockIdx.x * blockDim.x + t]);
	if (lane == 0)
		part[w] = v;
	__syncthreads();
	if (w == 0) {
		v = lane < blockDim.x / warpSize ? part[lane] : 0.0f;
		v = warp_sum(v);
		if (lane == 0)
			out[blockIdx.x] = v;
	}
}
static void emut_shfl_sum_emu(void **a)
{
	emut_shfl_sum(RT_EMU_ARG(a, 0, const float *), RT_EMU_ARG(a, 1, float *));
}

/* xor butterfly: every lane ends with the full sum (double and int versions) */
__global__ void emut_xor_all(const double *__restrict__ x, double *__restrict__ out, int *iout)
{
	double v = x[threadIdx.x];
	int iv = (int)threadIdx.x;
	for (int m = 16; m > 0; m >>= 1) {
		v += __shfl_xor_sync(0xffffffffu, v, m);
		iv += __shfl_xor_sync(0xffffffffu, iv, m);
	}
	out[threadIdx.x] = v;
	iout[threadIdx.x] = iv;
}
static void emut_xor_all_emu(void **a)
{
	emut_xor_all(RT_EMU_ARG(a, 0, const double *), RT_EMU_ARG(a, 1, double *), RT_EMU_ARG(a, 2, int *));
}

__global__ void emut_atomic(const float *__restrict__ x, float *out, int *count, int n)
{
	int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
	if (i >= n)
		return;
	atomicAdd(out, x[i]);
	atomicAdd(count, 1);
	atomicMax(count + 1, i);
}
static void emut_atomic_emu(void **a)
{
	emut_atomic(RT_EMU_ARG(a, 0, const float *), RT_EMU_ARG(a, 1, float *), RT_EMU_ARG(a, 2, int *),
		 RT_EMU_ARG(a, 3, int));
}

/* 2-D block: transpose a tile through shared memory */
__global__ void emut_transpose(const float *__restrict__ in, float *__restrict__ out)
{
	__shared__ float tile[8][9];
	tile[threadIdx.y][threadIdx.x] = in[threadIdx.y * 8 + threadIdx.x];
	__syncthreads();
	out[threadIdx.y * 8 + threadIdx.x] = tile[threadIdx.x][threadIdx.y];
}
static void emut_transpose_emu(void **a)
{
	emut_transpose(RT_EMU_ARG(a, 0, const float *), RT_EMU_ARG(a, 1, float *));
}

__global__ void emut_dyn(float *out)
{
	DLCC_DYNAMIC_SHARED(float, smem);
	smem[threadIdx.x] = (float)threadIdx.x;
	__syncthreads();
	out[threadIdx.x] = smem[blockDim.x - 1 - threadIdx.x];
}
static void emut_dyn_emu(void **a) { emut_dyn(RT_EMU_ARG(a, 0, float *)); }

__global__ void emut_early_return(float *out)
{
	if (threadIdx.x == 3)
		return;
	__syncthreads();
	out[threadIdx.x] = 1.0f;
}
static void emut_early_return_emu(void **a) { emut_early_return(RT_EMU_ARG(a, 0, float *)); }

/* ---- tests ---- */
static float *iota_f(int n)
{
	float *x = malloc((size_t)n * sizeof *x);
	for (int i = 0; i < n; i++)
		x[i] = (float)(i % 97) - 40.0f;
	return x;
}

Test(rt_emu, shared_tree_reduction)
{
	int n = 1000;
	float *x = iota_f(n), out = 0, want = 0;
	for (int i = 0; i < n; i++)
		want += x[i];
	void *args[] = { &x, &(float *){ &out }, &n };
	unsigned g[3] = { 4, 1, 1 }, b[3] = { 256, 1, 1 };
	cr_assert_eq(rt_emu_launch(emut_tree_sum_emu, 1, g, b, args), 0, "%s", rt_emu_error());
	cr_assert_float_eq(out, want, 1e-3);
	free(x);
}

Test(rt_emu, warp_shuffle_reduction)
{
	int nb = 3, bs = 256;
	float *x = iota_f(nb * bs), out[3];
	void *args[] = { &x, &(float *){ out } };
	unsigned g[3] = { (unsigned)nb, 1, 1 }, b[3] = { (unsigned)bs, 1, 1 };
	cr_assert_eq(rt_emu_launch(emut_shfl_sum_emu, 1, g, b, args), 0, "%s", rt_emu_error());
	for (int k = 0; k < nb; k++) {
		float want = 0;
		for (int i = 0; i < bs; i++)
			want += x[k * bs + i];
		cr_assert_float_eq(out[k], want, 1e-3, "block %d: %g vs %g", k, out[k], want);
	}
	free(x);
}

Test(rt_emu, xor_shuffle_double_int)
{
	double x[64], out[64];
	int iout[64];
	for (int i = 0; i < 64; i++)
		x[i] = 0.5 * i;
	void *args[] = { &(double *){ x }, &(double *){ out }, &(int *){ iout } };
	unsigned g[3] = { 1, 1, 1 }, b[3] = { 64, 1, 1 };
	cr_assert_eq(rt_emu_launch(emut_xor_all_emu, 1, g, b, args), 0, "%s", rt_emu_error());
	for (int i = 0; i < 64; i++) {
		int w = i / 32;
		double want = 0;
		for (int j = 32 * w; j < 32 * w + 32; j++)
			want += x[j];
		cr_assert_eq(out[i], want, "lane %d", i);
		cr_assert_eq(iout[i], 32 * (32 * w) + 496, "lane %d", i);
	}
}

Test(rt_emu, atomic_add_across_blocks)
{
	int n = 5000;
	float *x = iota_f(n), out = 0, want = 0;
	int cnt[2] = { 0, -1 };
	for (int i = 0; i < n; i++)
		want += x[i];
	void *args[] = { &x, &(float *){ &out }, &(int *){ cnt }, &n };
	unsigned g[3] = { 20, 1, 1 }, b[3] = { 256, 1, 1 };
	cr_assert_eq(rt_emu_launch(emut_atomic_emu, 0, g, b, args), 0, "%s", rt_emu_error());
	cr_assert_float_eq(out, want, 1e-2);
	cr_assert_eq(cnt[0], n);
	cr_assert_eq(cnt[1], n - 1);
	/* the same kernel as coroutines gives the same answer */
	out = 0, cnt[0] = 0, cnt[1] = -1;
	cr_assert_eq(rt_emu_launch(emut_atomic_emu, 1, g, b, args), 0, "%s", rt_emu_error());
	cr_assert_float_eq(out, want, 1e-2);
	free(x);
}

Test(rt_emu, two_d_block_and_dynamic_shared)
{
	float in[64], out[64], d[100];
	for (int i = 0; i < 64; i++)
		in[i] = (float)i;
	void *args[] = { &(float *){ in }, &(float *){ out } };
	unsigned g[3] = { 1, 1, 1 }, b[3] = { 8, 8, 1 };
	cr_assert_eq(rt_emu_launch(emut_transpose_emu, 1, g, b, args), 0, "%s", rt_emu_error());
	for (int y = 0; y < 8; y++)
		for (int x = 0; x < 8; x++)
			cr_assert_eq(out[y * 8 + x], in[x * 8 + y]);
	void *dargs[] = { &(float *){ d } };
	unsigned b2[3] = { 100, 1, 1 };
	cr_assert_eq(rt_emu_launch_shmem(emut_dyn_emu, 1, g, b2, 400, dargs), 0, "%s", rt_emu_error());
	for (int i = 0; i < 100; i++)
		cr_assert_eq(d[i], (float)(99 - i));
}

Test(rt_emu, deadlock_and_misuse_are_reported)
{
	float out[64] = { 0 };
	void *args[] = { &(float *){ out } };
	unsigned g[3] = { 2, 1, 1 }, b[3] = { 64, 1, 1 };
	cr_assert_eq(rt_emu_launch(emut_early_return_emu, 1, g, b, args), -1);
	cr_assert(strstr(rt_emu_error(), "deadlock"), "%s", rt_emu_error());
	cr_assert_eq(rt_emu_launch(emut_early_return_emu, 0, g, b, args), -1);
	cr_assert(strstr(rt_emu_error(), "uses_sync"), "%s", rt_emu_error());
	unsigned big[3] = { 1025, 1, 1 };
	cr_assert_eq(rt_emu_launch(emut_early_return_emu, 1, g, big, args), -1);
	/* the scheduler is usable again after errors */
	float x[256], s = 0;
	for (int i = 0; i < 256; i++)
		x[i] = 1.0f;
	int n = 256;
	void *a2[] = { &(float *){ x }, &(float *){ &s }, &n };
	unsigned b1[3] = { 256, 1, 1 }, g1[3] = { 1, 1, 1 };
	cr_assert_eq(rt_emu_launch(emut_tree_sum_emu, 1, g1, b1, a2), 0, "%s", rt_emu_error());
	cr_assert_eq(s, 256.0f);
}

/* ---- half / bfloat16 ---- */
static int f16_bits(float f) { return __float2half(f).x; }
static int bf16_bits(float f) { return __float2bfloat16(f).x; }

Test(rt_emu, half_round_to_nearest_even)
{
	cr_assert_eq(f16_bits(1.0f), 0x3c00);
	cr_assert_eq(f16_bits(1.0f + ldexpf(1, -11)), 0x3c00);     /* tie -> even */
	cr_assert_eq(f16_bits(1.0f + 3 * ldexpf(1, -11)), 0x3c02); /* tie -> even (up) */
	cr_assert_eq(f16_bits(1.0f + ldexpf(1, -11) + ldexpf(1, -20)), 0x3c01);
	cr_assert_eq(f16_bits(-2.5f), 0xc100);
	cr_assert_eq(f16_bits(65504.0f), 0x7bff);
	cr_assert_eq(f16_bits(65519.0f), 0x7bff);
	cr_assert_eq(f16_bits(65520.0f), 0x7c00); /* overflow rounds to inf */
	cr_assert_eq(f16_bits(-INFINITY), 0xfc00);
	cr_assert_eq(f16_bits(NAN), 0x7fff);
	cr_assert_eq(f16_bits(ldexpf(1, -24)), 0x0001);          /* smallest denormal */
	cr_assert_eq(f16_bits(ldexpf(1, -25)), 0x0000);          /* tie with 0 -> even */
	cr_assert_eq(f16_bits(ldexpf(3, -26)), 0x0001);          /* 0.75 ulp */
	cr_assert_eq(f16_bits(ldexpf(3, -25)), 0x0002);          /* 1.5 ulp -> 2 */
	cr_assert_eq(f16_bits(ldexpf(1023, -24)), 0x03ff);       /* largest denormal */
	cr_assert_eq(f16_bits(ldexpf(2047, -25)), 0x0400);       /* rounds up to min normal */
	cr_assert_eq(f16_bits(-0.0f), 0x8000);
	cr_assert_eq(f16_bits(ldexpf(1, -30)), 0x0000);
}

Test(rt_emu, half_round_trip_and_nearest)
{
	for (unsigned h = 0; h < 0x10000; h++) {
		float f = __half2float(__ushort_as_half((unsigned short)h));
		if (isnan(f)) {
			cr_assert_eq(f16_bits(f), 0x7fff);
			continue;
		}
		cr_assert_eq(f16_bits(f), (int)h, "0x%04x -> %g", h, f);
	}
	/* random floats: the result is a nearest half, ties to even */
	srand(7);
	for (int i = 0; i < 200000; i++) {
		float f = ldexpf((float)rand() / RAND_MAX, rand() % 44 - 28) * (rand() & 1 ? 1 : -1);
		int h = f16_bits(f);
		if ((h & 0x7fff) >= 0x7c00)
			continue;
		double v = __half2float(__ushort_as_half((unsigned short)h)), e = fabs(v - f);
		for (int d = -1; d <= 1; d += 2) {
			int n = h + d;
			if ((n & 0x7fff) >= 0x7c00 || n < 0 || n > 0xffff || ((n ^ h) & 0x8000))
				continue;
			double en = fabs((double)__half2float(__ushort_as_half((unsigned short)n)) - f);
			cr_assert(e < en || (e == en && !(h & 1)), "%a -> 0x%04x", f, h);
		}
	}
}

Test(rt_emu, bfloat16_conversions)
{
	cr_assert_eq(bf16_bits(1.0f), 0x3f80);
	cr_assert_eq(bf16_bits(1.0f + ldexpf(1, -8)), 0x3f80);     /* tie -> even */
	cr_assert_eq(bf16_bits(1.0f + 3 * ldexpf(1, -8)), 0x3f82); /* tie -> even (up) */
	cr_assert_eq(bf16_bits(1.0f + ldexpf(1, -8) + ldexpf(1, -20)), 0x3f81);
	cr_assert_eq(bf16_bits(3.4028235e38f), 0x7f80); /* FLT_MAX rounds to inf */
	cr_assert_eq(bf16_bits(NAN), 0x7fff);
	cr_assert_eq(bf16_bits(ldexpf(1, -133)), 0x0001); /* denormal */
	for (unsigned b = 0; b < 0x10000; b++) {
		float f = __bfloat162float(__ushort_as_bfloat16((unsigned short)b));
		if (!isnan(f))
			cr_assert_eq(bf16_bits(f), (int)b, "0x%04x", b);
	}
}
