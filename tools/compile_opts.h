/*
 * compile_opts.h — the compile options shared by `dlcc MODEL`, `dlcc info` and `dlcc check`,
 * and the front half of compilation: model file → inference and training programs.
 */
#ifndef DLCC_COMPILE_OPTS_H
#define DLCC_COMPILE_OPTS_H

#include <stdio.h>

#include "codegen/codegen.h"
#include "passes/passes.h"

typedef struct {
	const char *model, *out, *emit, *dump, *mode, *precision, *arch;
	const char *conv; /* --conv auto|direct|im2col, NULL: DLCC_CONV or auto */
	TrainOpts train;
	int batch, verbose, quiet, no_fuse;
	int lr_set, momentum_set, wd_set;
	double loss_scale;     /* --loss-scale (fp16): initial dynamic loss scale; 0 = default */
	int loss_scale_window; /* --loss-scale-window: good steps before the scale doubles; 0 = default */
	LrSchedule sched; int sched_set; /* --schedule, --warmup, ...: SCHED_* bits of what was given */
} CompileOpts;

enum { SCHED_KIND = 1, SCHED_WARMUP = 2, SCHED_STEP_SIZE = 4, SCHED_GAMMA = 8, SCHED_STEPS = 16,
       SCHED_MIN_LR = 32 };

void compile_opts_init(CompileOpts *o);
/* consume argv[*i] (and its value) if it is a compile option; 1 if consumed */
int compile_opts_parse(CompileOpts *o, int argc, char **argv, int *i);
/* finish defaults once all arguments are read (optimizer defaults, validation) */
void compile_opts_finish(CompileOpts *o);
/* load and lower: *infer and (when training) *train; dies with status 2 on bad input */
void compile_front(CompileOpts *o, Graph **infer, Graph **train);
DType compile_precision(const CompileOpts *o);
/* the memory plan and per-step counts of g at max batch `batch` as `# ` comment lines (for
 * --emit ir; tools/cmd_info.c); nothing when planning fails */
void info_plan_comment(FILE *f, Graph *g, int batch);

#endif
