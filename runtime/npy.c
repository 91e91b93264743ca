/*
 * npy.c — reading and writing NumPy .npy files (format 1.0, 2.0, 3.0).
 *
 * A file is the magic "\x93NUMPY", a major/minor version, the header length (2 bytes little-
 * endian in 1.0, 4 bytes in 2.0/3.0), an ASCII (3.0: UTF-8) Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and a newline to a multiple of 64 bytes, then the raw data. The reader
 * parses the dict properly (quotes, tuples, True/False) rather than searching for substrings,
 * rejects big-endian, Fortran-order and unsupported dtypes with a message saying what to do,
 * and checks that the data is all there. The writer emits version 1.0 (2.0 when the header
 * would not fit). npy_convert changes the element type, e.g. float64 features to float32 or
 * int32 labels to int64, going through int64 between integer types and double otherwise.
 */
#include "npy.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "rt_half.h"

static const struct { const char *descr; dlcc_dtype dt; const char *name; } dtypes[] = {
	{ "<f4", DLCC_F32, "float32" }, { "<f8", DLCC_F64, "float64" },
	{ "<f2", DLCC_F16, "float16" }, { "<i8", DLCC_I64, "int64" },
	{ "<i4", DLCC_I32, "int32" },   { "|u1", DLCC_U8, "uint8" },
	{ "|b1", DLCC_BOOL, "bool" },
};
#define NDTYPES (int)(sizeof dtypes / sizeof *dtypes)

const char *npy_dtype_name(dlcc_dtype dt)
{
	for (int i = 0; i < NDTYPES; i++)
		if (dtypes[i].dt == dt)
			return dtypes[i].name;
	return dt == DLCC_BF16 ? "bfloat16" : "?";
}

int64_t npy_numel(const NpyArray *a)
{
	int64_t n = 1;
	for (int i = 0; i < a->rank; i++)
		n *= a->dims[i];
	return n;
}

void npy_free(NpyArray *a)
{
	free(a->data);
	memset(a, 0, sizeof *a);
}

/* ---- the header dict ---- */
typedef struct {
	const char *p, *end;
	char descr[16];
	int fortran, have_descr, have_fortran, have_shape;
	int rank;
	int64_t dims[DLCC_MAX_RANK];
} Hdr;

static void skip_ws(Hdr *h)
{
	while (h->p < h->end && isspace((unsigned char)*h->p))
		h->p++;
}

static int eat(Hdr *h, char c)
{
	skip_ws(h);
	if (h->p < h->end && *h->p == c) {
		h->p++;
		return 1;
	}
	return 0;
}

/* a quoted Python string into buf; 0 on malformed input */
static int parse_str(Hdr *h, char *buf, size_t len)
{
	skip_ws(h);
	if (h->p >= h->end || (*h->p != '\'' && *h->p != '"'))
		return 0;
	char q = *h->p++;
	size_t n = 0;
	while (h->p < h->end && *h->p != q) {
		if (n + 1 < len)
			buf[n++] = *h->p;
		h->p++;
	}
	buf[n] = 0;
	return h->p < h->end && *h->p++ == q;
}

static int parse_shape(Hdr *h)
{
	if (!eat(h, '('))
		return 0;
	h->rank = 0;
	int64_t numel = 1;
	while (!eat(h, ')')) {
		skip_ws(h);
		char *e;
		errno = 0;
		long long v = strtoll(h->p, &e, 10);
		if (e == h->p || errno || v < 0 || h->rank == DLCC_MAX_RANK ||
		    (v && numel > (INT64_C(1) << 48) / v))
			return 0; /* not a number, too many dimensions, or absurdly large */
		numel *= v;
		h->dims[h->rank++] = v;
		h->p = e;
		if (!eat(h, ',') && (skip_ws(h), h->p >= h->end || *h->p != ')'))
			return 0;
	}
	h->have_shape = 1;
	return 1;
}

static int parse_bool(Hdr *h, int *out)
{
	skip_ws(h);
	size_t left = (size_t)(h->end - h->p);
	if (left >= 4 && !strncmp(h->p, "True", 4))
		return h->p += 4, *out = 1, 1;
	if (left >= 5 && !strncmp(h->p, "False", 5))
		return h->p += 5, *out = 0, 1;
	return 0;
}

static int parse_entry(Hdr *h)
{
	char key[32];
	if (!parse_str(h, key, sizeof key) || !eat(h, ':'))
		return 0;
	if (!strcmp(key, "descr"))
		return h->have_descr = parse_str(h, h->descr, sizeof h->descr);
	if (!strcmp(key, "fortran_order"))
		return h->have_fortran = parse_bool(h, &h->fortran);
	if (!strcmp(key, "shape"))
		return parse_shape(h);
	return 0;
}

static int parse_header(Hdr *h)
{
	if (!eat(h, '{'))
		return 0;
	while (!eat(h, '}')) {
		if (!parse_entry(h))
			return 0;
		if (!eat(h, ',') && (skip_ws(h), h->p >= h->end || *h->p != '}'))
			return 0;
	}
	return h->have_descr && h->have_fortran && h->have_shape;
}

