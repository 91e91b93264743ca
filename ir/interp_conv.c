/*
 * interp_conv.c — the reference interpreter's convolution family (ops.def, conv group): Conv,
 * ConvGradInput, ConvGradWeight, MaxPool, MaxPoolGrad, AveragePool, AveragePoolGrad, Pad,
 * PadGrad, written as the plain loop nests of their definitions.
 *
 * Every tensor is viewed as [N, C, H, W] (a 1-D op has H = 1; see ir/conv.h), so each op is one
 * loop nest over its output with the window taps innermost. Forward ops gather; the gradient ops
 * that are sums over windows (MaxPoolGrad, AveragePoolGrad, PadGrad) scatter into a double
 * accumulator and round once at the end, which is the definition read literally and an
 * independent check of the kernels, which gather. Sums accumulate in double and are rounded
 * once (f32 mode), like the matrix products in interp.c. Im2Col copies window taps into the
 * column layouts and Col2Im scatters them back, both through one walk over the column entries.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/conv.h"
#include "ir/interp_ops.h"

typedef struct {
	int64_t n, c, h, w;
} Nchw;

static Nchw nchw(const IView *t)
{
	Nchw s = {t->d[0], t->d[1], t->rank == 4 ? t->d[2] : 1, t->d[t->rank - 1]};
	return s;
}

static int64_t at(const Nchw *s, int64_t n, int64_t c, int64_t h, int64_t w)
{
	return ((n * s->c + c) * s->h + h) * s->w + w;
}

/* input coordinate of tap t of output o on axis a */
static int64_t tap(const ConvGeom *g, int a, int64_t o, int64_t t) { return o * g->s[a] - g->pb[a] + t * g->d[a]; }

static int geom(Interp *it, const Node *n, const Value *x, ConvGeom *g)
{
	if (ir_conv_geom(NULL, n, x->shape.rank - 2, g) < 0)
		return interp_fail(it, n, "malformed window attributes");
	return 0;
}

/* ---- convolutions ---- */

/* y[n,m,oh,ow] = b[m] + sum_{c,kh,kw} x[n, grp*Cg + c, tap, tap] * w[m, c, kh, kw] */
static int conv(Interp *it, const Node *n)
{
	IView x = interp_view(it, n->in[0]), w = interp_view(it, n->in[1]), y = interp_view(it, n->out[0]);
	IView b = n->nin == 3 ? interp_view(it, n->in[2]) : (IView){0};
	ConvGeom g;
	if (geom(it, n, n->in[0], &g) < 0)
		return -1;
	Nchw xs = nchw(&x), ys = nchw(&y), ws = nchw(&w);
	int64_t cg = ws.c, mg = ys.c / g.group;
	for (int64_t b0 = 0; b0 < ys.n; b0++)
	for (int64_t m = 0; m < ys.c; m++)
	for (int64_t oh = 0; oh < ys.h; oh++)
	for (int64_t ow = 0; ow < ys.w; ow++) {
		double acc = 0;
		for (int64_t c = 0; c < cg; c++)
		for (int64_t kh = 0; kh < g.k[0]; kh++)
		for (int64_t kw = 0; kw < g.k[1]; kw++) {
			int64_t ih = tap(&g, 0, oh, kh), iw = tap(&g, 1, ow, kw);
			if (ih >= 0 && ih < xs.h && iw >= 0 && iw < xs.w)
				acc += x.f[at(&xs, b0, m / mg * cg + c, ih, iw)] * w.f[at(&ws, m, c, kh, kw)];
		}
		double v = interp_round(it, acc);
		y.f[at(&ys, b0, m, oh, ow)] = b.f ? interp_round(it, v + b.f[m]) : v;
	}
	return 0;
}

