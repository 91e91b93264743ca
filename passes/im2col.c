/*
 * im2col.c — convolutions as matrix products (pass_im2col).
 *
 * Each Conv, ConvGradInput and ConvGradWeight that the heuristic picks is rewritten into
 * ordinary IR, so that the memory plan places and frees the columns like any temporary and
 * the interpreter stays the oracle (with G = group, Cg = C/G, Mg = M/G, K = Cg·kh·kw taps,
 * P = OH·OW output positions):
 *   Conv            cols = Im2Col(x) [N,G,K,P]; y = Reshape(MatMul(Reshape(w, [G,Mg,K]), cols))
 *                   (+ Add of the bias as [M,1,1]): one strided-batched GEMM over N·G
 *   ConvGradInput   cols = MatMul(Transpose(Reshape(w, [G,Mg,K])), Reshape(dy, [N,G,Mg,P]));
 *                   dx = Col2Im(cols) (a gather per input element, deterministic)
 *   ConvGradWeight  dw = MatMul(dy as [G,Mg,N·P] (a Transpose), Im2Col(x) "pixel" [G,N·P,K]):
 *                   one GEMM per group with the whole batch in its reduction
 * A pointwise window (1×1, stride 1, no padding) needs no Im2Col or Col2Im: the columns are x
 * and dx themselves, reshaped. The forward columns die after the forward GEMM; the weight
 * gradient recomputes its own from x, so no columns live across the step.
 * Heuristic (IM2COL_AUTO): lower when K >= 16 and Mg >= 16 — the two GEMM extents that do not
 * grow with the batch — so depthwise convolutions (K = kh·kw, Mg = 1) and thin layers keep
 * their direct kernels (codegen/cg_conv.c), which need no workspace and one launch.
 * IM2COL_ALL lowers every convolution, IM2COL_NONE none (`--conv`, DLCC_CONV).
 * Run after mixed precision (half operands give half columns and tensor-core GEMMs with an f32
 * result) and before fusion; the nodes it makes are those ops' own shape rules.
 */
#include <stdlib.h>
#include <string.h>

#include "ir/conv.h"
#include "passes/passes.h"

#define IM2COL_MIN_K 16  /* taps per output (the GEMM's reduction per image) */
#define IM2COL_MIN_MG 16 /* output channels per group */

typedef struct {
	Graph *g;
	Node **sched; /* the new schedule */
	int n;
} Lower;

/* the weight's shape [M, Cg, k..] of a convolution node */
static const Shape *weight_shape(const Node *n)
{
	return n->op == OP_CONV_GRAD_WEIGHT ? &n->out[0]->shape : &n->in[1]->shape;
}

static int is_conv(const Node *n)
{
	return n->op == OP_CONV || n->op == OP_CONV_GRAD_INPUT || n->op == OP_CONV_GRAD_WEIGHT;
}

static int wanted(const Node *n, int mode)
{
	if (!is_conv(n) || mode == IM2COL_NONE)
		return 0;
	if (mode == IM2COL_ALL)
		return 1;
	const Shape *w = weight_shape(n);
	int64_t k = w->d[1], group = ir_attr_i(n, "group", 1);
	for (int i = 2; i < w->rank; i++)
		k *= w->d[i];
	return k >= IM2COL_MIN_K && w->d[0] / group >= IM2COL_MIN_MG;
}

static Value *put(Lower *L, Node *n)
{
	if (ir_finish(L->g, n) < 0)
		return NULL;
	L->sched[L->n++] = n;
	return n->out[0];
}

static Value *reshape(Lower *L, Value *v, Shape s)
{
	if (!v)
		return NULL;
	Node *n = ir_begin(L->g, OP_RESHAPE, NULL, 1, &v);
	ir_set_ints(L->g, n, "shape", s.rank, s.d);
	return put(L, n);
}

static Value *transpose(Lower *L, Value *v, int rank, const int64_t *perm)
{
	if (!v)
		return NULL;
	Node *n = ir_begin(L->g, OP_TRANSPOSE, NULL, 1, &v);
	ir_set_ints(L->g, n, "perm", rank, perm);
	return put(L, n);
}

static Value *matmul(Lower *L, Value *a, Value *b)
{
	return a && b ? put(L, ir_begin(L->g, OP_MATMUL, NULL, 2, (Value *[]){a, b})) : NULL;
}

/* an op with conv's window attributes (and the given layout / shape) on one input */
static Value *windowed(Lower *L, Op op, const Node *conv, Value *in, const char *layout, const Shape *shape)
{
	static const char *const win[] = {"kernel_shape", "strides", "dilations", "pads"};
	if (!in)
		return NULL;
	Node *n = ir_begin(L->g, op, conv->name, 1, &in);
	for (int i = 0; i < 4; i++) {
		const Attr *a = ir_attr(conv, win[i]);
		ir_set_ints(L->g, n, win[i], a->n, a->ints);
	}
	ir_set_i(L->g, n, "group", ir_attr_i(conv, "group", 1));
	if (layout)
		ir_set_s(L->g, n, "layout", layout);
	if (shape)
		ir_set_ints(L->g, n, "shape", shape->rank, shape->d);
	return put(L, n);
}

