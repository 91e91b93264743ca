/*
 * cg_link.c — the generated texts and blobs → an artifact on disk, with the system C compiler.
 *
 * Everything is written into a fresh temporary directory (mkdtemp under $TMPDIR or /tmp):
 * kernels.cu (the kernel source, as NVRTC saw it), kernels_emu.c (cuda_emu.h + kernels.cu +
 * the CPU trampolines and the kernel table), host.c (schedules and model description) and
 * blobs.S, which pulls the parameter block, the CUBINs and the PTX in with .incbin so that
 * large models cost the C compiler nothing. kernels_emu.c — most of the C compiler's work — is
 * compiled to kernels_emu.o in the background as soon as it is written (cg_link_start, while
 * NVRTC runs); then one `cc` run links host.c, that object and blobs.S with libdlcc_rt.a into
 * OUT.tmp (-fvisibility=hidden: only the public API of libdlcc_rt is exported), and OUT.tmp
 * is renamed to OUT; for emit "a" the other files are compiled with -c too, the objects and the
 * runtime are joined by `cc -r` into one object, and that is archived with `ar rcs`.
 * $CC overrides the compiler; DLCC_SOURCE_DIR / DLCC_BINARY_DIR (environment, else the values
 * compiled in) locate the runtime headers and libdlcc_rt.a; DLCC_KEEP_TMP keeps the directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/cg_internal.h"

#ifndef DLCC_SOURCE_DIR
#define DLCC_SOURCE_DIR "."
#endif
#ifndef DLCC_BINARY_DIR
#define DLCC_BINARY_DIR "./build"
#endif

#define MAX_ARGV 40

int cg_write_file(const char *path, const void *data, size_t n, char *err, size_t errlen)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return cg_fail(err, errlen, "codegen: cannot write %s: %s", path, strerror(errno));
	size_t w = n ? fwrite(data, 1, n, f) : 0;
	if (fclose(f) != 0 || w != n)
		return cg_fail(err, errlen, "codegen: cannot write %s: %s", path, strerror(errno));
	return 0;
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

typedef struct CgLink {
	char dir[4096];
	const CgOpts *o;
	char *err;
	size_t errlen;
	pid_t emu_cc; /* the background compile of kernels_emu.c, 0 when none */
} Link;

static const char *in_dir(const Link *l, const char *file)
{
	static char ring[8][4200];
	static int at;
	at = (at + 1) % 8;
	snprintf(ring[at], sizeof ring[at], "%s/%s", l->dir, file);
	return ring[at];
}