/* output coordinate whose tap t lands on input coordinate i (axis a), or -1 */
static int64_t out_of(const ConvGeom *g, int a, int64_t i, int64_t t, int64_t extent)
{
	int64_t q = i + g->pb[a] - t * g->d[a];
	if (q < 0 || q % g->s[a])
		return -1;
	return q / g->s[a] < extent ? q / g->s[a] : -1;
}

/* dx[n,c,ih,iw] = sum_{m in c's group, kh, kw} dy[n,m,oh,ow] * w[m, c mod Cg, kh, kw] */
static int conv_grad_input(Interp *it, const Node *n)
{
	IView dy = interp_view(it, n->in[0]), w = interp_view(it, n->in[1]), dx = interp_view(it, n->out[0]);
	ConvGeom g;
	if (geom(it, n, n->out[0], &g) < 0)
		return -1;
	Nchw ys = nchw(&dy), xs = nchw(&dx), ws = nchw(&w);
	int64_t cg = ws.c, mg = ys.c / g.group;
	for (int64_t b0 = 0; b0 < xs.n; b0++)
	for (int64_t c = 0; c < xs.c; c++)
	for (int64_t ih = 0; ih < xs.h; ih++)
	for (int64_t iw = 0; iw < xs.w; iw++) {
		double acc = 0;
		for (int64_t m = c / cg * mg; m < (c / cg + 1) * mg; m++)
		for (int64_t kh = 0; kh < g.k[0]; kh++)
		for (int64_t kw = 0; kw < g.k[1]; kw++) {
			int64_t oh = out_of(&g, 0, ih, kh, ys.h), ow = out_of(&g, 1, iw, kw, ys.w);
			if (oh >= 0 && ow >= 0)
				acc += dy.f[at(&ys, b0, m, oh, ow)] * w.f[at(&ws, m, c % cg, kh, kw)];
		}
		dx.f[at(&xs, b0, c, ih, iw)] = interp_round(it, acc);
	}
	return 0;
}

/* dw[m,c,kh,kw] = sum_{n,oh,ow} dy[n,m,oh,ow] * x[n, grp*Cg + c, tap, tap] */
static int conv_grad_weight(Interp *it, const Node *n)
{
	IView dy = interp_view(it, n->in[0]), x = interp_view(it, n->in[1]), dw = interp_view(it, n->out[0]);
	ConvGeom g;
	if (geom(it, n, n->in[1], &g) < 0)
		return -1;
	Nchw ys = nchw(&dy), xs = nchw(&x), ws = nchw(&dw);
	int64_t cg = ws.c, mg = ys.c / g.group;
	for (int64_t m = 0; m < ws.n; m++)
	for (int64_t c = 0; c < cg; c++)
	for (int64_t kh = 0; kh < g.k[0]; kh++)
	for (int64_t kw = 0; kw < g.k[1]; kw++) {
		double acc = 0;
		for (int64_t b0 = 0; b0 < ys.n; b0++)
		for (int64_t oh = 0; oh < ys.h; oh++)
		for (int64_t ow = 0; ow < ys.w; ow++) {
			int64_t ih = tap(&g, 0, oh, kh), iw = tap(&g, 1, ow, kw);
			if (ih >= 0 && ih < xs.h && iw >= 0 && iw < xs.w)
				acc += dy.f[at(&ys, b0, m, oh, ow)] * x.f[at(&xs, b0, m / mg * cg + c, ih, iw)];
		}
		dw.f[at(&ws, m, c, kh, kw)] = interp_round(it, acc);
	}
	return 0;
}

/* ---- pools ---- */

