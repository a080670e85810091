#include "tests/gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

// Central difference of loss along x + t*v at step eps (v == NULL: x[i] only).
static double central(float *x, size_t i, const signed char *v, size_t n, const float *saved,
                      sslc_loss_fn loss, void *ctx, double eps)
{
    if (!v) {
        x[i] = (float)(saved[i] + eps);
        double up = loss(ctx);
        x[i] = (float)(saved[i] - eps);
        double down = loss(ctx);
        x[i] = saved[i];
        // The step actually taken, after rounding to float.
        double h = (double)(float)(saved[i] + eps) - (double)(float)(saved[i] - eps);
        return (up - down) / h;
    }
    for (size_t k = 0; k < n; k++)
        x[k] = (float)(saved[k] + eps * v[k]);
    double up = loss(ctx);
    for (size_t k = 0; k < n; k++)
        x[k] = (float)(saved[k] - eps * v[k]);
    double down = loss(ctx);
    memcpy(x, saved, n * sizeof(float));
    return (up - down) / (2.0 * eps); // per unit of v
}

// A difference quotient that changes when the step halves crossed a kink
// (ReLU at 0, a max-pool tie) or hit float noise: not a fair reference.
static bool unstable(double a, double b, double floor, double tol)
{
    return fabs(a - b) / fmax(floor, fabs(a) + fabs(b)) > tol;
}

double sslc_gradcheck(const char *what, float *x, const float *analytic, size_t n,
                      sslc_loss_fn loss, void *ctx, double eps, double tol, size_t max_checks)
{
    float *saved = malloc(n * sizeof(float));
    assert_non_null(saved);
    memcpy(saved, x, n * sizeof(float));
    double scale = 0.0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)analytic[i]));
    double floor = 1e-6 + 0.1 * scale;
    size_t step = n > max_checks ? n / max_checks : 1;
    if (scale < 1e-7) { // a gradient that is zero up to rounding (a bias before BN)
        for (size_t i = 0; i < n; i += step) {
            double num = central(x, i, NULL, n, saved, loss, ctx, eps);
            if (fabs(num) > 1e-3)
                fail_msg("%s: analytic gradient is 0, numeric [%zu] is %.6g", what, i, num);
        }
        free(saved);
        printf("  gradcheck %-32s n=%zu zero, and so is the numeric gradient\n", what, n);
        return 0.0;
    }
    double worst = 0.0, worst_a = 0.0, worst_n = 0.0;
    size_t worst_i = 0, checked = 0, skipped = 0;
    for (size_t i = 0; i < n; i += step) {
        double num = central(x, i, NULL, n, saved, loss, ctx, eps);
        double half = central(x, i, NULL, n, saved, loss, ctx, eps / 2);
        if (unstable(num, half, floor, tol)) {
            skipped++;
            continue;
        }
        checked++;
        double a = analytic[i];
        double rel = fabs(a - num) / fmax(floor, fabs(a) + fabs(num));
        if (rel > worst) {
            worst = rel;
            worst_i = i;
            worst_a = a;
            worst_n = num;
        }
    }
    free(saved);
    printf("  gradcheck %-32s n=%zu checked %zu (%zu at kinks) worst rel err %.2e at [%zu] "
           "(analytic %.6g, numeric %.6g)\n",
           what, n, checked, skipped, worst, worst_i, worst_a, worst_n);
    if (checked < 2 * skipped || checked == 0)
        fail_msg("%s: %zu of %zu entries sit at kinks: the check proves nothing", what, skipped,
                 checked + skipped);
    if (worst > tol)
        fail_msg("%s: gradient mismatch at [%zu]: analytic %.6g, numeric %.6g (rel %.2e > %.1e)",
                 what, worst_i, worst_a, worst_n, worst, tol);
    return worst;
}

double sslc_gradcheck_direction(const char *what, float *x, const float *analytic, size_t n,
                                sslc_loss_fn loss, void *ctx, double eps, double tol,
                                unsigned seed)
{
    float *saved = malloc(n * sizeof(float));
    signed char *v = malloc(n);
    assert_non_null(saved);
    assert_non_null(v);
    memcpy(saved, x, n * sizeof(float));
    double projected = 0.0, num = 0.0, rel = INFINITY;
    for (int attempt = 0; attempt < 5; attempt++) {
        double norm = 0.0;
        projected = 0.0;
        unsigned state = (seed + 7919u * (unsigned)attempt) * 2654435761u + 1u;
        for (size_t i = 0; i < n; i++) {
            state = state * 1103515245u + 12345u;
            v[i] = (state >> 16) & 1 ? 1 : -1;
            projected += v[i] * (double)analytic[i];
            norm += fabs((double)analytic[i]);
        }
        // |a.v| can be small by cancellation; judge against sum |a| / sqrt(n),
        // the typical size of a.v for a random sign vector.
        double floor = 1e-6 + norm / sqrt((double)n);
        num = central(x, 0, v, n, saved, loss, ctx, eps);
        double half = central(x, 0, v, n, saved, loss, ctx, eps / 2);
        if (unstable(num, half, floor, tol))
            continue; // a kink on this line: try another direction
        rel = fabs(projected - num) / fmax(floor, fabs(projected) + fabs(num));
        break;
    }
    printf("  gradcheck %-32s n=%zu along a random direction: analytic %.6g, numeric %.6g, "
           "rel %.2e\n",
           what, n, projected, num, rel);
    free(saved);
    free(v);
    if (!(rel <= tol))
        fail_msg("%s: directional derivative %.6g, numeric %.6g (rel %.2e > %.1e, or every "
                 "direction tried crossed a kink)",
                 what, projected, num, rel, tol);
    return rel;
}
