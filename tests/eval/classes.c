// The generated labelled folder of the evaluation and distillation tests.
#include "tests/eval/classes.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "data/image.h"
#include "src/core/rng.h"
#include "tests/harness.h"

// Class 0: horizontal stripes, 1: vertical stripes, 2: a bright centre
// square, with random phase, contrast and noise. Orientation survives the
// crops and flips of the "supervised" recipe.
static void make_image(uint8_t *px, int64_t S, int cls, sslc_rng *r)
{
    int period = 3 + (int)sslc_rng_below(r, 3), phase = (int)sslc_rng_below(r, 6);
    double amp = 60 + 60 * sslc_rng_uniform(r);
    for (int64_t y = 0; y < S; y++)
        for (int64_t x = 0; x < S; x++) {
            double v = 100;
            if (cls == 0)
                v += ((y + phase) / period) % 2 ? amp : -amp / 2;
            else if (cls == 1)
                v += ((x + phase) / period) % 2 ? amp : -amp / 2;
            else
                v += (labs(y - S / 2) < S / 4 && labs(x - S / 2) < S / 4) ? amp : -amp / 2;
            v += 20 * (sslc_rng_uniform(r) - 0.5);
            px[y * S + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
}

// dir/<split>/<class>/<i>.png; returns dir.
const char *tc_make_folder(const char *tag, int per_class_train, int per_class_test)
{
    const char *dir = sslc_test_tmpdir(tag);
    static char keep[8][1024];
    static int used;
    char *out = keep[used++ % 8];
    snprintf(out, 1024, "%s", dir);
    const char *classes[] = {"horizontal", "vertical", "square"};
    const int64_t S = 16;
    uint8_t px[16 * 16];
    for (int split = 0; split < 2; split++) {
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", out, split ? "test" : "train");
        mkdir(path, 0777);
        for (int c = 0; c < 3; c++) {
            snprintf(path, sizeof path, "%s/%s/%s", out, split ? "test" : "train", classes[c]);
            mkdir(path, 0777);
            int count = split ? per_class_test : per_class_train;
            for (int i = 0; i < count; i++) {
                sslc_rng r = sslc_rng_make(99, (uint64_t)split, (uint64_t)c, (uint64_t)i, 0);
                make_image(px, S, c, &r);
                snprintf(path, sizeof path, "%s/%s/%s/%03d.png", out, split ? "test" : "train",
                         classes[c], i);
                assert_int_equal(sslc_png_write(path, px, S, S, 1), SSLC_OK);
            }
        }
    }
    return out;
}

sslc_dataset *tc_open_ds(const char *dir, const char *split)
{
    char spec[1400];
    snprintf(spec, sizeof spec, "imagefolder:%s/%s", dir, split);
    sslc_dataset_options opt;
    sslc_dataset_options_default(&opt);
    opt.quiet = true;
    opt.channels = 1;
    sslc_dataset *ds = NULL;
    assert_int_equal(sslc_dataset_open(&ds, spec, &opt), SSLC_OK);
    return ds;
}