/* y = the first maximum of each window (padding never wins), indices its flat offset in x */
static int max_pool(Interp *it, const Node *n)
{
	IView x = interp_view(it, n->in[0]), y = interp_view(it, n->out[0]), ix = interp_view(it, n->out[1]);
	ConvGeom g;
	if (geom(it, n, n->in[0], &g) < 0)
		return -1;
	Nchw xs = nchw(&x), ys = nchw(&y);
	for (int64_t b0 = 0; b0 < ys.n; b0++)
	for (int64_t c = 0; c < ys.c; c++)
	for (int64_t oh = 0; oh < ys.h; oh++)
	for (int64_t ow = 0; ow < ys.w; ow++) {
		double best = -INFINITY;
		int64_t arg = -1;
		for (int64_t kh = 0; kh < g.k[0]; kh++)
		for (int64_t kw = 0; kw < g.k[1]; kw++) {
			int64_t ih = tap(&g, 0, oh, kh), iw = tap(&g, 1, ow, kw);
			if (ih >= 0 && ih < xs.h && iw >= 0 && iw < xs.w && (arg < 0 || x.f[at(&xs, b0, c, ih, iw)] > best)) {
				arg = at(&xs, b0, c, ih, iw);
				best = x.f[arg];
			}
		}
		y.f[at(&ys, b0, c, oh, ow)] = best;
		ix.i[at(&ys, b0, c, oh, ow)] = arg;
	}
	return 0;
}

/* dx[p] = sum of dy[o] with indices[o] == p */
static int max_pool_grad(Interp *it, const Node *n)
{
	IView dy = interp_view(it, n->in[0]), ix = interp_view(it, n->in[1]), dx = interp_view(it, n->out[0]);
	double *acc = calloc(dx.n + 1, sizeof *acc);
	DLCC_ASSERT(acc);
	for (int64_t o = 0; o < dy.n; o++) {
		if (ix.i[o] < -1 || ix.i[o] >= dx.n) {
			free(acc);
			return interp_fail(it, n, "index %lld at %lld is outside the input", (long long)ix.i[o], (long long)o);
		}
		if (ix.i[o] >= 0)
			acc[ix.i[o]] += dy.f[o];
	}
	for (int64_t p = 0; p < dx.n; p++)
		dx.f[p] = interp_round(it, acc[p]);
	free(acc);
	return 0;
}

static int64_t pool_count(const ConvGeom *g, const Nchw *xs, int64_t oh, int64_t ow)
{
	return ir_pool_count(g, 0, oh, xs->h) * ir_pool_count(g, 1, ow, xs->w);
}

static int average_pool(Interp *it, const Node *n)
{
	IView x = interp_view(it, n->in[0]), y = interp_view(it, n->out[0]);
	ConvGeom g;
	if (geom(it, n, n->in[0], &g) < 0)
		return -1;
	Nchw xs = nchw(&x), ys = nchw(&y);
	for (int64_t b0 = 0; b0 < ys.n; b0++)
	for (int64_t c = 0; c < ys.c; c++)
	for (int64_t oh = 0; oh < ys.h; oh++)
	for (int64_t ow = 0; ow < ys.w; ow++) {
		double acc = 0;
		for (int64_t kh = 0; kh < g.k[0]; kh++)
		for (int64_t kw = 0; kw < g.k[1]; kw++) {
			int64_t ih = tap(&g, 0, oh, kh), iw = tap(&g, 1, ow, kw);
			if (ih >= 0 && ih < xs.h && iw >= 0 && iw < xs.w)
				acc += x.f[at(&xs, b0, c, ih, iw)];
		}
		int64_t cnt = pool_count(&g, &xs, oh, ow);
		y.f[at(&ys, b0, c, oh, ow)] = cnt ? interp_round(it, interp_round(it, acc) / (double)cnt) : 0;
	}
	return 0;
}

