/*
 * npy.h — NumPy .npy files: read, write, convert between dtypes.
 *
 * Supported: format versions 1.0, 2.0 and 3.0; C order; little-endian dtypes
 * '<f4' '<f8' '<f2' '<i8' '<i4' '|u1' '|b1'. Errors are one line "FILE: what is wrong".
 */
#ifndef DLCC_NPY_H
#define DLCC_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "dlcc/dlcc.h"

typedef struct {
	dlcc_dtype dtype;
	int rank;
	int64_t dims[DLCC_MAX_RANK];
	void *data;    /* malloc'd, C order */
	size_t nbytes;
} NpyArray;

int npy_load(const char *path, NpyArray *out, char *err, size_t errlen);
int npy_save(const char *path, dlcc_dtype dt, int rank, const int64_t *dims, const void *data,
	     char *err, size_t errlen);
void npy_free(NpyArray *a);
int64_t npy_numel(const NpyArray *a);
/* Convert a's elements to dtype `to` in place (floats round as C casts do, fp16/bf16 to
 * nearest even; integers to floats exactly where representable; floats to integers truncate
 * and must be finite). */
int npy_convert(NpyArray *a, dlcc_dtype to, char *err, size_t errlen);
/* numpy's name of a dtype: "float32", ... */
const char *npy_dtype_name(dlcc_dtype dt);

#endif
