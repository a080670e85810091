// augment/recipe + augment/pipeline: defaults, the distributions the
// draws follow, determinism across thread counts / sync vs async / resume,
// epochs as permutations, partial batches, bad images, eval views.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "augment/pipeline.h"
#include "augment/recipe.h"
#include "data/dataset.h"
#include "data/image.h"
#include "src/core/log.h"
#include "tests/harness.h"

static void recipe_defaults_are_the_published_ones(void **state)
{
    (void)state;
    sslc_recipe r;
    assert_int_equal(sslc_recipe_defaults(&r, "simclr", 224, 3), SSLC_OK);
    assert_true(fabs(r.brightness - 0.8) < 1e-12 && fabs(r.hue - 0.2) < 1e-12);
    assert_true(r.jitter_p == 0.8 && r.gray_p == 0.2 && r.blur_p == 0.5 && r.flip_p == 0.5);
    assert_int_equal(sslc_recipe_blur_kernel(&r), 23);
    assert_true(r.crop_scale_min == 0.08 && r.crop_scale_max == 1.0);
    assert_true(fabs(r.mean[0] - 0.485) < 1e-12 && fabs(r.std[2] - 0.225) < 1e-12);
    assert_int_equal(sslc_recipe_defaults(&r, "simclr", 32, 3), SSLC_OK);
    assert_true(fabs(r.brightness - 0.4) < 1e-12 && fabs(r.hue - 0.1) < 1e-12);
    assert_true(r.blur_p == 0.0);
    assert_int_equal(sslc_recipe_defaults(&r, "simclr", 28, 1), SSLC_OK);
    assert_true(fabs(r.mean[0] - 0.2860) < 1e-12 && fabs(r.std[0] - 0.3530) < 1e-12);
    assert_int_equal(sslc_recipe_defaults(&r, "moco-v1", 224, 3), SSLC_OK);
    assert_true(r.gray_before_jitter && r.jitter_p == 1.0 && r.hue == 0.4 && r.blur_p == 0);
    assert_true(r.crop_scale_min == 0.2);
    assert_int_equal(sslc_recipe_defaults(&r, "moco-v2", 224, 3), SSLC_OK);
    assert_true(r.jitter_p == 0.8 && r.brightness == 0.4 && r.hue == 0.1 && r.blur_p == 0.5);
    assert_int_equal(sslc_recipe_defaults(&r, "eval", 224, 3), SSLC_OK);
    assert_false(r.random_crop);
    assert_int_equal(r.eval_resize, 256);
    assert_int_equal(sslc_recipe_defaults(&r, "byol", 224, 3), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "byol"));
    // Overrides are checked.
    assert_int_equal(sslc_recipe_defaults(&r, "simclr", 224, 3), SSLC_OK);
    r.flip_p = 1.5;
    assert_int_equal(sslc_recipe_finalize(&r), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "flip-p"));
    r.flip_p = 0.5;
    r.blur_kernel = 8;
    assert_int_equal(sslc_recipe_finalize(&r), SSLC_ERR_INVALID);
    r.blur_kernel = 0;
    r.jitter_strength = 0.25;
    assert_int_equal(sslc_recipe_finalize(&r), SSLC_OK);
    assert_true(fabs(r.saturation - 0.2) < 1e-12 && fabs(r.hue - 0.05) < 1e-12);
    r.jitter_strength = 0;
    r.hue = 0.7;
    assert_int_equal(sslc_recipe_finalize(&r), SSLC_ERR_INVALID);
}

