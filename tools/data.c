/*
 * data.c — loading and checking the arrays given to `dlcc train` and `dlcc run`.
 *
 * An artifact's input dims may carry the batch (-k = k*N); a data file holds all samples along
 * its first axis, so a file matches an input when its first extent is a multiple of k and the
 * other extents agree. Wrong shapes, dtypes that cannot be converted and out-of-range class ids
 * are bad input (exit 2), reported with the file name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/data.h"

static void shape_str(const int64_t *d, int rank, char *buf, size_t len, int batch_sym)
{
	size_t o = snprintf(buf, len, "[");
	for (int i = 0; i < rank && o < len; i++) {
		if (d[i] < 0 && batch_sym)
			o += snprintf(buf + o, len - o, "%s%s", i ? "," : "", d[i] == -1 ? "N" : "kN");
		else
			o += snprintf(buf + o, len - o, "%s%lld", i ? "," : "", (long long)d[i]);
	}
	if (o < len)
		snprintf(buf + o, len - o, "]");
}

/* samples in `a` for tensor info `t`; dies when the shapes disagree */
static int64_t match_shape(const char *path, const NpyArray *a, const dlcc_tensor_info *t)
{
	char want[128], got[128];
	shape_str(t->dims, t->rank, want, sizeof want, 1);
	shape_str(a->dims, a->rank, got, sizeof got, 0);
	int ok = a->rank == t->rank && t->rank > 0 && t->dims[0] < 0 && a->dims[0] % -t->dims[0] == 0;
	for (int i = 1; ok && i < t->rank; i++)
		ok = t->dims[i] == a->dims[i];
	if (!ok)
		die(EXIT_USAGE, "%s: shape %s does not match %s '%s' %s", path, got,
		    t->rank && t->dims[0] < 0 ? "input" : "fixed-shape input", t->name, want);
	return a->dims[0] / -t->dims[0];
}

static void load_as(DataArray *d, const char *path, const dlcc_tensor_info *t)
{
	char err[512];
	d->path = path;
	d->name = t->name;
	if (npy_load(path, &d->a, err, sizeof err) < 0)
		die(EXIT_USAGE, "%s", err);
	if (d->a.dtype != t->dtype && npy_convert(&d->a, t->dtype, err, sizeof err) < 0)
		die(EXIT_USAGE, "%s", err);
}

static int64_t add_array(DataArray *d, const char *path, const dlcc_tensor_info *t)
{
	load_as(d, path, t);
	int64_t s = match_shape(path, &d->a, t);
	d->row_bytes = s ? d->a.nbytes / s : 0;
	return s;
}

void data_inputs(DataSet *d, const Artifact *a, const dlcc_model *m, int nspec, char **specs)
{
	int n = a->num_inputs(m);
	d->n = n;
	d->arr = calloc(n, sizeof *d->arr);
	d->samples = -1;
	for (int s = 0; s < nspec; s++) {
		char *eq = strchr(specs[s], '=');
		const char *path = eq ? eq + 1 : specs[s];
		int k = -1;
		for (int i = 0; i < n; i++)
			if (eq ? (strlen(a->input(m, i)->name) == (size_t)(eq - specs[s]) &&
				  !strncmp(a->input(m, i)->name, specs[s], eq - specs[s]))
			       : n == 1)
				k = i;
		if (k < 0)
			die(EXIT_USAGE, "--input %s: the model has no input of that name (it has '%s'%s)",
			    specs[s], a->input(m, 0)->name, n > 1 ? ", ..." : "");
		int64_t cnt = add_array(&d->arr[k], path, a->input(m, k));
		if (d->samples >= 0 && cnt != d->samples)
			die(EXIT_USAGE, "%s: %lld samples, but other inputs have %lld", path,
			    (long long)cnt, (long long)d->samples);
		d->samples = cnt;
	}
	for (int i = 0; i < n; i++)
		if (!d->arr[i].path)
			die(EXIT_USAGE, "input '%s' is not given (--input %s=FILE.npy)", a->input(m, i)->name,
			    a->input(m, i)->name);
}

static void check_classes(const DataArray *l, int64_t classes)
{
	const int64_t *y = l->a.data;
	int64_t n = npy_numel(&l->a);
	for (int64_t i = 0; i < n; i++)
		if (y[i] < 0 || y[i] >= classes)
			die(EXIT_USAGE, "%s: class id %lld at index %lld is out of range [0, %lld)", l->path,
			    (long long)y[i], (long long)i, (long long)classes);
}

void data_label(DataArray *out, const Artifact *a, const dlcc_model *m, const char *path, int64_t samples)
{
	const dlcc_tensor_info *t = a->label(m);
	if (!t)
		die(EXIT_USAGE, "--label: this artifact's loss takes no label");
	int64_t cnt = add_array(out, path, t);
	if (cnt != samples)
		die(EXIT_USAGE, "%s: %lld labels for %lld samples", path, (long long)cnt, (long long)samples);
	if (!strcmp(a->loss_name(m), "cross_entropy")) {
		const dlcc_tensor_info *o = a->output(m, 0);
		check_classes(out, o->dims[o->rank - 1]);
	}
}

void data_gather(const DataArray *arr, const int64_t *idx, int b, void *dst)
{
	for (int i = 0; i < b; i++)
		memcpy((char *)dst + i * arr->row_bytes, (char *)arr->a.data + idx[i] * arr->row_bytes,
		       arr->row_bytes);
}

void data_free(DataSet *d)
{
	for (int i = 0; i < d->n; i++)
		npy_free(&d->arr[i].a);
	free(d->arr);
}
