/*
 * data.h — data sets for `dlcc train` / `dlcc run`: .npy arrays checked against an artifact's
 * tensor infos, converted to the artifact's dtypes, and gathered into batches.
 */
#ifndef DLCC_DATA_H
#define DLCC_DATA_H

#include "npy.h"
#include "tools/cli.h"

typedef struct {
	const char *name, *path;
	NpyArray a;
	size_t row_bytes; /* bytes per sample */
} DataArray;

typedef struct {
	int n;            /* arrays */
	DataArray *arr;   /* in the artifact's input order */
	int64_t samples;
} DataSet;

/* NAME=FILE arguments, matched to the artifact's inputs by name (a single input may omit NAME=). */
void data_inputs(DataSet *d, const Artifact *a, const dlcc_model *m, int nspec, char **specs);
/* the label file checked against the label info (class ids in range for cross_entropy) */
void data_label(DataArray *out, const Artifact *a, const dlcc_model *m, const char *path, int64_t samples);
/* copy rows idx[0..b) of arr into dst */
void data_gather(const DataArray *arr, const int64_t *idx, int b, void *dst);
void data_free(DataSet *d);

#endif
