/*
 * onnx_ops.c — importing one ONNX node: resolve its inputs by name (each must already be
 * defined: ONNX files are topologically sorted), try host evaluation (onnx_fold.c: Constant and
 * shape arithmetic), else map the node onto IR ops with attributes in IR normal form (see
 * ir/shape.c): explicit defaults, non-negative axes, Reduce* with an explicit sorted axes list,
 * Reshape with its output shape in IR dims (the batch N symbolic), Transpose with a perm.
 *
 * Ops whose ONNX semantics are exactly the IR row (ops.def column `onnx`) and that take no
 * attributes go through one generic importer; the others have a function each. Opset < 13
 * Softmax/LogSoftmax on a non-last axis means "flatten to 2-D at axis": it becomes
 * Reshape -> Softmax(axis 1) -> Reshape. Squeeze/Unsqueeze of run-time data become Reshapes.
 * Anything else is the one-line "unsupported operator" error listing what is supported.
 */
#include <string.h>

#include "frontend/onnx_imp.h"

typedef int (*ImportFn)(NodeCx *x);

/* ---- emitting IR nodes ---- */

static const char *node_name(NodeCx *x, const char *suffix)
{
	const char *lbl = onnx_node_label(x->c, x->n);
	if (!suffix)
		return lbl;
	char buf[300];
	snprintf(buf, sizeof buf, "%s%s", lbl, suffix);
	return ir_strdup(x->c->g, buf);
}

OTensor *onnx_bind(NodeCx *x, int i, Value *v)
{
	if (i >= (int)x->n->n_output || !x->n->output[i][0])
		return NULL;
	OTensor *t = onnx_define(x->c, x->n->output[i]);
	if (t && v) {
		t->v = v;
		t->dt = v->dt;
		t->shape = v->shape;
	}
	return t;
}

Value *onnx_finish(NodeCx *x, Node *nd)
{
	if (ir_finish(x->c->g, nd) < 0) {
		onnx_fail(x->c, "%s", x->c->g->err);
		return NULL;
	}
	return nd->out[0];
}

/* finish the node and make its output the node's output 0 */
static int emit(NodeCx *x, Node *nd)
{
	Value *v = onnx_finish(x, nd);
	return v && onnx_bind(x, 0, v) ? 0 : -1;
}

Value *onnx_input(NodeCx *x, int i)
{
	if (i >= x->nin || !x->in[i]) {
		onnx_fail(x->c, "%s: input %d is missing", x->who, i);
		return NULL;
	}
	return onnx_value(x->c, x->in[i], x->who);
}

static Value *reshape_to(NodeCx *x, Value *v, Shape s, const char *suffix)
{
	Node *nd = ir_begin(x->c->g, OP_RESHAPE, node_name(x, suffix), 1, &v);
	ir_set_ints(x->c->g, nd, "shape", s.rank, s.d);
	return onnx_finish(x, nd);
}

static int bad_value(NodeCx *x, const char *attr, long long v, const char *why)
{
	return onnx_fail(x->c, "%s: attribute %s=%lld is not supported (%s)", x->who, attr, v, why);
}

/* ---- per-op importers ---- */

static int imp_generic(NodeCx *x)
{
	Op op = (Op)ir_op_lookup(x->n->op_type);
	Value *v[8];
	if (x->nin > 8)
		return onnx_fail(x->c, "%s: %d inputs is too many", x->who, x->nin);
	for (int i = 0; i < x->nin; i++)
		if (!(v[i] = onnx_input(x, i)))
			return -1;
	return emit(x, ir_begin(x->c->g, op, node_name(x, NULL), x->nin, v));
}

static int imp_gemm(NodeCx *x)
{
	int64_t ta, tb;
	double alpha, beta;
	if (onnx_attr_int(x, "transA", 0, &ta) < 0 || onnx_attr_int(x, "transB", 0, &tb) < 0 ||
	    onnx_attr_float(x, "alpha", 1.0, &alpha) < 0 || onnx_attr_float(x, "beta", 1.0, &beta) < 0)
		return -1;
	if (ta != 0 && ta != 1)
		return bad_value(x, "transA", ta, "must be 0 or 1");
	if (tb != 0 && tb != 1)
		return bad_value(x, "transB", tb, "must be 0 or 1");
	int nin = x->nin >= 3 && x->in[2] ? 3 : 2;
	Value *v[3];
	for (int i = 0; i < nin; i++)
		if (!(v[i] = onnx_input(x, i)))
			return -1;
	Node *nd = ir_begin(x->c->g, OP_GEMM, node_name(x, NULL), nin, v);
	ir_set_f(x->c->g, nd, "alpha", alpha);
	ir_set_f(x->c->g, nd, "beta", beta);
	ir_set_i(x->c->g, nd, "transA", ta);
	ir_set_i(x->c->g, nd, "transB", tb);
	return emit(x, nd);
}

