#include "src/eval/knn.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "src/core/gemm.h"

static size_t align64(size_t bytes) { return (bytes + 63) / 64 * 64; }

// Workspace: sims (chunk, ntrain) float, then per chunk row a heap of k
// (sim, index) pairs and n_classes double scores.
typedef struct layout {
    size_t heap_sim, heap_idx, scores, total;
} layout;

static layout make_layout(int64_t ntrain, int64_t n_classes, int64_t k)
{
    layout l;
    size_t at = align64((size_t)(SSLC_KNN_CHUNK * ntrain) * sizeof(float));
    l.heap_sim = at, at += align64((size_t)(SSLC_KNN_CHUNK * k) * sizeof(float));
    l.heap_idx = at, at += align64((size_t)(SSLC_KNN_CHUNK * k) * sizeof(int64_t));
    l.scores = at, at += align64((size_t)(SSLC_KNN_CHUNK * n_classes) * sizeof(double));
    l.total = at;
    return l;
}

void sslc_knn_normalize(float *x, int64_t n, int64_t D)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double ss = 0.0;
        for (int64_t d = 0; d < D; d++)
            ss += (double)x[i * D + d] * x[i * D + d];
        float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12));
        for (int64_t d = 0; d < D; d++)
            x[i * D + d] *= inv;
    }
}

size_t sslc_knn_workspace_size(int64_t ntrain, int64_t n_classes, int64_t k)
{
    if (ntrain < 1 || n_classes < 1 || k < 1)
        return 0;
    return make_layout(ntrain, n_classes, k < ntrain ? k : ntrain).total;
}

static sslc_status check_args(const int64_t *bank_labels, int64_t M, int64_t ntrain, int64_t D,
                              int64_t n_classes, int64_t k, float tau)
{
    if (M < 0 || ntrain < 1 || D < 1 || n_classes < 1 || k < 1)
        return sslc_error(SSLC_ERR_INVALID,
                          "knn: impossible sizes M=%lld ntrain=%lld D=%lld classes=%lld k=%lld",
                          (long long)M, (long long)ntrain, (long long)D, (long long)n_classes,
                          (long long)k);
    if (!(tau > 0.0f))
        return sslc_error(SSLC_ERR_INVALID, "knn: temperature must be > 0, got %g", (double)tau);
    for (int64_t i = 0; i < ntrain; i++)
        if (bank_labels[i] < 0 || bank_labels[i] >= n_classes)
            return sslc_error(SSLC_ERR_INVALID,
                              "knn: bank label %lld of feature %lld outside [0, %lld)",
                              (long long)bank_labels[i], (long long)i, (long long)n_classes);
    return SSLC_OK;
}

// (s, i) ranks below (t, j): smaller similarity, or equal and larger index.
static bool worse(float s, int64_t i, float t, int64_t j) { return s < t || (s == t && i > j); }

// Min-heap on `worse`: the root is the weakest of the k kept neighbours.
static void sift_down(float *hs, int64_t *hi, int64_t n, int64_t at)
{
    for (;;) {
        int64_t l = 2 * at + 1, r = l + 1, m = at;
        if (l < n && worse(hs[l], hi[l], hs[m], hi[m]))
            m = l;
        if (r < n && worse(hs[r], hi[r], hs[m], hi[m]))
            m = r;
        if (m == at)
            return;
        float ts = hs[at];
        hs[at] = hs[m], hs[m] = ts;
        int64_t ti = hi[at];
        hi[at] = hi[m], hi[m] = ti;
        at = m;
    }
}

static int64_t vote(double *scores, const float *hs, const int64_t *hi, int64_t k,
                    const int64_t *bank_labels, int64_t n_classes, float tau)
{
    for (int64_t c = 0; c < n_classes; c++)
        scores[c] = 0.0;
    for (int64_t j = 0; j < k; j++)
        scores[bank_labels[hi[j]]] += exp((double)hs[j] / (double)tau);
    int64_t best = 0;
    for (int64_t c = 1; c < n_classes; c++)
        if (scores[c] > scores[best])
            best = c;
    return best;
}

