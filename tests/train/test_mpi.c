// Data parallelism against the single process (docs/training.md, "Several
// processes and machines"): short runs of the sslc binary under
// `mpirun -np 2` and without it, on the same global batch and seed, must give
// the same loss at every step and the same state after (weights, batch-norm
// statistics, optimizer state, MoCo's queue), to float tolerance:
//   - SimCLR, 2 ranks with --sync-bn = 1 rank;
//   - SimCLR, 2 ranks (per-rank BN) = 1 rank with --bn-groups 2;
//   - symmetric MoCo, 2 ranks = 1 rank with --bn-groups 2 (shuffle-BN over
//     2 groups in both);
//   - 2 ranks -> checkpoint -> resumed on 1 rank with --bn-groups 2 = the
//     straight 2-rank run;
//   - --chunk (gradient caching) = --bn-groups of the same groups.
// One process with --bn-groups 2 recomputes each group's forward for its
// backward (gradient caching) while each of 2 ranks keeps its activations:
// their equality also checks the cached-gradient backward.
// Every rank's weights and queue are compared with rank 0's at each
// checkpoint by the trainer itself (a mismatch fails the run).
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

// SSLC_GRAD_BUCKET=1: a gradient bucket per residual block, so the sums
// overlapped with the backward are all exercised.
static const char *mpirun = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
                            "mpirun --oversubscribe -np 2 -x OMP_NUM_THREADS=1 "
                            "-x SSLC_GRAD_BUCKET=1";

// Skips the test (with its reason) when sslc was built without MPI or
// mpirun is missing.
static bool have_mpi(void)
{
    char out[512], log[1200];
    snprintf(log, sizeof log, "%s/version.txt", sslc_test_tmpdir("mpi-version"));
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s' version", SSLC_EXE);
    if (sslc_test_run_cmd(cmd, log, out, sizeof out) != 0 || strstr(out, "without MPI")) {
        sslc_test_skip("sslc was built without MPI (-Dmpi=disabled, or no libopenmpi-dev)");
        return false;
    }
    if (system("command -v mpirun > /dev/null 2>&1") != 0) {
        sslc_test_skip("mpirun is not installed (openmpi-bin)");
        return false;
    }
    return true;
}

// A tiny run: width-4 ResNet-18 on Fashion-MNIST, a metrics line every step.
static void run(const char *launcher, const char *dir, const char *extra)
{
    static char out[1 << 16];
    char cmd[4096], log[1400];
    snprintf(log, sizeof log, "%s.log", dir);
    snprintf(cmd, sizeof cmd,
             "%s '%s' pretrain --width 4 --batch 16 --knn-bank none --threads 1 --log-every 1 "
             "--ckpt-every 2 --no-async --out '%s' %s",
             launcher, SSLC_EXE, dir, extra);
    int rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
    if (rc != 0)
        fail_msg("%s failed (%d):\n%s", cmd, rc, out);
}

// The loss of every step of dir/metrics.jsonl into loss (cap entries).
static int losses(const char *dir, double *loss, int cap)
{
    char path[1400], line[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    while (n < cap && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"loss\": ");
        if (p)
            loss[n++] = atof(p + 8);
    }
    fclose(f);
    return n;
}

typedef struct compare_ctx {
    hid_t other;
    double worst;
    char where[256];
} compare_ctx;

