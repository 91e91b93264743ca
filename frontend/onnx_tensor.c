/*
 * onnx_tensor.c — tensors of the ONNX frontend: the name table, ONNX element types, decoding of
 * TensorProtos (initializers and Constant values) and the step from a host constant to an IR
 * value.
 *
 * A TensorProto holds its elements in raw_data (little-endian bytes), in a typed field
 * (float_data, double_data, int64_data, or int32_data, which also carries f16/bf16 bit patterns,
 * bool and uint8 per the ONNX spec), or in a file beside the model (data_location EXTERNAL with
 * "location", "offset", "length" entries; the location must stay inside the model's directory).
 * Float initializers become V_PARAM values at once; every other constant stays a host constant
 * (integers as int64 in OTensor.iv, for the shape evaluation of onnx_fold.c) until an IR node
 * uses it, when onnx_value() makes it a V_CONST.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx_imp.h"

/* ---- the name table: open addressing over the graph arena ---- */

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static OTensor **slot_of(OTensor **tab, int cap, const char *name)
{
	uint32_t i = hash_name(name) & (cap - 1);
	while (tab[i] && strcmp(tab[i]->name, name) != 0)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

OTensor *onnx_lookup(OnnxCtx *c, const char *name)
{
	return c->captab && name ? *slot_of(c->tab, c->captab, name) : NULL;
}

static void grow_table(OnnxCtx *c)
{
	int cap = c->captab ? c->captab * 2 : 256;
	OTensor **tab = ir_alloc(c->g, cap * sizeof *tab);
	for (int i = 0; i < c->captab; i++)
		if (c->tab[i])
			*slot_of(tab, cap, c->tab[i]->name) = c->tab[i];
	c->tab = tab;
	c->captab = cap;
}

OTensor *onnx_define(OnnxCtx *c, const char *name)
{
	if (onnx_lookup(c, name)) {
		onnx_fail(c, "tensor '%s' is defined twice", name);
		return NULL;
	}
	if (2 * (c->ntab + 1) > c->captab)
		grow_table(c);
	OTensor *t = ir_alloc(c->g, sizeof *t);
	t->name = ir_strdup(c->g, name);
	*slot_of(c->tab, c->captab, name) = t;
	c->ntab++;
	return t;
}

/* ---- element types ---- */

int onnx_dtype(int32_t ot, DType *dt)
{
	switch (ot) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: *dt = DT_F32; return 0;
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: *dt = DT_F16; return 0;
	case ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16: *dt = DT_BF16; return 0;
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: *dt = DT_F64; return 0;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: *dt = DT_I64; return 0;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: *dt = DT_I32; return 0;
	case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: *dt = DT_BOOL; return 0;
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: *dt = DT_U8; return 0;
	default: return -1;
	}
}

const char *onnx_dtype_name(int32_t ot)
{
	static const char *names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16",
				      "INT32", "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE",
				      "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
	return ot >= 0 && ot < (int32_t)(sizeof names / sizeof *names) ? names[ot] : "unknown";
}

/* ---- decoding ---- */

/* the element count of a typed field that must match numel */
static int check_count(OnnxCtx *c, const char *what, size_t have, int64_t numel, const Shape *s)
{
	char sb[128];
	if ((int64_t)have == numel)
		return 0;
	if (have == 0)
		return onnx_fail(c, "%s has no data", what);
	return onnx_fail(c, "%s holds %zu values for shape %s (%lld expected)", what, have,
			 ir_shape_str(s, sb, sizeof sb), (long long)numel);
}

static int read_typed(OnnxCtx *c, const Onnx__TensorProto *tp, DType dt, int64_t numel,
		      const Shape *s, const char *what, void *out)
{
	switch (dt) {
	case DT_F32:
		if (check_count(c, what, tp->n_float_data, numel, s) < 0) return -1;
		memcpy(out, tp->float_data, numel * 4);
		return 0;
	case DT_F64:
		if (check_count(c, what, tp->n_double_data, numel, s) < 0) return -1;
		memcpy(out, tp->double_data, numel * 8);
		return 0;
	case DT_I64:
		if (check_count(c, what, tp->n_int64_data, numel, s) < 0) return -1;
		memcpy(out, tp->int64_data, numel * 8);
		return 0;
	default:
		break;
	}
	if (check_count(c, what, tp->n_int32_data, numel, s) < 0)
		return -1;
	for (int64_t i = 0; i < numel; i++) {
		int32_t x = tp->int32_data[i];
		switch (dt) {
		case DT_I32: ((int32_t *)out)[i] = x; break;
		case DT_F16:
		case DT_BF16: ((uint16_t *)out)[i] = (uint16_t)x; break;
		default: ((uint8_t *)out)[i] = (uint8_t)x; break; /* bool, u8 */
		}
	}
	return 0;
}