static int imp_leaky_relu(NodeCx *x)
{
	double alpha;
	Value *v = onnx_input(x, 0);
	if (!v || onnx_attr_float(x, "alpha", 0.01, &alpha) < 0)
		return -1;
	Node *nd = ir_begin(x->c->g, OP_LEAKY_RELU, node_name(x, NULL), 1, &v);
	ir_set_f(x->c->g, nd, "alpha", alpha);
	return emit(x, nd);
}

static Value *softmax_node(NodeCx *x, Op op, Value *v, int64_t axis, const char *suffix)
{
	Node *nd = ir_begin(x->c->g, op, node_name(x, suffix), 1, &v);
	ir_set_i(x->c->g, nd, "axis", axis);
	return onnx_finish(x, nd);
}

/* opset < 13: softmax over the flattened trailing block [axis, rank) */
static int softmax_flattened(NodeCx *x, Op op, Value *v, int axis)
{
	int64_t m[2] = {1, 1};
	for (int i = 0; i < v->shape.rank; i++) {
		int64_t d = v->shape.d[i], *p = &m[i >= axis];
		if (d < 0 && *p < 0)
			return onnx_fail(x->c, "%s: the batch appears twice in one flattened group", x->who);
		*p = d < 0 ? -(-d * *p) : *p < 0 ? -(-*p * d) : *p * d;
	}
	Value *f = reshape_to(x, v, ir_shape(2, m), "/flatten");
	Value *s = f ? softmax_node(x, op, f, 1, "/softmax") : NULL;
	Value *r = s ? reshape_to(x, s, v->shape, NULL) : NULL;
	return r && onnx_bind(x, 0, r) ? 0 : -1;
}

static int imp_softmax(NodeCx *x)
{
	Op op = strcmp(x->n->op_type, "Softmax") == 0 ? OP_SOFTMAX : OP_LOG_SOFTMAX;
	int64_t axis;
	Value *v = onnx_input(x, 0);
	if (!v || onnx_attr_int(x, "axis", x->c->opset >= 13 ? -1 : 1, &axis) < 0)
		return -1;
	if (v->shape.rank == 0)
		return onnx_fail(x->c, "%s: input '%s' is a scalar", x->who, x->n->input[0]);
	if (onnx_axis(x, axis, v->shape.rank, &axis) < 0)
		return -1;
	if (x->c->opset < 13 && axis != v->shape.rank - 1)
		return softmax_flattened(x, op, v, (int)axis);
	Value *s = softmax_node(x, op, v, axis, NULL);
	return s && onnx_bind(x, 0, s) ? 0 : -1;
}

/* the element count of a shape as coef * N^pow */
static void numel_sym(const Shape *s, int64_t *coef, int *pow)
{
	*coef = 1;
	*pow = 0;
	for (int i = 0; i < s->rank; i++) {
		*coef *= s->d[i] < 0 ? -s->d[i] : s->d[i];
		*pow += s->d[i] < 0;
	}
}

/* the -1 entry of a Reshape target: what is left of x's element count */
static int infer_dim(NodeCx *x, const Shape *xs, const Shape *out, int at, int64_t *d)
{
	int64_t xc, kc;
	int xp, kp;
	Shape known = *out;
	known.d[at] = 1;
	numel_sym(xs, &xc, &xp);
	numel_sym(&known, &kc, &kp);
	if (kc == 0 || xc % kc != 0 || xp - kp < 0 || xp - kp > 1) {
		char a[128], b[128];
		known.d[at] = -1;
		return onnx_fail(x->c, "%s: cannot infer the -1 dimension reshaping %s to %s", x->who,
				 ir_shape_str(xs, a, sizeof a), ir_shape_str(&known, b, sizeof b));
	}
	*d = xp > kp ? -(xc / kc) : xc / kc;
	return 0;
}

