// sslc embed: features of every image of a dataset through a checkpoint's
// encoder (and projector), to an HDF5 or .npy file, without Python.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/cli/eval_common.h"
#include "src/core/fs.h"
#include "src/core/hash.h"
#include "src/core/log.h"
#include "src/core/progress.h"
#include "src/core/threads.h"
#include "src/dist/dist.h"
#include "src/eval/encoder.h"
#include "src/eval/features.h"
#include "src/io/checkpoint.h"
#include "src/io/embeddings.h"

enum { NAME_CAP = 1024 };

typedef struct embed_ctx {
    const sslc_dataset *ds;
    sslc_embed_writer *writer;
    sslc_mlp *head;    // NULL: no projections
    sslc_mlp_run *run; // for head, sized for `run_rows`
    int64_t run_rows;
    char *names;          // (batch, NAME_CAP)
    const char **name_of; // (batch,) into names
    bool labelled;
} embed_ctx;

static sslc_status write_batch(void *ctx, const float *features, const int64_t *labels,
                               const int64_t *indices, int64_t rows)
{
    embed_ctx *e = ctx;
    if (!e->writer) // not the writing rank
        return SSLC_OK;
    const float *proj = NULL;
    if (e->head) {
        if (rows != e->run_rows) {
            sslc_mlp_run_destroy(e->run);
            e->run = NULL;
            sslc_status st = sslc_mlp_run_create(&e->run, e->head, rows);
            if (st)
                return st;
            e->run_rows = rows;
        }
        proj = sslc_mlp_forward(e->run, e->head, features, false);
    }
    for (int64_t i = 0; i < rows; i++)
        e->name_of[i] = sslc_dataset_name(e->ds, indices[i], e->names + i * NAME_CAP, NAME_CAP);
    return sslc_embed_writer_append(e->writer, features, proj, e->labelled ? labels : NULL,
                                    indices, e->name_of, rows);
}

// The encoder's identity: a hash of every value and buffer.
static uint64_t weights_hash(const sslc_encoder *enc)
{
    uint64_t h = sslc_hash64(SSLC_HASH64_INIT, enc->params->values,
                             (size_t)enc->params->n_values * sizeof(float));
    return sslc_hash64(h, enc->params->buffers, (size_t)enc->params->n_buffers * sizeof(float));
}

