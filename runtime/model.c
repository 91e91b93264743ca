/*
 * model.c — the public API of include/dlcc/dlcc.h, generic over one RtModelDesc.
 *
 * Every artifact's generated code defines `const RtModelDesc dlcc_model_desc`: tensors, offsets
 * in the two device blocks, the initial parameter block and the two schedules. This file turns
 * it into the API: dlcc_create makes an Rt, allocates the parameter block and the workspace and
 * uploads param_init around the optimizer state, which starts at zero; dlcc_train_step and
 * dlcc_infer copy host tensors to their workspace offsets, run the generated schedule and copy
 * results back; dlcc_save/dlcc_load move parameters, optimizer state ("<param>.<slot>") and the
 * step count ("__step__") through .safetensors. Parameters cross the API as float32 and are
 * converted when the artifact stores them otherwise (fp64 artifacts).
 *
 * dlcc_model_desc is a weak reference so that programs that link libdlcc_rt without a model
 * (the dlcc compiler itself, unit tests) still link; dlcc_create then fails cleanly.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "rt_half.h"
#include "safetensors.h"

extern const RtModelDesc dlcc_model_desc __attribute__((weak));

#define API __attribute__((visibility("default")))

struct dlcc_model {
	const RtModelDesc *d;
	Rt *rt;
	char *params, *ws; /* device blocks */
	int64_t step;
	int64_t skipped;   /* fp16 steps skipped by loss scaling (inf/NaN gradients) */
	float ls_k;        /* loss scaling: the state k after the last step or load */
	int64_t calls;     /* dlcc_train_step calls that succeeded */
	char err[600];
};

static int m_fail(dlcc_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int m_fail(dlcc_model *m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->err, sizeof m->err, fmt, ap);
	va_end(ap);
	return -1;
}

/* the Rt's error, prefixed with what we were doing */
static int m_rt_fail(dlcc_model *m, const char *what)
{
	return m_fail(m, "%s: %s", what, rt_error(m->rt));
}

static size_t t_bytes(const RtTensorDesc *t, int64_t batch)
{
	return (size_t)rt_numel(&t->info, batch) * rt_dtype_size(t->info.dtype);
}

/* ---- lifetime ---- */
API dlcc_model *dlcc_create(dlcc_device device, char *err, size_t errlen)
{
	const RtModelDesc *d = &dlcc_model_desc;
	if (!d) {
		snprintf(err, errlen, "dlcc_create: this program contains no compiled model");
		return NULL;
	}
	dlcc_model *m = calloc(1, sizeof *m);
	if (!m || !(m->rt = rt_create((RtDevice)device, d->image, err, errlen))) {
		if (m == NULL)
			snprintf(err, errlen, "dlcc_create: out of memory");
		free(m);
		return NULL;
	}
	m->d = d;
	size_t z0 = d->param_zero_off, z1 = z0 + d->param_zero_bytes; /* rt_alloc zeroes the state */
	int ok = (m->params = rt_alloc(m->rt, d->param_bytes)) &&
		 (m->ws = rt_alloc(m->rt, d->workspace_bytes)) &&
		 (!d->param_init || (!rt_h2d(m->rt, m->params, d->param_init, z0) &&
				     !rt_h2d(m->rt, m->params + z1, d->param_init + z0, d->param_bytes - z1)));
	if (!ok) {
		snprintf(err, errlen, "dlcc_create: %s", rt_error(m->rt));
		dlcc_destroy(m);
		return NULL;
	}
	return m;
}

API void dlcc_destroy(dlcc_model *m)
{
	if (!m)
		return;
	if (m->rt) {
		rt_free(m->rt, m->params);
		rt_free(m->rt, m->ws);
		rt_destroy(m->rt);
	}
	free(m);
}

API const char *dlcc_error(const dlcc_model *m) { return m ? m->err : "no model"; }
API const char *dlcc_device_name(const dlcc_model *m) { return rt_device_name(m->rt); }

/* ---- description ---- */
API int dlcc_max_batch(const dlcc_model *m) { return m->d->max_batch; }
API int dlcc_num_inputs(const dlcc_model *m) { return m->d->ninputs; }
API int dlcc_num_outputs(const dlcc_model *m) { return m->d->noutputs; }
API int dlcc_num_params(const dlcc_model *m) { return m->d->nparams; }
API int dlcc_has_training(const dlcc_model *m) { return m->d->train_step != NULL; }
API int64_t dlcc_step_count(const dlcc_model *m) { return m->step; }
API int64_t dlcc_skipped_steps(const dlcc_model *m) { return m->skipped; }
API double dlcc_loss_scale(const dlcc_model *m)
{
	return m->d->loss_scale_log2 ? ldexp(m->d->loss_scale_init, (int)m->ls_k) : 0.0;
}