/* ONNX Reshape target (0 = copy unless allowzero, -1 = infer, sym = k*N) to IR dims */
static int reshape_dims(NodeCx *x, const Shape *xs, const OTensor *t, int64_t allowzero, Shape *out)
{
	int n = (int)ir_numel(&t->shape), infer = -1;
	if (n > IR_MAX_RANK)
		return onnx_fail(x->c, "%s: target rank %d is too large (at most %d)", x->who, n, IR_MAX_RANK);
	out->rank = n;
	for (int i = 0; i < n; i++) {
		int64_t k = t->iv[i];
		if (t->sym && t->sym[i])
			out->d[i] = -k;
		else if (k == 0 && !allowzero && i >= xs->rank)
			return onnx_fail(x->c, "%s: target entry %d is 0 (copy) but the input has rank %d",
					 x->who, i, xs->rank);
		else if (k == 0 && !allowzero)
			out->d[i] = xs->d[i];
		else if (k == -1 && infer < 0)
			infer = i, out->d[i] = 1;
		else if (k < 0)
			return onnx_fail(x->c, "%s: bad target dimension %lld", x->who, (long long)k);
		else
			out->d[i] = k;
	}
	return infer < 0 ? 0 : infer_dim(x, xs, out, infer, &out->d[infer]);
}

static int imp_reshape(NodeCx *x)
{
	int64_t allowzero;
	Value *v = onnx_input(x, 0);
	if (!v || onnx_attr_int(x, "allowzero", 0, &allowzero) < 0)
		return -1;
	OTensor *t = x->nin >= 2 ? x->in[1] : NULL;
	if (!t || !t->host || !t->iv || t->shape.rank != 1)
		return onnx_fail(x->c, "%s: the target shape '%s' must be a 1-D integer list known at compile "
				 "time (a constant, or computed from Shape)", x->who, t ? t->name : "");
	Shape s;
	if (reshape_dims(x, &v->shape, t, allowzero, &s) < 0)
		return -1;
	Value *r = reshape_to(x, v, s, NULL);
	return r && onnx_bind(x, 0, r) ? 0 : -1;
}

static int imp_flatten(NodeCx *x)
{
	int64_t axis;
	Value *v = onnx_input(x, 0);
	if (!v || onnx_attr_int(x, "axis", 1, &axis) < 0)
		return -1;
	int r = v->shape.rank;
	if (axis < -r || axis > r)
		return onnx_fail(x->c, "%s: axis %lld is out of range for rank %d", x->who, (long long)axis, r);
	Node *nd = ir_begin(x->c->g, OP_FLATTEN, node_name(x, NULL), 1, &v);
	ir_set_i(x->c->g, nd, "axis", axis < 0 ? axis + r : axis);
	return emit(x, nd);
}

static int imp_transpose(NodeCx *x)
{
	int64_t *p, perm[IR_MAX_RANK];
	int cnt;
	Value *v = onnx_input(x, 0);
	if (!v || onnx_attr_ints(x, "perm", &p, &cnt) < 0)
		return -1;
	int r = v->shape.rank;
	if (cnt >= 0 && cnt != r)
		return onnx_fail(x->c, "%s: perm has %d entries for rank %d", x->who, cnt, r);
	for (int i = 0; i < r; i++)
		if (cnt < 0)
			perm[i] = r - 1 - i;
		else if (onnx_axis(x, p[i], r, &perm[i]) < 0)
			return -1;
	Node *nd = ir_begin(x->c->g, OP_TRANSPOSE, node_name(x, NULL), 1, &v);
	ir_set_ints(x->c->g, nd, "perm", r, perm);
	return emit(x, nd);
}

static int imp_identity(NodeCx *x)
{
	Value *v = onnx_input(x, 0);
	return v ? emit(x, ir_begin(x->c->g, OP_IDENTITY, node_name(x, NULL), 1, &v)) : -1;
}

int onnx_reduce_axes(NodeCx *x, const int64_t *ax, int cnt, int rank, int64_t *out, int *nout)
{
	int mask = 0;
	for (int i = 0; i < cnt; i++) {
		int64_t a;
		if (onnx_axis(x, ax[i], rank, &a) < 0)
			return -1;
		mask |= 1 << a;
	}
	*nout = 0;
	for (int i = 0; i < rank; i++)
		if (cnt <= 0 || (mask & (1 << i)))
			out[(*nout)++] = i;
	return 0;
}

