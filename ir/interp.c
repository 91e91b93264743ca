/*
 * interp.c — the reference interpreter (see interp.h): runs every op of ops.def on the host.
 *
 * How: one Tensor per graph value (indexed by value id), allocated once in interp_new with the
 * batch resolved. Floating-point tensors are held as double, integer and bool tensors as int64.
 * In f64 mode every operation is exact double arithmetic. In f32 mode every elementary
 * operation is rounded to float right after it is done (rd()): for + - * / and sqrt a double
 * result rounded to float equals the float32 operation, so this is float32 arithmetic with one
 * code path; exp/log/tanh come out correctly rounded. Reductions, matrix products and softmax
 * sums accumulate in double and are rounded once at the end (like a kernel with an fp32
 * accumulator, only more exact). Also in f32 mode, values of dtype f16/bf16 are rounded to that
 * type when stored, as the device stores them.
 *
 * Broadcasting is done the same way everywhere: walk the output's multi-index and map it to each
 * operand's offset with bcast_offset(). Preconditions: the graph's shape rules have run (node
 * outputs carry shapes) and attributes are in IR normal form (non-negative axes). Left to
 * others: verifying the graph (ir_verify); speed.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/interp.h"
#include "ir/norm.h"
#include "ir/interp_ops.h"
#include "runtime/rt_half.h"

#include "ir/interp_impl.h"

/* ---- errors and rounding ---- */

static int fail(Interp *it, const Node *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(Interp *it, const Node *n, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n)
		snprintf(it->err, sizeof it->err, "node '%s' (%s): %s", n->name ? n->name : "?",
			 ir_ops[n->op].name, msg);
	else
		snprintf(it->err, sizeof it->err, "%s", msg);
	return -1;
}

/* one elementary float operation's result in the compute type */
static double rd(const Interp *it, double x) { return it->f32 ? (double)(float)x : x; }

/* a stored value of dtype dt (f32 mode: the type the device stores) */
static double round_dt(const Interp *it, DType dt, double x)
{
	if (!it->f32)
		return x;
	if (dt == DT_F16)
		return rt_f16_to_f32(rt_f32_to_f16((float)x));
	if (dt == DT_BF16)
		return rt_bf16_to_f32(rt_f32_to_bf16((float)x));
	return (float)x;
}

/* ---- host data conversion ---- */

static double src_f64(const void *p, DType dt, int64_t k)
{
	switch (dt) {
	case DT_F32: return ((const float *)p)[k];
	case DT_F64: return ((const double *)p)[k];
	case DT_F16: return rt_f16_to_f32(((const uint16_t *)p)[k]);
	case DT_BF16: return rt_bf16_to_f32(((const uint16_t *)p)[k]);
	case DT_I64: return (double)((const int64_t *)p)[k];
	case DT_I32: return ((const int32_t *)p)[k];
	case DT_BOOL: case DT_U8: return ((const uint8_t *)p)[k];
	default: DLCC_ASSERT(!"dtype");
	}
	return 0;
}

static int64_t src_i64(const void *p, DType dt, int64_t k)
{
	switch (dt) {
	case DT_I64: return ((const int64_t *)p)[k];
	case DT_I32: return ((const int32_t *)p)[k];
	case DT_BOOL: case DT_U8: return ((const uint8_t *)p)[k];
	default: return (int64_t)src_f64(p, dt, k);
	}
}

static void load(Interp *it, Tensor *t, const void *src, DType dt)
{
	for (int64_t k = 0; k < t->n; k++) {
		if (t->isint)
			t->i[k] = src_i64(src, dt, k);
		else
			t->f[k] = round_dt(it, t->v->dt, src_f64(src, dt, k));
	}
	t->ready = 1;
}

/* dst[k] = src[s], whatever either holds */
static void copy_elem(Tensor *dst, int64_t k, const Tensor *src, int64_t s)
{
	if (dst->isint)
		dst->i[k] = src->isint ? src->i[s] : (int64_t)src->f[s];
	else
		dst->f[k] = src->isint ? (double)src->i[s] : src->f[s];
}

/* ---- index helpers shared by every op ---- */

static void unravel(int64_t flat, int rank, const int64_t *d, int64_t *idx)
{
	for (int j = rank - 1; j >= 0; j--) {
		idx[j] = d[j] ? flat % d[j] : 0;
		flat = d[j] ? flat / d[j] : 0;
	}
}

/* Offset in a C-order tensor of extents d[0..rank) read for the output multi-index idx of rank
 * orank >= rank, under numpy broadcasting (right-aligned; extents of 1 repeat). */
static int64_t bcast_offset(const int64_t *idx, int orank, int rank, const int64_t *d)
{
	int64_t off = 0, stride = 1;
	DLCC_ASSERT(rank <= orank);
	for (int j = rank - 1; j >= 0; j--) {
		if (d[j] != 1)
			off += idx[j + orank - rank] * stride;
		stride *= d[j];
	}
	return off;
}

/* a tensor as [outer, len, inner] around `axis` */
static void axis_split(const Tensor *t, int axis, int64_t *outer, int64_t *len, int64_t *inner)
{
	*outer = *inner = 1;
	for (int j = 0; j < t->rank; j++) {
		if (j < axis)
			*outer *= t->d[j];
		else if (j > axis)
			*inner *= t->d[j];
	}
	*len = t->d[axis];
}

/* ---- tensors ---- */

static Tensor *tensor_of(Interp *it, const Value *v)
{
	if (!v || v->id < 0 || v->id >= it->nt || it->t[v->id].v != v)
		return NULL;
	return &it->t[v->id];
}

static Tensor *in_t(Interp *it, const Node *n, int i) { return tensor_of(it, n->in[i]); }
static Tensor *out_t(Interp *it, const Node *n, int i) { return tensor_of(it, n->out[i]); }

