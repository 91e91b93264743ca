/*
 * cg_nvrtc.c — kernel source → CUBIN (sm_80, sm_90) and PTX (compute_80) through NVRTC.
 *
 * libnvrtc is opened with dlopen (libnvrtc.so.13, .so.12, libnvrtc.so, then the toolkit's
 * lib64 found at build time) so that dlcc runs where it is missing: --emit cuda needs no NVRTC,
 * and cg_build falls back to a CPU-only artifact with a warning. The three compilations are
 * independent programs and run on three threads. A compile error is reported with the first
 * error line of NVRTC's log; with opts->verbose the log (ptxas registers and spills) goes to
 * stderr. Kernel source must need no header: the prelude defines what it uses.
 * Setting DLCC_NO_NVRTC=1 in the environment skips NVRTC as if it were missing.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvrtc.h>

#include "codegen/cg_internal.h"

#ifndef DLCC_NVRTC_LIB
#define DLCC_NVRTC_LIB "/usr/local/cuda/lib64"
#endif

static struct {
	int tried;
	void *lib;
	__typeof__(&nvrtcCreateProgram) create;
	__typeof__(&nvrtcDestroyProgram) destroy;
	__typeof__(&nvrtcCompileProgram) compile;
	__typeof__(&nvrtcGetProgramLogSize) log_size;
	__typeof__(&nvrtcGetProgramLog) log;
	__typeof__(&nvrtcGetCUBINSize) cubin_size;
	__typeof__(&nvrtcGetCUBIN) cubin;
	__typeof__(&nvrtcGetPTXSize) ptx_size;
	__typeof__(&nvrtcGetPTX) ptx;
	__typeof__(&nvrtcGetErrorString) error_string;
} nv;

static void *open_lib(void)
{
	const char *names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", DLCC_NVRTC_LIB "/libnvrtc.so",
			       "/usr/local/cuda/lib64/libnvrtc.so"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (h)
			return h;
	}
	return NULL;
}

#define SYM(field, name) (*(void **)&nv.field = dlsym(nv.lib, name), ok &= nv.field != NULL)

static int load(void)
{
	if (nv.tried)
		return nv.lib != NULL;
	nv.tried = 1;
	const char *off = getenv("DLCC_NO_NVRTC");
	if (off && *off && strcmp(off, "0"))
		return 0;
	nv.lib = open_lib();
	if (!nv.lib)
		return 0;
	int ok = 1;
	SYM(create, "nvrtcCreateProgram");
	SYM(destroy, "nvrtcDestroyProgram");
	SYM(compile, "nvrtcCompileProgram");
	SYM(log_size, "nvrtcGetProgramLogSize");
	SYM(log, "nvrtcGetProgramLog");
	SYM(cubin_size, "nvrtcGetCUBINSize");
	SYM(cubin, "nvrtcGetCUBIN");
	SYM(ptx_size, "nvrtcGetPTXSize");
	SYM(ptx, "nvrtcGetPTX");
	SYM(error_string, "nvrtcGetErrorString");
	if (!ok) {
		dlclose(nv.lib);
		nv.lib = NULL;
	}
	return nv.lib != NULL;
}

int cg_nvrtc_available(void) { return load(); }

typedef struct {
	const char *src;
	char arch[32];     /* "sm_80" or "compute_80" */
	int want_ptx, also_ptx, verbose; /* also_ptx: a CUBIN job that keeps its PTX too */
	unsigned char *out;
	size_t size;
	char *ptx;         /* also_ptx */
	size_t ptx_size;
	char err[512];
} Job;

static char *program_log(nvrtcProgram p)
{
	size_t n = 0;
	nv.log_size(p, &n);
	char *s = calloc(n + 1, 1);
	if (s && n)
		nv.log(p, s);
	return s;
}

/* first line of the log that mentions an error, else its first line */
static void first_error(const char *log, char *out, size_t len)
{
	const char *l = strstr(log, "error");
	while (l && l > log && l[-1] != '\n')
		l--;
	if (!l)
		l = log;
	size_t n = strcspn(l, "\n");
	snprintf(out, len, "%.*s", (int)n, l);
}

static int fetch(Job *j, nvrtcProgram p)
{
	nvrtcResult r = j->want_ptx ? nv.ptx_size(p, &j->size) : nv.cubin_size(p, &j->size);
	if (r != NVRTC_SUCCESS)
		return snprintf(j->err, sizeof j->err, "%s", nv.error_string(r)), -1;
	j->out = malloc(j->size + 1);
	DLCC_ASSERT(j->out);
	r = j->want_ptx ? nv.ptx(p, (char *)j->out) : nv.cubin(p, (char *)j->out);
	j->out[j->size] = 0;
	if (r == NVRTC_SUCCESS && j->also_ptx && (r = nv.ptx_size(p, &j->ptx_size)) == NVRTC_SUCCESS) {
		j->ptx = malloc(j->ptx_size + 1);
		DLCC_ASSERT(j->ptx);
		r = nv.ptx(p, j->ptx);
		j->ptx[j->ptx_size] = 0;
	}
	return r == NVRTC_SUCCESS ? 0 : (snprintf(j->err, sizeof j->err, "%s", nv.error_string(r)), -1);
}

