/*
 * rt_device.c — the Rt device abstraction: choosing a backend, memory, copies, launches, GEMM.
 *
 * Two backends sit behind one set of calls. The CUDA backend (rt_cuda.c) is chosen for RT_CUDA,
 * or for RT_AUTO when libcuda loads, cuInit succeeds and a device exists; DLCC_DEVICE=cpu|cuda in
 * the environment overrides RT_AUTO. The CPU backend is the emulation: device memory is 64-byte
 * aligned host memory, copies are memcpy, a launch runs the kernel's C trampoline through the
 * emulation scheduler (emu.c) and rt_gemm runs the CPU GEMM (gemm_cpu.c). Every failure leaves
 * one line in rt->err naming the call that failed; rt_error returns it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"
#include "rt_internal.h"

size_t rt_dtype_size(dlcc_dtype dt)
{
	switch (dt) {
	case DLCC_F32: case DLCC_I32: return 4;
	case DLCC_F16: case DLCC_BF16: return 2;
	case DLCC_F64: case DLCC_I64: return 8;
	case DLCC_BOOL: case DLCC_U8: return 1;
	}
	return 0;
}

int64_t rt_numel(const dlcc_tensor_info *t, int64_t batch)
{
	int64_t n = 1;
	for (int i = 0; i < t->rank; i++)
		n *= t->dims[i] < 0 ? -t->dims[i] * batch : t->dims[i];
	return n;
}

int rt_path_err(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", path, msg);
	return -1;
}

int rt_fail(Rt *rt, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rt->err, sizeof rt->err, fmt, ap);
	va_end(ap);
	return -1;
}

const char *rt_error(const Rt *rt) { return rt->err; }
RtDevice rt_device(const Rt *rt) { return rt->dev; }
const char *rt_device_name(const Rt *rt) { return rt->name; }

/* RT_AUTO resolved: the environment first, then whether a GPU answers. */
static RtDevice resolve_device(RtDevice want, char *err, size_t errlen, int *bad)
{
	const char *env = getenv("DLCC_DEVICE");
	*bad = 0;
	if (want != RT_AUTO)
		return want;
	if (env && *env) {
		if (!strcmp(env, "cpu"))
			return RT_CPU;
		if (!strcmp(env, "cuda"))
			return RT_CUDA;
		snprintf(err, errlen, "DLCC_DEVICE=%s: expected cpu or cuda", env);
		*bad = 1;
		return RT_AUTO;
	}
	char why[256];
	return rt_cuda_probe(why, sizeof why) ? RT_CUDA : RT_CPU;
}

Rt *rt_create(RtDevice want, const RtModuleImage *img, char *err, size_t errlen)
{
	int bad;
	RtDevice dev = resolve_device(want, err, errlen, &bad);
	if (bad)
		return NULL;
	Rt *rt = calloc(1, sizeof *rt);
	if (!rt) {
		snprintf(err, errlen, "rt_create: out of memory");
		return NULL;
	}
	rt->img = img;
	rt->dev = dev;
	rt_prof_open(rt);
	if (dev == RT_CPU) {
		snprintf(rt->name, sizeof rt->name, "cpu emulation");
		return rt;
	}
	if (rt_cuda_open(rt)) {
		snprintf(err, errlen, "%s", rt->err);
		rt_destroy(rt);
		return NULL;
	}
	return rt;
}

void rt_destroy(Rt *rt)
{
	if (!rt)
		return;
	rt_prof_close(rt);
	if (rt->dev == RT_CUDA)
		rt_lt_close(rt), rt_cuda_close(rt);
	free(rt);
}

void *rt_alloc(Rt *rt, size_t bytes)
{
	if (rt->dev == RT_CUDA)
		return rt_cuda_alloc(rt, bytes);
	size_t rounded = (bytes + 63) / 64 * 64;
	void *p = aligned_alloc(64, rounded ? rounded : 64);
	if (!p) {
		rt_fail(rt, "rt_alloc: out of host memory for %zu bytes", bytes);
		return NULL;
	}
	memset(p, 0, rounded ? rounded : 64);
	return p;
}

void rt_free(Rt *rt, void *p)
{
	if (!p)
		return;
	if (rt->dev == RT_CUDA)
		rt_cuda_free(rt, p);
	else
		free(p);
}

