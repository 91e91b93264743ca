/*
 * cg_internal.h — what the files of codegen/ share: a growable text buffer, the memory plan of
 * one program, and the emitter that kernel writers append to.
 *
 * The flow of cg_build (cg_build.c): plan memory for each program (cg_plan.c), then walk each
 * program's schedule (cg_host.c) and, node by node, append a kernel (kernels.cu text), its CPU
 * trampoline, its kernel-table entry and its launch in the host schedule (cg_emit.c); matrix
 * products become rt_gemm calls (cg_gemm.c). Every kernel takes its tensors as pointers and the
 * batch as `long long B` last, so every extent is a C expression of B and the host passes its
 * run-time batch. Kernel writers never see offsets: a pointer argument names a Value and the
 * emitter resolves it through the plan. NVRTC (cg_nvrtc.c) and the C compiler (cg_link.c) work
 * on the finished texts.
 */
#ifndef DLCC_CG_INTERNAL_H
#define DLCC_CG_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

#include "codegen/codegen.h"

/* ---- text (cg_buf.c) ---- */
typedef struct {
	char *s;
	size_t len, cap;
} CgBuf;
void cg_printf(CgBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cg_puts(CgBuf *b, const char *s);
void cg_buf_free(CgBuf *b);
/* Extent d (>= 0, or -k: k times the batch) as a C expression over the variable bv: "784",
 * "B", "(2LL * B)". The returned strings live in a ring of 32 buffers. */
const char *cg_dim(int64_t d, const char *bv);
/* product of s->d[from..to) as a C expression ("1" when empty) */
const char *cg_prod(const Shape *s, int from, int to, const char *bv);
/* ir_numel_at for a max batch, as size_t bytes with elements of `esize` bytes */
size_t cg_bytes(const Shape *s, size_t esize, int64_t batch);
/* a value's display name for comments: "%name", made comment-safe */
const char *cg_vname(const Value *v);
/* "%7 = Relu(%6)  [node Relu_3]" */
const char *cg_node_comment(const Node *n);
int cg_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- memory plan (cg_plan.c) ---- */
typedef enum { CG_NOWHERE, CG_WS, CG_PARAMS } CgSpace;
typedef struct {
	CgSpace space;
	size_t offset;
	size_t bytes; /* at max batch */
} CgLoc;

/* A copy at the end of a program (an output or update whose value could not be placed in
 * the destination buffer directly). */
typedef struct {
	const Value *from;
	CgLoc to;
} CgCopy;

typedef struct {
	DType prec;    /* real type of every float tensor: DT_F32 or DT_F64 */
	int max_batch;
	size_t param_bytes;   /* parameters, states, then constants (grows as programs are planned) */
	size_t *param_off;    /* per parameter index (shared by both programs) */
	size_t *state_off;    /* per state index (training program) */
	size_t state_begin, state_end; /* the states' span (all zero at first) */
	size_t *input_off;    /* per input index: fixed head of the workspace */
	size_t label_off, loss_off; /* label; the f32 loss slot */
	size_t red_off, red_bytes; /* the reduction scratch (CG_RED_BYTES, or 0 when unused) */
	size_t *output_off;   /* per inference output index */
	size_t train_base;    /* the training program's temporaries start here (after the loss) */
	size_t infer_base;    /* the inference program's start here (after the outputs) */
} CgLayout;

/* ---- fusion groups (cg_fuse.c), read from the `fuse` attributes of passes/fuse.c ---- */
typedef enum { CG_G_EW, CG_G_REDUCE, CG_G_LOSS, CG_G_OPTIM, CG_G_GEMM, CG_G_MOVE, CG_G_CASTS, CG_G_ROW } CgGroupKind;
typedef struct {
	int id;              /* the attribute value */
	CgGroupKind kind;
	int first, last;     /* schedule positions (the group is contiguous) */
	const Node **nodes;  /* members in schedule order (points into g->nodes) */
	int n;
} CgGroup;
typedef struct {
	int *of;             /* by schedule position: group index, -1 for a node of its own */
	CgGroup *groups;
	int ngroups;
	char *internal;      /* by Value.id: read only inside its group, never materialized */
	char *scratch;       /* by Value.id: has a buffer only for a fallback path (an epilogue's f32 product) */
} CgFusion;
int cg_fusion_build(CgFusion *f, const Graph *g, char *err, size_t errlen);
void cg_fusion_free(CgFusion *f);
/* the schedule positions where the node at `at` writes (first) and reads (last) memory */
int cg_fusion_first(const CgFusion *f, int at);
int cg_fusion_last(const CgFusion *f, int at);

typedef struct {
	const Graph *g;
	int training;
	CgFusion fu;       /* kernel groups; internal values get no location */
	CgLoc *loc;        /* by Value.id: where its bytes are (aliases share their root's) */
	const Value **root;/* by Value.id: the value that owns the buffer */
	CgCopy *copies;
	int ncopies;
	int loss_direct;   /* the loss value lives in the f32 loss slot itself */
	size_t ws_bytes;   /* workspace end of this program */
	size_t fixed_bytes; /* the fixed head this program uses: inputs, label, loss slot / outputs */
	size_t peak_bytes;  /* lower bound: fixed_bytes + the most temporary bytes live at once */
	size_t naive_bytes; /* fixed_bytes + one buffer per temporary */
	int ninplace;       /* elementwise outputs written over a dying input */
} CgPlan;

size_t cg_elem_size(DType dt, DType prec);
/* Lay out parameters/states/constants and the fixed workspace head for both programs. */
/* L->prec and L->max_batch are set by the caller; train or infer may be NULL (not both). */
int cg_layout(CgLayout *L, Graph *infer, Graph *train, char *err, size_t errlen);
void cg_layout_free(CgLayout *L);
/* Plan one program against a layout (its constants are appended to the parameter block). */
int cg_plan_program(CgPlan *p, CgLayout *L, Graph *g, int training, char *err, size_t errlen);
void cg_plan_free(CgPlan *p);
/* Checks a finished plan from the graph alone: no two workspace tensors whose lifetimes meet
 * share bytes, except an elementwise output written over the input that dies at its node.
 * cg_plan_program runs it on every plan. */
int cg_plan_check(const CgPlan *p, char *err, size_t errlen);
/* bytes every launched node reads and writes at max batch (each distinct operand once; values
 * internal to a fusion group live in registers and count nothing) */
size_t cg_plan_traffic(const CgPlan *p, const CgLayout *L);

/* ---- emission ---- */
#define CG_MAX_ARGS 24
typedef struct {
	const char *ctype;   /* "R *", "const R *", "long long" */
	const char *name;    /* parameter name in the kernel */
	const Value *v;      /* pointer argument: the tensor */
	const char *hexpr;   /* scalar argument: host expression ("b", "step") */
} CgArg;

typedef struct {
	char name[64];
	const Node *node;    /* for the comment; may be NULL with `what` */
	const char *what;    /* comment text when not a whole node */
	CgArg args[CG_MAX_ARGS];
	int nargs;
	int uses_sync;
	char grid[160];      /* host expression: blocks */
	int block;           /* threads per block */
	size_t dev_start;    /* where its text starts in e->dev, */
	size_t key_start;    /* and its text after the name (the dedup key) */
} CgKernel;

/* kernels already emitted, by their text after the name: identical kernels are emitted once */
typedef struct {
	char *key;
	int index;
	char name[64];
} CgKernelKey;

typedef struct {
	CgBuf dev;    /* kernel source (CUDA C subset) */
	CgBuf emu;    /* CPU trampolines */
	CgBuf ktab;   /* kernel table entries */
	CgBuf host;   /* host schedules */
	int nkernels;
	CgKernelKey *keys;
	int nkeys;
	int launches, gemms; /* of the program being emitted */
	const CgLayout *L;
	const CgPlan *plan;
	char *err;
	size_t errlen;
} CgEmit;

#define CG_BLOCK 256          /* threads per block of every kernel */
#define CG_LONG_ROW 256       /* reduced extents at least this long use a block per output */
#define CG_RED_PARTS 1024     /* most blocks of a kernel that ends in a grid-wide sum */
/* The workspace's reduction scratch (red_off): CG_RED_COUNTERS unsigned counters, zero between
 * kernels (the last block resets its own), then partial sums (R, 8 bytes each). The grid-wide
 * sum uses counter 0 and parts 0 .. CG_RED_PARTS-1 (CG_RED_CE_BYTES); a column reduction split
 * over S blocks per tile of 32 outputs uses a counter per tile and tiles*S*32 parts
 * (CG_RED_BYTES, planned when some reduction of the program splits: cg_column_splits). */
#define CG_RED_TILES 264      /* column reductions split their rows while tiles*S <= this */
#define CG_RED_VALUES (CG_RED_TILES * 32)
#define CG_RED_COUNTERS CG_RED_TILES
#define CG_RED_CNT_BYTES (CG_RED_COUNTERS * 4)
#define CG_RED_BYTES (CG_RED_CNT_BYTES + CG_RED_VALUES * 8)
#define CG_RED_CE_BYTES (CG_RED_CNT_BYTES + CG_RED_PARTS * 8)

/* Start a kernel for node n (suffix names variants); then add args, open, write the body into
 * e->dev, close. close emits the trampoline, the table entry and the host launch. */
void cg_kernel_begin(CgEmit *e, CgKernel *k, const Node *n, const char *what);
void cg_arg_out(CgKernel *k, const char *name, const Value *v);
void cg_arg_in(CgKernel *k, const char *name, const Value *v);
void cg_arg_ll(CgKernel *k, const char *name, const char *host_expr);
/* a pointer that is no Value (the f32 loss slot): ctype "float *", host address expression */
void cg_arg_raw(CgKernel *k, const char *ctype, const char *name, const char *host_addr);
/* the arguments `R *part, unsigned *cnt`: the workspace's reduction scratch (red_off), of which
 * the kernel uses `need` bytes; part and cnt (64 bytes each) hold the host expressions and must
 * outlive the kernel's emission */
void cg_arg_red_scratch(CgEmit *e, CgKernel *k, size_t need, char *part, char *cnt);
void cg_kernel_open(CgEmit *e, CgKernel *k);
void cg_kernel_close(CgEmit *e, CgKernel *k);
void cg_emit_free(CgEmit *e);
/* grid-stride loop header over [0, n) with index i: "for (long long i = ...; i < n; ...)" */
const char *cg_loop(const char *i, const char *n);
/* host expression for a tensor's device address: "(W + 1024)" */
const char *cg_addr(const CgEmit *e, const Value *v);
const char *cg_ctype(DType dt); /* "R", "long long", "int", "unsigned char" */
/* Element (storage) type: cg_ctype, except "dlcc_f16" / "dlcc_bf16" for half-precision values,
 * which live in registers as R: cg_ld wraps a loaded element in its conversion to R, cg_st a
 * value of R in its rounding to the storage type (both return the text unchanged otherwise). */
const char *cg_etype(DType dt);
const char *cg_ld(DType dt, const char *elem);
const char *cg_st(DType dt, const char *value);
/* 1 when the reduced extent (at max batch) wants the block-per-output variant */
int cg_long_row(const CgEmit *e, int64_t extent_at_max);

/* An elementwise chain (cg_elementwise.c): members computed per element of the index space dom,
 * in registers; operands from outside are kernel arguments x0.., read through broadcast strides;
 * member outputs that are not internal are arguments y0.., written at the element's index. */
typedef struct {
	const Node *const *nodes;
	int n;
	const Shape *dom;
	const Value *ext[CG_MAX_ARGS];
	int next;
	const Value *out[CG_MAX_ARGS];
	int nout;
	const char *map_body; /* a chain of one computing this body instead of the op table's (cg_emit_map) */
} CgChain;
/* 0, or -1 with e->err when a member's operand dtypes are not its result's */
int cg_chain_init(CgEmit *e, CgChain *c, const Node *const *nodes, int n, const Shape *dom);
void cg_chain_args(CgKernel *k, const CgChain *c);
/* the chain at element index `idx` (a kernel variable); `result = <value of v>;` when v is given */
void cg_chain_body(CgEmit *e, const CgChain *c, const char *idx, const char *ind, const char *result,
		   const Value *v);

/* kernel writers: return 0 or -1 with e->err */
int cg_emit_elementwise(CgEmit *e, const Node *n);
/* y = body over up to three broadcast operands a, b, c of any dtypes (no dtype check) */
int cg_emit_map(CgEmit *e, const Node *n, const char *body);
/* the data-path plumbing ops (cg_tensor.c): Gather, GatherGrad, Slice, SliceGrad, Concat,
 * Trilu, Where, Cast */
int cg_emit_tensor(CgEmit *e, const Node *n);
/* GatherElements, ScatterElements, CumSum (cg_index.c) */
int cg_emit_index(CgEmit *e, const Node *n);
/* reductions, dropout, losses (cg_reduce2.c): ReduceMax/Min/Prod, ArgMax, Dropout, NllLoss(Grad) */
int cg_emit_reduce2(CgEmit *e, const Node *n);
/* shared by the reduction emitters (cg_reduce.c): the bit mask of a node's reduced axes (all when
 * `axes` is absent or empty), and `{ c = t % d; t /= d; acc += c * stride; }` for each dim of x
 * whose mask bit equals want */
int cg_reduced_mask(const Node *n, int rank);
void cg_emit_split(CgBuf *d, const Shape *x, int mask, int want, const char *t, const char *acc);
/* fused groups (cg_fuse.c dispatches by kind) */
int cg_emit_group(CgEmit *e, const CgGroup *gr);
const char *cg_group_comment(const CgGroup *gr);
int cg_emit_ew_group(CgEmit *e, const CgGroup *gr);
int cg_emit_reduce_group(CgEmit *e, const CgGroup *gr);
int cg_emit_softmax_group(CgEmit *e, const CgGroup *gr); /* [elementwise..., Softmax] */
int cg_emit_loss_group(CgEmit *e, const CgGroup *gr);
int cg_emit_optimizer_group(CgEmit *e, const CgGroup *gr);
/* a product with its epilogue (cg_epilogue.c); ReluMask / ReluMaskGrad on their own */
int cg_emit_gemm_group(CgEmit *e, const CgGroup *gr);
int cg_emit_relu_mask(CgEmit *e, const Node *n);
/* cg_gemm.c: the rt_gemm dtype of a value ("DLCC_F32", ...); -1 (e->err) unless a product's
 * operands are floats of one dtype */
const char *cg_gemm_dt(const CgEmit *e, DType dt);
int cg_gemm_check_float(CgEmit *e, const Node *n);
/* [Transpose, Reshape..., Cast]: the transpose stores the cast's dtype (cg_transpose.c); [Concat,
 * Cast]: the concat stores the half copy beside its result (cg_tensor.c) */
int cg_emit_transpose_cast(CgEmit *e, const CgGroup *gr);
int cg_emit_concat_group(CgEmit *e, const CgGroup *gr);
/* a block setting `out` to the offset in Transpose t's input of its result's element `flat` */
void cg_transpose_offset(CgBuf *d, const Node *t, const char *flat, const char *out, const char *ind);
/* a block setting `out` to the offset in Slice n's input of its result's element `flat` */
void cg_slice_offset(CgBuf *d, const Node *n, const char *flat, const char *out, const char *ind);
/* the Casts of parameters to half precision, one multi-tensor launch (cg_scale.c) */
int cg_emit_param_casts(CgEmit *e, const CgGroup *gr);
/* y = broadcast(x) [* scale]: used by Expand-like copies and Gemm's C */
int cg_emit_broadcast(CgEmit *e, const Node *n, const char *what, const Value *y, const Value *x);
int cg_emit_softmax(CgEmit *e, const Node *n);
/* a block's pass over row elements `elem` (an expression of the offset o = base + k * inner,
 * k < A): R m = the row max, R s = the sum of r_exp(elem - m), both block-reduced (needs sh) */
void cg_emit_online_max_sum(CgBuf *d, const char *elem, const char *ind);
/* blocks per tile of a column reduction of x over `mask` (1 = no split), given the scratch */
int cg_column_splits(const Shape *x, int mask, int64_t max_batch);
int cg_emit_reduce(CgEmit *e, const Node *n);
int cg_emit_transpose(CgEmit *e, const Node *n);
int cg_emit_cross_entropy(CgEmit *e, const Node *n);
int cg_emit_optimizer(CgEmit *e, const Node *n);
/* a tensor's entry in a kernel's constant table: byte offset in its block times two, plus 1 for
 * the workspace (the kernel takes the block bases P and W) */
long long cg_table_ref(const CgEmit *e, const Value *v);
/* dynamic loss scaling (cg_scale.c): AllFinite, LossScaleUpdate */
int cg_emit_all_finite(CgEmit *e, const Node *n);
int cg_emit_loss_scale_update(CgEmit *e, const Node *n);
int cg_emit_gemm(CgEmit *e, const Node *n);
int cg_emit_matmul(CgEmit *e, const Node *n);
int cg_emit_conv_family(CgEmit *e, const Node *n); /* cg_conv.c: Conv, pools, Pad and their grads */
/* loss → f32 slot, and end-of-program copies */
int cg_emit_loss_store(CgEmit *e, const Value *loss);
int cg_emit_copies(CgEmit *e);

/* normalization and activations (cg_norm.c): BatchNormalization's inference kernel; the
 * helpers the activation bodies use (f: "f" for float, "" for double); float attributes a body
 * names (alpha, beta, gamma, lo, hi) as `const double` lines */
int cg_emit_batchnorm(CgEmit *e, const Node *n);
void cg_norm_prelude(CgBuf *b, const char *f);
void cg_emit_act_attrs(CgBuf *b, const Node *n, const char *body);

/* the prelude of the kernel source: real type, helpers, block reductions */
void cg_prelude(CgBuf *b, DType prec);
/* one program's schedule function into e->host */
int cg_emit_program(CgEmit *e, const CgPlan *p, const char *fname);
/* the model description and kernel table (host.c tail) */
void cg_emit_desc(CgEmit *e, const CgLayout *L, Graph *infer, Graph *train, size_t cubin80,
		  size_t cubin90, size_t ptx, size_t ws_bytes);
/* the initial parameter block without the optimizer state (zero at first, not stored): *size
 * bytes, the block's [0, state_begin) then [state_end, param_bytes) */
unsigned char *cg_param_init(const CgLayout *L, const CgPlan *pi, const CgPlan *pt, size_t *size);

/* ---- NVRTC (cg_nvrtc.c) ---- */
typedef struct {
	unsigned char *cubin80, *cubin90;
	size_t cubin80_size, cubin90_size;
	char *ptx;
	size_t ptx_size;
} CgBinaries;
/* 1 when libnvrtc can be opened */
int cg_nvrtc_available(void);
int cg_nvrtc_compile(const char *src, const CgOpts *o, CgBinaries *bin, char *err, size_t errlen);
void cg_binaries_free(CgBinaries *b);

/* ---- files and the C compiler (cg_link.c) ---- */
typedef struct {
	const char *kernels, *emu, *host; /* texts */
	const unsigned char *params;
	size_t param_bytes;
	const CgBinaries *bin;
} CgArtifact;
/* Linking in two halves, so that the C compiler works on the kernels' CPU version while NVRTC
 * compiles them for the GPU: cg_link_start makes the temporary directory, writes kernels.cu and
 * kernels_emu.c and starts `cc -c kernels_emu.c` in the background; cg_link_finish writes the
 * rest (host.c, blobs), waits for it and links OUT (a->kernels and a->emu are not used again);
 * cg_link_abort cleans up when something failed in between. */
typedef struct CgLink CgLink;
CgLink *cg_link_start(const char *kernels, const char *emu, const CgOpts *o, char *err, size_t errlen);
int cg_link_finish(CgLink *l, const CgArtifact *a);
void cg_link_abort(CgLink *l);
int cg_write_file(const char *path, const void *data, size_t n, char *err, size_t errlen);

#endif