/* the process running argv, or -1 with l->err set */
static pid_t start(const Link *l, char **argv)
{
	if (l->o->verbose) {
		for (int i = 0; argv[i]; i++)
			fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
		fprintf(stderr, "\n");
	}
	pid_t pid = fork();
	if (pid < 0)
		return cg_fail(l->err, l->errlen, "codegen: cannot start %s: %s", argv[0], strerror(errno));
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "dlcc: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

static int finish(const Link *l, pid_t pid, const char *what)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	return cg_fail(l->err, l->errlen, "codegen: %s failed (status %d) building the artifact; rerun "
			   "with DLCC_KEEP_TMP=1 to keep the generated files", what,
		       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static int run(const Link *l, char **argv)
{
	pid_t pid = start(l, argv);
	return pid < 0 ? -1 : finish(l, pid, argv[0]);
}

/* $CC split at spaces, then the common flags */
static int cc_argv(char **argv, char *ccbuf, size_t len)
{
	int n = 0;
	snprintf(ccbuf, len, "%s", env_or("CC", "cc"));
	for (char *t = strtok(ccbuf, " "); t && n < 8; t = strtok(NULL, " "))
		argv[n++] = t;
	static char inc[3][4200];
	const char *src = env_or("DLCC_SOURCE_DIR", DLCC_SOURCE_DIR);
	snprintf(inc[0], sizeof inc[0], "-I%s/include", src);
	snprintf(inc[1], sizeof inc[1], "-I%s/runtime", src);
	snprintf(inc[2], sizeof inc[2], "-I%s", src);
	const char *common[] = {"-std=gnu11", "-O2", "-fPIC", "-fvisibility=hidden", "-w", inc[0], inc[1], inc[2]};
	for (size_t i = 0; i < sizeof common / sizeof *common; i++)
		argv[n++] = (char *)common[i];
	return n;
}

static const char *rt_lib(const Link *l)
{
	static char p[4200];
	snprintf(p, sizeof p, "%s/libdlcc_rt.a", env_or("DLCC_BINARY_DIR", DLCC_BINARY_DIR));
	if (access(p, R_OK) != 0) {
		cg_fail(l->err, l->errlen, "codegen: the runtime library %s is missing (build dlcc, or "
				   "set DLCC_BINARY_DIR to its build directory)", p);
		return NULL;
	}
	return p;
}

static int link_so(const Link *l, const char *tmp_out)
{
	char *argv[MAX_ARGV], ccbuf[512];
	const char *rt = rt_lib(l);
	if (!rt)
		return -1;
	int n = cc_argv(argv, ccbuf, sizeof ccbuf);
	const char *rest[] = {"-shared", "-Wl,-Bsymbolic", "-o", tmp_out, in_dir(l, "host.c"),
			      in_dir(l, "kernels_emu.o"), in_dir(l, "blobs.S"), "-Wl,--whole-archive", rt,
			      "-Wl,--no-whole-archive", "-ldl", "-lm", "-lpthread"};
	for (size_t i = 0; i < sizeof rest / sizeof *rest; i++)
		argv[n++] = (char *)rest[i];
	argv[n] = NULL;
	return run(l, argv);
}

/* emit "a": one relocatable object holding the generated code and the whole runtime, so that
 * the application's reference to dlcc_create pulls in the model description too (the runtime
 * refers to dlcc_model_desc weakly, which alone would not pull a member out of an archive) */
static int link_archive(const Link *l, const char *tmp_out)
{
	static const char *files[] = {"host.c", "kernels_emu.c", "blobs.S"};
	char objs[3][4200], all[4200];
	const char *rt = rt_lib(l);
	if (!rt)
		return -1;
	snprintf(objs[1], sizeof objs[1], "%s", in_dir(l, "kernels_emu.o"));
	for (int i = 0; i < 3; i += 2) {
		char *argv[MAX_ARGV], ccbuf[512];
		int n = cc_argv(argv, ccbuf, sizeof ccbuf);
		snprintf(objs[i], sizeof objs[i], "%s/%d.o", l->dir, i);
		argv[n++] = "-c";
		argv[n++] = (char *)in_dir(l, files[i]);
		argv[n++] = "-o";
		argv[n++] = objs[i];
		argv[n] = NULL;
		if (run(l, argv) < 0)
			return -1;
	}
	snprintf(all, sizeof all, "%s/dlcc_model.o", l->dir);
	char *argv[MAX_ARGV], ccbuf[512];
	snprintf(ccbuf, sizeof ccbuf, "%s", env_or("CC", "cc"));
	int n = 0;
	for (char *t = strtok(ccbuf, " "); t && n < 8; t = strtok(NULL, " "))
		argv[n++] = t;
	const char *rest[] = {"-r", "-nostdlib", "-o", all, objs[0], objs[1], objs[2],
			      "-Wl,--whole-archive", rt, "-Wl,--no-whole-archive"};
	for (size_t i = 0; i < sizeof rest / sizeof *rest; i++)
		argv[n++] = (char *)rest[i];
	argv[n] = NULL;
	if (run(l, argv) < 0)
		return -1;
	unlink(tmp_out);
	char *ar[] = {"ar", "rcs", (char *)tmp_out, all, NULL};
	if (run(l, ar) < 0)
		return -1;
	fprintf(stderr, "dlcc: %s: a static library with the runtime inside; link it with -ldl -lm -lpthread\n",
		l->o->out_path);
	return 0;
}

static void blob(CgBuf *s, const char *sym, const char *path)
{
	cg_printf(s, "\t.balign 64\n\t.globl %s\n\t.hidden %s\n%s:\n", sym, sym, sym);
	if (path)
		cg_printf(s, "\t.incbin \"%s\"\n", path);
	cg_puts(s, "\t.byte 0\n");
}

static int write_blobs(const Link *l, const CgArtifact *a)
{
	const CgBinaries *b = a->bin;
	const char *pp = in_dir(l, "params.bin");
	if (cg_write_file(pp, a->params, a->param_bytes, l->err, l->errlen) < 0)
		return -1;
	struct { const char *sym, *file; const void *data; size_t n; } bl[] = {
		{"dlcc_blob_sm80", "sm_80.cubin", b->cubin80, b->cubin80_size},
		{"dlcc_blob_sm90", "sm_90.cubin", b->cubin90, b->cubin90_size},
		{"dlcc_blob_ptx", "kernels.ptx", b->ptx, b->ptx_size},
	};
	CgBuf s = {0};
	cg_puts(&s, "/* generated by dlcc: binary blobs of the artifact */\n\t.section .rodata\n");
	blob(&s, "dlcc_blob_params", pp);
	for (int i = 0; i < 3; i++) {
		const char *path = bl[i].n ? in_dir(l, bl[i].file) : NULL;
		if (path && cg_write_file(path, bl[i].data, bl[i].n, l->err, l->errlen) < 0)
			return cg_buf_free(&s), -1;
		blob(&s, bl[i].sym, path);
	}
	cg_puts(&s, "\t.section .note.GNU-stack,\"\",@progbits\n");
	int rc = cg_write_file(in_dir(l, "blobs.S"), s.s, s.len, l->err, l->errlen);
	cg_buf_free(&s);
	return rc;
}

/* kernels.cu and kernels_emu.c, and `cc -c kernels_emu.c` started */
static int write_kernels(Link *l, const char *kernels, const char *emu_text)
{
	if (cg_write_file(in_dir(l, "kernels.cu"), kernels, strlen(kernels), l->err, l->errlen) < 0)
		return -1;
	CgBuf emu = {0};
	cg_puts(&emu, "/* generated by dlcc: the kernels compiled as C for the CPU emulation */\n"
		      "#include \"emu/cuda_emu.h\"\n#include \"rt.h\"\n#include \"kernels.cu\"\n\n");
	cg_puts(&emu, emu_text);
	int rc = cg_write_file(in_dir(l, "kernels_emu.c"), emu.s, emu.len, l->err, l->errlen);
	cg_buf_free(&emu);
	if (rc < 0)
		return -1;
	char *argv[MAX_ARGV], ccbuf[512], src[4200], obj[4200];
	int n = cc_argv(argv, ccbuf, sizeof ccbuf);
	snprintf(src, sizeof src, "%s", in_dir(l, "kernels_emu.c"));
	snprintf(obj, sizeof obj, "%s", in_dir(l, "kernels_emu.o"));
	argv[n++] = "-c";
	argv[n++] = src;
	argv[n++] = "-o";
	argv[n++] = obj;
	argv[n] = NULL;
	l->emu_cc = start(l, argv);
	return l->emu_cc < 0 ? (l->emu_cc = 0, -1) : 0;
}

static void remove_dir(const char *dir)
{
	char *argv[] = {"rm", "-rf", (char *)dir, NULL};
	pid_t pid = fork();
	if (pid == 0) {
		execvp("rm", argv);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

static void link_free(Link *l, int rc)
{
	if (l->emu_cc > 0) {
		int st;
		waitpid(l->emu_cc, &st, 0);
	}
	if (getenv("DLCC_KEEP_TMP"))
		fprintf(stderr, "dlcc: generated files kept in %s\n", l->dir);
	else
		remove_dir(l->dir);
	(void)rc;
	free(l);
}

CgLink *cg_link_start(const char *kernels, const char *emu, const CgOpts *o, char *err, size_t errlen)
{
	Link *l = calloc(1, sizeof *l);
	if (!l) {
		cg_fail(err, errlen, "codegen: out of memory");
		return NULL;
	}
	*l = (Link){{0}, o, err, errlen, 0};
	snprintf(l->dir, sizeof l->dir, "%s/dlcc-XXXXXX", env_or("TMPDIR", "/tmp"));
	if (!mkdtemp(l->dir)) {
		cg_fail(err, errlen, "codegen: cannot create a temporary directory in %s: %s", env_or("TMPDIR", "/tmp"),
			strerror(errno));
		free(l);
		return NULL;
	}
	if (write_kernels(l, kernels, emu) < 0) {
		link_free(l, -1);
		return NULL;
	}
	return l;
}

void cg_link_abort(CgLink *l)
{
	if (l)
		link_free(l, -1);
}

int cg_link_finish(CgLink *l, const CgArtifact *a)
{
	const CgOpts *o = l->o;
	char tmp_out[4200];
	snprintf(tmp_out, sizeof tmp_out, "%s.tmp", o->out_path);
	int rc = cg_write_file(in_dir(l, "host.c"), a->host, strlen(a->host), l->err, l->errlen);
	if (rc == 0)
		rc = write_blobs(l, a);
	pid_t emu_cc = l->emu_cc;
	l->emu_cc = 0;
	if (finish(l, emu_cc, "cc (kernels_emu.c)") < 0)
		rc = -1;
	if (rc == 0)
		rc = !strcmp(o->emit, "a") ? link_archive(l, tmp_out) : link_so(l, tmp_out);
	if (rc == 0 && rename(tmp_out, o->out_path) != 0)
		rc = cg_fail(l->err, l->errlen, "codegen: cannot create %s: %s", o->out_path, strerror(errno));
	if (rc < 0)
		unlink(tmp_out);
	link_free(l, rc);
	return rc;
}
