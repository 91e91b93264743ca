/*
 * onnx_data.c — one serialized TensorProto read from its own file, outside any model.
 *
 * ONNX's test cases keep each input and expected output as a file holding one TensorProto
 * (test_data_set_0/input_0.pb, output_0.pb). The conformance runner reads them through the same
 * decoding as initializers (onnx_tensor_read: typed fields, raw data, every supported element
 * type), on a throwaway import context whose arena is freed before returning; the elements are
 * handed out as a malloc'd dense array in the tensor's own dtype.
 *
 * Unsupported element types (strings, int8, uint64, ...) are refused with the usual one-line
 * message, so a caller can count such a case as unsupported rather than failed.
 */
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx_imp.h"

/* the host constant t as a malloc'd dense array of its dtype */
static void *dense_copy(const OTensor *t)
{
	int64_t n = ir_numel(&t->shape);
	size_t esz = ir_dt_size(t->dt);
	unsigned char *out = malloc(n * esz + 8);
	DLCC_ASSERT(out);
	if (t->data) {
		memcpy(out, t->data, n * esz);
		return out;
	}
	for (int64_t i = 0; i < n; i++) {
		int64_t x = t->iv[i];
		switch (t->dt) {
		case DT_I64: ((int64_t *)out)[i] = x; break;
		case DT_I32: ((int32_t *)out)[i] = (int32_t)x; break;
		default: out[i] = (unsigned char)x; break; /* bool, u8 */
		}
	}
	return out;
}

static int decode(OnnxCtx *c, const Onnx__TensorProto *tp, OnnxData *d)
{
	OTensor *t = onnx_define(c, "tensor");
	if (onnx_tensor_read(c, tp, t, "the tensor", 0) < 0)
		return -1;
	d->dt = t->dt;
	d->shape = t->shape;
	d->data = dense_copy(t);
	d->name = strdup(tp->name ? tp->name : "");
	return 0;
}

int onnx_read_tensor_file(const char *path, OnnxData *d, char *err, size_t errlen)
{
	char *buf;
	size_t len;
	memset(d, 0, sizeof *d);
	if (onnx_read_file(path, &buf, &len, err, errlen) < 0)
		return -1;
	Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, (const uint8_t *)buf);
	free(buf);
	if (!tp) {
		snprintf(err, errlen, "%s: not a serialized ONNX TensorProto", path);
		return -1;
	}
	Graph *g = ir_graph_new("tensor");
	OnnxCtx c = {.g = g, .path = path, .err = err, .errlen = errlen};
	c.dir = ir_strdup(g, path); /* external data lies beside the file */
	char *slash = strrchr(c.dir, '/');
	if (slash)
		*slash = 0;
	else
		c.dir = ".";
	int rc = decode(&c, tp, d);
	onnx__tensor_proto__free_unpacked(tp, NULL);
	ir_graph_free(g);
	return rc;
}