API const dlcc_tensor_info *dlcc_input(const dlcc_model *m, int i)
{
	return i >= 0 && i < m->d->ninputs ? &m->d->inputs[i].info : NULL;
}

API const dlcc_tensor_info *dlcc_output(const dlcc_model *m, int i)
{
	return i >= 0 && i < m->d->noutputs ? &m->d->outputs[i].info : NULL;
}

API const dlcc_tensor_info *dlcc_param(const dlcc_model *m, int i)
{
	return i >= 0 && i < m->d->nparams ? &m->d->params[i].info : NULL;
}

API const dlcc_tensor_info *dlcc_label(const dlcc_model *m)
{
	return m->d->label ? &m->d->label->info : NULL;
}

API const char *dlcc_loss_name(const dlcc_model *m) { return m->d->loss ? m->d->loss : "none"; }
API const char *dlcc_optimizer_name(const dlcc_model *m)
{
	return m->d->optimizer ? m->d->optimizer : "none";
}

/* ---- running ---- */
static int check_batch(dlcc_model *m, const char *fn, int batch)
{
	if (batch < 1 || batch > m->d->max_batch)
		return m_fail(m, "%s: batch %d is outside 1..%d (the artifact was compiled with "
			      "--batch %d)", fn, batch, m->d->max_batch, m->d->max_batch);
	return 0;
}

static int upload_inputs(dlcc_model *m, int batch, const void *const *inputs)
{
	for (int i = 0; i < m->d->ninputs; i++) {
		const RtTensorDesc *t = &m->d->inputs[i];
		if (!inputs || !inputs[i])
			return m_fail(m, "input %s: no data given", t->info.name);
		if (rt_h2d(m->rt, m->ws + t->offset, inputs[i], t_bytes(t, batch)))
			return m_rt_fail(m, t->info.name);
	}
	return 0;
}

API int dlcc_train_step(dlcc_model *m, int batch, const void *const *inputs, const void *label,
			float *loss)
{
	const RtModelDesc *d = m->d;
	if (!d->train_step)
		return m_fail(m, "dlcc_train_step: the artifact was compiled with --mode infer");
	if (check_batch(m, "dlcc_train_step", batch) || upload_inputs(m, batch, inputs))
		return -1;
	if (d->label && !label)
		return m_fail(m, "dlcc_train_step: labels are required (loss %s)", dlcc_loss_name(m));
	if (d->label && rt_h2d(m->rt, m->ws + d->label->offset, label, t_bytes(d->label, batch)))
		return m_rt_fail(m, "label");
	if (d->train_step(m->rt, m->params, m->ws, batch, m->step + 1))
		return m_rt_fail(m, "train step");
	float l = 0, k = 0;
	if (d->loss_value && rt_d2h(m->rt, &l, m->ws + d->loss_value->offset, sizeof l))
		return m_rt_fail(m, "loss");
	if (d->loss_scale_log2 && rt_d2h(m->rt, &k, m->params + d->loss_scale_log2->offset, sizeof k))
		return m_rt_fail(m, "loss scale");
	if (d->loss_scale_log2 && k < m->ls_k) /* the scale went down: the update was skipped */
		m->skipped++;
	else
		m->step++;
	m->ls_k = k;
	if (loss)
		*loss = l;
	if (m->calls++ == 0) /* the profile leaves out the first step (module loads, library set-up) */
		rt_prof_reset(m->rt);
	return 0;
}

API int dlcc_infer(dlcc_model *m, int batch, const void *const *inputs, void *const *outputs)
{
	const RtModelDesc *d = m->d;
	if (!d->infer)
		return m_fail(m, "dlcc_infer: the artifact has no inference schedule");
	if (check_batch(m, "dlcc_infer", batch) || upload_inputs(m, batch, inputs))
		return -1;
	if (d->infer(m->rt, m->params, m->ws, batch))
		return m_rt_fail(m, "inference");
	for (int i = 0; i < d->noutputs; i++) {
		const RtTensorDesc *t = &d->outputs[i];
		if (!outputs || !outputs[i])
			return m_fail(m, "output %s: no buffer given", t->info.name);
		if (rt_d2h(m->rt, outputs[i], m->ws + t->offset, t_bytes(t, batch)))
			return m_rt_fail(m, t->info.name);
	}
	return 0;
}

