/*
 * ir.h — dlcc's graph IR.
 *
 * A Graph is a list of Nodes in schedule (topological) order over SSA Values. A Value is a
 * tensor with a dtype and a Shape; a dimension is either a constant (>= 0) or a multiple of the
 * symbolic batch N (stored as -k for k*N), so one graph serves every batch size up to the
 * planned maximum. Values that are not produced by a node are graph-level: data inputs, the
 * label, trainable parameters, optimizer state and constants; constants and parameters carry
 * their host data (parameters: the initial value).
 *
 * A training program is an ordinary Graph whose `loss` is set and whose `updates` say which
 * node output becomes the new value of which parameter or state tensor at the end of the step.
 *
 * Memory: everything a Graph owns (values, nodes, names, attributes, constant data) comes from
 * the graph's arena and is released by ir_graph_free.
 *
 * Errors: user-facing problems are recorded with ir_error() into g->err (one line) and the call
 * returns NULL / -1; internal bugs stop with DLCC_ASSERT.
 */
#ifndef DLCC_IR_H
#define DLCC_IR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { DT_F32, DT_F16, DT_BF16, DT_F64, DT_I64, DT_I32, DT_BOOL, DT_U8, DT_COUNT } DType;

#define IR_MAX_RANK 8
/* d[i] >= 0: constant extent; d[i] = -k: k times the batch N. */
typedef struct {
	int rank;
	int64_t d[IR_MAX_RANK];
} Shape;

typedef enum {
#define X(e, ...) OP_##e,
#include "ir/ops.def"
#undef X
	OP_COUNT
} Op;

typedef enum { K_UNARY, K_BINARY, K_GEMM, K_REDUCE, K_SOFTMAX, K_CUSTOM, K_NONE } KClass;
typedef enum { P_HALF, P_F32, P_ANY } Prec;

typedef struct Graph Graph;
typedef struct Node Node;

typedef struct {
	const char *name;
	int onnx;
	int min_in, max_in, nout;
	int (*shape)(Graph *g, Node *n);
	KClass kclass;
	const char *body;
	Prec prec;
} OpInfo;

extern const OpInfo ir_ops[OP_COUNT];
int ir_op_lookup(const char *name); /* -1 if unknown */

typedef enum { V_TEMP, V_INPUT, V_LABEL, V_PARAM, V_STATE, V_CONST } ValueKind;

typedef struct Value {
	int id;
	const char *name;
	ValueKind kind;
	DType dt;
	Shape shape;
	Node *def;            /* producer (V_TEMP), else NULL */
	int out_index;        /* which output of def */
	void *data;           /* V_CONST, V_PARAM: host data, dt, ir_numel(shape) elements (no batch dims) */
	struct Value *param;  /* V_STATE: the parameter it belongs to */
	const char *slot;     /* V_STATE: "momentum_buffer", "exp_avg", "exp_avg_sq" */
	int buffer;           /* V_PARAM that is not trained: no gradient, no optimizer; the graph's
			       * own updates change it (BatchNormalization running statistics) */
} Value;

typedef enum { A_INT, A_FLOAT, A_INTS, A_FLOATS, A_STRING } AttrKind;

typedef struct {
	const char *name;
	AttrKind kind;
	int64_t i;
	double f;
	int n;           /* A_INTS, A_FLOATS */
	int64_t *ints;
	double *floats;
	const char *s;
} Attr;

struct Node {
	int id;
	Op op;
	const char *name; /* ONNX node name or generated; for messages */
	int nin, nout;
	Value **in;
	Value **out;
	int nattr;
	Attr *attr;
};

typedef struct {
	Value *state; /* V_PARAM or V_STATE */
	Value *value; /* its new value, a node output */
} Update;

typedef struct Arena Arena;

