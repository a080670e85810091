#include "src/eval/logreg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "losses/xent.h"
#include "src/core/gemm.h"
#include "src/core/rng.h"
#include "src/optim/schedule.h"

const double sslc_logreg_default_grid[SSLC_LOGREG_GRID] = {
    1.0, 3e-1, 1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6};

sslc_status sslc_logreg_create(sslc_logreg *m, int64_t dim, int64_t classes)
{
    memset(m, 0, sizeof *m);
    if (dim <= 0 || classes < 2)
        return sslc_error(SSLC_ERR_INVALID, "logreg: need dim > 0 (%lld) and 2+ classes (%lld)",
                          (long long)dim, (long long)classes);
    m->dim = dim;
    m->classes = classes;
    m->w = sslc_calloc((size_t)(dim * classes), sizeof(float));
    m->b = sslc_calloc((size_t)classes, sizeof(float));
    m->mean = sslc_calloc((size_t)dim, sizeof(float));
    m->scale = sslc_malloc((size_t)dim * sizeof(float));
    if (!m->w || !m->b || !m->mean || !m->scale) {
        sslc_logreg_destroy(m);
        return SSLC_ERR_NOMEM;
    }
    for (int64_t d = 0; d < dim; d++)
        m->scale[d] = 1.0f;
    return SSLC_OK;
}

void sslc_logreg_destroy(sslc_logreg *m)
{
    if (!m)
        return;
    free(m->w);
    free(m->b);
    free(m->mean);
    free(m->scale);
    memset(m, 0, sizeof *m);
}

void sslc_logreg_fit_standardize(sslc_logreg *m, const float *x, int64_t n)
{
    const int64_t D = m->dim;
#pragma omp parallel for schedule(static)
    for (int64_t d = 0; d < D; d++) {
        double s = 0.0, s2 = 0.0;
        for (int64_t i = 0; i < n; i++)
            s += x[i * D + d];
        double mu = n > 0 ? s / (double)n : 0.0;
        for (int64_t i = 0; i < n; i++) {
            double v = x[i * D + d] - mu;
            s2 += v * v;
        }
        double sd = n > 0 ? sqrt(s2 / (double)n) : 0.0;
        m->mean[d] = (float)mu;
        m->scale[d] = sd > 1e-6 ? (float)(1.0 / sd) : 1.0f;
    }
}

void sslc_logreg_standardize(const sslc_logreg *m, float *out, const float *x, int64_t n)
{
    const int64_t D = m->dim;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int64_t d = 0; d < D; d++)
            out[i * D + d] = (x[i * D + d] - m->mean[d]) * m->scale[d];
}

size_t sslc_logreg_workspace_size(int64_t n, int64_t classes)
{
    return (size_t)(2 * n * classes) * sizeof(float);
}

void sslc_logreg_scores(const sslc_logreg *m, float *scores, const float *x, int64_t n)
{
    const int64_t D = m->dim, K = m->classes;
    if (n <= 0)
        return;
    sslc_sgemm(false, true, n, K, D, 1.0f, x, D, m->w, D, 0.0f, scores, K);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < K; k++)
            scores[i * K + k] += m->b[k];
}

sslc_status sslc_logreg_objective(double *f, float *gw, float *gb, void *workspace,
                                  const sslc_logreg *m, const float *x, const int64_t *y,
                                  int64_t n, double l2)
{
    const int64_t D = m->dim, K = m->classes;
    float *logits = workspace, *probs = logits + n * K;
    sslc_logreg_scores(m, logits, x, n);
    double loss;
    sslc_status st = sslc_xent_forward(&loss, NULL, probs, logits, y, n, K);
    if (st)
        return st;
    // The logits buffer becomes dlogits.
    memset(logits, 0, (size_t)(n * K) * sizeof(float));
    sslc_xent_backward(logits, probs, y, 1.0f, n, K);
    sslc_sgemm(true, false, K, D, n, 1.0f, logits, K, x, D, 0.0f, gw, D);
    double wsq = 0.0;
    for (int64_t j = 0; j < K * D; j++) {
        wsq += (double)m->w[j] * m->w[j];
        gw[j] += (float)l2 * m->w[j];
    }
    for (int64_t k = 0; k < K; k++) {
        double s = 0.0;
        for (int64_t i = 0; i < n; i++)
            s += logits[i * K + k];
        gb[k] = (float)s;
    }
    *f = loss + 0.5 * l2 * wsq;
    return SSLC_OK;
}

