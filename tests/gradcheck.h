// The one gradient-check engine, in the style of ggml's test-backend-ops:
// every layer, model and loss is an op (a few callbacks), and one table
// (tests/gradcheck/test_gradcheck.c) lists the cases: op, sizes, how the
// inputs are built away from kinks, step and tolerances.
//
// The scalar under test is the op's loss, in double: for a layer y = f(x),
// L = sum(y * r) with a fixed random r, so the analytic gradient is the
// backward fed dy = r; for a loss, the loss itself. Where a double-precision
// twin of the forward exists (the naive twins of NT-Xent and InfoNCE, the
// test's own for cross-entropy, the SimCLR head and a whole ResNet) the
// loss is the twin's, so the numeric side carries no float rounding. Each
// checked entry of each input is moved by +-eps and the central difference
//
//     n = (L(x + eps) - L(x - eps)) / (the step actually taken)
//
// (or its Richardson extrapolation from steps eps and eps/2, which cancels
// the error term in eps^2, for curved losses whose float rounding forbids
// small steps) is compared with the analytic gradient a by the relative error
//
//     |a - n| / max(floor, |a| + |n|)
//
// which must stay under the case's tolerance. The floor is 1e-6, or where a
// case says so a fraction of the tensor's largest |a|: a float forward's
// rounding noise is absolute, so entries far below the tensor's scale are
// judged by their absolute error.
//
// Kinks (ReLU at 0, max-pool ties) are avoided by construction
// (sslc_gc_inputs). As a guard, an entry whose quotient changes when eps
// halves is not a fair reference (a kink crossed, or rounding noise) and is
// skipped; a case says what fraction of its entries may be (none for most).
// An op that knows where its kinks are returns NaN from its loss across
// one, and the step is halved.
#ifndef SSLC_TESTS_GRADCHECK_H
#define SSLC_TESTS_GRADCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// How a case builds its random inputs (sslc_gc_fill).
typedef enum sslc_gc_inputs {
    SSLC_GC_NORMAL,   // scale * N(0, 1): smooth ops, and ops linear in the input
    SSLC_GC_SPREAD,   // a shuffled grid of distinct values `margin` apart, centred on 0:
                      // no max-pool tie, and none within eps when eps < margin / 2
    SSLC_GC_OFF_ZERO, // scale * N(0, 1) with |v| < margin pushed out to +-margin: no
                      // ReLU input within eps of its kink when eps < margin
    SSLC_GC_MARGINS,  // models: every batch norm that feeds a ReLU gets, per channel,
                      // the bias that puts its ReLU inputs farthest from 0 (the middle
                      // of the widest gap between them, sslc_gc_margin_bias), so units
                      // stay active or inactive under the case's perturbations
} sslc_gc_inputs;

typedef struct sslc_gc_op sslc_gc_op;

// One row of the table.
typedef struct sslc_gc_case {
    const sslc_gc_op *op;
    int64_t size[8];       // the op's sizes, in the order its `sizes` names them
    double tau;            // the losses' temperature
    sslc_gc_inputs inputs; // how the inputs are built
    double scale;          // of the random inputs (0: 1)
    double margin;         // SPREAD: the gap between values; OFF_ZERO / MARGINS:
                           // the least distance of a ReLU input from 0
    double eps;            // the step
    bool richardson;       // extrapolate two central differences (eps, eps/2) to cancel
                           // their h^2 error term
    double tol;            // bound on the relative error of sslc's gradient
    double twin_tol;       // bound for a double twin's own gradient (the losses')
    double floor;          // the relative error's denominator is at least this fraction
                           // of the tensor's largest |analytic| (and at least 1e-6): for
                           // float forwards, whose rounding swamps entries near 0
    int halvings;          // an op's loss may be NaN to say a kink lies within the step
                           // (the ResNet twin): the step is halved up to this many times
    double max_skip;       // fraction of the case's entries that may be skipped (and in
                           // any tensor, fewer than are checked)
    size_t max_checks;     // entries checked per tensor (0: all), drawn at random
    uint64_t seed;
    const char *why;       // when a bound is looser than the default: the reason
} sslc_gc_case;

// An input under check and its analytic gradient(s).
typedef struct sslc_gc_tensor {
    const char *name;
    float *x;          // a float input, perturbed in place, or NULL and
    double *xd;        // a double input (the losses' naive twins)
    size_t n;
    const float *grad;      // sslc's analytic gradient (n)
    const double *grad_ref; // the double twin's (n), or NULL
} sslc_gc_tensor;

enum { SSLC_GC_MAX_TENSORS = 80 };

// One case being run: the op's inputs and state.
typedef struct sslc_gc_run {
    const sslc_gc_case *c;
    sslc_gc_tensor tensors[SSLC_GC_MAX_TENSORS];
    int n_tensors;
    void *state; // the op's own
} sslc_gc_run;

struct sslc_gc_op {
    const char *name;
    const char *family; // "nn", "models", "losses", "eval": the meson suite it runs in
    const char *sizes;  // what case.size holds, e.g. "N H W C K kernel stride pad"
    // Builds the inputs (as run->c->inputs says) and declares the tensors.
    void (*setup)(sslc_gc_run *run);
    // The loss at the current inputs, in double.
    double (*loss)(sslc_gc_run *run);
    // Writes every declared tensor's analytic gradient(s); called right after
    // loss at the same inputs, so what the forward saved is current.
    void (*backward)(sslc_gc_run *run);
    void (*teardown)(sslc_gc_run *run);
};

// Runs one case: setup, backward, every tensor checked, teardown. Prints one
// line per tensor (checked, skipped, worst error and where) and fails the
// test when an error is over its bound or too many entries were skipped.
void sslc_gradcheck_case(const sslc_gc_case *c);
// "conv2d N=2 H=7 ...": the op and its sizes, in buf (cap bytes).
const char *sslc_gc_case_label(const sslc_gc_case *c, char *buf, size_t cap);

// --- for the ops' setup ---------------------------------------------------------

// x: (n,) random inputs following c->inputs, c->scale and c->margin, from
// the stream (c->seed, stream).
void sslc_gc_fill(const sslc_gc_case *c, float *x, size_t n, uint64_t stream);
// A new buffer of n such inputs.
float *sslc_gc_inputs_new(const sslc_gc_case *c, size_t n, uint64_t stream);
// Declares an input to check (float x, or double xd when x is NULL).
void sslc_gc_declare(sslc_gc_run *run, const char *name, float *x, double *xd, size_t n,
                     const float *grad, const double *grad_ref);

// SSLC_GC_MARGINS: the bias that puts the values v + bias of a channel
// farthest from 0: minus the middle of the widest gap between consecutive
// sorted values, among the gaps that leave at least a quarter of the values
// on each side (so some units are active and some are not). v: (n,) with
// stride. Returns the bias; *margin receives the least |v + bias|.
double sslc_gc_margin_bias(const double *v, int64_t n, int64_t stride, double *margin);
// The same for each of the C channels of v: (rows, C) floats; bias: (C,).
// Returns the least margin over the channels.
double sslc_gc_margin_biases(float *bias, const float *v, int64_t rows, int64_t C);

// sum(a * b) in double.
double sslc_gc_dot(const float *a, const float *b, size_t n);

#endif
