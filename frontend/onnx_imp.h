/*
 * onnx_imp.h — private to the ONNX frontend: the import context shared by its files.
 *
 * onnx.c reads the file and drives the import; onnx_tensor.c decodes TensorProtos (typed fields,
 * raw and external data) and keeps the tensor table; onnx_ops.c maps each node onto IR ops;
 * onnx_fold.c evaluates shape subgraphs on host constants.
 *
 * Every ONNX tensor name maps to an OTensor. A tensor is either an IR value (v), or a host
 * constant known at import time (host = 1), or both once a constant has been used by an IR node
 * (it is then materialised as a V_CONST). Integer host constants are held as int64 in iv; an
 * entry with sym[i] set stands for iv[i] * N, the symbolic batch: that is how Shape(x) of a
 * batched x is represented until a Reshape consumes it. Everything lives in the graph's arena,
 * so freeing the graph frees the import state.
 */
#ifndef DLCC_FRONTEND_ONNX_IMP_H
#define DLCC_FRONTEND_ONNX_IMP_H

#include "frontend/onnx.h"
#include "onnx.pb-c.h"

typedef struct {
	const char *name;
	Value *v;           /* IR value, or NULL for a host constant not yet used by an IR node */
	DType dt;
	Shape shape;        /* host constants: concrete dims */
	int host;           /* contents known at import time */
	void *data;         /* host float constants: dt-typed elements */
	int64_t *iv;        /* host integer constants: the elements as int64 */
	unsigned char *sym; /* NULL, or per element: 1 when iv[i] means iv[i] * N */
} OTensor;

typedef struct {
	Graph *g;
	const char *path;   /* for messages */
	char *dir;          /* the model's directory (external data), arena */
	int opset;          /* default-domain opset */
	int node_index;     /* the node being imported (for labels) */
	OTensor **tab;      /* open-addressing hash table by name */
	int ntab, captab;
	char *err;
	size_t errlen;
	OnnxPinFn pin;      /* onnx_load_pinned: inputs to import as constants, or NULL */
	void *pin_user;
} OnnxCtx;

/* the node being imported, as handed to the per-op functions */
typedef struct {
	OnnxCtx *c;
	const Onnx__NodeProto *n;
	OTensor **in;    /* n->n_input entries; NULL for an omitted optional input ("") */
	int nin;
	const char *who; /* "node 'name' (OpType)" for messages */
} NodeCx;

/* ---- onnx.c ---- */
int onnx_fail(OnnxCtx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3))); /* -1 */
/* one-line label of a node for messages: its name, or "<op_type>#<index>" */
const char *onnx_node_label(OnnxCtx *c, const Onnx__NodeProto *n);
/* the whole file into a malloc'd buffer; -1 with "<path>: ..." in err */
int onnx_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen);

/* ---- onnx_tensor.c ---- */
OTensor *onnx_lookup(OnnxCtx *c, const char *name);
OTensor *onnx_define(OnnxCtx *c, const char *name); /* NULL (error set) if already defined */
int onnx_dtype(int32_t onnx_type, DType *dt);       /* -1 if unsupported */
const char *onnx_dtype_name(int32_t onnx_type);
/* Decode an initializer / Constant tensor into t (host data; float ones also become V_PARAM
 * when as_param is set). what names it in messages. */
int onnx_tensor_read(OnnxCtx *c, const Onnx__TensorProto *tp, OTensor *t, const char *what,
		     int as_param);
/* The IR value of t, materialising a host constant as a V_CONST; NULL (error set) when the
 * constant depends on N. user: the node label for messages. */
Value *onnx_value(OnnxCtx *c, OTensor *t, const char *user);
/* t as a host integer vector (rank <= 1) with no symbolic entries; -1 (error set) otherwise */
int onnx_const_ints(OnnxCtx *c, OTensor *t, const char *user, const char *what, int64_t **v, int *n);
/* fill t's int view from host float data (Cast to an integer type) */
void onnx_host_ints(OnnxCtx *c, OTensor *t);
/* make t a host integer constant (iv and sym are copied; sym may be NULL) */
void onnx_set_ints(OnnxCtx *c, OTensor *t, DType dt, Shape s, const int64_t *iv, const unsigned char *sym);