void sslc_logreg_options_default(sslc_logreg_options *o)
{
    *o = (sslc_logreg_options){.solver = SSLC_LOGREG_LBFGS, .max_iter = 1000, .tol = 1e-5,
                               .history = 10, .epochs = 100, .batch = 256, .lr = 0.1,
                               .momentum = 0.9, .nesterov = true, .seed = 0};
}

// ---- L-BFGS over theta = [W, b] in double ------------------------------------------

typedef struct lbfgs_eval {
    sslc_logreg *m;
    const float *x;
    const int64_t *y;
    int64_t n;
    double l2;
    void *ws;
    float *gw, *gb;
} lbfgs_eval;

static sslc_status evaluate(lbfgs_eval *e, const double *theta, double *f, double *g)
{
    const int64_t P = e->m->classes * e->m->dim, K = e->m->classes;
    for (int64_t j = 0; j < P; j++)
        e->m->w[j] = (float)theta[j];
    for (int64_t k = 0; k < K; k++)
        e->m->b[k] = (float)theta[P + k];
    sslc_status st = sslc_logreg_objective(f, e->gw, e->gb, e->ws, e->m, e->x, e->y, e->n, e->l2);
    for (int64_t j = 0; j < P; j++)
        g[j] = e->gw[j];
    for (int64_t k = 0; k < K; k++)
        g[P + k] = e->gb[k];
    return st;
}

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static double max_abs(const double *a, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s = fmax(s, fabs(a[i]));
    return s;
}

