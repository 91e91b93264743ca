/*
 * cuda_emu.h — compile generated CUDA C as plain C11 for the CPU emulation.
 *
 * Generated kernel source is written in a CUDA C subset and compiled twice: by NVRTC for the GPU
 * and by the system C compiler after `#include "emu/cuda_emu.h"` (include path: runtime/). This
 * header maps that subset onto C and onto the scheduler in runtime/emu.c:
 *  - qualifiers: __global__ vanishes, __device__ is `static inline`, __shared__ is `static`
 *    (blocks run one after another, so one copy per kernel is one copy per block),
 *    __restrict__ is `restrict`;
 *  - threadIdx/blockIdx/blockDim/gridDim are globals that the scheduler sets before it runs (or
 *    resumes) a thread; kernels must read them, never cache them across a barrier in statics;
 *  - __syncthreads, __syncwarp and the shuffles call into the scheduler, which runs the threads of
 *    such kernels (RtKernelInfo.uses_sync = 1) as coroutines; shuffles exchange values through a
 *    per-block slot array between two warp barriers;
 *  - atomics are plain read-modify-writes (one host thread runs everything);
 *  - __half and __nv_bfloat16 are structs of their bits with CUDA's rounding (rt_half.h); they
 *    have no C operators: convert to float, compute, convert back.
 * Write kernels as `__device__ __forceinline__ T f(...)` (that order) and never add `static`.
 */
#ifndef DLCC_CUDA_EMU_H
#define DLCC_CUDA_EMU_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../rt_half.h"

typedef struct { unsigned x, y, z; } uint3;
typedef uint3 dim3;

extern uint3 threadIdx, blockIdx, blockDim, gridDim;
extern void *rt_emu_dynamic_smem; /* dynamic shared memory of the launch (rt_launch shmem) */

#define __global__
#define __host__
#define __device__ static inline
#define __forceinline__ __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __shared__ static
#define __constant__ static
#define __restrict__ restrict
#define __launch_bounds__(...)
#define warpSize 32
/* `DLCC_DYNAMIC_SHARED(float, smem);` declares the dynamic shared memory as a T pointer. */
#define DLCC_DYNAMIC_SHARED(T, name) T *name = (T *)rt_emu_dynamic_smem
/* cuLaunchKernel argument i of a trampoline: `RT_EMU_ARG(args, 0, const float *)` */
#define RT_EMU_ARG(args, i, T) (*(T *)(args)[i])

/* ---- barriers and warp exchange (runtime/emu.c) ---- */
void rt_emu_syncthreads(void);
void rt_emu_syncwarp(void);
double rt_emu_shfl_d(double v, int kind, int lane_arg, int width);
long long rt_emu_shfl_ll(long long v, int kind, int lane_arg, int width);
enum { RT_EMU_SHFL_IDX, RT_EMU_SHFL_UP, RT_EMU_SHFL_DOWN, RT_EMU_SHFL_XOR };

#define __syncthreads() rt_emu_syncthreads()
#define __syncwarp(...) rt_emu_syncwarp()
#define __activemask() 0xffffffffu
#define __threadfence() ((void)0) /* blocks run one after another: their writes are in order */

static inline float rt_emu_shfl_f(float v, int kind, int l, int w)
{
	return (float)rt_emu_shfl_d(v, kind, l, w);
}
static inline int rt_emu_shfl_i(int v, int kind, int l, int w)
{
	return (int)rt_emu_shfl_ll(v, kind, l, w);
}
static inline unsigned rt_emu_shfl_u(unsigned v, int kind, int l, int w)
{
	return (unsigned)rt_emu_shfl_ll(v, kind, l, w);
}
static inline long long rt_emu_shfl_l(long long v, int kind, int l, int w)
{
	return rt_emu_shfl_ll(v, kind, l, w);
}

#define RT_EMU_SHFL_(kind, v, lane, w, ...)                                                   \
	_Generic((v), float: rt_emu_shfl_f, double: rt_emu_shfl_d, int: rt_emu_shfl_i,         \
		 unsigned: rt_emu_shfl_u, long long: rt_emu_shfl_l)((v), (kind), (lane), (w))
/* the optional width argument defaults to warpSize */
#define __shfl_sync(mask, v, ...)                                                              \
	((void)(mask), RT_EMU_SHFL_(RT_EMU_SHFL_IDX, v, __VA_ARGS__, 32, 0))
#define __shfl_up_sync(mask, v, ...)                                                           \
	((void)(mask), RT_EMU_SHFL_(RT_EMU_SHFL_UP, v, __VA_ARGS__, 32, 0))
#define __shfl_down_sync(mask, v, ...)                                                         \
	((void)(mask), RT_EMU_SHFL_(RT_EMU_SHFL_DOWN, v, __VA_ARGS__, 32, 0))
#define __shfl_xor_sync(mask, v, ...)                                                          \
	((void)(mask), RT_EMU_SHFL_(RT_EMU_SHFL_XOR, v, __VA_ARGS__, 32, 0))

/* ---- atomics: one host thread runs every CUDA thread, so plain updates are atomic ---- */
#define RT_EMU_ATOMIC_(name, T, expr)                                                          \
	static inline T name(T *p, T v) { T old = *p; *p = (expr); return old; }
