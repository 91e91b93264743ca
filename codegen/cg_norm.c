/*
 * cg_norm.c — codegen for the normalization and activation rows of ir/ops.def.
 *
 * The activations are ordinary K_UNARY/K_BINARY bodies (cg_elementwise.c); this file supplies
 * what those bodies use: prelude helpers (r_erf, r_clamp01, r_gelu_tanh_d; r_pow is in the common prelude) and the float
 * attributes a body names, as `const double` literals (ONNX defaults from ir_act_attr when a
 * node lacks one). BatchNormalization in its inference form gets a kernel of its own: one thread
 * per element in a grid-stride loop, channel c = (i / inner) % C of x [N,C,...], reading the
 * per-channel scale, bias and running statistics. Its training form never reaches codegen
 * (passes/bn_train.c lowers it to reductions and elementwise ops); LayerNormalization and
 * InstanceNormalization are built from such ops by the frontend. A fused normalization kernel
 * is left to the fusion work.
 */
#include <stdio.h>
#include <string.h>

#include "codegen/cg_internal.h"
#include "ir/norm.h"

void cg_norm_prelude(CgBuf *b, const char *f)
{
	cg_printf(b, "__device__ __forceinline__ R r_erf(R x) { return erf%s(x); }\n", f);
	cg_puts(b, "__device__ __forceinline__ R r_clamp01(R v) { return v <= (R)0 ? (R)0 : v >= (R)1 ? (R)1 : v; }\n");
	cg_puts(b, "__device__ __forceinline__ R r_gelu_tanh_d(R x)\n{\n"
		   "\tconst R k = (R)0.79788456080286536, c = (R)0.044715;\n"
		   "\tconst R t = r_tanh(k * (x + c * x * x * x));\n"
		   "\treturn (R)0.5 * ((R)1 + t) + (R)0.5 * x * ((R)1 - t * t) * k * ((R)1 + (R)3 * c * x * x);\n}\n");
}

static int is_ident(char c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

/* `word` occurs in body as a whole identifier */
static int names(const char *body, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = strstr(body, word); p; p = strstr(p + 1, word))
		if ((p == body || !is_ident(p[-1])) && !is_ident(p[n]))
			return 1;
	return 0;
}

void cg_emit_act_attrs(CgBuf *b, const Node *n, const char *body)
{
	static const char *const attrs[] = {"alpha", "beta", "gamma", "lo", "hi"};
	for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++)
		if (names(body, attrs[i]))
			cg_printf(b, "\tconst double %s = %.17g;\n", attrs[i], ir_act_attr(n, attrs[i]));
}

int cg_emit_batchnorm(CgEmit *e, const Node *n)
{
	static const char *const in[] = {"x", "scale", "bias", "mean", "var"};
	const Shape *s = &n->in[0]->shape;
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", n->out[0]);
	for (int i = 0; i < 5; i++)
		cg_arg_in(&k, in[i], n->in[i]);
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%s)", cg_prod(s, 0, s->rank, "b"));
	cg_kernel_open(e, &k);
	cg_printf(&e->dev, "\tconst long long n = %s, inner = %s, C = %lld;\n", cg_prod(s, 0, s->rank, "B"),
		  cg_prod(s, 2, s->rank, "B"), (long long)s->d[1]);
	cg_printf(&e->dev, "\tconst R eps = (R)%.17g;\n", ir_attr_f(n, "epsilon", 1e-5));
	cg_printf(&e->dev, "\t%s {\n", cg_loop("i", "n"));
	cg_puts(&e->dev, "\t\tconst long long c = (i / inner) % C;\n"
			 "\t\tconst R sd = r_sqrt(var[c] + eps);\n"
			 "\t\ty[i] = (x[i] - mean[c]) / sd * scale[c] + bias[c];\n\t}\n");
	cg_kernel_close(e, &k);
	return 0;
}