static int tensor_init(Interp *it, Tensor *t, const Value *v)
{
	t->v = v;
	t->rank = v->shape.rank;
	for (int j = 0; j < t->rank; j++)
		t->d[j] = ir_dim_at(v->shape.d[j], it->batch);
	t->n = ir_numel_at(&v->shape, it->batch);
	t->isint = !ir_dt_is_float(v->dt);
	size_t cnt = t->n ? (size_t)t->n : 1;
	if (t->isint)
		t->i = calloc(cnt, sizeof *t->i);
	else
		t->f = calloc(cnt, sizeof *t->f);
	if (!t->i && !t->f)
		return fail(it, NULL, "out of memory for value '%s' (%lld elements)", v->name, (long long)t->n);
	if ((v->kind == V_CONST || v->kind == V_PARAM) && v->data) {
		if (ir_has_batch(&v->shape))
			return fail(it, NULL, "value '%s' has data but a batch dimension", v->name);
		load(it, t, v->data, v->dt);
	}
	t->ready |= v->kind == V_STATE;
	return 0;
}

Interp *interp_new(const Graph *g, DType compute, int64_t batch, char *err, size_t errlen)
{
	if (compute != DT_F64 && compute != DT_F32) {
		snprintf(err, errlen, "interpreter: compute type must be f64 or f32, not %s", ir_dt_name(compute));
		return NULL;
	}
	if (batch < 1) {
		snprintf(err, errlen, "interpreter: batch must be >= 1, not %lld", (long long)batch);
		return NULL;
	}
	Interp *it = calloc(1, sizeof *it);
	DLCC_ASSERT(it);
	it->g = g;
	it->f32 = compute == DT_F32;
	it->batch = batch;
	for (int k = 0; k < g->nvalues; k++)
		if (g->values[k]->id + 1 > it->nt)
			it->nt = g->values[k]->id + 1;
	it->t = calloc(it->nt ? it->nt : 1, sizeof *it->t);
	DLCC_ASSERT(it->t);
	for (int k = 0; k < g->nvalues; k++) {
		if (tensor_init(it, &it->t[g->values[k]->id], g->values[k]) < 0) {
			snprintf(err, errlen, "%s", it->err);
			interp_free(it);
			return NULL;
		}
	}
	return it;
}

void interp_free(Interp *it)
{
	if (!it)
		return;
	for (int k = 0; k < it->nt; k++) {
		free(it->t[k].f);
		free(it->t[k].i);
	}
	free(it->t);
	free(it);
}

const char *interp_error(const Interp *it) { return it->err; }

int interp_set(Interp *it, const Value *v, const void *data, DType dt)
{
	Tensor *t = tensor_of(it, v);
	if (!t)
		return fail(it, NULL, "interp_set: value '%s' is not in this graph", v ? v->name : "?");
	if (v->kind == V_TEMP)
		return fail(it, NULL, "interp_set: value '%s' is computed by node '%s', it cannot be set",
			    v->name, v->def && v->def->name ? v->def->name : "?");
	if (dt >= DT_COUNT)
		return fail(it, NULL, "interp_set: value '%s': unsupported dtype %d", v->name, (int)dt);
	load(it, t, data, dt);
	return 0;
}

static Tensor *readable(Interp *it, const Value *v)
{
	Tensor *t = tensor_of(it, v);
	if (!t)
		fail(it, NULL, "value '%s' is not in this graph", v ? v->name : "?");
	else if (!t->ready)
		fail(it, NULL, "value '%s' holds no data (never set, or not computed yet)", v->name);
	return t && t->ready ? t : NULL;
}

int interp_get_f64(Interp *it, const Value *v, double *out)
{
	Tensor *t = readable(it, v);
	if (!t)
		return -1;
	for (int64_t k = 0; k < t->n; k++)
		out[k] = t->isint ? (double)t->i[k] : t->f[k];
	return 0;
}

int interp_get_f32(Interp *it, const Value *v, float *out)
{
	Tensor *t = readable(it, v);
	if (!t)
		return -1;
	for (int64_t k = 0; k < t->n; k++)
		out[k] = t->isint ? (float)t->i[k] : (float)t->f[k];
	return 0;
}

/* ---- elementwise ops (unary, binary, Expand, the activation grads), with broadcasting ---- */

/* ---- normalization and activations (normact group): the ops.def bodies in double, rounded
 * once (f32 mode) ---- */

static double clamp01(double v) { return v <= 0 ? 0 : v >= 1 ? 1 : v; }

static double gelu_tanh_d(double x)
{
	const double k = 0.79788456080286536, c = 0.044715;
	double t = tanh(k * (x + c * x * x * x));
	return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * c * x * x);
}

static double act_f(const Interp *it, const Node *n, double a)
{
	double al = ir_act_attr(n, "alpha"), be = ir_act_attr(n, "beta"), ga = ir_act_attr(n, "gamma");
	double y;
	switch (n->op) {
	case OP_CLIP: y = fmin(fmax(a, rd(it, ir_act_attr(n, "lo"))), rd(it, ir_act_attr(n, "hi"))); break;
	case OP_ERF: y = erf(a); break;
	case OP_GELU: y = 0.5 * a * (1 + erf(a * 0.70710678118654752)); break;
	case OP_GELU_TANH: y = 0.5 * a * (1 + tanh(0.79788456080286536 * (a + 0.044715 * a * a * a))); break;
	case OP_HARD_SIGMOID: y = clamp01(al * a + be); break;
	case OP_HARD_SWISH: y = a * clamp01(a / 6 + 0.5); break;
	case OP_SOFTPLUS: y = a > 0 ? a + log1p(exp(-a)) : log1p(exp(a)); break;
	case OP_ELU: y = a > 0 ? a : al * expm1(a); break;
	case OP_SELU: y = ga * (a > 0 ? a : al * expm1(a)); break;
	case OP_POW_SCALAR: y = pow(a, al); break;
	default: DLCC_ASSERT(!"not a unary op"); return 0;
	}
	return rd(it, y);
}