RT_EMU_ATOMIC_(rt_emu_atomic_add_f, float, old + v)
RT_EMU_ATOMIC_(rt_emu_atomic_add_d, double, old + v)
RT_EMU_ATOMIC_(rt_emu_atomic_add_i, int, old + v)
RT_EMU_ATOMIC_(rt_emu_atomic_add_u, unsigned, old + v)
RT_EMU_ATOMIC_(rt_emu_atomic_add_ull, unsigned long long, old + v)
RT_EMU_ATOMIC_(rt_emu_atomic_max_i, int, old > v ? old : v)
RT_EMU_ATOMIC_(rt_emu_atomic_max_u, unsigned, old > v ? old : v)
RT_EMU_ATOMIC_(rt_emu_atomic_min_i, int, old < v ? old : v)
RT_EMU_ATOMIC_(rt_emu_atomic_min_u, unsigned, old < v ? old : v)
RT_EMU_ATOMIC_(rt_emu_atomic_exch_i, int, v)
RT_EMU_ATOMIC_(rt_emu_atomic_exch_u, unsigned, v)
RT_EMU_ATOMIC_(rt_emu_atomic_exch_f, float, v)
#define RT_EMU_CAS_(name, T)                                                                   \
	static inline T name(T *p, T cmp, T v) { T old = *p; if (old == cmp) *p = v; return old; }
RT_EMU_CAS_(rt_emu_atomic_cas_i, int)
RT_EMU_CAS_(rt_emu_atomic_cas_u, unsigned)
RT_EMU_CAS_(rt_emu_atomic_cas_ull, unsigned long long)

#define atomicAdd(p, v)                                                                        \
	_Generic((p), float *: rt_emu_atomic_add_f, double *: rt_emu_atomic_add_d,             \
		 int *: rt_emu_atomic_add_i, unsigned *: rt_emu_atomic_add_u,                  \
		 unsigned long long *: rt_emu_atomic_add_ull)((p), (v))
#define atomicMax(p, v)                                                                        \
	_Generic((p), int *: rt_emu_atomic_max_i, unsigned *: rt_emu_atomic_max_u)((p), (v))
#define atomicMin(p, v)                                                                        \
	_Generic((p), int *: rt_emu_atomic_min_i, unsigned *: rt_emu_atomic_min_u)((p), (v))
#define atomicExch(p, v)                                                                       \
	_Generic((p), int *: rt_emu_atomic_exch_i, unsigned *: rt_emu_atomic_exch_u,           \
		 float *: rt_emu_atomic_exch_f)((p), (v))
#define atomicCAS(p, c, v)                                                                     \
	_Generic((p), int *: rt_emu_atomic_cas_i, unsigned *: rt_emu_atomic_cas_u,             \
		 unsigned long long *: rt_emu_atomic_cas_ull)((p), (c), (v))

/* ---- math intrinsics (the libm functions expf, logf, tanhf, ... are used as they are) ---- */
#define __expf(x) expf(x)
#define __logf(x) logf(x)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __powf(x, y) powf(x, y)
#define __fdividef(a, b) ((a) / (b))
#define __ldg(p) (*(p))
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
static inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
static inline long long __double_as_longlong(double d) { long long i; memcpy(&i, &d, 8); return i; }
static inline double __longlong_as_double(long long i) { double d; memcpy(&d, &i, 8); return d; }

#define RT_EMU_MINMAX_(T, s)                                                                   \
	static inline T rt_emu_min_##s(T a, T b) { return a < b ? a : b; }                     \
	static inline T rt_emu_max_##s(T a, T b) { return a > b ? a : b; }
RT_EMU_MINMAX_(int, i)
RT_EMU_MINMAX_(unsigned, u)
RT_EMU_MINMAX_(long long, ll)
RT_EMU_MINMAX_(unsigned long long, ull)
#define min(a, b)                                                                              \
	_Generic((a) + (b), int: rt_emu_min_i, unsigned: rt_emu_min_u, long long: rt_emu_min_ll, \
		 unsigned long long: rt_emu_min_ull, float: fminf, double: fmin)((a), (b))
#define max(a, b)                                                                              \
	_Generic((a) + (b), int: rt_emu_max_i, unsigned: rt_emu_max_u, long long: rt_emu_max_ll, \
		 unsigned long long: rt_emu_max_ull, float: fmaxf, double: fmax)((a), (b))

/* ---- half precision ---- */
typedef struct { uint16_t x; } __half;
typedef struct { uint16_t x; } __nv_bfloat16;

static inline __half __float2half(float f) { __half h = { rt_f32_to_f16(f) }; return h; }
static inline __half __float2half_rn(float f) { return __float2half(f); }
static inline float __half2float(__half h) { return rt_f16_to_f32(h.x); }
static inline __nv_bfloat16 __float2bfloat16(float f)
{
	__nv_bfloat16 b = { rt_f32_to_bf16(f) };
	return b;
}
static inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }
static inline float __bfloat162float(__nv_bfloat16 b) { return rt_bf16_to_f32(b.x); }
static inline __half __ushort_as_half(unsigned short u) { __half h = { u }; return h; }
static inline unsigned short __half_as_ushort(__half h) { return h.x; }
static inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u)
{
	__nv_bfloat16 b = { u };
	return b;
}
static inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.x; }

#endif