static void draws_follow_the_recipe_distributions(void **state)
{
    (void)state;
    sslc_recipe r;
    assert_int_equal(sslc_recipe_defaults(&r, "simclr", 224, 3), SSLC_OK);
    enum { N = 40000 };
    int flips = 0, jit = 0, gray = 0, blur = 0, sol = 0, perms[24] = {0};
    double bsum = 0, bmin = 9, bmax = -9, hsum = 0, hmin = 9, hmax = -9, ssum = 0, lr = 0;
    double area = 0, smin = 9, smax = -9;
    for (int i = 0; i < N; i++) {
        sslc_view_params p;
        sslc_recipe_draw(&r, 7, 3, (uint64_t)i, (uint64_t)(i % 2), 400, 400, &p);
        flips += p.flip;
        jit += p.jitter;
        gray += p.gray;
        blur += p.blur;
        sol += p.solarize;
        bsum += p.brightness;
        bmin = fmin(bmin, p.brightness);
        bmax = fmax(bmax, p.brightness);
        hsum += p.hue;
        hmin = fmin(hmin, p.hue);
        hmax = fmax(hmax, p.hue);
        ssum += p.sigma;
        smin = fmin(smin, p.sigma);
        smax = fmax(smax, p.sigma);
        lr += log((double)p.crop.width / (double)p.crop.height);
        area += (double)(p.crop.width * p.crop.height) / (400.0 * 400.0);
        int code = 0, used = 0;
        for (int k = 0; k < 4; k++) {
            int rank = 0;
            for (int j = 0; j < 4; j++)
                if (!(used >> j & 1) && j < p.order[k])
                    rank++;
            used |= 1 << p.order[k];
            code = code * (4 - k) + rank;
        }
        perms[code]++;
    }
    // Binomial: 4 standard deviations at most.
    double sd = sqrt(0.25 / N) * 4;
    assert_true(fabs((double)flips / N - 0.5) < sd);
    assert_true(fabs((double)jit / N - 0.8) < sd);
    assert_true(fabs((double)gray / N - 0.2) < sd);
    assert_true(fabs((double)blur / N - 0.5) < sd);
    assert_int_equal(sol, 0);
    // brightness ~ U(0.2, 1.8), hue ~ U(-0.2, 0.2), sigma ~ U(0.1, 2)
    assert_true(fabs(bsum / N - 1.0) < 0.01 && bmin >= 0.2 && bmax < 1.8 && bmin < 0.21 &&
                bmax > 1.79);
    assert_true(fabs(hsum / N) < 0.003 && hmin >= -0.2 && hmax < 0.2);
    assert_true(fabs(ssum / N - 1.05) < 0.01 && smin >= 0.1 && smax < 2.0);
    // log aspect ratio symmetric around 0; mean area fraction near the
    // mean of U(0.08, 1) (slightly less: large wide crops are rejected).
    assert_true(fabs(lr / N) < 0.01);
    printf("  mean area fraction %.3f\n", area / N);
    assert_true(area / N > 0.45 && area / N < 0.56);
    // Jitter order: each of the 24 permutations about 1/24 of the time.
    for (int k = 0; k < 24; k++)
        assert_true(fabs((double)perms[k] / N - 1.0 / 24) < 4 * sqrt(1.0 / 24 / N));
    // Same coordinates, same draws; a different view, different draws.
    sslc_view_params a, b, c;
    sslc_recipe_draw(&r, 7, 3, 11, 0, 375, 500, &a);
    sslc_recipe_draw(&r, 7, 3, 11, 0, 375, 500, &b);
    sslc_recipe_draw(&r, 7, 3, 11, 1, 375, 500, &c);
    assert_memory_equal(&a, &b, sizeof a);
    assert_true(memcmp(&a.crop, &c.crop, sizeof a.crop) != 0 || a.brightness != c.brightness);
}

// A small labelled IDX dataset of smooth 20x24 RGB images in a temp dir.
static const char *make_idx(int64_t n, int64_t H, int64_t W, int64_t C, char *spec, size_t cap)
{
    const char *dir = sslc_test_tmpdir("pipe");
    char img[4200], lbl[4200];
    snprintf(img, sizeof img, "%s/images.idx", dir);
    snprintf(lbl, sizeof lbl, "%s/labels.idx", dir);
    FILE *f = fopen(img, "wb");
    uint8_t hdr[4] = {0, 0, 8, (uint8_t)(C == 1 ? 3 : 4)};
    fwrite(hdr, 1, 4, f);
    uint32_t dims[4] = {(uint32_t)n, (uint32_t)H, (uint32_t)W, (uint32_t)C};
    for (int d = 0; d < (C == 1 ? 3 : 4); d++) {
        uint8_t b[4] = {(uint8_t)(dims[d] >> 24), (uint8_t)(dims[d] >> 16), (uint8_t)(dims[d] >> 8),
                        (uint8_t)dims[d]};
        fwrite(b, 1, 4, f);
    }
    for (int64_t i = 0; i < n * H * W * C; i++) {
        int64_t k = i / (H * W * C), y = (i / (W * C)) % H, x = (i / C) % W, c = i % C;
        fputc((int)((k * 37 + y * 9 + x * 5 + c * 80 + (x * y) % 17) % 256), f);
    }
    fclose(f);
    f = fopen(lbl, "wb");
    uint8_t lh[8] = {0, 0, 8, 1, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
                     (uint8_t)n};
    fwrite(lh, 1, 8, f);
    for (int64_t i = 0; i < n; i++)
        fputc((int)(i % 10), f);
    fclose(f);
    snprintf(spec, cap, "idx:%s,%s", img, lbl);
    return dir;
}

typedef struct run_result {
    float *views;
    int64_t *indices;
    int64_t batches, floats_per_batch;
} run_result;

