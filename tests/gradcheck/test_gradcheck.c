// Every layer, model and loss against central finite differences: one
// table of cases driving one engine (tests/gradcheck.h), as ggml's
// test-backend-ops. A row names the op and its sizes, how its inputs are
// built away from kinks, the step, and the bounds on the relative error
// |a - n| / max(floor, |a| + |n|) (floor 1e-6 unless the row says).
//
//   test_gradcheck [nn|models|losses|eval]    one family (meson: one test each)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/threads.h"
#include "tests/gradcheck/ops.h"
#include "tests/harness.h"

#define GC(op) &sslc_gc_##op
#define NORMAL SSLC_GC_NORMAL
#define SPREAD SSLC_GC_SPREAD
#define OFF_ZERO SSLC_GC_OFF_ZERO
#define MARGINS SSLC_GC_MARGINS

// One row per case. Layers linear in each input (convolution, linear,
// average pool) have no truncation error: a large step keeps the float
// rounding of y small against the difference. Smooth nonlinear ones take
// small steps, or Richardson extrapolation where float rounding forbids
// small ones. The losses, and the models' ":twin" rows, take the numeric
// side from a double-precision twin. Fields are gradcheck.h's; .why says
// why a bound is looser than tol 1e-3 at floor 1e-6.
static const sslc_gc_case cases[] = {
    {GC(conv2d_ref), {2, 7, 6, 3, 4, 3, 1, 1}, .inputs = NORMAL, .eps = 0.5, .tol = 1e-3,
     .max_checks = 200, .seed = 1},
    {GC(conv2d_ref), {2, 8, 8, 4, 5, 3, 2, 1}, .inputs = NORMAL, .eps = 0.5, .tol = 1e-3,
     .max_checks = 200, .seed = 2},
    {GC(conv2d_ref), {2, 7, 7, 6, 4, 1, 2, 0}, .inputs = NORMAL, .eps = 0.5, .tol = 1e-3,
     .max_checks = 200, .seed = 3},
    {GC(conv2d_ref), {1, 11, 9, 2, 3, 7, 2, 3}, .inputs = NORMAL, .eps = 0.5, .tol = 1e-3,
     .max_checks = 200, .seed = 4},
    {GC(conv2d), {2, 8, 8, 4, 5, 3, 2, 1}, .inputs = NORMAL, .eps = 0.5, .tol = 1e-3,
     .max_checks = 200, .seed = 5},
    {GC(conv2d), {4, 16, 16, 16, 32, 3, 1, 1}, .inputs = NORMAL, .eps = 0.5, .tol = 1e-3,
     .max_checks = 200, .seed = 6},
    {GC(conv2d), {4, 16, 16, 5, 16, 1, 2, 0}, .inputs = NORMAL, .eps = 0.5, .tol = 1e-3,
     .max_checks = 200, .seed = 7},
    {GC(batchnorm), {12, 5}, .inputs = NORMAL, .scale = 2, .eps = 4e-2, .richardson = true,
     .tol = 2e-3, .floor = 0.02, .seed = 8,
     .why = "float forward: rounding of y swamps entries under 2% of the largest"},
    {GC(batchnorm_relu), {12, 5}, .inputs = MARGINS, .scale = 2, .margin = 0.05, .eps = 4e-2,
     .richardson = true, .tol = 2e-3, .floor = 0.02, .seed = 9,
     .why = "float forward: rounding of y swamps entries under 2% of the largest"},
    {GC(relu), {60}, .inputs = OFF_ZERO, .margin = 0.05, .eps = 1e-2, .tol = 1e-3, .seed = 10},
    {GC(add_relu), {60}, .inputs = OFF_ZERO, .margin = 0.05, .eps = 1e-2, .tol = 1e-3, .seed = 11},
    {GC(maxpool), {2, 6, 5, 3, 3, 2, 1}, .inputs = SPREAD, .margin = 0.01, .eps = 1e-3, .tol = 1e-3,
     .seed = 12},
    {GC(maxpool), {2, 9, 8, 3, 3, 2, 1}, .inputs = SPREAD, .margin = 0.01, .eps = 1e-3, .tol = 1e-3,
     .seed = 13},
    {GC(avgpool), {2, 30, 3}, .inputs = NORMAL, .eps = 1e-2, .tol = 1e-3, .seed = 14},
    {GC(linear), {3, 4, 5}, .inputs = NORMAL, .eps = 1e-2, .tol = 1e-3, .seed = 15},
    {GC(l2norm), {3, 4}, .inputs = NORMAL, .eps = 1e-3, .tol = 1e-3, .seed = 16},
    {GC(layernorm), {7, 10}, .inputs = NORMAL, .scale = 2, .eps = 4e-2, .richardson = true,
     .tol = 2e-3, .floor = 0.02, .seed = 18,
     .why = "float forward: rounding of y swamps entries under 2% of the largest"},
    {GC(gelu), {60}, .inputs = NORMAL, .scale = 2, .eps = 1e-2, .richardson = true, .tol = 1e-3,
     .floor = 0.01, .seed = 19,
     .why = "float forward: GELU's tail (x < -3) has gradients under 1% of the largest, "
            "swamped by the rounding of y"},
    {GC(attention_ref), {2, 5, 6, 2}, .inputs = NORMAL, .eps = 1e-2, .richardson = true,
     .tol = 1e-3, .floor = 0.01, .seed = 20,
     .why = "float inputs and output: rounding swamps entries under 1% of the largest"},
    {GC(attention), {2, 5, 6, 2}, .inputs = NORMAL, .eps = 5e-2, .richardson = true, .tol = 1e-3,
     .floor = 0.02, .seed = 20,
     .why = "float forward: rounding swamps entries under 2% of the largest"},
    {GC(attention), {1, 7, 12, 3}, .inputs = NORMAL, .eps = 5e-2, .richardson = true,
     .tol = 1e-3, .floor = 0.02, .max_skip = 0.01, .seed = 21,
     .why = "float forward: rounding swamps entries under 2% of the largest, and may move "
            "one entry's quotient between eps and eps/2 (the reference path holds all)"},
    {GC(patch_embed), {2, 8, 12, 3, 5, 4}, .inputs = NORMAL, .eps = 0.5, .tol = 1e-3,
     .max_checks = 200, .seed = 22},

    {GC(simclr_head), {8, 5, 6, 3}, .inputs = MARGINS, .margin = 0.01, .eps = 2e-2,
     .richardson = true, .tol = 2e-3, .floor = 0.1, .halvings = 6, .max_checks = 40, .seed = 4,
     .why = "float forward: rounding swamps entries under 10% of the largest (the twin "
            "checks them all)"},
    {GC(simclr_head_twin), {8, 5, 6, 3}, .inputs = MARGINS, .margin = 0.01, .eps = 1e-4,
     .tol = 1e-3, .halvings = 6, .seed = 4},
    {GC(resnet_head), {18, 3, 4, 4, 16, 3}, .inputs = MARGINS, .margin = 0.001, .eps = 8e-3,
     .richardson = true, .tol = 1e-2, .floor = 0.05, .halvings = 6, .max_skip = 0.05,
     .max_checks = 16, .seed = 17,
     .why = "float forward through 20 batch norms: the loss carries ~1e-6 of rounding "
            "(the twin holds every entry to 1e-3)"},
    {GC(resnet_head_twin), {18, 3, 4, 4, 16, 3}, .inputs = MARGINS, .margin = 0.001, .eps = 1e-4,
     .tol = 1e-3, .floor = 1e-3, .halvings = 6, .max_checks = 16, .seed = 17,
     .why = "the analytic side is float32 summed over ~1000 positions: entries under 1e-3 "
            "of the largest are judged by their absolute error"},
    {GC(lora_conv), {2, 7, 6, 3, 5, 3, 1, 2}, .inputs = NORMAL, .eps = 0.5, .tol = 1e-3,
     .max_checks = 200, .seed = 18},
    {GC(lora_conv), {2, 8, 8, 6, 4, 1, 2, 3}, .inputs = NORMAL, .eps = 0.5, .tol = 1e-3,
     .max_checks = 200, .seed = 19},
    {GC(lora_linear), {5, 12, 9, 3}, .inputs = NORMAL, .eps = 0.5, .tol = 1e-3,
     .max_checks = 200, .seed = 20},
    {GC(vit_prompt), {2, 8, 2, 2, 8, 4, 3, 0}, .inputs = NORMAL, .eps = 5e-2, .richardson = true,
     .tol = 5e-3, .floor = 0.05, .seed = 25,
     .why = "float forward through 5 layer norms and 2 softmaxes: rounding swamps entries "
            "under 5% of a tensor's largest"},
    {GC(vit_prompt), {2, 8, 2, 2, 8, 4, 2, 1}, .inputs = NORMAL, .eps = 5e-2, .richardson = true,
     .tol = 5e-3, .floor = 0.05, .seed = 26,
     .why = "float forward through 5 layer norms and 2 softmaxes: rounding swamps entries "
            "under 5% of a tensor's largest"},
    {GC(vit), {2, 8, 2, 2, 8, 4, 3, 0}, .inputs = NORMAL, .eps = 5e-2, .richardson = true,
     .tol = 5e-3, .floor = 0.05, .seed = 23,
     .why = "float forward through 5 layer norms and 2 softmaxes: rounding swamps entries "
            "under 5% of a tensor's largest"},
    {GC(vit), {2, 8, 2, 2, 8, 4, 1, 1}, .inputs = NORMAL, .eps = 5e-2, .richardson = true,
     .tol = 5e-3, .floor = 0.05, .seed = 24,
     .why = "float forward through 5 layer norms and 2 softmaxes: rounding swamps entries "
            "under 5% of a tensor's largest"},

    {GC(ntxent), {2, 3}, .tau = 0.1, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3, .twin_tol = 1e-6,
     .seed = 500},
    {GC(ntxent), {2, 3}, .tau = 0.5, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3, .twin_tol = 1e-6,
     .seed = 500},
    {GC(ntxent), {4, 5}, .tau = 0.1, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3, .twin_tol = 1e-6,
     .seed = 501},
    {GC(ntxent), {4, 5}, .tau = 0.5, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3, .twin_tol = 1e-6,
     .seed = 501},
    {GC(ntxent), {6, 4}, .tau = 0.1, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3, .twin_tol = 1e-6,
     .seed = 502},
    {GC(ntxent), {6, 4}, .tau = 0.5, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3, .twin_tol = 1e-6,
     .seed = 502},
    // Multi-crop's multi-positive NT-Xent: M views of N images (M = 2 is the
    // case above through the same code; M = 1 + 1 image and odd M included).
    {GC(ntxent_multi), {3, 1, 4}, .tau = 0.1, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .seed = 510},
    {GC(ntxent_multi), {3, 2, 4}, .tau = 0.5, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .seed = 511},
    {GC(ntxent_multi), {6, 3, 5}, .tau = 0.1, .inputs = NORMAL, .eps = 1e-4, .richardson = true,
     .tol = 1e-3, .twin_tol = 1e-6, .seed = 512,
     .why = "entries near 1e-5: a step of 1e-4 with Richardson keeps the difference's rounding "
            "under the twin's bound"},
    {GC(ntxent_multi), {6, 3, 5}, .tau = 0.5, .inputs = NORMAL, .eps = 1e-4, .richardson = true,
     .tol = 1e-3, .twin_tol = 1e-6, .seed = 512,
     .why = "entries near 1e-5: a step of 1e-4 with Richardson keeps the difference's rounding "
            "under the twin's bound"},
    {GC(infonce), {1, 3, 2}, .tau = 0.1, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .seed = 600},
    {GC(infonce), {1, 3, 2}, .tau = 0.5, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .seed = 600},
    {GC(infonce), {3, 4, 5}, .tau = 0.1, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .seed = 601},
    {GC(infonce), {3, 4, 5}, .tau = 0.5, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .seed = 601},
    {GC(infonce), {4, 6, 9}, .tau = 0.1, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .seed = 602},
    {GC(infonce), {4, 6, 9}, .tau = 0.5, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .seed = 602},
    // MoCo v3: one process (M = N) and a slice of a 3-process batch.
    {GC(mocov3), {3, 3, 0, 4}, .tau = 0.2, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .seed = 650},
    {GC(mocov3), {3, 9, 3, 5}, .tau = 0.2, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .seed = 651},
    {GC(mocov3), {4, 8, 4, 6}, .tau = 1.0, .inputs = NORMAL, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .seed = 652},
    {GC(xent), {5, 4}, .inputs = NORMAL, .scale = 2, .eps = 1e-4, .tol = 1e-3, .seed = 11},
    {GC(distill), {5, 4}, .tau = 1.0, .inputs = NORMAL, .scale = 2, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .seed = 700},
    {GC(distill), {6, 10}, .tau = 0.1, .inputs = NORMAL, .scale = 0.15, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .floor = 1e-3, .seed = 701,
     .why = "tau 0.1: entries under 1e-3 of the largest sit at the double difference's "
            "rounding (~1e-11) and are judged by their absolute error"},
    {GC(distill), {3, 7}, .tau = 4.0, .inputs = NORMAL, .scale = 3, .eps = 1e-5, .tol = 1e-3,
     .twin_tol = 1e-6, .seed = 702},

    {GC(logreg), {0}, .inputs = NORMAL, .scale = 0.3, .eps = 1e-2, .tol = 2e-3, .seed = 3},
};