static int imp_reduce(NodeCx *x)
{
	Op op = strcmp(x->n->op_type, "ReduceSum") == 0 ? OP_REDUCE_SUM : OP_REDUCE_MEAN;
	int64_t *ax, keep, noop, axes[IR_MAX_RANK];
	int cnt, nax;
	Value *v = onnx_input(x, 0);
	if (!v || onnx_axes(x, op == OP_REDUCE_SUM ? 13 : 18, &ax, &cnt) < 0 ||
	    onnx_attr_int(x, "keepdims", 1, &keep) < 0 ||
	    onnx_attr_int(x, "noop_with_empty_axes", 0, &noop) < 0)
		return -1;
	if (keep != 0 && keep != 1)
		return bad_value(x, "keepdims", keep, "must be 0 or 1");
	if (cnt <= 0 && noop)
		return emit(x, ir_begin(x->c->g, OP_IDENTITY, node_name(x, NULL), 1, &v));
	if (onnx_reduce_axes(x, ax, cnt, v->shape.rank, axes, &nax) < 0)
		return -1;
	Node *nd = ir_begin(x->c->g, op, node_name(x, NULL), 1, &v);
	ir_set_ints(x->c->g, nd, "axes", nax, axes);
	ir_set_i(x->c->g, nd, "keepdims", keep);
	return emit(x, nd);
}

int onnx_unsqueeze_shape(NodeCx *x, const Shape *in, Shape *out)
{
	int64_t *ax;
	int cnt, mask = 0;
	if (onnx_axes(x, 13, &ax, &cnt) < 0)
		return -1;
	if (cnt < 0)
		return onnx_fail(x->c, "%s: no axes given", x->who);
	out->rank = in->rank + cnt;
	if (out->rank > IR_MAX_RANK)
		return onnx_fail(x->c, "%s: result rank %d is too large", x->who, out->rank);
	for (int i = 0; i < cnt; i++) {
		int64_t a;
		if (onnx_axis(x, ax[i], out->rank, &a) < 0)
			return -1;
		if (mask & (1 << a))
			return onnx_fail(x->c, "%s: axis %lld given twice", x->who, (long long)ax[i]);
		mask |= 1 << a;
	}
	for (int i = 0, j = 0; i < out->rank; i++)
		out->d[i] = mask & (1 << i) ? 1 : in->d[j++];
	return 0;
}

int onnx_squeeze_shape(NodeCx *x, const Shape *in, Shape *out)
{
	int64_t *ax;
	int cnt, mask = 0;
	if (onnx_axes(x, 13, &ax, &cnt) < 0)
		return -1;
	for (int i = 0; i < cnt; i++) {
		int64_t a;
		if (onnx_axis(x, ax[i], in->rank, &a) < 0)
			return -1;
		if (in->d[a] != 1)
			return onnx_fail(x->c, "%s: axis %lld does not have size 1", x->who, (long long)ax[i]);
		mask |= 1 << a;
	}
	out->rank = 0;
	for (int i = 0; i < in->rank; i++)
		if (cnt < 0 ? in->d[i] != 1 : !(mask & (1 << i)))
			out->d[out->rank++] = in->d[i];
	return 0;
}

static int imp_squeeze(NodeCx *x)
{
	Shape s;
	Value *v = onnx_input(x, 0), *r;
	int un = strcmp(x->n->op_type, "Unsqueeze") == 0;
	if (!v || (un ? onnx_unsqueeze_shape(x, &v->shape, &s) : onnx_squeeze_shape(x, &v->shape, &s)) < 0)
		return -1;
	r = reshape_to(x, v, s, NULL);
	return r && onnx_bind(x, 0, r) ? 0 : -1;
}

static const struct {
	const char *op;
	ImportFn fn;
} importers[] = {
	{"Gemm", imp_gemm},         {"LeakyRelu", imp_leaky_relu}, {"Softmax", imp_softmax},
	{"LogSoftmax", imp_softmax}, {"Reshape", imp_reshape},     {"Flatten", imp_flatten},
	{"Transpose", imp_transpose}, {"ReduceSum", imp_reduce},  {"ReduceMean", imp_reduce},
	{"Identity", imp_identity}, {"Squeeze", imp_squeeze},      {"Unsqueeze", imp_squeeze},
	/* normalization and activations (onnx_norm.c) */
	{"BatchNormalization", onnx_imp_batchnorm}, {"LayerNormalization", onnx_imp_layernorm},
	{"InstanceNormalization", onnx_imp_instancenorm}, {"Clip", onnx_imp_clip},
	{"Gelu", onnx_imp_gelu},    {"HardSigmoid", onnx_imp_hard_sigmoid}, {"Elu", onnx_imp_elu_selu},
	{"Selu", onnx_imp_elu_selu},
	/* convolution family (onnx_conv.c) */
	{"Conv", onnx_imp_conv}, {"ConvTranspose", onnx_imp_conv_transpose}, {"MaxPool", onnx_imp_max_pool},
	{"AveragePool", onnx_imp_average_pool}, {"GlobalAveragePool", onnx_imp_global_pool},
	{"GlobalMaxPool", onnx_imp_global_pool}, {"Pad", onnx_imp_pad},
};
#define NIMPORTERS ((int)(sizeof importers / sizeof *importers))

