/*
 * dsl.h — the dlcc model language (.dl): a small text in which a person writes a model directly
 * (docs/dl.md has the grammar and an example of every construct).
 *
 * dsl_load reads a .dl file and builds the same forward Graph the ONNX frontend would build for
 * the same model: inputs with a symbolic batch N, parameters (initial data from seeded
 * initializers, torch.nn.init's definitions), one IR node per operator call with its attributes
 * in IR normal form, and the named outputs. The file's `train { ... }` section comes back in a
 * DslTrain: every field has a `_set` flag, so the driver applies only what the file says and lets
 * its command-line flags override it.
 *
 * ir_print_dl is the way back: it writes any forward Graph (an ONNX import, say) as a .dl file
 * that dsl_load reads into the same program.
 *
 * Errors: NULL is returned and err holds `file:line:col: message`, the source line and a caret
 * under the column (three lines). Nothing leaks and nothing aborts on any input.
 */
#ifndef DLCC_FRONTEND_DSL_H
#define DLCC_FRONTEND_DSL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ir/ir.h"

/* The training section. Strings point to static storage (they outlive the graph). */
typedef struct {
	const char *loss;      int loss_set;      /* "cross_entropy", "mse", "none" */
	const char *optimizer; int optimizer_set; /* "sgd", "momentum", "adam", "adamw" */
	double lr;             int lr_set;
	double momentum;       int momentum_set;
	double weight_decay;   int weight_decay_set;
	double beta1, beta2;   int betas_set;
	double eps;            int eps_set;
	LrSchedule schedule;   int schedule_set;   /* the learning-rate schedule (ir/ir.h) */
	const char *precision; int precision_set; /* "fp32", "fp16", "bf16", "fp64" */
	int64_t batch;         int batch_set;
} DslTrain;

/* Read and compile a .dl file. train_out may be NULL. */
Graph *dsl_load(const char *path, DslTrain *train_out, char *err, size_t errlen);
/* The same from text in memory (len bytes, need not end in NUL); filename is for messages. */
Graph *dsl_parse(const char *text, size_t len, const char *filename, DslTrain *train_out, char *err,
		 size_t errlen);

/* The largest number of elements the initializers and constants of one model may hold together
 * (default 2^31); a fuzzing run lowers it. */
extern int64_t dsl_limit_elements;

/* Write a forward graph as .dl text (ir/emit_dl.c). Parameters get placeholder initializers (the
 * weights travel in a .safetensors file, `--load`); constants are written with their data. */
void ir_print_dl(FILE *f, const Graph *g);

#endif
