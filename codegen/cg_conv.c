/*
 * cg_conv.c — kernels of the convolution family: Conv, ConvGradInput, ConvGradWeight, MaxPool,
 * MaxPoolGrad, AveragePool, AveragePoolGrad, Pad, PadGrad, and the columns Im2Col, Col2Im.
 *
 * Decision: two paths, chosen per layer by passes/im2col.c before codegen. Large layers become
 * im2col + cuBLAS in the IR (Im2Col, MatMul, Col2Im, Transpose, Reshape: strided-batched
 * rt_gemm calls, tensor cores under mixed precision since the columns keep the operands'
 * fp16/bf16), so that the columns are ordinary temporaries of the memory plan and the
 * interpreter checks the rewrite; the heuristic takes a layer when its GEMM has K = C/g·kh·kw
 * >= 16 and >= 16 output channels per group. Small, thin and depthwise layers keep the direct
 * kernels below: one gather loop nest with the geometry baked in as literals, one launch, no
 * workspace — what launch-bound small CNNs want. One thread per output element for the forward
 * ops and the input-side gradients (ConvGradInput, the pool and pad gradients gather over the
 * windows that hold an input element instead of scattering, so there are no atomics and results
 * are deterministic), and one block per weight element for ConvGradWeight (its reduction runs
 * over N·OH·OW, threads stride over it and a block tree sum finishes, uses_sync = 1).
 * Im2Col is one thread per column entry (a copy, 0 in the padding) in the "image" [N,g,K,P] or
 * "pixel" [g,N·P,K] layout; Col2Im gathers, per input element, the column entries that read it
 * (the window_loop of ConvGradInput), again without atomics.
 * Left for later: the columns are as large as K·P per image (a 3×3 layer: 9× its input) and are
 * not chunked over the batch, so the im2col path raises the workspace of large batches (see
 * README, Figures).
 * Tensors are [N,C,H,W] with H = 1 for 1-D (ir/conv.h); only N is a run-time extent (B).
 */
#include <stdio.h>
#include <string.h>

#include "codegen/cg_internal.h"
#include "ir/conv.h"

typedef struct {
	const char *n;     /* batch extent, kernel expression */
	int64_t c, h, w;
} Dims;

static Dims dims(const Value *v)
{
	Dims d;
	d.n = cg_dim(v->shape.d[0], "B");
	d.c = v->shape.d[1];
	ir_conv_hw(&v->shape, &d.h, &d.w);
	return d;
}

static int geom(CgEmit *e, const Node *n, const Value *x, ConvGeom *g)
{
	if (ir_conv_geom(NULL, n, x->shape.rank - 2, g) < 0)
		return cg_fail(e->err, e->errlen, "codegen: node '%s' (%s): malformed window attributes",
			       n->name, ir_ops[n->op].name);
	return 0;
}

/* a kernel over the elements of `over`, one thread each: opens the loop with (n_, c_, h_, w_) */
static void open_elementwise(CgEmit *e, CgKernel *k, const Value *over)
{
	Dims d = dims(over);
	snprintf(k->grid, sizeof k->grid, "dlcc_grid(%s)", cg_prod(&over->shape, 0, over->shape.rank, "b"));
	cg_kernel_open(e, k);
	cg_printf(&e->dev, "\tconst long long total = %s * %lldLL;\n", d.n, (long long)(d.c * d.h * d.w));
	cg_printf(&e->dev, "\t%s {\n", cg_loop("i", "total"));
	cg_printf(&e->dev, "\t\tconst long long w_ = i %% %lld, h_ = i / %lld %% %lld, c_ = i / %lld %% %lld, "
			   "n_ = i / %lld;\n", (long long)d.w, (long long)d.w, (long long)d.h,
		  (long long)(d.w * d.h), (long long)d.c, (long long)(d.w * d.h * d.c));
	cg_puts(&e->dev, "\t\t(void)n_; (void)c_; (void)h_; (void)w_;\n");
}

