// src/core: status messages, the counter-based RNG, and every GEMM backend
// against the naive reference.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __SSE__
#include <xmmintrin.h>
#endif

#include "src/core/fs.h"
#include "src/core/gemm.h"
#include "src/core/hash.h"
#include "src/core/log.h"
#include "src/core/phases.h"
#include "src/core/rng.h"
#include "src/core/status.h"
#include "src/core/threads.h"
#include "src/core/vmath.h"
#include "tests/harness.h"

static void error_message_is_recorded_and_prefixed(void **state)
{
    (void)state;
    sslc_status st = sslc_error(SSLC_ERR_FORMAT, "cannot decode '%s'", "a.png");
    assert_int_equal(st, SSLC_ERR_FORMAT);
    sslc_error_prefix(st, "data");
    assert_string_equal(sslc_error_message(), "data: cannot decode 'a.png'");
    assert_string_equal(sslc_status_string(SSLC_ERR_NOMEM), "out of memory");
}

static void rng_is_a_pure_function_of_its_coordinates(void **state)
{
    (void)state;
    sslc_rng a = sslc_rng_make(7, 1, 2, 3, 4), b = sslc_rng_make(7, 1, 2, 3, 4);
    sslc_rng c = sslc_rng_make(7, 2, 1, 3, 4);
    for (int i = 0; i < 100; i++) {
        uint64_t x = sslc_rng_u64(&a);
        assert_int_equal(x, sslc_rng_u64(&b));
        assert_int_not_equal(x, sslc_rng_u64(&c));
    }
}

static void rng_uniform_and_normal_have_the_right_moments(void **state)
{
    (void)state;
    sslc_rng r = sslc_rng_make(1, 0, 0, 0, 0);
    enum { N = 200000 };
    double su = 0, su2 = 0, sn = 0, sn2 = 0;
    uint64_t buckets[10] = {0};
    for (int i = 0; i < N; i++) {
        double u = sslc_rng_uniform(&r);
        assert_true(u >= 0.0 && u < 1.0);
        su += u;
        su2 += u * u;
        double z = sslc_rng_normal(&r);
        sn += z;
        sn2 += z * z;
        buckets[sslc_rng_below(&r, 10)]++;
    }
    assert_true(fabs(su / N - 0.5) < 0.005);
    assert_true(fabs(su2 / N - 1.0 / 3.0) < 0.005);
    assert_true(fabs(sn / N) < 0.01);
    assert_true(fabs(sn2 / N - 1.0) < 0.02);
    for (int i = 0; i < 10; i++)
        assert_true(fabs((double)buckets[i] / N - 0.1) < 0.005);
}

static void rng_permutation_is_a_permutation(void **state)
{
    (void)state;
    enum { N = 1000 };
    int64_t perm[N];
    int seen[N] = {0};
    sslc_rng r = sslc_rng_make(3, 0, 0, 0, 0);
    sslc_rng_permutation(&r, perm, N);
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        assert_true(perm[i] >= 0 && perm[i] < N);
        seen[perm[i]]++;
        fixed += perm[i] == i;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    assert_true(fixed < 10); // about 1 expected for a uniform permutation
}

static void gemm_backend_matches_naive_for_every_transpose(void **state)
{
    (void)state;
    const int64_t M = 37, N = 53, K = 29;
    float *A = malloc(M * K * sizeof(float)), *B = malloc(K * N * sizeof(float));
    float *C = malloc(M * N * sizeof(float)), *R = malloc(M * N * sizeof(float));
    sslc_rng r = sslc_rng_make(5, 0, 0, 0, 0);
    for (int64_t i = 0; i < M * K; i++)
        A[i] = (float)sslc_rng_normal(&r);
    for (int64_t i = 0; i < K * N; i++)
        B[i] = (float)sslc_rng_normal(&r);
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            int64_t lda = ta ? M : K, ldb = tb ? K : N;
            for (int64_t i = 0; i < M * N; i++)
                C[i] = R[i] = (float)i * 0.01f;
            sslc_sgemm(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 2.0f, C, N);
            sslc_sgemm_naive(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, 2.0f, R, N);
            sslc_assert_close(sslc_gemm_backend(), C, R, (size_t)(M * N), 1e-4, 1e-5);
        }
    }
    free(A);
    free(B);
    free(C);
    free(R);
}

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

// mkdir -p: every missing parent is made, an existing folder is fine, and a
// file in the way is named in the error with the reason.
// The vectorisable exp and normal distribution against double precision,
// on a grid dense enough to visit every binade they use.
static void vector_exp_and_normal_cdf_match_double(void **state)
{
    (void)state;
    double worst_exp = 0.0, worst_cdf = 0.0, worst_pdf = 0.0;
    for (float a = -86.9f; a < 87.9f; a += 1e-3f) {
        double want = exp((double)a);
        worst_exp = fmax(worst_exp, fabs(sslc_vexpf(a) - want) / want);
    }
    for (float x = -9.0f; x < 9.0f; x += 1e-4f) {
        double cdf = 0.5 * erfc(-(double)x / sqrt(2.0));
        double pdf = exp(-0.5 * (double)x * x) / sqrt(2.0 * M_PI);
        float density, got = sslc_normal_cdf(x, &density);
        worst_cdf = fmax(worst_cdf, fabs(got - cdf) / cdf);
        worst_pdf = fmax(worst_pdf, fabs(density - pdf) / pdf);
    }
    // A few ulps (float's ulp is 1.2e-7 relative); the CDF's lower tail is
    // relative too, where 1 + erf(x / sqrt 2) in float would have none left.
    // Its bound grows with x^2 as exp(-x^2 / 2) inherits the rounding of x^2.
    print_message("worst relative error: exp %.2g, cdf %.2g, density %.2g\n", worst_exp,
                  worst_cdf, worst_pdf);
    assert_true(worst_exp < 3e-7);
    assert_true(worst_cdf < 8e-6 && worst_pdf < 8e-6);
    float density;
    assert_true(sslc_normal_cdf(0.0f, &density) == 0.5f);
    assert_true(sslc_vexpf(-100.0f) == 0.0f && sslc_vexpf(0.0f) == 1.0f);
    assert_true(isinf(sslc_vexpf(100.0f)) && isnan(sslc_vexpf(NAN)));
}