/* descr -> dtype, or -1 with the reason. Byte order is meaningless for 1-byte types; '='
 * (native) is little-endian on every host dlcc runs on. */
static int descr_dtype(const char *path, const char *d, dlcc_dtype *dt, char *err, size_t errlen)
{
	int one_byte = !strcmp(d + 1, "u1") || !strcmp(d + 1, "b1");
	if (d[0] == '>' && !one_byte)
		return rt_path_err(err, errlen, path, "big-endian arrays ('%s') are not supported; "
			       "save with arr.astype(arr.dtype.newbyteorder('<'))", d);
	for (int i = 0; i < NDTYPES && d[0]; i++) {
		const char *want = dtypes[i].descr;
		if (!strcmp(d + 1, want + 1) && (d[0] == want[0] || d[0] == '=' || one_byte)) {
			*dt = dtypes[i].dt;
			return 0;
		}
	}
	return rt_path_err(err, errlen, path, "dtype '%s' is not supported (use float32, float64, "
		       "float16, int64, int32, uint8 or bool)", d);
}

/* ---- reading ---- */
static int read_all(const char *path, unsigned char **buf, size_t *size, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return rt_path_err(err, errlen, path, "cannot open: %s", strerror(errno));
	size_t cap = 1 << 16, n = 0, got;
	unsigned char *b = malloc(cap);
	while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			unsigned char *nb = realloc(b, cap *= 2);
			if (!nb)
				free(b);
			b = nb;
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (!b || bad) {
		free(b);
		return rt_path_err(err, errlen, path, bad ? "read error" : "out of memory");
	}
	*buf = b, *size = n;
	return 0;
}