static void close_loop(CgEmit *e, CgKernel *k)
{
	cg_puts(&e->dev, "\t}\n");
	cg_kernel_close(e, k);
}

/* `for (kh) { ih = oh*s - pb + kh*d; if outside continue;` for axis a (forward tap loops) */
static void tap_loop(CgBuf *d, const ConvGeom *g, int a, const char *k, const char *o, const char *i,
		     int64_t extent, const char *ind)
{
	cg_printf(d, "%sfor (long long %s = 0; %s < %lld; %s++) {\n", ind, k, k, (long long)g->k[a], k);
	cg_printf(d, "%s\tconst long long %s = %s * %lld - %lld + %s * %lld;\n", ind, i, o, (long long)g->s[a],
		  (long long)g->pb[a], k, (long long)g->d[a]);
	cg_printf(d, "%s\tif (%s < 0 || %s >= %lld)\n%s\t\tcontinue;\n", ind, i, i, (long long)extent, ind);
}

/* the reverse: for (kh) { output oh whose tap kh is input ih; skip when there is none } */
static void window_loop(CgBuf *d, const ConvGeom *g, int a, const char *k, const char *i, const char *o,
			int64_t out_extent, const char *ind)
{
	cg_printf(d, "%sfor (long long %s = 0; %s < %lld; %s++) {\n", ind, k, k, (long long)g->k[a], k);
	cg_printf(d, "%s\tconst long long q%s = %s + %lld - %s * %lld;\n", ind, o, i, (long long)g->pb[a], k,
		  (long long)g->d[a]);
	cg_printf(d, "%s\tif (q%s < 0 || q%s %% %lld != 0 || q%s / %lld >= %lld)\n%s\t\tcontinue;\n", ind, o, o,
		  (long long)g->s[a], o, (long long)g->s[a], (long long)out_extent, ind);
	cg_printf(d, "%s\tconst long long %s = q%s / %lld;\n", ind, o, o, (long long)g->s[a]);
}

/* ---- convolutions ---- */

static int emit_conv(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *w = n->in[1], *y = n->out[0];
	ConvGeom g;
	if (geom(e, n, x, &g) < 0)
		return -1;
	Dims xs = dims(x), ys = dims(y);
	int64_t cg = w->shape.d[1], mg = ys.c / g.group;
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x", x);
	cg_arg_in(&k, "w", w);
	if (n->nin == 3)
		cg_arg_in(&k, "bias", n->in[2]);
	open_elementwise(e, &k, y);
	CgBuf *d = &e->dev;
	cg_printf(d, "\t\tconst %s *xb = x + (n_ * %lld + c_ / %lld * %lld) * %lld;\n", cg_etype(x->dt),
		  (long long)xs.c, (long long)mg, (long long)cg, (long long)(xs.h * xs.w));
	cg_printf(d, "\t\tconst %s *wb = w + c_ * %lld;\n", cg_etype(w->dt), (long long)(cg * g.k[0] * g.k[1]));
	cg_printf(d, "\t\tR acc = (R)0;\n\t\tfor (long long c = 0; c < %lld; c++) {\n", (long long)cg);
	tap_loop(d, &g, 0, "kh", "h_", "ih", xs.h, "\t\t\t");
	tap_loop(d, &g, 1, "kw", "w_", "iw", xs.w, "\t\t\t\t");
	char xe[128], we[128];
	snprintf(xe, sizeof xe, "xb[(c * %lld + ih) * %lld + iw]", (long long)xs.h, (long long)xs.w);
	snprintf(we, sizeof we, "wb[(c * %lld + kh) * %lld + kw]", (long long)g.k[0], (long long)g.k[1]);
	cg_printf(d, "\t\t\t\t\tacc += %s * %s;\n", cg_ld(x->dt, xe), cg_ld(w->dt, we));
	cg_puts(d, "\t\t\t\t}\n\t\t\t}\n\t\t}\n");
	cg_printf(d, "\t\ty[i] = %s;\n", n->nin == 3 ? "acc + bias[c_]" : "acc");
	close_loop(e, &k);
	return 0;
}