static run_result run_epochs(const sslc_dataset *ds, const sslc_recipe *r, int threads, bool async,
                             int64_t B, int64_t epochs, int64_t first_epoch, int64_t first_step)
{
    sslc_pipeline_config cfg;
    sslc_pipeline_config_default(&cfg);
    cfg.batch_size = B;
    cfg.threads = threads;
    cfg.async = async;
    cfg.seed = 42;
    cfg.ring = 3;
    sslc_pipeline *p;
    assert_int_equal(sslc_pipeline_create(&p, ds, r, &cfg), SSLC_OK);
    int64_t steps = sslc_pipeline_steps_per_epoch(p);
    run_result res = {0};
    res.floats_per_batch = 2 * B * r->size * r->size * r->channels;
    res.views = malloc((size_t)(steps * epochs * res.floats_per_batch) * sizeof(float));
    res.indices = malloc((size_t)(steps * epochs * B) * sizeof(int64_t));
    for (int64_t e = first_epoch; e < first_epoch + epochs; e++) {
        assert_int_equal(sslc_pipeline_begin_epoch(p, e, e == first_epoch ? first_step : 0),
                         SSLC_OK);
        const sslc_batch *b;
        for (;;) {
            assert_int_equal(sslc_pipeline_next(p, &b), SSLC_OK);
            if (!b)
                break;
            assert_int_equal(b->count, B);
            assert_int_equal(b->epoch, e);
            memcpy(res.views + res.batches * res.floats_per_batch, b->views,
                   (size_t)res.floats_per_batch * sizeof(float));
            memcpy(res.indices + res.batches * B, b->indices, (size_t)B * sizeof(int64_t));
            for (int64_t i = 0; i < B; i++)
                assert_int_equal(b->labels[i], b->indices[i] % 10);
            res.batches++;
        }
    }
    sslc_pipeline_destroy(p);
    return res;
}

static void batches_do_not_depend_on_threads_or_async(void **state)
{
    (void)state;
    char spec[8500];
    make_idx(53, 20, 24, 3, spec, sizeof spec);
    sslc_dataset *ds;
    assert_int_equal(sslc_dataset_open(&ds, spec, NULL), SSLC_OK);
    sslc_recipe r;
    assert_int_equal(sslc_recipe_defaults(&r, "simclr", 16, 3), SSLC_OK);
    r.blur_p = 0.5; // exercise every op
    r.blur_kernel = 3;
    r.solarize_p = 0.2;
    run_result one = run_epochs(ds, &r, 1, false, 8, 2, 0, 0);
    run_result two = run_epochs(ds, &r, 2, true, 8, 2, 0, 0);
    assert_int_equal(one.batches, 12); // 53 / 8 = 6 per epoch, last dropped
    assert_int_equal(two.batches, one.batches);
    assert_memory_equal(one.indices, two.indices, (size_t)(one.batches * 8) * sizeof(int64_t));
    assert_memory_equal(one.views, two.views,
                        (size_t)(one.batches * one.floats_per_batch) * sizeof(float));
    // Epochs differ; views differ from one epoch to the next.
    assert_true(memcmp(one.indices, one.indices + 6 * 8, 8 * sizeof(int64_t)) != 0);
    // Each epoch's 48 indices are distinct (a permutation, minus the tail).
    for (int e = 0; e < 2; e++) {
        int seen[53] = {0};
        for (int k = 0; k < 48; k++)
            assert_int_equal(seen[one.indices[e * 48 + k]]++, 0);
    }
    // Resuming mid-epoch gives the remaining batches of the full run.
    run_result resumed = run_epochs(ds, &r, 2, true, 8, 1, 1, 4);
    assert_int_equal(resumed.batches, 2);
    assert_memory_equal(resumed.views, one.views + 10 * one.floats_per_batch,
                        (size_t)(2 * one.floats_per_batch) * sizeof(float));
    // The two views of a sample differ; each is normalised (ImageNet).
    float *v0 = one.views, *v1 = one.views + 8 * 16 * 16 * 3;
    assert_true(memcmp(v0, v1, 16 * 16 * 3 * sizeof(float)) != 0);
    for (int64_t i = 0; i < one.batches * one.floats_per_batch; i++)
        assert_true(one.views[i] >= -2.2f && one.views[i] <= 2.7f);
    free(one.views);
    free(one.indices);
    free(two.views);
    free(two.indices);
    free(resumed.views);
    free(resumed.indices);
    sslc_dataset_destroy(ds);
}

