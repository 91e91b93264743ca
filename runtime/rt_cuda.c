/*
 * rt_cuda.c — the CUDA backend of Rt: the driver API and cuBLAS, both through dlopen.
 *
 * An artifact must load on a machine without a GPU, so nothing here links libcuda or libcublas:
 * the headers give the types, dlopen/dlsym give the functions (a table of pointers filled once
 * per Rt). Opening: libcuda.so.1, cuInit, device 0, its primary context, the module image that
 * fits the device (cubin_sm90 for compute capability 9.x, cubin_sm80 for 8.x, else the PTX, which
 * the driver JIT-compiles), then every kernel's CUfunction, then cuBLAS (libcublas.so.13, .12,
 * then the unversioned name). All work goes to the default stream, so kernels and GEMMs run in
 * program order. Every failing call leaves "call(what): CUDA_ERROR_NAME: text" in rt->err.
 */
#include <cublas_v2.h>
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

typedef struct {
	CUresult (*Init)(unsigned);
	CUresult (*DeviceGet)(CUdevice *, int);
	CUresult (*DeviceGetName)(char *, int, CUdevice);
	CUresult (*DeviceGetAttribute)(int *, CUdevice_attribute, CUdevice);
	CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
	CUresult (*DevicePrimaryCtxRelease)(CUdevice);
	CUresult (*CtxSetCurrent)(CUcontext);
	CUresult (*ModuleLoadData)(CUmodule *, const void *);
	CUresult (*ModuleUnload)(CUmodule);
	CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
	CUresult (*MemAlloc)(CUdeviceptr *, size_t);
	CUresult (*MemFree)(CUdeviceptr);
	CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
	CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
	CUresult (*MemcpyDtoD)(CUdeviceptr, CUdeviceptr, size_t);
	CUresult (*MemsetD8)(CUdeviceptr, unsigned char, size_t);
	CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
				 unsigned, unsigned, CUstream, void **, void **);
	CUresult (*CtxSynchronize)(void);
	CUresult (*GetErrorString)(CUresult, const char **);
	CUresult (*GetErrorName)(CUresult, const char **);
} CuApi;

typedef struct {
	cublasStatus_t (*Create)(cublasHandle_t *);
	cublasStatus_t (*Destroy)(cublasHandle_t);
	cublasStatus_t (*SetMathMode)(cublasHandle_t, cublasMath_t);
	const char *(*GetStatusName)(cublasStatus_t);   /* optional */
	const char *(*GetStatusString)(cublasStatus_t); /* optional */
	cublasStatus_t (*GemmStridedBatchedEx)(cublasHandle_t, cublasOperation_t, cublasOperation_t,
					       int, int, int, const void *, const void *,
					       cudaDataType, int, long long, const void *,
					       cudaDataType, int, long long, const void *, void *,
					       cudaDataType, int, long long, int, cublasComputeType_t,
					       cublasGemmAlgo_t);
} BlasApi;

struct RtCuda {
	void *libcuda, *libcublas;
	CuApi cu;
	BlasApi blas;
	CUdevice dev;
	CUcontext ctx;
	CUmodule mod;
	CUfunction *fn;
	cublasHandle_t handle;
};

/* ---- loading the libraries ---- */
static void *sym(void *lib, const char *name, int *missing, const char **first)
{
	void *p = dlsym(lib, name);
	if (!p && !(*missing)++)
		*first = name;
	return p;
}

#define LOAD(lib, dst, name) (*(void **)&(dst) = sym(lib, name, &missing, first))

