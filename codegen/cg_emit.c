/*
 * cg_emit.c — the kernel emitter shared by every kernel writer, and the kernel prelude.
 *
 * A kernel writer (cg_elementwise.c, cg_softmax.c, ...) fills a CgKernel: its arguments (tensors by
 * Value, scalars by host expression), its launch shape (grid as a host expression of the batch
 * `b`, block size) and whether it synchronises; between cg_kernel_open and cg_kernel_close it
 * writes the body into e->dev. close writes the three other pieces that must agree with the
 * signature: the CPU trampoline (unpacks cuLaunchKernel-style args), the kernel-table entry and
 * the launch in the host schedule, with tensor addresses resolved through the memory plan.
 * Every kernel gets `long long B` (the batch) as its last argument. A kernel whose text (after
 * its name) equals an earlier one is dropped and the earlier one launched instead, so the
 * inference and training programs share their forward kernels.
 *
 * The prelude defines the real type R (float or double), the math helpers the op table's bodies
 * use (r_exp, r_log, r_sqrt, r_tanh, r_max, r_cos, r_sin, r_floor, r_ceil, r_rint) and the
 * block-wide tree reductions of the block-per-output variants (blockDim.x == CG_BLOCK, a power of two).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg_internal.h"

const char *cg_ctype(DType dt)
{
	switch (dt) {
	case DT_F32: case DT_F64: case DT_F16: case DT_BF16: return "R";
	case DT_I64: return "long long";
	case DT_I32: return "int";
	case DT_BOOL: case DT_U8: return "unsigned char";
	default: DLCC_ASSERT(0 && "dtype");
	}
	return NULL;
}

const char *cg_etype(DType dt)
{
	return dt == DT_F16 ? "dlcc_f16" : dt == DT_BF16 ? "dlcc_bf16" : cg_ctype(dt);
}

static const char *ptr_type(DType dt, int is_const)
{
	static const char *t[2][6] = {{"R *", "long long *", "int *", "unsigned char *", "dlcc_f16 *", "dlcc_bf16 *"},
				      {"const R *", "const long long *", "const int *", "const unsigned char *",
				       "const dlcc_f16 *", "const dlcc_bf16 *"}};
	const char *c = cg_ctype(dt);
	int i = dt == DT_F16 ? 4 : dt == DT_BF16 ? 5 : c[0] == 'R' ? 0 : c[0] == 'l' ? 1 : c[0] == 'i' ? 2 : 3;
	return t[is_const][i];
}

const char *cg_ld(DType dt, const char *elem)
{
	static char ring[8][256];
	static int at;
	if (dt != DT_F16 && dt != DT_BF16)
		return elem;
	at = (at + 1) % 8;
	snprintf(ring[at], sizeof ring[at], "%s(%s)", dt == DT_F16 ? "dlcc_f16_to_r" : "dlcc_bf16_to_r", elem);
	return ring[at];
}

const char *cg_st(DType dt, const char *value)
{
	static char ring[8][256];
	static int at;
	if (dt != DT_F16 && dt != DT_BF16)
		return value;
	at = (at + 1) % 8;
	snprintf(ring[at], sizeof ring[at], "%s(%s)", dt == DT_F16 ? "dlcc_r_to_f16" : "dlcc_r_to_bf16", value);
	return ring[at];
}

void cg_kernel_begin(CgEmit *e, CgKernel *k, const Node *n, const char *what)
{
	memset(k, 0, sizeof *k);
	k->node = n;
	k->what = what;
	k->block = CG_BLOCK;
	const char *op = n ? ir_ops[n->op].name : "aux";
	int o = snprintf(k->name, sizeof k->name, "k%d_", e->nkernels);
	for (int i = 0; op[i] && o < (int)sizeof k->name - 1; i++) {
		char ch = op[i];
		k->name[o++] = ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
	}
	k->name[o] = 0;
}

static void add_arg(CgKernel *k, CgArg a)
{
	DLCC_ASSERT(k->nargs < CG_MAX_ARGS);
	k->args[k->nargs++] = a;
}

void cg_arg_out(CgKernel *k, const char *name, const Value *v)
{
	add_arg(k, (CgArg){ptr_type(v->dt, 0), name, v, NULL});
}

void cg_arg_in(CgKernel *k, const char *name, const Value *v)
{
	add_arg(k, (CgArg){ptr_type(v->dt, 1), name, v, NULL});
}

void cg_arg_raw(CgKernel *k, const char *ctype, const char *name, const char *host_addr)
{
	add_arg(k, (CgArg){ctype, name, NULL, host_addr});
}

void cg_arg_red_scratch(CgEmit *e, CgKernel *k, size_t need, char *part, char *cnt)
{
	DLCC_ASSERT(e->L->red_bytes >= need); /* cg_layout planned the scratch */
	snprintf(part, 64, "(W + %zu)", e->L->red_off + CG_RED_CNT_BYTES);
	snprintf(cnt, 64, "(W + %zu)", e->L->red_off);
	cg_arg_raw(k, "R *", "part", part);
	cg_arg_raw(k, "unsigned *", "cnt", cnt);
}

