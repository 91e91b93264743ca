/*
 * test_rt_io.c — .npy and .safetensors files: round trips for every supported dtype and rank,
 * headers written by hand for format versions 2.0/3.0 and for every rejected case (Fortran
 * order, big-endian, unsupported dtype, bad magic, malformed header, truncated data), dtype
 * conversions, and malformed safetensors headers. Files go to a fresh temporary directory.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "npy.h"
#include "rt.h"
#include "safetensors.h"

static char dir[64];

static void mkdir_tmp(void)
{
	strcpy(dir, "/tmp/dlcc_rt_io_XXXXXX");
	cr_assert(mkdtemp(dir));
}

static void rm_tmp(void)
{
	char cmd[100];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static char *path_in(const char *name)
{
	static char buf[4][128];
	static int k;
	char *p = buf[k++ % 4];
	snprintf(p, 128, "%s/%s", dir, name);
	return p;
}

static void write_bytes(const char *path, const void *b, size_t n)
{
	FILE *f = fopen(path, "wb");
	cr_assert(f);
	fwrite(b, 1, n, f);
	fclose(f);
}

/* an .npy file with a hand-written header (version major), then `data` */
static void write_npy_raw(const char *path, int major, const char *dict, const void *data, size_t n)
{
	unsigned char buf[512];
	size_t pre = major == 1 ? 10 : 12, hl = strlen(dict);
	memcpy(buf, "\x93NUMPY", 6);
	buf[6] = (unsigned char)major, buf[7] = 0;
	buf[8] = hl & 0xff, buf[9] = (hl >> 8) & 0xff;
	if (major > 1)
		buf[10] = buf[11] = 0;
	memcpy(buf + pre, dict, hl);
	memcpy(buf + pre + hl, data, n);
	write_bytes(path, buf, pre + hl + n);
}

static void expect_npy_error(const char *path, const char *what)
{
	NpyArray a;
	char err[300];
	cr_assert_eq(npy_load(path, &a, err, sizeof err), -1, "%s loaded", path);
	cr_assert(strstr(err, what), "error '%s' lacks '%s'", err, what);
	cr_assert(strstr(err, path), "error '%s' does not name the file", err);
}

TestSuite(rt_npy, .init = mkdir_tmp, .fini = rm_tmp);

Test(rt_npy, round_trip_every_dtype)
{
	dlcc_dtype dts[] = { DLCC_F32, DLCC_F64, DLCC_F16, DLCC_I64, DLCC_I32, DLCC_U8, DLCC_BOOL };
	int64_t shapes[3][3] = { { 0 }, { 5 }, { 2, 3, 4 } };
	int ranks[3] = { 0, 1, 3 };
	unsigned char data[24 * 8];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (unsigned char)(i * 7 + 1) & 0x3f; /* no NaN patterns, valid bools mod 2 */
	for (size_t d = 0; d < sizeof dts / sizeof *dts; d++)
		for (int s = 0; s < 3; s++) {
			char err[300], *p = path_in("rt.npy");
			cr_assert_eq(npy_save(p, dts[d], ranks[s], shapes[s], data, err, sizeof err), 0,
				     "%s", err);
			NpyArray a;
			cr_assert_eq(npy_load(p, &a, err, sizeof err), 0, "%s", err);
			cr_assert_eq(a.dtype, dts[d]);
			cr_assert_eq(a.rank, ranks[s]);
			for (int r = 0; r < ranks[s]; r++)
				cr_assert_eq(a.dims[r], shapes[s][r]);
			cr_assert_eq(a.nbytes, (size_t)npy_numel(&a) * rt_dtype_size(dts[d]));
			cr_assert(!memcmp(a.data, data, a.nbytes));
			npy_free(&a);
			/* header padded to 64 bytes */
			FILE *f = fopen(p, "rb");
			unsigned char h[10];
			cr_assert_eq(fread(h, 1, 10, f), 10);
			fclose(f);
			cr_assert_eq((10 + h[8] + 256 * h[9]) % 64, 0);
		}
}

Test(rt_npy, versions_2_and_3)
{
	float v[2] = { 1.5f, -2.0f };
	char err[300];
	NpyArray a;
	write_npy_raw(path_in("v2.npy"), 2, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,)}\n", v, 8);
	cr_assert_eq(npy_load(path_in("v2.npy"), &a, err, sizeof err), 0, "%s", err);
	cr_assert_eq(((float *)a.data)[1], -2.0f);
	npy_free(&a);
	write_npy_raw(path_in("v3.npy"), 3, "{'shape': (1, 2), 'fortran_order': False, 'descr': '<f4', }", v, 8);
	cr_assert_eq(npy_load(path_in("v3.npy"), &a, err, sizeof err), 0, "%s", err);
	cr_assert_eq(a.rank, 2);
	cr_assert_eq(a.dims[1], 2);
	npy_free(&a);
}