int sslc_cmd_embed(int argc, char **argv)
{
    static const sslc_command_help help = {
        "embed", "sslc embed --ckpt CKPT [options] DATASET",
        "Features of every image of DATASET through the checkpoint's encoder in eval mode\n"
        "(resize the short side, center crop, the checkpoint's view size), in dataset\n"
        "order: an HDF5 file with /features (N, D) float32, /names, /indices, /labels\n"
        "(labelled data) and the checkpoint's identity, or a .npy array. --projection adds\n"
        "the projector's output (pretraining checkpoints). Images that cannot be decoded\n"
        "are left out, named and counted (/indices says which rows are which images).\n"
        "DATASET: fashion-mnist:train, folder:DIR, imagefolder:DIR, idx:FILE[,LABELS],\n"
        "manifest:FILE, or a path."};
    const char *ckpt = "", *adapter = "", *out = "embeddings.h5", *format = "auto";
    int64_t batch = 256, size = 0, resize = 0, threads = 0;
    bool projection = false, strict = false;
    const sslc_arg args[] = {
        {"ckpt", SSLC_ARG_STRING, &ckpt, "encoder: checkpoint file or run folder", NULL, 0, 0},
        {"adapter", SSLC_ARG_STRING, &adapter, "adapter file (finetune --out DIR/adapter.h5) to fold into the --ckpt encoder, its base", NULL, 0, 0},
        {"out", SSLC_ARG_STRING, &out, "the file to write (.h5, or .npy)", NULL, 0, 0},
        {"format", SSLC_ARG_CHOICE, &format, "file format (auto: .npy for a .npy name, else HDF5)", "auto|h5|npy", 0, 0},
        {"projection", SSLC_ARG_FLAG, &projection, "also the projector's output", NULL, 0, 0},
        {"size", SSLC_ARG_INT, &size, "view size (0: the checkpoint's, else the first image's short side)", NULL, 0, 8192},
        {"resize", SSLC_ARG_INT, &resize, "short side before the center crop (0: the view size)", NULL, 0, 8192},
        {"batch", SSLC_ARG_INT, &batch, "images per forward pass", NULL, 1, 1 << 20},
        {"threads", SSLC_ARG_INT, &threads, "threads (0: all cores)", NULL, 0, 1024},
        {"strict", SSLC_ARG_FLAG, &strict, "decode every image first: any bad file is an error (else bad images are left out and counted)", NULL, 0, 0},
    };
    const size_t n_args = sizeof args / sizeof args[0];
    const char *spec = NULL;
    int npos = 0;
    int st = sslc_args_parse(&help, args, n_args, argc, argv, &spec, 1, &npos);
    if (st == SSLC_ARGS_HELP)
        return 0;
    if (!st && npos != 1)
        st = sslc_error(SSLC_ERR_INVALID, "which images? (sslc embed --ckpt CKPT DATASET)");
    if (st)
        return sslc_cli_fail("embed", st);
    sslc_set_threads((int)threads);
    size_t out_len = strlen(out);
    bool npy = !strcmp(format, "npy") ||
               (!strcmp(format, "auto") && out_len > 4 && !strcmp(out + out_len - 4, ".npy"));

    sslc_encoder enc = {0};
    sslc_mlp head = {0};
    sslc_dataset *ds = NULL;
    embed_ctx e = {0};
    sslc_ckpt_info info = {0};
    const char **class_names = NULL;
    char path[4096], method[64];
    const double start = sslc_now();
    int64_t ckpt_size = 0, skipped = 0;
    sslc_cli_encoder_args ea = {ckpt, "resnet18", 0, false, 0, adapter, 0, NULL, 0};
    if ((st = sslc_cli_encoder(&enc, &ckpt_size, method, sizeof method, &ea, 0)) ||
        (st = sslc_ckpt_resolve(ckpt, path, sizeof path)) ||
        (st = sslc_ckpt_read_info(path, &info)))
        goto done;
    if (projection && (st = sslc_projector_load(&head, path, enc.feature_dim)))
        goto done;
    const int channels = (int)enc.in_channels;
    if ((st = sslc_cli_open_dataset(&ds, spec, channels, strict)))
        goto done;
    if (size == 0)
        size = ckpt_size > 0 ? ckpt_size : sslc_cli_image_size(ds);
    sslc_recipe recipe;
    if ((st = sslc_cli_eval_recipe(&recipe, size, channels)))
        goto done;
    if (resize > 0) {
        recipe.eval_resize = resize;
        if ((st = sslc_recipe_finalize(&recipe)))
            goto done;
    }
    char recipe_text[256];
    snprintf(recipe_text, sizeof recipe_text,
             "eval: short side resized to %lld, center crop %lld, mean %g %g %g, std %g %g %g",
             (long long)recipe.eval_resize, (long long)recipe.size, recipe.mean[0],
             recipe.mean[1], recipe.mean[2], recipe.std[0], recipe.std[1], recipe.std[2]);
    const int64_t classes = sslc_dataset_num_classes(ds);
    if (classes > 0) {
        if (!(class_names = sslc_calloc((size_t)classes, sizeof *class_names))) {
            st = SSLC_ERR_NOMEM;
            goto done;
        }
        for (int64_t c = 0; c < classes; c++)
            class_names[c] = sslc_dataset_class_name(ds, c);
    }
    char mean[64], std[64];
    snprintf(mean, sizeof mean, "%.9g", recipe.mean[0]);
    snprintf(std, sizeof std, "%.9g", recipe.std[0]);
    for (int c = 1; c < channels; c++) {
        snprintf(mean + strlen(mean), sizeof mean - strlen(mean), ",%.9g", recipe.mean[c]);
        snprintf(std + strlen(std), sizeof std - strlen(std), ",%.9g", recipe.std[c]);
    }
    sslc_embed_header h = {.format = npy ? SSLC_EMBED_NPY : SSLC_EMBED_H5,
                           .dim = enc.feature_dim, .proj_dim = projection ? head.out_dim : 0,
                           .labelled = classes > 0, .class_names = class_names,
                           .n_classes = classes, .dataset = spec, .recipe = recipe_text,
                           .ckpt = path, .ckpt_method = method, .ckpt_step = info.step,
                           .ckpt_epoch = info.epoch, .weights_hash = weights_hash(&enc),
                           .view_size = recipe.size, .resize = recipe.eval_resize,
                           .input_mean = mean, .input_std = std};
    e = (embed_ctx){.ds = ds, .head = projection ? &head : NULL, .labelled = classes > 0};
    e.names = sslc_malloc((size_t)batch * NAME_CAP);
    e.name_of = sslc_malloc((size_t)batch * sizeof *e.name_of);
    if (!e.names || !e.name_of) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    char shape[64];
    sslc_info("embed: %lld images of %s through the %s encoder of %s (step %lld, %s %s), "
              "%lld px views",
              (long long)sslc_dataset_count(ds), spec, method, path, (long long)info.step,
              sslc_encoder_arch(&enc), sslc_cli_encoder_shape(shape, sizeof shape, &enc),
              (long long)size);
    // Under mpirun every rank encodes its share and receives every batch;
    // rank 0 writes the file.
    const bool writer = sslc_dist_rank() == 0;
    if (writer && ((st = sslc_make_parent_dir(out, "--out")) ||
                   (st = sslc_embed_writer_open(&e.writer, out, &h))))
        goto done;
    sslc_progress bar;
    sslc_progress_init(&bar, stderr, (sslc_dataset_count(ds) + 9) / 10, sslc_dataset_count(ds), 0);
    bar.label = "images";
    st = sslc_features_each(&enc, ds, &recipe, batch, 0, 0, writer ? &bar : NULL, &skipped,
                            write_batch, &e);
    int64_t rows = sslc_dataset_count(ds) - skipped;
    if (st) {
        sslc_embed_writer_abort(e.writer);
        goto done;
    }
    if (writer && (st = sslc_embed_writer_close(e.writer, skipped)))
        goto done;
    printf("embed: %lld rows of %lld features%s to %s in %.1f s", (long long)rows,
           (long long)enc.feature_dim, projection ? " and projections" : "", out,
           sslc_now() - start);
    if (skipped > 0)
        printf("; %lld images could not be decoded and were left out", (long long)skipped);
    printf("\n");
done:
    sslc_mlp_run_destroy(e.run);
    free(e.names);
    free(e.name_of);
    free(class_names);
    sslc_dataset_destroy(ds);
    sslc_encoder_destroy(&enc);
    sslc_mlp_destroy(&head);
    sslc_ckpt_info_free(&info);
    return st ? sslc_cli_fail("embed", st) : 0;
}