void cg_arg_ll(CgKernel *k, const char *name, const char *host_expr)
{
	add_arg(k, (CgArg){"long long", name, NULL, host_expr});
}

void cg_kernel_open(CgEmit *e, CgKernel *k)
{
	cg_arg_ll(k, "B", "b");
	k->dev_start = e->dev.len;
	cg_printf(&e->dev, "\n/* %s */\nDLCC_KERNEL void %s", k->node ? cg_node_comment(k->node) : k->what,
		  k->name);
	k->key_start = e->dev.len;
	cg_puts(&e->dev, "(");
	for (int i = 0; i < k->nargs; i++) {
		const char *t = k->args[i].ctype;
		int ptr = t[strlen(t) - 1] == '*';
		cg_printf(&e->dev, "%s%s%s%s", i ? ", " : "", t, ptr ? "" : " ", k->args[i].name);
	}
	cg_puts(&e->dev, ")\n{\n");
}

static void emit_trampoline(CgEmit *e, const CgKernel *k)
{
	cg_printf(&e->emu, "static void %s_emu(void **a)\n{\n\t%s(", k->name, k->name);
	for (int i = 0; i < k->nargs; i++) {
		const char *t = k->args[i].ctype;
		cg_printf(&e->emu, "%s*(%s%s*)a[%d]", i ? ", " : "", t, t[strlen(t) - 1] == '*' ? "" : " ", i);
	}
	cg_puts(&e->emu, ");\n}\n");
	cg_printf(&e->ktab, "\t{\"%s\", %s_emu, %d},\n", k->name, k->name, k->uses_sync);
}

const char *cg_addr(const CgEmit *e, const Value *v)
{
	static char ring[8][64];
	static int at;
	const CgLoc *l = &e->plan->loc[v->id];
	DLCC_ASSERT(l->space != CG_NOWHERE);
	at = (at + 1) % 8;
	snprintf(ring[at], sizeof ring[at], "(%s + %zu)", l->space == CG_PARAMS ? "P" : "W", l->offset);
	return ring[at];
}

static void emit_launch(CgEmit *e, const CgKernel *k, int index, const char *same_as)
{
	CgBuf *h = &e->host;
	cg_printf(h, "\t/* %s%s%s */\n\t{\n", k->node ? cg_node_comment(k->node) : k->what,
		  same_as ? ": kernel " : "", same_as ? same_as : "");
	for (int i = 0; i < k->nargs; i++) {
		const CgArg *a = &k->args[i];
		if (a->v)
			cg_printf(h, "\t\tvoid *a%d = %s;\n", i, cg_addr(e, a->v));
		else if (a->ctype[strlen(a->ctype) - 1] == '*')
			cg_printf(h, "\t\tvoid *a%d = %s;\n", i, a->hexpr);
		else
			cg_printf(h, "\t\tlong long a%d = %s;\n", i, a->hexpr);
	}
	cg_puts(h, "\t\tvoid *args[] = {");
	for (int i = 0; i < k->nargs; i++)
		cg_printf(h, "%s&a%d", i ? ", " : "", i);
	cg_printf(h, "};\n\t\tif (rt_launch(rt, %d, %s, 1, 1, %d, 1, 1, 0, args) < 0)\n\t\t\treturn -1;\n\t}\n",
		  index, k->grid, k->block);
}

/* the text decides everything (uses_sync follows from it), so equal text = same kernel */
static const CgKernelKey *find_key(const CgEmit *e, const char *key)
{
	for (int i = 0; i < e->nkeys; i++)
		if (!strcmp(e->keys[i].key, key))
			return &e->keys[i];
	return NULL;
}