enum { N_CASES = sizeof cases / sizeof cases[0] };

static void run_case(void **state) { sslc_gradcheck_case(*state); }

int main(int argc, char **argv)
{
    // Tiny shapes: one thread (two, on a shared machine, mostly wait for each other).
    sslc_set_threads(1);
    static const char *families[] = {"nn", "models", "losses", "eval"};
    enum { N_FAMILIES = sizeof families / sizeof families[0] };
    static struct CMUnitTest tests[N_CASES];
    static char names[N_CASES][160];
    sslc_test_group groups[N_FAMILIES];
    size_t used = 0;
    for (size_t f = 0; f < N_FAMILIES; f++) {
        groups[f] = (sslc_test_group){families[f], tests + used, 0};
        for (size_t i = 0; i < N_CASES; i++) {
            if (strcmp(cases[i].op->family, families[f]) != 0)
                continue;
            sslc_gc_case_label(&cases[i], names[used], sizeof names[used]);
            tests[used] = (struct CMUnitTest){.name = names[used], .test_func = run_case,
                                              .initial_state = (void *)&cases[i]};
            used++;
            groups[f].count++;
        }
    }
    if (used != N_CASES) {
        fprintf(stderr, "a case's op belongs to no family\n");
        return 2;
    }
    return sslc_test_main(argc, argv, groups, N_FAMILIES);
}
