/*
 * conform.h — the pieces of `dlcc conform` (the ONNX conformance report): one case run in a
 * worker process (conform_case.c) and the markdown report over the verdicts (conform_report.c).
 */
#ifndef DLCC_CONFORM_H
#define DLCC_CONFORM_H

#include <stdio.h>

typedef enum { R_PASS, R_FAIL, R_UNSUP } Verdict;

typedef struct {
	Verdict verdict;
	int pinned;    /* integer graph inputs were pinned as constants */
	char cat[32];  /* why not a pass: operator, opset, dtype, attribute, input, mismatch, ... */
	char op[64];   /* the ONNX operator the reason names, or "-" */
	char msg[600]; /* one line: dlcc's message, or the first differing element */
} CaseResult;

typedef struct {
	const char *dir;
	char **cases;
	int n;
	CaseResult *res;
	double seconds;
} Suite;

/* Run one case directory (model.onnx, test_data_set_*): compile for inference, run every data
 * set in the CPU emulation, compare. Never exits; crashes are caught by the caller's fork. */
void conform_case(const char *dir, CaseResult *r);

/* The report: per suite pass / fail / unsupported; unsupported reasons grouped by operator; the
 * supported operators. full adds the per-operator tables (the --report file). */
void conform_report(FILE *f, const Suite *s, int n, int full);

#endif
