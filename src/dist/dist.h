// Data parallelism over processes: the few collectives the trainers need,
// behind one small interface with two implementations chosen at build time.
//
//   MPI (-Dmpi=enabled, Open MPI / MPICH): active when the process was
//   started by an MPI launcher (mpirun, mpiexec, srun with PMI); rank and
//   size are MPI_COMM_WORLD's.
//   The single-process twin (no MPI, or started without a launcher): rank
//   0 of 1, and every collective is the identity, so the code has one path.
//
// Collectives are blocking unless named i...; all ranks must call the same
// collectives in the same order with the same sizes. A failed collective
// returns SSLC_ERR_INTERNAL with a message naming this rank; the caller
// stops and sslc_dist_abort ends every rank (a rank that dies is reported by
// the launcher, which ends the others).
#ifndef SSLC_DIST_DIST_H
#define SSLC_DIST_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/core/status.h"

// Starts MPI when launched by an MPI launcher (else nothing). Call once, from
// the main thread, before any other function here.
sslc_status sslc_dist_init(void);
// Ends MPI (a no-op for one process).
void sslc_dist_finalize(void);
// Ends every rank after a failure on this one (exit code 1 for one process).
void sslc_dist_abort(void);
// Marks that every rank reached the same point (an agreed stop or failure):
// ending with an error from here needs no abort. sslc_dist_agree marks it
// itself when it fails.
void sslc_dist_in_step(void);
bool sslc_dist_is_in_step(void);

// For work that does not split over processes: rank 0 goes on alone, as a
// single process (collectives become the identity); returns false on the
// other ranks, which should end.
bool sslc_dist_solo(void);

int sslc_dist_rank(void);
int sslc_dist_size(void);
// "Open MPI v4.1.4, 2 ranks" or "single process" (for sslc version, logs).
const char *sslc_dist_describe(void);

// buf (n,) summed over ranks in place; every rank gets the same sums.
sslc_status sslc_dist_sum_f32(float *buf, size_t n);
sslc_status sslc_dist_sum_f64(double *buf, size_t n);
// recv (size * n,) = every rank's send (n,) in rank order.
sslc_status sslc_dist_gather_f32(const float *send, float *recv, size_t n);
sslc_status sslc_dist_gather_f64(const double *send, double *recv, size_t n);
// Every rank's send (n rows of `row` elements; n may differ between ranks)
// into recv, rank-major; *total receives the rows in all. recv must hold
// them (at most cap rows).
sslc_status sslc_dist_gatherv_f32(const float *send, int64_t n, int64_t row, float *recv,
                                  int64_t cap, int64_t *total);
sslc_status sslc_dist_gatherv_i64(const int64_t *send, int64_t n, int64_t row, int64_t *recv,
                                  int64_t cap, int64_t *total);
// bytes of buf from rank root to every rank.
sslc_status sslc_dist_broadcast(void *buf, size_t bytes, int root);
// st on this rank's side; returns it where it failed, and on every other
// rank an error carrying the message of the first rank that failed, so a
// failure on one rank (a bad file, a full disk) stops all of them at the
// same point instead of leaving the others waiting in a collective.
sslc_status sslc_dist_agree(sslc_status st);

// Seconds this process has spent in blocking collectives and waits so far
// (the share of a step lost to communication).
double sslc_dist_wait_seconds(void);

// Non-blocking sum of buf (n,) in place (gradient buckets while backward
// runs); progress is made in sslc_dist_poll and finished by sslc_dist_wait.
typedef struct sslc_dist_request sslc_dist_request;
sslc_status sslc_dist_isum_f32(float *buf, size_t n, sslc_dist_request **req);
void sslc_dist_poll(sslc_dist_request *req);
sslc_status sslc_dist_wait(sslc_dist_request *req); // frees req

#endif
