/*
 * test_dsl.c — the .dl frontend through its C API: the graph a model builds, the torch.nn.init
 * initializers (bounds, moments, reproducibility), the training section, error positions, the
 * limits that keep any input finite, and the printer's round trip (ir_print_dl then dsl_parse).
 * The command-line behaviour and every error message are in tests/lit/dsl/.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "frontend/dsl.h"

static char err[1024];

static Graph *parse(const char *text, DslTrain *t)
{
	return dsl_parse(text, strlen(text), "t.dl", t, err, sizeof err);
}

static Value *param(Graph *g, const char *name)
{
	for (int i = 0; i < g->nparams; i++)
		if (!strcmp(g->params[i]->name, name))
			return g->params[i];
	return NULL;
}

static const char *mlp =
	"model m\n"
	"input x: f32[N, 64]\n"
	"block linear(x, i, o) {\n"
	"  param weight: f32[o, i] = kaiming_uniform(a = sqrt(5))\n"
	"  param bias: f32[o] = uniform(-1 / sqrt(i), 1 / sqrt(i))\n"
	"  return gemm(x, weight, bias, transB = 1)\n"
	"}\n"
	"h = relu(linear(x, 64, 128) as 0)\n"
	"output logits = linear(h, 128, 10) as 2\n";

Test(dsl, mlp_graph)
{
	Graph *g = parse(mlp, NULL);
	cr_assert(g, "%s", err);
	cr_assert_str_eq(g->name, "m");
	cr_assert_eq(g->ninputs, 1);
	cr_assert_eq(g->inputs[0]->shape.d[0], -1);
	cr_assert_eq(g->nparams, 4);
	cr_assert_str_eq(g->params[0]->name, "0.weight");
	cr_assert_str_eq(g->params[3]->name, "2.bias");
	cr_assert_eq(g->nnodes, 3);
	cr_assert_eq(g->nodes[0]->op, OP_GEMM);
	cr_assert_eq(g->nodes[1]->op, OP_RELU);
	cr_assert_eq(g->nodes[0]->nattr, 4);
	cr_assert_str_eq(g->nodes[0]->attr[0].name, "alpha");
	cr_assert_eq(ir_attr_i(g->nodes[0], "transB", 0), 1);
	cr_assert_eq(g->noutputs, 1);
	cr_assert_str_eq(g->outputs[0]->name, "logits");
	cr_assert_eq(g->outputs[0]->shape.d[1], 10);
	ir_graph_free(g);
}

static double moment(const Value *p, int k, double mean)
{
	int64_t n = ir_numel(&p->shape);
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += pow(((float *)p->data)[i] - mean, k);
	return s / n;
}

static double absmax(const Value *p)
{
	double m = 0;
	for (int64_t i = 0; i < ir_numel(&p->shape); i++)
		m = fmax(m, fabs(((float *)p->data)[i]));
	return m;
}

Test(dsl, initializers_follow_torch)
{
	Graph *g = parse("param ku: f32[256, 64] = kaiming_uniform(a = sqrt(5))\n"
			 "param kn: f32[256, 64, 2, 2] = he_normal(mode = fan_out, nonlinearity = relu)\n"
			 "param xu: f32[300, 100] = glorot_uniform(gain = 2)\n"
			 "param xn: f32[300, 100] = xavier_normal\n"
			 "param nm: f32[40000] = normal(mean = 1, std = 2)\n"
			 "param un: f32[40000] = uniform(-3, 5)\n"
			 "param c: f32[3] = constant(0.25)\n"
			 "param o: f32[2] = ones\n"
			 "param l: f32[2, 2] = [1, 2, 3, 4]\n"
			 "input x: f32[N, 3]\n"
			 "output y = x * c\n", NULL);
	cr_assert(g, "%s", err);
	Value *ku = param(g, "ku");
	double b = 1 / sqrt(64.0); /* gain sqrt(2 / (1 + 5)), bound sqrt(3) * gain / sqrt(fan_in) */
	cr_assert(absmax(ku) <= b && absmax(ku) > 0.99 * b);
	cr_assert_float_eq(moment(param(g, "kn"), 2, 0), 2.0 / (256 * 4), 0.1 * 2.0 / 1024);
	b = 2 * sqrt(6.0 / 400);
	cr_assert(absmax(param(g, "xu")) <= b && absmax(param(g, "xu")) > 0.99 * b);
	cr_assert_float_eq(moment(param(g, "xn"), 2, 0), 2.0 / 400, 0.1 * 2.0 / 400);
	cr_assert_float_eq(moment(param(g, "nm"), 1, 0), 1.0, 0.05);
	cr_assert_float_eq(moment(param(g, "nm"), 2, 1), 4.0, 0.15);
	cr_assert_float_eq(moment(param(g, "un"), 1, 0), 1.0, 0.05);
	cr_assert(absmax(param(g, "un")) <= 5);
	cr_assert_eq(((float *)param(g, "c")->data)[2], 0.25f);
	cr_assert_eq(((float *)param(g, "o")->data)[1], 1.0f);
	cr_assert_eq(((float *)param(g, "l")->data)[3], 4.0f);
	ir_graph_free(g);
}

Test(dsl, initializers_are_seeded_by_seed_and_name)
{
	const char *a = "seed 1\nparam w: f32[8, 8] = normal\nparam v: f32[8, 8] = normal\ninput x: f32[N, 8]\noutput y = x @ w\n";
	const char *b = "seed 2\nparam w: f32[8, 8] = normal\nparam v: f32[8, 8] = normal\ninput x: f32[N, 8]\noutput y = x @ w\n";
	Graph *g1 = parse(a, NULL), *g2 = parse(a, NULL), *g3 = parse(b, NULL);
	cr_assert(g1 && g2 && g3, "%s", err);
	cr_assert(!memcmp(param(g1, "w")->data, param(g2, "w")->data, 256));
	cr_assert(memcmp(param(g1, "w")->data, param(g3, "w")->data, 256));
	cr_assert(memcmp(param(g1, "w")->data, param(g1, "v")->data, 256));
	ir_graph_free(g1);
	ir_graph_free(g2);
	ir_graph_free(g3);
}

