// sslc pretrain: SimCLR or MoCo (v1, v2, v3) on a folder of images or Fashion-MNIST.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/cli/eval_common.h"
#include "src/cli/recipe_args.h"
#include "src/core/log.h"
#include "src/core/phases.h"
#include "src/core/threads.h"
#include "src/dist/dist.h"
#include "src/io/checkpoint.h"
#include "src/models/mlp.h"
#include "src/optim/schedule.h"
#include "src/train/pretrain.h"

enum { MAX_ARGS = 96, MAX_STORED = 128 };

typedef struct options {
    const char *method, *data, *knn_bank, *knn_val, *arch, *recipe, *optimizer, *lr_scaling;
    const char *out, *resume, *head, *local_scale, *pos_embed;
    int64_t moco_version, width, proj_hidden, proj_dim, proj_layers, pred_hidden, size, batch;
    int64_t epochs, max_steps, patch;
    int64_t queue, shuffle_groups, bn_groups, chunk, seed, threads, log_every, ckpt_every, keep;
    int64_t knn_every, knn_k, knn_bank_limit, global_crops, local_crops, local_size;
    double minutes, lr, final_lr, warmup, weight_decay, momentum, tau, moco_m, knn_tau;
    bool symmetric, cifar_stem, moco_m_cosine, nesterov, async, proj_bn, fixed_batch, strict, freeze_patch;
    bool sync_bn, profile;
    sslc_recipe_overrides aug;
} options;

