/*
 * cmd_conform.c — `dlcc conform DIR... [--report FILE.md] [--jobs N] [--verbose]`: the ONNX
 * conformance report over the public test cases (../shared/onnx-tests: node, pytorch-*, simple).
 *
 * Every case directory (model.onnx, test_data_set_N/input_K.pb and output_K.pb) is compiled for
 * inference only into a temporary artifact and run through the real generated kernels in the
 * CPU emulation; each output must match within rtol 1e-3, atol 1e-7 (ONNX's runner tolerances).
 * A case is "unsupported" when dlcc refuses it with a clear message (operator, attribute value,
 * element type, opset, ...), "fail" when it is accepted but computes something else or crashes.
 * Integer graph inputs that the frontend needs at compile time (Reshape's shape, ReduceSum's
 * axes, ...) are pinned as constants from the test data when the plain import fails, so those
 * cases test the op. NVRTC is skipped (DLCC_NO_NVRTC=1: CPU-only artifacts) and cases run in
 * forked workers, so a crash or a hang in one case is that case's failure. The exit status is 1
 * when any case fails: the test suite runs this and stays green as operators are added.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/conform.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the case directories of one suite (subdirectories holding model.onnx), sorted */
static int list_cases(const char *suite, char ***out)
{
	char self[4096];
	snprintf(self, sizeof self, "%s/model.onnx", suite);
	if (access(self, R_OK) == 0) { /* the directory is one case */
		*out = malloc(sizeof **out);
		(*out)[0] = strdup(suite);
		return 1;
	}
	DIR *d = opendir(suite);
	if (!d)
		die(EXIT_USAGE, "%s: cannot open the test directory", suite);
	char **v = NULL;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char p[4096];
		snprintf(p, sizeof p, "%s/%s/model.onnx", suite, e->d_name);
		if (e->d_name[0] == '.' || access(p, R_OK) != 0)
			continue;
		v = realloc(v, (n + 1) * sizeof *v);
		v[n] = malloc(strlen(suite) + strlen(e->d_name) + 2);
		sprintf(v[n++], "%s/%s", suite, e->d_name);
	}
	closedir(d);
	qsort(v, n, sizeof *v, cmp_str);
	*out = v;
	return n;
}

/* ---- workers: one forked process per case, its verdict one line on a pipe ---- */

typedef struct {
	pid_t pid;
	int fd;     /* the verdict line */
	FILE *errf; /* the worker's stderr */
	int idx;
} Worker;

/* the last non-empty line the worker wrote to stderr */
static void last_line(FILE *f, char *out, size_t len)
{
	char line[1024];
	out[0] = 0;
	rewind(f);
	while (fgets(line, sizeof line, f))
		if (line[0] != '\n')
			snprintf(out, len, "%s", strtok(line, "\n"));
}

/* stdout to /dev/null, stderr to errf (the last line explains a crash) */
static void child(const char *dir, int fd, FILE *errf)
{
	int null = open("/dev/null", O_WRONLY);
	dup2(null, 1);
	dup2(fileno(errf), 2);
	alarm(120);
	CaseResult r;
	conform_case(dir, &r);
	char line[sizeof r.msg + 200];
	int n = snprintf(line, sizeof line, "%d\t%d\t%s\t%s\t%s\n", r.verdict, r.pinned, r.cat, r.op, r.msg);
	if (write(fd, line, n) < 0)
		_exit(3);
	_exit(0);
}

static void parse_line(char *line, CaseResult *r)
{
	char *f[5] = {0};
	int k = 0;
	for (char *p = line; k < 5 && p; k++) {
		f[k] = p;
		p = k < 4 ? strchr(p, '\t') : NULL;
		if (p)
			*p++ = 0;
	}
	if (k < 5)
		return;
	r->verdict = atoi(f[0]);
	r->pinned = atoi(f[1]);
	snprintf(r->cat, sizeof r->cat, "%s", f[2]);
	snprintf(r->op, sizeof r->op, "%s", f[3]);
	snprintf(r->msg, sizeof r->msg, "%s", strtok(f[4], "\n") ? f[4] : "");
}