typedef struct {
	int64_t G, Mg, K, P;
	int pointwise; /* 1×1, stride 1, no padding: the columns are x itself */
} Cols;

static Cols cols_of(const Node *n, const Shape *x, const Shape *y)
{
	const Shape *w = weight_shape(n);
	ConvGeom g;
	DLCC_ASSERT(ir_conv_geom(NULL, n, x->rank - 2, &g) == 0);
	int64_t h, wd;
	ir_conv_hw(y, &h, &wd);
	Cols c = {g.group, w->d[0] / g.group, w->d[1] * g.k[0] * g.k[1], h * wd, 1};
	for (int a = 0; a < 2; a++)
		c.pointwise &= g.k[a] == 1 && g.s[a] == 1 && g.pb[a] == 0 && g.pe[a] == 0;
	return c;
}

#define SH(...) ir_shape(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), (int64_t[]){__VA_ARGS__})

static Value *lower_conv(Lower *L, Node *n)
{
	Value *x = n->in[0], *y = n->out[0];
	Cols c = cols_of(n, &x->shape, &y->shape);
	int64_t N = x->shape.d[0];
	Value *cols = c.pointwise ? reshape(L, x, SH(N, c.G, c.K, c.P)) : windowed(L, OP_IM2COL, n, x, NULL, NULL);
	Value *r = reshape(L, matmul(L, reshape(L, n->in[1], SH(c.G, c.Mg, c.K)), cols), y->shape);
	if (n->nin < 3 || !r)
		return r;
	Shape bs = y->shape; /* the bias as [M, 1, ..] */
	bs.rank--;
	for (int i = 0; i < bs.rank; i++)
		bs.d[i] = i ? 1 : y->shape.d[1];
	Value *b = reshape(L, n->in[2], bs);
	return b ? put(L, ir_begin(L->g, OP_ADD, NULL, 2, (Value *[]){r, b})) : NULL;
}

static Value *lower_grad_input(Lower *L, Node *n)
{
	Value *dy = n->in[0], *dx = n->out[0];
	Cols c = cols_of(n, &dx->shape, &dy->shape);
	Value *wt = transpose(L, reshape(L, n->in[1], SH(c.G, c.Mg, c.K)), 3, (int64_t[]){0, 2, 1});
	Value *cols = matmul(L, wt, reshape(L, dy, SH(dy->shape.d[0], c.G, c.Mg, c.P)));
	return c.pointwise ? reshape(L, cols, dx->shape) : windowed(L, OP_COL2IM, n, cols, NULL, &dx->shape);
}

static Value *lower_grad_weight(Lower *L, Node *n)
{
	Value *dy = n->in[0], *x = n->in[1];
	Cols c = cols_of(n, &x->shape, &dy->shape);
	int64_t N = dy->shape.d[0];
	Value *t = transpose(L, reshape(L, dy, SH(N, c.G, c.Mg, c.P)), 4, (int64_t[]){1, 2, 0, 3});
	Value *cols = windowed(L, OP_IM2COL, n, x, "pixel", NULL);
	return reshape(L, matmul(L, reshape(L, t, SH(c.G, c.Mg, N * c.P)), cols), n->out[0]->shape);
}

static Value *lower(Lower *L, Node *n)
{
	switch (n->op) {
	case OP_CONV: return lower_conv(L, n);
	case OP_CONV_GRAD_INPUT: return lower_grad_input(L, n);
	case OP_CONV_GRAD_WEIGHT: return lower_grad_weight(L, n);
	default: break;
	}
	dlcc_internal_error(__FILE__, __LINE__, "pass_im2col: not a convolution");
}

int pass_im2col(Graph *g, int mode)
{
	int nold = g->nnodes, rc = 0, more = 0;
	for (int i = 0; i < nold; i++)
		more += wanted(g->nodes[i], mode);
	if (!more)
		return 0;
	Lower L = {g, malloc((nold + 12 * more + 1) * sizeof(Node *)), 0};
	Node **old = malloc((nold + 1) * sizeof *old);
	char *keep = malloc(nold + 12 * more + 1);
	DLCC_ASSERT(L.sched && old && keep);
	memcpy(old, g->nodes, nold * sizeof *old);
	for (int i = 0; i < nold && rc == 0; i++) {
		Node *n = old[i];
		Value *r = wanted(n, mode) ? lower(&L, n) : n->out[0];
		if (!r) {
			rc = -1;
			break;
		}
		keep[L.n] = r == n->out[0];
		L.sched[L.n++] = n;
		if (!keep[L.n - 1]) /* the old node stays in place until its uses are moved */
			ir_replace_uses(g, n->out[0], r);
	}
	if (rc == 0) { /* every node, new ones included, in the new order; the lowered ones leave */
		DLCC_ASSERT(L.n == g->nnodes);
		for (int i = 0; i < L.n; i++)
			keep[i] = is_conv(L.sched[i]) ? keep[i] : 1;
		memcpy(g->nodes, L.sched, L.n * sizeof *L.sched);
		ir_remove_nodes(g, keep);
	}
	free(L.sched);
	free(old);
	free(keep);
	return rc;
}