static sslc_status fit_lbfgs(sslc_logreg *m, const float *x, const int64_t *y, int64_t n,
                             double l2, const sslc_logreg_options *o, sslc_logreg_fit_info *info)
{
    const int64_t P = m->classes * m->dim, T = P + m->classes, H = o->history > 0 ? o->history : 10;
    lbfgs_eval e = {.m = m, .x = x, .y = y, .n = n, .l2 = l2};
    e.ws = sslc_aligned_alloc(sslc_logreg_workspace_size(n, m->classes));
    e.gw = sslc_malloc((size_t)P * sizeof(float));
    e.gb = sslc_malloc((size_t)m->classes * sizeof(float));
    // theta, g, direction, trial theta, trial g, H pairs of s and y, rho, alpha
    double *buf = sslc_malloc((size_t)(T * (5 + 2 * H) + 2 * H) * sizeof(double));
    sslc_status st = SSLC_OK;
    if (!e.ws || !e.gw || !e.gb || !buf) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    double *theta = buf, *g = theta + T, *d = g + T, *theta2 = d + T, *g2 = theta2 + T;
    double *S = g2 + T, *Y = S + H * T, *rho = Y + H * T, *alpha = rho + H;
    for (int64_t j = 0; j < P; j++)
        theta[j] = m->w[j];
    for (int64_t k = 0; k < m->classes; k++)
        theta[P + k] = m->b[k];
    double f;
    if ((st = evaluate(&e, theta, &f, g)))
        goto done;
    int64_t stored = 0, head = 0, it = 0;
    bool converged = max_abs(g, T) < o->tol;
    for (; it < o->max_iter && !converged; it++) {
        // Two-loop recursion: d = -H g.
        for (int64_t j = 0; j < T; j++)
            d[j] = -g[j];
        for (int64_t c = 0; c < stored; c++) {
            int64_t i = (head - 1 - c + H) % H;
            alpha[i] = rho[i] * dot(S + i * T, d, T);
            for (int64_t j = 0; j < T; j++)
                d[j] -= alpha[i] * Y[i * T + j];
        }
        if (stored > 0) {
            int64_t last = (head - 1 + H) % H;
            double gamma = dot(S + last * T, Y + last * T, T) / dot(Y + last * T, Y + last * T, T);
            for (int64_t j = 0; j < T; j++)
                d[j] *= gamma;
        }
        for (int64_t c = stored - 1; c >= 0; c--) {
            int64_t i = (head - 1 - c + H) % H;
            double beta = rho[i] * dot(Y + i * T, d, T);
            for (int64_t j = 0; j < T; j++)
                d[j] += (alpha[i] - beta) * S[i * T + j];
        }
        double slope = dot(g, d, T);
        if (!(slope < 0.0)) { // not a descent direction (rounding): restart from -g
            for (int64_t j = 0; j < T; j++)
                d[j] = -g[j];
            slope = dot(g, d, T);
            stored = 0;
        }
        // Armijo backtracking; the first step is scaled so it moves at most 1.
        double step = stored == 0 ? fmin(1.0, 1.0 / sqrt(dot(d, d, T))) : 1.0, f2 = f;
        bool accepted = false;
        for (int tries = 0; tries < 40; tries++) {
            for (int64_t j = 0; j < T; j++)
                theta2[j] = theta[j] + step * d[j];
            if ((st = evaluate(&e, theta2, &f2, g2)))
                goto done;
            if (f2 <= f + 1e-4 * step * slope) {
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if (!accepted) { // no decrease within float precision: at the optimum
            converged = true;
            break;
        }
        double *s = S + head * T, *yv = Y + head * T;
        for (int64_t j = 0; j < T; j++) {
            s[j] = theta2[j] - theta[j];
            yv[j] = g2[j] - g[j];
        }
        double sy = dot(s, yv, T);
        if (sy > 1e-12 * sqrt(dot(yv, yv, T) * dot(s, s, T))) { // keep H positive definite
            rho[head] = 1.0 / sy;
            head = (head + 1) % H;
            if (stored < H)
                stored++;
        }
        double change = f - f2;
        memcpy(theta, theta2, (size_t)T * sizeof(double));
        memcpy(g, g2, (size_t)T * sizeof(double));
        f = f2;
        converged = max_abs(g, T) < o->tol || change <= 1e-12 * fmax(1.0, fabs(f));
    }
    // Leave m at theta (the last evaluation may have been a rejected trial).
    if ((st = evaluate(&e, theta, &f, g)))
        goto done;
    if (info)
        *info = (sslc_logreg_fit_info){.iterations = it, .loss = f, .grad_max = max_abs(g, T),
                                       .converged = converged};
done:
    free(e.ws);
    free(e.gw);
    free(e.gb);
    free(buf);
    return st;
}

// ---- SGD -------------------------------------------------------------------------

sslc_status sslc_logreg_sgd_init(sslc_logreg_sgd *s, const sslc_logreg *m, int64_t n,
                                 const sslc_logreg_options *o)
{
    const int64_t D = m->dim, K = m->classes;
    *s = (sslc_logreg_sgd){.o = *o, .batch = o->batch < n ? o->batch : n};
    s->total = (n + s->batch - 1) / s->batch * o->epochs;
    s->vel = sslc_calloc((size_t)(K * D + K), sizeof(float));
    s->xb = sslc_malloc((size_t)(s->batch * D) * sizeof(float));
    s->yb = sslc_malloc((size_t)s->batch * sizeof(int64_t));
    s->perm = sslc_malloc((size_t)n * sizeof(int64_t));
    s->n = n;
    // The objective's workspace, then the gradient (W first, then b).
    s->ws = sslc_aligned_alloc(sslc_logreg_workspace_size(s->batch, K) +
                               (size_t)(K * D + K) * sizeof(float));
    if (!s->vel || !s->xb || !s->yb || !s->perm || !s->ws) {
        sslc_logreg_sgd_free(s);
        return SSLC_ERR_NOMEM;
    }
    return SSLC_OK;
}

void sslc_logreg_sgd_free(sslc_logreg_sgd *s)
{
    free(s->vel);
    free(s->xb);
    free(s->yb);
    free(s->perm);
    free(s->ws);
    memset(s, 0, sizeof *s);
}

// One step on the mini-batch (xb, yb) of nb rows.
static sslc_status sgd_step(sslc_logreg_sgd *s, sslc_logreg *m, int64_t nb, double l2, double lr)
{
    const int64_t P = m->classes * m->dim, K = m->classes;
    float *g = (float *)((char *)s->ws + sslc_logreg_workspace_size(nb, K));
    sslc_status st = sslc_logreg_objective(&s->loss, g, g + P, s->ws, m, s->xb, s->yb, nb, l2);
    if (st)
        return st;
    // torch.optim.SGD: buf = m buf + g; p -= lr (nesterov ? g + m buf : buf).
    const float mu = (float)s->o.momentum, rate = (float)lr;
    for (int64_t j = 0; j < P + K; j++) {
        s->vel[j] = mu * s->vel[j] + g[j];
        float u = s->o.nesterov ? g[j] + mu * s->vel[j] : s->vel[j];
        if (j < P)
            m->w[j] -= rate * u;
        else
            m->b[j - P] -= rate * u;
    }
    return SSLC_OK;
}

sslc_status sslc_logreg_sgd_epoch(sslc_logreg_sgd *s, sslc_logreg *m, const float *x,
                                  const int64_t *y, double l2, int64_t epoch)
{
    const int64_t D = m->dim, n = s->n, B = s->batch;
    sslc_rng rng = sslc_rng_make(s->o.seed, 0x106e6, (uint64_t)epoch, 0, 0);
    sslc_rng_permutation(&rng, s->perm, n);
    for (int64_t first = 0; first < n; first += B, s->step++) {
        int64_t nb = n - first < B ? n - first : B;
        for (int64_t i = 0; i < nb; i++) {
            memcpy(s->xb + i * D, x + s->perm[first + i] * D, (size_t)D * sizeof(float));
            s->yb[i] = y[s->perm[first + i]];
        }
        double lr = sslc_cosine(s->o.lr, 0.0, (double)s->step, (double)s->total);
        sslc_status st = sgd_step(s, m, nb, l2, lr);
        if (st)
            return st;
    }
    return SSLC_OK;
}

static sslc_status fit_sgd(sslc_logreg *m, const float *x, const int64_t *y, int64_t n,
                           double l2, const sslc_logreg_options *o, sslc_logreg_fit_info *info)
{
    sslc_logreg_sgd s;
    sslc_status st = sslc_logreg_sgd_init(&s, m, n, o);
    for (int64_t ep = 0; !st && ep < o->epochs; ep++)
        st = sslc_logreg_sgd_epoch(&s, m, x, y, l2, ep);
    if (!st && info)
        *info = (sslc_logreg_fit_info){.iterations = s.step, .loss = s.loss, .grad_max = NAN,
                                       .converged = true};
    sslc_logreg_sgd_free(&s);
    return st;
}

sslc_status sslc_logreg_fit(sslc_logreg *m, const float *x, const int64_t *y, int64_t n,
                            double l2, const sslc_logreg_options *o, sslc_logreg_fit_info *info)
{
    if (n <= 0)
        return sslc_error(SSLC_ERR_INVALID, "logreg: no training rows");
    if (!(l2 >= 0.0))
        return sslc_error(SSLC_ERR_INVALID, "logreg: l2 %g must be >= 0", l2);
    return o->solver == SSLC_LOGREG_SGD ? fit_sgd(m, x, y, n, l2, o, info)
                                        : fit_lbfgs(m, x, y, n, l2, o, info);
}

sslc_status sslc_logreg_select(double *best_l2, double *val_top1, sslc_logreg *m,
                               const float *x_fit, const int64_t *y_fit, int64_t n_fit,
                               const float *x_val, const int64_t *y_val, int64_t n_val,
                               const double *grid, int n_grid, const sslc_logreg_options *o)
{
    const int64_t K = m->classes;
    if (n_grid < 1 || n_val < 1)
        return sslc_error(SSLC_ERR_INVALID, "logreg: regularisation search needs a grid (%d) "
                                            "and held-out rows (%lld)",
                          n_grid, (long long)n_val);
    float *scores = sslc_malloc((size_t)(n_val * K) * sizeof(float));
    if (!scores)
        return SSLC_ERR_NOMEM;
    // Largest l2 first: each fit starts near the next one's optimum.
    int *order = sslc_malloc((size_t)n_grid * sizeof(int));
    if (!order) {
        free(scores);
        return SSLC_ERR_NOMEM;
    }
    for (int i = 0; i < n_grid; i++)
        order[i] = i;
    for (int i = 1; i < n_grid; i++)
        for (int j = i; j > 0 && grid[order[j]] > grid[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    memset(m->w, 0, (size_t)(K * m->dim) * sizeof(float));
    memset(m->b, 0, (size_t)K * sizeof(float));
    double best = -1.0;
    sslc_status st = SSLC_OK;
    for (int r = 0; r < n_grid; r++) {
        int i = order[r];
        if ((st = sslc_logreg_fit(m, x_fit, y_fit, n_fit, grid[i], o, NULL)))
            break;
        sslc_logreg_scores(m, scores, x_val, n_val);
        int64_t right = 0;
        for (int64_t j = 0; j < n_val; j++) {
            int64_t arg = 0;
            for (int64_t k = 1; k < K; k++)
                if (scores[j * K + k] > scores[j * K + arg])
                    arg = k;
            right += arg == y_val[j];
        }
        double acc = (double)right / (double)n_val;
        if (val_top1)
            val_top1[i] = acc;
        if (acc > best) { // strict: ties keep the larger l2 seen first
            best = acc;
            *best_l2 = grid[i];
        }
    }
    free(order);
    free(scores);
    return st;
}