void cg_kernel_close(CgEmit *e, CgKernel *k)
{
	DLCC_ASSERT(k->grid[0]);
	cg_puts(&e->dev, "}\n");
	const char *key = e->dev.s + k->key_start;
	const CgKernelKey *old = find_key(e, key);
	if (old) { /* the same text under another name: launch that one */
		e->dev.len = k->dev_start;
		e->dev.s[e->dev.len] = 0;
		emit_launch(e, k, old->index, old->name);
		e->launches++;
		return;
	}
	e->keys = realloc(e->keys, (e->nkeys + 1) * sizeof *e->keys);
	DLCC_ASSERT(e->keys);
	CgKernelKey *nk = &e->keys[e->nkeys++];
	nk->key = strdup(key);
	nk->index = e->nkernels;
	snprintf(nk->name, sizeof nk->name, "%s", k->name);
	emit_trampoline(e, k);
	emit_launch(e, k, e->nkernels, NULL);
	e->nkernels++;
	e->launches++;
}

void cg_emit_free(CgEmit *e)
{
	for (int i = 0; i < e->nkeys; i++)
		free(e->keys[i].key);
	free(e->keys);
	e->keys = NULL;
	e->nkeys = 0;
	cg_buf_free(&e->dev);
	cg_buf_free(&e->emu);
	cg_buf_free(&e->ktab);
	cg_buf_free(&e->host);
}

const char *cg_loop(const char *i, const char *n)
{
	static char ring[4][256];
	static int at;
	at = (at + 1) % 4;
	snprintf(ring[at], sizeof ring[at],
		 "for (long long %s = (long long)blockIdx.x * blockDim.x + threadIdx.x; %s < %s; "
		 "%s += (long long)blockDim.x * gridDim.x)",
		 i, i, n, i);
	return ring[at];
}

int cg_long_row(const CgEmit *e, int64_t extent_at_max)
{
	return extent_at_max >= CG_LONG_ROW;
}

static const char *prelude_common =
	"#ifdef __CUDACC__\n"
	"#define DLCC_KERNEL extern \"C\" __global__\n"
	"#define DLCC_UNROLL4 _Pragma(\"unroll 4\")\n"
	"#else\n"
	"#define DLCC_KERNEL __global__\n"
	"#define DLCC_UNROLL4\n"
	"#endif\n"
	"#ifdef __CUDACC_RTC__\n"
	"#define INFINITY __int_as_float(0x7f800000)\n"
	"#define NAN __int_as_float(0x7fffffff)\n"
	"#endif\n";

/* Half-precision storage: structs, so that a kernel that forgets to convert does not compile.
 * Values are converted to R on load and rounded to nearest even on store. */
static const char *prelude_half =
	"#ifdef __CUDACC__\n"
	"typedef struct __align__(2) { unsigned short x; } dlcc_f16;\n"
	"typedef struct __align__(2) { unsigned short x; } dlcc_bf16;\n"
	"__device__ __forceinline__ R dlcc_f16_to_r(dlcc_f16 h) { float f; asm(\"cvt.f32.f16 %0, %1;\" : \"=f\"(f) : \"h\"(h.x)); return (R)f; }\n"
	"__device__ __forceinline__ dlcc_f16 dlcc_r_to_f16(R v) { dlcc_f16 h; asm(\"cvt.rn.f16.f32 %0, %1;\" : \"=h\"(h.x) : \"f\"((float)v)); return h; }\n"
	"__device__ __forceinline__ R dlcc_bf16_to_r(dlcc_bf16 h) { return (R)__uint_as_float((unsigned)h.x << 16); }\n"
	"__device__ __forceinline__ dlcc_bf16 dlcc_r_to_bf16(R v) { dlcc_bf16 h; asm(\"cvt.rn.bf16.f32 %0, %1;\" : \"=h\"(h.x) : \"f\"((float)v)); return h; }\n"
	"#else\n"
	"typedef struct { unsigned short x; } dlcc_f16;\n"
	"typedef struct { unsigned short x; } dlcc_bf16;\n"
	"static inline R dlcc_f16_to_r(dlcc_f16 h) { return (R)rt_f16_to_f32(h.x); }\n"
	"static inline dlcc_f16 dlcc_r_to_f16(R v) { dlcc_f16 h = { rt_f32_to_f16((float)v) }; return h; }\n"
	"static inline R dlcc_bf16_to_r(dlcc_bf16 h) { return (R)rt_bf16_to_f32(h.x); }\n"
	"static inline dlcc_bf16 dlcc_r_to_bf16(R v) { dlcc_bf16 h = { rt_f32_to_bf16((float)v) }; return h; }\n"
	"#endif\n";