static int emit_conv_grad_input(CgEmit *e, const Node *n)
{
	const Value *dy = n->in[0], *w = n->in[1], *dx = n->out[0];
	ConvGeom g;
	if (geom(e, n, dx, &g) < 0)
		return -1;
	Dims ys = dims(dy);
	int64_t cg = w->shape.d[1], mg = ys.c / g.group;
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "dx", dx);
	cg_arg_in(&k, "dy", dy);
	cg_arg_in(&k, "w", w);
	open_elementwise(e, &k, dx);
	CgBuf *d = &e->dev;
	cg_printf(d, "\t\tconst long long m0 = c_ / %lld * %lld;\n\t\tR acc = (R)0;\n", (long long)cg, (long long)mg);
	cg_printf(d, "\t\tfor (long long m = m0; m < m0 + %lld; m++) {\n", (long long)mg);
	cg_printf(d, "\t\t\tconst %s *yb = dy + (n_ * %lld + m) * %lld;\n", cg_etype(dy->dt), (long long)ys.c,
		  (long long)(ys.h * ys.w));
	cg_printf(d, "\t\t\tconst %s *wb = w + (m * %lld + c_ %% %lld) * %lld;\n", cg_etype(w->dt), (long long)cg,
		  (long long)cg, (long long)(g.k[0] * g.k[1]));
	window_loop(d, &g, 0, "kh", "h_", "oh", ys.h, "\t\t\t");
	window_loop(d, &g, 1, "kw", "w_", "ow", ys.w, "\t\t\t\t");
	char ye[64], we[64];
	snprintf(ye, sizeof ye, "yb[oh * %lld + ow]", (long long)ys.w);
	snprintf(we, sizeof we, "wb[kh * %lld + kw]", (long long)g.k[1]);
	cg_printf(d, "\t\t\t\t\tacc += %s * %s;\n", cg_ld(dy->dt, ye), cg_ld(w->dt, we));
	cg_puts(d, "\t\t\t\t}\n\t\t\t}\n\t\t}\n\t\tdx[i] = acc;\n");
	close_loop(e, &k);
	return 0;
}

/* one block per weight element; threads stride over (n, oh, ow) */
static int emit_conv_grad_weight(CgEmit *e, const Node *n)
{
	const Value *dy = n->in[0], *x = n->in[1], *dw = n->out[0];
	ConvGeom g;
	if (geom(e, n, x, &g) < 0)
		return -1;
	Dims ys = dims(dy), xs = dims(x);
	int64_t cg = dw->shape.d[1], mg = ys.c / g.group, nw = ir_numel(&dw->shape);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "dw", dw);
	cg_arg_in(&k, "dy", dy);
	cg_arg_in(&k, "x", x);
	k.uses_sync = 1;
	snprintf(k.grid, sizeof k.grid, "dlcc_blocks(%lld)", (long long)nw);
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\t__shared__ R sh[%d];\n", CG_BLOCK);
	cg_printf(d, "\tconst long long red = %s * %lldLL;\n", ys.n, (long long)(ys.h * ys.w));
	cg_printf(d, "\tfor (long long r = blockIdx.x; r < %lld; r += gridDim.x) {\n", (long long)nw);
	cg_printf(d, "\t\tconst long long kw = r %% %lld, kh = r / %lld %% %lld, c = r / %lld %% %lld, m = r / %lld;\n",
		  (long long)g.k[1], (long long)g.k[1], (long long)g.k[0], (long long)(g.k[1] * g.k[0]),
		  (long long)cg, (long long)(g.k[1] * g.k[0] * cg));
	cg_printf(d, "\t\tconst long long cx = m / %lld * %lld + c;\n\t\tR s = (R)0;\n", (long long)mg, (long long)cg);
	cg_puts(d, "\t\tfor (long long j = threadIdx.x; j < red; j += blockDim.x) {\n");
	cg_printf(d, "\t\t\tconst long long ow = j %% %lld, oh = j / %lld %% %lld, n_ = j / %lld;\n", (long long)ys.w,
		  (long long)ys.w, (long long)ys.h, (long long)(ys.w * ys.h));
	cg_printf(d, "\t\t\tconst long long ih = oh * %lld - %lld + kh * %lld, iw = ow * %lld - %lld + kw * %lld;\n",
		  (long long)g.s[0], (long long)g.pb[0], (long long)g.d[0], (long long)g.s[1], (long long)g.pb[1],
		  (long long)g.d[1]);
	cg_printf(d, "\t\t\tif (ih >= 0 && ih < %lld && iw >= 0 && iw < %lld)\n", (long long)xs.h, (long long)xs.w);
	char ye[128], xe[128];
	snprintf(ye, sizeof ye, "dy[((n_ * %lld + m) * %lld + oh) * %lld + ow]", (long long)ys.c, (long long)ys.h,
		 (long long)ys.w);
	snprintf(xe, sizeof xe, "x[((n_ * %lld + cx) * %lld + ih) * %lld + iw]", (long long)xs.c, (long long)xs.h,
		 (long long)xs.w);
	cg_printf(d, "\t\t\t\ts += %s * %s;\n", cg_ld(dy->dt, ye), cg_ld(x->dt, xe));
	cg_puts(d, "\t\t}\n\t\ts = dlcc_block_sum(s, sh);\n\t\tif (threadIdx.x == 0)\n\t\t\tdw[r] = s;\n\t}\n");
	cg_kernel_close(e, &k);
	return 0;
}