/* dy[o] / count(o) added to every input tap of window o */
static int average_pool_grad(Interp *it, const Node *n)
{
	IView dy = interp_view(it, n->in[0]), dx = interp_view(it, n->out[0]);
	ConvGeom g;
	if (geom(it, n, n->out[0], &g) < 0)
		return -1;
	Nchw xs = nchw(&dx), ys = nchw(&dy);
	double *acc = calloc(dx.n + 1, sizeof *acc);
	DLCC_ASSERT(acc);
	for (int64_t b0 = 0; b0 < ys.n; b0++)
	for (int64_t c = 0; c < ys.c; c++)
	for (int64_t oh = 0; oh < ys.h; oh++)
	for (int64_t ow = 0; ow < ys.w; ow++) {
		int64_t cnt = pool_count(&g, &xs, oh, ow);
		double v = cnt ? interp_round(it, dy.f[at(&ys, b0, c, oh, ow)] / (double)cnt) : 0;
		for (int64_t kh = 0; kh < g.k[0]; kh++)
		for (int64_t kw = 0; kw < g.k[1]; kw++) {
			int64_t ih = tap(&g, 0, oh, kh), iw = tap(&g, 1, ow, kw);
			if (ih >= 0 && ih < xs.h && iw >= 0 && iw < xs.w)
				acc[at(&xs, b0, c, ih, iw)] += v;
		}
	}
	for (int64_t p = 0; p < dx.n; p++)
		dx.f[p] = interp_round(it, acc[p]);
	free(acc);
	return 0;
}

/* ---- Pad ---- */

/* the source coordinate of output coordinate o on an axis of extent len, or -1 (constant fill) */
static int64_t pad_src(char mode, int64_t o, int64_t pb, int64_t len)
{
	int64_t i = o - pb;
	if (i >= 0 && i < len)
		return i;
	if (mode == 'c')
		return -1;
	if (mode == 'e')
		return i < 0 ? 0 : len - 1;
	return i < 0 ? -i : 2 * (len - 1) - i; /* reflect (pads < len, checked by the shape rule) */
}

/* offset in x of output element k of a Pad (x extents xd, output extents yd), or -1 */
static int64_t pad_map(const Node *n, const IView *x, const IView *y, int64_t k)
{
	int cnt;
	const int64_t *p = ir_attr_ints(n, "pads", &cnt);
	const Attr *m = ir_attr(n, "mode");
	char mode = m ? m->s[0] : 'c';
	int64_t off = 0, stride = 1;
	for (int j = y->rank - 1; j >= 0; j--) {
		int64_t o = k % y->d[j], i = pad_src(mode, o, p[j], x->d[j]);
		k /= y->d[j];
		if (i < 0)
			return -1;
		off += i * stride;
		stride *= x->d[j];
	}
	return off;
}

static int pad(Interp *it, const Node *n)
{
	IView x = interp_view(it, n->in[0]), y = interp_view(it, n->out[0]);
	double value = interp_round(it, ir_attr_f(n, "value", 0.0));
	for (int64_t k = 0; k < y.n; k++) {
		int64_t s = pad_map(n, &x, &y, k);
		y.f[k] = s < 0 ? value : x.f[s];
	}
	return 0;
}

static int pad_grad(Interp *it, const Node *n)
{
	IView dy = interp_view(it, n->in[0]), dx = interp_view(it, n->out[0]);
	double *acc = calloc(dx.n + 1, sizeof *acc);
	DLCC_ASSERT(acc);
	for (int64_t k = 0; k < dy.n; k++) {
		int64_t s = pad_map(n, &dx, &dy, k);
		if (s >= 0)
			acc[s] += dy.f[k];
	}
	for (int64_t p = 0; p < dx.n; p++)
		dx.f[p] = interp_round(it, acc[p]);
	free(acc);
	return 0;
}

/* ---- columns (passes/im2col.c) ---- */

/* the column entry (n, grp, r = (c, kh, kw), p = (oh, ow)) of x, visited in that order: f(col
 * offset in the "image" or "pixel" layout, x offset or -1 in the padding) */
typedef void (*ColVisit)(void *ctx, int64_t col, int64_t xo);

