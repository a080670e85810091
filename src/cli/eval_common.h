// What the evaluation commands (linear-eval, finetune, supervised, knn,
// distill) share: labelled datasets, label subsets, encoders from checkpoints or
// random initialisation, and their view recipes.
#ifndef SSLC_CLI_EVAL_COMMON_H
#define SSLC_CLI_EVAL_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "augment/recipe.h"
#include "data/dataset.h"
#include "data/subset.h"
#include "src/cli/args.h"
#include "src/eval/metrics.h"
#include "src/models/encoder.h"


// The options that choose the labelled data: --train, --test,
// --label-fraction, --per-class, --subset, --save-subset, --strict.
typedef struct sslc_cli_labels {
    const char *train, *test; // dataset specs
    double fraction;          // class-balanced fraction of train (1: all)
    int64_t per_class;        // or this many images per class (> 0)
    const char *subset;       // or the list in this file (non-empty)
    const char *save_subset;  // where to write the subset's list ("": see sslc_cli_subset)
    bool strict;              // decode every image first; any bad file is an error
} sslc_cli_labels;

#define SSLC_CLI_LABELS_DEFAULT {"fashion-mnist:train", "fashion-mnist:test", 1.0, 0, "", "", false}
enum { SSLC_CLI_LABEL_ARGS = 7 };

// Opens spec for a command: channels 0 (the data's) or 1 / 3; strict: every
// image decoded now, any bad file an error (the bad-input rule, docs/data.md).
sslc_status sslc_cli_open_dataset(sslc_dataset **ds, const char *spec, int channels, bool strict);

// sslc_cli_open_dataset, refusing a dataset without labels (what: the
// option that named it, "--train").
sslc_status sslc_cli_open_labelled(sslc_dataset **ds, const char *spec, int channels, bool strict,
                                   const char *what);

// Writes the SSLC_CLI_LABEL_ARGS argument entries for l to a.
size_t sslc_cli_label_args(sslc_arg *a, sslc_cli_labels *l);

// The labelled subset of ds that l chooses; its list is saved to
// l->save_subset, else to out/subset.txt when out is non-empty.
sslc_status sslc_cli_subset(sslc_subset *s, const sslc_dataset *ds, const sslc_cli_labels *l,
                            uint64_t seed, const char *out);

typedef struct sslc_cli_encoder_args {
    const char *ckpt; // a checkpoint file or run folder, or "random"
    const char *arch; // random only
    int64_t width;
    bool cifar_stem;
    uint64_t seed;
    const char *adapter; // NULL or "": none; else folded into the checkpoint's encoder
    // A random ViT: patch (0: 4 up to 64 px images, else 16), position
    // embedding ("learned" or "sincos"; NULL: learned) and image size (0:
    // the data's, through sslc_cli_setup).
    int64_t patch;
    const char *pos_embed;
    int64_t image_size;
} sslc_cli_encoder_args;

// Builds the encoder, with a->adapter folded in (sslc_adapter_apply);
// *image_size receives the checkpoint's view size (0 when random or
// unknown). method (cap bytes) names where it came from.
sslc_status sslc_cli_encoder(sslc_encoder *enc, int64_t *image_size, char *method, size_t cap,
                             const sslc_cli_encoder_args *a, int channels);

// Opens the labelled --train and --test sets and builds the encoder (enc
// NULL: none, the raw-pixel probe). A checkpoint's encoder decides the
// channels the images are decoded with (grayscale PNGs for a 1-channel
// encoder); a random one takes the data's. The two sets must have the
// same classes. *image_size: the checkpoint's view size, else the data's.
sslc_status sslc_cli_setup(sslc_dataset **train, sslc_dataset **test, sslc_encoder *enc,
                           int64_t *image_size, char *method, size_t cap,
                           const sslc_cli_labels *labels, const sslc_cli_encoder_args *a);

// "width W" for a ResNet, "patch P" for a ViT: the shape beside its arch in
// progress lines. Returns buf.
const char *sslc_cli_encoder_shape(char *buf, size_t cap, const sslc_encoder *enc);

// The deterministic eval recipe for small images (resize = size, center
// crop) and the light training recipe "supervised": random resized crop of
// area (0.5, 1) and aspect (3/4, 4/3), horizontal flip 0.5, nothing else.
sslc_status sslc_cli_eval_recipe(sslc_recipe *r, int64_t size, int channels);
sslc_status sslc_cli_supervised_recipe(sslc_recipe *r, int64_t size, int channels);

// The size of the first image's short side.
int64_t sslc_cli_image_size(const sslc_dataset *ds);

// The bad-input rule of evaluation: images that cannot be decoded are left
// out of their set, named in a warning each and counted. Refuses a set left
// empty (what: the command).
sslc_status sslc_cli_check_rows(const char *what, int64_t train_rows, int64_t test_rows);
// "" when nothing was excluded, else "; excluded as unreadable: 2 training
// images, 1 test image" (for the line that states the accuracy): images of
// the sets skipped at the scan or when decoded.
void sslc_cli_excluded_text(char *buf, size_t cap, int64_t train, int64_t test);

// Appends one JSON line to path (creating it), for the table script.
sslc_status sslc_cli_append_json(const char *path, const char *json);

// Writes out/confusion.csv and out/metrics.json (the result line).
sslc_status sslc_cli_write_results(const char *out, const sslc_metrics *met,
                                   const char *const *class_names, const char *json);

// sslc finetune (supervised false) and sslc supervised (true): one
// implementation in cmd_finetune.c.
int sslc_cli_train_classifier(int argc, char **argv, bool supervised);

#endif