/* ---- onnx_ops.c ---- */
int onnx_import_node(OnnxCtx *c, const Onnx__NodeProto *n, int index);
/* define output i of the node as t's contents (an alias) or as IR value v */
OTensor *onnx_bind(NodeCx *x, int i, Value *v);
/* the IR value of the node's input i; NULL (error set) when absent */
Value *onnx_input(NodeCx *x, int i);
/* ir_finish and output 0; NULL with the shape rule's message as the import error on failure */
Value *onnx_finish(NodeCx *x, Node *nd);
/* output shapes of Unsqueeze / Squeeze (axes from the attribute or input 1, per opset) */
int onnx_unsqueeze_shape(NodeCx *x, const Shape *in, Shape *out);
int onnx_squeeze_shape(NodeCx *x, const Shape *in, Shape *out);
/* the ONNX axes list ax[cnt] as sorted, de-duplicated, non-negative axes (all when cnt <= 0) */
int onnx_reduce_axes(NodeCx *x, const int64_t *ax, int cnt, int rank, int64_t *out, int *nout);

/* ---- onnx_opset.c: models older than opset 11 ---- */
/* -1 (error set) when n's operator meant something else at the model's opset */
int onnx_opset_check(OnnxCtx *c, const Onnx__NodeProto *n);
/* the importer of a legacy form (opset 6 broadcasting along an axis, per-channel PRelu), or NULL */
int (*onnx_legacy_importer(OnnxCtx *c, const Onnx__NodeProto *n))(NodeCx *x);
/* ---- onnx_ops_tensor.c: Gather, Slice, Split, Concat, Expand, Cast, Trilu, Pow, Max, Min ---- */
int (*onnx_tensor_importer(const char *op_type))(NodeCx *x); /* NULL if not one of them */
const char *onnx_tensor_op_name(int i);                       /* i-th name, NULL after the last */
/* ---- onnx_ops_reduce.c: ReduceMax/Min/Prod, ArgMax, Dropout, the losses; onnx_ops_einsum.c ---- */
int (*onnx_reduce_importer(const char *op_type))(NodeCx *x); /* NULL if not one of them */
const char *onnx_reduce_op_name(int i);                       /* i-th name, NULL after the last */
int onnx_import_einsum(NodeCx *x);
/* ---- onnx_ops_index.c: GatherElements, ScatterElements, Scatter, CumSum, Tile ---- */
int (*onnx_index_importer(const char *op_type))(NodeCx *x); /* NULL if not one of them */
const char *onnx_index_op_name(int i);                       /* i-th name, NULL after the last */
/* ---- onnx_ops_compose.c: ops imported as exact compositions of IR ops (Sum, Mean, ArgMin,
 * ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp) ---- */
int (*onnx_compose_importer(const char *op_type))(NodeCx *x);
const char *onnx_compose_op_name(int i);
/* ---- onnx_norm.c: normalization and activation importers ---- */
int onnx_imp_batchnorm(NodeCx *x);
int onnx_imp_layernorm(NodeCx *x);
int onnx_imp_instancenorm(NodeCx *x);
int onnx_imp_clip(NodeCx *x);
int onnx_imp_gelu(NodeCx *x);
int onnx_imp_hard_sigmoid(NodeCx *x);
int onnx_imp_elu_selu(NodeCx *x);
int onnx_imp_pow(NodeCx *x);
/* ---- onnx_conv.c: the convolution family ---- */
int onnx_imp_conv(NodeCx *x);
int onnx_imp_conv_transpose(NodeCx *x);
int onnx_imp_max_pool(NodeCx *x);
int onnx_imp_average_pool(NodeCx *x);
int onnx_imp_global_pool(NodeCx *x); /* GlobalAveragePool, GlobalMaxPool */
int onnx_imp_pad(NodeCx *x);

/* ---- onnx_fold.c: evaluation on host constants ---- */
/* 1: the node was evaluated (or failed: *rc = -1); 0: it is not a host computation */
int onnx_fold_node(NodeCx *x, int *rc);
int onnx_is_fold_op(const char *op_type); /* ops evaluated only on host constants */
extern const char *const onnx_fold_ops[];  /* NULL-terminated */

/* ---- onnx_attr.c: attribute access, each -1 with a message on a wrong attribute type ---- */
const Onnx__AttributeProto *onnx_attr(const Onnx__NodeProto *n, const char *name);
int onnx_attr_int(NodeCx *x, const char *name, int64_t dflt, int64_t *out);
int onnx_attr_float(NodeCx *x, const char *name, double dflt, double *out);
/* ints attribute; *v NULL and *cnt -1 when absent */
int onnx_attr_ints(NodeCx *x, const char *name, int64_t **v, int *cnt);
/* normalise a possibly negative axis against rank; -1 (error set) when out of range */
int onnx_axis(NodeCx *x, int64_t axis, int rank, int64_t *out);
/* the axes of ReduceSum, ReduceMean, Squeeze, Unsqueeze: from the attribute before opset input_from, else
 * from optional input 1 (a constant); *cnt -1 when absent */
int onnx_axes(NodeCx *x, int input_from, int64_t **v, int *cnt);

#endif
