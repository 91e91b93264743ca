/*
 * pipeline.h — the compile pipeline the driver runs (passes/pipeline.c).
 */
#ifndef DLCC_PIPELINE_H
#define DLCC_PIPELINE_H

#include <stdio.h>

#include "passes/passes.h"

/* Runs the forward clean-up passes on g (in place), then hands out *infer_out (a clone of g:
 * the inference program) and, when `train` is set, *train_out (another clone turned into the
 * training program with options o). The caller frees both. dump: NULL, "after-all" or a comma
 * list of pass names; after each selected pass, "# IR after <pass>" and the IR go to dump_to.
 * ir_verify runs after every pass. Returns -1 with g->err set (nothing handed out) on failure. */
int pass_pipeline(Graph *g, const TrainOpts *o, int train, Graph **infer_out, Graph **train_out,
		  const char *dump, FILE *dump_to);

#endif
