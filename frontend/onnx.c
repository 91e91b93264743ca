/*
 * onnx.c — the ONNX import driver: read the file, parse the ModelProto with protobuf-c, check
 * the IR version and default-domain opset, then import in four steps: initializers (host
 * constants or V_PARAM), graph inputs that are not initializers (V_INPUT with the batch N on a
 * symbolic first axis), the nodes in file order (models older than opset 11 only with operators
 * whose meaning has not changed since the model's opset: onnx_opset.c) (onnx_ops.c; ONNX files are topologically
 * sorted, so every input must already be defined), and the graph outputs in order.
 *
 * The protobuf message is freed before returning; everything the Graph keeps is copied into its
 * arena, so a failure anywhere frees the graph and the message and leaks nothing. Messages are
 * one line: "<path>: <what is wrong>".
 *
 * Left to others: marking which parameters are trained (pass_mark_params), folding the float
 * constant arithmetic the importer leaves as IR nodes (pass_fold_constants).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx_imp.h"

#define OPSET_MIN 1  /* below 11, per operator: onnx_opset.c */
#define OPSET_MAX 21

int onnx_fail(OnnxCtx *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
	return -1;
}

const char *onnx_node_label(OnnxCtx *c, const Onnx__NodeProto *n)
{
	if (n->name && n->name[0])
		return n->name;
	char buf[160];
	snprintf(buf, sizeof buf, "%s#%d", n->op_type ? n->op_type : "?", c->node_index);
	return ir_strdup(c->g, buf);
}

int onnx_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	size_t cap = 1 << 16, n = 0, got;
	char *b = malloc(cap);
	while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			char *nb = realloc(b, cap *= 2);
			if (!nb)
				free(b);
			b = nb;
		}
	}
	int bad = !b || ferror(f);
	if (bad)
		snprintf(err, errlen, "%s: cannot read: %s", path, b ? strerror(errno) : "out of memory");
	fclose(f);
	if (bad) {
		free(b);
		return -1;
	}
	*buf = b;
	*len = n;
	return 0;
}

static int check_model(OnnxCtx *c, const Onnx__ModelProto *m)
{
	if (!m->graph)
		return onnx_fail(c, "not a valid ONNX model (no graph)");
	if (!m->has_ir_version || m->ir_version < 3)
		return onnx_fail(c, "ONNX ir_version %lld is not supported (need 3 or later; re-export "
				 "with a current exporter)", (long long)m->ir_version);
	c->opset = -1;
	for (size_t i = 0; i < m->n_opset_import; i++) {
		const Onnx__OperatorSetIdProto *o = m->opset_import[i];
		if (!o->domain || !o->domain[0] || strcmp(o->domain, "ai.onnx") == 0)
			c->opset = (int)o->version;
	}
	if (c->opset < 0)
		return onnx_fail(c, "the model imports no default-domain opset");
	if (c->opset < OPSET_MIN || c->opset > OPSET_MAX)
		return onnx_fail(c, "opset %d is not supported (dlcc reads default-domain opsets %d to %d; "
				 "re-export with e.g. opset_version=17)", c->opset, OPSET_MIN, OPSET_MAX);
	return 0;
}

static int import_initializers(OnnxCtx *c, const Onnx__GraphProto *gp)
{
	for (size_t i = 0; i < gp->n_initializer; i++) {
		const Onnx__TensorProto *tp = gp->initializer[i];
		char what[300];
		snprintf(what, sizeof what, "initializer '%s'", tp->name ? tp->name : "");
		if (!tp->name || !tp->name[0])
			return onnx_fail(c, "initializer #%zu has no name", i);
		OTensor *t = onnx_define(c, tp->name);
		if (!t || onnx_tensor_read(c, tp, t, what, 1) < 0)
			return -1;
	}
	return 0;
}

