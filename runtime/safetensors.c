/*
 * safetensors.c — .safetensors checkpoints: a JSON header, then raw little-endian tensors.
 *
 * Writing: tensors go into the header and the data in the order the caller gives (dlcc_save
 * passes parameters, then optimizer state, then the step, so files are byte-for-byte
 * reproducible); the header is padded with spaces to a multiple of 8 bytes so that the data
 * starts aligned. Reading: the whole file is read into memory, then a small recursive-descent
 * JSON parser walks the header. It accepts exactly the shape of a safetensors header (an object
 * of tensor objects with "dtype", "shape", "data_offsets", plus an optional "__metadata__"
 * object of strings), decodes string escapes including \uXXXX, and rejects anything else with
 * the byte position and what it expected. Offsets are checked against the data size and
 * against the tensor's shape and dtype, so a tensor's bytes are always in the file.
 */
#include "safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

static const struct { const char *name; dlcc_dtype dt; } st_dtypes[] = {
	{ "F32", DLCC_F32 }, { "F64", DLCC_F64 }, { "F16", DLCC_F16 }, { "BF16", DLCC_BF16 },
	{ "I64", DLCC_I64 }, { "I32", DLCC_I32 }, { "U8", DLCC_U8 },   { "BOOL", DLCC_BOOL },
};
#define NST (int)(sizeof st_dtypes / sizeof *st_dtypes)

const char *st_dtype_name(dlcc_dtype dt)
{
	for (int i = 0; i < NST; i++)
		if (st_dtypes[i].dt == dt)
			return st_dtypes[i].name;
	return "?";
}

/* ---- JSON ---- */
typedef struct {
	const char *start, *p, *end;
	char why[160]; /* first error */
} Json;

static int jfail(Json *j, const char *what)
{
	if (!j->why[0])
		snprintf(j->why, sizeof j->why, "malformed header at byte %ld: %s",
			 (long)(j->p - j->start), what);
	return 0;
}