/* the external file's full path, if it stays inside the model's directory */
static char *external_path(OnnxCtx *c, const char *loc, const char *what)
{
	if (loc[0] == '/' || strcmp(loc, "..") == 0 || strncmp(loc, "../", 3) == 0 || strstr(loc, "/../") ||
	    (strlen(loc) >= 3 && strcmp(loc + strlen(loc) - 3, "/..") == 0)) {
		onnx_fail(c, "%s: external data location '%s' leaves the model's directory", what, loc);
		return NULL;
	}
	size_t n = strlen(c->dir) + strlen(loc) + 2;
	char *full = ir_alloc(c->g, n);
	snprintf(full, n, "%s/%s", c->dir, loc);
	char *rd = realpath(c->dir, NULL), *rf = realpath(full, NULL);
	int ok = rd && rf && strncmp(rf, rd, strlen(rd)) == 0 && rf[strlen(rd)] == '/';
	if (!rf)
		onnx_fail(c, "%s: cannot open external data file '%s': %s", what, loc, strerror(errno));
	else if (!ok)
		onnx_fail(c, "%s: external data location '%s' leaves the model's directory", what, loc);
	free(rd);
	free(rf);
	return ok ? full : NULL;
}

static int read_external(OnnxCtx *c, const Onnx__TensorProto *tp, size_t bytes, const char *what,
			 void *out)
{
	const char *loc = NULL;
	long long off = 0, len = -1;
	for (size_t i = 0; i < tp->n_external_data; i++) {
		const char *k = tp->external_data[i]->key, *v = tp->external_data[i]->value;
		if (k && v && strcmp(k, "location") == 0) loc = v;
		if (k && v && strcmp(k, "offset") == 0) off = strtoll(v, NULL, 10);
		if (k && v && strcmp(k, "length") == 0) len = strtoll(v, NULL, 10);
	}
	if (!loc)
		return onnx_fail(c, "%s: external data without a location", what);
	if (off < 0 || (len >= 0 && (size_t)len != bytes))
		return onnx_fail(c, "%s: external data offset %lld / length %lld do not fit its %zu bytes",
				 what, off, len, bytes);
	char *full = external_path(c, loc, what);
	if (!full)
		return -1;
	FILE *f = fopen(full, "rb");
	if (!f)
		return onnx_fail(c, "%s: cannot open external data file '%s': %s", what, loc, strerror(errno));
	int ok = fseek(f, (long)off, SEEK_SET) == 0 && fread(out, 1, bytes, f) == bytes;
	fclose(f);
	if (!ok)
		return onnx_fail(c, "%s: external data file '%s' is too short (%zu bytes needed at offset %lld)",
				 what, loc, bytes, off);
	return 0;
}

static int tensor_shape(OnnxCtx *c, const Onnx__TensorProto *tp, const char *what, Shape *s)
{
	if (tp->n_dims > IR_MAX_RANK)
		return onnx_fail(c, "%s has rank %zu (at most %d is supported)", what, tp->n_dims, IR_MAX_RANK);
	s->rank = (int)tp->n_dims;
	double numel = 1;
	for (int i = 0; i < s->rank; i++) {
		if (tp->dims[i] < 0 || tp->dims[i] > INT32_MAX)
			return onnx_fail(c, "%s has a bad dimension %lld", what, (long long)tp->dims[i]);
		s->d[i] = tp->dims[i];
		numel *= (double)s->d[i];
	}
	if (numel > 68719476736.0) /* 2^36 elements: more than any device holds */
		return onnx_fail(c, "%s has too many elements for its shape to be real", what);
	return 0;
}

