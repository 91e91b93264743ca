/*
 * harness.h — test harness code shared by several unit-test files (tests/unit/harness.c).
 * No Criterion Test() lives here; every function has the th_ prefix.
 *
 * 1. The float64 finite-difference gradient check (test_grad.c, test_grad_conv.c, test_norm.c):
 *    each case builds a tiny f64 graph x -> op -> y, then loss = ReduceSum(y * R) with R a
 *    random input, differentiates it, runs the reference interpreter at batch TH_BATCH and
 *    compares each analytic gradient element with a central difference (eps TH_FD_EPS, relative
 *    tolerance TH_FD_TOL). Inputs are random values of magnitude in [0.2, 1].
 * 2. Generated code against the interpreter (test_codegen.c, test_codegen_conv.c, test_reduce.c):
 *    compile a graph with cg_build (emit "so") to a temporary directory, dlopen(RTLD_LOCAL) the
 *    artifact, run it on the CPU emulation through the public API, compare with the reference
 *    interpreter (f32: relative tolerance 1e-5, f64: 1e-12).
 * 3. PyTorch fixtures (test_plumbing.c, test_reduce_torch.c): a directory of tiny ONNX models,
 *    each <name>.onnx with <name>_in<i>.npy inputs and PyTorch's <name>_out.npy; each is
 *    imported by the ONNX frontend, run by the interpreter in float64 and compared (1e-6
 *    relative for float results, integer and bool results exactly).
 */
#ifndef DLCC_TESTS_UNIT_HARNESS_H
#define DLCC_TESTS_UNIT_HARNESS_H

#include <stdint.h>

#include "dlcc/dlcc.h"
#include "ir/interp.h"
#include "ir/ir.h"

#define TH_SH(...) ir_shape(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), (int64_t[]){__VA_ARGS__})

/* ---- the float64 finite-difference gradient check ---- */

#define TH_BATCH 3
#define TH_FD_EPS 1e-6
#define TH_FD_TOL 1e-6
#define TH_MAXW 8

typedef struct {
	Graph *g;
	Value *w[TH_MAXW];      /* differentiated float inputs */
	char pos[TH_MAXW];      /* w[i] must stay positive */
	double *data[TH_MAXW];  /* their values at batch TH_BATCH */
	int nw;
	Value *lab;             /* optional integer label input */
	int64_t classes;
	uint64_t rng;
	int backward_only;      /* th_check: always grad_backward, never pass_autodiff */
} ThCase;

ThCase *th_case_new(const char *graph_name, uint64_t seed);
void th_case_free(ThCase *c);
double th_rnd(ThCase *c); /* [0,1) */
void th_fill(ThCase *c, double *d, int64_t n, int positive);
/* a differentiated input: a V_PARAM when batch-free, else a V_INPUT */
Value *th_var(ThCase *c, Shape s, int positive);
Value *th_labels(ThCase *c, Shape s, int64_t classes);
Value *th_fin(ThCase *c, Node *n);
Value *th_op1(ThCase *c, Op op, Value *a);
Value *th_op2(ThCase *c, Op op, Value *a, Value *b);
Node *th_begin(ThCase *c, Op op, int nin, Value **in);
double th_run_loss(Interp *it, Value *loss);
/* differentiate ReduceSum(y * R) and compare every gradient with central differences */
void th_check(ThCase *c, Value *y, const char *what);


/* ---- generated code against the interpreter ---- */

#define TH_MAXN 4096

/* uniform in [-1, 1) from one process-wide xorshift state (seed 88172645463325252) */
double th_urand(void);
void th_urand_seed(uint64_t seed);

Value *th_input(Graph *g, const char *name, Shape s); /* an f32 V_INPUT */
Value *th_param(Graph *g, const char *name, Shape s); /* an f32 V_PARAM, th_urand() * 0.5 */
Value *th_gfin(Graph *g, Node *n);
Value *th_gop1(Graph *g, Op op, Value *a);
Value *th_gop2(Graph *g, Op op, Value *a, Value *b);
Value *th_out(Graph *g, Value *v); /* ir_add_output, returns v */

/* an artifact opened with dlopen and one dlcc_model created on the CPU */
typedef struct {
	void *so;
	dlcc_model *m;
	int (*infer)(dlcc_model *, int, const void *const *, void *const *);
	int (*train)(dlcc_model *, int, const void *const *, const void *, float *);
	int (*get_param)(dlcc_model *, int, float *);
	const char *(*error)(const dlcc_model *);
	void (*destroy)(dlcc_model *);
	char dir[64];
} ThArt;

ThArt th_art_open(Graph *infer, Graph *train, int max_batch, DType prec);
void th_art_close(ThArt *a);
Interp *th_interp(Graph *g, DType dt, int batch);
/* random data for every input (floats th_urand(), integers in [0, classes)) */
void **th_make_inputs(Graph *g, int batch, DType prec, int classes);
void th_free_list(void **d, int n);
/* |got - want| <= tol * (1 + |want|) for every element */
void th_expect_close(const char *what, const double *got, const double *want, int64_t n, double tol);
void th_set_inputs(Interp *it, Graph *g, void **d, DType prec);
/* run g through the artifact and the interpreter; compare every output */
void th_check_infer_prec(Graph *g, int max_batch, int batch, int classes, DType prec);
void th_check_infer(Graph *g, int max_batch, int batch, int classes); /* f32 */

/* ---- PyTorch fixtures through the ONNX frontend and the interpreter ---- */

/* run and check every <dir><name>.onnx case (dir ends in '/'); returns the number of cases */
int th_torch_fixtures(const char *dir);

#endif