static void partial_batches_and_views_layout(void **state)
{
    (void)state;
    char spec[8500];
    make_idx(10, 12, 12, 1, spec, sizeof spec);
    sslc_dataset *ds;
    assert_int_equal(sslc_dataset_open(&ds, spec, NULL), SSLC_OK);
    sslc_recipe r;
    assert_int_equal(sslc_recipe_defaults(&r, "eval", 12, 1), SSLC_OK);
    sslc_pipeline_config cfg;
    sslc_pipeline_config_default(&cfg);
    cfg.batch_size = 4;
    cfg.views = 1;
    cfg.drop_last = false;
    cfg.shuffle = false;
    sslc_pipeline *p;
    assert_int_equal(sslc_pipeline_create(&p, ds, &r, &cfg), SSLC_OK);
    assert_int_equal(sslc_pipeline_steps_per_epoch(p), 3);
    assert_true(sslc_pipeline_buffer_bytes(p) >= 2 * 4 * 144 * sizeof(float));
    const sslc_batch *b;
    assert_int_equal(sslc_pipeline_next(p, &b), SSLC_ERR_INVALID); // no epoch yet
    assert_int_equal(sslc_pipeline_begin_epoch(p, 0, 0), SSLC_OK);
    int64_t counts[3], total = 0;
    for (int k = 0; k < 3; k++) {
        assert_int_equal(sslc_pipeline_next(p, &b), SSLC_OK);
        assert_non_null(b);
        counts[k] = b->count;
        for (int64_t i = 0; i < b->count; i++) {
            assert_int_equal(b->indices[i], total + i); // no shuffle: dataset order
            // eval on a 12x12 image at size 12: the image itself, normalised.
            sslc_image img;
            assert_int_equal(sslc_dataset_decode(ds, b->indices[i], &img, NULL, NULL, NULL),
                             SSLC_OK);
            for (int64_t q = 0; q < 144; q++) {
                float want = ((float)img.data[q] / 255.0f - 0.2860f) / 0.3530f;
                assert_true(fabsf(b->views[i * 144 + q] - want) < 1e-6f);
            }
            sslc_image_free(&img);
        }
        total += b->count;
    }
    assert_int_equal(counts[0], 4);
    assert_int_equal(counts[2], 2);
    assert_int_equal(sslc_pipeline_next(p, &b), SSLC_OK);
    assert_null(b);
    assert_true(sslc_pipeline_wait_seconds(p) >= 0);
    sslc_pipeline_destroy(p);
    sslc_pipeline_destroy(NULL);
    // Impossible configurations fail at creation with a reason.
    cfg.batch_size = 11;
    cfg.drop_last = true;
    assert_int_equal(sslc_pipeline_create(&p, ds, &r, &cfg), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "fewer than one batch"));
    cfg.batch_size = 4;
    cfg.height = 20;
    assert_int_equal(sslc_pipeline_create(&p, ds, &r, &cfg), SSLC_ERR_INVALID);
    cfg.height = 0;
    assert_int_equal(sslc_recipe_defaults(&r, "eval", 12, 3), SSLC_OK);
    assert_int_equal(sslc_pipeline_create(&p, ds, &r, &cfg), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "channels"));
    sslc_dataset_destroy(ds);
}

static void gray_views_jitter_only_brightness_and_contrast(void **state)
{
    (void)state;
    // For one channel, saturation and hue are no-ops, grayscale too:
    // a 1-channel view equals the gray-channel view made with them off.
    char spec[8500];
    make_idx(4, 28, 28, 1, spec, sizeof spec);
    sslc_dataset *ds;
    assert_int_equal(sslc_dataset_open(&ds, spec, NULL), SSLC_OK);
    sslc_recipe r;
    assert_int_equal(sslc_recipe_defaults(&r, "simclr", 28, 1), SSLC_OK);
    sslc_image img;
    assert_int_equal(sslc_dataset_decode(ds, 2, &img, NULL, NULL, NULL), SSLC_OK);
    sslc_view_scratch s = {0};
    uint8_t a[28 * 28], b[28 * 28];
    int checked = 0;
    for (uint64_t v = 0; v < 40; v++) {
        sslc_view_params p;
        sslc_recipe_draw(&r, 1, 0, 2, v, 28, 28, &p);
        assert_int_equal(sslc_recipe_apply_u8(a, &r, &p, img.data, 28, 28, 1, &s), SSLC_OK);
        p.saturation = 1.0;
        p.hue = 0.0;
        p.gray = false;
        assert_int_equal(sslc_recipe_apply_u8(b, &r, &p, img.data, 28, 28, 1, &s), SSLC_OK);
        assert_memory_equal(a, b, sizeof a);
        checked += p.jitter;
    }
    assert_true(checked > 20);
    sslc_view_scratch_free(&s);
    sslc_image_free(&img);
    sslc_dataset_destroy(ds);
}

