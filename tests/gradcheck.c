#include "tests/gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/rng.h"
#include "tests/harness.h"

// Central difference of the loss in entry i of t at step eps.
static double central(sslc_gc_run *run, const sslc_gc_tensor *t, size_t i, double eps)
{
    if (t->x) {
        float saved = t->x[i];
        float up = (float)(saved + eps), down = (float)(saved - eps);
        t->x[i] = up;
        double l_up = run->c->op->loss(run);
        t->x[i] = down;
        double l_down = run->c->op->loss(run);
        t->x[i] = saved;
        // The step actually taken, after rounding to float.
        return (l_up - l_down) / ((double)up - (double)down);
    }
    double saved = t->xd[i], up = saved + eps, down = saved - eps;
    t->xd[i] = up;
    double l_up = run->c->op->loss(run);
    t->xd[i] = down;
    double l_down = run->c->op->loss(run);
    t->xd[i] = saved;
    return (l_up - l_down) / (up - down);
}

enum { MAX_LEVELS = 24 };

// Central differences of one entry at steps eps / 2^k, computed as needed.
typedef struct differences {
    sslc_gc_run *run;
    const sslc_gc_tensor *t;
    size_t i;
    double at[MAX_LEVELS];
    int have;
} differences;

static double level(differences *d, int k)
{
    assert_true(k < MAX_LEVELS);
    while (d->have <= k) {
        d->at[d->have] = central(d->run, d->t, d->i, d->run->c->eps / (double)(1u << d->have));
        d->have++;
    }
    return d->at[k];
}

// The numeric derivative at step eps / 2^k: the central difference, or
// with Richardson extrapolation (4 n(h/2) - n(h)) / 3, which cancels the h^2
// term of the central difference's error (for strongly curved losses whose
// float rounding forbids small steps).
static double numeric(differences *d, int k)
{
    if (!d->run->c->richardson)
        return level(d, k);
    return (4.0 * level(d, k + 1) - level(d, k)) / 3.0;
}

static double rel_err(double a, double n, double floor)
{
    return fabs(a - n) / fmax(floor, fabs(a) + fabs(n));
}

// Which entries to check: all, or max_checks of them drawn without
// replacement (an even stride would keep hitting the same kernel tap), in
// increasing order. idx: (n,) at least.
static size_t pick(size_t *idx, size_t n, size_t max_checks, uint64_t seed, uint64_t tensor)
{
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    if (max_checks == 0 || n <= max_checks)
        return n;
    sslc_rng r = sslc_rng_make(seed, 0x9c, tensor, 0, 0);
    for (size_t i = 0; i < max_checks; i++) { // partial Fisher-Yates
        size_t j = i + (size_t)sslc_rng_below(&r, (uint64_t)(n - i));
        size_t tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
    }
    for (size_t i = 1; i < max_checks; i++) // insertion sort: a few hundred at most
        for (size_t j = i; j > 0 && idx[j - 1] > idx[j]; j--) {
            size_t tmp = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = tmp;
        }
    return max_checks;
}

typedef struct worst {
    double err, a, n;
    size_t at;
} worst;

static void note(worst *w, double err, double a, double n, size_t at)
{
    if (err > w->err || isnan(err))
        *w = (worst){.err = isnan(err) ? INFINITY : err, .a = a, .n = n, .at = at};
}

enum { FAILURE_CAP = 512 };

