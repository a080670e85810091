#include "src/cli/eval_common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "src/core/fs.h"
#include "src/dist/dist.h"
#include "src/eval/adapter.h"
#include "src/eval/encoder.h"
#include "src/io/checkpoint.h"

sslc_status sslc_cli_open_dataset(sslc_dataset **ds, const char *spec, int channels, bool strict)
{
    sslc_dataset_options opt;
    sslc_dataset_options_default(&opt);
    opt.channels = channels;
    opt.strict = strict;
    return sslc_dataset_open(ds, spec, &opt);
}

sslc_status sslc_cli_open_labelled(sslc_dataset **ds, const char *spec, int channels, bool strict,
                                   const char *what)
{
    sslc_status st = sslc_cli_open_dataset(ds, spec, channels, strict);
    if (st)
        return sslc_error_prefix(st, "%s", what);
    if (sslc_dataset_num_classes(*ds) < 2) {
        sslc_dataset_destroy(*ds);
        *ds = NULL;
        return sslc_error(SSLC_ERR_INVALID,
                          "%s %s: the dataset has no labels (give a labelled one: "
                          "fashion-mnist:train, imagefolder:DIR with one folder per class, "
                          "idx:IMAGES,LABELS)",
                          what, spec);
    }
    return SSLC_OK;
}

size_t sslc_cli_label_args(sslc_arg *a, sslc_cli_labels *l)
{
    const sslc_arg list[SSLC_CLI_LABEL_ARGS] = {
        {"train", SSLC_ARG_STRING, &l->train, "labelled training images (the subset is drawn from them)", NULL, 0, 0},
        {"test", SSLC_ARG_STRING, &l->test, "labelled test images", NULL, 0, 0},
        {"label-fraction", SSLC_ARG_FLOAT, &l->fraction, "class-balanced fraction of the training labels (1: all)", NULL, 1e-6, 1},
        {"per-class", SSLC_ARG_INT, &l->per_class, "images per class instead of a fraction (0: use the fraction)", NULL, 0, 1LL << 40},
        {"subset", SSLC_ARG_STRING, &l->subset, "read the labelled subset from this list instead", NULL, 0, 0},
        {"save-subset", SSLC_ARG_STRING, &l->save_subset, "write the labelled subset list here", NULL, 0, 0},
        {"strict", SSLC_ARG_FLAG, &l->strict, "decode every image first: any bad file is an error (else bad images are skipped and counted)", NULL, 0, 0},
    };
    memcpy(a, list, sizeof list);
    return SSLC_CLI_LABEL_ARGS;
}

sslc_status sslc_cli_subset(sslc_subset *s, const sslc_dataset *ds, const sslc_cli_labels *l,
                            uint64_t seed, const char *out)
{
    sslc_status st = l->subset[0] ? sslc_subset_load(s, ds, l->subset)
                                  : sslc_subset_from_dataset(s, ds, l->fraction, l->per_class, seed);
    if (st)
        return st;
    char path[4200];
    const char *save = l->save_subset;
    if (!save[0] && out && out[0]) {
        snprintf(path, sizeof path, "%s/subset.txt", out);
        save = path;
    }
    if (!save[0] || sslc_dist_rank() > 0)
        return SSLC_OK;
    if ((st = sslc_make_parent_dir(save, "--save-subset")))
        return st;
    return sslc_subset_save(s, ds, save);
}

sslc_status sslc_cli_encoder(sslc_encoder *enc, int64_t *image_size, char *method, size_t cap,
                             const sslc_cli_encoder_args *a, int channels)
{
    *image_size = 0;
    if (!strcmp(a->ckpt, "random")) {
        const int64_t size = a->image_size, patch = a->patch > 0 ? a->patch : size <= 64 ? 4 : 16;
        const bool sincos = a->pos_embed && !strcmp(a->pos_embed, "sincos");
        sslc_encoder_config cfg = {
            .resnet = {.in_channels = channels, .width = a->width, .cifar_stem = a->cifar_stem},
            .vit = {.in_channels = channels, .patch = patch, .image_size = size,
                    .pos = sincos ? SSLC_VIT_POS_SINCOS : SSLC_VIT_POS_LEARNED}};
        sslc_status st = sslc_encoder_parse_arch(&cfg, a->arch);
        if (!st && cfg.kind == SSLC_ENCODER_VIT && (size <= 0 || size % patch))
            st = sslc_error(SSLC_ERR_INVALID, "--patch %lld does not divide the %lld px images",
                            (long long)patch, (long long)size);
        if (!st)
            st = sslc_encoder_create(enc, &cfg);
        if (st)
            return st;
        sslc_encoder_init(enc, a->seed);
        snprintf(method, cap, "random-init");
        return SSLC_OK;
    }
    if (!a->ckpt[0])
        return sslc_error(SSLC_ERR_INVALID, "give --ckpt CHECKPOINT (a file or a run folder), or "
                                            "--ckpt random for a randomly initialised encoder");
    char path[4096];
    sslc_status st = sslc_ckpt_resolve(a->ckpt, path, sizeof path);
    if (st)
        return st;
    sslc_encoder_info info;
    if ((st = sslc_encoder_load(enc, &info, path, channels)))
        return st;
    if (a->adapter && a->adapter[0] && (st = sslc_adapter_apply(enc, a->adapter))) {
        sslc_encoder_destroy(enc);
        return st;
    }
    *image_size = info.image_size;
    snprintf(method, cap, "%s", info.method[0] ? info.method : "checkpoint");
    return SSLC_OK;
}

