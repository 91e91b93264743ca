/*
 * conv.c — window geometry of the convolution family (see conv.h): reading the normalised
 * attributes, output extents (floor or ceil mode, PyTorch's rule that a window must start
 * inside the input or its begin padding), and AveragePool's per-window divisor.
 *
 * The divisor is defined per axis by counting taps, so it also holds with dilation:
 * count_include_pad = 1 counts the taps inside the padded extent [-pb, in + pe), 0 only those
 * inside the input [0, in). For dilation 1 this is PyTorch's avg_pool rule (a ceil-mode window
 * that hangs past the end padding is clipped). The 2-D divisor is the product of both axes'.
 */
#include <string.h>

#include "ir/conv.h"

static int geom_fail(Graph *g, const Node *n, const char *what)
{
	if (g)
		ir_error(g, "node '%s' (%s): %s", n->name ? n->name : "?", ir_ops[n->op].name, what);
	return -1;
}

/* ints attribute `name` with exactly cnt entries, each >= lo, into v (axis-aligned to H, W) */
static int read_ints(Graph *g, const Node *n, const char *name, int cnt, int64_t lo, int64_t *v)
{
	int c = 0;
	const int64_t *a = ir_attr_ints(n, name, &c);
	char msg[160];
	snprintf(msg, sizeof msg, "attribute %s must list %d values >= %lld", name, cnt, (long long)lo);
	if (!a || c != cnt)
		return geom_fail(g, n, msg);
	for (int i = 0; i < cnt; i++) {
		if (a[i] < lo)
			return geom_fail(g, n, msg);
		v[i] = a[i];
	}
	return 0;
}

int ir_conv_geom(Graph *g, const Node *n, int sp, ConvGeom *cg)
{
	int64_t k[2], s[2], d[2], p[4];
	memset(cg, 0, sizeof *cg);
	if (sp != 1 && sp != 2)
		return geom_fail(g, n, "only 1-D and 2-D windows are supported");
	if (read_ints(g, n, "kernel_shape", sp, 1, k) < 0 || read_ints(g, n, "strides", sp, 1, s) < 0 ||
	    read_ints(g, n, "dilations", sp, 1, d) < 0 || read_ints(g, n, "pads", 2 * sp, INT64_MIN, p) < 0)
		return -1;
	cg->sp = sp;
	for (int a = 0; a < 2; a++) {
		int j = a - (2 - sp); /* the op's axis, -1 for the padding H of a 1-D op */
		cg->k[a] = j < 0 ? 1 : k[j];
		cg->s[a] = j < 0 ? 1 : s[j];
		cg->d[a] = j < 0 ? 1 : d[j];
		cg->pb[a] = j < 0 ? 0 : p[j];
		cg->pe[a] = j < 0 ? 0 : p[sp + j];
	}
	cg->group = ir_attr_i(n, "group", 1);
	cg->ceil_mode = (int)ir_attr_i(n, "ceil_mode", 0);
	cg->count_include_pad = (int)ir_attr_i(n, "count_include_pad", 0);
	if (cg->group < 1)
		return geom_fail(g, n, "group must be >= 1");
	return 0;
}

int64_t ir_conv_out(const ConvGeom *cg, int a, int64_t in)
{
	int64_t span = in + cg->pb[a] + cg->pe[a] - cg->d[a] * (cg->k[a] - 1) - 1;
	if (span < 0)
		return -1;
	int64_t o = span / cg->s[a] + 1;
	if (cg->ceil_mode && span % cg->s[a]) {
		o++;
		if ((o - 1) * cg->s[a] >= in + cg->pb[a]) /* the last window would start in the end padding */
			o--;
	}
	return o;
}

void ir_conv_hw(const Shape *s, int64_t *h, int64_t *w)
{
	*h = s->rank == 4 ? s->d[2] : 1;
	*w = s->d[s->rank - 1];
}

int64_t ir_pool_count(const ConvGeom *cg, int a, int64_t o, int64_t in)
{
	int64_t lo = cg->count_include_pad ? -cg->pb[a] : 0, hi = cg->count_include_pad ? in + cg->pe[a] : in;
	int64_t c = 0;
	for (int64_t t = 0; t < cg->k[a]; t++) {
		int64_t pos = o * cg->s[a] - cg->pb[a] + t * cg->d[a];
		c += pos >= lo && pos < hi;
	}
	return c;
}
