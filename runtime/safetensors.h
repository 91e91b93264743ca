/*
 * safetensors.h — reading and writing .safetensors checkpoints.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value"}}
 * then the data; offsets are relative to the end of the header. dtypes: F32 F64 F16 BF16 I64
 * I32 U8 BOOL. Errors are one line "FILE: what is wrong".
 */
#ifndef DLCC_SAFETENSORS_H
#define DLCC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "dlcc/dlcc.h"

typedef struct {
	char *name;
	dlcc_dtype dtype;
	int rank;
	int64_t dims[DLCC_MAX_RANK];
	const void *data; /* into StFile.buf */
	size_t nbytes;
} StTensor;

typedef struct {
	unsigned char *buf; /* the whole file */
	size_t size;
	int ntensors;
	StTensor *tensors;  /* in file header order */
	int nmeta;
	char **meta;        /* nmeta key/value pairs: meta[2i], meta[2i+1] */
} StFile;

/* What st_save writes: tensors in the order given. */
typedef struct {
	const char *name;
	dlcc_dtype dtype;
	int rank;
	const int64_t *dims;
	const void *data;
} StEntry;

int st_load(const char *path, StFile *f, char *err, size_t errlen);
void st_free(StFile *f);
const StTensor *st_find(const StFile *f, const char *name);
const char *st_meta(const StFile *f, const char *key); /* NULL if absent */
/* meta: nmeta key/value pairs (meta[2i], meta[2i+1]), may be NULL */
int st_save(const char *path, const StEntry *t, int n, const char *const *meta, int nmeta,
	    char *err, size_t errlen);
const char *st_dtype_name(dlcc_dtype dt); /* "F32", ... */

#endif