const char *sslc_cli_encoder_shape(char *buf, size_t cap, const sslc_encoder *enc)
{
    if (enc->kind == SSLC_ENCODER_VIT)
        snprintf(buf, cap, "patch %lld", (long long)enc->net.vit.config.patch);
    else
        snprintf(buf, cap, "width %lld", (long long)enc->net.resnet.config.width);
    return buf;
}

sslc_status sslc_cli_setup(sslc_dataset **train, sslc_dataset **test, sslc_encoder *enc,
                           int64_t *image_size, char *method, size_t cap,
                           const sslc_cli_labels *labels, const sslc_cli_encoder_args *a)
{
    *train = *test = NULL;
    *image_size = 0;
    snprintf(method, cap, "pixels");
    bool from_ckpt = enc && strcmp(a->ckpt, "random") != 0;
    int channels = 0;
    int64_t ckpt_size = 0;
    sslc_status st;
    if (from_ckpt) {
        if ((st = sslc_cli_encoder(enc, &ckpt_size, method, cap, a, 0)))
            return st;
        channels = (int)enc->in_channels;
    }
    if ((st = sslc_cli_open_labelled(train, labels->train, channels, labels->strict, "--train")) ||
        (st = sslc_cli_open_labelled(test, labels->test, sslc_dataset_channels(*train),
                                     labels->strict, "--test")))
        goto fail;
    if (sslc_dataset_num_classes(*test) != sslc_dataset_num_classes(*train)) {
        st = sslc_error(SSLC_ERR_INVALID, "--train has %lld classes, --test %lld",
                        (long long)sslc_dataset_num_classes(*train),
                        (long long)sslc_dataset_num_classes(*test));
        goto fail;
    }
    if (enc && !from_ckpt) {
        sslc_cli_encoder_args random = *a;
        if (random.image_size <= 0)
            random.image_size = sslc_cli_image_size(*train);
        if ((st = sslc_cli_encoder(enc, &ckpt_size, method, cap, &random,
                                   sslc_dataset_channels(*train))))
            goto fail;
    }
    *image_size = ckpt_size > 0 ? ckpt_size : sslc_cli_image_size(*train);
    return SSLC_OK;
fail:
    if (from_ckpt)
        sslc_encoder_destroy(enc);
    sslc_dataset_destroy(*train);
    sslc_dataset_destroy(*test);
    *train = *test = NULL;
    return st;
}

sslc_status sslc_cli_eval_recipe(sslc_recipe *r, int64_t size, int channels)
{
    sslc_status st = sslc_recipe_defaults(r, "eval", size, channels);
    if (st)
        return st;
    r->eval_resize = size; // small images: no resize margin before the center crop
    return sslc_recipe_finalize(r);
}

sslc_status sslc_cli_supervised_recipe(sslc_recipe *r, int64_t size, int channels)
{
    // The usual supervised augmentation (torchvision RandomResizedCrop +
    // RandomHorizontalFlip), with a milder smallest crop than ImageNet's
    // 0.08: on 28x28 images a crop under half the area loses the object.
    sslc_status st = sslc_recipe_defaults(r, "simclr", size, channels);
    if (st)
        return st;
    snprintf(r->name, sizeof r->name, "supervised");
    r->crop_scale_min = 0.5;
    r->crop_scale_max = 1.0;
    r->flip_p = 0.5;
    r->jitter_p = 0.0;
    r->jitter_strength = 0.0;
    r->gray_p = 0.0;
    r->blur_p = 0.0;
    r->solarize_p = 0.0;
    return sslc_recipe_finalize(r);
}

int64_t sslc_cli_image_size(const sslc_dataset *ds)
{
    int64_t h, w;
    sslc_dataset_dims(ds, 0, &h, &w);
    return h < w ? h : w;
}

// One line of text into path, appended (mode "a") or replacing it ("w").
static sslc_status write_line(const char *path, const char *mode, const char *line)
{
    if (sslc_dist_rank() > 0) // under mpirun, rank 0 writes for all
        return SSLC_OK;
    sslc_status st = sslc_make_parent_dir(path, path);
    if (st)
        return st;
    FILE *f = fopen(path, mode);
    if (!f)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    fprintf(f, "%s\n", line);
    if (fclose(f) != 0)
        return sslc_error(SSLC_ERR_IO, "cannot write '%s'", path);
    return SSLC_OK;
}

sslc_status sslc_cli_append_json(const char *path, const char *json)
{
    return write_line(path, "a", json);
}

sslc_status sslc_cli_write_results(const char *out, const sslc_metrics *met,
                                   const char *const *class_names, const char *json)
{
    if (sslc_dist_rank() > 0)
        return SSLC_OK;
    char path[4200];
    snprintf(path, sizeof path, "%s/confusion.csv", out);
    sslc_status st = sslc_metrics_write_confusion(met, class_names, path);
    if (st)
        return st;
    snprintf(path, sizeof path, "%s/metrics.json", out);
    return write_line(path, "w", json);
}

sslc_status sslc_cli_check_rows(const char *what, int64_t train_rows, int64_t test_rows)
{
    if (train_rows > 0 && test_rows > 0)
        return SSLC_OK;
    return sslc_error(SSLC_ERR_FORMAT, "%s: no %s image could be decoded", what,
                      train_rows > 0 ? "test" : "training");
}

void sslc_cli_excluded_text(char *buf, size_t cap, int64_t train, int64_t test)
{
    buf[0] = '\0';
    if (train == 0 && test == 0)
        return;
    int n = snprintf(buf, cap, "; excluded as unreadable:");
    if (train > 0 && n >= 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, " %lld training image%s%s", (long long)train,
                      train == 1 ? "" : "s", test > 0 ? "," : "");
    if (test > 0 && n >= 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, " %lld test image%s", (long long)test,
                 test == 1 ? "" : "s");
}
