// Finite-difference gradient checks (central differences). The scalar under
// test is L = sum(y * r) for a fixed random r, so the analytic gradient is the
// backward pass fed dy = r. Inputs are chosen away from kinks by the callers.
#ifndef SSLC_TESTS_GRADCHECK_H
#define SSLC_TESTS_GRADCHECK_H

#include <stdbool.h>
#include <stddef.h>

// Recomputes the loss (in double) from the current parameter values.
typedef double (*sslc_loss_fn)(void *ctx);

// Perturbs up to max_checks entries of x (spread evenly, all if fewer) by
// +-eps, and compares (L(x+eps) - L(x-eps)) / 2eps with analytic[i]. The
// relative error |a-n| / max(floor, |a|+|n|), floor = 1e-6 + 0.1 * the
// largest |analytic| (entries near zero are judged against the tensor's
// scale, since float rounding of the loss is absolute), must stay under tol.
// Entries where halving eps changes the quotient (a kink) are skipped and
// counted; most entries must be checked. Prints and returns the worst error.
double sslc_gradcheck(const char *what, float *x, const float *analytic, size_t n,
                      sslc_loss_fn loss, void *ctx, double eps, double tol, size_t max_checks);

// The same along one random direction v (entries +-1) over the whole tensor:
// compares (L(x+eps v) - L(x-eps v)) / 2eps with analytic . v. Summing
// over every entry lifts the signal far above float rounding, which makes it
// the check of choice for whole networks run in float.
double sslc_gradcheck_direction(const char *what, float *x, const float *analytic, size_t n,
                                sslc_loss_fn loss, void *ctx, double eps, double tol,
                                unsigned seed);

#endif