/* the IR shape of a graph input: dim_value stays, a symbolic first axis becomes N */
static int input_shape(OnnxCtx *c, const Onnx__ValueInfoProto *vi, const Onnx__TypeProto__Tensor *tt,
		       Shape *s)
{
	if (!tt->shape)
		return onnx_fail(c, "input '%s' has no shape (dlcc needs the rank and the non-batch sizes)",
				 vi->name);
	if (tt->shape->n_dim > IR_MAX_RANK)
		return onnx_fail(c, "input '%s' has rank %zu (at most %d is supported)", vi->name,
				 tt->shape->n_dim, IR_MAX_RANK);
	s->rank = (int)tt->shape->n_dim;
	for (int i = 0; i < s->rank; i++) {
		const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
		int fixed = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
		if (fixed && d->dim_value < 0)
			return onnx_fail(c, "input '%s': axis %d has negative size %lld", vi->name, i,
					 (long long)d->dim_value);
		if (!fixed && i > 0)
			return onnx_fail(c, "input '%s': axis %d has symbolic size '%s' (only the first axis, "
					 "the batch, may be symbolic)", vi->name, i,
					 d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
						 ? d->dim_param : "?");
		s->d[i] = fixed ? d->dim_value : -1;
	}
	return 0;
}

static int import_input(OnnxCtx *c, const Onnx__ValueInfoProto *vi)
{
	const Onnx__TypeProto *tp = vi->type;
	if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type->has_elem_type)
		return onnx_fail(c, "input '%s' is not a tensor (sequences, maps and optionals are not supported)",
				 vi->name);
	DType dt;
	if (onnx_dtype(tp->tensor_type->elem_type, &dt) < 0 || dt == DT_F16 || dt == DT_BF16)
		return onnx_fail(c, "input '%s' has element type %s, which is not supported%s", vi->name,
				 onnx_dtype_name(tp->tensor_type->elem_type),
				 dt == DT_F16 || dt == DT_BF16 ? " (half-precision model tensors: not yet)" : "");
	Shape s;
	if (input_shape(c, vi, tp->tensor_type, &s) < 0)
		return -1;
	OTensor *t = onnx_define(c, vi->name);
	if (!t)
		return -1;
	t->dt = dt;
	t->shape = s;
	t->v = ir_value(c->g, V_INPUT, vi->name, dt, s, NULL);
	return 0;
}

/* onnx_load_pinned: the input as a host constant, like an initializer that is never trained */
static int import_pinned(OnnxCtx *c, const char *name, const OnnxData *d)
{
	OTensor *t = onnx_define(c, name);
	if (!t)
		return -1;
	int64_t n = ir_numel(&d->shape);
	if (ir_dt_is_float(d->dt)) {
		size_t bytes = n * ir_dt_size(d->dt);
		t->dt = d->dt;
		t->shape = d->shape;
		t->data = memcpy(ir_alloc(c->g, bytes ? bytes : 1), d->data, bytes);
		t->host = 1;
		return 0;
	}
	int64_t *iv = ir_alloc(c->g, (n ? n : 1) * sizeof *iv);
	for (int64_t i = 0; i < n; i++)
		iv[i] = d->dt == DT_I64 ? ((const int64_t *)d->data)[i]
			: d->dt == DT_I32 ? ((const int32_t *)d->data)[i] : ((const uint8_t *)d->data)[i];
	onnx_set_ints(c, t, d->dt, d->shape, iv, NULL);
	return 0;
}

static int import_inputs(OnnxCtx *c, const Onnx__GraphProto *gp)
{
	for (size_t i = 0, k = 0; i < gp->n_input; i++) {
		const Onnx__ValueInfoProto *vi = gp->input[i];
		OnnxData d;
		if (!vi->name || !vi->name[0])
			return onnx_fail(c, "graph input #%zu has no name", i);
		if (onnx_lookup(c, vi->name)) /* an initializer listed as an input (old exporters) */
			continue;
		int pinned = c->pin && c->pin(c->pin_user, (int)k++, vi->name, &d);
		if ((pinned ? import_pinned(c, vi->name, &d) : import_input(c, vi)) < 0)
			return -1;
	}
	return 0;
}

/* A node output listed as a graph output takes the ONNX output name. An input, parameter or
 * constant listed as an output is output as itself (it already has that name); a value listed
 * a second time under another name gets an Identity of that name. */