/* ---- columns (passes/im2col.c) ---- */

/* `c, kh, kw` of tap index r and `ih, iw` of position p for the window taps of Im2Col */
static void emit_tap_of(CgBuf *d, const ConvGeom *g, int64_t ow_n)
{
	cg_printf(d, "\t\tconst long long c = r / %lld, kh = r / %lld %% %lld, kw = r %% %lld;\n",
		  (long long)(g->k[0] * g->k[1]), (long long)g->k[1], (long long)g->k[0], (long long)g->k[1]);
	cg_printf(d, "\t\tconst long long ih = p / %lld * %lld - %lld + kh * %lld, iw = p %% %lld * %lld - %lld + kw * %lld;\n",
		  (long long)ow_n, (long long)g->s[0], (long long)g->pb[0], (long long)g->d[0], (long long)ow_n,
		  (long long)g->s[1], (long long)g->pb[1], (long long)g->d[1]);
}

/* one thread per column entry: the tap it holds, or 0 in the padding (a copy, any float dtype) */
static int emit_im2col(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *cols = n->out[0];
	ConvGeom g;
	if (geom(e, n, x, &g) < 0)
		return -1;
	const Attr *l = ir_attr(n, "layout");
	int pixel = l && !strcmp(l->s, "pixel");
	Dims xs = dims(x);
	char nb[256]; /* the batch expression, kept from the ring of cg_dim / cg_prod */
	snprintf(nb, sizeof nb, "%s", xs.n);
	int64_t cg = xs.c / g.group, K = cg * g.k[0] * g.k[1];
	int64_t ow = ir_conv_out(&g, 1, xs.w), P = ir_conv_out(&g, 0, xs.h) * ow;
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "cols", cols);
	cg_arg_in(&k, "x", x);
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%s)", cg_prod(&cols->shape, 0, cols->shape.rank, "b"));
	cg_kernel_open(e, &k);
	CgBuf *d = &e->dev;
	cg_printf(d, "\tconst long long total = %s;\n\t%s {\n", cg_prod(&cols->shape, 0, cols->shape.rank, "B"),
		  cg_loop("i", "total"));
	if (pixel) /* [group, N·P, K] */
		cg_printf(d, "\t\tconst long long r = i %% %lld, p = i / %lld %% %lld, n_ = i / %lld %% %s, grp = i / %lld / %s;\n",
			  (long long)K, (long long)K, (long long)P, (long long)(K * P), nb, (long long)(K * P), nb);
	else /* [N, group, K, P] */
		cg_printf(d, "\t\tconst long long p = i %% %lld, r = i / %lld %% %lld, grp = i / %lld %% %lld, n_ = i / %lld;\n",
			  (long long)P, (long long)P, (long long)K, (long long)(P * K), (long long)g.group,
			  (long long)(P * K * g.group));
	emit_tap_of(d, &g, ow);
	cg_printf(d, "\t\tif (ih >= 0 && ih < %lld && iw >= 0 && iw < %lld)\n", (long long)xs.h, (long long)xs.w);
	cg_printf(d, "\t\t\tcols[i] = x[((n_ * %lld + grp * %lld + c) * %lld + ih) * %lld + iw];\n", (long long)xs.c,
		  (long long)cg, (long long)xs.h, (long long)xs.w);
	cg_printf(d, "\t\telse\n\t\t\tcols[i] = %s;\n", cg_st(cols->dt, "(R)0"));
	close_loop(e, &k);
	return 0;
}

