// The collectives of dist.h. Each public function handles one process
// itself (the identity, or a copy); only the MPI calls sit behind
// SSLC_USE_MPI, so the single-process twin is the same code with one rank.
#include "src/dist/dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/log.h"

#if defined(SSLC_USE_MPI)
#include <mpi.h>
#define NO_RANK_WHY "no PMI/PMIx in the environment"
#else
#define NO_RANK_WHY "this sslc was built without MPI"
#endif

enum { MESSAGE = 512 };

static int world_rank, world_size = 1;
static bool in_step;        // every rank at the same point (sslc_dist_in_step)
static double wait_seconds; // in blocking collectives
#if defined(SSLC_USE_MPI)
static bool active; // MPI_Init was called here
static char description[128] = "single process";
#else
static char description[128] = "single process (built without MPI)";
#endif

void sslc_dist_in_step(void) { in_step = true; }
bool sslc_dist_is_in_step(void) { return in_step; }
double sslc_dist_wait_seconds(void) { return wait_seconds; }
int sslc_dist_rank(void) { return world_rank; }
int sslc_dist_size(void) { return world_size; }
const char *sslc_dist_describe(void) { return description; }

// ---- MPI, or nothing ----------------------------------------------------------------

typedef enum kind { F32, F64, I64, BYTES } kind;

#if defined(SSLC_USE_MPI)

struct sslc_dist_request {
    MPI_Request r;
};

static MPI_Datatype type_of(kind k)
{
    return k == F32 ? MPI_FLOAT : k == F64 ? MPI_DOUBLE : k == I64 ? MPI_INT64_T : MPI_BYTE;
}

static sslc_status failed(const char *what, int code)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(code, text, &len);
    return sslc_error(SSLC_ERR_INTERNAL, "rank %d of %d: %s failed: %s", world_rank, world_size,
                      what, text);
}

// A blocking call, timed; an error becomes a status naming this rank.
static sslc_status timed(const char *what, double t0, int code)
{
    wait_seconds += sslc_now() - t0;
    return code == MPI_SUCCESS ? SSLC_OK : failed(what, code);
}

#endif

// MPI counts are int: a message of more elements is refused.
static sslc_status check_count(size_t n)
{
    if (n > (size_t)INT_MAX)
        return sslc_error(SSLC_ERR_UNSUPPORTED,
                          "rank %d: a collective of %zu elements is more than MPI's int counts "
                          "hold; use more ranks or a smaller batch per rank",
                          world_rank, n);
    return SSLC_OK;
}

static size_t size_of(kind k) { return k == F32 ? 4 : k == BYTES ? 1 : 8; }

static sslc_status sum(void *buf, size_t n, kind k)
{
    if (world_size == 1)
        return SSLC_OK;
    sslc_status st = check_count(n);
#if defined(SSLC_USE_MPI)
    double t0 = sslc_now();
    if (!st)
        st = timed("sum", t0, MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, type_of(k), MPI_SUM,
                                             MPI_COMM_WORLD));
#else
    (void)buf, (void)k;
#endif
    return st;
}

static sslc_status gather(const void *send, void *recv, size_t n, kind k)
{
    if (world_size == 1) {
        memmove(recv, send, n * size_of(k));
        return SSLC_OK;
    }
    sslc_status st = check_count(n * (size_t)world_size);
#if defined(SSLC_USE_MPI)
    double t0 = sslc_now();
    if (!st)
        st = timed("gather", t0, MPI_Allgather(send, (int)n, type_of(k), recv, (int)n, type_of(k),
                                                MPI_COMM_WORLD));
#endif
    return st;
}