static size_t make_args(sslc_arg *a, options *o)
{
    const sslc_arg list[] = {
        {"method", SSLC_ARG_CHOICE, &o->method, "contrastive method", "simclr|moco", 0, 0},
        {"moco-version", SSLC_ARG_INT, &o->moco_version, "MoCo recipe and head: 1, 2, or 3 (predictor, the batch as negatives, no queue)", NULL, 1, 3},
        {"symmetric", SSLC_ARG_FLAG, &o->symmetric, "MoCo: symmetric loss over both views (always with v3)", NULL, 0, 0},
        {"data", SSLC_ARG_STRING, &o->data, "images: fashion-mnist:train, folder:DIR, imagefolder:DIR, idx:FILE[,LABELS], manifest:FILE, or a path", NULL, 0, 0},
        {"strict", SSLC_ARG_FLAG, &o->strict, "decode every image before training: any bad file is an error (else bad images are skipped and counted)", NULL, 0, 0},
        {"knn-bank", SSLC_ARG_STRING, &o->knn_bank, "kNN monitor: labelled bank (auto: fashion-mnist:train#fit for Fashion-MNIST, else --data when labelled; none: off)", NULL, 0, 0},
        {"knn-val", SSLC_ARG_STRING, &o->knn_val, "kNN monitor (and best.h5): labelled validation set (auto: fashion-mnist:train#val for Fashion-MNIST; DATA#val holds out a sixth of DATA)", NULL, 0, 0},
        {"knn-every", SSLC_ARG_INT, &o->knn_every, "kNN monitor every N epochs (0: at the end only)", NULL, 0, 1000000},
        {"knn-k", SSLC_ARG_INT, &o->knn_k, "kNN neighbours", NULL, 1, 100000},
        {"knn-tau", SSLC_ARG_FLOAT, &o->knn_tau, "kNN vote temperature", NULL, 1e-4, 100},
        {"knn-bank-limit", SSLC_ARG_INT, &o->knn_bank_limit, "kNN bank: a random subset of N images (0: all)", NULL, 0, 1LL << 40},
        {"arch", SSLC_ARG_CHOICE, &o->arch, "encoder", "resnet18|resnet34|resnet50|vit-tiny|vit-small|vit-base", 0, 0},
        {"width", SSLC_ARG_INT, &o->width, "ResNet: encoder base width (64 = torchvision)", NULL, 1, 1024},
        {"cifar-stem", SSLC_ARG_FLAG, &o->cifar_stem, "ResNet: 3x3 stride-1 stem without max pool (small images)", NULL, 0, 0},
        {"patch", SSLC_ARG_INT, &o->patch, "ViT: patch size in pixels, dividing --size (auto: 4 up to 64 px views, else 16)", NULL, 1, 1024},
        {"pos-embed", SSLC_ARG_CHOICE, &o->pos_embed, "ViT: position embedding (sincos: MoCo v3's fixed 2-d table)", "learned|sincos", 0, 0},
        {"freeze-patch", SSLC_ARG_FLAG, &o->freeze_patch, "ViT: keep the patch projection at its random initialisation (MoCo v3's stability trick)", NULL, 0, 0},
        {"head", SSLC_ARG_STRING, &o->head, "projector layers, e.g. linear-nobias:512,bn,relu,linear:128 (auto: the method's)", NULL, 0, 0},
        {"proj-hidden", SSLC_ARG_INT, &o->proj_hidden, "projector hidden width (auto: the feature width; MoCo v3 twice it, as 4096 for ResNet-50's 2048)", NULL, 1, 1 << 20},
        {"proj-dim", SSLC_ARG_INT, &o->proj_dim, "projection dimension (auto: 128; MoCo v3 256, at most --proj-hidden)", NULL, 1, 1 << 20},
        {"proj-layers", SSLC_ARG_INT, &o->proj_layers, "projector Linear layers: 2, or 3 as SimCLRv2 and the MoCo v3 paper (auto: 2; MoCo v3 3)", NULL, 2, 3},
        {"pred-hidden", SSLC_ARG_INT, &o->pred_hidden, "MoCo v3: predictor hidden width (auto: --proj-hidden)", NULL, 1, 1 << 20},
        {"proj-bn", SSLC_ARG_FLAG, &o->proj_bn, "SimCLR: batch norm on the projector output", NULL, 0, 0},
        {"recipe", SSLC_ARG_STRING, &o->recipe, "augmentation recipe: simclr, moco-v1, moco-v2 (auto: the method's)", NULL, 0, 0},
        {"size", SSLC_ARG_INT, &o->size, "view size in pixels (auto: the dataset's image size)", NULL, 8, 4096},
        {"global-crops", SSLC_ARG_INT, &o->global_crops, "multi-crop: full-size views per image (2 only, for now)", NULL, 1, 16},
        {"local-crops", SSLC_ARG_INT, &o->local_crops, "multi-crop (SwAV): small views per image besides the 2 global ones, extra positives (0: off)", NULL, 0, 14},
        {"local-size", SSLC_ARG_INT, &o->local_size, "multi-crop: local view size in pixels (auto: size * 96/224, at least 8)", NULL, 4, 4096},
        {"local-scale", SSLC_ARG_STRING, &o->local_scale, "multi-crop: local crop area fractions MIN,MAX (auto: 0.1,0.4 for views <= 64 px, else SwAV's 0.05,0.14)", NULL, 0, 0},
        {"batch", SSLC_ARG_INT, &o->batch, "pairs of views per step, over every process (mpirun: split over the ranks)", NULL, 2, 1 << 20},
        {"bn-groups", SSLC_ARG_INT, &o->bn_groups, "batch-norm groups of each process's batch (each with its own statistics; what N ranks compute, on one)", NULL, 1, 1 << 20},
        {"chunk", SSLC_ARG_INT, &o->chunk, "large batches in little memory: go through the encoder this many query images at a time, batch norm per chunk, exact gradients (0: off)", NULL, 0, 1 << 24},
        {"sync-bn", SSLC_ARG_FLAG, &o->sync_bn, "mpirun: batch-norm statistics over every rank's batch (else each rank's own)", NULL, 0, 0},
        {"epochs", SSLC_ARG_INT, &o->epochs, "epochs (the schedule's length)", NULL, 1, 1000000},
        {"minutes", SSLC_ARG_FLOAT, &o->minutes, "time budget: stop after this many minutes, schedule fitted to it (0: off)", NULL, 0, 1e6},
        {"max-steps", SSLC_ARG_INT, &o->max_steps, "stop after this many steps (0: off)", NULL, 0, 1LL << 40},
        {"optimizer", SSLC_ARG_STRING, &o->optimizer, "sgd, lars or adamw (auto: lars for SimCLR and MoCo v3, sgd for MoCo v1/v2)", NULL, 0, 0},
        {"lr", SSLC_ARG_FLOAT, &o->lr, "base learning rate before scaling (auto: SimCLR 1.0 for views <= 64 px, else 0.3; MoCo 0.03; MoCo v3 0.6; AdamW 1e-3)", NULL, 0, 100},
        {"lr-scaling", SSLC_ARG_CHOICE, &o->lr_scaling, "peak lr = base * B/256 (linear), base * sqrt(B) (sqrt), or base", "linear|sqrt|none", 0, 0},
        {"final-lr", SSLC_ARG_FLOAT, &o->final_lr, "learning rate at the end of the cosine", NULL, 0, 100},
        {"warmup", SSLC_ARG_FLOAT, &o->warmup, "linear warmup, a fraction of the schedule (auto: 0.1 SimCLR and MoCo v3, 0 MoCo v1/v2)", NULL, 0, 1},
        {"weight-decay", SSLC_ARG_FLOAT, &o->weight_decay, "weight decay (auto: LARS 1e-4 for views <= 64 px, else 1e-6; SGD 5e-4 below 200k images, else 1e-4; AdamW 0.05)", NULL, 0, 1},
        {"momentum", SSLC_ARG_FLOAT, &o->momentum, "optimizer momentum", NULL, 0, 0.9999},
        {"nesterov", SSLC_ARG_FLAG, &o->nesterov, "Nesterov momentum", NULL, 0, 0},
        {"tau", SSLC_ARG_FLOAT, &o->tau, "temperature (auto: 0.5 SimCLR, 0.07 MoCo v1, 0.2 MoCo v2; MoCo v3 0.2 for views <= 64 px, else the paper's ResNet 1.0)", NULL, 1e-4, 100},
        {"queue", SSLC_ARG_INT, &o->queue, "MoCo v1/v2 queue size K (auto: 4096 below 200k images, else 65536)", NULL, 1, 1 << 24},
        {"moco-m", SSLC_ARG_FLOAT, &o->moco_m, "MoCo key-encoder momentum (auto: 0.99 below 200k images, else 0.999; MoCo v3 0.99)", NULL, 0, 1},
        {"moco-m-cosine", SSLC_ARG_FLAG, &o->moco_m_cosine, "ramp the momentum to 1 with a half cosine over the schedule (default with MoCo v3; --no-moco-m-cosine: off)", NULL, 0, 0},
        {"shuffle-groups", SSLC_ARG_INT, &o->shuffle_groups, "MoCo shuffle-BN: key batch-norm groups over every process (1: off; auto: 8; MoCo v3: 2, one per view, unshuffled)", NULL, 1, 1024},
        {"seed", SSLC_ARG_INT, &o->seed, "random seed (init, data order, augmentation)", NULL, 0, 1LL << 62},
        {"threads", SSLC_ARG_INT, &o->threads, "threads (0: all cores)", NULL, 0, 1024},
        {"async", SSLC_ARG_FLAG, &o->async, "make the next batch while training on this one", NULL, 0, 0},
        {"fixed-batch", SSLC_ARG_FLAG, &o->fixed_batch, "benchmarks: augment one batch, train on it every step", NULL, 0, 0},
        {"profile", SSLC_ARG_FLAG, &o->profile, "at the end, the seconds per step of each phase (data wait, momentum update, key forward, forward, loss, backward, gradient sums, optimizer)", NULL, 0, 0},
        {"out", SSLC_ARG_STRING, &o->out, "run folder: checkpoints, metrics.jsonl, config.txt", NULL, 0, 0},
        {"log-every", SSLC_ARG_INT, &o->log_every, "metrics (and plain progress lines) every N steps", NULL, 1, 1 << 30},
        {"ckpt-every", SSLC_ARG_INT, &o->ckpt_every, "checkpoint every N steps (0: every epoch)", NULL, 0, 1LL << 40},
        {"keep", SSLC_ARG_INT, &o->keep, "numbered checkpoints kept (plus last.h5 and best.h5)", NULL, 0, 1 << 20},
        {"resume", SSLC_ARG_STRING, &o->resume, "continue a run: its folder or a checkpoint", NULL, 0, 0},
    };
    size_t n = sizeof list / sizeof list[0];
    memcpy(a, list, sizeof list);
    return n + sslc_recipe_args(a + n, MAX_ARGS - n, &o->aug);
}