static double act_grad_f(const Interp *it, const Node *n, double a, double b)
{
	double al = ir_act_attr(n, "alpha"), be = ir_act_attr(n, "beta"), ga = ir_act_attr(n, "gamma");
	double y, lo = rd(it, ir_act_attr(n, "lo")), hi = rd(it, ir_act_attr(n, "hi"));
	switch (n->op) {
	case OP_CLIP_GRAD: y = b > lo && b < hi ? a : 0; break;
	case OP_ERF_GRAD: y = a * 1.1283791670955126 * exp(-b * b); break;
	case OP_GELU_GRAD:
		y = a * (0.5 * (1 + erf(b * 0.70710678118654752)) + b * 0.39894228040143268 * exp(-0.5 * b * b));
		break;
	case OP_GELU_TANH_GRAD: y = a * gelu_tanh_d(b); break;
	case OP_HARD_SIGMOID_GRAD: y = al * b + be > 0 && al * b + be < 1 ? al * a : 0; break;
	case OP_HARD_SWISH_GRAD: y = b < -3 ? 0 : b > 3 ? a : a * (b / 3 + 0.5); break;
	case OP_SOFTPLUS_GRAD: y = a / (1 + exp(-b)); break;
	case OP_ELU_GRAD: y = b > 0 ? a : a * al * exp(b); break;
	case OP_SELU_GRAD: y = ga * (b > 0 ? a : a * al * exp(b)); break;
	case OP_PRELU: y = a > 0 ? a : b * a; break;
	default: DLCC_ASSERT(!"not a binary op"); return 0;
	}
	return rd(it, y);
}

static int unary_int(const Node *n, int64_t a, int64_t *y)
{
	switch (n->op) {
	case OP_RELU: *y = a > 0 ? a : 0; return 0;
	case OP_NEG: *y = -a; return 0;
	case OP_IDENTITY: case OP_EXPAND: case OP_CEIL: case OP_FLOOR: case OP_ROUND: *y = a; return 0;
	case OP_ABS: *y = a < 0 ? -a : a; return 0;
	case OP_SIGN: *y = (a > 0) - (a < 0); return 0;
	default: return -1;
	}
}

static double unary_f(const Interp *it, const Node *n, double a)
{
	double alpha = rd(it, ir_act_attr(n, "alpha"));
	switch (n->op) {
	case OP_RELU: return a > 0 ? a : 0;
	case OP_LEAKY_RELU: return a > 0 ? a : rd(it, alpha * a);
	case OP_SIGMOID: return rd(it, 1 / rd(it, 1 + rd(it, exp(-a))));
	case OP_TANH: return rd(it, tanh(a));
	case OP_EXP: return rd(it, exp(a));
	case OP_LOG: return rd(it, log(a));
	case OP_SQRT: return rd(it, sqrt(a));
	case OP_NEG: return -a;
	case OP_IDENTITY: case OP_EXPAND: return a;
	case OP_LOSS_SCALE: return rd(it, ldexp(ir_act_attr(n, "alpha"), (int)a));
	case OP_COS: return rd(it, cos(a));
	case OP_SIN: return rd(it, sin(a));
	case OP_ABS: return fabs(a);
	case OP_SIGN: return a > 0 ? 1 : a < 0 ? -1 : a;
	case OP_CEIL: return ceil(a);
	case OP_FLOOR: return floor(a);
	case OP_ROUND: return nearbyint(a); /* halves to even in the default rounding mode */
	default: return act_f(it, n, a);
	}
	return 0;
}

static int binary_int(const Node *n, int64_t a, int64_t b, int64_t *y)
{
	switch (n->op) {
	case OP_ADD: *y = a + b; return 0;
	case OP_SUB: *y = a - b; return 0;
	case OP_MUL: *y = a * b; return 0;
	case OP_DIV: /* C (truncating) division, as onnxruntime does */
		if (b == 0)
			return -2;
		*y = a / b;
		return 0;
	default: return -1;
	}
}

static double binary_f(const Interp *it, const Node *n, double a, double b)
{
	double alpha = rd(it, ir_act_attr(n, "alpha"));
	switch (n->op) {
	case OP_ADD: return rd(it, a + b);
	case OP_SUB: return rd(it, a - b);
	case OP_MUL: return rd(it, a * b);
	case OP_DIV: return rd(it, a / b);
	case OP_RELU_GRAD: return b > 0 ? a : 0;
	case OP_LEAKY_RELU_GRAD: return b > 0 ? a : rd(it, alpha * a);
	case OP_SIGMOID_GRAD: return rd(it, rd(it, a * b) * rd(it, 1 - b));
	case OP_TANH_GRAD: return rd(it, a * rd(it, 1 - rd(it, b * b)));
	default: return act_grad_f(it, n, a, b);
	}
	return 0;
}

static int elem_int(Interp *it, const Node *n, Tensor *y, int64_t k, const Tensor *a, int64_t ia,
		    const Tensor *b, int64_t ib)
{
	int r = b ? binary_int(n, a->i[ia], b->i[ib], &y->i[k]) : unary_int(n, a->i[ia], &y->i[k]);
	if (r == -2)
		return fail(it, n, "integer division by zero");
	if (r < 0)
		return fail(it, n, "unsupported dtype %s", ir_dt_name(n->in[0]->dt));
	return 0;
}

static int op_elementwise(Interp *it, const Node *n)
{
	Tensor *y = out_t(it, n, 0), *a = in_t(it, n, 0), *b = n->nin > 1 ? in_t(it, n, 1) : NULL;
	int64_t idx[IR_MAX_RANK];
	if (b && a->isint != b->isint)
		return fail(it, n, "operands hold different kinds (integer and float)");
	if (a->isint != y->isint)
		return fail(it, n, "unsupported dtype %s", ir_dt_name(n->in[0]->dt));
	for (int64_t k = 0; k < y->n; k++) {
		unravel(k, y->rank, y->d, idx);
		int64_t ia = bcast_offset(idx, y->rank, a->rank, a->d);
		int64_t ib = b ? bcast_offset(idx, y->rank, b->rank, b->d) : 0;
		if (a->isint && elem_int(it, n, y, k, a, ia, b, ib) < 0)
			return -1;
		if (!a->isint)
			y->f[k] = b ? binary_f(it, n, a->f[ia], b->f[ib]) : unary_f(it, n, a->f[ia]);
	}
	return 0;
}

