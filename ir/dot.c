/*
 * dot.c — the graph as Graphviz dot (`--emit dot`): values as edges, nodes as boxes labelled
 * with the op and output shape; graph-level values (inputs, parameters, state, constants) as
 * ellipses. Fusion groups (the `fuse = K` attribute of passes/fuse.c; members are contiguous
 * in the schedule) are dashed clusters, one kernel each.
 */
#include "ir/ir.h"

static const char *kind_color(ValueKind k)
{
	switch (k) {
	case V_INPUT: case V_LABEL: return "lightblue";
	case V_PARAM: return "palegreen";
	case V_STATE: return "khaki";
	default: return "lightgrey";
	}
}

void ir_print_dot(FILE *f, const Graph *g)
{
	char s[128];
	fprintf(f, "digraph \"%s\" {\n  node [fontname=\"monospace\", fontsize=10];\n", g->name);
	for (int i = 0; i < g->nvalues; i++) {
		const Value *v = g->values[i];
		if (v->kind == V_TEMP)
			continue;
		fprintf(f, "  v%d [label=\"%s\\n%s%s\", style=filled, fillcolor=%s];\n", v->id, v->name,
			ir_dt_name(v->dt), ir_shape_str(&v->shape, s, sizeof s), kind_color(v->kind));
	}
	for (int i = 0; i < g->nnodes; i++) {
		const Node *n = g->nodes[i];
		int64_t grp = ir_attr_i(n, "fuse", 0), prev = i ? ir_attr_i(g->nodes[i - 1], "fuse", 0) : 0;
		if (prev && prev != grp)
			fprintf(f, "  }\n");
		if (grp && grp != prev)
			fprintf(f, "  subgraph cluster_fuse%lld {\n  label=\"fusion group %lld (one kernel)\"; "
				   "style=dashed; color=blue;\n", (long long)grp, (long long)grp);
		fprintf(f, "  n%d [shape=box, label=\"%s\\n%s\"];\n", n->id, ir_ops[n->op].name,
			ir_shape_str(&n->out[0]->shape, s, sizeof s));
	}
	if (g->nnodes && ir_attr_i(g->nodes[g->nnodes - 1], "fuse", 0))
		fprintf(f, "  }\n");
	for (int i = 0; i < g->nnodes; i++) {
		const Node *n = g->nodes[i];
		for (int k = 0; k < n->nin; k++) {
			const Value *v = n->in[k];
			if (v->def)
				fprintf(f, "  n%d -> n%d;\n", v->def->id, n->id);
			else
				fprintf(f, "  v%d -> n%d;\n", v->id, n->id);
		}
	}
	for (int i = 0; i < g->nupdates; i++)
		if (g->updates[i].value->def)
			fprintf(f, "  n%d -> v%d [style=dashed, label=\"update\"];\n",
				g->updates[i].value->def->id, g->updates[i].state->id);
	fprintf(f, "}\n");
}