struct Graph {
	Arena *arena;
	const char *name;
	Value **values; int nvalues, capvalues;
	Node **nodes;   int nnodes, capnodes;      /* schedule order */
	Value **inputs; int ninputs, capinputs;    /* V_INPUT, in model order */
	Value **outputs; int noutputs, capoutputs; /* model outputs (inference results) */
	Value **params; int nparams, capparams;    /* V_PARAM */
	Value **states; int nstates, capstates;    /* V_STATE */
	Value *label;                              /* V_LABEL or NULL */
	Value *loss;                               /* scalar f32; set in training programs */
	Update *updates; int nupdates, capupdates;
	int next_node_id;                          /* node ids are unique: ir_finish counts up */
	const char *loss_kind;                     /* "cross_entropy", "mse", "none" or NULL */
	const char *optimizer;                     /* "sgd", "momentum", "adam", "adamw" or NULL */
	char err[512];
};

/* ---- graphs and values (ir/ir.c) ---- */
Graph *ir_graph_new(const char *name);
void ir_graph_free(Graph *g);
Graph *ir_graph_clone(const Graph *g); /* deep copy; value and node ids preserved */
void *ir_alloc(Graph *g, size_t bytes); /* zeroed, from the arena */
char *ir_strdup(Graph *g, const char *s);
int ir_error(Graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3))); /* returns -1 */

/* A graph-level value (input, label, param, state, const). name NULL gives "%<id>". data (for
 * V_CONST and V_PARAM) is copied. Inputs/params/states are appended to their lists. */
Value *ir_value(Graph *g, ValueKind k, const char *name, DType dt, Shape s, const void *data);
/* v is read by the graph itself: an output, the loss, an update's value */
int ir_value_visible(const Graph *g, const Value *v);
Value *ir_const_scalar(Graph *g, DType dt, double v);
void ir_add_output(Graph *g, Value *v);
void ir_add_update(Graph *g, Value *state, Value *value);

/* Nodes: begin (inputs fixed, no outputs), set attributes, finish (shape rule makes the outputs
 * and the node joins the schedule). finish returns -1 with g->err set when the shape rule fails. */
Node *ir_begin(Graph *g, Op op, const char *name, int nin, Value *const *in);
int ir_finish(Graph *g, Node *n);
/* begin + finish for attribute-free ops; returns output 0 or NULL */
Value *ir_op(Graph *g, Op op, int nin, Value *const *in);
Value *ir_op1(Graph *g, Op op, Value *a);
Value *ir_op2(Graph *g, Op op, Value *a, Value *b);

void ir_set_i(Graph *g, Node *n, const char *name, int64_t v);
void ir_set_f(Graph *g, Node *n, const char *name, double v);
void ir_set_ints(Graph *g, Node *n, const char *name, int cnt, const int64_t *v);
void ir_set_floats(Graph *g, Node *n, const char *name, int cnt, const double *v);
void ir_set_s(Graph *g, Node *n, const char *name, const char *v);
const Attr *ir_attr(const Node *n, const char *name);
int64_t ir_attr_i(const Node *n, const char *name, int64_t dflt);
double ir_attr_f(const Node *n, const char *name, double dflt);
const int64_t *ir_attr_ints(const Node *n, const char *name, int *cnt); /* NULL if absent */

/* Keep the nodes at schedule positions i with keep[i] != 0, in order; drop the others. */
void ir_remove_nodes(Graph *g, const char *keep);
/* Replace every use of `from` by `to` (node inputs, outputs, updates, loss). */
void ir_replace_uses(Graph *g, Value *from, Value *to);

/* ---- dtypes and shapes (ir/types.c) ---- */
const char *ir_dt_name(DType dt); /* "f32" */
int ir_dt_lookup(const char *name); /* -1 if unknown */
size_t ir_dt_size(DType dt);
int ir_dt_is_float(DType dt);
int ir_dt_is_half(DType dt); /* f16 or bf16 */
/* The result dtype of a matrix product or convolution of operands of dtype dt: they accumulate
 * in fp32 and return fp32 for half-precision operands (mixed precision), else dt. */
