// The thread count of every OpenMP loop: kernels, oneDNN (which runs on the
// same OpenMP runtime) and the augmentation workers.
#ifndef SSLC_CORE_THREADS_H
#define SSLC_CORE_THREADS_H

// threads > 0: use that many from now on; 0 leaves the runtime's default
// (OMP_NUM_THREADS, else every core).
void sslc_set_threads(int threads);
int sslc_get_threads(void);
// Inside a parallel region: which thread this is, and how many there are
// (0 and 1 outside one).
int sslc_thread_index(void);
int sslc_thread_count(void);

// Flush-to-zero and denormals-are-zero (x86 MXCSR) for the calling thread,
// and so for every thread it creates afterwards (a new thread inherits its
// creator's floating-point environment): the CLI's first call, before
// OpenMP, oneDNN or MPI start theirs. Values under 1.2e-38 become 0 instead
// of taking the processor's slow path, which a step can hit (measured: a
// MoCo v3 ViT step 12% slower without). No-op elsewhere.
void sslc_flush_denormals(void);

#endif
