/*
 * dsl_fuzz.c — libFuzzer target for the .dl frontend: any bytes go to dsl_parse; a graph that
 * comes back is also printed with ir_print_dl and parsed again (the printer's output must always
 * read back). Crashes, leaks (AddressSanitizer) and hangs (-timeout) are the findings; parse
 * errors are expected. The element limit is lowered so that a fuzzed `f32[100000, 100000]` is an
 * error rather than an out-of-memory. Build and run: tests/fuzz/README.md (not part of the CMake
 * build: CI needs no clang).
 */
#include <stdio.h>
#include <stdlib.h>

#include "frontend/dsl.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char err[1024];
	DslTrain t;
	dsl_limit_elements = 1 << 20;
	Graph *g = dsl_parse((const char *)data, size, "fuzz.dl", &t, err, sizeof err);
	if (!g)
		return 0;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f) {
		ir_print_dl(f, g);
		fclose(f);
		Graph *back = dsl_parse(buf, len, "back.dl", NULL, err, sizeof err);
		if (!back) {
			fprintf(stderr, "the printed model does not read back: %s\n%s", err, buf);
			abort();
		}
		ir_graph_free(back);
	}
	free(buf);
	ir_graph_free(g);
	return 0;
}
