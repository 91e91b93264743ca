/*
 * emu.c — the scheduler of the CPU emulation: runs a grid of an emulated kernel.
 *
 * Blocks run one after another, so `__shared__` (a static in emulated code) is one copy per
 * block. Inside a block there are two ways to run threads:
 *  - kernels without barriers (uses_sync = 0): a plain loop that sets threadIdx and calls the
 *    trampoline once per thread — the fast path, used for elementwise kernels;
 *  - kernels with __syncthreads/__syncwarp/shuffles (uses_sync = 1): every thread is a coroutine
 *    on its own 64 KiB stack (mmap'd once with a guard page, reused by every launch). The
 *    scheduler resumes runnable threads round-robin; each runs until it waits at a barrier or
 *    returns. A warp barrier is released when every live thread of the warp waits at one; the
 *    block barrier when every thread of the block waits at it. Threads that returned while others
 *    wait at __syncthreads are reported as a deadlock instead of hanging.
 * Shuffles: each thread writes its value to a per-block slot, warp barrier, reads its partner's
 * slot, warp barrier. The context switch is ten instructions of x86-64 assembly (callee-saved
 * registers, MXCSR and the x87 control word); other targets and sanitizer builds use ucontext.
 * Everything is single-threaded and global: one launch at a time per process.
 */
#include "emu.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "emu/cuda_emu.h"

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(DLCC_EMU_UCONTEXT)
#define RT_EMU_ASM 1
#else
#define RT_EMU_ASM 0
#include <ucontext.h>
#endif

#define STACK_BYTES (64 * 1024)
#define GUARD_BYTES 4096

uint3 threadIdx, blockIdx, blockDim, gridDim;
void *rt_emu_dynamic_smem;

typedef enum { CO_RUN, CO_BLOCK_BAR, CO_WARP_BAR, CO_DONE } CoState;

typedef struct Coro {
	void *sp; /* saved stack pointer while suspended (asm switch) */
#if !RT_EMU_ASM
	ucontext_t uc;
#endif
	char *stack; /* mapping base: guard page, then the stack */
	uint3 tid;
	unsigned lin; /* linear thread id: x + y*bx + z*bx*by */
	CoState state;
} Coro;

static struct {
	Coro *co;          /* RT_EMU_MAX_THREADS coroutines, stacks mapped on demand */
	int cur;           /* running coroutine, -1 outside coroutine mode */
	int nthreads;      /* threads in the current block */
	int misuse;        /* a barrier or shuffle in a kernel launched without uses_sync */
	RtEmuKernel fn;
	void **args;
	void *sched_sp;
#if !RT_EMU_ASM
	ucontext_t sched_uc;
#endif
	union { double d; long long l; } slot[RT_EMU_MAX_THREADS];
	size_t dyn_cap;
	char err[256];
} E = { .cur = -1 };

const char *rt_emu_error(void) { return E.err; }

