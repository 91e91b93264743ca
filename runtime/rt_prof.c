/*
 * rt_prof.c — the run-time profile: DLCC_PROFILE=1 (or =FILE) in the environment makes every
 * launch, matrix product and copy of an Rt synchronous and timed on the host, and prints, when
 * the Rt is destroyed, one line per kernel (or cuBLAS shape, or copy direction): total time,
 * calls, mean, share. The first training step is left out (rt_prof_reset after it: module
 * loads, cuBLAS set-up and first-touch costs are not a step's). Timing each call between two synchronisations adds a few microseconds per
 * call and removes the overlap of host and device, so the figures say where a step's time goes,
 * not how long a step takes unprofiled (dlcc-bench without DLCC_PROFILE says that).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_internal.h"

typedef struct {
	char name[96];
	long calls;
	double ms;
} ProfEntry;

struct RtProf {
	FILE *out;
	int n, cap;
	ProfEntry *e;
};

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

void rt_prof_open(Rt *rt)
{
	const char *env = getenv("DLCC_PROFILE");
	if (!env || !*env || !strcmp(env, "0"))
		return;
	RtProf *p = calloc(1, sizeof *p);
	if (!p)
		return;
	p->out = strcmp(env, "1") ? fopen(env, "a") : NULL;
	if (!p->out)
		p->out = stderr;
	rt->prof = p;
}

double rt_prof_begin(Rt *rt)
{
	rt_sync(rt);
	return now_ms();
}

void rt_prof_end(Rt *rt, double t0, const char *name)
{
	rt_sync(rt);
	double ms = now_ms() - t0;
	RtProf *p = rt->prof;
	int i = 0;
	while (i < p->n && strcmp(p->e[i].name, name))
		i++;
	if (i == p->n) {
		if (p->n == p->cap) {
			int cap = p->cap ? 2 * p->cap : 64;
			ProfEntry *e = realloc(p->e, sizeof *e * cap);
			if (!e)
				return;
			p->e = e, p->cap = cap;
		}
		snprintf(p->e[i].name, sizeof p->e[i].name, "%s", name);
		p->e[i].calls = 0, p->e[i].ms = 0;
		p->n++;
	}
	p->e[i].calls++;
	p->e[i].ms += ms;
}

void rt_prof_reset(Rt *rt)
{
	if (rt->prof)
		rt->prof->n = 0;
}

static int by_time(const void *a, const void *b)
{
	double x = ((const ProfEntry *)a)->ms, y = ((const ProfEntry *)b)->ms;
	return (x < y) - (x > y);
}

void rt_prof_close(Rt *rt)
{
	RtProf *p = rt->prof;
	if (!p)
		return;
	double total = 0;
	long calls = 0;
	for (int i = 0; i < p->n; i++)
		total += p->e[i].ms, calls += p->e[i].calls;
	qsort(p->e, p->n, sizeof *p->e, by_time);
	fprintf(p->out, "dlcc profile (%s): %.3f ms in %ld timed calls after the first training step, each "
		"between two synchronisations\n", rt->name, total, calls);
	fprintf(p->out, "%12s %8s %12s %7s  %s\n", "total ms", "calls", "mean us", "share", "kernel / call");
	for (int i = 0; i < p->n; i++)
		fprintf(p->out, "%12.3f %8ld %12.1f %6.1f%%  %s\n", p->e[i].ms, p->e[i].calls,
			1e3 * p->e[i].ms / p->e[i].calls, total > 0 ? 100 * p->e[i].ms / total : 0, p->e[i].name);
	if (p->out != stderr)
		fclose(p->out);
	free(p->e);
	free(p);
	rt->prof = NULL;
}