// After sslc_flush_denormals a product below float's smallest normal is 0,
// and so is a subnormal input; the thread's own floating-point environment
// is put back afterwards.
static void denormals_flush_to_zero(void **state)
{
    (void)state;
#ifdef __SSE__
    const unsigned saved = _mm_getcsr();
    volatile float tiny = 1e-30f, small = 1e-10f, subnormal = 1e-40f;
    assert_true(tiny * small > 0.0f && subnormal > 0.0f);
    sslc_flush_denormals();
    assert_true(tiny * small == 0.0f);
    assert_true(subnormal * 1.0f == 0.0f);
    _mm_setcsr(saved);
#else
    skip();
#endif
}

// The profile sums each phase over the steps after the first (which pays
// for set-up) and reports seconds per step; off, it sums nothing.
static void phases_leave_out_the_first_step(void **state)
{
    (void)state;
    sslc_phases_enable(true);
    for (int step = 0; step < 3; step++) {
        double t = sslc_now();
        // The first step's backward "took" 100 s, the others' 1 s.
        sslc_phase_end(SSLC_PHASE_BACKWARD, t - (step == 0 ? 100.0 : 1.0));
        sslc_phase_end(SSLC_PHASE_KEYS, sslc_now() - 0.25);
        sslc_phases_step_done();
    }
    assert_true(fabs(sslc_phase_seconds(SSLC_PHASE_BACKWARD) - 1.0) < 1e-3);
    assert_true(fabs(sslc_phase_seconds(SSLC_PHASE_KEYS) - 0.25) < 1e-3);
    assert_true(sslc_phase_seconds(SSLC_PHASE_FORWARD) == 0.0);
    sslc_phases_enable(false);
    sslc_phase_end(SSLC_PHASE_BACKWARD, sslc_now() - 1.0);
    sslc_phases_step_done();
    sslc_phases_step_done();
    assert_true(sslc_phase_seconds(SSLC_PHASE_BACKWARD) == 0.0);
}

static void make_dir_makes_parents_and_names_what_fails(void **state)
{
    (void)state;
    const char *root = sslc_test_tmpdir("fs");
    char path[1200], file[1200];
    snprintf(path, sizeof path, "%s/a/b//c/", root);
    assert_int_equal(sslc_make_dir(path, "run folder"), SSLC_OK);
    snprintf(path, sizeof path, "%s/a/b/c", root);
    assert_true(is_dir(path));
    assert_int_equal(sslc_make_dir(path, "run folder"), SSLC_OK); // exists: fine
    snprintf(file, sizeof file, "%s/a/plain", root);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/a/plain/x/y", root);
    assert_int_equal(sslc_make_dir(path, "run folder"), SSLC_ERR_IO);
    assert_non_null(strstr(sslc_error_message(), "run folder"));
    assert_non_null(strstr(sslc_error_message(), file));
    assert_non_null(strstr(sslc_error_message(), "in the way"));
    // A file's folder, made for it; a bare name needs none.
    snprintf(path, sizeof path, "%s/out/deep/results.jsonl", root);
    assert_int_equal(sslc_make_parent_dir(path, "--results"), SSLC_OK);
    snprintf(path, sizeof path, "%s/out/deep", root);
    assert_true(is_dir(path));
    assert_int_equal(sslc_make_parent_dir("results.jsonl", "--results"), SSLC_OK);
}

// FNV-1a 64 of the empty string and of "a" (its published test values), and
// continuing over two pieces equals hashing their concatenation.
static void hash64_is_fnv1a(void **state)
{
    (void)state;
    assert_true(sslc_hash64(SSLC_HASH64_INIT, "", 0) == 0xcbf29ce484222325ULL);
    assert_true(sslc_hash64(SSLC_HASH64_INIT, "a", 1) == 0xaf63dc4c8601ec8cULL);
    uint64_t h = sslc_hash64(sslc_hash64(SSLC_HASH64_INIT, "foo", 3), "bar", 3);
    assert_true(h == sslc_hash64(SSLC_HASH64_INIT, "foobar", 6));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(error_message_is_recorded_and_prefixed),
        cmocka_unit_test(rng_is_a_pure_function_of_its_coordinates),
        cmocka_unit_test(rng_uniform_and_normal_have_the_right_moments),
        cmocka_unit_test(rng_permutation_is_a_permutation),
        cmocka_unit_test(gemm_backend_matches_naive_for_every_transpose),
        cmocka_unit_test(vector_exp_and_normal_cdf_match_double),
        cmocka_unit_test(denormals_flush_to_zero),
        cmocka_unit_test(phases_leave_out_the_first_step),
        cmocka_unit_test(make_dir_makes_parents_and_names_what_fails),
        cmocka_unit_test(hash64_is_fnv1a),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("unit", unit)};
    return sslc_test_main(argc, argv, groups, 1);
}