/* ---- parameters as float32 ---- */
/* element conversion between the floating dtypes */
static double get_fp(dlcc_dtype dt, const void *p, size_t i)
{
	switch (dt) {
	case DLCC_F64: return ((const double *)p)[i];
	case DLCC_F16: return rt_f16_to_f32(((const uint16_t *)p)[i]);
	case DLCC_BF16: return rt_bf16_to_f32(((const uint16_t *)p)[i]);
	default: return ((const float *)p)[i];
	}
}

static void put_fp(dlcc_dtype dt, void *p, size_t i, double v)
{
	switch (dt) {
	case DLCC_F64: ((double *)p)[i] = v; break;
	case DLCC_F16: ((uint16_t *)p)[i] = rt_f32_to_f16((float)v); break;
	case DLCC_BF16: ((uint16_t *)p)[i] = rt_f32_to_bf16((float)v); break;
	default: ((float *)p)[i] = (float)v; break;
	}
}

static int is_fp(dlcc_dtype dt)
{
	return dt == DLCC_F32 || dt == DLCC_F64 || dt == DLCC_F16 || dt == DLCC_BF16;
}

static void convert_fp(dlcc_dtype to, void *dst, dlcc_dtype from, const void *src, size_t n)
{
	if (to == from) {
		memcpy(dst, src, n * rt_dtype_size(to));
		return;
	}
	for (size_t i = 0; i < n; i++)
		put_fp(to, dst, i, get_fp(from, src, i));
}

static const RtTensorDesc *param_desc(dlcc_model *m, int i)
{
	if (i < 0 || i >= m->d->nparams) {
		m_fail(m, "parameter %d does not exist (the model has %d)", i, m->d->nparams);
		return NULL;
	}
	return &m->d->params[i];
}

API int dlcc_get_param(dlcc_model *m, int i, float *host)
{
	const RtTensorDesc *t = param_desc(m, i);
	if (!t)
		return -1;
	size_t n = (size_t)rt_numel(&t->info, 1);
	void *tmp = malloc(t_bytes(t, 1) + 1);
	int rc = !tmp ? m_fail(m, "out of memory")
		 : rt_d2h(m->rt, tmp, m->params + t->offset, t_bytes(t, 1)) ? m_rt_fail(m, t->info.name)
									    : 0;
	if (!rc)
		convert_fp(DLCC_F32, host, t->info.dtype, tmp, n);
	free(tmp);
	return rc;
}

API int dlcc_set_param(dlcc_model *m, int i, const float *host)
{
	const RtTensorDesc *t = param_desc(m, i);
	if (!t)
		return -1;
	size_t n = (size_t)rt_numel(&t->info, 1);
	void *tmp = malloc(t_bytes(t, 1) + 1);
	if (!tmp)
		return m_fail(m, "out of memory");
	convert_fp(t->info.dtype, tmp, DLCC_F32, host, n);
	int rc = rt_h2d(m->rt, m->params + t->offset, tmp, t_bytes(t, 1)) ? m_rt_fail(m, t->info.name) : 0;
	free(tmp);
	return rc;
}

/* ---- checkpoints ---- */
static void state_name(const dlcc_model *m, const RtTensorDesc *s, char *buf, size_t len)
{
	if (s->param < 0) /* a step-global state (loss scaling) */
		snprintf(buf, len, "%s", s->info.name);
	else
		snprintf(buf, len, "%s.%s", m->d->params[s->param].info.name, s->slot ? s->slot : "state");
}