static void check_tensor(sslc_gc_run *run, int which, const char *label, char *failure,
                         size_t totals[2])
{
    const sslc_gc_case *c = run->c;
    const sslc_gc_tensor *t = &run->tensors[which];
    double scale = 0.0;
    for (size_t i = 0; i < t->n; i++)
        scale = fmax(scale, fabs((double)t->grad[i]));
    const double floor = fmax(1e-6, c->floor * scale);
    size_t *idx = malloc((t->n ? t->n : 1) * sizeof *idx);
    assert_non_null(idx);
    size_t count = pick(idx, t->n, c->max_checks, c->seed, (uint64_t)which);
    size_t checked = 0, skipped = 0, skip_at = 0;
    double skip_num = 0.0, skip_half = 0.0;
    worst w = {0}, wref = {0};
    for (size_t m = 0; m < count; m++) {
        size_t i = idx[m];
        differences d = {.run = run, .t = t, .i = i};
        double num = numeric(&d, 0), half = numeric(&d, 1);
        // A NaN loss is an op saying a kink lies within the step: smaller
        // steps may pass it by. (Not so for a finite disagreement, rounding
        // noise, which smaller steps only make worse.)
        for (int k = 1; k <= c->halvings && (isnan(num) || isnan(half)); k++) {
            num = half;
            half = numeric(&d, k + 1);
        }
        if (!(rel_err(num, half, floor) <= c->tol)) { // NaN included
            if (!skipped++) // the first one, to show what a skip looks like
                skip_at = i, skip_num = num, skip_half = half;
            continue;
        }
        checked++;
        note(&w, rel_err(t->grad[i], num, floor), t->grad[i], num, i);
        if (t->grad_ref)
            note(&wref, rel_err(t->grad_ref[i], num, floor), t->grad_ref[i], num, i);
    }
    free(idx);
    printf("  %-30s n=%-6zu checked %zu", t->name, t->n, checked);
    if (skipped)
        printf(" (%zu skipped, as [%zu]: numeric %.4g at eps, %.4g at eps/2, analytic %.4g)",
               skipped, skip_at, skip_num, skip_half, (double)t->grad[skip_at]);
    printf(" worst rel err %.2e at [%zu] (analytic %.7g, numeric %.7g)", w.err, w.at, w.a, w.n);
    if (t->grad_ref)
        printf("; double twin %.2e", wref.err);
    printf("\n");
    totals[0] += checked, totals[1] += skipped;
    // The first failure is kept; every tensor is still checked and printed.
    if (*failure)
        return;
    if (checked == 0 || skipped > checked)
        snprintf(failure, FAILURE_CAP,
                 "%s %s: %zu of %zu entries skipped (the quotient changes when eps halves: a "
                 "kink within eps, or noise): the check proves nothing",
                 label, t->name, skipped, checked + skipped);
    else if (w.err > c->tol)
        snprintf(failure, FAILURE_CAP,
                 "%s %s: gradient mismatch at [%zu]: analytic %.7g, numeric %.7g (rel %.2e > "
                 "%.1e)",
                 label, t->name, w.at, w.a, w.n, w.err, c->tol);
    else if (t->grad_ref && wref.err > c->twin_tol)
        snprintf(failure, FAILURE_CAP,
                 "%s %s: the double twin's gradient at [%zu]: %.10g, numeric %.10g (rel %.2e > "
                 "%.1e)",
                 label, t->name, wref.at, wref.a, wref.n, wref.err, c->twin_tol);
}

const char *sslc_gc_case_label(const sslc_gc_case *c, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "%s", c->op->name);
    const char *names = c->op->sizes;
    for (int k = 0; k < 8 && *names && used < cap; k++) {
        size_t len = strcspn(names, " ");
        used += (size_t)snprintf(buf + used, cap - used, " %.*s=%lld", (int)len, names,
                                 (long long)c->size[k]);
        names += len + (names[len] == ' ');
    }
    if (c->tau > 0 && used < cap)
        snprintf(buf + used, cap - used, " tau=%g", c->tau);
    return buf;
}

