/*
 * cg_gemm.c — Gemm and MatMul as rt_gemm calls (cublasGemmStridedBatchedEx semantics).
 *
 * cuBLAS is column-major and dlcc row-major: a row-major X[r,c] is the column-major X^T with
 * leading dimension c, so Y = op(A)·op(B) is computed as Y^T = op(B)^T·op(A)^T — the operands
 * swap, each keeps its own transpose flag, m = N, n = M. Gemm's C (bias) is first broadcast into
 * Y by an elementwise kernel, then the product accumulates onto it with beta.
 * MatMul: 1-D operands become [1,K] / [K,1]; batch dims broadcast; transA / transB (a
 * transpose of the last two dims folded in by passes/simplify.c) are cuBLAS's op flags. The longest suffix of the
 * output batch dims over which each operand is either complete (stride M·K) or absent (stride 0)
 * is one strided batched call; any leading batch dims that broadcast differently become a host
 * loop of such calls. Extents are host expressions of the batch `b`.
 * Mixed precision: fp16/bf16 operands with an f32 result (ir/shape.c) are one cuBLAS call with
 * A/B in half precision, C in fp32 and fp32 accumulation (tensor cores).
 */
#include <stdio.h>
#include <string.h>

#include "codegen/cg_internal.h"

typedef struct {
	int ta, tb;
	const char *m, *n, *k, *lda, *ldb, *ldc; /* host expressions */
	const char *a, *b, *c;                   /* host addresses */
	const char *sa, *sb, *sc, *batch;
	double alpha, beta;
} GemmCall;

/* the rt_gemm dtype of a value: f32 values take the compute type, half values their own */
const char *cg_gemm_dt(const CgEmit *e, DType dt)
{
	if (dt == DT_F16 || dt == DT_BF16)
		return dt == DT_F16 ? "DLCC_F16" : "DLCC_BF16";
	return e->L->prec == DT_F64 ? "DLCC_F64" : "DLCC_F32";
}

static void emit_call(CgEmit *e, const Node *n, const GemmCall *g, const char *indent)
{
	cg_printf(&e->host, "%sif (rt_gemm(rt, %s, %s, %d, %d, (int)%s, (int)%s, (int)%s, %.17g, %s, (int)%s, %s, "
			    "%s, (int)%s, %s, %.17g, %s, (int)%s, %s, (int)%s) < 0)\n%s\treturn -1;\n",
		  indent, cg_gemm_dt(e, n->in[0]->dt), cg_gemm_dt(e, n->out[0]->dt), g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a, g->lda, g->sa, g->b,
		  g->ldb, g->sb, g->beta, g->c, g->ldc, g->sc, g->batch, indent);
	e->gemms++;
}

int cg_gemm_check_float(CgEmit *e, const Node *n)
{
	for (int i = 0; i < n->nin; i++)
		if (!ir_dt_is_float(n->in[i]->dt) || (i == 1 && n->in[1]->dt != n->in[0]->dt))
			return cg_fail(e->err, e->errlen, "codegen: node '%s' (%s): operand %d is %s; "
					   "matrix products need float operands of one dtype", n->name,
				       ir_ops[n->op].name, i, ir_dt_name(n->in[i]->dt));
	return 0;
}

int cg_emit_gemm(CgEmit *e, const Node *n)
{
	if (cg_gemm_check_float(e, n) < 0)
		return -1;
	const Value *A = n->in[0], *B = n->in[1], *Y = n->out[0];
	int ta = (int)ir_attr_i(n, "transA", 0), tb = (int)ir_attr_i(n, "transB", 0);
	double alpha = ir_attr_f(n, "alpha", 1.0), beta = ir_attr_f(n, "beta", 1.0);
	int64_t M = A->shape.d[ta], K = A->shape.d[1 - ta], N = B->shape.d[1 - tb];
	if (n->nin == 3 && beta != 0.0) {
		char what[1100];
		snprintf(what, sizeof what, "C of %s, broadcast into the result", cg_node_comment(n));
		if (cg_emit_broadcast(e, NULL, what, Y, n->in[2]) < 0)
			return -1;
	} else {
		beta = 0.0;
	}
	cg_printf(&e->host, "\t/* %s */\n", cg_node_comment(n));
	GemmCall g = {tb, ta, cg_dim(N, "b"), cg_dim(M, "b"), cg_dim(K, "b"), tb ? cg_dim(K, "b") : cg_dim(N, "b"),
		      ta ? cg_dim(M, "b") : cg_dim(K, "b"), cg_dim(N, "b"), cg_addr(e, B), cg_addr(e, A),
		      cg_addr(e, Y), "0", "0", "0", "1", alpha, beta};
	emit_call(e, n, &g, "\t");
	return 0;
}

/* ---- MatMul ---- */

typedef struct {
	int nb;                       /* output batch rank */
	int64_t od[IR_MAX_RANK];      /* output batch dims */
	int64_t ad[IR_MAX_RANK], bd[IR_MAX_RANK]; /* operand batch dims aligned right, 1 if absent */
	int64_t M, K, N;
	int ta, tb;                   /* transA / transB: the operand's last two dims swapped */
} MmShape;

