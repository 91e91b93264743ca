/*
 * test_rt_model.c — model.c's public API on a tiny hand-written artifact, run on the CPU.
 *
 * The "model": parameter w f32[4] with one state slot w.momentum_buffer, input x f32[B,4],
 * labels y i64[B], output out f32[B,4] = x + w. The training step adds 1 to w and 2 to the
 * state (an elementwise kernel) and writes loss = sum(w) + sum(x) with a shared-memory
 * reduction kernel. This is the only unit test file allowed to define dlcc_model_desc.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlcc/dlcc.h"
#include "emu/cuda_emu.h"
#include "rt.h"
#include "safetensors.h"

/* ---- kernels and trampolines ---- */
__global__ void mdlt_update(float *__restrict__ w, float *__restrict__ mom, int n)
{
	int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
	if (i < n) {
		w[i] += 1.0f;
		mom[i] += 2.0f;
	}
}
static void mdlt_update_emu(void **a)
{
	mdlt_update(RT_EMU_ARG(a, 0, float *), RT_EMU_ARG(a, 1, float *), RT_EMU_ARG(a, 2, int));
}

__global__ void mdlt_loss(const float *__restrict__ w, const float *__restrict__ x, int nx,
		       float *__restrict__ loss)
{
	__shared__ float s[32];
	unsigned t = threadIdx.x;
	float v = t < 4 ? w[t] : 0.0f;
	for (int i = (int)t; i < nx; i += 32)
		v += x[i];
	s[t] = v;
	__syncthreads();
	for (unsigned st = 16; st > 0; st >>= 1) {
		if (t < st)
			s[t] += s[t + st];
		__syncthreads();
	}
	if (t == 0)
		*loss = s[0];
}
static void mdlt_loss_emu(void **a)
{
	mdlt_loss(RT_EMU_ARG(a, 0, const float *), RT_EMU_ARG(a, 1, const float *),
	       RT_EMU_ARG(a, 2, int), RT_EMU_ARG(a, 3, float *));
}

__global__ void mdlt_add(const float *__restrict__ x, const float *__restrict__ w,
		      float *__restrict__ out, int n)
{
	int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
	if (i < n)
		out[i] = x[i] + w[i % 4];
}
static void mdlt_add_emu(void **a)
{
	mdlt_add(RT_EMU_ARG(a, 0, const float *), RT_EMU_ARG(a, 1, const float *),
	      RT_EMU_ARG(a, 2, float *), RT_EMU_ARG(a, 3, int));
}

static const RtKernelInfo kernels[] = {
	{ "mdlt_update", mdlt_update_emu, 0 },
	{ "mdlt_loss", mdlt_loss_emu, 1 },
	{ "mdlt_add", mdlt_add_emu, 0 },
};
static const RtModuleImage image = { .ptx = "// no PTX in this test", .kernels = kernels, .nkernels = 3 };

/* ---- memory layout ---- */
enum { W_OFF = 0, MOM_OFF = 64, X_OFF = 0, Y_OFF = 256, OUT_OFF = 512, LOSS_OFF = 768 };
static const RtTensorDesc params[] = { { { "w", DLCC_F32, 1, { 4 } }, RT_T_PARAM, W_OFF, -1, NULL } };
static const RtTensorDesc states[] = {
	{ { "w.momentum_buffer", DLCC_F32, 1, { 4 } }, RT_T_STATE, MOM_OFF, 0, "momentum_buffer" },
};
static const RtTensorDesc inputs[] = { { { "x", DLCC_F32, 2, { -1, 4 } }, RT_T_INPUT, X_OFF, -1, NULL } };
static const RtTensorDesc outputs[] = { { { "out", DLCC_F32, 2, { -1, 4 } }, RT_T_OUTPUT, OUT_OFF, -1, NULL } };
static const RtTensorDesc label = { { "y", DLCC_I64, 1, { -1 } }, RT_T_LABEL, Y_OFF, -1, NULL };
static const RtTensorDesc loss = { { "loss", DLCC_F32, 0, { 0 } }, RT_T_LOSS, LOSS_OFF, -1, NULL };
static const float init[32] = { 1, 2, 3, 4 }; /* w, then zero state */

static int64_t last_step;

static int train_step(Rt *rt, char *p, char *ws, int64_t batch, int64_t step)
{
	int n = 4, nx = (int)batch * 4;
	char *w = p + W_OFF, *mom = p + MOM_OFF, *x = ws + X_OFF, *l = ws + LOSS_OFF;
	void *a1[] = { &w, &mom, &n };
	void *a2[] = { &w, &x, &nx, &l };
	last_step = step;
	if (rt_launch(rt, 1, 1, 1, 1, 32, 1, 1, 0, a2)) /* loss before the update */
		return -1;
	return rt_launch(rt, 0, 1, 1, 1, 128, 1, 1, 0, a1);
}