void sslc_gradcheck_case(const sslc_gc_case *c)
{
    char label[256];
    sslc_gc_case_label(c, label, sizeof label);
    printf("  %s: eps %g%s, tol %g", label, c->eps, c->richardson ? " (Richardson)" : "",
           c->tol);
    if (c->floor > 0)
        printf(", floor %g of the largest |analytic|", c->floor);
    printf("%s%s\n", c->why ? "; " : "", c->why ? c->why : "");
    sslc_gc_run run = {.c = c};
    c->op->setup(&run);
    c->op->loss(&run); // the point the analytic gradient is taken at
    c->op->backward(&run);
    char failure[FAILURE_CAP] = "";
    size_t totals[2] = {0, 0}; // entries checked, skipped
    for (int k = 0; k < run.n_tensors; k++)
        check_tensor(&run, k, label, failure, totals);
    c->op->teardown(&run);
    if (*failure)
        fail_msg("%s", failure);
    if ((double)totals[1] > c->max_skip * (double)(totals[0] + totals[1]))
        fail_msg("%s: %zu of %zu entries skipped (the quotient changes when eps halves: a kink "
                 "within eps, or noise); at most %.0f%% may be",
                 label, totals[1], totals[0] + totals[1], 100.0 * c->max_skip);
    if (totals[1])
        printf("  %zu of %zu entries skipped\n", totals[1], totals[0] + totals[1]);
}

void sslc_gc_fill(const sslc_gc_case *c, float *x, size_t n, uint64_t stream)
{
    sslc_rng r = sslc_rng_make(c->seed, stream, 0, 0, 0);
    if (c->inputs == SSLC_GC_SPREAD) {
        // i * margin for a random permutation of i, centred: all distinct.
        int64_t *perm = malloc((n ? n : 1) * sizeof *perm);
        assert_non_null(perm);
        sslc_rng_permutation(&r, perm, (int64_t)n);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(((double)perm[i] - 0.5 * (double)n) * c->margin);
        free(perm);
        return;
    }
    const double scale = c->scale > 0 ? c->scale : 1.0;
    for (size_t i = 0; i < n; i++) {
        double v = scale * sslc_rng_normal(&r);
        if (c->inputs == SSLC_GC_OFF_ZERO && fabs(v) < c->margin)
            v = v < 0 ? -c->margin : c->margin;
        x[i] = (float)v;
    }
}

float *sslc_gc_inputs_new(const sslc_gc_case *c, size_t n, uint64_t stream)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    sslc_gc_fill(c, x, n, stream);
    return x;
}

void sslc_gc_declare(sslc_gc_run *run, const char *name, float *x, double *xd, size_t n,
                     const float *grad, const double *grad_ref)
{
    assert_true(run->n_tensors < SSLC_GC_MAX_TENSORS);
    run->tensors[run->n_tensors++] =
        (sslc_gc_tensor){.name = name, .x = x, .xd = xd, .n = n, .grad = grad,
                         .grad_ref = grad_ref};
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double sslc_gc_margin_bias(const double *v, int64_t n, int64_t stride, double *margin)
{
    double *s = malloc((size_t)n * sizeof *s);
    assert_non_null(s);
    for (int64_t i = 0; i < n; i++)
        s[i] = v[i * stride];
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    // Gaps between s[i-1] and s[i] for i in [n/4, n - n/4]: a quarter of the
    // units on each side at least (n >= 2 always has one).
    int64_t lo = n / 4 > 1 ? n / 4 : 1, hi = n - n / 4 > lo ? n - n / 4 : lo;
    int64_t best = lo;
    for (int64_t i = lo; i <= hi && i < n; i++)
        if (s[i] - s[i - 1] > s[best] - s[best - 1])
            best = i;
    double bias = -0.5 * (s[best] + s[best - 1]);
    *margin = 0.5 * (s[best] - s[best - 1]);
    free(s);
    return bias;
}

double sslc_gc_margin_biases(float *bias, const float *v, int64_t rows, int64_t C)
{
    double *d = malloc((size_t)(rows * C) * sizeof *d), least = INFINITY;
    assert_non_null(d);
    for (int64_t i = 0; i < rows * C; i++)
        d[i] = v[i];
    for (int64_t k = 0; k < C; k++) {
        double margin;
        bias[k] = (float)sslc_gc_margin_bias(d + k, rows, C, &margin);
        least = fmin(least, margin);
    }
    free(d);
    return least;
}

double sslc_gc_dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}