static void jws(Json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int jeat(Json *j, char c)
{
	jws(j);
	if (j->p < j->end && *j->p == c)
		return j->p++, 1;
	return 0;
}

static int jexpect(Json *j, char c)
{
	static char msg[32];
	if (jeat(j, c))
		return 1;
	snprintf(msg, sizeof msg, "expected '%c'", c);
	return jfail(j, msg);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
		: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80)
		return o[0] = (char)cp, 1;
	if (cp < 0x800)
		return o[0] = (char)(0xc0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3f)), 2;
	if (cp < 0x10000)
		return o[0] = (char)(0xe0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
		       o[2] = (char)(0x80 | (cp & 0x3f)), 3;
	o[0] = (char)(0xf0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static int jhex4(Json *j, unsigned *cp)
{
	*cp = 0;
	for (int i = 0; i < 4; i++) {
		int h = j->p < j->end ? hexval(*j->p) : -1;
		if (h < 0)
			return jfail(j, "bad \\u escape");
		*cp = *cp << 4 | (unsigned)h, j->p++;
	}
	return 1;
}

/* one escape after the backslash, appended to o; returns bytes written or 0 */
static int jescape(Json *j, char *o)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	char c = *j->p++;
	const char *k = c ? strchr(from, c) : NULL;
	if (k)
		return o[0] = to[k - from], 1;
	unsigned cp, lo;
	if (c != 'u' || !jhex4(j, &cp))
		return jfail(j, "bad escape in string");
	if (cp >= 0xd800 && cp < 0xdc00) { /* surrogate pair */
		if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
			return jfail(j, "unpaired surrogate");
		j->p += 2;
		if (!jhex4(j, &lo) || lo < 0xdc00 || lo > 0xdfff)
			return jfail(j, "unpaired surrogate");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	return put_utf8(o, cp);
}

/* a string, decoded into a malloc'd buffer */
static int jstring(Json *j, char **out)
{
	*out = NULL;
	if (!jexpect(j, '"'))
		return 0;
	char *s = malloc((size_t)(j->end - j->p) + 1);
	size_t n = 0;
	while (s && j->p < j->end && *j->p != '"') {
		if ((unsigned char)*j->p < 0x20)
			break;
		if (*j->p != '\\') {
			s[n++] = *j->p++;
			continue;
		}
		j->p++;
		int k = j->p < j->end ? jescape(j, s + n) : 0;
		if (!k)
			break;
		n += (size_t)k;
	}
	if (!s || j->p >= j->end || *j->p != '"') {
		free(s);
		return jfail(j, "unterminated or invalid string");
	}
	j->p++, s[n] = 0, *out = s;
	return 1;
}

static int juint(Json *j, uint64_t *v)
{
	jws(j);
	if (j->p >= j->end || *j->p < '0' || *j->p > '9')
		return jfail(j, "expected a non-negative integer");
	*v = 0;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		if (*v > (UINT64_MAX - 9) / 10)
			return jfail(j, "integer too large");
		*v = *v * 10 + (uint64_t)(*j->p++ - '0');
	}
	return 1;
}

static int juint_array(Json *j, uint64_t *v, int max, int *n)
{
	*n = 0;
	if (!jexpect(j, '['))
		return 0;
	if (jeat(j, ']'))
		return 1;
	do {
		if (*n == max)
			return jfail(j, "too many elements");
		if (!juint(j, &v[(*n)++]))
			return 0;
	} while (jeat(j, ','));
	return jexpect(j, ']');
}

/* ---- the header ---- */
static int tensor_field(Json *j, StTensor *t, const char *key, uint64_t off[2], int *seen)
{
	uint64_t v[DLCC_MAX_RANK];
	int n;
	if (!strcmp(key, "dtype")) {
		char *s;
		if (!jstring(j, &s))
			return 0;
		int i = 0;
		while (i < NST && strcmp(s, st_dtypes[i].name))
			i++;
		if (i == NST) {
			snprintf(j->why, sizeof j->why, "tensor %s: dtype %s is not supported (F32, F64, "
				 "F16, BF16, I64, I32, U8, BOOL)", t->name, s);
			free(s);
			return 0;
		}
		free(s);
		t->dtype = st_dtypes[i].dt, *seen |= 1;
		return 1;
	}
	if (!strcmp(key, "shape")) {
		if (!juint_array(j, v, DLCC_MAX_RANK, &n))
			return 0;
		t->rank = n, *seen |= 2;
		for (int i = 0; i < n; i++)
			t->dims[i] = (int64_t)v[i];
		return 1;
	}
	if (!strcmp(key, "data_offsets")) {
		if (!juint_array(j, off, 2, &n) || n != 2)
			return jfail(j, "data_offsets must be [begin, end]");
		*seen |= 4;
		return 1;
	}
	return jfail(j, "unknown key in a tensor entry");
}

static int tensor_entry(Json *j, StTensor *t, uint64_t off[2])
{
	int seen = 0;
	if (!jexpect(j, '{'))
		return 0;
	do {
		char *key;
		if (!jstring(j, &key))
			return 0;
		int ok = jexpect(j, ':') && tensor_field(j, t, key, off, &seen);
		free(key);
		if (!ok)
			return 0;
	} while (jeat(j, ','));
	if (!jexpect(j, '}'))
		return 0;
	return seen == 7 ? 1 : jfail(j, "tensor entry lacks dtype, shape or data_offsets");
}

static int meta_entries(Json *j, StFile *f)
{
	if (!jexpect(j, '{'))
		return 0;
	if (jeat(j, '}'))
		return 1;
	do {
		char **m = realloc(f->meta, (size_t)(f->nmeta + 1) * 2 * sizeof *m);
		if (!m)
			return jfail(j, "out of memory");
		f->meta = m;
		m[2 * f->nmeta] = m[2 * f->nmeta + 1] = NULL;
		f->nmeta++;
		if (!jstring(j, &m[2 * f->nmeta - 2]) || !jexpect(j, ':') ||
		    !jstring(j, &m[2 * f->nmeta - 1]))
			return 0;
	} while (jeat(j, ','));
	return jexpect(j, '}');
}

/* Check a tensor's offsets against the data and its shape; set its data pointer. */
static int place_tensor(Json *j, StFile *f, StTensor *t, const uint64_t off[2], size_t data_start)
{
	uint64_t numel = 1, dsize = data_start <= f->size ? f->size - data_start : 0;
	for (int i = 0; i < t->rank; i++)
		numel = t->dims[i] && numel > (UINT64_C(1) << 56) / (uint64_t)t->dims[i]
				? UINT64_MAX / 16 : numel * (uint64_t)t->dims[i];
	if (off[0] > off[1] || off[1] > dsize ||
	    off[1] - off[0] != numel * rt_dtype_size(t->dtype)) {
		snprintf(j->why, sizeof j->why, "tensor %s: data_offsets [%llu, %llu] do not fit its "
			 "shape and dtype or lie beyond the %llu data bytes (truncated file?)",
			 t->name, (unsigned long long)off[0], (unsigned long long)off[1],
			 (unsigned long long)dsize);
		return 0;
	}
	t->data = f->buf + data_start + off[0];
	t->nbytes = (size_t)(off[1] - off[0]);
	return 1;
}

static int header_entry(Json *j, StFile *f, size_t data_start)
{
	char *name;
	if (!jstring(j, &name) || !jexpect(j, ':')) {
		free(name);
		return 0;
	}
	if (!strcmp(name, "__metadata__")) {
		free(name);
		return meta_entries(j, f);
	}
	StTensor *ts = realloc(f->tensors, (size_t)(f->ntensors + 1) * sizeof *ts);
	if (!ts) {
		free(name);
		return jfail(j, "out of memory");
	}
	f->tensors = ts;
	StTensor *t = &ts[f->ntensors++];
	memset(t, 0, sizeof *t);
	t->name = name;
	if (st_find(f, name) != t) {
		snprintf(j->why, sizeof j->why, "tensor %s appears twice", name);
		return 0;
	}
	uint64_t off[2];
	return tensor_entry(j, t, off) && place_tensor(j, f, t, off, data_start);
}

static int parse_st_header(Json *j, StFile *f, size_t data_start)
{
	if (!jexpect(j, '{'))
		return 0;
	if (!jeat(j, '}')) {
		do
			if (!header_entry(j, f, data_start))
				return 0;
		while (jeat(j, ','));
		if (!jexpect(j, '}'))
			return 0;
	}
	jws(j);
	return j->p == j->end ? 1 : jfail(j, "trailing characters after the header object");
}

/* ---- files ---- */
static int slurp(const char *path, StFile *f, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return rt_path_err(err, errlen, path, "cannot open: %s", strerror(errno));
	long n = fseek(fp, 0, SEEK_END) ? -1 : ftell(fp);
	if (n < 0 || fseek(fp, 0, SEEK_SET)) {
		fclose(fp);
		return rt_path_err(err, errlen, path, "cannot read (not a regular file?)");
	}
	f->buf = malloc((size_t)n + 1);
	f->size = f->buf ? fread(f->buf, 1, (size_t)n, fp) : 0;
	fclose(fp);
	if (!f->buf || f->size != (size_t)n)
		return rt_path_err(err, errlen, path, "read error");
	return 0;
}

int st_load(const char *path, StFile *f, char *err, size_t errlen)
{
	memset(f, 0, sizeof *f);
	if (slurp(path, f, err, errlen))
		return st_free(f), -1;
	uint64_t hl = 0;
	for (int i = 7; i >= 0 && f->size >= 8; i--)
		hl = hl << 8 | f->buf[i];
	if (f->size < 8 || hl > f->size - 8) {
		st_free(f);
		return rt_path_err(err, errlen, path, "not a safetensors file (header length %llu, file "
			      "size %zu)", (unsigned long long)hl, f->size);
	}
	Json j = { (const char *)f->buf + 8, (const char *)f->buf + 8, (const char *)f->buf + 8 + hl,
		   "" };
	if (!parse_st_header(&j, f, 8 + (size_t)hl)) {
		rt_path_err(err, errlen, path, "%s", j.why[0] ? j.why : "malformed header");
		st_free(f);
		return -1;
	}
	return 0;
}

void st_free(StFile *f)
{
	for (int i = 0; i < f->ntensors; i++)
		free(f->tensors[i].name);
	for (int i = 0; i < 2 * f->nmeta; i++)
		free(f->meta[i]);
	free(f->tensors), free(f->meta), free(f->buf);
	memset(f, 0, sizeof *f);
}

const StTensor *st_find(const StFile *f, const char *name)
{
	for (int i = 0; i < f->ntensors; i++)
		if (!strcmp(f->tensors[i].name, name))
			return &f->tensors[i];
	return NULL;
}

const char *st_meta(const StFile *f, const char *key)
{
	for (int i = 0; i < f->nmeta; i++)
		if (f->meta[2 * i] && !strcmp(f->meta[2 * i], key))
			return f->meta[2 * i + 1];
	return NULL;
}

/* ---- writing ---- */
static void put_json_string(FILE *fp, const char *s)
{
	fputc('"', fp);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c < 0x20)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

static size_t entry_bytes(const StEntry *t)
{
	size_t n = rt_dtype_size(t->dtype);
	for (int i = 0; i < t->rank; i++)
		n *= (size_t)t->dims[i];
	return n;
}

/* the JSON header into a memory stream, padded with spaces to a multiple of 8 */
static char *build_header(const StEntry *t, int n, const char *const *meta, int nmeta, size_t *len)
{
	char *buf = NULL;
	FILE *fp = open_memstream(&buf, len);
	if (!fp)
		return NULL;
	fputc('{', fp);
	if (nmeta > 0) {
		fputs("\"__metadata__\":{", fp);
		for (int i = 0; i < nmeta; i++) {
			fputs(i ? "," : "", fp);
			put_json_string(fp, meta[2 * i]);
			fputc(':', fp);
			put_json_string(fp, meta[2 * i + 1]);
		}
		fputc('}', fp);
	}
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		fputs(i || nmeta > 0 ? "," : "", fp);
		put_json_string(fp, t[i].name);
		fprintf(fp, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(t[i].dtype));
		for (int d = 0; d < t[i].rank; d++)
			fprintf(fp, "%s%lld", d ? "," : "", (long long)t[i].dims[d]);
		fprintf(fp, "],\"data_offsets\":[%zu,%zu]}", off, off + entry_bytes(&t[i]));
		off += entry_bytes(&t[i]);
	}
	fputc('}', fp);
	fflush(fp);
	while (*len % 8)
		fputc(' ', fp), fflush(fp);
	fclose(fp);
	return buf;
}

int st_save(const char *path, const StEntry *t, int n, const char *const *meta, int nmeta,
	    char *err, size_t errlen)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(st_dtype_name(t[i].dtype), "?") || t[i].rank < 0 || t[i].rank > DLCC_MAX_RANK)
			return rt_path_err(err, errlen, path, "tensor %s: bad dtype or rank", t[i].name);
	size_t hl;
	char *hdr = build_header(t, n, meta, nmeta, &hl);
	if (!hdr)
		return rt_path_err(err, errlen, path, "out of memory");
	FILE *fp = fopen(path, "wb");
	if (!fp) {
		free(hdr);
		return rt_path_err(err, errlen, path, "cannot create: %s", strerror(errno));
	}
	unsigned char len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)((uint64_t)hl >> (8 * i));
	int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(hdr, 1, hl, fp) == hl;
	for (int i = 0; ok && i < n; i++)
		ok = fwrite(t[i].data, 1, entry_bytes(&t[i]), fp) == entry_bytes(&t[i]);
	ok = (fclose(fp) == 0) && ok;
	free(hdr);
	return ok ? 0 : rt_path_err(err, errlen, path, "write failed: %s", strerror(errno));
}
