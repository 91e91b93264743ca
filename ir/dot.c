/*
 * dot.c — the graph as Graphviz dot (`--emit dot`): values as edges, nodes as boxes labelled
 * with the op and output shape; graph-level values (inputs, parameters, state, constants) as
 * ellipses. Fusion groups will appear as clusters once fusion exists.
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
		fprintf(f, "  n%d [shape=box, label=\"%s\\n%s\"];\n", n->id, ir_ops[n->op].name,
			ir_shape_str(&n->out[0]->shape, s, sizeof s));
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
