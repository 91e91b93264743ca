/*
 * dsl_train.c — the `train { ... }` section: how the model is trained, with the same choices as
 * the command-line flags (which override it; the driver applies only the fields marked set).
 *
 *   train {
 *     loss = cross_entropy                       # cross_entropy | mse | none
 *     optimizer = adamw(lr = 3e-4, betas = [0.9, 0.95], eps = 1e-8, weight_decay = 0.1)
 *     schedule = cosine(steps = 5000, min_lr = 3e-5, warmup = 100)
 *     precision = bf16                           # fp32 | fp16 | bf16 | fp64
 *     batch = 64
 *   }
 *
 * Optimizers (torch.optim's names and defaults): sgd(lr, weight_decay), momentum(lr, momentum,
 * dampening-free, weight_decay), adam / adamw(lr, betas, beta1, beta2, eps, weight_decay).
 * Schedules: constant, step(step_size, gamma = 0.1), cosine(steps, min_lr = 0), warmup(steps)
 * (= constant with a warm-up); each takes `warmup = W`: lr·t/W at steps t = 1..W, the schedule
 * proper from step W + 1 (ir/lr_schedule.c). Every value is range-checked here, at its position
 * in the file.
 */
#include <string.h>

#include "frontend/dsl_imp.h"

static const char *word_of(Dsl *d, const char *what, const char *const *allowed)
{
	int at = d->pos;
	const char *w = dsl_ident(d, what);
	for (int i = 0; allowed[i]; i++)
		if (!strcmp(w, allowed[i]))
			return allowed[i];
	char list[200] = "";
	for (int i = 0; allowed[i]; i++)
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", allowed[i]);
	dsl_fail(d, at, "unknown %s '%s' (%s)", what, w, list);
}

static double in_range(Dsl *d, const char *what, double lo, double hi, int lo_open, int hi_open)
{
	int at = d->pos;
	double x = dsl_num_expr(d, what);
	if (x < lo || x > hi || (lo_open && x == lo) || (hi_open && x == hi))
		dsl_fail(d, at, "%s = %g is out of range: %s%g, %g%s", what, x, lo_open ? "(" : "[", lo, hi,
			 hi_open ? ")" : "]");
	return x;
}

static int64_t count(Dsl *d, const char *what, int64_t lo)
{
	int at = d->pos;
	int64_t x = dsl_int_expr(d, what);
	if (x < lo || x > ((int64_t)1 << 40))
		dsl_fail(d, at, "%s must be at least %lld", what, (long long)lo);
	return x;
}

/* `(k = v, ...)`: calls one(d, t, key, key_tok) for each; the callee parses the value */
static void kwargs(Dsl *d, DslTrain *t, int (*one)(Dsl *, DslTrain *, const char *))
{
	if (!dsl_accept(d, "("))
		return;
	while (!dsl_is(d, ")")) {
		int at = d->pos;
		const char *k = dsl_ident(d, "an argument name");
		dsl_expect(d, "=");
		if (!one(d, t, k))
			dsl_fail(d, at, "no argument '%s' here", k);
		if (!dsl_accept(d, ","))
			break;
	}
	dsl_expect(d, ")");
}

static int opt_arg(Dsl *d, DslTrain *t, const char *k)
{
	int adam = !strcmp(t->optimizer, "adam") || !strcmp(t->optimizer, "adamw");
	if (!strcmp(k, "lr"))
		t->lr = in_range(d, "lr", 0, 1e6, 1, 0), t->lr_set = 1;
	else if (!strcmp(k, "weight_decay"))
		t->weight_decay = in_range(d, "weight_decay", 0, 1e6, 0, 0), t->weight_decay_set = 1;
	else if (!strcmp(k, "momentum") && !strcmp(t->optimizer, "momentum"))
		t->momentum = in_range(d, "momentum", 0, 1, 1, 1), t->momentum_set = 1;
	else if (!strcmp(k, "beta1") && adam)
		t->beta1 = in_range(d, "beta1", 0, 1, 0, 1), t->betas_set |= 1;
	else if (!strcmp(k, "beta2") && adam)
		t->beta2 = in_range(d, "beta2", 0, 1, 0, 1), t->betas_set |= 2;
	else if (!strcmp(k, "eps") && adam)
		t->eps = in_range(d, "eps", 0, 1, 1, 0), t->eps_set = 1;
	else if (!strcmp(k, "betas") && adam) {
		int at = d->pos;
		DVal v = dsl_expr(d);
		if (v.k != DV_LIST || v.n != 2 || v.items[0].k != DV_NUM || v.items[1].k != DV_NUM ||
		    v.items[0].num < 0 || v.items[0].num >= 1 || v.items[1].num < 0 || v.items[1].num >= 1)
			dsl_fail(d, at, "betas must be two numbers in [0, 1): [beta1, beta2]");
		t->beta1 = v.items[0].num, t->beta2 = v.items[1].num, t->betas_set = 3;
	} else
		return 0;
	return 1;
}