static void bad_images_are_skipped_named_and_counted(void **state)
{
    (void)state;
    const char *dir = sslc_test_tmpdir("pipebad");
    char path[4300], spec[4400];
    uint8_t px[16 * 16 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 3);
    for (int k = 0; k < 6; k++) {
        snprintf(path, sizeof path, "%s/img%d.png", dir, k);
        assert_int_equal(sslc_png_write(path, px, 16, 16, 3), SSLC_OK);
    }
    // img3.png: header intact, pixel data cut: passes the scan, fails decode.
    snprintf(path, sizeof path, "%s/img3.png", dir);
    uint8_t *bytes;
    size_t n;
    assert_int_equal(sslc_file_read(path, &bytes, &n), SSLC_OK);
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, n - 40, f);
    fclose(f);
    free(bytes);
    snprintf(spec, sizeof spec, "folder:%s", dir);
    sslc_dataset *ds;
    assert_int_equal(sslc_dataset_open(&ds, spec, NULL), SSLC_OK);
    assert_int_equal(sslc_dataset_count(ds), 6);
    sslc_recipe r;
    assert_int_equal(sslc_recipe_defaults(&r, "simclr", 8, 3), SSLC_OK);
    sslc_pipeline_config cfg;
    sslc_pipeline_config_default(&cfg);
    cfg.batch_size = 6;
    cfg.shuffle = false;
    sslc_pipeline *p;
    assert_int_equal(sslc_pipeline_create(&p, ds, &r, &cfg), SSLC_OK);
    for (int e = 0; e < 2; e++) {
        assert_int_equal(sslc_pipeline_begin_epoch(p, e, 0), SSLC_OK);
        const sslc_batch *b;
        assert_int_equal(sslc_pipeline_next(p, &b), SSLC_OK);
        assert_non_null(b);
        assert_int_equal(b->count, 6);
        assert_int_equal(b->indices[3], 4); // the next index that decodes
        assert_int_equal(b->indices[4], 4);
    }
    assert_int_equal(sslc_pipeline_skipped(p), 1); // counted once
    sslc_pipeline_destroy(p);
    sslc_dataset_destroy(ds);
}

static void eval_recipe_resizes_and_center_crops(void **state)
{
    (void)state;
    char spec[8500];
    make_idx(3, 30, 40, 3, spec, sizeof spec);
    sslc_dataset *ds;
    assert_int_equal(sslc_dataset_open(&ds, spec, NULL), SSLC_OK);
    sslc_recipe r;
    assert_int_equal(sslc_recipe_defaults(&r, "eval", 16, 3), SSLC_OK);
    r.eval_resize = 20;
    sslc_image img;
    assert_int_equal(sslc_dataset_decode(ds, 1, &img, NULL, NULL, NULL), SSLC_OK);
    sslc_view_params p;
    sslc_recipe_draw(&r, 5, 9, 1, 0, 30, 40, &p);
    sslc_view_scratch s = {0};
    uint8_t out[16 * 16 * 3], mid[20 * 26 * 3];
    assert_int_equal(sslc_recipe_apply_u8(out, &r, &p, img.data, 30, 40, 1, &s), SSLC_OK);
    // Resize(20): 30x40 -> 20x26; CenterCrop(16): top 2, left 5.
    double box[4] = {0, 0, 40, 30};
    assert_int_equal(sslc_resize_bilinear_naive(mid, 20, 26, img.data, 30, 40, 120, 3, box),
                     SSLC_OK);
    for (int y = 0; y < 16; y++)
        assert_memory_equal(out + y * 48, mid + ((y + 2) * 26 + 5) * 3, 48);
    sslc_view_scratch_free(&s);
    sslc_image_free(&img);
    sslc_dataset_destroy(ds);
}

static int fixed_scale(void *ctx, int64_t h, int64_t w)
{
    (void)h;
    (void)w;
    return *(int *)ctx;
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += fabs((double)a[i] - (double)b[i]);
    return s / (double)n;
}