Test(dsl, train_section)
{
	DslTrain t;
	char text[1024];
	snprintf(text, sizeof text, "%strain {\n  loss = mse\n  optimizer = adamw(lr = 3e-4, betas = [0.9, 0.95])\n"
		 "  schedule = step(step_size = 100, gamma = 0.5, warmup = 20)\n  precision = bf16\n  batch = 16\n}\n", mlp);
	Graph *g = parse(text, &t);
	cr_assert(g, "%s", err);
	cr_assert(t.loss_set && !strcmp(t.loss, "mse"));
	cr_assert(t.optimizer_set && !strcmp(t.optimizer, "adamw"));
	cr_assert(t.lr_set && t.lr == 3e-4);
	cr_assert(t.betas_set == 3 && t.beta2 == 0.95);
	cr_assert(!t.eps_set && !t.momentum_set && !t.weight_decay_set);
	const LrSchedule *s = &t.schedule;
	cr_assert(t.schedule_set && s->kind == LR_STEP && s->step_size == 100 && s->gamma == 0.5 && s->warmup == 20);
	cr_assert(t.precision_set && !strcmp(t.precision, "bf16"));
	cr_assert(t.batch_set && t.batch == 16);
	ir_graph_free(g);
}

Test(dsl, loops_and_scopes)
{
	Graph *g = parse("input x: f32[N, 4]\n"
			 "block attn(h) {\n  param w: f32[4, 4] = zeros\n  return h @ w\n}\n"
			 "block layer(h) {\n  a = attn(h)\n  return h + a\n}\n"
			 "for i in 0..12 {\n  x = layer(x) as \"h{i}\"\n}\n"
			 "output y = x\n", NULL);
	cr_assert(g, "%s", err);
	cr_assert_eq(g->nparams, 12);
	cr_assert_str_eq(g->params[0]->name, "h0.a.w");
	cr_assert_str_eq(g->params[11]->name, "h11.a.w");
	cr_assert_eq(g->nnodes, 24);
	ir_graph_free(g);
}

static void expect_error(const char *text, const char *where, const char *msg)
{
	Graph *g = parse(text, NULL);
	cr_assert_null(g, "accepted: %s", text);
	cr_assert(strstr(err, where) == err, "error '%s' is not at %s", err, where);
	cr_assert(strstr(err, msg), "error '%s' does not say '%s'", err, msg);
	cr_assert(strchr(strchr(err, '\n') + 1, '\n'), "no caret line: %s", err);
}

Test(dsl, errors)
{
	expect_error("input x: f32[N, 4]\noutput y = relu(q)\n", "t.dl:2:17:", "unknown name 'q'");
	expect_error("input x: f32[N, 4]\nparam w: f32[5] = zeros\noutput y = x - w\n", "t.dl:3:14:", "[N,4] and [5]");
	expect_error("input x: f32[N, 4]\noutput y = sigmoid()\n", "t.dl:2:12:", "wrong argument count");
	expect_error("input x: f32[N, 4]\noutput y = x + 1.5.2\n", "t.dl:2:16:", "bad number literal");
	expect_error("", "t.dl:1:1:", "no output");
}

Test(dsl, limits_keep_any_input_finite)
{
	char deep[3000];
	strcpy(deep, "output y = ");
	memset(deep + 11, '(', 2000);
	strcpy(deep + 2011, "1");
	expect_error("block b(x) {\n  return b(x) as r\n}\ninput x: f32[N, 4]\noutput y = b(x) as q\n", "t.dl:2:",
		     "more than 64 deep");
	expect_error("input x: f32[N, 4]\nfor i in 0..1000000 {\n  x = relu(x)\n}\noutput y = x\n", "t.dl:2:",
		     "more than 100000 times");
	expect_error("param w: f32[100000, 100000] = zeros\n", "t.dl:1:", "elements in all");
	expect_error(deep, "t.dl:1:", "nested too deeply");
}

/* ir_print_dl writes a graph that dsl_parse reads back into the same ops, shapes and names */
Test(dsl, printer_round_trip)
{
	Graph *g = parse("input x: f32[N, 6]\nconst c: f32[1, 6] = 0.5\nparam w: f32[6, 6] = zeros\n"
			 "h = -(x @ w) / 3 - (x - softmax(x, axis = 0)) * c\n"
			 "output y = reduce_sum(reshape(h, [2 * N, 3]), keepdims = 0) + 1\n", NULL);
	cr_assert(g, "%s", err);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ir_print_dl(f, g);
	fclose(f);
	Graph *b = dsl_parse(buf, len, "back.dl", NULL, err, sizeof err);
	cr_assert(b, "%s\n%s", err, buf);
	cr_assert_eq(b->nnodes, g->nnodes, "%s", buf);
	for (int i = 0; i < g->nnodes; i++) {
		cr_assert_eq(b->nodes[i]->op, g->nodes[i]->op, "node %d\n%s", i, buf);
		cr_assert(ir_shape_eq(&b->nodes[i]->out[0]->shape, &g->nodes[i]->out[0]->shape));
		cr_assert_eq(b->nodes[i]->nattr, g->nodes[i]->nattr);
	}
	cr_assert_str_eq(b->outputs[0]->name, "y");
	cr_assert_str_eq(b->params[0]->name, "w");
	free(buf);
	ir_graph_free(g);
	ir_graph_free(b);
}