/* wait for any worker and record its verdict */
static int reap(Worker *w, int nw, CaseResult *res)
{
	int st;
	pid_t pid = waitpid(-1, &st, 0);
	int i = 0;
	while (i < nw && w[i].pid != pid)
		i++;
	if (i == nw)
		return -1;
	CaseResult *r = &res[w[i].idx];
	char buf[sizeof r->msg + 300] = "";
	ssize_t n = read(w[i].fd, buf, sizeof buf - 1);
	close(w[i].fd);
	memset(r, 0, sizeof *r);
	r->verdict = R_FAIL;
	snprintf(r->cat, sizeof r->cat, "crash");
	snprintf(r->op, sizeof r->op, "-");
	if (n > 0 && (buf[n] = 0, 1) && strchr(buf, '\n'))
		parse_line(buf, r);
	else {
		char why[400];
		last_line(w[i].errf, why, sizeof why);
		if (WIFSIGNALED(st))
			snprintf(r->msg, sizeof r->msg, "the case crashed (%s): %s",
				 WTERMSIG(st) == SIGALRM ? "timed out after 120 s" : strsignal(WTERMSIG(st)), why);
		else
			snprintf(r->msg, sizeof r->msg, "the case exited with status %d: %s", WEXITSTATUS(st), why);
	}
	fclose(w[i].errf);
	w[i] = w[--nw];
	return nw;
}

static void run_all(char **cases, int n, int jobs, CaseResult *res)
{
	Worker *w = calloc(jobs, sizeof *w);
	int nw = 0;
	for (int i = 0; i < n || nw > 0;) {
		if (i < n && nw < jobs) {
			int p[2];
			FILE *errf = tmpfile();
			if (!errf || pipe(p) < 0)
				die(EXIT_RUNTIME, "conform: cannot make a pipe or a temporary file");
			fflush(stdout);
			pid_t pid = fork();
			if (pid < 0)
				die(EXIT_RUNTIME, "conform: cannot fork");
			if (pid == 0) {
				close(p[0]);
				child(cases[i], p[1], errf);
			}
			close(p[1]);
			w[nw++] = (Worker){pid, p[0], errf, i++};
			continue;
		}
		if ((nw = reap(w, nw, res)) < 0)
			die(EXIT_RUNTIME, "conform: lost a worker");
	}
	free(w);
}

/* ---- the command ---- */

/* "suite/case" from the case's path */
static const char *short_name(const char *dir)
{
	const char *p = dir + strlen(dir);
	for (int slashes = 0; p > dir; p--)
		if (p[-1] == '/' && ++slashes == 2)
			break;
	return p;
}

static void print_case(const char *dir, const CaseResult *r, int verbose)
{
	static const char *names[] = {"PASS", "FAIL", "UNSUPPORTED"};
	if (r->verdict == R_FAIL || verbose)
		printf("%-11s %s%s%s%s\n", names[r->verdict], short_name(dir), r->msg[0] ? ": " : "", r->msg,
		       r->pinned ? " (integer inputs pinned)" : "");
}

int cmd_conform(int argc, char **argv)
{
	const char *report = NULL;
	int jobs = 2, verbose = 0, nsuites = 0;
	Suite suites[16];
	for (int i = 1; i < argc; i++) {
		const char *v;
		if ((v = arg_value(argc, argv, &i, "--report"))) report = v;
		else if ((v = arg_value(argc, argv, &i, "--jobs"))) jobs = arg_long("--jobs", v, 1, 64);
		else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) verbose = 1;
		else if (argv[i][0] == '-') die(EXIT_USAGE, "unknown option '%s' for dlcc conform", argv[i]);
		else if (nsuites == 16) die(EXIT_USAGE, "conform: at most 16 test directories");
		else suites[nsuites++] = (Suite){.dir = argv[i]};
	}
	if (!nsuites)
		die(EXIT_USAGE, "no test directory given (dlcc conform DIR... [--report FILE.md])");
	setenv("DLCC_NO_NVRTC", "1", 1);
	int fails = 0;
	struct timespec t0, t1;
	for (int s = 0; s < nsuites; s++) {
		Suite *su = &suites[s];
		clock_gettime(CLOCK_MONOTONIC, &t0);
		su->n = list_cases(su->dir, &su->cases);
		su->res = calloc(su->n ? su->n : 1, sizeof *su->res);
		run_all(su->cases, su->n, jobs, su->res);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		su->seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
		for (int i = 0; i < su->n; i++) {
			print_case(su->cases[i], &su->res[i], verbose);
			fails += su->res[i].verdict == R_FAIL;
		}
	}
	conform_report(stdout, suites, nsuites, 0);
	if (report) {
		FILE *f = fopen(report, "w");
		if (!f)
			die(EXIT_USAGE, "%s: cannot write", report);
		conform_report(f, suites, nsuites, 1);
		fclose(f);
	}
	for (int s = 0; s < nsuites; s++) {
		for (int i = 0; i < suites[s].n; i++)
			free(suites[s].cases[i]);
		free(suites[s].cases);
		free(suites[s].res);
	}
	return fails ? EXIT_RUNTIME : 0;
}
