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

/* The ONNX op types the frontend accepts, as one comma-separated line (for messages and for the
 * conformance report). */
const char *onnx_supported_ops(void);

#endif