static const char *prelude_reduce =
	"/* block-wide reductions: blockDim.x is a power of two, every thread calls them */\n"
	"__device__ __forceinline__ R dlcc_block_sum(R v, R *sh)\n"
	"{\n"
	"\tunsigned t = threadIdx.x;\n"
	"\tsh[t] = v;\n"
	"\t__syncthreads();\n"
	"\tfor (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {\n"
	"\t\tif (t < s)\n"
	"\t\t\tsh[t] += sh[t + s];\n"
	"\t\t__syncthreads();\n"
	"\t}\n"
	"\tR r = sh[0];\n"
	"\t__syncthreads();\n"
	"\treturn r;\n"
	"}\n"
	"__device__ __forceinline__ R dlcc_block_max(R v, R *sh)\n"
	"{\n"
	"\tunsigned t = threadIdx.x;\n"
	"\tsh[t] = v;\n"
	"\t__syncthreads();\n"
	"\tfor (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {\n"
	"\t\tif (t < s)\n"
	"\t\t\tsh[t] = r_max(sh[t], sh[t + s]);\n"
	"\t\t__syncthreads();\n"
	"\t}\n"
	"\tR r = sh[0];\n"
	"\t__syncthreads();\n"
	"\treturn r;\n"
	"}\n"
	"/* A sum over the whole grid, deterministic: each block's v (equal on its threads, e.g. a\n"
	" * dlcc_block_sum) goes to part[blockIdx.x]; the block that finishes last adds the parts in a\n"
	" * fixed order, returns 1 and the total in *total, and resets the counter; the others return 0.\n"
	" * Every thread calls it; gridDim.x <= the parts' count. */\n"
	"__device__ __forceinline__ int dlcc_grid_sum(R v, R *sh, R *part, unsigned *cnt, R *total)\n"
	"{\n"
	"\t__shared__ int last;\n"
	"\t__threadfence();\n"
	"\t__syncthreads();\n"
	"\tif (threadIdx.x == 0) {\n"
	"\t\tpart[blockIdx.x] = v;\n"
	"\t\t__threadfence();\n"
	"\t\tlast = atomicAdd(cnt, 1u) == gridDim.x - 1;\n"
	"\t}\n"
	"\t__syncthreads();\n"
	"\tif (!last)\n"
	"\t\treturn 0;\n"
	"\t__threadfence();\n"
	"\tR s = (R)0;\n"
	"\tfor (unsigned i = threadIdx.x; i < gridDim.x; i += blockDim.x)\n"
	"\t\ts += ((volatile R *)part)[i];\n"
	"\t*total = dlcc_block_sum(s, sh);\n"
	"\tif (threadIdx.x == 0)\n"
	"\t\t*cnt = 0u;\n"
	"\treturn 1;\n"
	"}\n";

void cg_prelude(CgBuf *b, DType prec)
{
	int dbl = prec == DT_F64;
	cg_puts(b, "/* Generated by dlcc: one kernel per IR node. Compiled by NVRTC (CUDA C++) and, after\n"
		   " * #include \"emu/cuda_emu.h\", by the C compiler for the CPU emulation. */\n");
	cg_puts(b, prelude_common);
	cg_printf(b, "typedef %s R;\n", dbl ? "double" : "float");
	cg_puts(b, prelude_half);
	const char *f = dbl ? "" : "f";
	cg_printf(b, "__device__ __forceinline__ R r_exp(R x) { return exp%s(x); }\n", f);
	cg_printf(b, "__device__ __forceinline__ R r_log(R x) { return log%s(x); }\n", f);
	cg_printf(b, "__device__ __forceinline__ R r_sqrt(R x) { return sqrt%s(x); }\n", f);
	cg_printf(b, "__device__ __forceinline__ R r_tanh(R x) { return tanh%s(x); }\n", f);
	cg_puts(b, "__device__ __forceinline__ R r_max(R a, R b) { return a > b ? a : b; }\n");
	cg_printf(b, "__device__ __forceinline__ R r_cos(R x) { return cos%s(x); }\n", f);
	cg_printf(b, "__device__ __forceinline__ R r_sin(R x) { return sin%s(x); }\n", f);
	cg_printf(b, "__device__ __forceinline__ R r_floor(R x) { return floor%s(x); }\n", f);
	cg_printf(b, "__device__ __forceinline__ R r_ceil(R x) { return ceil%s(x); }\n", f);
	cg_printf(b, "__device__ __forceinline__ R r_rint(R x) { return rint%s(x); }\n", f);
	cg_printf(b, "__device__ __forceinline__ R r_pow(R a, R b) { return pow%s(a, b); }\n", f);
	cg_norm_prelude(b, f);
	cg_puts(b, prelude_reduce);
}