static int copy_on(Rt *rt, void *dst, const void *src, size_t bytes, RtCopyKind kind)
{
	if (rt->dev == RT_CUDA)
		return rt_cuda_copy(rt, dst, src, bytes, kind);
	memmove(dst, src, bytes);
	return 0;
}

static int copy(Rt *rt, void *dst, const void *src, size_t bytes, RtCopyKind kind)
{
	if (!bytes)
		return 0;
	if (!rt->prof)
		return copy_on(rt, dst, src, bytes, kind);
	double t0 = rt_prof_begin(rt);
	int rc = copy_on(rt, dst, src, bytes, kind);
	rt_prof_end(rt, t0, kind == RT_COPY_H2D ? "copy host to device" : kind == RT_COPY_D2H ? "copy device to host"
			    : "copy device to device");
	return rc;
}

int rt_h2d(Rt *rt, void *dst, const void *src, size_t bytes)
{
	return copy(rt, dst, src, bytes, RT_COPY_H2D);
}

int rt_d2h(Rt *rt, void *dst, const void *src, size_t bytes)
{
	return copy(rt, dst, src, bytes, RT_COPY_D2H);
}

int rt_d2d(Rt *rt, void *dst, const void *src, size_t bytes)
{
	return copy(rt, dst, src, bytes, RT_COPY_D2D);
}


int rt_memset0(Rt *rt, void *dst, size_t bytes)
{
	if (rt->dev == RT_CUDA)
		return rt_cuda_memset0(rt, dst, bytes);
	memset(dst, 0, bytes);
	return 0;
}

int rt_sync(Rt *rt) { return rt->dev == RT_CUDA ? rt_cuda_sync(rt) : 0; }

static int launch_on(Rt *rt, int k, unsigned g[3], unsigned b[3], unsigned shmem, void **args);

int rt_launch(Rt *rt, int k, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
	      unsigned bz, unsigned shmem, void **args)
{
	if (!rt->img || k < 0 || k >= rt->img->nkernels)
		return rt_fail(rt, "rt_launch: no kernel number %d in this artifact", k);
	unsigned g[3] = { gx, gy, gz }, b[3] = { bx, by, bz };
	if (!rt->prof)
		return launch_on(rt, k, g, b, shmem, args);
	double t0 = rt_prof_begin(rt);
	int rc = launch_on(rt, k, g, b, shmem, args);
	rt_prof_end(rt, t0, rt->img->kernels[k].name);
	return rc;
}

static int launch_on(Rt *rt, int k, unsigned g[3], unsigned b[3], unsigned shmem, void **args)
{
	if (rt->dev == RT_CUDA)
		return rt_cuda_launch(rt, k, g, b, shmem, args);
	const RtKernelInfo *ki = &rt->img->kernels[k];
	if (!ki->emu)
		return rt_fail(rt, "rt_launch(%s): the kernel has no CPU version", ki->name);
	if (rt_emu_launch_shmem(ki->emu, ki->uses_sync, g, b, shmem, args))
		return rt_fail(rt, "rt_launch(%s): %s", ki->name, rt_emu_error());
	return 0;
}

static const char *dt_name(dlcc_dtype dt)
{
	return dt == DLCC_F32 ? "f32" : dt == DLCC_F64 ? "f64" : dt == DLCC_F16 ? "f16" : dt == DLCC_BF16 ? "bf16" : "?";
}

/* a product's profile entry: its kind, types and shape (cuBLAS's column-major m, n, k) */
static void prof_gemm(Rt *rt, double t0, const char *epi, dlcc_dtype dt, dlcc_dtype ct, int ta, int tb,
		      int m, int n, int k, int batch)
{
	char name[96];
	snprintf(name, sizeof name, "gemm%s %s->%s %c%c m=%d n=%d k=%d%s%.0d", epi, dt_name(dt), dt_name(ct),
		 ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, batch > 1 ? " batch=" : "", batch > 1 ? batch : 0);
	rt_prof_end(rt, t0, name);
}