API int dlcc_save(dlcc_model *m, const char *path)
{
	const RtModelDesc *d = m->d;
	int n = d->nparams + d->nstates;
	StEntry *e = calloc((size_t)n + 1, sizeof *e);
	char (*names)[256] = calloc((size_t)d->nstates + 1, sizeof *names);
	char *host = malloc(d->param_bytes + 1);
	static const int64_t no_dims[1];
	int rc = !e || !names || !host ? m_fail(m, "dlcc_save: out of memory") : 0;
	if (!rc && rt_d2h(m->rt, host, m->params, d->param_bytes))
		rc = m_rt_fail(m, "dlcc_save");
	for (int i = 0; !rc && i < n; i++) {
		const RtTensorDesc *t = i < d->nparams ? &d->params[i] : &d->states[i - d->nparams];
		if (i >= d->nparams)
			state_name(m, t, names[i - d->nparams], sizeof *names);
		e[i] = (StEntry){ i < d->nparams ? t->info.name : names[i - d->nparams],
				  t->info.dtype, t->info.rank, t->info.dims, host + t->offset };
	}
	e[n] = (StEntry){ "__step__", DLCC_I64, 0, no_dims, &m->step };
	const char *meta[2] = { "format", "dlcc" };
	char err[400];
	if (!rc && st_save(path, e, n + 1, meta, 1, err, sizeof err))
		rc = m_fail(m, "dlcc_save: %s", err);
	free(e), free(names), free(host);
	return rc;
}

static void shape_str(char *buf, size_t len, int rank, const int64_t *dims)
{
	size_t k = (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < rank && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? "," : "", (long long)dims[i]);
	if (k < len)
		snprintf(buf + k, len - k, "]");
}

/* Copy tensor `ft` of the file into the host image of the parameter block at t's offset. */
static int load_tensor(dlcc_model *m, const char *path, const StTensor *ft, const RtTensorDesc *t,
		       char *host)
{
	int same = ft->rank == t->info.rank;
	for (int i = 0; same && i < ft->rank; i++)
		same = ft->dims[i] == t->info.dims[i];
	if (!same) {
		char a[120], b[120];
		shape_str(a, sizeof a, ft->rank, ft->dims);
		shape_str(b, sizeof b, t->info.rank, t->info.dims);
		return m_fail(m, "dlcc_load(%s): %s has shape %s in the file but %s in the model",
			      path, ft->name, a, b);
	}
	size_t n = (size_t)rt_numel(&t->info, 1);
	if (ft->dtype == t->info.dtype)
		memcpy(host + t->offset, ft->data, ft->nbytes);
	else if (is_fp(ft->dtype) && is_fp(t->info.dtype))
		convert_fp(t->info.dtype, host + t->offset, ft->dtype, ft->data, n);
	else
		return m_fail(m, "dlcc_load(%s): %s is %s in the file but %s in the model", path,
			      ft->name, st_dtype_name(ft->dtype), st_dtype_name(t->info.dtype));
	return 0;
}

static int load_all(dlcc_model *m, const char *path, const StFile *f, char *host)
{
	const RtModelDesc *d = m->d;
	char name[256];
	for (int i = 0; i < d->nparams; i++) {
		const StTensor *ft = st_find(f, d->params[i].info.name);
		if (!ft)
			return m_fail(m, "dlcc_load(%s): parameter %s is missing", path,
				      d->params[i].info.name);
		if (load_tensor(m, path, ft, &d->params[i], host))
			return -1;
	}
	for (int i = 0; i < d->nstates; i++) {
		state_name(m, &d->states[i], name, sizeof name);
		const StTensor *ft = st_find(f, name);
		if (ft && load_tensor(m, path, ft, &d->states[i], host))
			return -1;
	}
	const StTensor *st = st_find(f, "__step__");
	if (st && st->dtype == DLCC_I64 && st->nbytes == 8)
		memcpy(&m->step, st->data, 8);
	return 0;
}

API int dlcc_load(dlcc_model *m, const char *path)
{
	StFile f;
	char err[400];
	if (st_load(path, &f, err, sizeof err))
		return m_fail(m, "dlcc_load: %s", err);
	char *host = malloc(m->d->param_bytes + 1);
	int64_t step = m->step;
	int rc = !host ? m_fail(m, "dlcc_load: out of memory")
	       : rt_d2h(m->rt, host, m->params, m->d->param_bytes) ? m_rt_fail(m, "dlcc_load")
	       : load_all(m, path, &f, host);
	if (!rc && rt_h2d(m->rt, m->params, host, m->d->param_bytes))
		rc = m_rt_fail(m, "dlcc_load");
	if (rc)
		m->step = step;
	if (!rc && m->d->loss_scale_log2)
		memcpy(&m->ls_k, host + m->d->loss_scale_log2->offset, sizeof m->ls_k);
	free(host);
	st_free(&f);
	return rc;
}