/* one thread per input element: the sum of the column entries that read it (a gather, no atomics) */
static int emit_col2im(CgEmit *e, const Node *n)
{
	const Value *cols = n->in[0], *dx = n->out[0];
	ConvGeom g;
	if (geom(e, n, dx, &g) < 0)
		return -1;
	Dims xs = dims(dx);
	int64_t cg = xs.c / g.group, K = cg * g.k[0] * g.k[1];
	int64_t oh = ir_conv_out(&g, 0, xs.h), ow = ir_conv_out(&g, 1, xs.w);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "dx", dx);
	cg_arg_in(&k, "cols", cols);
	open_elementwise(e, &k, dx);
	CgBuf *d = &e->dev;
	cg_printf(d, "\t\tconst %s *cb = cols + ((n_ * %lld + c_ / %lld) * %lld + c_ %% %lld * %lld) * %lld;\n",
		  cg_etype(cols->dt), (long long)g.group, (long long)cg, (long long)K, (long long)cg,
		  (long long)(g.k[0] * g.k[1]), (long long)(oh * ow));
	cg_puts(d, "\t\tR acc = (R)0;\n");
	window_loop(d, &g, 0, "kh", "h_", "oh", oh, "\t\t");
	window_loop(d, &g, 1, "kw", "w_", "ow", ow, "\t\t\t");
	char ce[128];
	snprintf(ce, sizeof ce, "cb[(kh * %lld + kw) * %lld + oh * %lld + ow]", (long long)g.k[1], (long long)(oh * ow),
		 (long long)ow);
	cg_printf(d, "\t\t\t\tacc += %s;\n\t\t\t}\n\t\t}\n", cg_ld(cols->dt, ce));
	cg_printf(d, "\t\tdx[i] = %s;\n", cg_st(dx->dt, "acc"));
	close_loop(e, &k);
	return 0;
}

/* ---- pools ---- */

static int emit_max_pool(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *y = n->out[0];
	ConvGeom g;
	if (geom(e, n, x, &g) < 0)
		return -1;
	Dims xs = dims(x);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_out(&k, "idx", n->out[1]);
	cg_arg_in(&k, "x", x);
	open_elementwise(e, &k, y);
	CgBuf *d = &e->dev;
	cg_printf(d, "\t\tconst long long base = (n_ * %lld + c_) * %lld;\n", (long long)xs.c, (long long)(xs.h * xs.w));
	cg_puts(d, "\t\tR best = -(R)INFINITY;\n\t\tlong long arg = -1;\n");
	tap_loop(d, &g, 0, "kh", "h_", "ih", xs.h, "\t\t");
	tap_loop(d, &g, 1, "kw", "w_", "iw", xs.w, "\t\t\t");
	cg_printf(d, "\t\t\t\tconst long long p = base + ih * %lld + iw;\n", (long long)xs.w);
	cg_puts(d, "\t\t\t\tif (arg < 0 || x[p] > best) {\n\t\t\t\t\tbest = x[p];\n\t\t\t\t\targ = p;\n\t\t\t\t}\n");
	cg_puts(d, "\t\t\t}\n\t\t}\n\t\ty[i] = best;\n\t\tidx[i] = arg;\n");
	close_loop(e, &k);
	return 0;
}