int rt_gemm(Rt *rt, dlcc_dtype dt, dlcc_dtype ct, int transa, int transb, int m, int n, int k, double alpha,
	    const void *A, int lda, long long strideA, const void *B, int ldb, long long strideB,
	    double beta, void *C, int ldc, long long strideC, int batch)
{
	if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < (transa ? k : m) || lda < 1 ||
	    ldb < (transb ? n : k) || ldb < 1 || ldc < m || ldc < 1)
		return rt_fail(rt, "rt_gemm: bad sizes m=%d n=%d k=%d lda=%d ldb=%d ldc=%d "
			       "(transa=%d transb=%d)", m, n, k, lda, ldb, ldc, transa, transb);
	double t0 = rt->prof ? rt_prof_begin(rt) : 0;
	int rc = 0;
	if (rt->dev == RT_CUDA)
		rc = rt_cuda_gemm(rt, dt, ct, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb,
				  strideB, beta, C, ldc, strideC, batch);
	else if (rt_gemm_cpu(dt, ct, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB,
			beta, C, ldc, strideC, batch))
		return rt_fail(rt, "rt_gemm: dtypes %d x %d -> %d are not supported (f32, f64, f16 or bf16 "
			       "into itself or f32)", (int)dt, (int)dt, (int)ct);
	if (rt->prof)
		prof_gemm(rt, t0, "", dt, ct, transa, transb, m, n, k, batch);
	return rc;
}

int rt_gemm_ep(Rt *rt, RtEpilogue ep, dlcc_dtype dt, dlcc_dtype ct, int transa, int transb, int m, int n,
	       int k, const void *A, int lda, const void *B, int ldb, void *C, int ldc, void *bias, void *aux,
	       long long ldaux)
{
	static const char *const names[RT_EP_COUNT] = {
		"+bias", "+bias+relu", "+bias+relu+mask", "+bias+gelu", "+bias+gelu+aux", "+drelu",
		"+drelu+bgrad", "+dgelu", "+dgelu+bgrad", "+bgrada", "+bgradb"};
	const char *off = getenv("DLCC_NO_GEMM_EPILOGUE");
	if ((off && *off && strcmp(off, "0")) || (ct != DLCC_F32 && ct != DLCC_F16 && ct != DLCC_BF16) ||
	    (ct != DLCC_F32 && !rt_ep_half_ok(ep)))
		return 1;
	int valid = rt_ep_valid(ep, m, ldaux);
	if (valid < 0)
		return rt_fail(rt, "rt_gemm_ep: epilogue %d with m=%d and ldaux=%lld", (int)ep, m, ldaux);
	if (valid > 0) /* a layout cuBLASLt does not take: the CPU declines it too */
		return 1;
	if (rt->dev == RT_CUDA) {
		double t0 = rt->prof ? rt_prof_begin(rt) : 0;
		int rc = rt_cuda_gemm_ep(rt, ep, dt, ct, transa, transb, m, n, k, A, lda, B, ldb, C, ldc, bias, aux,
					 ldaux);
		if (rt->prof && rc == 0)
			prof_gemm(rt, t0, names[ep], dt, ct, transa, transb, m, n, k, 1);
		return rc;
	}
	if (ct == DLCC_F32) {
		if (rt_gemm(rt, dt, ct, transa, transb, m, n, k, 1.0, A, lda, 0, B, ldb, 0, 0.0, C, ldc, 0, 1) < 0)
			return -1;
		rt_ep_host(ep, dt, transa, transb, m, n, k, A, lda, B, ldb, C, ldc, bias, aux, ldaux);
		return 0;
	}
	/* a half D: the product and the epilogue in f32, then D rounded once */
	float *t = malloc((size_t)m * (size_t)n * sizeof *t + 1);
	if (!t)
		return rt_fail(rt, "rt_gemm_ep: out of memory");
	int rc = rt_gemm(rt, dt, DLCC_F32, transa, transb, m, n, k, 1.0, A, lda, 0, B, ldb, 0, 0.0, t, m, 0, 1);
	if (rc == 0) {
		rt_ep_host(ep, dt, transa, transb, m, n, k, A, lda, B, ldb, t, m, bias, aux, ldaux);
		rt_ep_round(ct, t, m, n, C, ldc);
	}
	free(t);
	return rc < 0 ? -1 : 0;
}
