/*
 * codegen.h — from IR to an artifact.
 *
 * cg_build() takes the inference program and (unless --mode infer) the training program of one
 * model — both share parameters, in the same order — and writes:
 *   emit "cuda": the kernels (CUDA C) and the host schedule (C) as text, to out_path
 *   emit "ptx":  the PTX from NVRTC, to out_path
 *   emit "so":   a shared library exporting include/dlcc/dlcc.h (kernels as CUBIN for sm_80 and
 *                sm_90 plus PTX, the same kernels compiled as C for the CPU emulation, the host
 *                schedule, the model description and the initial parameters), linked against
 *                libdlcc_rt.a with the system C compiler
 *   emit "a":    the same as a static library
 * Nothing is left at out_path when it fails.
 */
#ifndef DLCC_CODEGEN_H
#define DLCC_CODEGEN_H

#include "ir/ir.h"

typedef struct {
	const char *out_path;
	const char *emit;   /* "so", "a", "cuda", "ptx" */
	int max_batch;      /* the batch the workspace is planned for */
	DType precision;    /* DT_F32 or DT_F64 (DT_F16/DT_BF16 later) */
	const char *arch;   /* NULL: sm_80 and sm_90 CUBIN + compute_80 PTX */
	int verbose;        /* print the commands run */
} CgOpts;

/* train may be NULL (inference only). Returns 0, or -1 with a one-line message in err. */
int cg_build(Graph *infer, Graph *train, const CgOpts *o, char *err, size_t errlen);

/* Memory plan figures of the last cg_build / cg_plan (for dlcc info). */
typedef struct {
	size_t param_bytes;     /* parameters + optimizer state */
	size_t workspace_bytes; /* planned workspace for max_batch */
	size_t naive_bytes;     /* fixed head + one buffer per temporary */
	size_t peak_live_bytes; /* lower bound: fixed head + most temporary bytes live at once */
	size_t fixed_bytes;     /* the fixed head the program uses: inputs, label, loss / outputs */
	size_t traffic_bytes;   /* bytes read + written per step by the launched nodes and copies */
	int inplace;            /* elementwise outputs written over their dying input */
	int kernels;            /* kernel launches per training step */
	int gemms;              /* cuBLAS calls per training step */
} CgStats;
int cg_plan(Graph *g, int max_batch, CgStats *st, char *err, size_t errlen);

#endif