// JPEGs are decoded only around the two crops; the views are the ones a
// whole decode gives.
static void jpeg_views_from_crop_windows_equal_whole_decode(void **state)
{
    (void)state;
    const char *dir = sslc_test_tmpdir("pipewindow");
    uint8_t *bytes;
    size_t n;
    assert_int_equal(sslc_file_read(sslc_fixture_path("decode/big.jpg"), &bytes, &n), SSLC_OK);
    char path[4300], spec[4400];
    for (int k = 0; k < 8; k++) {
        snprintf(path, sizeof path, "%s/img%d.jpg", dir, k);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(bytes, 1, n, f), n);
        fclose(f);
    }
    snprintf(spec, sizeof spec, "folder:%s", dir);
    sslc_dataset *ds;
    assert_int_equal(sslc_dataset_open(&ds, spec, NULL), SSLC_OK);
    sslc_recipe r;
    assert_int_equal(sslc_recipe_defaults(&r, "simclr", 24, 3), SSLC_OK);
    r.crop_scale_min = 0.02; // small crops, so most windows are cut
    sslc_pipeline_config cfg;
    sslc_pipeline_config_default(&cfg);
    cfg.batch_size = 8;
    cfg.seed = 5;
    sslc_pipeline *p;
    assert_int_equal(sslc_pipeline_create(&p, ds, &r, &cfg), SSLC_OK);
    sslc_image whole;
    sslc_decode_options opt = {.channels = 3};
    assert_int_equal(sslc_image_decode(&whole, bytes, n, "big.jpg", &opt, NULL), SSLC_OK);
    sslc_view_scratch s = {0};
    float want[24 * 24 * 3];
    for (int e = 0; e < 3; e++) {
        assert_int_equal(sslc_pipeline_begin_epoch(p, e, 0), SSLC_OK);
        const sslc_batch *b;
        assert_int_equal(sslc_pipeline_next(p, &b), SSLC_OK);
        for (int64_t v = 0; v < 2; v++)
            for (int64_t i = 0; i < 8; i++) {
                sslc_view_params vp;
                sslc_recipe_draw(&r, 5, (uint64_t)e, (uint64_t)b->indices[i], (uint64_t)v, 96,
                                 128, &vp);
                assert_int_equal(sslc_recipe_apply(want, &r, &vp, whole.data, 96, 128, 1, &s),
                                 SSLC_OK);
                assert_memory_equal(b->views + (v * 8 + i) * 24 * 24 * 3, want, sizeof want);
            }
    }
    sslc_view_scratch_free(&s);
    sslc_image_free(&whole);
    free(bytes);
    sslc_pipeline_destroy(p);
    sslc_dataset_destroy(ds);
}

static void scaled_jpeg_decode_is_close_to_full(void **state)
{
    (void)state;
    const char *big = sslc_fixture_path("decode/big.jpg");
    sslc_image img, small;
    sslc_decode_options opt = {.channels = 3};
    assert_int_equal(sslc_image_load(&img, big, &opt, NULL), SSLC_OK);
    sslc_view_scratch s = {0};
    uint8_t full[24 * 24 * 3], scaled[24 * 24 * 3];
    // eval, resize 24: the short side 96 allows 1/4 (96/4 = 24), not 1/8.
    sslc_recipe r;
    assert_int_equal(sslc_recipe_defaults(&r, "eval", 24, 3), SSLC_OK);
    sslc_view_params p;
    sslc_recipe_draw(&r, 0, 0, 0, 0, 96, 128, &p);
    assert_int_equal(sslc_recipe_decode_scale(&r, &p, 1, 96, 128), 1); // off by default
    r.scaled_decode = true;
    int d = sslc_recipe_decode_scale(&r, &p, 1, 96, 128);
    assert_int_equal(d, 4);
    opt.choose_scale = fixed_scale;
    opt.ctx = &d;
    assert_int_equal(sslc_image_load(&small, big, &opt, NULL), SSLC_OK);
    assert_int_equal(small.width, 32);
    assert_int_equal(sslc_recipe_apply_u8(full, &r, &p, img.data, 96, 128, 1, &s), SSLC_OK);
    assert_int_equal(sslc_recipe_apply_u8(scaled, &r, &p, small.data, 24, 32, 4, &s), SSLC_OK);
    double eval_diff = mean_abs_diff(full, scaled, sizeof full);
    sslc_image_free(&small);
    // Random crops: only crops at least 2x the output are decoded smaller.
    assert_int_equal(sslc_recipe_defaults(&r, "simclr", 24, 3), SSLC_OK);
    r.scaled_decode = true;
    r.jitter_p = r.gray_p = r.flip_p = 0; // compare geometry only
    int tested = 0;
    double worst = 0;
    for (uint64_t i = 0; i < 200 && tested < 10; i++) {
        sslc_recipe_draw(&r, 3, 0, i, 0, 96, 128, &p);
        d = sslc_recipe_decode_scale(&r, &p, 1, 96, 128);
        assert_true(p.crop.width / d >= 24 && p.crop.height / d >= 24);
        if (d == 1)
            continue;
        opt.ctx = &d;
        assert_int_equal(sslc_image_load(&small, big, &opt, NULL), SSLC_OK);
        assert_int_equal(sslc_recipe_apply_u8(full, &r, &p, img.data, 96, 128, 1, &s), SSLC_OK);
        assert_int_equal(sslc_recipe_apply_u8(scaled, &r, &p, small.data, small.height,
                                              small.width, d, &s),
                         SSLC_OK);
        worst = fmax(worst, mean_abs_diff(full, scaled, sizeof full));
        sslc_image_free(&small);
        tested++;
    }
    printf("  mean |full - scaled decode|: eval %.2f, crops worst %.2f (of 255), %d crops\n",
           eval_diff, worst, tested);
    assert_true(tested > 0);
    // Not torchvision's pixels, but the same picture: a few levels (the
    // fixture is noisy, which DCT scaling smooths more than the bilinear).
    assert_true(eval_diff < 12.0 && worst < 6.0);
    sslc_view_scratch_free(&s);
    sslc_image_free(&img);
}