static void defaults(options *o)
{
    *o = (options){
        .method = "simclr", .data = "fashion-mnist:train", .knn_bank = "auto", .knn_val = "auto",
        .arch = "resnet18", .recipe = "auto", .optimizer = "auto", .lr_scaling = "linear",
        .out = "runs/pretrain", .resume = "", .head = "auto", .moco_version = 2, .width = 32,
        .patch = SSLC_ARG_AUTO, .pos_embed = "learned",
        .global_crops = 2, .local_crops = 0, .local_size = SSLC_ARG_AUTO, .local_scale = "auto",
        .proj_hidden = SSLC_ARG_AUTO, .proj_dim = SSLC_ARG_AUTO, .proj_layers = SSLC_ARG_AUTO,
        .pred_hidden = SSLC_ARG_AUTO, .size = SSLC_ARG_AUTO, .batch = 256,
        .epochs = 10, .queue = SSLC_ARG_AUTO, .shuffle_groups = SSLC_ARG_AUTO, .bn_groups = 1, .log_every = 20, .keep = 3,
        .knn_every = 1, .knn_k = 200, .minutes = 0, .lr = NAN, .final_lr = 0,
        .warmup = NAN, .weight_decay = NAN, .momentum = 0.9, .tau = NAN, .moco_m = NAN,
        .knn_tau = 0.1, .cifar_stem = true, .async = true};
    sslc_recipe_overrides_init(&o->aug);
}