// Every rank's row count first, then the rows, rank-major.
static sslc_status gatherv(const void *send, int64_t n, int64_t row, void *recv, int64_t cap,
                           int64_t *total, kind k)
{
    *total = n;
    if (world_size == 1) {
        memmove(recv, send, (size_t)(n * row) * size_of(k));
        return SSLC_OK;
    }
#if defined(SSLC_USE_MPI)
    int64_t *rows = sslc_malloc((size_t)world_size * sizeof *rows);
    int *counts = sslc_malloc((size_t)world_size * sizeof *counts);
    int *displs = sslc_malloc((size_t)world_size * sizeof *displs);
    sslc_status st = rows && counts && displs ? SSLC_OK : SSLC_ERR_NOMEM;
    if (!st)
        st = gather(&n, rows, 1, I64);
    int64_t at = 0;
    for (int r = 0; !st && r < world_size; r++) {
        counts[r] = (int)(rows[r] * row);
        displs[r] = (int)(at * row);
        at += rows[r];
    }
    if (!st && at > cap)
        st = sslc_error(SSLC_ERR_INTERNAL, "rank %d: %lld rows gathered, room for %lld",
                        world_rank, (long long)at, (long long)cap);
    if (!st)
        st = check_count((size_t)(at * row));
    double t0 = sslc_now();
    if (!st)
        st = timed("gather", t0, MPI_Allgatherv(send, (int)(n * row), type_of(k), recv, counts,
                                                 displs, type_of(k), MPI_COMM_WORLD));
    *total = at;
    free(rows);
    free(counts);
    free(displs);
    return st;
#else
    (void)cap;
    return SSLC_OK;
#endif
}

// ---- the interface --------------------------------------------------------------------

#if defined(SSLC_USE_MPI)
// Launchers say who started the process: Open MPI's mpirun, MPICH / Hydra
// and Slurm's srun (PMI / PMIx). Without one, MPI is not started at all, so a
// plain `sslc` run is the single-process twin and pays nothing for MPI.
static bool launched_by_mpi(void)
{
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK",
                          "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return true;
    return false;
}
#endif

sslc_status sslc_dist_init(void)
{
#if defined(SSLC_USE_MPI)
    if (launched_by_mpi()) {
        if (active)
            return SSLC_OK;
        int provided = 0;
        // Only the main thread calls MPI (OpenMP workers never do).
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return sslc_error(SSLC_ERR_INTERNAL, "MPI_Init failed");
        active = true;
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
        MPI_Comm_size(MPI_COMM_WORLD, &world_size);
        char version[MPI_MAX_LIBRARY_VERSION_STRING] = "";
        int len = 0;
        MPI_Get_library_version(version, &len);
        char *end = strpbrk(version, ",\n");
        if (end)
            *end = '\0';
        snprintf(description, sizeof description, "%.96s, %d rank%s", version, world_size,
                 world_size == 1 ? "" : "s");
        return SSLC_OK;
    }
#endif
    // One of several srun tasks that is not an MPI rank would train the whole
    // batch alone into the same run folder as the others: refused.
    const char *tasks = getenv("SLURM_NTASKS");
    if (tasks && atoi(tasks) > 1 && getenv("SLURM_PROCID"))
        return sslc_error(SSLC_ERR_INVALID,
                          "started by srun as one of %s tasks, but not as an MPI rank (%s): "
                          "run srun with the --mpi plugin that matches this MPI (srun --mpi=list)"
                          ", or use mpirun",
                          tasks, NO_RANK_WHY);
    return SSLC_OK;
}

void sslc_dist_finalize(void)
{
#if defined(SSLC_USE_MPI)
    if (active)
        MPI_Finalize();
    active = false;
#endif
}

void sslc_dist_abort(void)
{
#if defined(SSLC_USE_MPI)
    if (active && world_size > 1)
        MPI_Abort(MPI_COMM_WORLD, 1);
#endif
}

bool sslc_dist_solo(void)
{
    if (world_rank != 0)
        return false;
    if (world_size > 1)
        snprintf(description, sizeof description, "rank 0 of an MPI job, alone");
    world_size = 1;
    return true;
}