/* ---- matrix products (accumulate in double, round once) ---- */

static int need_float(Interp *it, const Node *n, int count)
{
	for (int i = 0; i < count && i < n->nin; i++)
		if (in_t(it, n, i)->isint)
			return fail(it, n, "unsupported dtype %s (input %d)", ir_dt_name(n->in[i]->dt), i);
	return 0;
}

static int op_gemm(Interp *it, const Node *n)
{
	Tensor *a = in_t(it, n, 0), *b = in_t(it, n, 1), *y = out_t(it, n, 0);
	Tensor *c = n->nin > 2 ? in_t(it, n, 2) : NULL; /* broadcast to [M,N] */
	int ta = ir_attr_i(n, "transA", 0) != 0, tb = ir_attr_i(n, "transB", 0) != 0;
	double alpha = rd(it, ir_attr_f(n, "alpha", 1.0)), beta = rd(it, ir_attr_f(n, "beta", 1.0));
	int64_t m = y->d[0], nn = y->d[1], kk = a->d[1 - ta];
	if (need_float(it, n, n->nin) < 0)
		return -1;
	for (int64_t i = 0; i < m; i++) {
		for (int64_t j = 0; j < nn; j++) {
			double acc = 0;
			for (int64_t p = 0; p < kk; p++)
				acc += a->f[ta ? p * m + i : i * kk + p] * b->f[tb ? j * kk + p : p * nn + j];
			double v = rd(it, alpha * rd(it, acc));
			if (c)
				v = rd(it, v + rd(it, beta * c->f[bcast_offset((int64_t[]){i, j}, 2, c->rank, c->d)]));
			y->f[i * nn + j] = v;
		}
	}
	return 0;
}

/* y[off_y + (m,n)] = a[off_a + (m,k)] @ b[off_b + (k,n)] */
/* y[i,j] = sum_p a[i,p] b[p,j], a's element (i, p) at i*ai + p*ap, b's (p, j) at p*bp + j*bj */
static void matmul_block(Interp *it, const Tensor *a, int64_t off_a, const Tensor *b, int64_t off_b,
			 Tensor *y, int64_t off_y, int64_t m, int64_t kk, int64_t nn, const int64_t st[4])
{
	for (int64_t i = 0; i < m; i++)
		for (int64_t j = 0; j < nn; j++) {
			double acc = 0;
			for (int64_t p = 0; p < kk; p++)
				acc += a->f[off_a + i * st[0] + p * st[1]] * b->f[off_b + p * st[2] + j * st[3]];
			y->f[off_y + i * nn + j] = rd(it, acc);
		}
}

/* numpy matmul: 1-D operands promoted ([k] as [1,k] on the left, [k,1] on the right), leading
 * (batch) dimensions broadcast; transA/transB: that operand's last two dims swapped first */
static int op_matmul(Interp *it, const Node *n)
{
	Tensor *a = in_t(it, n, 0), *b = in_t(it, n, 1), *y = out_t(it, n, 0);
	int a2 = a->rank >= 2, b2 = b->rank >= 2;
	int ta = (int)ir_attr_i(n, "transA", 0), tb = (int)ir_attr_i(n, "transB", 0);
	int64_t m = a2 ? a->d[a->rank - 2 + ta] : 1, kk = a->d[a->rank - 1 - ta], nn = b2 ? b->d[b->rank - 1 - tb] : 1;
	const int64_t st[4] = { ta ? 1 : kk, ta ? m : 1, tb ? 1 : nn, tb ? kk : 1 };
	int ra = a2 ? a->rank - 2 : 0, rb = b2 ? b->rank - 2 : 0, ry = y->rank - a2 - b2;
	int64_t nbatch = 1, idx[IR_MAX_RANK];
	if (need_float(it, n, 2) < 0)
		return -1;
	for (int j = 0; j < ry; j++)
		nbatch *= y->d[j];
	for (int64_t q = 0; q < nbatch; q++) {
		unravel(q, ry, y->d, idx);
		int64_t oa = bcast_offset(idx, ry, ra, a->d) * m * kk;
		int64_t ob = bcast_offset(idx, ry, rb, b->d) * kk * nn;
		matmul_block(it, a, oa, b, ob, y, q * m * nn, m, kk, nn, st);
	}
	return 0;
}

/* ---- data movement ---- */

static int op_copy(Interp *it, const Node *n)
{
	Tensor *x = in_t(it, n, 0), *y = out_t(it, n, 0);
	DLCC_ASSERT(x->n == y->n);
	for (int64_t k = 0; k < y->n; k++)
		copy_elem(y, k, x, k);
	return 0;
}

static int op_transpose(Interp *it, const Node *n)
{
	Tensor *x = in_t(it, n, 0), *y = out_t(it, n, 0);
	int cnt = 0;
	const int64_t *perm = ir_attr_ints(n, "perm", &cnt);
	int64_t stride[IR_MAX_RANK], idx[IR_MAX_RANK], s = 1;
	if (!perm || cnt != x->rank)
		return fail(it, n, "perm must list %d axes", x->rank);
	for (int j = x->rank - 1; j >= 0; j--) {
		stride[j] = s;
		s *= x->d[j];
	}
	for (int64_t k = 0; k < y->n; k++) {
		int64_t off = 0;
		unravel(k, y->rank, y->d, idx);
		for (int j = 0; j < y->rank; j++)
			off += idx[j] * stride[perm[j]];
		copy_elem(y, k, x, off);
	}
	return 0;
}

/* ---- reductions: each input element goes to the output offset given by the input's extents
 * with the reduced axes set to 1 (the keepdims shape; keepdims=0 has the same layout) ---- */