static void mm_shape(const Node *n, MmShape *s)
{
	const Shape *a = &n->in[0]->shape, *b = &n->in[1]->shape, *y = &n->out[0]->shape;
	int va = a->rank == 1, vb = b->rank == 1;
	int rab = va ? 0 : a->rank - 2, rbb = vb ? 0 : b->rank - 2;
	s->ta = (int)ir_attr_i(n, "transA", 0);
	s->tb = (int)ir_attr_i(n, "transB", 0);
	s->M = va ? 1 : a->d[a->rank - 2 + s->ta];
	s->K = a->d[a->rank - 1 - s->ta];
	s->N = vb ? 1 : b->d[b->rank - 1 - s->tb];
	s->nb = y->rank - !va - !vb;
	for (int j = 0; j < s->nb; j++) {
		int ja = j - (s->nb - rab), jb = j - (s->nb - rbb);
		s->od[j] = y->d[j];
		s->ad[j] = ja >= 0 ? a->d[ja] : 1;
		s->bd[j] = jb >= 0 ? b->d[jb] : 1;
	}
}

/* X (batch dims xd) is complete or absent over the suffix [s, nb) */
static int uniform(const MmShape *m, const int64_t *xd, int s)
{
	int full = 1, none = 1;
	for (int j = s; j < m->nb; j++) {
		full &= xd[j] == m->od[j];
		none &= xd[j] == 1;
	}
	return full || none;
}

static int suffix_full(const MmShape *m, const int64_t *xd, int s)
{
	for (int j = s; j < m->nb; j++)
		if (xd[j] != m->od[j])
			return 0;
	return 1;
}

/* product of dims d[from..to) times c, as a host expression */
static const char *dprod(const int64_t *d, int from, int to, int64_t c)
{
	Shape s = {0, {0}};
	for (int j = from; j < to; j++)
		s.d[s.rank++] = d[j];
	s.d[s.rank++] = c;
	return cg_prod(&s, 0, s.rank, "b");
}

/* element offset of operand X for outer index o: `{ c = t % d; t /= d; ox += c * stride; }` */
static void emit_outer_split(CgBuf *h, const MmShape *m, int s)
{
	cg_puts(h, "\t\tlong long t = o, oa = 0, ob = 0;\n");
	for (int j = s - 1; j >= 0; j--) {
		cg_printf(h, "\t\t{ long long c = t %% %s; t /= %s;", cg_dim(m->od[j], "b"), cg_dim(m->od[j], "b"));
		if (m->ad[j] != 1)
			cg_printf(h, " oa += c * %s;", dprod(m->ad, j + 1, m->nb, m->M * m->K));
		if (m->bd[j] != 1)
			cg_printf(h, " ob += c * %s;", dprod(m->bd, j + 1, m->nb, m->K * m->N));
		cg_puts(h, " (void)c; }\n");
	}
	cg_puts(h, "\t\t(void)t; (void)oa; (void)ob;\n");
}

static char *addr_plus(const CgEmit *e, const Value *v, const char *off, char *buf, size_t len)
{
	snprintf(buf, len, "%s + (%s) * %zu", cg_addr(e, v), off, cg_elem_size(v->dt, e->L->prec));
	return buf;
}

int cg_emit_matmul(CgEmit *e, const Node *n)
{
	if (cg_gemm_check_float(e, n) < 0)
		return -1;
	const Value *A = n->in[0], *B = n->in[1], *Y = n->out[0];
	MmShape m;
	mm_shape(n, &m);
	int s = m.nb;
	while (s > 0 && uniform(&m, m.ad, s - 1) && uniform(&m, m.bd, s - 1))
		s--;
	char sa[256], sb[256], sc[256], inner[256], outer[256];
	snprintf(sa, sizeof sa, "%s", suffix_full(&m, m.ad, s) && s < m.nb ? dprod(NULL, 0, 0, m.M * m.K) : "0");
	snprintf(sb, sizeof sb, "%s", suffix_full(&m, m.bd, s) && s < m.nb ? dprod(NULL, 0, 0, m.K * m.N) : "0");
	snprintf(sc, sizeof sc, "%s", dprod(NULL, 0, 0, m.M * m.N));
	snprintf(inner, sizeof inner, "%s", dprod(m.od, s, m.nb, 1));
	snprintf(outer, sizeof outer, "%s", dprod(m.od, 0, s, 1));
	cg_printf(&e->host, "\t/* %s */\n", cg_node_comment(n));
	if (s > 0) {
		cg_printf(&e->host, "\tfor (long long o = 0; o < %s; o++) {\n", outer);
		emit_outer_split(&e->host, &m, s);
	}
	char oy[600], pa[600], pb[600], py[800];
	snprintf(oy, sizeof oy, "o * %s * %s", inner, sc);
	GemmCall g = {m.tb, m.ta, cg_dim(m.N, "b"), cg_dim(m.M, "b"), cg_dim(m.K, "b"),
		      m.tb ? cg_dim(m.K, "b") : cg_dim(m.N, "b"), m.ta ? cg_dim(m.M, "b") : cg_dim(m.K, "b"),
		      cg_dim(m.N, "b"), cg_addr(e, B), cg_addr(e, A), cg_addr(e, Y), sb, sa, sc, inner, 1.0, 0.0};
	if (s > 0) {
		g.a = addr_plus(e, B, "ob", pb, sizeof pb);
		g.b = addr_plus(e, A, "oa", pa, sizeof pa);
		g.c = addr_plus(e, Y, oy, py, sizeof py);
	}
	emit_call(e, n, &g, s > 0 ? "\t\t" : "\t");
	if (s > 0)
		cg_puts(&e->host, "\t}\n");
	return 0;
}