static void *run_job(void *arg)
{
	Job *j = arg;
	nvrtcProgram p;
	char archopt[64];
	snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", j->arch);
	const char *opts[] = {archopt, "-default-device", "--ptxas-options=-v"};
	int nopt = j->verbose && !j->want_ptx ? 3 : 2;
	nvrtcResult r = nv.create(&p, j->src, "kernels.cu", 0, NULL, NULL);
	if (r != NVRTC_SUCCESS) {
		snprintf(j->err, sizeof j->err, "nvrtcCreateProgram: %s", nv.error_string(r));
		return NULL;
	}
	r = nv.compile(p, nopt, opts);
	char *log = program_log(p);
	if (r != NVRTC_SUCCESS)
		first_error(log ? log : "", j->err, sizeof j->err);
	else if (j->verbose && log && *log)
		fprintf(stderr, "dlcc: nvrtc %s:\n%s\n", j->arch, log);
	if (r == NVRTC_SUCCESS)
		fetch(j, p);
	free(log);
	nv.destroy(&p);
	return NULL;
}

/* which targets: arch NULL = sm_80 + sm_90 CUBINs and PTX; "sm_80"/"sm_90": that CUBIN + PTX;
 * anything else "sm_XY": PTX for compute_XY only. The PTX comes from the first CUBIN job (NVRTC
 * makes it on the way; PTX for sm_80 is JIT-compiled by the driver on any newer GPU), which
 * saves a third front-end run of the whole source. */
static int plan_jobs(const CgOpts *o, Job *jobs, const char *src, char *err, size_t errlen)
{
	const char *a = o->arch;
	int n = 0, cc = 80;
	if (a && (sscanf(a, "sm_%d", &cc) != 1 || cc < 50))
		return cg_fail(err, errlen, "codegen: --arch '%s' is not of the form sm_XY (sm_80, sm_90, ...)", a), -1;
	if (!a || cc == 80)
		snprintf(jobs[n++].arch, 32, "sm_80");
	if (!a || cc == 90)
		snprintf(jobs[n++].arch, 32, "sm_90");
	if (n > 0) {
		jobs[0].also_ptx = 1;
	} else {
		snprintf(jobs[n].arch, 32, "compute_%d", cc);
		jobs[n++].want_ptx = 1;
	}
	for (int i = 0; i < n; i++) {
		jobs[i].src = src;
		jobs[i].verbose = o->verbose;
	}
	return n;
}

static void take(const Job *j, CgBinaries *b)
{
	if (j->want_ptx) {
		b->ptx = (char *)j->out;
		b->ptx_size = j->size;
	} else if (!strcmp(j->arch, "sm_80")) {
		b->cubin80 = j->out;
		b->cubin80_size = j->size;
	} else {
		b->cubin90 = j->out;
		b->cubin90_size = j->size;
	}
	if (j->also_ptx) {
		b->ptx = j->ptx;
		b->ptx_size = j->ptx_size;
	}
}

int cg_nvrtc_compile(const char *src, const CgOpts *o, CgBinaries *bin, char *err, size_t errlen)
{
	memset(bin, 0, sizeof *bin);
	if (!load())
		return cg_fail(err, errlen, "codegen: NVRTC (libnvrtc.so) not found; install the CUDA "
				   "toolkit or use --emit cuda");
	Job jobs[3];
	memset(jobs, 0, sizeof jobs);
	int n = plan_jobs(o, jobs, src, err, errlen);
	if (n < 0)
		return -1;
	pthread_t th[3];
	int started[3] = {0};
	for (int i = 0; i < n; i++)
		started[i] = pthread_create(&th[i], NULL, run_job, &jobs[i]) == 0;
	for (int i = 0; i < n; i++)
		started[i] ? (void)pthread_join(th[i], NULL) : (void)run_job(&jobs[i]);
	int rc = 0;
	for (int i = 0; i < n; i++) {
		if (jobs[i].err[0] && rc == 0)
			rc = cg_fail(err, errlen, "codegen: NVRTC (%s): %s", jobs[i].arch, jobs[i].err);
		take(&jobs[i], bin);
	}
	if (rc < 0)
		cg_binaries_free(bin);
	return rc;
}

void cg_binaries_free(CgBinaries *b)
{
	free(b->cubin80);
	free(b->cubin90);
	free(b->ptx);
	memset(b, 0, sizeof *b);
}