static int reduce_plan(Interp *it, const Node *n, const Tensor *x, int64_t *kept, int64_t *count)
{
	int cnt = 0, all, seen = 0;
	const int64_t *ax = ir_attr_ints(n, "axes", &cnt);
	all = !ax || cnt == 0;
	*count = 1;
	for (int j = 0; j < x->rank; j++)
		kept[j] = x->d[j];
	for (int j = 0; j < (all ? x->rank : cnt); j++) {
		int64_t a = all ? j : ax[j];
		if (a < 0 || a >= x->rank)
			return fail(it, n, "axis %lld out of range for rank %d", (long long)a, x->rank);
		if (!(seen & (1 << a))) /* an axis listed twice counts once */
			*count *= x->d[a];
		seen |= 1 << a;
		kept[a] = 1;
	}
	return 0;
}

static int op_reduce(Interp *it, const Node *n)
{
	Tensor *x = in_t(it, n, 0), *y = out_t(it, n, 0);
	int64_t kept[IR_MAX_RANK], idx[IR_MAX_RANK], count;
	if (reduce_plan(it, n, x, kept, &count) < 0)
		return -1;
	double *acc = calloc(y->n ? y->n : 1, sizeof *acc);
	int64_t *iacc = calloc(y->n ? y->n : 1, sizeof *iacc);
	DLCC_ASSERT(acc && iacc);
	for (int64_t k = 0; k < x->n; k++) {
		unravel(k, x->rank, x->d, idx);
		int64_t o = bcast_offset(idx, x->rank, x->rank, kept);
		if (x->isint)
			iacc[o] += x->i[k];
		else
			acc[o] += x->f[k];
	}
	int mean = n->op == OP_REDUCE_MEAN && count > 0;
	for (int64_t o = 0; o < y->n; o++) {
		if (x->isint)
			y->i[o] = mean ? iacc[o] / count : iacc[o];
		else
			y->f[o] = rd(it, mean ? acc[o] / count : acc[o]);
	}
	free(acc);
	free(iacc);
	return 0;
}

/* ---- softmax family, along the attribute `axis` ---- */

static int softmax_axis(Interp *it, const Node *n, const Tensor *x, int64_t *outer, int64_t *len,
			int64_t *inner)
{
	int axis = (int)ir_attr_i(n, "axis", x->rank - 1);
	if (axis < 0 || axis >= x->rank)
		return fail(it, n, "axis %d out of range for rank %d", axis, x->rank);
	if (need_float(it, n, n->nin) < 0)
		return -1;
	axis_split(x, axis, outer, len, inner);
	return 0;
}

/* one row of x (from xb, stride xs) into y (from yb, stride ys): softmax, or log_softmax if logm */
static void softmax_row(Interp *it, const double *x, int64_t xb, int64_t xs, double *y, int64_t yb,
			int64_t ys, int64_t len, int logm)
{
	double mx = -INFINITY, s = 0;
	for (int64_t c = 0; c < len; c++)
		mx = fmax(mx, x[xb + c * xs]);
	for (int64_t c = 0; c < len; c++)
		s += rd(it, exp(rd(it, x[xb + c * xs] - mx)));
	s = rd(it, s);
	double lse = rd(it, log(s));
	for (int64_t c = 0; c < len; c++) {
		double z = rd(it, x[xb + c * xs] - mx);
		y[yb + c * ys] = logm ? rd(it, z - lse) : rd(it, rd(it, exp(z)) / s);
	}
}

static int op_softmax(Interp *it, const Node *n)
{
	Tensor *x = in_t(it, n, 0), *y = out_t(it, n, 0);
	int64_t outer, len, inner;
	if (softmax_axis(it, n, x, &outer, &len, &inner) < 0)
		return -1;
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++)
			softmax_row(it, x->f, o * len * inner + i, inner, y->f, o * len * inner + i, inner, len,
				    n->op == OP_LOG_SOFTMAX);
	return 0;
}

/* SoftmaxGrad: y*(dy - sum(dy*y)); LogSoftmaxGrad: dy - exp(y)*sum(dy) */
static void softmax_grad_row(Interp *it, const Node *n, const double *dy, const double *y, double *dx,
			     int64_t base, int64_t len, int64_t st)
{
	int logm = n->op == OP_LOG_SOFTMAX_GRAD;
	double s = 0;
	for (int64_t c = 0; c < len; c++) {
		int64_t k = base + c * st;
		s += logm ? dy[k] : rd(it, dy[k] * y[k]);
	}
	s = rd(it, s);
	for (int64_t c = 0; c < len; c++) {
		int64_t k = base + c * st;
		dx[k] = logm ? rd(it, dy[k] - rd(it, rd(it, exp(y[k])) * s)) : rd(it, y[k] * rd(it, dy[k] - s));
	}
}

static int op_softmax_grad(Interp *it, const Node *n)
{
	Tensor *dy = in_t(it, n, 0), *y = in_t(it, n, 1), *dx = out_t(it, n, 0);
	int64_t outer, len, inner;
	if (softmax_axis(it, n, y, &outer, &len, &inner) < 0)
		return -1;
	if (dy->n != y->n)
		return fail(it, n, "dy has %lld elements, y %lld", (long long)dy->n, (long long)y->n);
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++)
			softmax_grad_row(it, n, dy->f, y->f, dx->f, o * len * inner + i, len, inner);
	return 0;
}

/* ---- softmax cross-entropy over the last axis, mean over all positions ---- */

static int sce_check(Interp *it, const Node *n, const Tensor *z, const Tensor *t, int64_t *classes)
{
	if (z->isint || !t->isint)
		return fail(it, n, "needs float logits and integer labels, got %s and %s",
			    ir_dt_name(z->v->dt), ir_dt_name(t->v->dt));
	*classes = z->rank ? z->d[z->rank - 1] : 0;
	if (*classes < 1 || z->n / *classes != t->n)
		return fail(it, n, "logits (%lld classes) and labels (%lld) do not match",
			    (long long)*classes, (long long)t->n);
	for (int64_t p = 0; p < t->n; p++)
		if (t->i[p] < 0 || t->i[p] >= *classes)
			return fail(it, n, "label %lld at position %lld is outside [0,%lld)", (long long)t->i[p],
				    (long long)p, (long long)*classes);
	return 0;
}

