// losses/knn: the weighted kNN monitor against its naive twin (exact, on
// integer features where every similarity is exact, ties included), on
// clustered features (near 100%) and on random ones (near chance).
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/rng.h"
#include "src/eval/knn.h"
#include "tests/harness.h"

static void *workspace(int64_t ntrain, int64_t classes, int64_t k)
{
    void *ws = sslc_aligned_alloc(sslc_knn_workspace_size(ntrain, classes, k));
    assert_non_null(ws);
    return ws;
}

static void knn_matches_naive_twin_with_ties(void **state)
{
    (void)state;
    // Small integer features: float and double dot products are exact, and
    // many similarities tie, so tie-breaking must agree too.
    const int64_t M = 600, ntrain = 700, D = 6, classes = 5; // M spans 3 chunks
    float *query = malloc((size_t)(M * D) * sizeof(float));
    float *bank = malloc((size_t)(ntrain * D) * sizeof(float));
    int64_t *labels = malloc((size_t)ntrain * sizeof(int64_t));
    int64_t *pred = malloc((size_t)M * sizeof(int64_t)), *ref = malloc((size_t)M * sizeof(int64_t));
    sslc_rng r = sslc_rng_make(1, 0, 0, 0, 0);
    for (int64_t i = 0; i < M * D; i++)
        query[i] = (float)((int64_t)sslc_rng_below(&r, 5) - 2);
    for (int64_t i = 0; i < ntrain * D; i++)
        bank[i] = (float)((int64_t)sslc_rng_below(&r, 5) - 2);
    for (int64_t i = 0; i < ntrain; i++)
        labels[i] = (int64_t)sslc_rng_below(&r, (uint64_t)classes);
    const int64_t ks[] = {1, 7, 50, 700, 5000};
    const float taus[] = {10.0f, 3.0f};
    for (int t = 0; t < 2; t++) {
        for (int j = 0; j < 5; j++) {
            void *ws = workspace(ntrain, classes, ks[j]);
            assert_int_equal(sslc_knn_classify(pred, NULL, ws, query, NULL, bank, labels, M, ntrain,
                                               D, classes, ks[j], taus[t]),
                             SSLC_OK);
            assert_int_equal(sslc_knn_classify_reference(ref, query, bank, labels, M, ntrain, D,
                                                         classes, ks[j], taus[t]),
                             SSLC_OK);
            for (int64_t i = 0; i < M; i++)
                if (pred[i] != ref[i])
                    fail_msg("k=%lld tau=%g query %lld: predicted %lld, reference %lld",
                             (long long)ks[j], (double)taus[t], (long long)i, (long long)pred[i],
                             (long long)ref[i]);
            free(ws);
        }
    }
    free(query), free(bank), free(labels), free(pred), free(ref);
}

// Features of class c scattered around a random unit centre (classes), or
// plain random directions with random labels (!clustered).
static void make_set(float *x, int64_t *labels, int64_t n, int64_t D, const float *centres,
                     int64_t classes, double noise, bool clustered, uint64_t seed)
{
    sslc_rng r = sslc_rng_make(seed, 0, 0, 0, 0);
    for (int64_t i = 0; i < n; i++) {
        int64_t c = (int64_t)sslc_rng_below(&r, (uint64_t)classes);
        labels[i] = c;
        for (int64_t d = 0; d < D; d++)
            x[i * D + d] = (clustered ? centres[c * D + d] : 0.0f) +
                           (float)(noise * sslc_rng_normal(&r));
    }
    sslc_knn_normalize(x, n, D);
}