sslc_status sslc_dist_sum_f32(float *buf, size_t n) { return sum(buf, n, F32); }
sslc_status sslc_dist_sum_f64(double *buf, size_t n) { return sum(buf, n, F64); }

sslc_status sslc_dist_gather_f32(const float *send, float *recv, size_t n)
{
    return gather(send, recv, n, F32);
}

sslc_status sslc_dist_gather_f64(const double *send, double *recv, size_t n)
{
    return gather(send, recv, n, F64);
}

sslc_status sslc_dist_gatherv_f32(const float *send, int64_t n, int64_t row, float *recv,
                                  int64_t cap, int64_t *total)
{
    return gatherv(send, n, row, recv, cap, total, F32);
}

sslc_status sslc_dist_gatherv_i64(const int64_t *send, int64_t n, int64_t row, int64_t *recv,
                                  int64_t cap, int64_t *total)
{
    return gatherv(send, n, row, recv, cap, total, I64);
}

sslc_status sslc_dist_broadcast(void *buf, size_t bytes, int root)
{
    if (world_size == 1)
        return SSLC_OK;
    sslc_status st = check_count(bytes);
#if defined(SSLC_USE_MPI)
    double t0 = sslc_now();
    if (!st)
        st = timed("broadcast", t0, MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD));
#else
    (void)buf, (void)root;
#endif
    return st;
}

sslc_status sslc_dist_agree(sslc_status st)
{
    if (world_size == 1)
        return st;
    // The first rank that failed, then its message to every rank.
    double first = st == SSLC_OK ? world_size : world_rank, *all = NULL;
    sslc_status cst = (all = sslc_malloc((size_t)world_size * sizeof *all)) ? SSLC_OK
                                                                            : SSLC_ERR_NOMEM;
    if (!cst)
        cst = gather(&first, all, 1, F64);
    int first_bad = world_size;
    for (int r = 0; !cst && r < world_size; r++)
        if (all[r] < first_bad)
            first_bad = (int)all[r];
    free(all);
    if (cst)
        return cst;
    if (first_bad == world_size)
        return SSLC_OK;
    in_step = true;
    char message[MESSAGE];
    snprintf(message, sizeof message, "%s", sslc_error_message());
    if ((cst = sslc_dist_broadcast(message, MESSAGE, first_bad)))
        return cst;
    message[MESSAGE - 1] = '\0';
    if (world_rank == first_bad)
        return st; // its own message stands
    return sslc_error(SSLC_ERR_INTERNAL, "rank %d: %s", first_bad, message);
}

sslc_status sslc_dist_isum_f32(float *buf, size_t n, sslc_dist_request **out)
{
    *out = NULL;
    if (world_size == 1)
        return SSLC_OK;
    sslc_status st = check_count(n);
#if defined(SSLC_USE_MPI)
    sslc_dist_request *req = st ? NULL : sslc_malloc(sizeof *req);
    if (!st && !req)
        st = SSLC_ERR_NOMEM;
    int code = st ? MPI_SUCCESS
                  : MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                                   &req->r);
    if (!st && code != MPI_SUCCESS)
        st = failed("sum", code);
    if (st)
        free(req);
    else
        *out = req;
#else
    (void)buf;
#endif
    return st;
}

void sslc_dist_poll(sslc_dist_request *req)
{
#if defined(SSLC_USE_MPI)
    int done = 0;
    if (req)
        MPI_Test(&req->r, &done, MPI_STATUS_IGNORE);
#else
    (void)req;
#endif
}

sslc_status sslc_dist_wait(sslc_dist_request *req)
{
    if (!req)
        return SSLC_OK;
#if defined(SSLC_USE_MPI)
    double t0 = sslc_now();
    sslc_status st = timed("sum", t0, MPI_Wait(&req->r, MPI_STATUS_IGNORE));
    free(req);
    return st;
#else
    return SSLC_OK;
#endif
}
