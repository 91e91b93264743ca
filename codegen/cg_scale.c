/*
 * cg_scale.c — the kernels of dynamic loss scaling (ops.def, passes/loss_scale.c).
 *
 * AllFinite(g1..gn) is two launches: one thread sets the flag to 1, then a grid-stride pass
 * over every gradient clears it at any inf or NaN (every writer writes the same 0, so the race
 * is benign). The gradients are found through a constant table (element count and cg_table_ref
 * per tensor), as in the multi-tensor optimizer, so one launch covers any number of tensors.
 * The test `v - v != 0` is true exactly for inf and NaN (no fast-math in either compiler).
 * LossScaleUpdate is one thread: it reads both states before writing, so it may run in place.
 */
#include <stdio.h>

#include "codegen/cg_internal.h"

static int emit_flag_init(CgEmit *e, const Node *n)
{
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	snprintf(k.name, sizeof k.name, "k%d_all_finite_init", e->nkernels);
	cg_arg_out(&k, "y", n->out[0]);
	snprintf(k.grid, sizeof k.grid, "1");
	cg_kernel_open(e, &k);
	cg_puts(&e->dev, "\tif (blockIdx.x == 0 && threadIdx.x == 0)\n\t\ty[0] = (R)1;\n");
	cg_kernel_close(e, &k);
	return 0;
}

int cg_emit_all_finite(CgEmit *e, const Node *n)
{
	if (emit_flag_init(e, n) < 0)
		return -1;
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	CgBuf *d = &e->dev;
	long long total = 0;
	cg_printf(d, "\n__constant__ long long %s_tab[] = {\n", k.name);
	for (int i = 0; i < n->nin; i++) {
		const Value *x = n->in[i];
		DLCC_ASSERT(!ir_has_batch(&x->shape) && x->dt == DT_F32);
		cg_printf(d, "\t%lldLL, %lldLL,\n", (long long)ir_numel(&x->shape), cg_table_ref(e, x));
		total += ir_numel(&x->shape);
	}
	cg_puts(d, "};\n");
	cg_arg_out(&k, "y", n->out[0]);
	cg_arg_raw(&k, "char *", "P", "P");
	cg_arg_raw(&k, "char *", "W", "W");
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%lld)", total);
	cg_kernel_open(e, &k);
	cg_printf(d, "\tfor (int t = 0; t < %d; t++) {\n", n->nin);
	cg_printf(d, "\t\tconst long long cnt = %s_tab[2 * t], ref = %s_tab[2 * t + 1];\n", k.name, k.name);
	cg_puts(d, "\t\tconst R *x = (const R *)((ref & 1 ? W : P) + (ref >> 1));\n");
	cg_printf(d, "\t\t%s {\n", cg_loop("i", "cnt"));
	cg_puts(d, "\t\t\tconst R v = x[i];\n\t\t\tif (v - v != (R)0)\n\t\t\t\ty[0] = (R)0;\n\t\t}\n\t}\n");
	cg_kernel_close(e, &k);
	return 0;
}

int cg_emit_loss_scale_update(CgEmit *e, const Node *n)
{
	CgKernel k;
	cg_kernel_begin(e, &k, n, NULL);
	cg_arg_out(&k, "k_out", n->out[0]);
	cg_arg_out(&k, "good_out", n->out[1]);
	cg_arg_in(&k, "k_in", n->in[0]);
	cg_arg_in(&k, "good_in", n->in[1]);
	cg_arg_in(&k, "finite", n->in[2]);
	snprintf(k.grid, sizeof k.grid, "1");
	cg_kernel_open(e, &k);
	cg_printf(&e->dev, "\tif (blockIdx.x != 0 || threadIdx.x != 0)\n\t\treturn;\n"
			   "\tR k = k_in[0], good = good_in[0];\n"
			   "\tif (finite[0] == (R)0)\n\t\tk -= (R)1, good = (R)0;\n"
			   "\telse if (good + (R)1 >= (R)%lld)\n\t\tk += (R)1, good = (R)0;\n"
			   "\telse\n\t\tgood += (R)1;\n"
			   "\tk_out[0] = k;\n\tgood_out[0] = good;\n",
		  (long long)ir_attr_i(n, "window", 2000));
	cg_kernel_close(e, &k);
	return 0;
}

/*
 * The mixed-precision copies of the parameters (passes/fuse.c "casts" group): every f32 → half
 * Cast of a parameter in one launch, through a constant table (element count, cg_table_ref of
 * the parameter, of the copy) like AllFinite's; grid-stride over each tensor in turn.
 */
int cg_emit_param_casts(CgEmit *e, const CgGroup *gr)
{
	CgKernel k;
	cg_kernel_begin(e, &k, NULL, cg_group_comment(gr));
	snprintf(k.name, sizeof k.name, "k%d_param_casts", e->nkernels);
	CgBuf *d = &e->dev;
	long long total = 0;
	DType half = gr->nodes[0]->out[0]->dt;
	cg_printf(d, "\n__constant__ long long %s_tab[] = {\n", k.name);
	for (int i = 0; i < gr->n; i++) {
		const Value *x = gr->nodes[i]->in[0], *y = gr->nodes[i]->out[0];
		DLCC_ASSERT(!ir_has_batch(&x->shape) && x->dt == DT_F32 && y->dt == half);
		cg_printf(d, "\t%lldLL, %lldLL, %lldLL,\n", (long long)ir_numel(&x->shape), cg_table_ref(e, x),
			  cg_table_ref(e, y));
		total += ir_numel(&x->shape);
	}
	cg_puts(d, "};\n");
	cg_arg_raw(&k, "char *", "P", "P");
	cg_arg_raw(&k, "char *", "W", "W");
	snprintf(k.grid, sizeof k.grid, "dlcc_grid(%lld)", total);
	cg_kernel_open(e, &k);
	cg_printf(d, "\tfor (int t = 0; t < %d; t++) {\n", gr->n);
	cg_printf(d, "\t\tconst long long cnt = %s_tab[3 * t], rx = %s_tab[3 * t + 1], ry = %s_tab[3 * t + 2];\n",
		  k.name, k.name, k.name);
	cg_puts(d, "\t\tconst R *x = (const R *)((rx & 1 ? W : P) + (rx >> 1));\n");
	cg_printf(d, "\t\t%s *y = (%s *)((ry & 1 ? W : P) + (ry >> 1));\n", cg_etype(half), cg_etype(half));
	cg_printf(d, "\t\t%s\n\t\t\ty[i] = %s;\n\t}\n", cg_loop("i", "cnt"), cg_st(half, "x[i]"));
	cg_kernel_close(e, &k);
	return 0;
}
