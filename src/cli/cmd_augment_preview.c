// sslc augment-preview: a PNG contact sheet of images and their views, so
// a user sees what a recipe (and its overrides) does before training.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/recipe.h"
#include "data/dataset.h"
#include "data/image.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/cli/recipe_args.h"
#include "src/core/fs.h"
#include "src/core/log.h"

// Copies a (S, S, C) tile into the sheet at (row y0, col x0), each pixel
// repeated zoom x zoom times (nearest neighbour, so pixels stay visible).
static void blit(uint8_t *sheet, int64_t sheet_w, int64_t C, int64_t y0, int64_t x0,
                 const uint8_t *tile, int64_t S, int64_t zoom)
{
    for (int64_t y = 0; y < S * zoom; y++)
        for (int64_t x = 0; x < S * zoom; x++)
            memcpy(sheet + ((y0 + y) * sheet_w + x0 + x) * C,
                   tile + ((y / zoom) * S + x / zoom) * C, (size_t)C);
}

int sslc_cmd_augment_preview(int argc, char **argv)
{
    static const sslc_command_help help = {
        "augment-preview", "sslc augment-preview [options] DATASET",
        "Writes a PNG contact sheet: one row per image, the image itself (resized and center-"
        "cropped) then its augmented views, drawn exactly as training would draw them for "
        "(seed, epoch, index, view). DATASET is a spec: fashion-mnist:train, folder:PATH, "
        "imagefolder:PATH, idx:IMAGES[,LABELS], manifest:FILE or a path."};
    const char *out = "augment-preview.png", *recipe_name = "simclr";
    int64_t size = 0, index = 0, rows = 4, views = 8, seed = 0, epoch = 0, channels = 0,
            zoom = 0, max_pixels = 89478485;
    bool strict = false;
    sslc_recipe_overrides ov;
    sslc_recipe_overrides_init(&ov);
    sslc_arg args[16 + SSLC_RECIPE_ARGS_MAX] = {
        {"out", SSLC_ARG_STRING, &out, "PNG file to write", NULL, 0, 0},
        {"recipe", SSLC_ARG_CHOICE, &recipe_name, "augmentation recipe", "simclr|moco-v1|moco-v2|eval",
         0, 0},
        {"size", SSLC_ARG_INT, &size, "view side in pixels (0: 224, or the image side if smaller)",
         NULL, 0, 8192},
        {"index", SSLC_ARG_INT, &index, "first dataset index shown", NULL, 0, 0},
        {"rows", SSLC_ARG_INT, &rows, "images shown (one row each)", NULL, 1, 64},
        {"views", SSLC_ARG_INT, &views, "views per image", NULL, 1, 64},
        {"seed", SSLC_ARG_INT, &seed, "random seed", NULL, 0, 0},
        {"epoch", SSLC_ARG_INT, &epoch, "epoch the views are drawn for", NULL, 0, 0},
        {"channels", SSLC_ARG_INT, &channels, "1 or 3 (0: the dataset's)", NULL, 0, 3},
        {"zoom", SSLC_ARG_INT, &zoom, "pixel repeat factor (0: so tiles are >= 96 pixels)", NULL, 0,
         32},
        {"max-pixels", SSLC_ARG_INT, &max_pixels, "skip images with more pixels (0: no limit)",
         NULL, 0, 0},
        {"strict", SSLC_ARG_FLAG, &strict, "decode every image first: any bad file is an error", NULL, 0, 0},
    };
    size_t n_args = 12;
    n_args += sslc_recipe_args(args + n_args, SSLC_RECIPE_ARGS_MAX, &ov);
    const char *positional[1];
    int n_pos = 0;
    int st = sslc_args_parse(&help, args, n_args, argc, argv, positional, 1, &n_pos);
    if (st == SSLC_ARGS_HELP)
        return 0;
    if (st != SSLC_OK)
        return sslc_cli_fail("augment-preview", st);
    if (n_pos != 1)
        return sslc_cli_fail("augment-preview",
                             sslc_error(SSLC_ERR_INVALID, "give one DATASET (see --help)"));
    if (channels == 2)
        return sslc_cli_fail("augment-preview",
                             sslc_error(SSLC_ERR_INVALID, "--channels must be 0, 1 or 3"));

    sslc_dataset *ds = NULL;
    sslc_dataset_options dopt;
    sslc_dataset_options_default(&dopt);
    dopt.channels = (int)channels;
    dopt.max_pixels = max_pixels;
    dopt.strict = strict;
    uint8_t *sheet = NULL, *tile = NULL;
    sslc_image img = {0};
    sslc_view_scratch scratch = {0};
    st = sslc_dataset_open(&ds, positional[0], &dopt);
    if (st != SSLC_OK)
        goto fail;
    int64_t n = sslc_dataset_count(ds), C = sslc_dataset_channels(ds);
    if (index < 0 || index >= n) {
        st = sslc_error(SSLC_ERR_INVALID, "--index %lld is outside the dataset's %lld images",
                        (long long)index, (long long)n);
        goto fail;
    }
    if (index + rows > n)
        rows = n - index;
    if (size == 0) {
        int64_t h, w;
        sslc_dataset_dims(ds, index, &h, &w);
        size = h < w ? h : w;
        size = size < 224 ? size : 224;
    }
    sslc_recipe r, ev;
    st = sslc_recipe_defaults(&r, recipe_name, size, C);
    if (st == SSLC_OK)
        st = sslc_recipe_overrides_apply(&r, &ov);
    if (st == SSLC_OK)
        st = sslc_recipe_defaults(&ev, "eval", size, C);
    if (st != SSLC_OK)
        goto fail;
    if (zoom == 0)
        zoom = size >= 96 ? 1 : (96 + size - 1) / size;
    int64_t gap = 4, T = size * zoom, cols = views + 1;
    int64_t W = cols * T + (cols + 1) * gap, H = rows * T + (rows + 1) * gap;
    sheet = sslc_malloc((size_t)(W * H * C));
    tile = sslc_malloc((size_t)(size * size * C));
    if (!sheet || !tile) {
        st = SSLC_ERR_NOMEM;
        goto fail;
    }
    memset(sheet, 255, (size_t)(W * H * C));
    for (int64_t row = 0; row < rows; row++) {
        int64_t i = index + row, h, w;
        sslc_dataset_dims(ds, i, &h, &w);
        st = sslc_dataset_decode(ds, i, &img, NULL, NULL, NULL);
        if (st != SSLC_OK)
            goto fail;
        int64_t y0 = gap + row * (T + gap);
        for (int64_t v = -1; v < views; v++) {
            const sslc_recipe *use = v < 0 ? &ev : &r;
            sslc_view_params p;
            sslc_recipe_draw(use, (uint64_t)seed, (uint64_t)epoch, (uint64_t)i,
                             (uint64_t)(v < 0 ? 0 : v), h, w, &p);
            st = sslc_recipe_apply_u8(tile, use, &p, img.data, img.height, img.width, 1, &scratch);
            if (st != SSLC_OK)
                goto fail;
            blit(sheet, W, C, y0, gap + (v + 1) * (T + gap), tile, size, zoom);
        }
        sslc_image_free(&img);
    }
    st = sslc_make_parent_dir(out, "--out");
    if (!st)
        st = sslc_png_write(out, sheet, H, W, C);
    if (st != SSLC_OK)
        goto fail;
    printf("wrote %s: %lld image(s) x (original + %lld %s views), %lldx%lld pixels\n", out,
           (long long)rows, (long long)views, r.name, (long long)W, (long long)H);
    st = SSLC_OK;
fail:
    sslc_image_free(&img);
    sslc_view_scratch_free(&scratch);
    free(sheet);
    free(tile);
    sslc_dataset_destroy(ds);
    return st == SSLC_OK ? 0 : sslc_cli_fail("augment-preview", st);
}