static int infer(Rt *rt, char *p, char *ws, int64_t batch)
{
	int n = (int)batch * 4;
	char *x = ws + X_OFF, *w = p + W_OFF, *o = ws + OUT_OFF;
	void *a[] = { &x, &w, &o, &n };
	return rt_launch(rt, 2, (unsigned)(n + 63) / 64, 1, 1, 64, 1, 1, 0, a);
}

const RtModelDesc dlcc_model_desc = {
	.image = &image, .max_batch = 8, .loss = "cross_entropy", .optimizer = "momentum",
	.ninputs = 1, .inputs = inputs, .noutputs = 1, .outputs = outputs, .label = &label,
	.loss_value = &loss, .nparams = 1, .params = params, .nstates = 1, .states = states,
	.param_bytes = sizeof init, .workspace_bytes = 1024,
	.param_init = (const unsigned char *)init, .train_step = train_step, .infer = infer,
};

/* ---- tests ---- */
static dlcc_model *create_cpu(void)
{
	char err[300];
	dlcc_model *m = dlcc_create(DLCC_DEVICE_CPU, err, sizeof err);
	cr_assert(m, "%s", err);
	return m;
}

Test(rt_model, describe)
{
	dlcc_model *m = create_cpu();
	cr_assert_str_eq(dlcc_device_name(m), "cpu emulation");
	cr_assert_eq(dlcc_max_batch(m), 8);
	cr_assert_eq(dlcc_num_inputs(m), 1);
	cr_assert_str_eq(dlcc_input(m, 0)->name, "x");
	cr_assert_eq(dlcc_input(m, 0)->dims[0], -1);
	cr_assert_str_eq(dlcc_output(m, 0)->name, "out");
	cr_assert_null(dlcc_output(m, 1));
	cr_assert_eq(dlcc_num_params(m), 1);
	cr_assert_str_eq(dlcc_label(m)->name, "y");
	cr_assert_str_eq(dlcc_loss_name(m), "cross_entropy");
	cr_assert_str_eq(dlcc_optimizer_name(m), "momentum");
	cr_assert(dlcc_has_training(m));
	cr_assert_eq(dlcc_step_count(m), 0);
	dlcc_destroy(m);
}

Test(rt_model, train_infer_params)
{
	dlcc_model *m = create_cpu();
	float x[8] = { 0.5f, 0, 0, 0, 0, 0, 0, 0.25f }, out[8], l = -1, w[4];
	int64_t y[2] = { 0, 1 };
	const void *in[] = { x };
	cr_assert_eq(dlcc_train_step(m, 2, in, y, &l), 0, "%s", dlcc_error(m));
	cr_assert_eq(l, 10.75f);
	cr_assert_eq(last_step, 1);
	cr_assert_eq(dlcc_train_step(m, 2, in, y, &l), 0, "%s", dlcc_error(m));
	cr_assert_eq(l, 14.75f);
	cr_assert_eq(last_step, 2);
	cr_assert_eq(dlcc_step_count(m), 2);
	cr_assert_eq(dlcc_get_param(m, 0, w), 0);
	cr_assert_eq(w[3], 6.0f);
	cr_assert_eq(dlcc_train_step(m, 9, in, y, &l), -1);
	cr_assert(strstr(dlcc_error(m), "batch 9 is outside 1..8"), "%s", dlcc_error(m));
	cr_assert_eq(dlcc_train_step(m, 2, in, NULL, &l), -1);
	cr_assert_eq(dlcc_step_count(m), 2);
	float nw[4] = { 10, 20, 30, 40 };
	cr_assert_eq(dlcc_set_param(m, 0, nw), 0);
	void *o[] = { out };
	cr_assert_eq(dlcc_infer(m, 2, in, o), 0, "%s", dlcc_error(m));
	cr_assert_eq(out[0], 10.5f);
	cr_assert_eq(out[7], 40.25f);
	cr_assert_eq(out[5], 20.0f);
	cr_assert_eq(dlcc_get_param(m, 1, w), -1);
	dlcc_destroy(m);
}