static int emu_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int emu_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(E.err, sizeof E.err, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- context switch ---- */
#if RT_EMU_ASM
void rt_emu_ctx_switch(void **save_sp, void *to_sp) __attribute__((visibility("hidden")));
void rt_emu_ctx_start(void) __attribute__((visibility("hidden")));
__asm__(".text\n"
	".globl rt_emu_ctx_switch\n.hidden rt_emu_ctx_switch\n.type rt_emu_ctx_switch,@function\n"
	"rt_emu_ctx_switch:\n"
	"  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
	"  subq $8, %rsp\n  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n"
	"  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
	"  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n  addq $8, %rsp\n"
	"  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
	"  ret\n"
	".size rt_emu_ctx_switch, .-rt_emu_ctx_switch\n"
	".globl rt_emu_ctx_start\n.hidden rt_emu_ctx_start\n.type rt_emu_ctx_start,@function\n"
	"rt_emu_ctx_start:\n"
	"  movq %rbx, %rdi\n  call rt_emu_coro_main\n  ud2\n"
	".size rt_emu_ctx_start, .-rt_emu_ctx_start\n");
#endif

void rt_emu_coro_main(Coro *c) __attribute__((visibility("hidden"), used, noreturn));

static void coro_resume(Coro *c)
{
	E.cur = (int)(c - E.co);
	threadIdx = c->tid;
#if RT_EMU_ASM
	rt_emu_ctx_switch(&E.sched_sp, c->sp);
#else
	swapcontext(&E.sched_uc, &c->uc);
#endif
	E.cur = -1;
}

static void coro_yield(Coro *c)
{
#if RT_EMU_ASM
	rt_emu_ctx_switch(&c->sp, E.sched_sp);
#else
	swapcontext(&c->uc, &E.sched_uc);
#endif
	threadIdx = c->tid; /* the scheduler set it already; keep it obviously right */
}

void rt_emu_coro_main(Coro *c)
{
	E.fn(E.args);
	c->state = CO_DONE;
	coro_yield(c);
	abort(); /* a finished thread is never resumed */
}

#if !RT_EMU_ASM
static void coro_uc_entry(void) { rt_emu_coro_main(&E.co[E.cur]); }
#endif

/* Give coroutine c a fresh frame that starts in rt_emu_coro_main(c). */
static void coro_init(Coro *c)
{
	c->state = CO_RUN;
#if RT_EMU_ASM
	/* stagger stack tops by cache lines: equal page offsets would share L1 sets */
	size_t color = (size_t)((c - E.co) % 61) * 64;
	uint64_t *sp = (uint64_t *)(c->stack + GUARD_BYTES + STACK_BYTES - 80 - color);
	memset(sp, 0, 80);
	sp[0] = 0x1f80ull | (0x037full << 32); /* MXCSR and x87 control word defaults */
	sp[5] = (uint64_t)(uintptr_t)c;          /* rbx: argument of the start stub */
	sp[7] = (uint64_t)(uintptr_t)rt_emu_ctx_start;
	c->sp = sp;
#else
	getcontext(&c->uc);
	c->uc.uc_stack.ss_sp = c->stack + GUARD_BYTES;
	c->uc.uc_stack.ss_size = STACK_BYTES - (size_t)((c - E.co) % 61) * 64;
	c->uc.uc_link = NULL;
	makecontext(&c->uc, coro_uc_entry, 0);
#endif
}

static int coro_pool(int n)
{
	if (!E.co && !(E.co = calloc(RT_EMU_MAX_THREADS, sizeof *E.co)))
		return emu_fail("out of memory for %d coroutines", n);
	for (int i = 0; i < n; i++) {
		if (E.co[i].stack)
			continue;
		void *p = mmap(NULL, GUARD_BYTES + STACK_BYTES, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return emu_fail("cannot map a coroutine stack (%d threads)", n);
		mprotect(p, GUARD_BYTES, PROT_NONE);
		E.co[i].stack = p;
	}
	return 0;
}

/* ---- barriers ---- */
static void wait_at(CoState bar)
{
	if (E.cur < 0) {
		E.misuse = 1;
		return;
	}
	Coro *c = &E.co[E.cur];
	c->state = bar;
	coro_yield(c);
}

void rt_emu_syncthreads(void) { wait_at(CO_BLOCK_BAR); }
void rt_emu_syncwarp(void) { wait_at(CO_WARP_BAR); }

/* Source thread (linear id) of a shuffle for thread `me`; `me` itself when out of range. */
static unsigned shfl_src(unsigned me, int kind, int l, int w)
{
	if (w <= 0 || w > 32 || (w & (w - 1)))
		w = 32;
	int lane = (int)(me & 31u), sub = lane % w, seg = lane - sub, s;
	switch (kind) {
	case RT_EMU_SHFL_IDX: s = ((l % w) + w) % w; break;
	case RT_EMU_SHFL_UP: s = sub - l; break;
	case RT_EMU_SHFL_DOWN: s = sub + l; break;
	default: s = sub ^ l; break;
	}
	if (s < 0 || s >= w)
		return me;
	unsigned src = me - (unsigned)lane + (unsigned)(seg + s);
	return src < (unsigned)E.nthreads ? src : me;
}

double rt_emu_shfl_d(double v, int kind, int l, int w)
{
	if (E.cur < 0) {
		E.misuse = 1;
		return v;
	}
	unsigned me = E.co[E.cur].lin;
	E.slot[me].d = v;
	rt_emu_syncwarp();
	double r = E.slot[shfl_src(me, kind, l, w)].d;
	rt_emu_syncwarp();
	return r;
}

long long rt_emu_shfl_ll(long long v, int kind, int l, int w)
{
	if (E.cur < 0) {
		E.misuse = 1;
		return v;
	}
	unsigned me = E.co[E.cur].lin;
	E.slot[me].l = v;
	rt_emu_syncwarp();
	long long r = E.slot[shfl_src(me, kind, l, w)].l;
	rt_emu_syncwarp();
	return r;
}

/* ---- the block scheduler ---- */
/* Release every warp whose live threads all wait at a warp barrier; returns how many. */
static int release_warps(void)
{
	int released = 0;
	for (int w0 = 0; w0 < E.nthreads; w0 += 32) {
		int end = w0 + 32 < E.nthreads ? w0 + 32 : E.nthreads, waiting = 0, other = 0;
		for (int i = w0; i < end; i++) {
			waiting += E.co[i].state == CO_WARP_BAR;
			other += E.co[i].state == CO_BLOCK_BAR;
		}
		if (!waiting || other)
			continue;
		for (int i = w0; i < end; i++)
			if (E.co[i].state == CO_WARP_BAR)
				E.co[i].state = CO_RUN;
		released++;
	}
	return released;
}

/* After a round nobody can run: release the block barrier, or say why the block is stuck.
 * Returns 1 to go on, 0 when the block is finished, -1 on deadlock. */
static int release_block(void)
{
	int bar = 0, warp = 0, done = 0;
	for (int i = 0; i < E.nthreads; i++) {
		bar += E.co[i].state == CO_BLOCK_BAR;
		warp += E.co[i].state == CO_WARP_BAR;
		done += E.co[i].state == CO_DONE;
	}
	if (warp)
		return emu_fail("block (%u,%u,%u): %d threads wait at a warp barrier or shuffle "
				"while %d threads of their warps wait at __syncthreads() (divergent warp)",
				blockIdx.x, blockIdx.y, blockIdx.z, warp, bar);
	if (!bar)
		return 0;
	if (done)
		return emu_fail("block (%u,%u,%u): %d threads wait at __syncthreads() while %d have "
				"returned (a return before a barrier?): kernel deadlock",
				blockIdx.x, blockIdx.y, blockIdx.z, bar, done);
	for (int i = 0; i < E.nthreads; i++)
		E.co[i].state = CO_RUN;
	return 1;
}

static int run_block_coro(const unsigned b[3])
{
	for (int i = 0; i < E.nthreads; i++) {
		Coro *c = &E.co[i];
		c->lin = (unsigned)i;
		c->tid = (uint3){ i % b[0], (i / b[0]) % b[1], i / (b[0] * b[1]) };
		coro_init(c);
	}
	for (;;) {
		for (int i = 0; i < E.nthreads; i++)
			if (E.co[i].state == CO_RUN)
				coro_resume(&E.co[i]);
		if (release_warps())
			continue;
		int r = release_block();
		if (r <= 0)
			return r;
	}
}

static void run_block_loop(const unsigned b[3])
{
	for (unsigned z = 0; z < b[2]; z++)
		for (unsigned y = 0; y < b[1]; y++)
			for (unsigned x = 0; x < b[0]; x++) {
				threadIdx = (uint3){ x, y, z };
				E.fn(E.args);
			}
}

static int check_dims(const unsigned g[3], const unsigned b[3])
{
	unsigned long long n = (unsigned long long)b[0] * b[1] * b[2];
	if (!g[0] || !g[1] || !g[2] || !b[0] || !b[1] || !b[2])
		return emu_fail("zero launch dimension: grid (%u,%u,%u), block x %u, y %u", g[0], g[1],
				g[2], b[0], b[1]);
	if (n > RT_EMU_MAX_THREADS || b[2] > 64)
		return emu_fail("block (%u,%u,%u) has more than %u threads (or z > 64)", b[0], b[1],
				b[2], RT_EMU_MAX_THREADS);
	return 0;
}

static int reserve_shared(size_t bytes)
{
	if (bytes <= E.dyn_cap)
		return 0;
	free(rt_emu_dynamic_smem);
	rt_emu_dynamic_smem = NULL;
	E.dyn_cap = 0;
	if (posix_memalign(&rt_emu_dynamic_smem, 64, bytes))
		return emu_fail("out of memory for %zu bytes of dynamic shared memory",
				bytes);
	E.dyn_cap = bytes;
	return 0;
}

int rt_emu_launch_shmem(RtEmuKernel fn, int uses_sync, unsigned g[3], unsigned b[3], size_t shmem,
			void **args)
{
	E.err[0] = 0;
	if (check_dims(g, b) || reserve_shared(shmem))
		return -1;
	E.nthreads = (int)(b[0] * b[1] * b[2]);
	if (uses_sync && coro_pool(E.nthreads))
		return -1;
	E.fn = fn, E.args = args, E.misuse = 0, E.cur = -1;
	gridDim = (uint3){ g[0], g[1], g[2] };
	blockDim = (uint3){ b[0], b[1], b[2] };
	for (unsigned z = 0; z < g[2]; z++)
		for (unsigned y = 0; y < g[1]; y++)
			for (unsigned x = 0; x < g[0]; x++) {
				blockIdx = (uint3){ x, y, z };
				if (!uses_sync)
					run_block_loop(b);
				else if (run_block_coro(b))
					return -1;
			}
	if (E.misuse)
		return emu_fail("the kernel uses __syncthreads/__syncwarp/shuffles but was launched "
				"without uses_sync");
	return 0;
}

int rt_emu_launch(RtEmuKernel fn, int uses_sync, unsigned g[3], unsigned b[3], void **args)
{
	return rt_emu_launch_shmem(fn, uses_sync, g, b, 0, args);
}