static int op_sce(Interp *it, const Node *n)
{
	Tensor *z = in_t(it, n, 0), *t = in_t(it, n, 1), *y = out_t(it, n, 0);
	int64_t c;
	double total = 0;
	if (sce_check(it, n, z, t, &c) < 0)
		return -1;
	double *ls = malloc(c * sizeof *ls);
	DLCC_ASSERT(ls);
	for (int64_t p = 0; p < t->n; p++) {
		softmax_row(it, z->f, p * c, 1, ls, 0, 1, c, 1); /* log_softmax of row p into ls[0..c) */
		total += -ls[t->i[p]];
	}
	free(ls);
	y->f[0] = rd(it, t->n ? total / t->n : 0);
	return 0;
}

static int op_sce_grad(Interp *it, const Node *n)
{
	Tensor *dl = in_t(it, n, 0), *z = in_t(it, n, 1), *t = in_t(it, n, 2), *dz = out_t(it, n, 0);
	int64_t c;
	if (dl->isint || dl->n != 1)
		return fail(it, n, "the incoming gradient must be a float scalar");
	if (sce_check(it, n, z, t, &c) < 0)
		return -1;
	double scale = rd(it, dl->f[0] / t->n);
	for (int64_t p = 0; p < t->n; p++) {
		softmax_row(it, z->f, p * c, 1, dz->f, p * c, 1, c, 0);
		for (int64_t j = 0; j < c; j++)
			dz->f[p * c + j] = rd(it, rd(it, dz->f[p * c + j] - (j == t->i[p])) * scale);
	}
	return 0;
}

/* ---- optimizer updates (torch.optim formulas and operation order) ---- */

static int opt_check(Interp *it, const Node *n, int need_step)
{
	Tensor *p = in_t(it, n, 0);
	if (need_float(it, n, n->nin) < 0)
		return -1;
	for (int i = 1; i < n->nin; i++)
		if (in_t(it, n, i)->n != p->n)
			return fail(it, n, "input %d has %lld elements, the parameter %lld", i,
				    (long long)in_t(it, n, i)->n, (long long)p->n);
	if (need_step && it->step < 1)
		return fail(it, n, "the optimizer step must be >= 1, not %lld", (long long)it->step);
	return 0;
}

/* the learning rate at this step: the node's lr under its schedule (ir/lr_schedule.c) */
static int step_lr(Interp *it, const Node *n, double dflt, double *lr)
{
	LrSchedule s;
	if (ir_lr_of(n, &s) < 0)
		return fail(it, n, "malformed learning-rate schedule attributes");
	*lr = ir_lr_at(&s, ir_attr_f(n, "lr", dflt), it->step);
	return 0;
}

static int op_sgd(Interp *it, const Node *n)
{
	Tensor *p = in_t(it, n, 0), *g = in_t(it, n, 1), *y = out_t(it, n, 0);
	double lr, wd = rd(it, ir_attr_f(n, "weight_decay", 0));
	if (opt_check(it, n, ir_attr(n, "schedule") != NULL) < 0 || step_lr(it, n, 0.01, &lr) < 0)
		return -1;
	lr = rd(it, lr);
	for (int64_t k = 0; k < p->n; k++) {
		double gg = wd != 0 ? rd(it, g->f[k] + rd(it, wd * p->f[k])) : g->f[k];
		y->f[k] = rd(it, p->f[k] - rd(it, lr * gg));
	}
	return 0;
}

/* torch.optim.SGD with momentum: buf = step==1 ? g : momentum*buf + (1-dampening)*g */
static int op_momentum(Interp *it, const Node *n)
{
	Tensor *p = in_t(it, n, 0), *g = in_t(it, n, 1), *buf = in_t(it, n, 2);
	Tensor *py = out_t(it, n, 0), *by = out_t(it, n, 1);
	double lr, mom = rd(it, ir_attr_f(n, "momentum", 0));
	double damp1 = rd(it, 1 - ir_attr_f(n, "dampening", 0)), wd = rd(it, ir_attr_f(n, "weight_decay", 0));
	int nesterov = ir_attr_i(n, "nesterov", 0) != 0;
	if (opt_check(it, n, 1) < 0 || step_lr(it, n, 0.01, &lr) < 0)
		return -1;
	lr = rd(it, lr);
	for (int64_t k = 0; k < p->n; k++) {
		double gg = wd != 0 ? rd(it, g->f[k] + rd(it, wd * p->f[k])) : g->f[k], b = buf->f[k];
		if (mom != 0) {
			b = it->step == 1 ? gg : rd(it, rd(it, mom * b) + rd(it, damp1 * gg));
			gg = nesterov ? rd(it, gg + rd(it, mom * b)) : b;
		}
		by->f[k] = b;
		py->f[k] = rd(it, p->f[k] - rd(it, lr * gg));
	}
	return 0;
}

/* torch.optim.Adam/AdamW (single-tensor path): scalars in double as torch computes them in
 * Python; denom = sqrt(v)/sqrt(bc2) + eps; p -= (lr/bc1) * m / denom */