Test(rt_model, save_load)
{
	char dir[] = "/tmp/dlcc_rt_model_XXXXXX", path[100], path2[100], err[300];
	cr_assert(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/ck.safetensors", dir);
	snprintf(path2, sizeof path2, "%s/bad.safetensors", dir);
	dlcc_model *m = create_cpu();
	float x[4] = { 0 }, l, w[4];
	int64_t y[1] = { 0 };
	const void *in[] = { x };
	for (int i = 0; i < 3; i++)
		cr_assert_eq(dlcc_train_step(m, 1, in, y, &l), 0, "%s", dlcc_error(m));
	cr_assert_eq(dlcc_save(m, path), 0, "%s", dlcc_error(m));
	StFile f;
	cr_assert_eq(st_load(path, &f, err, sizeof err), 0, "%s", err);
	const StTensor *mom = st_find(&f, "w.momentum_buffer"), *step = st_find(&f, "__step__");
	cr_assert(mom && ((const float *)mom->data)[2] == 6.0f);
	int64_t nstep = 0;
	cr_assert(step && step->rank == 0 && step->nbytes == 8);
	memcpy(&nstep, step->data, 8);
	cr_assert_eq(nstep, 3);
	cr_assert_str_eq(st_meta(&f, "format"), "dlcc");
	st_free(&f);

	dlcc_model *m2 = create_cpu();
	cr_assert_eq(dlcc_load(m2, path), 0, "%s", dlcc_error(m2));
	cr_assert_eq(dlcc_step_count(m2), 3);
	cr_assert_eq(dlcc_get_param(m2, 0, w), 0);
	cr_assert_eq(w[0], 4.0f);
	cr_assert_eq(dlcc_train_step(m2, 1, in, y, &l), 0);
	cr_assert_eq(l, 4 + 5 + 6 + 7);

	/* a parameter-only file with the wrong shape, then one without w */
	int64_t d5[1] = { 5 };
	float five[5] = { 0 };
	StEntry e = { "w", DLCC_F32, 1, d5, five };
	cr_assert_eq(st_save(path2, &e, 1, NULL, 0, err, sizeof err), 0);
	cr_assert_eq(dlcc_load(m2, path2), -1);
	cr_assert(strstr(dlcc_error(m2), "w has shape [5] in the file but [4] in the model"), "%s",
		  dlcc_error(m2));
	e.name = "v";
	cr_assert_eq(st_save(path2, &e, 1, NULL, 0, err, sizeof err), 0);
	cr_assert_eq(dlcc_load(m2, path2), -1);
	cr_assert(strstr(dlcc_error(m2), "parameter w is missing"), "%s", dlcc_error(m2));
	cr_assert_eq(dlcc_step_count(m2), 4);
	dlcc_destroy(m), dlcc_destroy(m2);
	char cmd[100];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(rt_model, device_selection)
{
	char err[300];
	setenv("DLCC_DEVICE", "cpu", 1);
	dlcc_model *m = dlcc_create(DLCC_DEVICE_AUTO, err, sizeof err);
	cr_assert(m, "%s", err);
	cr_assert_str_eq(dlcc_device_name(m), "cpu emulation");
	dlcc_destroy(m);
	setenv("DLCC_DEVICE", "tpu", 1);
	cr_assert_null(dlcc_create(DLCC_DEVICE_AUTO, err, sizeof err));
	cr_assert(strstr(err, "DLCC_DEVICE=tpu"), "%s", err);
	unsetenv("DLCC_DEVICE");
	void *cuda = dlopen("libcuda.so.1", RTLD_NOW);
	if (!cuda) { /* no driver here: asking for CUDA fails clearly, AUTO falls back */
		cr_assert_null(dlcc_create(DLCC_DEVICE_CUDA, err, sizeof err));
		cr_assert(strstr(err, "libcuda.so.1"), "%s", err);
		m = dlcc_create(DLCC_DEVICE_AUTO, err, sizeof err);
		cr_assert(m, "%s", err);
		cr_assert_str_eq(dlcc_device_name(m), "cpu emulation");
		dlcc_destroy(m);
	} else {
		dlclose(cuda);
	}
}

Test(rt_model, launch_errors_name_the_kernel)
{
	char err[300];
	Rt *rt = rt_create(RT_CPU, &image, err, sizeof err);
	cr_assert(rt, "%s", err);
	float buf[64];
	char *p = (char *)buf;
	int n = 64;
	void *a[] = { &p, &p, &n };
	cr_assert_eq(rt_launch(rt, 0, 1, 1, 1, 2000, 1, 1, 0, a), -1);
	cr_assert(strstr(rt_error(rt), "rt_launch(mdlt_update)"), "%s", rt_error(rt));
	cr_assert_eq(rt_launch(rt, 7, 1, 1, 1, 1, 1, 1, 0, a), -1);
	cr_assert(strstr(rt_error(rt), "no kernel number 7"), "%s", rt_error(rt));
	rt_destroy(rt);
}