// Data parallelism: ranks making slices of each batch see exactly the views
// of the whole batch (view v of slice sample i is row v * slice + i).
static void batch_slices_are_the_whole_batch(void **state)
{
    (void)state;
    char spec[8500];
    make_idx(40, 20, 24, 3, spec, sizeof spec);
    sslc_dataset *ds;
    assert_int_equal(sslc_dataset_open(&ds, spec, NULL), SSLC_OK);
    sslc_recipe r;
    assert_int_equal(sslc_recipe_defaults(&r, "simclr", 16, 3), SSLC_OK);
    const int64_t B = 8, image = 16 * 16 * 3;
    run_result whole = run_epochs(ds, &r, 2, true, B, 1, 3, 0);
    for (int64_t first = 0; first < B; first += 3) { // slices of 3, 3 and 2
        sslc_pipeline_config cfg;
        sslc_pipeline_config_default(&cfg);
        cfg.batch_size = B;
        cfg.seed = 42;
        cfg.slice_first = first;
        cfg.slice_count = first + 3 <= B ? 3 : B - first;
        sslc_pipeline *p;
        assert_int_equal(sslc_pipeline_create(&p, ds, &r, &cfg), SSLC_OK);
        assert_int_equal(sslc_pipeline_begin_epoch(p, 3, 0), SSLC_OK);
        const sslc_batch *b;
        for (int64_t k = 0; k < whole.batches; k++) {
            assert_int_equal(sslc_pipeline_next(p, &b), SSLC_OK);
            assert_non_null(b);
            assert_int_equal(b->count, cfg.slice_count);
            for (int64_t v = 0; v < 2; v++)
                for (int64_t i = 0; i < b->count; i++) {
                    assert_int_equal(b->indices[i], whole.indices[k * B + first + i]);
                    assert_memory_equal(b->views + (v * b->count + i) * image,
                                        whole.views + k * whole.floats_per_batch +
                                            (v * B + first + i) * image,
                                        (size_t)image * sizeof(float));
                }
        }
        assert_int_equal(sslc_pipeline_next(p, &b), SSLC_OK);
        assert_null(b);
        sslc_pipeline_destroy(p);
    }
    free(whole.views);
    free(whole.indices);
    sslc_dataset_destroy(ds);
}

