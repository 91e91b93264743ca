/*
 * pipeline.c — the order in which passes run, and passes by name.
 *
 * pass_pipeline is the compile pipeline, one flat list of steps: the forward clean-up on the
 * model graph, a clone as the inference program, and a second clone turned into the training
 * program. Every step is followed by ir_verify (a failure there is a bug of the pass just run,
 * reported with its name) and, when asked for, a dump of the IR in the text ir_parse reads, so
 * a dump can be cut out and replayed with `dlcc opt FILE.dlir --passes NAME`.
 *
 * The training program is cleaned after autodiff by cse, simplify and dce: autodiff and the
 * loss emit duplicate constants and recomputations, Identity and Reshape round trips. Between
 * simplify and dce, batch-merge turns a weight gradient of a batched product (one product per
 * batch entry, then their sum) into one product over all rows (it rounds differently). The
 * convolutions become matrix products (im2col) once every gradient op exists and the precision
 * of their operands is known; --emit dl (no_fuse) keeps the model's own ops and leaves out
 * batch-merge too.
 *
 * pass_run_named serves `dlcc opt --passes a,b` (and tools that name passes): each name maps
 * to one pass entry point; "train" uses the default options (cross_entropy, sgd), "mixed-fp16"
 * and "mixed-bf16" are the mixed-precision pass for each half type, "im2col" the conv lowering
 * with its heuristic and "im2col-all" the lowering of every convolution; "batch-merge" is
 * pass_batch_merge.
 */
#include <string.h>

#include "passes/pipeline.h"

typedef struct {
	const char *dump; /* NULL, "after-all" or "a,b" */
	FILE *to;
} Dump;

static int pipe_dump_selected(const char *dump, const char *pass)
{
	if (!dump)
		return 0;
	if (strcmp(dump, "after-all") == 0)
		return 1;
	size_t n = strlen(pass);
	for (const char *p = dump; *p; p += strcspn(p, ","), p += *p == ',') {
		if (strncmp(p, pass, n) == 0 && (p[n] == ',' || p[n] == 0))
			return 1;
	}
	return 0;
}

/* after pass `name` returned rc on g: verify, dump; -1 with g->err on any failure */
static int pipe_step(const Dump *d, Graph *g, const char *name, int rc)
{
	if (rc < 0)
		return -1;
	if (ir_verify(g) < 0) {
		char msg[sizeof g->err];
		memcpy(msg, g->err, sizeof msg);
		return ir_error(g, "internal: invalid IR after pass '%s': %s", name, msg);
	}
	if (pipe_dump_selected(d->dump, name)) {
		fprintf(d->to, "# IR after %s\n", name);
		ir_print(d->to, g);
	}
	return 0;
}

/* the training program, from a clone of the forward graph; NULL with g->err on failure */
static Graph *pipe_training(const Dump *d, Graph *g, const TrainOpts *o)
{
	Graph *t = ir_graph_clone(g);
	if (pipe_step(d, t, "train", pass_build_training(t, o)) < 0 ||   /* loss, backward, optimizer */
	    pipe_step(d, t, "cse", pass_cse(t)) < 0 ||                  /* one node per computation */
	    pipe_step(d, t, "simplify", pass_simplify(t)) < 0 ||        /* exact algebraic rewrites */
	    pipe_step(d, t, "batch-merge", o->no_fuse ? 0 : pass_batch_merge(t)) < 0 || /* summed products */
	    pipe_step(d, t, "dce", pass_dce(t)) < 0 ||                  /* what they left unused */
	    pipe_step(d, t, "precision", pass_mixed_precision(t, o->half)) < 0 || /* fp16/bf16 products */
	    pipe_step(d, t, "im2col", o->no_fuse ? 0 : pass_im2col(t, o->conv)) < 0 || /* convs as GEMMs */
	    pipe_step(d, t, "fuse", o->no_fuse ? 0 : pass_fuse(t)) < 0) { /* kernel groups */
		memcpy(g->err, t->err, sizeof g->err);
		ir_graph_free(t);
		return NULL;
	}
	return t;
}

/* every name in a --dump-ir list is a step of the pipeline */
static int pipe_check_dump(Graph *g, const char *dump)
{
	static const char *const steps[] = {"import", "mark-params", "fold", "dce", "train", "cse", "simplify",
					    "batch-merge", "precision", "im2col", "inference", "fuse"};
	if (!dump || strcmp(dump, "after-all") == 0)
		return 0;
	for (const char *p = dump; *p; p += strcspn(p, ","), p += *p == ',') {
		int n = (int)strcspn(p, ","), ok = 0;
		for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
			ok |= (int)strlen(steps[i]) == n && strncmp(p, steps[i], n) == 0;
		if (!ok)
			return ir_error(g, "--dump-ir: unknown pass '%.*s' (after-all, or a list of: "
					"import, mark-params, fold, dce, train, cse, simplify, batch-merge, precision, im2col, "
					"inference, fuse)", n, p);
	}
	return 0;
}

