/*
 * passes.h — every pass of dlcc, one line each on what it needs and does. The order in which
 * they run is in passes/pipeline.c.
 */
#ifndef DLCC_PASSES_H
#define DLCC_PASSES_H

#include "ir/ir.h"

/* which convolutions pass_im2col rewrites into matrix products */
enum { IM2COL_AUTO, IM2COL_NONE, IM2COL_ALL };

typedef struct {
	const char *loss;      /* "cross_entropy", "mse", "none" */
	const char *optimizer; /* "sgd", "momentum", "adam", "adamw" */
	double lr, momentum, dampening, weight_decay, beta1, beta2, eps;
	int nesterov;
	LrSchedule schedule; /* of lr, per optimizer step (ir/ir.h) */
	int no_fuse; /* pipeline: leave out kernel fusion (--emit dl prints the model, not its kernels) */
	DType half;  /* mixed precision: DT_F16 or DT_BF16 products; DT_F32 (0) for none */
	double loss_scale;     /* > 0: dynamic loss scaling from this initial scale (fp16) */
	int loss_scale_window; /* good steps after which the scale doubles */
	int conv;    /* IM2COL_AUTO / _NONE / _ALL: convolutions as im2col + GEMM (--conv, DLCC_CONV) */
} TrainOpts;

/* torch.optim defaults: lr 1e-3 for adam/adamw, 0.01 for sgd/momentum; momentum 0.9 for
 * "momentum" (0 for sgd); betas (0.9, 0.999); eps 1e-8; weight_decay 0 (1e-2 for adamw);
 * a constant learning rate. */
void train_opts_default(TrainOpts *o, const char *optimizer);

/* Constant folding: nodes whose inputs are all V_CONST become V_CONST values (uses the interpreter). */
int pass_fold_constants(Graph *g);
/* Dead-code elimination: drop nodes that reach no output, loss or update. */
int pass_dce(Graph *g);
/* CSE: nodes with the same op, inputs and attributes (and equal constants) become one; never
 * the optimizer updates, seeded ops or model outputs. */
int pass_cse(Graph *g);
/* Exact algebraic rewrites: Identity, Neg∘Neg, cancelling Transposes, no-op and chained
 * Reshapes, x*1, x/1, x+0, x-0. Leaves dead nodes for pass_dce. */
int pass_simplify(Graph *g);
/* ReduceSum over the batch axes of MatMul(A, B) {transA = 1} (a weight gradient, read by nothing
 * else) → one 2-D MatMul of A and B reshaped to [rows, C]: exact up to rounding (the sum's order
 * changes). Training program, after simplify, before dce and fuse; leaves the product to pass_dce. */
int pass_batch_merge(Graph *g);
/* Parameters = float V_PARAM values on a differentiable path to outputs[0]; others become V_CONST. */
int pass_mark_params(Graph *g);
/* BatchNormalization -> batch statistics + running-statistic updates (start of training). */
int pass_bn_train(Graph *g);
/* Loss: adds the label input and the scalar loss on outputs[0] (o->loss), sets g->loss. */
int pass_loss(Graph *g, const TrainOpts *o);
/* Autodiff: appends the backward program of g->loss; grads[i] = dloss/dparams[i]. */
int pass_autodiff(Graph *g, Value **grads);
/* Optimizer: adds the state tensors and update nodes for every parameter, given its gradient;
 * the learning-rate schedule becomes attributes of the update nodes. */
int pass_optimizer(Graph *g, const TrainOpts *o, Value **grads);
/* Inference behaviour of the forward graph's clone: Dropout becomes the identity (ratio 0). */
int pass_inference(Graph *g);
/* loss + autodiff + optimizer: turns a forward graph into the training program. */
int pass_build_training(Graph *g, const TrainOpts *o);
/* Mixed precision: the P_HALF ops (matrix products, convolutions) read their operands in `half`
 * (DT_F16 or DT_BF16; DT_F32: nothing to do) through inserted Casts and accumulate in fp32. */
int pass_mixed_precision(Graph *g, DType half);
/* Convolutions as matrix products: Conv/ConvGradInput/ConvGradWeight → Im2Col/Col2Im + MatMul
 * for the layers `mode` (IM2COL_*) picks; after precision, before fusion. */
int pass_im2col(Graph *g, int mode);
/* Fusion grouping (last): Gemm bias → Add; marks kernel groups `fuse = K`, members contiguous. */
int pass_fuse(Graph *g);
/* inside pass_fuse: a product with a cuBLASLt epilogue form (fuse.c); the backward epilogue
 * groups, on the grouped schedule (fuse_grad.c) */
int fuse_product_form(const Node *p);
/* the readers of each value: positions use[use0[id] .. use0[id + 1]) (fuse.c; free both) */
void fuse_index_uses(const Graph *g, int **use0, int **use);
int fuse_grad_epilogues(Graph *g);

/* Passes by name, for `dlcc opt --passes a,b` and `--dump-ir`: fold, dce, cse, simplify, mark-params, train
 * (uses default TrainOpts: cross_entropy, sgd), im2col (the heuristic), im2col-all and batch-merge. Returns -1
 * with g->err set. */
int pass_run_named(Graph *g, const char *name);
const char *const *pass_names(void); /* NULL-terminated */

#endif
