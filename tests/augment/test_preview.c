// sslc augment-preview end to end (and the recipe overrides of
// src/cli/recipe_args.c through it): the sheet has the right size, and
// overrides that turn every random op off make each view equal the
// original tile.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "tests/harness.h"

static int run(const char *args)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s/../src/cli/sslc augment-preview %s", SSLC_BUILD_DIR, args);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void make_png(const char *path, int64_t h, int64_t w)
{
    uint8_t *px = malloc((size_t)(h * w * 3));
    for (int64_t i = 0; i < h * w * 3; i++)
        px[i] = (uint8_t)((i * 7) % 251 + (i / (w * 3)) % 5);
    assert_int_equal(sslc_png_write(path, px, h, w, 3), SSLC_OK);
    free(px);
}

static void preview_writes_a_sheet_and_overrides_apply(void **state)
{
    (void)state;
    const char *dir = sslc_test_tmpdir("preview");
    char imgs[4200], png[4400], out[4400], args[9000];
    snprintf(imgs, sizeof imgs, "%s/imgs", dir);
    snprintf(out, sizeof out, "mkdir -p %s", imgs);
    assert_int_equal(system(out), 0);
    for (int k = 0; k < 2; k++) {
        snprintf(png, sizeof png, "%s/i%d.png", imgs, k);
        make_png(png, 40, 40);
    }
    snprintf(out, sizeof out, "%s/sheet.png", dir);
    snprintf(args, sizeof args, "folder:%s --out %s --size 32 --views 3 --rows 2 --zoom 1 > /dev/null",
             imgs, out);
    assert_int_equal(run(args), 0);
    sslc_image sheet;
    sslc_decode_options opt = {.channels = 3};
    assert_int_equal(sslc_image_load(&sheet, out, &opt, NULL), SSLC_OK);
    // 4 tiles of 32 with 5 gaps of 4; 2 rows.
    assert_int_equal(sheet.width, 4 * 32 + 5 * 4);
    assert_int_equal(sheet.height, 2 * 32 + 3 * 4);
    sslc_image_free(&sheet);
    // Every random op off, full-image square crops: views == eval tile
    // (eval: resize 40 -> 32, center crop 32; crop: whole 40x40 -> 32).
    snprintf(args, sizeof args,
             "folder:%s --out %s --size 32 --views 3 --rows 1 --zoom 1 --jitter-p 0 "
             "--grayscale-p 0 --flip-p 0 --blur-p 0 --crop-scale-min 1 --crop-ratio-min 1 "
             "--crop-ratio-max 1 > /dev/null",
             imgs, out);
    assert_int_equal(run(args), 0);
    assert_int_equal(sslc_image_load(&sheet, out, &opt, NULL), SSLC_OK);
    for (int v = 1; v <= 3; v++)
        for (int y = 0; y < 32; y++)
            assert_memory_equal(sheet.data + ((4 + y) * sheet.width + 4) * 3,
                                sheet.data + ((4 + y) * sheet.width + 4 + v * 36) * 3, 32 * 3);
    sslc_image_free(&sheet);
    // With jitter always on, the views differ from the original.
    snprintf(args, sizeof args,
             "folder:%s --out %s --size 32 --views 3 --rows 1 --zoom 1 --jitter-p 1 "
             "--crop-scale-min 1 --crop-ratio-min 1 --crop-ratio-max 1 --flip-p 0 > /dev/null",
             imgs, out);
    assert_int_equal(run(args), 0);
    assert_int_equal(sslc_image_load(&sheet, out, &opt, NULL), SSLC_OK);
    assert_true(memcmp(sheet.data + (4 * sheet.width + 4) * 3,
                       sheet.data + (4 * sheet.width + 40) * 3, 32 * 3) != 0);
    sslc_image_free(&sheet);
    // Bad overrides and datasets: exit code 2 / 1 with a message.
    snprintf(args, sizeof args, "folder:%s --out %s --flip-p 2 2>/dev/null", imgs, out);
    assert_int_equal(run(args), 2);
    snprintf(args, sizeof args, "folder:%s/none --out %s 2>/dev/null", imgs, out);
    assert_int_equal(run(args), 1);
    assert_int_equal(run("--help > /dev/null"), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest e2e[] = {
        cmocka_unit_test(preview_writes_a_sheet_and_overrides_apply),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("e2e", e2e)};
    return sslc_test_main(argc, argv, groups, 1);
}