static int load_cuda_api(void *lib, CuApi *cu, const char **first)
{
	int missing = 0;
	LOAD(lib, cu->Init, "cuInit");
	LOAD(lib, cu->DeviceGet, "cuDeviceGet");
	LOAD(lib, cu->DeviceGetName, "cuDeviceGetName");
	LOAD(lib, cu->DeviceGetAttribute, "cuDeviceGetAttribute");
	LOAD(lib, cu->DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
	LOAD(lib, cu->DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
	LOAD(lib, cu->CtxSetCurrent, "cuCtxSetCurrent");
	LOAD(lib, cu->ModuleLoadData, "cuModuleLoadData");
	LOAD(lib, cu->ModuleUnload, "cuModuleUnload");
	LOAD(lib, cu->ModuleGetFunction, "cuModuleGetFunction");
	LOAD(lib, cu->MemAlloc, "cuMemAlloc_v2");
	LOAD(lib, cu->MemFree, "cuMemFree_v2");
	LOAD(lib, cu->MemcpyHtoD, "cuMemcpyHtoD_v2");
	LOAD(lib, cu->MemcpyDtoH, "cuMemcpyDtoH_v2");
	LOAD(lib, cu->MemcpyDtoD, "cuMemcpyDtoD_v2");
	LOAD(lib, cu->MemsetD8, "cuMemsetD8_v2");
	LOAD(lib, cu->LaunchKernel, "cuLaunchKernel");
	LOAD(lib, cu->CtxSynchronize, "cuCtxSynchronize");
	LOAD(lib, cu->GetErrorString, "cuGetErrorString");
	LOAD(lib, cu->GetErrorName, "cuGetErrorName");
	return missing ? -1 : 0;
}

static int load_blas_api(void *lib, BlasApi *b, const char **first)
{
	int missing = 0;
	LOAD(lib, b->Create, "cublasCreate_v2");
	LOAD(lib, b->Destroy, "cublasDestroy_v2");
	LOAD(lib, b->SetMathMode, "cublasSetMathMode");
	LOAD(lib, b->GemmStridedBatchedEx, "cublasGemmStridedBatchedEx");
	if (missing)
		return -1;
	*(void **)&b->GetStatusName = dlsym(lib, "cublasGetStatusName");
	*(void **)&b->GetStatusString = dlsym(lib, "cublasGetStatusString");
	return 0;
}

/* libcuda loaded and initialised, or NULL with the reason in why. */
static void *open_libcuda(CuApi *cu, char *why, size_t whylen)
{
	const char *first = "?";
	void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(why, whylen, "no CUDA driver: dlopen(libcuda.so.1): %s", dlerror());
		return NULL;
	}
	if (load_cuda_api(lib, cu, &first)) {
		snprintf(why, whylen, "libcuda.so.1 lacks %s (driver too old?)", first);
		dlclose(lib);
		return NULL;
	}
	return lib;
}

static const char *cu_name(const CuApi *cu, CUresult r, const char **text)
{
	const char *name = NULL;
	*text = NULL;
	if (cu->GetErrorName(r, &name) != CUDA_SUCCESS || !name)
		name = "CUDA_ERROR_UNKNOWN";
	if (cu->GetErrorString(r, text) != CUDA_SUCCESS || !*text)
		*text = "unknown error";
	return name;
}

static int cu_fail(Rt *rt, CUresult r, const char *call, const char *what)
{
	const char *text, *name = cu_name(&rt->cuda->cu, r, &text);
	return rt_fail(rt, "%s(%s): %s: %s", call, what, name, text);
}

#define CU(rt, call, what, ...)                                                                \
	do {                                                                                   \
		CUresult r_ = (rt)->cuda->cu.call(__VA_ARGS__);                                \
		if (r_ != CUDA_SUCCESS)                                                        \
			return cu_fail(rt, r_, "cu" #call, what);                              \
	} while (0)

int rt_cuda_probe(char *why, size_t whylen)
{
	CuApi cu;
	void *lib = open_libcuda(&cu, why, whylen);
	if (!lib)
		return 0;
	CUdevice dev;
	int ok = cu.Init(0) == CUDA_SUCCESS && cu.DeviceGet(&dev, 0) == CUDA_SUCCESS;
	if (!ok)
		snprintf(why, whylen, "cuInit/cuDeviceGet failed: no usable GPU");
	dlclose(lib);
	return ok;
}

/* ---- opening ---- */
static int open_device(Rt *rt)
{
	RtCuda *c = rt->cuda;
	int major = 0, minor = 0;
	char gpu[100];
	CU(rt, Init, "0", 0);
	CU(rt, DeviceGet, "0", &c->dev, 0);
	CU(rt, DeviceGetName, "0", gpu, sizeof gpu, c->dev);
	CU(rt, DeviceGetAttribute, "compute capability major", &major,
	   CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, c->dev);
	CU(rt, DeviceGetAttribute, "compute capability minor", &minor,
	   CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, c->dev);
	CU(rt, DevicePrimaryCtxRetain, gpu, &c->ctx, c->dev);
	CU(rt, CtxSetCurrent, gpu, c->ctx);
	snprintf(rt->name, sizeof rt->name, "cuda: %s (sm_%d%d)", gpu, major, minor);
	return major;
}

static int load_module(Rt *rt, int major)
{
	const RtModuleImage *img = rt->img;
	RtCuda *c = rt->cuda;
	if (!img || img->nkernels == 0)
		return 0;
	const void *image = img->ptx;
	const char *which = "PTX";
	if (major == 9 && img->cubin_sm90 && img->cubin_sm90_size)
		image = img->cubin_sm90, which = "cubin sm_90";
	else if (major == 8 && img->cubin_sm80 && img->cubin_sm80_size)
		image = img->cubin_sm80, which = "cubin sm_80";
	if (!image)
		return rt_fail(rt, "%s: the artifact has no PTX and no CUBIN for this GPU", rt->name);
	CU(rt, ModuleLoadData, which, &c->mod, image);
	if (!(c->fn = calloc((size_t)img->nkernels, sizeof *c->fn)))
		return rt_fail(rt, "rt_create: out of memory");
	for (int i = 0; i < img->nkernels; i++)
		CU(rt, ModuleGetFunction, img->kernels[i].name, &c->fn[i], c->mod,
		   img->kernels[i].name);
	return 0;
}

static int open_cublas(Rt *rt)
{
	/* the loader's path first, then the toolkit's usual place (often not in ld.so.conf) */
	static const char *names[] = { "libcublas.so.13", "libcublas.so.12", "libcublas.so",
				       "/usr/local/cuda/lib64/libcublas.so.13",
				       "/usr/local/cuda/lib64/libcublas.so.12",
				       "/usr/local/cuda/lib64/libcublas.so" };
	RtCuda *c = rt->cuda;
	const char *first = "?";
	for (size_t i = 0; i < sizeof names / sizeof *names && !c->libcublas; i++)
		c->libcublas = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
	if (!c->libcublas)
		return rt_fail(rt, "cuBLAS not found: dlopen(libcublas.so.13/.12/.so): %s "
			       "(install the CUDA runtime libraries or use --device cpu)", dlerror());
	if (load_blas_api(c->libcublas, &c->blas, &first))
		return rt_fail(rt, "libcublas lacks %s", first);
	cublasStatus_t s = c->blas.Create(&c->handle);
	if (s != CUBLAS_STATUS_SUCCESS)
		return rt_fail(rt, "cublasCreate_v2: cuBLAS status %d", (int)s);
	c->blas.SetMathMode(c->handle, CUBLAS_DEFAULT_MATH); /* no TF32: fp32 GEMMs stay fp32 */
	return 0;
}

int rt_cuda_open(Rt *rt)
{
	char why[300];
	if (!(rt->cuda = calloc(1, sizeof *rt->cuda)))
		return rt_fail(rt, "rt_create: out of memory");
	if (!(rt->cuda->libcuda = open_libcuda(&rt->cuda->cu, why, sizeof why)))
		return rt_fail(rt, "--device cuda: %s", why);
	int major = open_device(rt);
	if (major < 0 || load_module(rt, major) || open_cublas(rt))
		return -1;
	return 0;
}

void rt_cuda_close(Rt *rt)
{
	RtCuda *c = rt->cuda;
	if (!c)
		return;
	if (c->handle)
		c->blas.Destroy(c->handle);
	if (c->mod)
		c->cu.ModuleUnload(c->mod);
	if (c->ctx)
		c->cu.DevicePrimaryCtxRelease(c->dev);
	free(c->fn);
	if (c->libcublas)
		dlclose(c->libcublas);
	if (c->libcuda)
		dlclose(c->libcuda);
	free(c);
	rt->cuda = NULL;
}

/* ---- memory and launches ---- */
void *rt_cuda_alloc(Rt *rt, size_t bytes)
{
	CUdeviceptr p = 0;
	CUresult r = rt->cuda->cu.MemAlloc(&p, bytes ? bytes : 1);
	char what[40];
	snprintf(what, sizeof what, "%zu bytes", bytes);
	if (r != CUDA_SUCCESS) {
		cu_fail(rt, r, "cuMemAlloc", what);
		return NULL;
	}
	r = rt->cuda->cu.MemsetD8(p, 0, bytes);
	if (r != CUDA_SUCCESS) {
		cu_fail(rt, r, "cuMemsetD8", what);
		rt->cuda->cu.MemFree(p);
		return NULL;
	}
	return (void *)(uintptr_t)p;
}

void rt_cuda_free(Rt *rt, void *p) { rt->cuda->cu.MemFree((CUdeviceptr)(uintptr_t)p); }

int rt_cuda_copy(Rt *rt, void *dst, const void *src, size_t bytes, RtCopyKind kind)
{
	CUdeviceptr d = (CUdeviceptr)(uintptr_t)dst, s = (CUdeviceptr)(uintptr_t)src;
	char what[40];
	snprintf(what, sizeof what, "%zu bytes", bytes);
	if (kind == RT_COPY_H2D)
		CU(rt, MemcpyHtoD, what, d, src, bytes);
	else if (kind == RT_COPY_D2H)
		CU(rt, MemcpyDtoH, what, dst, s, bytes);
	else
		CU(rt, MemcpyDtoD, what, d, s, bytes);
	return 0;
}

int rt_cuda_memset0(Rt *rt, void *dst, size_t bytes)
{
	CU(rt, MemsetD8, "0", (CUdeviceptr)(uintptr_t)dst, 0, bytes);
	return 0;
}

int rt_cuda_sync(Rt *rt)
{
	CU(rt, CtxSynchronize, "");
	return 0;
}

int rt_cuda_launch(Rt *rt, int k, const unsigned g[3], const unsigned b[3], unsigned shmem,
		   void **args)
{
	CU(rt, LaunchKernel, rt->img->kernels[k].name, rt->cuda->fn[k], g[0], g[1], g[2], b[0],
	   b[1], b[2], shmem, NULL, args, NULL);
	return 0;
}

/* ---- cuBLAS ---- */
static int blas_fail(Rt *rt, cublasStatus_t s, const char *what)
{
	const BlasApi *b = &rt->cuda->blas;
	const char *name = b->GetStatusName ? b->GetStatusName(s) : NULL;
	const char *text = b->GetStatusString ? b->GetStatusString(s) : NULL;
	return rt_fail(rt, "cublasGemmStridedBatchedEx(%s): %s: %s", what,
		       name ? name : "CUBLAS_STATUS_ERROR", text ? text : "cuBLAS call failed");
}

static int cuda_type(dlcc_dtype dt, cudaDataType *t)
{
	switch (dt) {
	case DLCC_F32: *t = CUDA_R_32F; return 0;
	case DLCC_F64: *t = CUDA_R_64F; return 0;
	case DLCC_F16: *t = CUDA_R_16F; return 0;
	case DLCC_BF16: *t = CUDA_R_16BF; return 0;
	default: return -1;
	}
}

int rt_cuda_gemm(Rt *rt, dlcc_dtype dt, dlcc_dtype ct, int transa, int transb, int m, int n, int k,
		 double alpha, const void *A, int lda, long long sA, const void *B, int ldb,
		 long long sB, double beta, void *C, int ldc, long long sC, int batch)
{
	cudaDataType t, tc;
	if (cuda_type(dt, &t) || cuda_type(ct, &tc) || (ct != dt && !(ct == DLCC_F32 && (dt == DLCC_F16 || dt == DLCC_BF16))))
		return rt_fail(rt, "rt_gemm: dtypes %d -> %d are not supported", (int)dt, (int)ct);
	float af = (float)alpha, bf = (float)beta;
	int f64 = dt == DLCC_F64;
	char what[80];
	snprintf(what, sizeof what, "m=%d n=%d k=%d batch=%d", m, n, k, batch);
	cublasStatus_t s = rt->cuda->blas.GemmStridedBatchedEx(
		rt->cuda->handle, transa ? CUBLAS_OP_T : CUBLAS_OP_N,
		transb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, f64 ? (void *)&alpha : (void *)&af, A,
		t, lda, sA, B, t, ldb, sB, f64 ? (void *)&beta : (void *)&bf, C, tc, ldc, sC, batch,
		f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
	return s == CUBLAS_STATUS_SUCCESS ? 0 : blas_fail(rt, s, what);
}
