#include "src/dist/dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/log.h"

#if defined(SSLC_USE_MPI)
#include <mpi.h>
#endif

enum { MESSAGE = 512 };

static bool in_step;        // every rank at the same point (sslc_dist_in_step)
static double wait_seconds; // in blocking collectives

double sslc_dist_wait_seconds(void) { return wait_seconds; }

void sslc_dist_in_step(void) { in_step = true; }
bool sslc_dist_is_in_step(void) { return in_step; }

#if defined(SSLC_USE_MPI)
#define SSLC_DIST_NO_RANK_WHY "no PMI/PMIx in the environment"
#else
#define SSLC_DIST_NO_RANK_WHY "this sslc was built without MPI"
#endif

// One of several srun tasks that is not an MPI rank would train the whole
// batch alone into the same run folder as the others: refused.
static sslc_status refuse_lone_task(void)
{
    const char *tasks = getenv("SLURM_NTASKS");
    if (tasks && atoi(tasks) > 1 && getenv("SLURM_PROCID"))
        return sslc_error(SSLC_ERR_INVALID,
                          "started by srun as one of %s tasks, but not as an MPI rank (%s): "
                          "run srun with the --mpi plugin that matches this MPI (srun --mpi=list)"
                          ", or use mpirun",
                          tasks, SSLC_DIST_NO_RANK_WHY);
    return SSLC_OK;
}

#if defined(SSLC_USE_MPI)

static bool active;      // MPI_Init was called here
static int world_rank, world_size = 1;
static char description[128] = "single process";

struct sslc_dist_request {
    MPI_Request r;
};

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

static sslc_status failed(const char *what, int code)
{
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(code, text, &len);
    return sslc_error(SSLC_ERR_INTERNAL, "rank %d of %d: %s failed: %s", world_rank, world_size,
                      what, text);
}

// MPI counts are int: refuse a message of more elements than that.
#define SSLC_MPI_COUNT(n)                                                                               \
    do {                                                                                           \
        if ((size_t)(n) > (size_t)INT_MAX)                                                         \
            return sslc_error(SSLC_ERR_UNSUPPORTED,                                                \
                              "rank %d: a collective of %zu elements is more than MPI's int "     \
                              "counts hold; use more ranks or a smaller batch per rank",           \
                              world_rank, (size_t)(n));                                            \
    } while (0)

#define MPI_TRY(what, call)                                                                        \
    do {                                                                                           \
        double t0_ = sslc_now();                                                                   \
        int code_ = (call);                                                                        \
        wait_seconds += sslc_now() - t0_;                                                          \
        if (code_ != MPI_SUCCESS)                                                                  \
            return failed(what, code_);                                                            \
    } while (0)

sslc_status sslc_dist_init(void)
{
    if (!launched_by_mpi())
        return refuse_lone_task();
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
    snprintf(description, sizeof description, "%s, %d rank%s", version, world_size,
             world_size == 1 ? "" : "s");
    return SSLC_OK;
}

void sslc_dist_finalize(void)
{
    if (active)
        MPI_Finalize();
    active = false;
}

void sslc_dist_abort(void)
{
    if (active && world_size > 1)
        MPI_Abort(MPI_COMM_WORLD, 1);
}

bool sslc_dist_solo(void)
{
    if (world_rank != 0)
        return false;
    world_size = 1;
    snprintf(description, sizeof description, "rank 0 of an MPI job, alone");
    return true;
}

int sslc_dist_rank(void) { return world_rank; }
int sslc_dist_size(void) { return world_size; }
const char *sslc_dist_describe(void) { return description; }

sslc_status sslc_dist_sum_f32(float *buf, size_t n)
{
    SSLC_MPI_COUNT(n);
    if (world_size > 1)
        MPI_TRY("sum", MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    return SSLC_OK;
}

sslc_status sslc_dist_sum_f64(double *buf, size_t n)
{
    SSLC_MPI_COUNT(n);
    if (world_size > 1)
        MPI_TRY("sum", MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM,
                                     MPI_COMM_WORLD));
    return SSLC_OK;
}