static herr_t compare_dataset(hid_t obj, const char *name, const H5O_info_t *info, void *data)
{
    compare_ctx *c = data;
    if (info->type != H5O_TYPE_DATASET)
        return 0;
    hid_t a = H5Dopen2(obj, name, H5P_DEFAULT), b = H5Dopen2(c->other, name, H5P_DEFAULT);
    assert_true(a >= 0 && b >= 0);
    hid_t space = H5Dget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    double *x = malloc((size_t)(n + 1) * sizeof *x), *y = malloc((size_t)(n + 1) * sizeof *y);
    assert_true(x && y);
    assert_true(H5Dread(a, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    assert_true(H5Dread(b, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0);
    for (hssize_t i = 0; i < n; i++) {
        double d = fabs(x[i] - y[i]) / (1.0 + fabs(y[i]));
        if (d > c->worst) {
            c->worst = d;
            snprintf(c->where, sizeof c->where, "%s[%lld]: %.8g vs %.8g", name, (long long)i,
                     x[i], y[i]);
        }
    }
    free(x), free(y);
    H5Sclose(space);
    H5Dclose(a), H5Dclose(b);
    return 0;
}

// Every dataset of dir_a/last.h5 against dir_b/last.h5: the largest
// |a - b| / (1 + |b|) must stay under tol.
static void same_state(const char *what, const char *dir_a, const char *dir_b, double tol)
{
    char pa[1400], pb[1400];
    snprintf(pa, sizeof pa, "%s/last.h5", dir_a);
    snprintf(pb, sizeof pb, "%s/last.h5", dir_b);
    hid_t a = H5Fopen(pa, H5F_ACC_RDONLY, H5P_DEFAULT), b = H5Fopen(pb, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(a >= 0 && b >= 0);
    compare_ctx c = {.other = b};
#if H5_VERSION_GE(1, 12, 0)
    assert_true(H5Ovisit3(a, H5_INDEX_NAME, H5_ITER_INC, compare_dataset, &c, H5O_INFO_BASIC) >= 0);
#else
    assert_true(H5Ovisit2(a, H5_INDEX_NAME, H5_ITER_INC, compare_dataset, &c, H5O_INFO_BASIC) >= 0);
#endif
    H5Fclose(a), H5Fclose(b);
    printf("  %-46s state: worst relative difference %.2g (%s)\n", what, c.worst, c.where);
    if (c.worst > tol)
        fail_msg("%s: the two runs' states differ: %s", what, c.where);
}

static void same_losses(const char *what, const char *dir_a, const char *dir_b, int steps)
{
    double a[64], b[64];
    int na = losses(dir_a, a, 64), nb = losses(dir_b, b, 64);
    assert_int_equal(na, steps);
    assert_int_equal(nb, steps);
    double worst = 0.0;
    for (int i = 0; i < steps; i++)
        worst = fmax(worst, fabs(a[i] - b[i]));
    printf("  %-46s losses: %d steps, largest difference %.2g\n", what, steps, worst);
    if (worst > 1e-4)
        fail_msg("%s: the losses differ by %g", what, worst);
}

static void equivalent(const char *what, const char *one, const char *two, int steps)
{
    const char *root = sslc_test_tmpdir("mpi");
    char a[1200], b[1200], extra[512];
    snprintf(a, sizeof a, "%s/one", root);
    snprintf(b, sizeof b, "%s/two", root);
    snprintf(extra, sizeof extra, "--max-steps %d %s", steps, one);
    run("", a, extra);
    snprintf(extra, sizeof extra, "--max-steps %d %s", steps, two);
    run(mpirun, b, extra);
    same_losses(what, a, b, steps);
    same_state(what, a, b, 1e-5);
}

static void simclr_sync_bn_equals_one_process(void **state)
{
    (void)state;
    if (have_mpi())
        equivalent("SimCLR --sync-bn", "", "--sync-bn", 4);
}

static void simclr_per_rank_bn_equals_bn_groups(void **state)
{
    (void)state;
    if (have_mpi())
        equivalent("SimCLR per-rank BN", "--bn-groups 2", "", 4);
}

static void moco_equals_bn_groups_and_shuffle_groups(void **state)
{
    (void)state;
    if (have_mpi())
        equivalent("MoCo symmetric", "--method moco --symmetric --shuffle-groups 2 --bn-groups 2",
                    "--method moco --symmetric --shuffle-groups 2", 4);
}

// Two ranks for two steps, then one process from that checkpoint (BN grouped
// as the ranks were) for two more: the straight 2-rank run of four steps.
static void resume_with_another_number_of_ranks(void **state)
{
    (void)state;
    if (!have_mpi())
        return;
    const char *root = sslc_test_tmpdir("mpi-resume");
    char straight[1200], split[1200], extra[512];
    snprintf(straight, sizeof straight, "%s/straight", root);
    snprintf(split, sizeof split, "%s/split", root);
    const char *moco = "--method moco --shuffle-groups 2";
    snprintf(extra, sizeof extra, "--max-steps 4 %s", moco);
    run(mpirun, straight, extra);
    snprintf(extra, sizeof extra, "--max-steps 2 %s", moco);
    run(mpirun, split, extra);
    static char out[1 << 16];
    char cmd[4096], log[1400];
    snprintf(log, sizeof log, "%s/resume.log", root);
    snprintf(cmd, sizeof cmd, "'%s' pretrain --resume '%s' --max-steps 2 --bn-groups 2 --threads 1",
             SSLC_EXE, split);
    int rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
    if (rc != 0)
        fail_msg("resume on one process failed (%d):\n%s", rc, out);
    same_losses("MoCo 2 ranks, resumed on 1", straight, split, 4);
    same_state("MoCo 2 ranks, resumed on 1", straight, split, 1e-5);
}

// Gradient caching: --chunk 8 on 16 pairs (32 SimCLR views) is four groups
// of four pairs, the same as --bn-groups 4.
static void chunk_equals_bn_groups(void **state)
{
    (void)state;
    const char *root = sslc_test_tmpdir("chunk");
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/groups", root);
    snprintf(b, sizeof b, "%s/chunk", root);
    run("", a, "--max-steps 3 --bn-groups 4");
    run("", b, "--max-steps 3 --chunk 8");
    same_losses("SimCLR --chunk 8 = --bn-groups 4", a, b, 3);
    same_state("SimCLR --chunk 8 = --bn-groups 4", a, b, 0.0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest e2e[] = {
        cmocka_unit_test(simclr_sync_bn_equals_one_process),
        cmocka_unit_test(simclr_per_rank_bn_equals_bn_groups),
        cmocka_unit_test(moco_equals_bn_groups_and_shuffle_groups),
        cmocka_unit_test(resume_with_another_number_of_ranks),
        cmocka_unit_test(chunk_equals_bn_groups),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("e2e", e2e)};
    return sslc_test_main(argc, argv, groups, 1);
}
