/*
 * lr_schedule.c — the learning rate of an optimizer update at a step.
 *
 * A schedule scales the base rate `lr` of an update node (SgdUpdate, MomentumUpdate,
 * AdamUpdate) as a function of the 1-based optimizer step t, the run-time value the artifact
 * passes to its update kernels and the interpreter gets from interp_run. A linear warm-up of
 * W steps comes first (lr·t/W at t = 1..W, so step W runs at the full rate); the schedule
 * proper then starts at e = 0 on step W + 1, as torch's SequentialLR starts its second
 * scheduler (the formulas are in ir/ir.h; the torch composition each one equals is in
 * docs/dl.md).
 *
 * The schedule lives on the node as attributes so that the textual IR carries it; a constant
 * schedule without warm-up sets none, which keeps such programs and their kernels as they were.
 * ir_lr_at is the one definition: the interpreter calls it (through ir_lr_of, which reads and
 * checks the attributes), and codegen/cg_optim.c writes the same arithmetic, in double, into
 * the update kernels.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

static const char *const kind_names[] = {"constant", "step", "cosine"};

void ir_lr_default(LrSchedule *s)
{
	memset(s, 0, sizeof *s);
	s->kind = LR_CONSTANT;
	s->gamma = 0.1;
}

int ir_lr_kind(const char *name)
{
	for (int k = 0; k < 3; k++)
		if (!strcmp(name, kind_names[k]))
			return k;
	return -1;
}

const char *ir_lr_kind_name(LrKind k)
{
	return k >= LR_CONSTANT && k <= LR_COSINE ? kind_names[k] : "?";
}

int ir_lr_varies(const LrSchedule *s)
{
	return s->kind != LR_CONSTANT || s->warmup > 0;
}

const char *ir_lr_invalid(const LrSchedule *s)
{
	const int64_t most = (int64_t)1 << 40;
	if (s->kind < LR_CONSTANT || s->kind > LR_COSINE)
		return "the schedule is not constant, step or cosine";
	if (s->warmup < 0 || s->warmup > most)
		return "warmup must be a whole number of steps in [0, 2^40]";
	if (s->kind == LR_STEP && (s->step_size < 1 || s->step_size > most))
		return "step needs step_size >= 1";
	if (s->kind == LR_STEP && !(s->gamma > 0 && s->gamma <= 1))
		return "step needs gamma in (0, 1]";
	if (s->kind == LR_COSINE && (s->steps < 1 || s->steps > most))
		return "cosine needs steps >= 1";
	if (s->kind == LR_COSINE && !(s->min_lr >= 0 && isfinite(s->min_lr)))
		return "cosine needs min_lr >= 0";
	return NULL;
}

double ir_lr_at(const LrSchedule *s, double lr, int64_t step)
{
	if (s->warmup > 0 && step <= s->warmup)
		return lr * (double)step / (double)s->warmup;
	int64_t e = step - s->warmup - 1;
	switch (s->kind) {
	case LR_STEP: return lr * pow(s->gamma, (double)(e / s->step_size));
	case LR_COSINE:
		if (e >= s->steps)
			return s->min_lr;
		return s->min_lr + (lr - s->min_lr) * (1.0 + cos(M_PI * (double)e / (double)s->steps)) / 2.0;
	case LR_CONSTANT: break;
	}
	return lr;
}

char *ir_lr_str(const LrSchedule *s, double lr, char *buf, size_t len)
{
	int k = 0;
	if (s->kind == LR_STEP)
		k = snprintf(buf, len, "%g, times %g every %lld steps", lr, s->gamma, (long long)s->step_size);
	else if (s->kind == LR_COSINE)
		k = snprintf(buf, len, "cosine from %g to %g over %lld steps, then %g", lr, s->min_lr,
			     (long long)s->steps, s->min_lr);
	else
		k = snprintf(buf, len, "%g (constant)", lr);
	if (s->warmup && k >= 0 && (size_t)k < len)
		snprintf(buf + k, len - k, ", after a linear warm-up of %lld steps", (long long)s->warmup);
	return buf;
}

void ir_set_lr_schedule(Graph *g, Node *n, const LrSchedule *s)
{
	if (!ir_lr_varies(s))
		return;
	ir_set_s(g, n, "schedule", ir_lr_kind_name(s->kind));
	if (s->warmup)
		ir_set_i(g, n, "warmup", s->warmup);
	if (s->kind == LR_STEP) {
		ir_set_i(g, n, "step_size", s->step_size);
		ir_set_f(g, n, "gamma", s->gamma);
	} else if (s->kind == LR_COSINE) {
		ir_set_i(g, n, "schedule_steps", s->steps);
		ir_set_f(g, n, "min_lr", s->min_lr);
	}
}

int ir_lr_of(const Node *n, LrSchedule *s)
{
	const Attr *a = ir_attr(n, "schedule");
	ir_lr_default(s);
	if (!a)
		return ir_attr(n, "warmup") ? -1 : 0;
	int k = a->kind == A_STRING && a->s ? ir_lr_kind(a->s) : -1;
	if (k < 0)
		return -1;
	s->kind = (LrKind)k;
	s->warmup = ir_attr_i(n, "warmup", 0);
	s->step_size = ir_attr_i(n, "step_size", 0);
	s->gamma = ir_attr_f(n, "gamma", 0.1);
	s->steps = ir_attr_i(n, "schedule_steps", 0);
	s->min_lr = ir_attr_f(n, "min_lr", 0);
	return ir_lr_invalid(s) ? -1 : 0;
}