static int emit_max_pool_grad(CgEmit *e, const Node *n)
{
	const Value *dy = n->in[0], *dx = n->out[0];
	ConvGeom g;
	if (geom(e, n, dx, &g) < 0)
		return -1;
	Dims ys = dims(dy);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "dx", dx);
	cg_arg_in(&k, "dy", dy);
	cg_arg_in(&k, "idx", n->in[1]);
	open_elementwise(e, &k, dx);
	CgBuf *d = &e->dev;
	cg_printf(d, "\t\tconst long long base = (n_ * %lld + c_) * %lld;\n\t\tR acc = (R)0;\n", (long long)ys.c,
		  (long long)(ys.h * ys.w));
	window_loop(d, &g, 0, "kh", "h_", "oh", ys.h, "\t\t");
	window_loop(d, &g, 1, "kw", "w_", "ow", ys.w, "\t\t\t");
	cg_printf(d, "\t\t\t\tconst long long o = base + oh * %lld + ow;\n", (long long)ys.w);
	cg_puts(d, "\t\t\t\tif (idx[o] == i)\n\t\t\t\t\tacc += dy[o];\n\t\t\t}\n\t\t}\n\t\tdx[i] = acc;\n");
	close_loop(e, &k);
	return 0;
}

/* `const long long cnt<axis> = taps of window o counted per count_include_pad;` */
static void emit_count(CgBuf *d, const ConvGeom *g, int a, const char *o, int64_t in)
{
	int64_t lo = g->count_include_pad ? -g->pb[a] : 0, hi = g->count_include_pad ? in + g->pe[a] : in;
	cg_printf(d, "\t\tlong long cnt%d = 0;\n\t\tfor (long long q = 0; q < %lld; q++) {\n", a, (long long)g->k[a]);
	cg_printf(d, "\t\t\tconst long long p = %s * %lld - %lld + q * %lld;\n\t\t\tcnt%d += p >= %lld && p < %lld;\n\t\t}\n",
		  o, (long long)g->s[a], (long long)g->pb[a], (long long)g->d[a], a, (long long)lo, (long long)hi);
}

static int emit_average_pool(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *y = n->out[0];
	ConvGeom g;
	if (geom(e, n, x, &g) < 0)
		return -1;
	Dims xs = dims(x);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x", x);
	open_elementwise(e, &k, y);
	CgBuf *d = &e->dev;
	cg_printf(d, "\t\tconst long long base = (n_ * %lld + c_) * %lld;\n\t\tR acc = (R)0;\n", (long long)xs.c,
		  (long long)(xs.h * xs.w));
	tap_loop(d, &g, 0, "kh", "h_", "ih", xs.h, "\t\t");
	tap_loop(d, &g, 1, "kw", "w_", "iw", xs.w, "\t\t\t");
	cg_printf(d, "\t\t\t\tacc += x[base + ih * %lld + iw];\n\t\t\t}\n\t\t}\n", (long long)xs.w);
	emit_count(d, &g, 0, "h_", xs.h);
	emit_count(d, &g, 1, "w_", xs.w);
	cg_puts(d, "\t\ty[i] = cnt0 * cnt1 ? acc / (R)(cnt0 * cnt1) : (R)0;\n");
	close_loop(e, &k);
	return 0;
}