static int sched_arg(Dsl *d, DslTrain *t, const char *k)
{
	LrSchedule *s = &t->schedule;
	if (!strcmp(k, "warmup"))
		s->warmup = count(d, "warmup", 0);
	else if (!strcmp(k, "steps") && s->kind == LR_COSINE)
		s->steps = count(d, "steps", 1);
	else if (!strcmp(k, "steps") && s->kind == LR_CONSTANT)
		s->warmup = count(d, "steps", 0);
	else if (!strcmp(k, "min_lr") && s->kind == LR_COSINE)
		s->min_lr = in_range(d, "min_lr", 0, 1e6, 0, 0);
	else if (!strcmp(k, "step_size") && s->kind == LR_STEP)
		s->step_size = count(d, "step_size", 1);
	else if (!strcmp(k, "gamma") && s->kind == LR_STEP)
		s->gamma = in_range(d, "gamma", 0, 1, 1, 0);
	else
		return 0;
	return 1;
}

static void schedule(Dsl *d, DslTrain *t)
{
	static const char *const kinds[] = {"constant", "step", "cosine", "warmup", NULL};
	LrSchedule *s = &t->schedule;
	int at = d->pos;
	const char *k = word_of(d, "schedule", kinds);
	ir_lr_default(s);
	s->kind = strcmp(k, "warmup") ? (LrKind)ir_lr_kind(k) : LR_CONSTANT;
	kwargs(d, t, sched_arg);
	if (s->kind == LR_STEP && !s->step_size)
		dsl_fail(d, at, "step needs step_size: step(step_size = S, gamma = 0.1)");
	if (s->kind == LR_COSINE && !s->steps)
		dsl_fail(d, at, "cosine needs steps: cosine(steps = T, min_lr = 0)");
	if (!strcmp(k, "warmup") && !s->warmup)
		dsl_fail(d, at, "warmup needs steps: warmup(steps = W)");
	t->schedule_set = 1;
}

static void one_setting(Dsl *d, DslTrain *t, const char *key, int at)
{
	static const char *const losses[] = {"cross_entropy", "mse", "none", NULL};
	static const char *const opts[] = {"sgd", "momentum", "adam", "adamw", NULL};
	static const char *const precs[] = {"fp32", "fp16", "bf16", "fp64", NULL};
	if (!strcmp(key, "loss"))
		t->loss = word_of(d, "loss", losses), t->loss_set = 1;
	else if (!strcmp(key, "optimizer")) {
		t->optimizer = word_of(d, "optimizer", opts), t->optimizer_set = 1;
		kwargs(d, t, opt_arg);
	} else if (!strcmp(key, "schedule"))
		schedule(d, t);
	else if (!strcmp(key, "precision"))
		t->precision = word_of(d, "precision", precs), t->precision_set = 1;
	else if (!strcmp(key, "batch"))
		t->batch = count(d, "batch", 1), t->batch_set = 1;
	else
		dsl_fail(d, at, "unknown training setting '%s' (loss, optimizer, schedule, precision, batch)", key);
}

void dsl_train_section(Dsl *d)
{
	const char *seen[8];
	int nseen = 0;
	if (d->train.loss_set || d->train.optimizer_set || d->train.schedule_set || d->train.precision_set ||
	    d->train.batch_set)
		dsl_fail(d, d->pos - 1, "the training section is given twice");
	dsl_expect(d, "{");
	for (;;) {
		dsl_skip_nl(d);
		if (dsl_accept(d, "}"))
			return;
		int at = d->pos;
		const char *key = dsl_ident(d, "a training setting");
		for (int i = 0; i < nseen; i++)
			if (!strcmp(seen[i], key))
				dsl_fail(d, at, "'%s' is set twice", key);
		if (nseen < 8)
			seen[nseen++] = key;
		dsl_expect(d, "=");
		one_setting(d, &d->train, key, at);
		dsl_end_stmt(d);
	}
}