Test(rt_npy, errors)
{
	float v[4] = { 0 };
	write_npy_raw(path_in("f.npy"), 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", v, 16);
	expect_npy_error(path_in("f.npy"), "Fortran-order arrays are not supported; save with np.ascontiguousarray");
	write_npy_raw(path_in("be.npy"), 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", v, 16);
	expect_npy_error(path_in("be.npy"), "big-endian");
	write_npy_raw(path_in("c8.npy"), 1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", v, 16);
	expect_npy_error(path_in("c8.npy"), "'<c8' is not supported");
	write_npy_raw(path_in("tr.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", v, 16);
	expect_npy_error(path_in("tr.npy"), "truncated");
	write_npy_raw(path_in("bad.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,", v, 0);
	expect_npy_error(path_in("bad.npy"), "malformed header");
	write_npy_raw(path_in("nos.npy"), 1, "{'descr': '<f4', 'fortran_order': False}", v, 0);
	expect_npy_error(path_in("nos.npy"), "malformed header");
	static const char zip[] = "PK\x03\x04 not numpy at all";
	write_bytes(path_in("magic.npy"), zip, sizeof zip - 1);
	expect_npy_error(path_in("magic.npy"), "bad magic");
	static const char shorth[] = "\x93NUMPY\x01\x00\x40\x00{'de";
	write_bytes(path_in("short.npy"), shorth, sizeof shorth - 1);
	expect_npy_error(path_in("short.npy"), "truncated header");
	expect_npy_error(path_in("missing.npy"), "cannot open");
	char err[300];
	int64_t d = 2;
	cr_assert_eq(npy_save(path_in("b.npy"), DLCC_BF16, 1, &d, v, err, sizeof err), -1);
	cr_assert(strstr(err, "bfloat16"), "%s", err);
}

Test(rt_npy, convert)
{
	char err[300];
	double d[4] = { 1.5, -2.25, 1e10, 3.0 };
	NpyArray a = { DLCC_F64, 1, { 4 }, malloc(32), 32 };
	memcpy(a.data, d, 32);
	cr_assert_eq(npy_convert(&a, DLCC_F32, err, sizeof err), 0);
	cr_assert_eq(((float *)a.data)[1], -2.25f);
	cr_assert_eq(a.nbytes, 16);
	cr_assert_eq(npy_convert(&a, DLCC_I64, err, sizeof err), 0);
	cr_assert_eq(((int64_t *)a.data)[0], 1);
	cr_assert_eq(((int64_t *)a.data)[2], 10000000000LL);
	npy_free(&a);
	int32_t lab[3] = { 0, 7, -1 };
	NpyArray b = { DLCC_I32, 1, { 3 }, malloc(12), 12 };
	memcpy(b.data, lab, 12);
	cr_assert_eq(npy_convert(&b, DLCC_I64, err, sizeof err), 0);
	cr_assert_eq(((int64_t *)b.data)[2], -1);
	npy_free(&b);
	uint8_t px[2] = { 255, 3 };
	NpyArray c = { DLCC_U8, 1, { 2 }, malloc(2), 2 };
	memcpy(c.data, px, 2);
	cr_assert_eq(npy_convert(&c, DLCC_F32, err, sizeof err), 0);
	cr_assert_eq(((float *)c.data)[0], 255.0f);
	npy_free(&c);
	float bad[1] = { NAN };
	NpyArray e = { DLCC_F32, 1, { 1 }, malloc(4), 4 };
	memcpy(e.data, bad, 4);
	cr_assert_eq(npy_convert(&e, DLCC_I64, err, sizeof err), -1);
	cr_assert(strstr(err, "cannot convert"), "%s", err);
	npy_free(&e);
}

/* ---- safetensors ---- */
TestSuite(rt_st, .init = mkdir_tmp, .fini = rm_tmp);

Test(rt_st, round_trip_every_dtype)
{
	dlcc_dtype dts[] = { DLCC_F32, DLCC_F64, DLCC_F16, DLCC_BF16, DLCC_I64, DLCC_I32, DLCC_U8, DLCC_BOOL };
	unsigned char data[8][48];
	int64_t dims[8][2];
	StEntry e[9];
	char names[8][32];
	for (int i = 0; i < 8; i++) {
		for (int b = 0; b < 48; b++)
			data[i][b] = (unsigned char)(i * 31 + b) & 1;
		dims[i][0] = 2, dims[i][1] = 3;
		snprintf(names[i], sizeof names[i], i == 3 ? "we\"ird\\name.%d" : "layer.%d", i);
		e[i] = (StEntry){ names[i], dts[i], 2, dims[i], data[i] };
	}
	int64_t step = 42;
	e[8] = (StEntry){ "__step__", DLCC_I64, 0, dims[0], &step };
	const char *meta[] = { "format", "dlcc", "note", "tab\there" };
	char err[300];
	cr_assert_eq(st_save(path_in("a.safetensors"), e, 9, meta, 2, err, sizeof err), 0, "%s", err);
	StFile f;
	cr_assert_eq(st_load(path_in("a.safetensors"), &f, err, sizeof err), 0, "%s", err);
	cr_assert_eq(f.ntensors, 9);
	cr_assert_str_eq(st_meta(&f, "format"), "dlcc");
	cr_assert_str_eq(st_meta(&f, "note"), "tab\there");
	for (int i = 0; i < 8; i++) {
		const StTensor *t = st_find(&f, names[i]);
		cr_assert(t, "%s", names[i]);
		cr_assert_eq(t->dtype, dts[i]);
		cr_assert_eq(t->rank, 2);
		cr_assert_eq(t->dims[1], 3);
		cr_assert_eq(t->nbytes, 6 * rt_dtype_size(dts[i]));
		cr_assert(!memcmp(t->data, data[i], t->nbytes));
		cr_assert_str_eq(f.tensors[i].name, names[i]); /* order kept */
	}
	const StTensor *s = st_find(&f, "__step__");
	int64_t got = 0;
	cr_assert(s && s->rank == 0 && s->nbytes == 8);
	memcpy(&got, s->data, 8);
	cr_assert_eq(got, 42);
	cr_assert_null(st_find(&f, "nope"));
	uint64_t hl;
	memcpy(&hl, f.buf, 8);
	cr_assert_eq(hl % 8, 0);
	st_free(&f);
}

static void expect_st_error(const char *json, size_t data_bytes, const char *what)
{
	unsigned char buf[1024] = { 0 };
	uint64_t hl = strlen(json);
	memcpy(buf, &hl, 8);
	memcpy(buf + 8, json, hl);
	write_bytes(path_in("bad.safetensors"), buf, 8 + hl + data_bytes);
	StFile f;
	char err[300];
	cr_assert_eq(st_load(path_in("bad.safetensors"), &f, err, sizeof err), -1, "%s loaded", json);
	cr_assert(strstr(err, what), "error '%s' lacks '%s'", err, what);
	cr_assert(strstr(err, "bad.safetensors"), "%s", err);
}

Test(rt_st, malformed)
{
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "expected '}'");
	expect_st_error("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, "F8_E4M3 is not supported");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "truncated");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "do not fit");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "lacks dtype, shape");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8, "trailing");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "non-negative");
	expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
			"\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "twice");
	expect_st_error("{\"__metadata__\":{\"k\":1}}", 0, "expected '\"'");
	expect_st_error("{\"a\\q\":{}}", 0, "bad escape");
	/* header length beyond the file */
	unsigned char b[12] = { 0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ' };
	write_bytes(path_in("len.safetensors"), b, sizeof b);
	StFile f;
	char err[300];
	cr_assert_eq(st_load(path_in("len.safetensors"), &f, err, sizeof err), -1);
	cr_assert(strstr(err, "not a safetensors file"), "%s", err);
}

Test(rt_st, unicode_names)
{
	const char *json = "{\"\\u00e9\\ud83d\\ude00\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}";
	unsigned char buf[256] = { 0 };
	uint64_t hl = strlen(json);
	memcpy(buf, &hl, 8);
	memcpy(buf + 8, json, hl);
	buf[8 + hl] = 7;
	write_bytes(path_in("u.safetensors"), buf, 8 + hl + 1);
	StFile f;
	char err[300];
	cr_assert_eq(st_load(path_in("u.safetensors"), &f, err, sizeof err), 0, "%s", err);
	const StTensor *t = st_find(&f, "\xc3\xa9\xf0\x9f\x98\x80");
	cr_assert(t && *(const unsigned char *)t->data == 7);
	st_free(&f);
}
