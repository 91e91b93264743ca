/*
 * onnx.h — the ONNX frontend: reads a .onnx file (protobuf, through protobuf-c) and builds the
 * forward Graph of dlcc's IR.
 *
 * What it produces: graph inputs (those not also initializers) as V_INPUT values with the
 * symbolic batch N on a symbolic first axis; float initializers as V_PARAM named by their ONNX
 * names (pass_mark_params later demotes the ones that are not trained); other constants as
 * V_CONST; one IR node per supported ONNX node (a few expand to two or three), with attributes in
 * IR normal form; the graph outputs in order, each value named by its ONNX output name.
 * Shape subgraphs (Shape, Gather, Unsqueeze, Concat, ... over shape vectors) are evaluated at
 * import time, with the batch kept symbolic, so a dynamic-batch Reshape becomes a Reshape with
 * IR dims.
 *
 * Errors: NULL is returned and err holds one line starting with the file name, naming the node,
 * its op and the problem. Nothing leaks on any path.
 */
#ifndef DLCC_FRONTEND_ONNX_H
#define DLCC_FRONTEND_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

/* batch_hint: the largest batch the caller plans for (`--batch`), or 0. The importer keeps the
 * batch symbolic and does not depend on it; it is accepted so that every frontend has the same
 * entry signature. */
Graph *onnx_load(const char *path, int64_t batch_hint, char *err, size_t errlen);

/* A tensor given to or decoded by the frontend outside a model: dense, C order, dt-typed. */
typedef struct {
	const char *name; /* the TensorProto's name ("" when it has none) */
	DType dt;
	Shape shape;      /* concrete dims */
	void *data;       /* ir_numel(&shape) elements */
} OnnxData;

/* Pinning graph inputs as compile-time constants (the conformance runner does it for the shape,
 * axes and similar integer inputs of ONNX node tests). Called once per graph input that is not
 * an initializer, in graph order (index counts those inputs); returning 1 with *t filled imports
 * that input as a constant of t's dtype and shape (the data is copied), 0 keeps it an input. */
typedef int (*OnnxPinFn)(void *user, int index, const char *name, OnnxData *t);
Graph *onnx_load_pinned(const char *path, int64_t batch_hint, OnnxPinFn pin, void *user, char *err,
			size_t errlen);

/* Decode a file holding one serialized TensorProto (ONNX test data: input_0.pb, output_0.pb).
 * t->data is malloc'd (the caller frees it), t->name too. 0, or -1 with one line in err. */
int onnx_read_tensor_file(const char *path, OnnxData *t, char *err, size_t errlen);

/* The ONNX op types the frontend accepts, as one comma-separated line (for messages and for the
 * conformance report). */
const char *onnx_supported_ops(void);

#endif