// Multi-crop: with 4 local views the 2 global views are bit-identical to a
// 2-view run's; local view j is view 2 + j of the counter-based RNG, made
// by the local recipe; threads and async change nothing.
static void local_views_leave_global_views_unchanged(void **state)
{
    (void)state;
    char spec[8500];
    make_idx(40, 20, 24, 3, spec, sizeof spec);
    sslc_dataset *ds;
    assert_int_equal(sslc_dataset_open(&ds, spec, NULL), SSLC_OK);
    sslc_recipe r, local;
    assert_int_equal(sslc_recipe_defaults(&r, "simclr", 16, 3), SSLC_OK);
    assert_int_equal(sslc_recipe_local(&local, &r, 8, 0.1, 0.4), SSLC_OK);
    assert_int_equal(local.size, 8);
    assert_true(local.crop_scale_min == 0.1 && local.crop_scale_max == 0.4);
    assert_true(local.brightness == r.brightness && local.gray_p == r.gray_p);
    const int64_t B = 8, L = 4, image = 16 * 16 * 3, small = 8 * 8 * 3;
    run_result whole = run_epochs(ds, &r, 2, true, B, 1, 3, 0);
    float *first_local = NULL;
    for (int pass = 0; pass < 2; pass++) { // 1 thread sync, then 2 threads async
        sslc_pipeline_config cfg;
        sslc_pipeline_config_default(&cfg);
        cfg.batch_size = B;
        cfg.seed = 42;
        cfg.threads = pass ? 2 : 1;
        cfg.async = pass == 1;
        cfg.local_views = L;
        cfg.local_recipe = &local;
        sslc_pipeline *p;
        assert_int_equal(sslc_pipeline_create(&p, ds, &r, &cfg), SSLC_OK);
        assert_int_equal(sslc_pipeline_begin_epoch(p, 3, 0), SSLC_OK);
        const sslc_batch *b;
        for (int64_t k = 0; k < whole.batches; k++) {
            assert_int_equal(sslc_pipeline_next(p, &b), SSLC_OK);
            assert_non_null(b);
            assert_int_equal(b->local_views, L);
            assert_int_equal(b->local_size, 8);
            assert_memory_equal(b->views, whole.views + k * whole.floats_per_batch,
                                (size_t)(2 * B * image) * sizeof(float));
            if (k == 0 && pass == 0) {
                first_local = malloc((size_t)(L * B * small) * sizeof(float));
                memcpy(first_local, b->local, (size_t)(L * B * small) * sizeof(float));
                // Local view j of sample i: draw 2 + j with the local recipe.
                sslc_view_scratch scratch = {0};
                float *want = malloc((size_t)small * sizeof(float));
                for (int64_t i = 0; i < 2; i++) {
                    sslc_image img;
                    int scale = 1, used = 1;
                    assert_int_equal(sslc_dataset_decode(ds, b->indices[i], &img, fixed_scale,
                                                         &scale, &used),
                                     SSLC_OK);
                    for (int64_t j = 0; j < L; j++) {
                        sslc_view_params vp;
                        sslc_recipe_draw(&local, 42, 3, (uint64_t)b->indices[i],
                                         (uint64_t)(2 + j), 20, 24, &vp);
                        assert_int_equal(sslc_recipe_apply(want, &local, &vp, img.data, 20, 24,
                                                           1, &scratch),
                                         SSLC_OK);
                        assert_memory_equal(b->local + (j * B + i) * small, want,
                                            (size_t)small * sizeof(float));
                    }
                    sslc_image_free(&img);
                }
                // Local views of a sample differ from one another.
                assert_true(memcmp(b->local, b->local + B * small, (size_t)small * 4) != 0);
                free(want);
                sslc_view_scratch_free(&scratch);
            } else if (k == 0) {
                assert_memory_equal(b->local, first_local,
                                    (size_t)(L * B * small) * sizeof(float));
            }
        }
        sslc_pipeline_destroy(p);
    }
    // More views than the pipeline holds, or local views without a recipe.
    sslc_pipeline_config cfg;
    sslc_pipeline_config_default(&cfg);
    cfg.batch_size = B;
    cfg.local_views = 15;
    cfg.local_recipe = &local;
    sslc_pipeline *p = NULL;
    assert_int_equal(sslc_pipeline_create(&p, ds, &r, &cfg), SSLC_ERR_INVALID);
    cfg.local_views = 2;
    cfg.local_recipe = NULL;
    assert_int_equal(sslc_pipeline_create(&p, ds, &r, &cfg), SSLC_ERR_INVALID);
    // A local size the recipe's blur kernel does not fit is refused, naming the options.
    sslc_recipe blurred = r;
    blurred.blur_p = 0.5;
    blurred.blur_kernel = 9;
    assert_int_equal(sslc_recipe_local(&local, &blurred, 4, 0.1, 0.4), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "--local-size"));
    free(first_local);
    free(whole.views);
    free(whole.indices);
    sslc_dataset_destroy(ds);
}

int main(int argc, char **argv)
{
    sslc_log_set_level(SSLC_LOG_WARN);
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(recipe_defaults_are_the_published_ones),
        cmocka_unit_test(draws_follow_the_recipe_distributions),
        cmocka_unit_test(batches_do_not_depend_on_threads_or_async),
        cmocka_unit_test(partial_batches_and_views_layout),
        cmocka_unit_test(batch_slices_are_the_whole_batch),
        cmocka_unit_test(local_views_leave_global_views_unchanged),
        cmocka_unit_test(gray_views_jitter_only_brightness_and_contrast),
        cmocka_unit_test(bad_images_are_skipped_named_and_counted),
        cmocka_unit_test(eval_recipe_resizes_and_center_crops),
        cmocka_unit_test(jpeg_views_from_crop_windows_equal_whole_decode),
        cmocka_unit_test(scaled_jpeg_decode_is_close_to_full),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("unit", unit)};
    return sslc_test_main(argc, argv, groups, 1);
}