static void each_column(const Nchw *xs, const ConvGeom *g, int64_t oh_n, int64_t ow_n, int pixel, ColVisit f,
			void *ctx)
{
	int64_t cg = xs->c / g->group, K = cg * g->k[0] * g->k[1], P = oh_n * ow_n;
	for (int64_t b0 = 0; b0 < xs->n; b0++)
	for (int64_t grp = 0; grp < g->group; grp++)
	for (int64_t r = 0; r < K; r++)
	for (int64_t p = 0; p < P; p++) {
		int64_t c = r / (g->k[0] * g->k[1]), kh = r / g->k[1] % g->k[0], kw = r % g->k[1];
		int64_t ih = tap(g, 0, p / ow_n, kh), iw = tap(g, 1, p % ow_n, kw);
		int64_t xo = ih >= 0 && ih < xs->h && iw >= 0 && iw < xs->w ? at(xs, b0, grp * cg + c, ih, iw) : -1;
		int64_t col = pixel ? ((grp * xs->n + b0) * P + p) * K + r : ((b0 * g->group + grp) * K + r) * P + p;
		f(ctx, col, xo);
	}
}

typedef struct {
	const double *from;
	double *to;
} ColCopy;

static void copy_in(void *ctx, int64_t col, int64_t xo)
{
	ColCopy *c = ctx;
	c->to[col] = xo >= 0 ? c->from[xo] : 0.0;
}

static void add_back(void *ctx, int64_t col, int64_t xo)
{
	ColCopy *c = ctx;
	if (xo >= 0)
		c->to[xo] += c->from[col];
}

/* the output extents of x's windows: (OH, OW) */
static void window_hw(const Nchw *xs, const ConvGeom *g, int64_t *oh, int64_t *ow)
{
	*oh = ir_conv_out(g, 0, xs->h);
	*ow = ir_conv_out(g, 1, xs->w);
}

static int im2col(Interp *it, const Node *n)
{
	IView x = interp_view(it, n->in[0]), cols = interp_view(it, n->out[0]);
	ConvGeom g;
	if (geom(it, n, n->in[0], &g) < 0)
		return -1;
	const Attr *l = ir_attr(n, "layout");
	Nchw xs = nchw(&x);
	int64_t oh, ow;
	window_hw(&xs, &g, &oh, &ow);
	each_column(&xs, &g, oh, ow, l && !strcmp(l->s, "pixel"), copy_in, &(ColCopy){x.f, cols.f});
	return 0;
}

/* scatter-add of every column entry onto the element it was read from, rounded once */
static int col2im(Interp *it, const Node *n)
{
	IView cols = interp_view(it, n->in[0]), dx = interp_view(it, n->out[0]);
	ConvGeom g;
	if (geom(it, n, n->out[0], &g) < 0)
		return -1;
	Nchw xs = nchw(&dx);
	int64_t oh, ow;
	window_hw(&xs, &g, &oh, &ow);
	double *acc = calloc(dx.n + 1, sizeof *acc);
	DLCC_ASSERT(acc);
	each_column(&xs, &g, oh, ow, 0, add_back, &(ColCopy){cols.f, acc});
	for (int64_t p = 0; p < dx.n; p++)
		dx.f[p] = interp_round(it, acc[p]);
	free(acc);
	return 0;
}

int interp_conv_family(Interp *it, const Node *n)
{
	switch (n->op) {
	case OP_CONV: return conv(it, n);
	case OP_CONV_GRAD_INPUT: return conv_grad_input(it, n);
	case OP_CONV_GRAD_WEIGHT: return conv_grad_weight(it, n);
	case OP_MAX_POOL: return max_pool(it, n);
	case OP_MAX_POOL_GRAD: return max_pool_grad(it, n);
	case OP_AVERAGE_POOL: return average_pool(it, n);
	case OP_AVERAGE_POOL_GRAD: return average_pool_grad(it, n);
	case OP_PAD: return pad(it, n);
	case OP_PAD_GRAD: return pad_grad(it, n);
	case OP_IM2COL: return im2col(it, n);
	case OP_COL2IM: return col2im(it, n);
	default: break;
	}
	return interp_fail(it, n, "not an op of the convolution family");
}
