/*
 * test_schedule.c — learning-rate schedules (ir/lr_schedule.c): ir_lr_at against values worked
 * out by hand for each kind, with and without warm-up; the attributes round trip; malformed
 * ones are refused; and the interpreter's updates use the rate of their step.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "ir/interp.h"

#define TOL 1e-15

static LrSchedule sched(LrKind k, int64_t warmup)
{
	LrSchedule s;
	ir_lr_default(&s);
	s.kind = k;
	s.warmup = warmup;
	return s;
}

/* ir_lr_at(s, lr, t) for t = 1..n against want[t - 1] */
static void expect_lrs(const LrSchedule *s, double lr, const double *want, int n)
{
	cr_assert_null(ir_lr_invalid(s));
	for (int t = 1; t <= n; t++)
		cr_expect(fabs(ir_lr_at(s, lr, t) - want[t - 1]) <= TOL * fabs(want[t - 1]) + 1e-300,
			  "%s: step %d: lr %.17g, want %.17g", ir_lr_kind_name(s->kind), t, ir_lr_at(s, lr, t),
			  want[t - 1]);
}

Test(schedule, constant)
{
	LrSchedule s = sched(LR_CONSTANT, 0);
	expect_lrs(&s, 0.1, (double[]){0.1, 0.1, 0.1}, 3);
	cr_assert(!ir_lr_varies(&s));
}

Test(schedule, constant_warmup)
{
	LrSchedule s = sched(LR_CONSTANT, 4);
	expect_lrs(&s, 0.1, (double[]){0.025, 0.05, 0.075, 0.1, 0.1, 0.1}, 6);
	cr_assert(ir_lr_varies(&s));
}

Test(schedule, step)
{
	LrSchedule s = sched(LR_STEP, 0);
	s.step_size = 3, s.gamma = 0.5; /* torch StepLR(step_size=3, gamma=0.5): epochs 0-2, 3-5, 6 */
	expect_lrs(&s, 0.1, (double[]){0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025}, 7);
}

Test(schedule, step_warmup)
{
	LrSchedule s = sched(LR_STEP, 2);
	s.step_size = 2, s.gamma = 0.1; /* 2 warm-up steps, then StepLR from its epoch 0 */
	expect_lrs(&s, 1.0, (double[]){0.5, 1, 1, 1, 0.1, 0.1, 0.01}, 7);
}

Test(schedule, cosine_holds_min_lr)
{
	LrSchedule s = sched(LR_COSINE, 0);
	s.steps = 4, s.min_lr = 0.01;
	double c = 0.01 + 0.09 * (1 + sqrt(0.5)) / 2, d = 0.01 + 0.09 * (1 - sqrt(0.5)) / 2;
	expect_lrs(&s, 0.1, (double[]){0.1, c, 0.055, d, 0.01, 0.01, 0.01}, 7);
}

Test(schedule, cosine_warmup)
{
	LrSchedule s = sched(LR_COSINE, 3);
	s.steps = 2; /* min_lr 0: e = 0, 1, 2 give lr, lr/2, 0 */
	expect_lrs(&s, 0.3, (double[]){0.1, 0.2, 0.3, 0.3, 0.15, 0, 0}, 7);
}

Test(schedule, invalid)
{
	LrSchedule s = sched(LR_STEP, 0);
	cr_expect_str_eq(ir_lr_invalid(&s), "step needs step_size >= 1");
	s.step_size = 1, s.gamma = 0;
	cr_expect_str_eq(ir_lr_invalid(&s), "step needs gamma in (0, 1]");
	s = sched(LR_COSINE, 0);
	cr_expect_str_eq(ir_lr_invalid(&s), "cosine needs steps >= 1");
	s.steps = 5, s.min_lr = -1;
	cr_expect_str_eq(ir_lr_invalid(&s), "cosine needs min_lr >= 0");
	s = sched(LR_CONSTANT, -1);
	cr_expect_not_null(ir_lr_invalid(&s));
	cr_expect_eq(ir_lr_kind("cosine"), LR_COSINE);
	cr_expect_eq(ir_lr_kind("linear"), -1);
}

static Node *sgd_node(Graph *g, Value **p, Value **gr)
{
	double p0[2] = {1, -2};
	*p = ir_value(g, V_PARAM, "w", DT_F64, ir_shape(1, (int64_t[]){2}), p0);
	*gr = ir_value(g, V_INPUT, "g", DT_F64, ir_shape(1, (int64_t[]){2}), NULL);
	Node *n = ir_begin(g, OP_SGD_UPDATE, "sgd", 2, (Value *[]){*p, *gr});
	ir_set_f(g, n, "lr", 0.5);
	return n;
}

Test(schedule, attributes_round_trip)
{
	Graph *g = ir_graph_new("attrs");
	Value *p, *gr;
	Node *n = sgd_node(g, &p, &gr);
	LrSchedule s = sched(LR_CONSTANT, 0), back;
	ir_set_lr_schedule(g, n, &s);
	cr_expect_eq(n->nattr, 1, "a constant rate adds no attributes");
	s = sched(LR_COSINE, 7);
	s.steps = 100, s.min_lr = 1e-4;
	ir_set_lr_schedule(g, n, &s);
	cr_assert_eq(ir_lr_of(n, &back), 0);
	cr_expect(back.kind == LR_COSINE && back.warmup == 7 && back.steps == 100 && back.min_lr == 1e-4);
	ir_set_i(g, n, "schedule_steps", 0);
	cr_expect_eq(ir_lr_of(n, &back), -1);
	ir_graph_free(g);
}

/* SgdUpdate under step(step_size = 1, gamma = 0.5) after 1 warm-up step: rates 0.5, 0.5, 0.25 */
Test(schedule, interpreter_uses_step_rate)
{
	Graph *g = ir_graph_new("sgd");
	Value *p, *gr;
	Node *n = sgd_node(g, &p, &gr);
	LrSchedule s = sched(LR_STEP, 1);
	s.step_size = 1, s.gamma = 0.5;
	ir_set_lr_schedule(g, n, &s);
	cr_assert_eq(ir_finish(g, n), 0, "%s", g->err);
	ir_add_update(g, p, n->out[0]);
	char err[256];
	Interp *it = interp_new(g, DT_F64, 1, err, sizeof err);
	cr_assert(it, "%s", err);
	double grad[2] = {1, 2}, want[2] = {1, -2}, got[2], rate[3] = {0.5, 0.5, 0.25};
	for (int t = 1; t <= 3; t++) {
		cr_assert_eq(interp_set(it, gr, grad, DT_F64), 0);
		cr_assert_eq(interp_run(it, t), 0, "%s", interp_error(it));
		for (int k = 0; k < 2; k++)
			want[k] -= rate[t - 1] * grad[k];
	}
	cr_assert_eq(interp_get_f64(it, p, got), 0);
	cr_expect(got[0] == want[0] && got[1] == want[1], "got %g %g, want %g %g", got[0], got[1], want[0], want[1]);
	cr_expect_eq(interp_run(it, 0), -1, "a scheduled SGD needs a step >= 1");
	interp_free(it);
	ir_graph_free(g);
}
