/*
 * loss_scale.h — dynamic loss scaling (passes/loss_scale.c), in three steps around autodiff and
 * the optimizer inside pass_build_training. With o->loss_scale <= 0 every step does nothing.
 */
#ifndef DLCC_PASSES_LOSS_SCALE_H
#define DLCC_PASSES_LOSS_SCALE_H

#include <stdio.h>

#include "passes/passes.h"

typedef struct {
	Value *log2, *good;   /* the two step-global states */
	Value *scale, *loss;  /* LossScale(log2); the unscaled loss */
	Value *finite;        /* AllFinite of the gradients */
} LossScaling;

/* before autodiff: the states, the scale, and g->loss = loss * scale */
int loss_scale_begin(Graph *g, const TrainOpts *o, LossScaling *ls);
/* after autodiff: g->loss back to the loss; AllFinite over the trained parameters' gradients */
int loss_scale_grads(Graph *g, LossScaling *ls, Value **grads);
/* after the optimizer: (scale, finite) into every update; the scale's own update */
int loss_scale_finish(Graph *g, const TrainOpts *o, const LossScaling *ls);

#endif
