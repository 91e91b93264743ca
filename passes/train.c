/*
 * train.c — turn a forward graph into the training program (pass_build_training), and the
 * torch.optim defaults of the training options (train_opts_default).
 *
 * pass_build_training runs pass_bn_train (BatchNormalization with batch statistics), pass_loss
 * (label + scalar loss on outputs[0]), pass_autodiff (the
 * backward program, one gradient per parameter) and pass_optimizer (state tensors and update
 * nodes), in that order; with o->loss_scale > 0 (fp16) dynamic loss scaling wraps autodiff and
 * the optimizer (passes/loss_scale.c). Precondition: pass_mark_params has already chosen the parameters (the
 * pipeline runs it before cloning the inference graph). Simplifying the result (folding, CSE,
 * DCE) is left to the passes that follow in passes/pipeline.c.
 */
#include <stdlib.h>
#include <string.h>

#include "passes/loss_scale.h"

void train_opts_default(TrainOpts *o, const char *optimizer)
{
	const char *opt = optimizer ? optimizer : "sgd";
	int adam = strcmp(opt, "adam") == 0 || strcmp(opt, "adamw") == 0;
	memset(o, 0, sizeof *o);
	o->loss = "cross_entropy";
	o->optimizer = opt;
	o->lr = adam ? 1e-3 : 0.01;
	o->momentum = strcmp(opt, "momentum") == 0 ? 0.9 : 0.0;
	o->beta1 = 0.9;
	o->beta2 = 0.999;
	o->eps = 1e-8;
	o->weight_decay = strcmp(opt, "adamw") == 0 ? 1e-2 : 0.0;
	ir_lr_default(&o->schedule);
}

int pass_build_training(Graph *g, const TrainOpts *o)
{
	LossScaling ls;
	if (pass_bn_train(g) < 0 || pass_loss(g, o) < 0 || loss_scale_begin(g, o, &ls) < 0)
		return -1;
	Value **grads = calloc(g->nparams ? g->nparams : 1, sizeof *grads);
	if (!grads)
		dlcc_internal_error(__FILE__, __LINE__, "out of memory");
	int rc = pass_autodiff(g, grads);
	if (rc == 0)
		rc = loss_scale_grads(g, &ls, grads);
	if (rc == 0)
		rc = pass_optimizer(g, o, grads);
	if (rc == 0)
		rc = loss_scale_finish(g, o, &ls);
	free(grads);
	return rc;
}