// Splits stored "--name=value" lines into argv entries (skipping --resume).
static int stored_argv(char *text, char **argv, int cap)
{
    int n = 1;
    argv[0] = "pretrain";
    for (char *line = strtok(text, "\n"); line && n < cap; line = strtok(NULL, "\n")) {
        while (*line == ' ')
            line++;
        if (strncmp(line, "--", 2) == 0 && strncmp(line, "--resume=", 9) != 0)
            argv[n++] = line;
    }
    return n;
}

// Multi-crop's options: refuses what is not built, fills the automatic
// size and scale (written back, so config.txt and a resume rebuild the same
// local views) and the local views' recipe.
static sslc_status resolve_multicrop(options *o, const sslc_recipe *recipe, sslc_recipe *local,
                                     char *scale_text, size_t cap)
{
    if (o->global_crops != 2)
        return sslc_error(SSLC_ERR_INVALID, "--global-crops %lld: only 2 global views per image "
                                            "are supported (add small views with --local-crops)",
                          (long long)o->global_crops);
    if (o->local_size == SSLC_ARG_AUTO) { // SwAV: 96 px local views beside 224 px global ones
        o->local_size = (int64_t)((double)o->size * 96.0 / 224.0 + 0.5);
        if (o->local_size < 8)
            o->local_size = 8;
    }
    double lo = 0.1, hi = 0.4; // small images: local crops near their native resolution
    if (!strcmp(o->local_scale, "auto")) {
        if (o->size > 64)
            lo = 0.05, hi = 0.14; // SwAV (Caron et al. 2020): (0.05, 0.14) at 96 px
    } else {
        char extra;
        if (sscanf(o->local_scale, "%lf,%lf%c", &lo, &hi, &extra) != 2)
            return sslc_error(SSLC_ERR_INVALID, "--local-scale '%s': give two area fractions "
                                                "MIN,MAX, e.g. 0.1,0.4",
                              o->local_scale);
    }
    snprintf(scale_text, cap, "%g,%g", lo, hi);
    o->local_scale = scale_text;
    sscanf(scale_text, "%lf,%lf", &lo, &hi); // the values config.txt keeps, for a resume
    if (o->local_crops > 0 && o->local_size >= o->size)
        sslc_warn("--local-size %lld is not smaller than the %lld px global views",
                  (long long)o->local_size, (long long)o->size);
    return o->local_crops > 0 ? sslc_recipe_local(local, recipe, o->local_size, lo, hi) : SSLC_OK;
}

