/*
 * emu.h — the CPU scheduler that runs generated kernels compiled with emu/cuda_emu.h.
 *
 * rt_emu_launch runs a grid: blocks one after another; in a block, kernels without barriers run
 * their threads in a plain loop, kernels with barriers or shuffles (uses_sync) run each thread as
 * a coroutine that yields at every barrier (see emu.c). Single host thread; not reentrant.
 */
#ifndef DLCC_EMU_H
#define DLCC_EMU_H

#include <stddef.h>

#include "rt.h"

#define RT_EMU_MAX_THREADS 1024

/* Run fn over grid g and blocks b (x, y, z). Returns 0, or -1 with rt_emu_error() set
 * (bad dimensions, deadlock at a barrier, a barrier in a kernel without uses_sync). */
int rt_emu_launch(RtEmuKernel fn, int uses_sync, unsigned g[3], unsigned b[3], void **args);
/* Same with `shmem` bytes of dynamic shared memory (DLCC_DYNAMIC_SHARED in kernels). */
int rt_emu_launch_shmem(RtEmuKernel fn, int uses_sync, unsigned g[3], unsigned b[3], size_t shmem,
			void **args);
const char *rt_emu_error(void);

#endif