sslc_status sslc_dist_gather_f32(const float *send, float *recv, size_t n)
{
    SSLC_MPI_COUNT(n * (size_t)world_size);
    if (world_size == 1) {
        memmove(recv, send, n * sizeof(float));
        return SSLC_OK;
    }
    MPI_TRY("gather", MPI_Allgather(send, (int)n, MPI_FLOAT, recv, (int)n, MPI_FLOAT,
                                    MPI_COMM_WORLD));
    return SSLC_OK;
}

sslc_status sslc_dist_gather_f64(const double *send, double *recv, size_t n)
{
    SSLC_MPI_COUNT(n * (size_t)world_size);
    if (world_size == 1) {
        memmove(recv, send, n * sizeof(double));
        return SSLC_OK;
    }
    MPI_TRY("gather", MPI_Allgather(send, (int)n, MPI_DOUBLE, recv, (int)n, MPI_DOUBLE,
                                    MPI_COMM_WORLD));
    return SSLC_OK;
}

// Rows of every rank (gathered first), then the rows themselves.
static sslc_status gatherv(const void *send, int64_t n, int64_t row, void *recv, int64_t cap,
                           int64_t *total, MPI_Datatype type)
{
    int64_t *rows = sslc_malloc((size_t)world_size * sizeof *rows);
    int *counts = sslc_malloc((size_t)world_size * sizeof *counts);
    int *displs = sslc_malloc((size_t)world_size * sizeof *displs);
    sslc_status st = rows && counts && displs ? SSLC_OK : SSLC_ERR_NOMEM;
    int code = MPI_SUCCESS;
    if (!st)
        code = MPI_Allgather(&n, 1, MPI_INT64_T, rows, 1, MPI_INT64_T, MPI_COMM_WORLD);
    int64_t at = 0;
    for (int r = 0; !st && code == MPI_SUCCESS && r < world_size; r++) {
        counts[r] = (int)(rows[r] * row);
        displs[r] = (int)(at * row);
        at += rows[r];
    }
    if (!st && code == MPI_SUCCESS && at > cap)
        st = sslc_error(SSLC_ERR_INTERNAL, "rank %d: %lld rows gathered, room for %lld",
                        world_rank, (long long)at, (long long)cap);
    if (!st && code == MPI_SUCCESS) {
        double t0 = sslc_now();
        code = MPI_Allgatherv(send, (int)(n * row), type, recv, counts, displs, type,
                              MPI_COMM_WORLD);
        wait_seconds += sslc_now() - t0;
    }
    if (!st && code != MPI_SUCCESS)
        st = failed("gather", code);
    *total = at;
    free(rows);
    free(counts);
    free(displs);
    return st;
}

sslc_status sslc_dist_gatherv_f32(const float *send, int64_t n, int64_t row, float *recv,
                                  int64_t cap, int64_t *total)
{
    if (world_size == 1) {
        memmove(recv, send, (size_t)(n * row) * sizeof(float));
        *total = n;
        return SSLC_OK;
    }
    return gatherv(send, n, row, recv, cap, total, MPI_FLOAT);
}

sslc_status sslc_dist_gatherv_i64(const int64_t *send, int64_t n, int64_t row, int64_t *recv,
                                  int64_t cap, int64_t *total)
{
    if (world_size == 1) {
        memmove(recv, send, (size_t)(n * row) * sizeof(int64_t));
        *total = n;
        return SSLC_OK;
    }
    return gatherv(send, n, row, recv, cap, total, MPI_INT64_T);
}

sslc_status sslc_dist_broadcast(void *buf, size_t bytes, int root)
{
    SSLC_MPI_COUNT(bytes);
    if (world_size > 1)
        MPI_TRY("broadcast", MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD));
    return SSLC_OK;
}