sslc_status sslc_knn_classify(int64_t *pred, double *accuracy, void *workspace,
                              const float *restrict query, const int64_t *query_labels,
                              const float *restrict bank, const int64_t *bank_labels, int64_t M,
                              int64_t ntrain, int64_t D, int64_t n_classes, int64_t k, float tau)
{
    sslc_status st = check_args(bank_labels, M, ntrain, D, n_classes, k, tau);
    if (st != SSLC_OK)
        return st;
    if (accuracy && !query_labels)
        return sslc_error(SSLC_ERR_INVALID, "knn: accuracy asked for without query labels");
    if (k > ntrain)
        k = ntrain;
    const layout l = make_layout(ntrain, n_classes, k);
    char *base = workspace;
    float *sims = (float *)base;
    float *heap_sim = (float *)(base + l.heap_sim);
    int64_t *heap_idx = (int64_t *)(base + l.heap_idx);
    double *scores = (double *)(base + l.scores);
    int64_t correct = 0;

    for (int64_t c0 = 0; c0 < M; c0 += SSLC_KNN_CHUNK) {
        const int64_t rows = M - c0 < SSLC_KNN_CHUNK ? M - c0 : SSLC_KNN_CHUNK;
        sslc_sgemm(false, true, rows, ntrain, D, 1.0f, query + c0 * D, D, bank, D, 0.0f, sims,
                   ntrain);
#pragma omp parallel for schedule(static) reduction(+ : correct)
        for (int64_t r = 0; r < rows; r++) {
            const float *s = sims + r * ntrain;
            float *hs = heap_sim + r * k;
            int64_t *hi = heap_idx + r * k;
            for (int64_t j = 0; j < k; j++) {
                hs[j] = s[j];
                hi[j] = j;
            }
            for (int64_t j = k / 2 - 1; j >= 0; j--)
                sift_down(hs, hi, k, j);
            for (int64_t j = k; j < ntrain; j++) {
                if (worse(hs[0], hi[0], s[j], j)) {
                    hs[0] = s[j];
                    hi[0] = j;
                    sift_down(hs, hi, k, 0);
                }
            }
            // Heap sort, best first: the votes are summed in the same order as
            // the reference's, so equal class scores stay exactly equal.
            for (int64_t n = k - 1; n > 0; n--) {
                float ts = hs[0];
                hs[0] = hs[n], hs[n] = ts;
                int64_t ti = hi[0];
                hi[0] = hi[n], hi[n] = ti;
                sift_down(hs, hi, n, 0);
            }
            int64_t p = vote(scores + r * n_classes, hs, hi, k, bank_labels, n_classes, tau);
            if (pred)
                pred[c0 + r] = p;
            if (query_labels && p == query_labels[c0 + r])
                correct++;
        }
    }
    if (accuracy)
        *accuracy = M > 0 ? (double)correct / (double)M : 0.0;
    return SSLC_OK;
}

typedef struct ranked {
    double sim;
    int64_t index;
} ranked;

static int by_rank(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->sim != y->sim)
        return x->sim > y->sim ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

sslc_status sslc_knn_classify_reference(int64_t *pred, const float *query, const float *bank,
                                        const int64_t *bank_labels, int64_t M, int64_t ntrain,
                                        int64_t D, int64_t n_classes, int64_t k, float tau)
{
    sslc_status st = check_args(bank_labels, M, ntrain, D, n_classes, k, tau);
    if (st != SSLC_OK)
        return st;
    if (k > ntrain)
        k = ntrain;
    ranked *all = sslc_malloc((size_t)ntrain * sizeof *all);
    double *scores = sslc_malloc((size_t)n_classes * sizeof *scores);
    if (!all || !scores) {
        st = SSLC_ERR_NOMEM;
        goto fail;
    }
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < ntrain; j++) {
            double dot = 0.0;
            for (int64_t d = 0; d < D; d++)
                dot += (double)query[i * D + d] * bank[j * D + d];
            all[j].sim = dot;
            all[j].index = j;
        }
        qsort(all, (size_t)ntrain, sizeof *all, by_rank);
        for (int64_t c = 0; c < n_classes; c++)
            scores[c] = 0.0;
        for (int64_t j = 0; j < k; j++)
            scores[bank_labels[all[j].index]] += exp(all[j].sim / (double)tau);
        int64_t best = 0;
        for (int64_t c = 1; c < n_classes; c++)
            if (scores[c] > scores[best])
                best = c;
        pred[i] = best;
    }
fail:
    free(all);
    free(scores);
    return st;
}
