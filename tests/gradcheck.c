#include "tests/gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

// Central difference of the loss in x[i] at step eps.
static double central(float *x, size_t i, const float *saved, sslc_loss_fn loss, void *ctx,
                      double eps)
{
    x[i] = (float)(saved[i] + eps);
    double up = loss(ctx);
    x[i] = (float)(saved[i] - eps);
    double down = loss(ctx);
    x[i] = saved[i];
    // The step actually taken, after rounding to float.
    double h = (double)(float)(saved[i] + eps) - (double)(float)(saved[i] - eps);
    return (up - down) / h;
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
            double num = central(x, i, saved, loss, ctx, eps);
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
        double num = central(x, i, saved, loss, ctx, eps);
        double half = central(x, i, saved, loss, ctx, eps / 2);
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