static int op_adam(Interp *it, const Node *n)
{
	Tensor *p = in_t(it, n, 0), *g = in_t(it, n, 1), *m = in_t(it, n, 2), *v = in_t(it, n, 3);
	Tensor *py = out_t(it, n, 0), *my = out_t(it, n, 1), *vy = out_t(it, n, 2);
	double lr, b1 = ir_attr_f(n, "beta1", 0.9), b2 = ir_attr_f(n, "beta2", 0.999);
	double eps = rd(it, ir_attr_f(n, "eps", 1e-8)), wd = ir_attr_f(n, "weight_decay", 0);
	int decoupled = ir_attr_i(n, "decoupled", 0) != 0;
	if (opt_check(it, n, 1) < 0 || step_lr(it, n, 1e-3, &lr) < 0)
		return -1;
	double step_size = rd(it, lr / (1 - pow(b1, (double)it->step)));
	double bc2_sqrt = rd(it, sqrt(1 - pow(b2, (double)it->step))), decay = rd(it, 1 - lr * wd);
	double b1r = rd(it, b1), b2r = rd(it, b2), nb1 = rd(it, 1 - b1), nb2 = rd(it, 1 - b2), wdr = rd(it, wd);
	for (int64_t k = 0; k < p->n; k++) {
		double pp = p->f[k], gg = g->f[k];
		if (wd != 0 && decoupled)
			pp = rd(it, pp * decay);
		else if (wd != 0)
			gg = rd(it, gg + rd(it, wdr * pp));
		my->f[k] = rd(it, rd(it, b1r * m->f[k]) + rd(it, nb1 * gg));
		vy->f[k] = rd(it, rd(it, b2r * v->f[k]) + rd(it, rd(it, nb2 * gg) * gg));
		double denom = rd(it, rd(it, sqrt(vy->f[k]) / bc2_sqrt) + eps);
		py->f[k] = rd(it, pp - rd(it, rd(it, step_size * my->f[k]) / denom));
	}
	return 0;
}

/* ---- BatchNormalization, inference form: running statistics, channel axis 1 ---- */

static int op_batchnorm(Interp *it, const Node *n)
{
	Tensor *x = in_t(it, n, 0), *y = out_t(it, n, 0), *sc = in_t(it, n, 1), *bi = in_t(it, n, 2);
	Tensor *mu = in_t(it, n, 3), *var = in_t(it, n, 4);
	double eps = ir_attr_f(n, "epsilon", 1e-5);
	int64_t outer, len, inner;
	if (need_float(it, n, 5) < 0)
		return -1;
	axis_split(x, 1, &outer, &len, &inner);
	for (int64_t k = 0; k < x->n; k++) {
		int64_t c = k / inner % len;
		double s = rd(it, sqrt(rd(it, var->f[c] + rd(it, eps))));
		y->f[k] = rd(it, rd(it, rd(it, rd(it, x->f[k] - mu->f[c]) / s) * sc->f[c]) + bi->f[c]);
	}
	return 0;
}

/* ---- access for ops implemented in other files (ir/interp_ops.h) ---- */

IView interp_view(Interp *it, const Value *v)
{
	Tensor *t = tensor_of(it, v);
	IView w;
	DLCC_ASSERT(t);
	w.rank = t->rank;
	memcpy(w.d, t->d, sizeof w.d);
	w.n = t->n;
	w.f = t->f;
	w.i = t->i;
	return w;
}

double interp_round(const Interp *it, double x) { return rd(it, x); }

int interp_fail(Interp *it, const Node *n, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return fail(it, n, "%s", msg);
}

/* ---- dynamic loss scaling (ops.def) ---- */

static int op_all_finite(Interp *it, const Node *n)
{
	double ok = 1;
	for (int i = 0; i < n->nin; i++) {
		const Tensor *x = in_t(it, n, i);
		for (int64_t k = 0; k < x->n && ok; k++)
			ok = isfinite(x->f[k]) ? 1 : 0;
	}
	out_t(it, n, 0)->f[0] = ok;
	return 0;
}

static int op_loss_scale_update(Interp *it, const Node *n)
{
	double k = in_t(it, n, 0)->f[0], good = in_t(it, n, 1)->f[0], finite = in_t(it, n, 2)->f[0];
	double window = (double)ir_attr_i(n, "window", 2000);
	if (finite == 0)
		k -= 1, good = 0;
	else if (good + 1 >= window)
		k += 1, good = 0;
	else
		good += 1;
	out_t(it, n, 0)->f[0] = k;
	out_t(it, n, 1)->f[0] = good;
	return 0;
}

static int run_update(Interp *it, const Node *n)
{
	switch (n->op) {
	case OP_SGD_UPDATE: return op_sgd(it, n);
	case OP_MOMENTUM_UPDATE: return op_momentum(it, n);
	default: return op_adam(it, n);
	}
}

/* An optimizer update; with loss scaling (two extra inputs: scale, finite) the old values are
 * kept when finite is 0, else the update runs on the gradient times 1/scale. */
static int op_update(Interp *it, const Node *n)
{
	int base = n->nout + 1;
	if (n->nin == base)
		return run_update(it, n);
	DLCC_ASSERT(n->nin == base + 2);
	double scale = in_t(it, n, base)->f[0], finite = in_t(it, n, base + 1)->f[0];
	if (finite == 0) {
		for (int o = 0; o < n->nout; o++) {
			Tensor *y = out_t(it, n, o), *x = in_t(it, n, o ? o + 1 : 0);
			memcpy(y->f, x->f, x->n * sizeof *x->f);
		}
		return 0;
	}
	Node m = *n;
	m.nin = base;
	Tensor *g = in_t(it, n, 1), saved = *g;
	double inv = rd(it, 1 / scale), *u = malloc((g->n + 1) * sizeof *u);
	DLCC_ASSERT(u);
	for (int64_t k = 0; k < g->n; k++)
		u[k] = rd(it, g->f[k] * inv);
	g->f = u; /* the unscaled gradient, for this update only */
	int rc = run_update(it, &m);
	*g = saved;
	free(u);
	return rc;
}

/* ---- the run loop ---- */