int sslc_cmd_pretrain(int argc, char **argv)
{
    static const sslc_command_help help = {
        "pretrain", "sslc pretrain [options]",
        "Contrastive pretraining of a ResNet encoder on unlabeled images: SimCLR (NT-Xent\n"
        "over the batch) or MoCo (InfoNCE against a queue of momentum-encoder keys; v3:\n"
        "a predictor, the batch's keys as negatives, no queue).\n"
        "Defaults pretrain SimCLR on Fashion-MNIST (Debian's dataset-fashion-mnist).\n"
        "Options marked auto follow the method's published recipe. Ctrl-C saves a\n"
        "checkpoint; --resume RUN continues exactly where the run stopped."};
    options o;
    defaults(&o);
    sslc_arg args[MAX_ARGS];
    size_t n_args = make_args(args, &o);
    int st = sslc_args_parse(&help, args, n_args, argc, argv, NULL, 0, NULL);
    if (st == SSLC_ARGS_HELP)
        return 0;
    if (st)
        return sslc_cli_fail("pretrain", st);
    // MoCo v3 ramps the momentum by default (the official --moco-m-cos): a
    // flag's default cannot depend on another option, so the command line
    // is read again over that default. (A resumed run's stored
    // configuration states it.)
    if (!o.resume[0] && !strcmp(o.method, "moco") && o.moco_version == 3) {
        defaults(&o);
        o.moco_m_cosine = true;
        if ((st = sslc_args_parse(&help, args, n_args, argc, argv, NULL, 0, NULL)))
            return sslc_cli_fail("pretrain", st);
    }

    // Resuming: the stored configuration first, then this command line on top.
    char resume_path[4096] = "";
    sslc_ckpt_info info = {0};
    char *stored = NULL;
    sslc_dataset *ds = NULL, *bank = NULL, *val = NULL;
    sslc_pretrain_config cfg = {0};
    sslc_recipe recipe, eval_recipe, local_recipe;
    char head[256], predictor[256], local_scale[64], *config_text = NULL;
    if (o.resume[0]) {
        if ((st = sslc_ckpt_resolve(o.resume, resume_path, sizeof resume_path)) ||
            (st = sslc_ckpt_read_info(resume_path, &info)))
            return sslc_cli_fail("pretrain", st);
        stored = strdup(info.config);
        char *sargv[MAX_STORED];
        int sargc = stored_argv(stored, sargv, MAX_STORED);
        const char *resume = o.resume;
        defaults(&o);
        if ((st = sslc_args_parse(&help, args, n_args, sargc, sargv, NULL, 0, NULL)) ||
            (st = sslc_args_parse(&help, args, n_args, argc, argv, NULL, 0, NULL))) {
            st = sslc_error_prefix(SSLC_ERR_INVALID, "resuming %s", resume_path);
            goto done;
        }
        o.resume = resume;
    }
    sslc_set_threads((int)o.threads);
    bool moco = strcmp(o.method, "moco") == 0, v3 = moco && o.moco_version == 3;
    if (v3) // its loss is symmetric by definition
        o.symmetric = true;

    // ---- resolve every "auto" before any work ----
    if ((st = sslc_cli_open_dataset(&ds, o.data, 0, o.strict)))
        goto done;
    int channels = sslc_dataset_channels(ds);
    if (o.size == SSLC_ARG_AUTO) {
        int64_t h, w;
        sslc_dataset_dims(ds, 0, &h, &w);
        o.size = h < w ? h : w;
    }
    if (!strcmp(o.recipe, "auto"))
        o.recipe = moco ? (o.moco_version == 1 ? "moco-v1" : "moco-v2") : "simclr";
    if ((st = sslc_recipe_defaults(&recipe, o.recipe, o.size, channels)) ||
        (st = sslc_recipe_overrides_apply(&recipe, &o.aug)))
        goto done;
    sslc_recipe_overrides_resolve(&o.aug, &recipe);
    if ((st = resolve_multicrop(&o, &recipe, &local_recipe, local_scale, sizeof local_scale)))
        goto done;
    if ((st = sslc_recipe_defaults(&eval_recipe, "eval", o.size, channels)))
        goto done;
    memcpy(eval_recipe.mean, recipe.mean, sizeof recipe.mean);
    memcpy(eval_recipe.std, recipe.std, sizeof recipe.std);
    eval_recipe.eval_resize = o.size; // small images: no resize margin before the center crop
    if ((st = sslc_recipe_finalize(&eval_recipe)))
        goto done;
    if (!strcmp(o.optimizer, "auto"))
        o.optimizer = moco && !v3 ? "sgd" : "lars";
    sslc_optim_kind kind;
    if ((st = sslc_optim_kind_parse(&kind, o.optimizer)))
        goto done;
    // Published settings. SimCLR: ImageNet lr 0.3, weight decay 1e-6; its
    // CIFAR-10 setup (small views, as the recipe's) lr 1.0, weight decay 1e-4.
    // MoCo: ImageNet weight decay 1e-4 with K 65536 and m 0.999; the official
    // CIFAR demo 5e-4 with K 4096 and m 0.99 (small datasets). MoCo v3
    // (ResNet-50, official main_moco.py): LARS, lr 0.6 x B/256, weight decay
    // 1e-6, 10 of 100 epochs warmup, m 0.99 ramped to 1, tau 1.0 (ViT: 0.2);
    // small views take the LARS weight decay of SimCLR's CIFAR setup and
    // tau 0.2 (docs/training.md).
    bool small = o.size <= 64, big = sslc_dataset_count(ds) >= 200000;
    if (isnan(o.lr))
        o.lr = kind == SSLC_OPTIM_ADAMW ? 1e-3 : v3 ? 0.6 : moco ? 0.03 : small ? 1.0 : 0.3;
    if (isnan(o.weight_decay))
        o.weight_decay = kind == SSLC_OPTIM_ADAMW ? 0.05
                         : kind == SSLC_OPTIM_LARS ? (small ? 1e-4 : 1e-6)
                         : big                     ? 1e-4
                                                   : 5e-4;
    if (isnan(o.warmup))
        o.warmup = moco && !v3 ? 0.0 : 0.1;
    if (isnan(o.tau))
        o.tau = v3 ? (small ? 0.2 : 1.0) : moco ? (o.moco_version == 1 ? 0.07 : 0.2) : 0.5;
    if (o.queue == SSLC_ARG_AUTO)
        o.queue = big ? 65536 : 4096;
    if (isnan(o.moco_m))
        o.moco_m = big && !v3 ? 0.999 : 0.99;
    if (o.shuffle_groups == SSLC_ARG_AUTO) // v3: the keys' BN statistics per view
        o.shuffle_groups = v3 ? 2 : 8;
    if (o.proj_layers == SSLC_ARG_AUTO)
        o.proj_layers = v3 ? 3 : 2;
    if (o.patch == SSLC_ARG_AUTO) // ViT: 16 px patches at 224 px, 4 for 28-32 px images
        o.patch = o.size <= 64 ? 4 : 16;
    sslc_encoder_config enc = {
        .resnet = {.in_channels = channels, .width = o.width, .cifar_stem = o.cifar_stem},
        .vit = {.in_channels = channels, .patch = o.patch, .image_size = o.size,
                .pos = strcmp(o.pos_embed, "sincos") ? SSLC_VIT_POS_LEARNED : SSLC_VIT_POS_SINCOS,
                .frozen_patch = o.freeze_patch}};
    if ((st = sslc_encoder_parse_arch(&enc, o.arch)))
        goto done;
    const bool vit = enc.kind == SSLC_ENCODER_VIT;
    if (!vit && o.freeze_patch) {
        st = sslc_error(SSLC_ERR_INVALID, "--freeze-patch freezes a ViT's patch projection: it "
                                          "needs --arch vit-tiny, vit-small or vit-base");
        goto done;
    }
    if (vit && o.size % o.patch) {
        st = sslc_error(SSLC_ERR_INVALID, "--patch %lld does not divide the %lld px views: choose "
                                          "a --patch that does (or --size)",
                        (long long)o.patch, (long long)o.size);
        goto done;
    }
    if (vit && o.local_crops > 0) {
        st = sslc_error(SSLC_ERR_INVALID, "--local-crops needs an encoder that takes two view "
                                          "sizes; a ViT takes only --size: drop --local-crops");
        goto done;
    }
    int64_t feature_dim = vit ? enc.vit.hidden : (enc.resnet.depth == 50 ? 32 : 8) * o.width;
    if (o.proj_hidden == SSLC_ARG_AUTO) // MoCo v3: 4096 after ResNet-50's 2048 features
        o.proj_hidden = v3 ? 2 * feature_dim : feature_dim;
    if (o.pred_hidden == SSLC_ARG_AUTO) // MoCo v3: 4096, as the projector's
        o.pred_hidden = o.proj_hidden;
    if (o.proj_dim == SSLC_ARG_AUTO) // MoCo v3: 256, never wider than the hidden layers
        o.proj_dim = v3 ? (o.proj_hidden < 256 ? o.proj_hidden : 256) : 128;
    if (v3 && (st = sslc_mlp_head_spec(predictor, sizeof predictor, "moco-v3", o.pred_hidden,
                                       o.proj_dim, false, 2)))
        goto done;
    if (!strcmp(o.head, "auto")) {
        const char *kind_name = v3 ? "moco-v3" : moco ? (o.moco_version == 1 ? "moco-v1" : "moco-v2")
                                                      : "simclr";
        if ((st = sslc_mlp_head_spec(head, sizeof head, kind_name, o.proj_hidden, o.proj_dim,
                                     o.proj_bn, (int)o.proj_layers)))
            goto done;
        o.head = head;
    }
    // Fashion-MNIST's monitor is judged on the validation split, never on
    // the test set; its bank is the rest of the training images.
    const bool fashion = !strcmp(o.data, "fashion-mnist:train");
    if (!strcmp(o.knn_bank, "auto"))
        o.knn_bank = fashion ? "fashion-mnist:train#fit"
                             : (sslc_dataset_num_classes(ds) > 0 ? o.data : "none");
    if (!strcmp(o.knn_val, "auto"))
        o.knn_val = fashion ? "fashion-mnist:train#val" : "none";
    if (strcmp(o.knn_bank, "none") && strcmp(o.knn_val, "none")) {
        if ((st = sslc_cli_open_dataset(&bank, o.knn_bank, channels, o.strict)) ||
            (st = sslc_cli_open_dataset(&val, o.knn_val, channels, o.strict)))
            goto done;
        if (sslc_dataset_num_classes(bank) == 0 || sslc_dataset_num_classes(val) == 0) {
            st = sslc_error(SSLC_ERR_INVALID, "the kNN monitor needs labelled --knn-bank and "
                                              "--knn-val (or --knn-bank=none)");
            goto done;
        }
    }
    sslc_lr_scaling scaling;
    if ((st = sslc_lr_scaling_parse(&scaling, o.lr_scaling)))
        goto done;
    int64_t keys_per_step = o.symmetric ? 2 * o.batch : o.batch;
    if (moco && !v3 && o.queue < keys_per_step) {
        // Each step enqueues every key of its batch: a smaller queue keeps
        // only the newest of them, and holds no key of any earlier batch.
        st = sslc_error(SSLC_ERR_INVALID,
                        "--queue %lld is smaller than the %lld keys each step adds (--batch %lld%s): "
                        "the queue would hold only the newest keys of the last batch; use "
                        "--queue %lld or more (the papers: 65536, 4096 on CIFAR)",
                        (long long)o.queue, (long long)keys_per_step, (long long)o.batch,
                        o.symmetric ? ", both views with --symmetric" : "",
                        (long long)keys_per_step);
        goto done;
    }
    if (o.batch > sslc_dataset_count(ds)) {
        st = sslc_error(SSLC_ERR_INVALID, "--batch %lld is larger than the dataset (%lld images)",
                        (long long)o.batch, (long long)sslc_dataset_count(ds));
        goto done;
    }

    if (!(config_text = sslc_args_format(args, n_args))) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    sslc_args_print_verbose("pretrain", config_text);
    char budget[64] = "";
    if (o.minutes > 0)
        snprintf(budget, sizeof budget, "%g min or ", o.minutes);
    if (o.max_steps > 0)
        snprintf(budget, sizeof budget, "%lld steps or ", (long long)o.max_steps);
    char shape[64];
    if (vit)
        snprintf(shape, sizeof shape, "patch %lld%s, %s position embedding", (long long)o.patch,
                 o.freeze_patch ? " (frozen)" : "", o.pos_embed);
    else
        snprintf(shape, sizeof shape, "width %lld", (long long)o.width);
    sslc_info("pretrain: %s%s on %s (%lld images, %lld px views), %s %s, batch %lld, "
              "%s%lld epochs; run folder %s (config.txt: every option)",
              moco ? "MoCo v" : "SimCLR", moco ? (o.moco_version == 1 ? "1" : v3 ? "3" : "2") : "", o.data,
              (long long)sslc_dataset_count(ds), (long long)o.size, o.arch, shape,
              (long long)o.batch, budget, (long long)o.epochs, o.out);

    sslc_optim_config oc = sslc_optim_defaults(kind);
    oc.momentum = (float)o.momentum;
    oc.nesterov = o.nesterov;
    oc.weight_decay = (float)o.weight_decay;
    cfg = (sslc_pretrain_config){
        .method = o.method, .moco_version = o.moco_version, .symmetric = o.symmetric,
        .predictor = v3 ? predictor : NULL,
        .encoder = enc, .head = o.head, .batch = o.batch, .epochs = o.epochs,
        .minutes = o.minutes, .max_steps = o.max_steps, .optim = oc,
        .lr = sslc_schedule_scale_lr(o.lr, o.batch, scaling), .final_lr = o.final_lr,
        .warmup = o.warmup, .tau = o.tau, .queue = o.queue, .momentum = o.moco_m,
        .momentum_cosine = o.moco_m_cosine, .shuffle_groups = o.shuffle_groups,
        .bn_groups = o.bn_groups, .chunk = o.chunk, .sync_bn = o.sync_bn,
        .local_crops = o.local_crops, .local_recipe = o.local_crops > 0 ? &local_recipe : NULL,
        .seed = (uint64_t)o.seed, .async_data = o.async, .fixed_batch = o.fixed_batch, .out = o.out,
        .resume = o.resume[0] ? resume_path : NULL, .log_every = o.log_every,
        .ckpt_every = o.ckpt_every, .keep = o.keep, .config_text = config_text,
        .knn_bank = bank, .knn_val = val, .knn_every = o.knn_every, .knn_k = o.knn_k,
        .knn_bank_limit = o.knn_bank_limit, .knn_tau = o.knn_tau, .eval_recipe = &eval_recipe,
        .image_size = o.size};
    sslc_pretrain_result res;
    sslc_phases_enable(o.profile);
    st = sslc_pretrain(&cfg, ds, &recipe, &res);
    if (sslc_dist_rank() == 0)
        sslc_phases_report();
    if ((!st || st == SSLC_ERR_INTERRUPTED) && sslc_dist_rank() == 0) {
        printf("pretrain %s: %lld steps (%lld epochs) in %.1f s, %.1f pairs/s, data wait %.1f%%, ",
               o.method, (long long)res.steps, (long long)res.epochs, res.seconds,
               res.pairs_per_s, 100.0 * res.data_wait_fraction);
        if (sslc_dist_size() > 1)
            printf("waiting in collectives %.1f%% (%d ranks), ", 100.0 * res.comm_wait_fraction,
                   sslc_dist_size());
        printf("peak RSS %.0f MiB\n", sslc_peak_rss_mib());
        printf("loss %.4f -> %.4f", res.first_loss, res.last_loss);
        if (res.knn_top1 >= 0)
            printf(", kNN top-1 %.2f%% (best %.2f%%)", 100.0 * res.knn_top1,
                   100.0 * res.best_knn_top1);
        if (res.knn_initial >= 0)
            printf("; the same encoder at initialisation: %.2f%%", 100.0 * res.knn_initial);
        printf("\ncheckpoint: %s/last.h5\n", o.out);
    }
done:
    sslc_dataset_destroy(ds);
    sslc_dataset_destroy(bank);
    sslc_dataset_destroy(val);
    free(config_text);
    free(stored);
    sslc_ckpt_info_free(&info);
    return st ? sslc_cli_fail("pretrain", st) : 0;
}