/* Parse magic and header of buf; on success *data_off is where the data starts. */
static int parse_npy(const char *path, const unsigned char *b, size_t n, Hdr *h, size_t *data_off,
		     char *err, size_t errlen)
{
	if (n < 10 || memcmp(b, "\x93NUMPY", 6))
		return rt_path_err(err, errlen, path, "not a .npy file (bad magic)");
	int major = b[6];
	if (major < 1 || major > 3)
		return rt_path_err(err, errlen, path, "unsupported .npy format version %d.%d", major, b[7]);
	size_t pre = major == 1 ? 10 : 12, hl;
	if (n < pre)
		return rt_path_err(err, errlen, path, "truncated header");
	hl = major == 1 ? (size_t)b[8] | (size_t)b[9] << 8
			: (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
	if (n < pre + hl)
		return rt_path_err(err, errlen, path, "truncated header (%zu of %zu bytes)", n - pre, hl);
	memset(h, 0, sizeof *h);
	h->p = (const char *)b + pre, h->end = (const char *)b + pre + hl;
	if (!parse_header(h))
		return rt_path_err(err, errlen, path, "malformed header: %.*s", (int)(hl < 120 ? hl : 120),
			       (const char *)b + pre);
	*data_off = pre + hl;
	return 0;
}

int npy_load(const char *path, NpyArray *out, char *err, size_t errlen)
{
	unsigned char *b = NULL;
	size_t n = 0, off = 0;
	Hdr h;
	dlcc_dtype dt = DLCC_F32;
	memset(out, 0, sizeof *out);
	if (read_all(path, &b, &n, err, errlen))
		return -1;
	int rc = parse_npy(path, b, n, &h, &off, err, errlen);
	if (!rc && h.fortran)
		rc = rt_path_err(err, errlen, path, "Fortran-order arrays are not supported; save with "
			     "np.ascontiguousarray");
	if (!rc)
		rc = descr_dtype(path, h.descr, &dt, err, errlen);
	if (rc) {
		free(b);
		return -1;
	}
	out->dtype = dt, out->rank = h.rank;
	memcpy(out->dims, h.dims, sizeof h.dims);
	out->nbytes = (size_t)npy_numel(out) * rt_dtype_size(dt);
	if (n - off < out->nbytes) {
		free(b);
		return rt_path_err(err, errlen, path, "truncated: %zu data bytes expected, %zu present",
			       out->nbytes, n - off);
	}
	memmove(b, b + off, out->nbytes);
	out->data = b;
	return 0;
}

/* ---- writing ---- */
static size_t format_header(char *hdr, size_t cap, const char *descr, int rank, const int64_t *dims)
{
	size_t k = (size_t)snprintf(hdr, cap, "{'descr': '%s', 'fortran_order': False, 'shape': (",
				    descr);
	for (int i = 0; i < rank; i++)
		k += (size_t)snprintf(hdr + k, cap - k, "%s%lld", i ? ", " : "", (long long)dims[i]);
	k += (size_t)snprintf(hdr + k, cap - k, "%s), }", rank == 1 ? "," : "");
	return k;
}

int npy_save(const char *path, dlcc_dtype dt, int rank, const int64_t *dims, const void *data,
	     char *err, size_t errlen)
{
	const char *descr = NULL;
	for (int i = 0; i < NDTYPES; i++)
		if (dtypes[i].dt == dt)
			descr = dtypes[i].descr;
	if (!descr)
		return rt_path_err(err, errlen, path, "%s has no .npy dtype; convert to float32 first",
			       npy_dtype_name(dt));
	if (rank < 0 || rank > DLCC_MAX_RANK)
		return rt_path_err(err, errlen, path, "rank %d is not supported", rank);
	char hdr[512];
	size_t k = format_header(hdr, sizeof hdr - 80, descr, rank, dims);
	int v2 = k + 11 > 65535; /* never with rank <= 8, kept for the format's sake */
	size_t pre = v2 ? 12 : 10, total = (pre + k + 1 + 63) / 64 * 64;
	memset(hdr + k, ' ', total - pre - k - 1);
	hdr[total - pre - 1] = '\n';
	size_t hl = total - pre, n = 1;
	for (int i = 0; i < rank; i++)
		n *= (size_t)dims[i];
	unsigned char pfx[12] = { 0x93, 'N', 'U', 'M', 'P', 'Y', v2 ? 2 : 1, 0,
				  hl & 0xff, (hl >> 8) & 0xff, (hl >> 16) & 0xff, hl >> 24 };
	FILE *f = fopen(path, "wb");
	if (!f)
		return rt_path_err(err, errlen, path, "cannot create: %s", strerror(errno));
	int ok = fwrite(pfx, 1, pre, f) == pre && fwrite(hdr, 1, hl, f) == hl &&
		 fwrite(data, rt_dtype_size(dt), n, f) == n;
	ok = (fclose(f) == 0) && ok;
	return ok ? 0 : rt_path_err(err, errlen, path, "write failed: %s", strerror(errno));
}

/* ---- dtype conversion ---- */
static int is_int(dlcc_dtype dt)
{
	return dt == DLCC_I64 || dt == DLCC_I32 || dt == DLCC_U8 || dt == DLCC_BOOL;
}

static double get_d(dlcc_dtype dt, const void *p, size_t i)
{
	switch (dt) {
	case DLCC_F32: return ((const float *)p)[i];
	case DLCC_F64: return ((const double *)p)[i];
	case DLCC_F16: return rt_f16_to_f32(((const uint16_t *)p)[i]);
	case DLCC_BF16: return rt_bf16_to_f32(((const uint16_t *)p)[i]);
	case DLCC_I64: return (double)((const int64_t *)p)[i];
	case DLCC_I32: return ((const int32_t *)p)[i];
	case DLCC_U8: case DLCC_BOOL: return ((const uint8_t *)p)[i];
	}
	return 0;
}

static int64_t get_i(dlcc_dtype dt, const void *p, size_t i)
{
	switch (dt) {
	case DLCC_I64: return ((const int64_t *)p)[i];
	case DLCC_I32: return ((const int32_t *)p)[i];
	case DLCC_U8: case DLCC_BOOL: return ((const uint8_t *)p)[i];
	default: return (int64_t)get_d(dt, p, i);
	}
}

static void put(dlcc_dtype dt, void *p, size_t i, double d, int64_t v, int use_int)
{
	switch (dt) {
	case DLCC_F32: ((float *)p)[i] = use_int ? (float)v : (float)d; break;
	case DLCC_F64: ((double *)p)[i] = use_int ? (double)v : d; break;
	case DLCC_F16: ((uint16_t *)p)[i] = rt_f32_to_f16(use_int ? (float)v : (float)d); break;
	case DLCC_BF16: ((uint16_t *)p)[i] = rt_f32_to_bf16(use_int ? (float)v : (float)d); break;
	case DLCC_I64: ((int64_t *)p)[i] = v; break;
	case DLCC_I32: ((int32_t *)p)[i] = (int32_t)v; break;
	case DLCC_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
	case DLCC_BOOL: ((uint8_t *)p)[i] = v != 0; break;
	}
}

int npy_convert(NpyArray *a, dlcc_dtype to, char *err, size_t errlen)
{
	if (a->dtype == to)
		return 0;
	size_t n = (size_t)npy_numel(a), nb = n * rt_dtype_size(to);
	void *out = malloc(nb ? nb : 1);
	if (!out)
		return rt_path_err(err, errlen, "npy_convert", "out of memory");
	int from_int = is_int(a->dtype), to_int = is_int(to);
	for (size_t i = 0; i < n; i++) {
		double d = from_int ? 0 : get_d(a->dtype, a->data, i);
		if (to_int && !from_int && !isfinite(d)) {
			free(out);
			return rt_path_err(err, errlen, "npy_convert", "element %zu is %g; cannot convert "
				       "%s to %s", i, d, npy_dtype_name(a->dtype), npy_dtype_name(to));
		}
		int64_t v = from_int ? get_i(a->dtype, a->data, i) : (int64_t)d;
		put(to, out, i, d, v, from_int);
	}
	free(a->data);
	a->data = out, a->dtype = to, a->nbytes = nb;
	return 0;
}