/* decode the elements into a malloc'd buffer of dt-typed values */
static void *tensor_bytes(OnnxCtx *c, const Onnx__TensorProto *tp, DType dt, const Shape *s,
			  const char *what)
{
	int64_t numel = ir_numel(s);
	size_t bytes = numel * ir_dt_size(dt);
	void *buf = malloc(bytes ? bytes : 1);
	if (!buf) {
		onnx_fail(c, "%s: out of memory for %zu bytes", what, bytes);
		return NULL;
	}
	int rc;
	if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
		rc = read_external(c, tp, bytes, what, buf);
	else if (tp->has_raw_data)
		rc = tp->raw_data.len == bytes ? (memcpy(buf, tp->raw_data.data, bytes), 0)
		     : onnx_fail(c, "%s holds %zu bytes of raw data for %lld elements of %s", what,
				 tp->raw_data.len, (long long)numel, ir_dt_name(dt));
	else
		rc = read_typed(c, tp, dt, numel, s, what, buf);
	if (rc < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void set_ints_from(OnnxCtx *c, OTensor *t, const void *buf)
{
	int64_t n = ir_numel(&t->shape);
	t->iv = ir_alloc(c->g, (n ? n : 1) * sizeof *t->iv);
	for (int64_t i = 0; i < n; i++) {
		switch (t->dt) {
		case DT_I64: t->iv[i] = ((const int64_t *)buf)[i]; break;
		case DT_I32: t->iv[i] = ((const int32_t *)buf)[i]; break;
		default: t->iv[i] = ((const uint8_t *)buf)[i]; break; /* bool, u8 */
		}
	}
}

int onnx_tensor_read(OnnxCtx *c, const Onnx__TensorProto *tp, OTensor *t, const char *what, int as_param)
{
	DType dt;
	if (!tp->has_data_type || onnx_dtype(tp->data_type, &dt) < 0)
		return onnx_fail(c, "%s has element type %s, which is not supported", what,
				 onnx_dtype_name(tp->has_data_type ? tp->data_type : 0));
	Shape s;
	if (tensor_shape(c, tp, what, &s) < 0)
		return -1;
	void *buf = tensor_bytes(c, tp, dt, &s, what);
	if (!buf)
		return -1;
	t->dt = dt;
	t->shape = s;
	if (ir_dt_is_float(dt) && as_param) {
		t->v = ir_value(c->g, V_PARAM, t->name, dt, s, buf);
	} else if (ir_dt_is_float(dt)) {
		size_t bytes = ir_numel(&s) * ir_dt_size(dt);
		t->data = memcpy(ir_alloc(c->g, bytes ? bytes : 1), buf, bytes);
		t->host = 1;
	} else {
		set_ints_from(c, t, buf);
		t->host = 1;
	}
	free(buf);
	return 0;
}

/* ---- host constants ---- */

static int any_sym(const OTensor *t)
{
	if (t->sym)
		for (int64_t i = 0; i < ir_numel(&t->shape); i++)
			if (t->sym[i])
				return 1;
	return 0;
}

static void store_int(DType dt, void *out, int64_t i, int64_t x)
{
	switch (dt) {
	case DT_I64: ((int64_t *)out)[i] = x; break;
	case DT_I32: ((int32_t *)out)[i] = (int32_t)x; break;
	case DT_BOOL: ((uint8_t *)out)[i] = x != 0; break;
	case DT_U8: ((uint8_t *)out)[i] = (uint8_t)x; break;
	case DT_F32: ((float *)out)[i] = (float)x; break;
	case DT_F64: ((double *)out)[i] = (double)x; break;
	default: DLCC_ASSERT(!"integer view of a half-precision constant");
	}
}

Value *onnx_value(OnnxCtx *c, OTensor *t, const char *user)
{
	if (t->v)
		return t->v;
	DLCC_ASSERT(t->host);
	if (any_sym(t)) {
		onnx_fail(c, "%s: tensor '%s' depends on the batch size N and can only be used as a shape",
			  user, t->name);
		return NULL;
	}
	void *bytes = t->data;
	if (!bytes) {
		int64_t n = ir_numel(&t->shape);
		bytes = ir_alloc(c->g, (n ? n : 1) * ir_dt_size(t->dt));
		for (int64_t i = 0; i < n; i++)
			store_int(t->dt, bytes, i, t->iv[i]);
	}
	t->v = ir_value(c->g, V_CONST, t->name, t->dt, t->shape, bytes);
	return t->v;
}

void onnx_host_ints(OnnxCtx *c, OTensor *t)
{
	if (!t->host || t->iv || !t->data || (t->dt != DT_F32 && t->dt != DT_F64))
		return; /* half-precision constants never carry shapes: need_ints reports them */
	int64_t n = ir_numel(&t->shape);
	t->iv = ir_alloc(c->g, (n ? n : 1) * sizeof *t->iv);
	for (int64_t i = 0; i < n; i++) {
		t->iv[i] = t->dt == DT_F32 ? (int64_t)((const float *)t->data)[i]
					   : (int64_t)((const double *)t->data)[i];
	}
}

int onnx_const_ints(OnnxCtx *c, OTensor *t, const char *user, const char *what, int64_t **v, int *n)
{
	if (!t->host || !t->iv)
		return onnx_fail(c, "%s: %s '%s' must be a compile-time integer constant", user, what, t->name);
	if (t->shape.rank > 1)
		return onnx_fail(c, "%s: %s '%s' must be a 1-D list", user, what, t->name);
	if (any_sym(t))
		return onnx_fail(c, "%s: %s '%s' depends on the batch size N", user, what, t->name);
	*v = t->iv;
	*n = (int)ir_numel(&t->shape);
	return 0;
}

void onnx_set_ints(OnnxCtx *c, OTensor *t, DType dt, Shape s, const int64_t *iv, const unsigned char *sym)
{
	int64_t n = ir_numel(&s);
	t->dt = dt;
	t->shape = s;
	t->host = 1;
	t->iv = memcpy(ir_alloc(c->g, (n ? n : 1) * sizeof *iv), iv, n * sizeof *iv);
	t->sym = NULL;
	for (int64_t i = 0; sym && i < n; i++)
		if (sym[i]) {
			t->sym = memcpy(ir_alloc(c->g, n), sym, n);
			break;
		}
}