static int run_op(Interp *it, const Node *n)
{
	switch (n->op) {
	case OP_GEMM: return op_gemm(it, n);
	case OP_MATMUL: return op_matmul(it, n);
	case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
	case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH: case OP_EXP: case OP_LOG:
	case OP_SQRT: case OP_NEG: case OP_IDENTITY: case OP_EXPAND:
	case OP_RELU_GRAD: case OP_LEAKY_RELU_GRAD: case OP_SIGMOID_GRAD: case OP_TANH_GRAD:
		return op_elementwise(it, n);
	case OP_SOFTMAX: case OP_LOG_SOFTMAX: return op_softmax(it, n);
	case OP_SOFTMAX_GRAD: case OP_LOG_SOFTMAX_GRAD: return op_softmax_grad(it, n);
	case OP_RESHAPE: case OP_FLATTEN: return op_copy(it, n);
	case OP_TRANSPOSE: return op_transpose(it, n);
	case OP_REDUCE_SUM: case OP_REDUCE_MEAN: return op_reduce(it, n);
	case OP_SOFTMAX_CROSS_ENTROPY: return op_sce(it, n);
	case OP_SOFTMAX_CROSS_ENTROPY_GRAD: return op_sce_grad(it, n);
	case OP_SGD_UPDATE: case OP_MOMENTUM_UPDATE: case OP_ADAM_UPDATE: return op_update(it, n);
	case OP_LOSS_SCALE: return op_elementwise(it, n);
	case OP_ALL_FINITE: return op_all_finite(it, n);
	case OP_LOSS_SCALE_UPDATE: return op_loss_scale_update(it, n);
	case OP_GATHER: case OP_GATHER_GRAD: case OP_SLICE: case OP_SLICE_GRAD: case OP_CONCAT:
	case OP_TRILU: case OP_RELU_MASK: case OP_RELU_MASK_GRAD: case OP_WHERE: case OP_CAST: case OP_EQUAL: case OP_LESS: case OP_GREATER:
	case OP_LESS_OR_EQUAL: case OP_GREATER_OR_EQUAL: case OP_NOT: case OP_AND: case OP_OR:
	case OP_POW: case OP_RECIPROCAL: case OP_MAX: case OP_MIN: case OP_XOR:
		return interp_tensor_op(it, n);
	case OP_COS: case OP_SIN: case OP_ABS: case OP_SIGN: case OP_CEIL: case OP_FLOOR: case OP_ROUND:
		return op_elementwise(it, n);
	case OP_GATHER_ELEMENTS: case OP_SCATTER_ELEMENTS: case OP_CUM_SUM: return interp_index_op(it, n);
	case OP_REDUCE_MAX: case OP_REDUCE_MIN: case OP_REDUCE_PROD: case OP_ARG_MAX: case OP_DROPOUT:
	case OP_NLL_LOSS: case OP_NLL_LOSS_GRAD:
		return interp_reduce_op(it, n);
	case OP_BATCH_NORM: return op_batchnorm(it, n);
	case OP_CLIP: case OP_CLIP_GRAD: case OP_ERF: case OP_ERF_GRAD: case OP_GELU: case OP_GELU_GRAD:
	case OP_GELU_TANH: case OP_GELU_TANH_GRAD: case OP_HARD_SIGMOID: case OP_HARD_SIGMOID_GRAD:
	case OP_HARD_SWISH: case OP_HARD_SWISH_GRAD: case OP_SOFTPLUS: case OP_SOFTPLUS_GRAD:
	case OP_ELU: case OP_ELU_GRAD: case OP_SELU: case OP_SELU_GRAD: case OP_PRELU: case OP_POW_SCALAR:
		return op_elementwise(it, n);
	case OP_CONV: case OP_CONV_GRAD_INPUT: case OP_CONV_GRAD_WEIGHT: case OP_MAX_POOL:
	case OP_MAX_POOL_GRAD: case OP_AVERAGE_POOL: case OP_AVERAGE_POOL_GRAD: case OP_PAD:
	case OP_PAD_GRAD: case OP_IM2COL: case OP_COL2IM: return interp_conv_family(it, n);
	case OP_COUNT: break;
	}
	return fail(it, n, "the interpreter does not know this op");
}

static const char *why_unset(const Value *v)
{
	switch (v->kind) {
	case V_TEMP: return "is computed later in the schedule";
	case V_CONST: return "is a constant without data";
	case V_PARAM: return "is a parameter without initial data, never set";
	default: return "was never set";
	}
}

static int run_node(Interp *it, const Node *n)
{
	for (int i = 0; i < n->nin; i++) {
		Tensor *t = in_t(it, n, i);
		if (!t)
			return fail(it, n, "input %d is not a value of this graph", i);
		if (!t->ready)
			return fail(it, n, "input '%s' %s", n->in[i]->name, why_unset(n->in[i]));
	}
	if (run_op(it, n) < 0)
		return -1;
	for (int i = 0; i < n->nout; i++) {
		Tensor *t = out_t(it, n, i);
		for (int64_t k = 0; k < t->n && !t->isint; k++)
			t->f[k] = round_dt(it, t->v->dt, t->f[k]);
		t->ready = 1;
	}
	return 0;
}

static int apply_updates(Interp *it)
{
	const Graph *g = it->g;
	for (int u = 0; u < g->nupdates; u++) {
		Tensor *s = tensor_of(it, g->updates[u].state), *v = tensor_of(it, g->updates[u].value);
		DLCC_ASSERT(s && v);
		if (!v->ready)
			return fail(it, NULL, "update of '%s': value '%s' holds no data", s->v->name, v->v->name);
		if (s->n != v->n)
			return fail(it, NULL, "update of '%s': value '%s' has %lld elements, expected %lld",
				    s->v->name, v->v->name, (long long)v->n, (long long)s->n);
		for (int64_t k = 0; k < s->n; k++)
			copy_elem(s, k, v, k);
		s->ready = 1;
	}
	return 0;
}

int interp_run(Interp *it, int64_t step)
{
	const Graph *g = it->g;
	it->step = step;
	it->err[0] = 0;
	for (int k = 0; k < g->nvalues; k++)
		if (g->values[k]->kind == V_TEMP)
			it->t[g->values[k]->id].ready = 0;
	for (int k = 0; k < g->nnodes; k++)
		if (run_node(it, g->nodes[k]) < 0)
			return -1;
	return apply_updates(it);
}
