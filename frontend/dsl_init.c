/*
 * dsl_init.c — initial values of parameters: `param w: f32[64, 784] = kaiming_uniform(a = sqrt(5))`.
 *
 * The initializers are those of torch.nn.init, with its definitions and argument names: zeros,
 * ones, constant(val), uniform(a = 0, b = 1), normal(mean = 0, std = 1), xavier_uniform(gain)
 * and xavier_normal(gain) (alias glorot_*), kaiming_uniform(a, mode, nonlinearity) and
 * kaiming_normal (alias he_*), with calculate_gain and the fan-in/fan-out rule (dim 1 and dim 0
 * times the receptive field, prod(shape[2:])). A bare number fills the tensor; a list gives every
 * element.
 *
 * Random numbers come from dlcc's own generator, not torch's: each parameter has a splitmix64
 * stream seeded by (model seed, full parameter name), uniform = top 53 bits / 2^53, normal =
 * Box-Muller (sqrt(-2 ln(1-u1)) cos(2 pi u2), one value per pair). So a parameter's initial
 * value depends only on the seed, its name, its shape and its initializer: reproducible, and
 * unchanged when other parameters are added. Values are drawn in float64 and rounded to the dtype.
 */
#include <math.h>
#include <string.h>

#include "frontend/dsl_imp.h"
#include "rt_half.h"

typedef struct {
	uint64_t s;
} Rng;