static double run_monitor(bool clustered)
{
    const int64_t ntrain = 2000, M = 2000, D = 32, classes = 10;
    float *centres = malloc((size_t)(classes * D) * sizeof(float));
    sslc_rng r = sslc_rng_make(9, 0, 0, 0, 0);
    for (int64_t i = 0; i < classes * D; i++)
        centres[i] = (float)sslc_rng_normal(&r);
    sslc_knn_normalize(centres, classes, D);
    float *bank = malloc((size_t)(ntrain * D) * sizeof(float));
    float *query = malloc((size_t)(M * D) * sizeof(float));
    int64_t *bl = malloc((size_t)ntrain * sizeof(int64_t)), *ql = malloc((size_t)M * sizeof(int64_t));
    make_set(bank, bl, ntrain, D, centres, classes, clustered ? 0.08 : 1.0, clustered, 10);
    make_set(query, ql, M, D, centres, classes, clustered ? 0.08 : 1.0, clustered, 11);
    void *ws = workspace(ntrain, classes, SSLC_KNN_DEFAULT_K);
    double acc = -1.0;
    assert_int_equal(sslc_knn_classify(NULL, &acc, ws, query, ql, bank, bl, M, ntrain, D, classes,
                                       SSLC_KNN_DEFAULT_K, SSLC_KNN_DEFAULT_TAU),
                     SSLC_OK);
    free(centres), free(bank), free(query), free(bl), free(ql), free(ws);
    return acc;
}

static void knn_separates_clustered_features(void **state)
{
    (void)state;
    double acc = run_monitor(true);
    printf("  clustered features: kNN top-1 %.4f\n", acc);
    assert_true(acc > 0.98);
}

static void knn_is_at_chance_on_random_features(void **state)
{
    (void)state;
    double acc = run_monitor(false);
    printf("  random features: kNN top-1 %.4f (chance 0.1)\n", acc);
    assert_true(acc > 0.06 && acc < 0.14);
}

static void knn_normalize_gives_unit_rows(void **state)
{
    (void)state;
    float x[3 * 4] = {3, 4, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0};
    sslc_knn_normalize(x, 3, 4);
    assert_true(fabsf(x[0] - 0.6f) < 1e-7f && fabsf(x[1] - 0.8f) < 1e-7f);
    assert_true(fabsf(x[4] - 0.5f) < 1e-7f);
    assert_true(x[8] == 0.0f); // a zero row stays zero (clamped norm)
}

static void knn_rejects_bad_arguments(void **state)
{
    (void)state;
    float q[4] = {1, 0, 0, 1}, b[4] = {1, 0, 0, 1};
    int64_t bl[2] = {0, 3}, ql[2] = {0, 1}, pred[2];
    double acc;
    void *ws = workspace(2, 4, 2);
    assert_int_equal(sslc_knn_classify(pred, NULL, ws, q, NULL, b, bl, 2, 2, 2, 3, 2, 0.1f),
                     SSLC_ERR_INVALID); // label 3 with 3 classes
    assert_non_null(strstr(sslc_error_message(), "label"));
    assert_int_equal(sslc_knn_classify(pred, NULL, ws, q, NULL, b, bl, 2, 2, 2, 4, 2, 0.0f),
                     SSLC_ERR_INVALID);
    assert_int_equal(sslc_knn_classify(pred, &acc, ws, q, NULL, b, bl, 2, 2, 2, 4, 2, 0.1f),
                     SSLC_ERR_INVALID);
    assert_int_equal(sslc_knn_classify(pred, &acc, ws, q, ql, b, bl, 2, 2, 2, 4, 1, 0.1f),
                     SSLC_OK);
    assert_int_equal(pred[0], 0);
    assert_int_equal(pred[1], 3);
    assert_true(acc == 0.5);
    assert_int_equal(sslc_knn_workspace_size(0, 4, 2), 0);
    free(ws);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(knn_matches_naive_twin_with_ties),
        cmocka_unit_test(knn_separates_clustered_features),
        cmocka_unit_test(knn_is_at_chance_on_random_features),
        cmocka_unit_test(knn_normalize_gives_unit_rows),
        cmocka_unit_test(knn_rejects_bad_arguments),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("unit", unit)};
    return sslc_test_main(argc, argv, groups, 1);
}