static ImportFn find_importer(const char *op_type)
{
	for (int i = 0; i < NIMPORTERS; i++)
		if (strcmp(importers[i].op, op_type) == 0)
			return importers[i].fn;
	if (onnx_tensor_importer(op_type))
		return onnx_tensor_importer(op_type);
	if (onnx_reduce_importer(op_type))
		return onnx_reduce_importer(op_type);
	if (onnx_index_importer(op_type))
		return onnx_index_importer(op_type);
	if (onnx_compose_importer(op_type))
		return onnx_compose_importer(op_type);
	int op = ir_op_lookup(op_type);
	return op >= 0 && ir_ops[op].onnx ? imp_generic : NULL;
}

static void append_name(char *buf, size_t len, const char *name)
{
	char pat[64];
	snprintf(pat, sizeof pat, " %s,", name);
	if (!strstr(buf, pat) && strlen(buf) + strlen(pat) < len)
		strcat(buf, pat);
}

const char *onnx_supported_ops(void)
{
	static char buf[2048];
	if (buf[0])
		return buf + 1;
	for (int i = 0; i < OP_COUNT; i++)
		if (ir_ops[i].onnx)
			append_name(buf, sizeof buf, ir_ops[i].name);
	for (int i = 0; i < NIMPORTERS; i++)
		append_name(buf, sizeof buf, importers[i].op);
	for (int i = 0; onnx_tensor_op_name(i); i++)
		append_name(buf, sizeof buf, onnx_tensor_op_name(i));
	for (int i = 0; onnx_reduce_op_name(i); i++)
		append_name(buf, sizeof buf, onnx_reduce_op_name(i));
	for (int i = 0; onnx_index_op_name(i); i++)
		append_name(buf, sizeof buf, onnx_index_op_name(i));
	for (int i = 0; onnx_compose_op_name(i); i++)
		append_name(buf, sizeof buf, onnx_compose_op_name(i));
	for (int i = 0; onnx_fold_ops[i]; i++)
		append_name(buf, sizeof buf, onnx_fold_ops[i]);
	buf[strlen(buf) - 1] = 0; /* the last comma */
	return buf + 1;
}

/* ---- one node ---- */

static int resolve_inputs(NodeCx *x)
{
	x->nin = (int)x->n->n_input;
	x->in = ir_alloc(x->c->g, (x->nin ? x->nin : 1) * sizeof *x->in);
	for (int i = 0; i < x->nin; i++) {
		const char *nm = x->n->input[i];
		if (!nm[0])
			continue; /* an omitted optional input */
		if (!(x->in[i] = onnx_lookup(x->c, nm)))
			return onnx_fail(x->c, "%s: input '%s' is not defined by an earlier node, an "
					 "initializer or a graph input", x->who, nm);
	}
	return 0;
}

static int unsupported(NodeCx *x, const char *domain)
{
	const char *lbl = onnx_node_label(x->c, x->n);
	if (onnx_is_fold_op(x->n->op_type))
		return onnx_fail(x->c, "node '%s': unsupported operator '%s' on run-time data (dlcc evaluates "
				 "it only on compile-time shape constants; supported: %s)", lbl,
				 x->n->op_type, onnx_supported_ops());
	return onnx_fail(x->c, "node '%s': unsupported operator '%s%s%s' (supported: %s)", lbl,
			 domain ? domain : "", domain ? ":" : "", x->n->op_type, onnx_supported_ops());
}

int onnx_import_node(OnnxCtx *c, const Onnx__NodeProto *n, int index)
{
	char who[300];
	NodeCx x = {.c = c, .n = n, .who = who};
	c->node_index = index;
	if (!n->op_type || !n->op_type[0])
		return onnx_fail(c, "node #%d has no op_type", index);
	snprintf(who, sizeof who, "node '%s' (%s)", onnx_node_label(c, n), n->op_type);
	if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
		return unsupported(&x, n->domain);
	if (n->n_output == 0)
		return onnx_fail(c, "%s: the node has no outputs", who);
	if (resolve_inputs(&x) < 0)
		return -1;
	int rc;
	if (onnx_fold_node(&x, &rc))
		return rc;
	ImportFn fn = onnx_legacy_importer(c, n);
	if (!fn)
		fn = find_importer(n->op_type);
	return fn ? fn(&x) : unsupported(&x, NULL);
}