static int emit_average_pool_grad(CgEmit *e, const Node *n)
{
	const Value *dy = n->in[0], *dx = n->out[0];
	ConvGeom g;
	if (geom(e, n, dx, &g) < 0)
		return -1;
	Dims ys = dims(dy), xs = dims(dx);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "dx", dx);
	cg_arg_in(&k, "dy", dy);
	open_elementwise(e, &k, dx);
	CgBuf *d = &e->dev;
	cg_printf(d, "\t\tconst long long base = (n_ * %lld + c_) * %lld;\n\t\tR acc = (R)0;\n", (long long)ys.c,
		  (long long)(ys.h * ys.w));
	window_loop(d, &g, 0, "kh", "h_", "oh", ys.h, "\t\t");
	window_loop(d, &g, 1, "kw", "w_", "ow", ys.w, "\t\t\t");
	cg_puts(d, "\t\t\t\t{\n");
	emit_count(d, &g, 0, "oh", xs.h);
	emit_count(d, &g, 1, "ow", xs.w);
	cg_printf(d, "\t\tif (cnt0 * cnt1)\n\t\t\tacc += dy[base + oh * %lld + ow] / (R)(cnt0 * cnt1);\n", (long long)ys.w);
	cg_puts(d, "\t\t\t\t}\n\t\t\t}\n\t\t}\n\t\tdx[i] = acc;\n");
	close_loop(e, &k);
	return 0;
}

/* ---- Pad ---- */

static char pad_mode(const Node *n)
{
	const Attr *m = ir_attr(n, "mode");
	return m && m->kind == A_STRING ? m->s[0] : 'c';
}

/* `src = the x coordinate output coordinate o reads on an axis (or -1)` as a C expression */
static void emit_src(CgBuf *d, char mode, const char *src, const char *o, int64_t pb, int64_t len)
{
	cg_printf(d, "long long %s = %s - %lld; ", src, o, (long long)pb);
	if (mode == 'c')
		cg_printf(d, "if (%s < 0 || %s >= %lld) %s = -1;", src, src, (long long)len, src);
	else if (mode == 'e')
		cg_printf(d, "%s = %s < 0 ? 0 : %s >= %lld ? %lld : %s;", src, src, src, (long long)len,
			  (long long)(len - 1), src);
	else
		cg_printf(d, "%s = %s < 0 ? -%s : %s >= %lld ? %lld - %s : %s;", src, src, src, src, (long long)len,
			  (long long)(2 * (len - 1)), src, src);
}

/* the kernel's index loop over a tensor of any rank: coordinates o0.. of element i */
static void open_any(CgEmit *e, CgKernel *k, const Value *v, const char *pre)
{
	const Shape *s = &v->shape;
	snprintf(k->grid, sizeof k->grid, "dlcc_grid(%s)", cg_prod(s, 0, s->rank, "b"));
	cg_kernel_open(e, k);
	cg_printf(&e->dev, "\tconst long long total = %s;\n\t%s {\n\t\tlong long t = i;\n", cg_prod(s, 0, s->rank, "B"),
		  cg_loop("i", "total"));
	for (int j = s->rank - 1; j >= 0; j--)
		cg_printf(&e->dev, "\t\tconst long long %s%d = t %% %s; t /= %s;\n", pre, j, cg_dim(s->d[j], "B"),
			  cg_dim(s->d[j], "B"));
	cg_puts(&e->dev, "\t\t(void)t;\n");
}

static int emit_pad(CgEmit *e, const Node *n)
{
	const Value *x = n->in[0], *y = n->out[0];
	const int64_t *p = ir_attr_ints(n, "pads", &(int){0});
	int r = x->shape.rank;
	char mode = pad_mode(n);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "y", y);
	cg_arg_in(&k, "x", x);
	open_any(e, &k, y, "o");
	CgBuf *d = &e->dev;
	cg_puts(d, "\t\tlong long off = 0, ok = 1;\n");
	for (int j = 0; j < r; j++) {
		char o[16], src[16];
		snprintf(o, sizeof o, "o%d", j);
		snprintf(src, sizeof src, "s%d", j);
		cg_puts(d, "\t\t{ ");
		if (p[j] || p[r + j]) /* (the batch axis is never padded) */
			emit_src(d, mode, src, o, p[j], x->shape.d[j]);
		else
			cg_printf(d, "long long %s = %s;", src, o);
		cg_printf(d, " ok &= %s >= 0; off = off * %s + %s; }\n", src, cg_dim(x->shape.d[j], "B"), src);
	}
	cg_printf(d, "\t\ty[i] = ok ? x[off] : (R)%.17g;\n", ir_attr_f(n, "value", 0.0));
	close_loop(e, &k);
	return 0;
}