static int import_output(OnnxCtx *c, const char *name)
{
	OTensor *t = onnx_lookup(c, name);
	if (!t)
		return onnx_fail(c, "graph output '%s' is not produced by any node", name);
	char label[300];
	snprintf(label, sizeof label, "graph output '%s'", name);
	Value *v = onnx_value(c, t, label);
	if (!v)
		return -1;
	int seen = 0;
	for (int i = 0; i < c->g->noutputs; i++)
		seen |= c->g->outputs[i] == v;
	if (v->kind != V_TEMP && !seen) {
		ir_add_output(c->g, v);
		return 0;
	}
	if (seen) {
		Node *n = ir_begin(c->g, OP_IDENTITY, name, 1, &v);
		if (ir_finish(c->g, n) < 0)
			return onnx_fail(c, "%s", c->g->err);
		v = n->out[0];
	}
	v->name = ir_strdup(c->g, name);
	ir_add_output(c->g, v);
	return 0;
}

/* Node outputs are named by their value id ("5"); old exporters name tensors "0", "1", ... too.
 * Rename the temporaries whose id-name is also an ONNX name, so every printed name is unique. */
static void unclash_names(OnnxCtx *c)
{
	for (int i = 0; i < c->g->nvalues; i++) {
		Value *v = c->g->values[i];
		int is_output = 0;
		for (int k = 0; k < c->g->noutputs; k++)
			is_output |= c->g->outputs[k] == v;
		if (v->kind != V_TEMP || is_output || !onnx_lookup(c, v->name))
			continue;
		char buf[48];
		int k = 0;
		do
			snprintf(buf, sizeof buf, "t%d%.*s", v->id, k++, "________");
		while (onnx_lookup(c, buf) && k < 8);
		v->name = ir_strdup(c->g, buf);
	}
}

static int import_graph(OnnxCtx *c, const Onnx__GraphProto *gp)
{
	if (import_initializers(c, gp) < 0 || import_inputs(c, gp) < 0)
		return -1;
	for (size_t i = 0; i < gp->n_node; i++) {
		c->node_index = (int)i;
		if (onnx_opset_check(c, gp->node[i]) < 0 || onnx_import_node(c, gp->node[i], (int)i) < 0)
			return -1;
	}
	if (gp->n_output == 0)
		return onnx_fail(c, "the graph has no outputs");
	for (size_t i = 0; i < gp->n_output; i++)
		if (import_output(c, gp->output[i]->name) < 0)
			return -1;
	unclash_names(c);
	return 0;
}

static char *dir_of(Graph *g, const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return ir_strdup(g, ".");
	size_t n = slash == path ? 1 : (size_t)(slash - path);
	char *d = ir_alloc(g, n + 1);
	memcpy(d, path, n);
	return d;
}

Graph *onnx_load(const char *path, int64_t batch_hint, char *err, size_t errlen)
{
	return onnx_load_pinned(path, batch_hint, NULL, NULL, err, errlen);
}

Graph *onnx_load_pinned(const char *path, int64_t batch_hint, OnnxPinFn pin, void *user, char *err,
			size_t errlen)
{
	char dummy[8];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof dummy;
	}
	char *buf;
	size_t len;
	if (onnx_read_file(path, &buf, &len, err, errlen) < 0)
		return NULL;
	Onnx__ModelProto *m = len ? onnx__model_proto__unpack(NULL, len, (const uint8_t *)buf) : NULL;
	free(buf);
	if (!m) {
		snprintf(err, errlen, "%s: not a valid ONNX model (%s)", path,
			 len ? "protobuf parse failed" : "empty file");
		return NULL;
	}
	Graph *g = ir_graph_new(m->graph && m->graph->name && m->graph->name[0] ? m->graph->name : "main");
	OnnxCtx c = {.g = g, .path = path, .err = err, .errlen = errlen, .pin = pin, .pin_user = user};
	c.dir = dir_of(g, path);
	int rc = check_model(&c, m) < 0 ? -1 : import_graph(&c, m->graph);
	onnx__model_proto__free_unpacked(m, NULL);
	if (rc < 0) {
		ir_graph_free(g);
		return NULL;
	}
	return g;
}