DType ir_dt_acc(DType dt);
Shape ir_shape(int rank, const int64_t *d);
Shape ir_shape0(void); /* scalar */
int ir_shape_eq(const Shape *a, const Shape *b);
void ir_shape_swap_last2(Shape *s); /* rank >= 2: the last two dims trade places */
/* the bytes of a ReluMask row for c columns: 128-bit groups (ops.def) */
static inline int64_t ir_relu_mask_bytes(int64_t c) { return (c + 127) / 128 * 16; }
int64_t ir_numel(const Shape *s);            /* constant dims only: batch dims count as 1 */
int64_t ir_numel_at(const Shape *s, int64_t batch); /* batch dims resolved */
int64_t ir_dim_at(int64_t d, int64_t batch);
int ir_has_batch(const Shape *s);
char *ir_shape_str(const Shape *s, char *buf, size_t len); /* "[N,784]", "[2N,5]", "[]" */
char *ir_dim_str(int64_t d, char *buf, size_t len);

/* ---- shape rules (ir/shape.c), referenced by ops.def ---- */
#define X(e, nm, onnx, mi, ma, no, shape, ...) int shape_##shape(Graph *g, Node *n);
#include "ir/ops.def"
#undef X
/* numpy broadcasting of two shapes; -1 and g->err when incompatible */
int ir_broadcast(Graph *g, const Shape *a, const Shape *b, Shape *out);
/* s broadcasts to d as it is (numpy rules: aligned right, each dim equal or 1) */
int ir_broadcasts_to(const Shape *s, const Shape *d);
/* positions start, start+step, ... before end (Slice, normalised attributes; ir/shape_tensor.c) */
int64_t ir_slice_count(int64_t start, int64_t end, int64_t step);

/* Dropout's counter-based RNG (ir/interp_reduce.c): the keep threshold of a ratio, and whether
 * element i is kept at optimizer step `step` */
uint64_t ir_dropout_threshold(double ratio);
int ir_dropout_keep(uint64_t seed, int64_t step, int64_t i, uint64_t threshold);

/* ---- learning-rate schedules of the optimizer updates (ir/lr_schedule.c; docs/dl.md) ----
 * At the 1-based optimizer step t, with warm-up W and e = t - W - 1 (steps after the warm-up):
 *   t <= W      lr * t / W
 *   constant    lr
 *   step        lr * gamma^floor(e / step_size)
 *   cosine      e < steps ? min_lr + (lr - min_lr) * (1 + cos(pi * e / steps)) / 2 : min_lr
 * On an update node: the attributes schedule = "constant"|"step"|"cosine", warmup, step_size,
 * gamma, schedule_steps, min_lr; a constant schedule without warm-up has none of them. */
typedef enum { LR_CONSTANT, LR_STEP, LR_COSINE } LrKind;
typedef struct {
	LrKind kind;
	int64_t warmup;    /* linear warm-up steps, 0 = none */
	int64_t step_size; /* step: multiply by gamma every step_size steps */
	double gamma;
	int64_t steps;     /* cosine: steps from lr down to min_lr, after the warm-up */
	double min_lr;
} LrSchedule;

void ir_lr_default(LrSchedule *s);          /* constant, no warm-up; gamma 0.1, min_lr 0 */
int ir_lr_kind(const char *name);            /* -1 if unknown */
const char *ir_lr_kind_name(LrKind k);
int ir_lr_varies(const LrSchedule *s);       /* 0: lr is the same at every step */
const char *ir_lr_invalid(const LrSchedule *s); /* NULL, or what is wrong (one phrase) */
double ir_lr_at(const LrSchedule *s, double lr, int64_t step);
char *ir_lr_str(const LrSchedule *s, double lr, char *buf, size_t len); /* for people */
/* node attributes <-> schedule; ir_lr_of returns -1 when the attributes are malformed */
void ir_set_lr_schedule(Graph *g, Node *n, const LrSchedule *s);
int ir_lr_of(const Node *n, LrSchedule *s);

/* ---- verifier, printer, parser ---- */
int ir_verify(Graph *g); /* 0 ok; -1 with g->err */
void ir_print(FILE *f, const Graph *g);
void ir_print_dot(FILE *f, const Graph *g); /* ir/dot.c */
Graph *ir_parse(const char *text, const char *filename, char *err, size_t errlen);

/* ---- internal errors ---- */
#define DLCC_ASSERT(c)                                                                          \
	do {                                                                                    \
		if (!(c))                                                                       \
			dlcc_internal_error(__FILE__, __LINE__, #c);                             \
	} while (0)
_Noreturn void dlcc_internal_error(const char *file, int line, const char *what);

#endif