sslc_status sslc_dist_agree(sslc_status st)
{
    if (world_size == 1)
        return st;
    int first_bad = st == SSLC_OK ? world_size : world_rank;
    MPI_TRY("agree", MPI_Allreduce(MPI_IN_PLACE, &first_bad, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    if (first_bad == world_size)
        return SSLC_OK;
    in_step = true;
    char message[MESSAGE];
    snprintf(message, sizeof message, "%s", sslc_error_message());
    MPI_TRY("agree", MPI_Bcast(message, MESSAGE, MPI_CHAR, first_bad, MPI_COMM_WORLD));
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
    sslc_dist_request *req = sslc_malloc(sizeof *req);
    if (!req)
        return SSLC_ERR_NOMEM;
    int code = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                              &req->r);
    if (code != MPI_SUCCESS) {
        free(req);
        return failed("sum", code);
    }
    *out = req;
    return SSLC_OK;
}

void sslc_dist_poll(sslc_dist_request *req)
{
    int done = 0;
    if (req)
        MPI_Test(&req->r, &done, MPI_STATUS_IGNORE);
}

sslc_status sslc_dist_wait(sslc_dist_request *req)
{
    if (!req)
        return SSLC_OK;
    double t0 = sslc_now();
    int code = MPI_Wait(&req->r, MPI_STATUS_IGNORE);
    wait_seconds += sslc_now() - t0;
    free(req);
    if (code != MPI_SUCCESS)
        return failed("sum", code);
    return SSLC_OK;
}

#else // the single-process twin

sslc_status sslc_dist_init(void) { return refuse_lone_task(); }
void sslc_dist_finalize(void) {}
void sslc_dist_abort(void) {}
bool sslc_dist_solo(void) { return true; }
int sslc_dist_rank(void) { return 0; }
int sslc_dist_size(void) { return 1; }
const char *sslc_dist_describe(void) { return "single process (built without MPI)"; }

sslc_status sslc_dist_sum_f32(float *buf, size_t n)
{
    (void)buf, (void)n;
    return SSLC_OK;
}

sslc_status sslc_dist_sum_f64(double *buf, size_t n)
{
    (void)buf, (void)n;
    return SSLC_OK;
}

sslc_status sslc_dist_gather_f32(const float *send, float *recv, size_t n)
{
    memmove(recv, send, n * sizeof(float));
    return SSLC_OK;
}

sslc_status sslc_dist_gather_f64(const double *send, double *recv, size_t n)
{
    memmove(recv, send, n * sizeof(double));
    return SSLC_OK;
}

sslc_status sslc_dist_gatherv_f32(const float *send, int64_t n, int64_t row, float *recv,
                                  int64_t cap, int64_t *total)
{
    (void)cap;
    memmove(recv, send, (size_t)(n * row) * sizeof(float));
    *total = n;
    return SSLC_OK;
}

sslc_status sslc_dist_gatherv_i64(const int64_t *send, int64_t n, int64_t row, int64_t *recv,
                                  int64_t cap, int64_t *total)
{
    (void)cap;
    memmove(recv, send, (size_t)(n * row) * sizeof(int64_t));
    *total = n;
    return SSLC_OK;
}

sslc_status sslc_dist_broadcast(void *buf, size_t bytes, int root)
{
    (void)buf, (void)bytes, (void)root;
    return SSLC_OK;
}

sslc_status sslc_dist_agree(sslc_status st) { return st; }

sslc_status sslc_dist_isum_f32(float *buf, size_t n, sslc_dist_request **req)
{
    (void)buf, (void)n;
    *req = NULL;
    return SSLC_OK;
}

void sslc_dist_poll(sslc_dist_request *req) { (void)req; }
sslc_status sslc_dist_wait(sslc_dist_request *req)
{
    (void)req;
    return SSLC_OK;
}

#endif