/* dx[p] sums dy over the interior output p + pb and, per padded axis, the pad-region outputs that
 * map back onto p: nested candidate loops over the padded axes */
static int emit_pad_grad(CgEmit *e, const Node *n)
{
	const Value *dy = n->in[0], *dx = n->out[0];
	const int64_t *p = ir_attr_ints(n, "pads", &(int){0});
	int r = dx->shape.rank;
	char mode = pad_mode(n);
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "dx", dx);
	cg_arg_in(&k, "dy", dy);
	open_any(e, &k, dx, "p");
	CgBuf *d = &e->dev;
	cg_puts(d, "\t\tR acc = (R)0;\n");
	int loops = 0;
	for (int j = 0; j < r; j++) {
		int64_t pb = p[j], pe = p[r + j], len = dx->shape.d[j], pbp = pb > 0 ? pb : 0;
		if (pb == 0 && pe == 0) {
			cg_printf(d, "\t\tconst long long o%d = p%d;\n", j, j);
			continue;
		}
		int64_t cand = mode == 'c' ? 1 : 1 + pbp + (pe > 0 ? pe : 0);
		char o[16];
		snprintf(o, sizeof o, "o%d", j);
		cg_printf(d, "\t\tfor (long long c%d = 0; c%d < %lld; c%d++) {\n", j, j, (long long)cand, j);
		cg_printf(d, "\t\tconst long long o%d = c%d == 0 ? p%d + %lld : c%d <= %lld ? c%d - 1 : %lld + c%d - 1;\n",
			  j, j, j, (long long)pb, j, (long long)pbp, j, (long long)(len + pb - pbp), j);
		cg_printf(d, "\t\tif (o%d < 0 || o%d >= %lld)\n\t\t\tcontinue;\n", j, j, (long long)dy->shape.d[j]);
		if (mode != 'c') {
			cg_puts(d, "\t\t{ ");
			emit_src(d, mode, "s", o, pb, len);
			cg_printf(d, " if (c%d > 0 && s != p%d) continue; }\n", j, j);
		}
		loops++;
	}
	cg_puts(d, "\t\t{\n\t\t\tlong long off = 0;\n");
	for (int j = 0; j < r; j++)
		cg_printf(d, "\t\t\toff = off * %s + o%d;\n", cg_dim(dy->shape.d[j], "B"), j);
	cg_puts(d, "\t\t\tacc += dy[off];\n\t\t}\n");
	for (int j = 0; j < loops; j++)
		cg_puts(d, "\t\t}\n");
	cg_puts(d, "\t\tdx[i] = acc;\n");
	close_loop(e, &k);
	return 0;
}

int cg_emit_conv_family(CgEmit *e, const Node *n)
{
	switch (n->op) {
	case OP_CONV: return emit_conv(e, n);
	case OP_CONV_GRAD_INPUT: return emit_conv_grad_input(e, n);
	case OP_CONV_GRAD_WEIGHT: return emit_conv_grad_weight(e, n);
	case OP_MAX_POOL: return emit_max_pool(e, n);
	case OP_MAX_POOL_GRAD: return emit_max_pool_grad(e, n);
	case OP_AVERAGE_POOL: return emit_average_pool(e, n);
	case OP_AVERAGE_POOL_GRAD: return emit_average_pool_grad(e, n);
	case OP_PAD: return emit_pad(e, n);
	case OP_PAD_GRAD: return emit_pad_grad(e, n);
	case OP_IM2COL: return emit_im2col(e, n);
	case OP_COL2IM: return emit_col2im(e, n);
	default: break;
	}
	return cg_fail(e->err, e->errlen, "codegen: node '%s': not an op of the convolution family", n->name);
}