static uint64_t rng_next(Rng *r)
{
	uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static double rng_uniform(Rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

static double rng_normal(Rng *r)
{
	double u1 = 1.0 - rng_uniform(r), u2 = rng_uniform(r);
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static Rng rng_for(uint64_t seed, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	Rng r = {h ^ (seed * 0x9E3779B97F4A7C15ull)};
	rng_next(&r);
	return r;
}

/* ---- arguments ---- */

typedef struct {
	const char *name, *alias;
	const char *args[3]; /* argument names; a leading '$' marks a word (mode, nonlinearity) */
	double dflt[3];
	const char *wdflt[3];
} InitSpec;

enum { I_ZEROS, I_ONES, I_CONSTANT, I_UNIFORM, I_NORMAL, I_XU, I_XN, I_KU, I_KN };
static const InitSpec inits[] = {
	[I_ZEROS] = {"zeros", NULL},
	[I_ONES] = {"ones", NULL},
	[I_CONSTANT] = {"constant", NULL, {"val"}, {NAN}},
	[I_UNIFORM] = {"uniform", NULL, {"a", "b"}, {0, 1}},
	[I_NORMAL] = {"normal", NULL, {"mean", "std"}, {0, 1}},
	[I_XU] = {"xavier_uniform", "glorot_uniform", {"gain"}, {1}},
	[I_XN] = {"xavier_normal", "glorot_normal", {"gain"}, {1}},
	[I_KU] = {"kaiming_uniform", "he_uniform", {"a", "$mode", "$nonlinearity"}, {0}, {0, "fan_in", "leaky_relu"}},
	[I_KN] = {"kaiming_normal", "he_normal", {"a", "$mode", "$nonlinearity"}, {0}, {0, "fan_in", "leaky_relu"}},
};
#define NINITS ((int)(sizeof inits / sizeof *inits))

typedef struct {
	double num[3];
	const char *word[3];
} InitArgs;

static int find_init(const char *name)
{
	for (int i = 0; i < NINITS; i++)
		if (!strcmp(name, inits[i].name) || (inits[i].alias && !strcmp(name, inits[i].alias)))
			return i;
	return -1;
}

static int arg_index(const InitSpec *s, const char *name)
{
	for (int i = 0; i < 3 && s->args[i]; i++)
		if (!strcmp(s->args[i] + (s->args[i][0] == '$'), name))
			return i;
	return -1;
}

static void arg_value(Dsl *d, const InitSpec *s, int i, InitArgs *a)
{
	if (s->args[i][0] != '$') {
		a->num[i] = dsl_num_expr(d, s->args[i]);
		return;
	}
	Tok *t = dsl_tok(d, d->pos);
	if (t->k != TK_IDENT && t->k != TK_STRING)
		dsl_fail(d, d->pos, "%s must be a word (like fan_in or relu)", s->args[i] + 1);
	a->word[i] = t->text;
	d->pos++;
}

static void parse_init_args(Dsl *d, const InitSpec *s, InitArgs *a)
{
	int seen[3] = {0}, n = 0;
	for (int i = 0; i < 3; i++)
		a->num[i] = s->dflt[i], a->word[i] = s->wdflt[i];
	if (!dsl_accept(d, "("))
		return;
	while (!dsl_is(d, ")")) {
		Tok *t = dsl_tok(d, d->pos), *nx = dsl_tok(d, d->pos + 1);
		int i = n++, at = d->pos;
		if (t->k == TK_IDENT && nx->k == TK_PUNCT && !strcmp(nx->text, "=")) {
			if ((i = arg_index(s, t->text)) < 0)
				dsl_fail(d, at, "%s has no argument '%s'", s->name, t->text);
			d->pos += 2;
		}
		if (i >= 3 || !s->args[i])
			dsl_fail(d, at, "wrong argument count: %s takes %d argument%s", s->name,
				 s->args[2] ? 3 : s->args[1] ? 2 : s->args[0] ? 1 : 0, s->args[0] && !s->args[1] ? "" : "s");
		if (seen[i]++)
			dsl_fail(d, at, "argument '%s' given twice", s->args[i] + (s->args[i][0] == '$'));
		arg_value(d, s, i, a);
		if (!dsl_accept(d, ","))
			break;
	}
	dsl_expect(d, ")");
}

/* ---- torch.nn.init ---- */

static void fans(Dsl *d, int tok, const Shape *s, const char *who, double *fan_in, double *fan_out)
{
	if (s->rank < 2)
		dsl_fail(d, tok, "%s needs a parameter of rank 2 or more (it uses fan in and fan out)", who);
	double rf = 1;
	for (int i = 2; i < s->rank; i++)
		rf *= (double)s->d[i];
	*fan_in = (double)s->d[1] * rf;
	*fan_out = (double)s->d[0] * rf;
}

static double gain(Dsl *d, int tok, const char *nl, double a)
{
	static const char *const one[] = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
					  "conv_transpose2d", "conv_transpose3d", "sigmoid", NULL};
	for (int i = 0; one[i]; i++)
		if (!strcmp(nl, one[i]))
			return 1;
	if (!strcmp(nl, "tanh"))
		return 5.0 / 3.0;
	if (!strcmp(nl, "relu"))
		return sqrt(2.0);
	if (!strcmp(nl, "leaky_relu"))
		return sqrt(2.0 / (1 + a * a));
	if (!strcmp(nl, "selu"))
		return 0.75;
	dsl_fail(d, tok, "unknown nonlinearity '%s' (linear, sigmoid, tanh, relu, leaky_relu, selu)", nl);
}

/* the uniform bound or normal std of kaiming_* */
static double kaiming_scale(Dsl *d, int tok, const Shape *s, const InitArgs *a, const char *who)
{
	double fi, fo;
	fans(d, tok, s, who, &fi, &fo);
	if (strcmp(a->word[1], "fan_in") && strcmp(a->word[1], "fan_out"))
		dsl_fail(d, tok, "mode must be fan_in or fan_out, not '%s'", a->word[1]);
	double fan = !strcmp(a->word[1], "fan_in") ? fi : fo;
	if (fan == 0)
		return 0;
	return gain(d, tok, a->word[2], a->num[0]) / sqrt(fan);
}

/* Every initializer is "uniform in [p, q)" or "normal with mean p and std q" (zeros: normal
 * with std 0). Sets *normal, *p, *q, checking the arguments. */
static void law(Dsl *d, int tok, int kind, const InitArgs *a, const Shape *s, int *normal, double *p, double *q)
{
	double fi, fo, b;
	*normal = 1;
	*p = *q = 0;
	switch (kind) {
	case I_ZEROS: return;
	case I_ONES: *p = 1; return;
	case I_CONSTANT:
		if (isnan(a->num[0]))
			dsl_fail(d, tok, "constant needs a value: constant(val)");
		*p = a->num[0];
		return;
	case I_UNIFORM: *normal = 0; *p = a->num[0]; *q = a->num[1]; return;
	case I_NORMAL: *p = a->num[0]; *q = a->num[1]; return;
	case I_XU:
	case I_XN:
		fans(d, tok, s, inits[kind].name, &fi, &fo);
		b = a->num[0] * sqrt(2.0 / (fi + fo));
		break;
	default:
		b = kaiming_scale(d, tok, s, a, inits[kind].name);
		break;
	}
	*normal = kind == I_XN || kind == I_KN;
	*p = *normal ? 0 : -b * sqrt(3.0);
	*q = *normal ? b : b * sqrt(3.0);
}

/* ---- into the parameter ---- */

static void store(Value *p, int64_t k, double x)
{
	float f = (float)x;
	switch (p->dt) {
	case DT_F64: ((double *)p->data)[k] = x; break;
	case DT_F16: ((uint16_t *)p->data)[k] = rt_f32_to_f16(f); break;
	case DT_BF16: ((uint16_t *)p->data)[k] = rt_f32_to_bf16(f); break;
	default: ((float *)p->data)[k] = f; break;
	}
}

static void from_value(Dsl *d, int tok, DVal v, Value *p, int64_t n)
{
	if (v.k == DV_NUM && !v.nb) {
		for (int64_t k = 0; k < n; k++)
			store(p, k, v.num);
		return;
	}
	if (v.k != DV_LIST)
		dsl_fail(d, tok, "expected an initializer (zeros, ones, constant, uniform, normal, xavier_*, "
			 "kaiming_*), a number or a list");
	if (v.n != n)
		dsl_fail(d, tok, "%d values for a parameter of %lld elements", v.n, (long long)n);
	for (int64_t k = 0; k < n; k++) {
		if (v.items[k].k != DV_NUM || v.items[k].nb)
			dsl_fail(d, tok, "bad literal: expected a number");
		store(p, k, v.items[k].num);
	}
}

void dsl_param_init(Dsl *d, Value *p, const char *fullname)
{
	int at = d->pos;
	int64_t n = ir_numel(&p->shape);
	p->data = ir_alloc(d->g, (n ? n : 1) * ir_dt_size(p->dt));
	Tok *t = dsl_tok(d, at);
	int kind = t->k == TK_IDENT && !t->quoted ? find_init(t->text) : -1;
	if (kind < 0) {
		from_value(d, at, dsl_expr(d), p, n);
		return;
	}
	InitArgs a;
	Rng r = rng_for(d->seed, fullname);
	int normal;
	double lo, hi;
	d->pos++;
	parse_init_args(d, &inits[kind], &a);
	law(d, at, kind, &a, &p->shape, &normal, &lo, &hi);
	for (int64_t k = 0; k < n; k++)
		store(p, k, normal ? lo + hi * rng_normal(&r) : lo + (hi - lo) * rng_uniform(&r));
}