int pass_pipeline(Graph *g, const TrainOpts *o, int train, Graph **infer_out, Graph **train_out,
		  const char *dump, FILE *dump_to)
{
	Dump d = {dump, dump_to ? dump_to : stderr};
	*infer_out = NULL;
	if (train_out)
		*train_out = NULL;
	if (pipe_check_dump(g, dump) < 0 ||
	    pipe_step(&d, g, "import", 0) < 0 ||                        /* the frontend's graph */
	    pipe_step(&d, g, "mark-params", pass_mark_params(g)) < 0 ||  /* trained vs frozen */
	    pipe_step(&d, g, "fold", pass_fold_constants(g)) < 0 ||      /* shape arithmetic, frozen params */
	    pipe_step(&d, g, "dce", pass_dce(g)) < 0)                   /* what no output needs */
		return -1;
	Graph *t = NULL;
	if (train && !(t = pipe_training(&d, g, o)))                     /* the training program */
		return -1;
	*infer_out = ir_graph_clone(g);                                  /* the inference program */
	if (pipe_step(&d, *infer_out, "inference", pass_inference(*infer_out)) < 0 ||        /* no dropout */
	    /* transposes into products (not under --no-fuse, which --emit dl uses: as written) */
	    pipe_step(&d, *infer_out, "simplify", o->no_fuse ? 0 : pass_simplify(*infer_out)) < 0 ||
	    pipe_step(&d, *infer_out, "dce", o->no_fuse ? 0 : pass_dce(*infer_out)) < 0 ||
	    pipe_step(&d, *infer_out, "precision", pass_mixed_precision(*infer_out, o->half)) < 0 ||
	    pipe_step(&d, *infer_out, "im2col", o->no_fuse ? 0 : pass_im2col(*infer_out, o->conv)) < 0 ||
	    pipe_step(&d, *infer_out, "fuse", o->no_fuse ? 0 : pass_fuse(*infer_out)) < 0) { /* kernel groups */
		memcpy(g->err, (*infer_out)->err, sizeof g->err);
		ir_graph_free(t);
		ir_graph_free(*infer_out);
		*infer_out = NULL;
		return -1;
	}
	if (train_out)
		*train_out = t;
	else
		ir_graph_free(t);
	return 0;
}

/* ---- passes by name ---- */

static int pipe_train_default(Graph *g)
{
	TrainOpts o;
	train_opts_default(&o, "sgd");
	o.loss = "cross_entropy";
	return pass_build_training(g, &o);
}

static int pipe_mixed_fp16(Graph *g) { return pass_mixed_precision(g, DT_F16); }
static int pipe_mixed_bf16(Graph *g) { return pass_mixed_precision(g, DT_BF16); }
static int pipe_im2col(Graph *g) { return pass_im2col(g, IM2COL_AUTO); }
static int pipe_im2col_all(Graph *g) { return pass_im2col(g, IM2COL_ALL); }

static const struct {
	const char *name;
	int (*run)(Graph *g);
} pipe_passes[] = {
	{"fold", pass_fold_constants},
	{"dce", pass_dce},
	{"cse", pass_cse},
	{"simplify", pass_simplify},
	{"verify", ir_verify},
	{"mark-params", pass_mark_params},
	{"train", pipe_train_default},
	{"fuse", pass_fuse},
	{"mixed-fp16", pipe_mixed_fp16},
	{"mixed-bf16", pipe_mixed_bf16},
	{"im2col", pipe_im2col},
	{"im2col-all", pipe_im2col_all},
	{"batch-merge", pass_batch_merge},
};

#define PIPE_NPASSES (sizeof pipe_passes / sizeof *pipe_passes)

const char *const *pass_names(void)
{
	static const char *names[PIPE_NPASSES + 1];
	for (size_t i = 0; i < PIPE_NPASSES; i++)
		names[i] = pipe_passes[i].name;
	return names;
}

int pass_run_named(Graph *g, const char *name)
{
	char known[256] = "";
	for (size_t i = 0; i < PIPE_NPASSES; i++) {
		if (strcmp(pipe_passes[i].name, name) == 0)
			return pipe_passes[i].run(g);
		strcat(strcat(known, i ? ", " : ""), pipe_passes[i].name);
	}
	return ir_error(g, "unknown pass '%s' (known: %s)", name, known);
}
