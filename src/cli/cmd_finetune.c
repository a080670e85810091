// sslc finetune and sslc supervised: encoder + linear classifier trained on
// a labelled subset, from a pretrained encoder or from scratch.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/cli/eval_common.h"
#include "src/cli/recipe_args.h"
#include "src/core/fs.h"
#include "src/core/log.h"
#include "src/core/threads.h"
#include "src/eval/adapter.h"
#include "src/eval/encoder.h"
#include "src/eval/features.h"
#include "src/eval/metrics.h"
#include "src/optim/schedule.h"
#include "src/train/finetune.h"

typedef struct options {
    const char *pos_embed;
    int64_t patch;
    const char *ckpt, *arch, *mode, *head_init, *out, *results, *name, *lr_scaling, *lora_targets,
        *prompt_depth;
    sslc_cli_labels labels;
    int64_t width, seed, batch, epochs, max_steps, threads, log_every, eval_batch, head_layer;
    int64_t lora_rank, prompts;
    double minutes, lr, weight_decay, momentum, warmup_epochs, lora_alpha;
    bool cifar_stem, nesterov;
    sslc_recipe_overrides aug;
} options;

enum { MAX_ARGS = 96 };

static size_t make_args(sslc_arg *a, options *o, bool supervised)
{
    const sslc_arg common[] = {
        {"seed", SSLC_ARG_INT, &o->seed, "seed of the subset, initialisation, order and augmentation", NULL, 0, 1LL << 62},
        {"batch", SSLC_ARG_INT, &o->batch, "images per step", NULL, 2, 1 << 20},
        {"epochs", SSLC_ARG_INT, &o->epochs, "epochs over the subset (auto: about 150k images, 15 to 200 epochs)", NULL, 1, 1000000},
        {"minutes", SSLC_ARG_FLOAT, &o->minutes, "time budget: stop after this many minutes, schedule fitted to it (0: off)", NULL, 0, 1e6},
        {"max-steps", SSLC_ARG_INT, &o->max_steps, "stop after this many steps (0: off)", NULL, 0, 1LL << 40},
        {"lr", SSLC_ARG_FLOAT, &o->lr, "base learning rate before scaling (auto: 0.1 supervised, 0.05 fine-tuning)", NULL, 0, 100},
        {"lr-scaling", SSLC_ARG_CHOICE, &o->lr_scaling, "peak lr = base * B/256 (linear), base * sqrt(B) (sqrt), or base", "linear|sqrt|none", 0, 0},
        {"warmup-epochs", SSLC_ARG_FLOAT, &o->warmup_epochs, "linear warmup (auto: 5% of the epochs supervised, 0 fine-tuning)", NULL, 0, 1e6},
        {"weight-decay", SSLC_ARG_FLOAT, &o->weight_decay, "weight decay on weights (auto: 5e-4 supervised, 0 fine-tuning as SimCLR)", NULL, 0, 1},
        {"momentum", SSLC_ARG_FLOAT, &o->momentum, "SGD momentum", NULL, 0, 0.9999},
        {"nesterov", SSLC_ARG_FLAG, &o->nesterov, "Nesterov momentum", NULL, 0, 0},
        {"eval-batch", SSLC_ARG_INT, &o->eval_batch, "test-set batch", NULL, 1, 1 << 20},
        {"threads", SSLC_ARG_INT, &o->threads, "threads (0: all cores)", NULL, 0, 1024},
        {"log-every", SSLC_ARG_INT, &o->log_every, "plain progress lines every N steps", NULL, 1, 1 << 30},
        {"out", SSLC_ARG_STRING, &o->out, "folder for model.h5 (encoder + classifier), adapter.h5 (modes other than full), metrics.json, confusion.csv (empty: none)", NULL, 0, 0},
        {"results", SSLC_ARG_STRING, &o->results, "append a JSON line with the result to this file", NULL, 0, 0},
        {"name", SSLC_ARG_STRING, &o->name, "a label for this result in --results", NULL, 0, 0},
    };
    const sslc_arg finetune[] = {
        {"ckpt", SSLC_ARG_STRING, &o->ckpt, "pretrained encoder: checkpoint file or run folder", NULL, 0, 0},
        {"mode", SSLC_ARG_CHOICE, &o->mode, "what trains besides the classifier: everything, nothing (linear probe, encoder in eval mode), batch-norm affine, biases (BitFit), LoRA adapters, visual prompts (ViT)", "full|linear|bn-head|bias|lora|prompt", 0, 0},
        {"lora-rank", SSLC_ARG_INT, &o->lora_rank, "LoRA rank r (--mode lora; auto: 4)", NULL, 1, 4096},
        {"lora-alpha", SSLC_ARG_FLOAT, &o->lora_alpha, "LoRA alpha: the update is (alpha / r) B A (--mode lora; auto: r, a scale of 1)", NULL, 1e-9, 1e9},
        {"lora-targets", SSLC_ARG_STRING, &o->lora_targets, "LoRA on these layers, comma-separated: all (ResNet: every convolution; ViT: attention and MLP of every block), 3x3, 1x1 (ResNet), attn, mlp (ViT), or layer-name prefixes (layer3,layer4; encoder.layers.encoder_layer_11) (--mode lora; auto: all)", NULL, 0, 0},
        {"prompts", SSLC_ARG_INT, &o->prompts, "visual prompt tokens after the class token (--mode prompt, ViT; auto: 10)", NULL, 1, 4096},
        {"prompt-depth", SSLC_ARG_CHOICE, &o->prompt_depth, "prompts at the input only (shallow) or a set per block (deep, VPT-deep) (--mode prompt)", "shallow|deep", 0, 0},
        {"head-init", SSLC_ARG_CHOICE, &o->head_init, "classifier initialisation (zero: SimCLR's fine-tuning)", "zero|default", 0, 0},
        {"from-head-layer", SSLC_ARG_INT, &o->head_layer, "keep the first K projection-head layers under the classifier (SimCLRv2; 0: the encoder's features)", NULL, 0, 8},
    };
    const sslc_arg scratch[] = {
        {"arch", SSLC_ARG_CHOICE, &o->arch, "encoder", "resnet18|resnet34|resnet50|vit-tiny|vit-small|vit-base", 0, 0},
        {"width", SSLC_ARG_INT, &o->width, "ResNet: encoder base width (64 = torchvision)", NULL, 1, 1024},
        {"cifar-stem", SSLC_ARG_FLAG, &o->cifar_stem, "ResNet: 3x3 stride-1 stem without max pool (small images)", NULL, 0, 0},
        {"patch", SSLC_ARG_INT, &o->patch, "ViT: patch size in pixels, dividing the image size (auto: 4 up to 64 px images, else 16)", NULL, 1, 1024},
        {"pos-embed", SSLC_ARG_CHOICE, &o->pos_embed, "ViT: position embedding", "learned|sincos", 0, 0},
    };
    size_t n = 0;
    if (supervised) {
        memcpy(a, scratch, sizeof scratch);
        n = sizeof scratch / sizeof scratch[0];
    } else {
        memcpy(a, finetune, sizeof finetune);
        n = sizeof finetune / sizeof finetune[0];
    }
    n += sslc_cli_label_args(a + n, &o->labels);
    memcpy(a + n, common, sizeof common);
    n += sizeof common / sizeof common[0];
    return n + sslc_recipe_args(a + n, MAX_ARGS - n, &o->aug);
}

// The classifier: a Linear on the encoder's features, or (head_layer K >
// 0, SimCLRv2) the first K layers of the checkpoint's projection head with
// their pretrained weights, then the Linear. zero: the Linear starts at zero
// (SimCLR's fine-tuning), else PyTorch's default initialisation.
static sslc_status classifier_create(sslc_mlp *head, const sslc_encoder *enc, const char *ckpt,
                                     int head_layer, int64_t classes, uint64_t seed, bool zero)
{
    sslc_mlp proj = {0};
    char spec[512] = "";
    int kept = 0;
    sslc_status st = SSLC_OK;
    if (head_layer > 0) {
        if ((st = sslc_projector_load(&proj, ckpt, enc->feature_dim)))
            goto done;
        kept = sslc_mlp_block_end(&proj, head_layer);
        if (kept < 0) {
            st = sslc_error(SSLC_ERR_INVALID, "--from-head-layer %d: the projection head of %s "
                                              "has fewer Linear layers",
                            head_layer, ckpt);
            goto done;
        }
        if ((st = sslc_mlp_spec(spec, sizeof spec - 32, &proj, kept)))
            goto done;
    }
    size_t n = strlen(spec);
    snprintf(spec + n, sizeof spec - n, "%slinear:%lld", n ? "," : "", (long long)classes);
    if ((st = sslc_mlp_create(head, enc->feature_dim, spec)))
        goto done;
    sslc_mlp_init(head, seed);
    const sslc_mlp_layer *last = &head->layers[head->n_layers - 1];
    if (zero) {
        memset(head->params.values + last->w, 0, (size_t)(last->out * last->in) * sizeof(float));
        memset(head->params.values + last->b, 0, (size_t)last->out * sizeof(float));
    }
    st = sslc_mlp_copy_layers(head, &proj, kept);
done:
    sslc_mlp_destroy(&proj);
    return st;
}

int sslc_cli_train_classifier(int argc, char **argv, bool supervised)
{
    static const sslc_command_help help_finetune = {
        "finetune", "sslc finetune --ckpt CKPT [options]",
        "Fine-tuning on a class-balanced labelled subset (SimCLR's semi-supervised\n"
        "protocol): the pretrained encoder and a new linear classifier trained together\n"
        "with softmax cross-entropy, SGD (Nesterov) and a cosine schedule, on crop + flip\n"
        "views (the 'supervised' recipe: random resized crop of area 0.5-1, flip).\n"
        "--mode linear trains only the classifier on the frozen encoder (eval mode);\n"
        "bn-head also the batch-norm weights and biases; bias only the biases (BitFit:\n"
        "ResNet convolutions have none, so the batch-norm biases); lora low-rank\n"
        "adapters (alpha / r) B A on the chosen convolutions (ViT: attention and MLP\n"
        "weights), B starting at zero; prompt (ViT only) N learned tokens after the\n"
        "class token, at the input or in every block (VPT), the encoder frozen. These\n"
        "modes write --out DIR/adapter.h5 beside model.h5: the changed tensors only, to\n"
        "use with --adapter on the base checkpoint (docs/evaluation.md).\n"
        "--from-head-layer K (SimCLRv2) fine-tunes from the middle of the projection head:\n"
        "its first K layers (Linear + BN + ReLU each) stay, and the classifier sits on them."};
    static const sslc_command_help help_supervised = {
        "supervised", "sslc supervised [options]",
        "The supervised baseline: the same encoder from random initialisation, trained\n"
        "with labels only (softmax cross-entropy, crop + flip views, SGD Nesterov with\n"
        "warmup + cosine) on a class-balanced labelled subset."};
    const char *cmd = supervised ? "supervised" : "finetune";
    options o = {.patch = SSLC_ARG_AUTO, .pos_embed = "learned", .ckpt = "", .arch = "resnet18", .mode = "full", .head_init = "zero", .out = "",
                 .results = "", .name = "", .lr_scaling = "linear",
                 .labels = SSLC_CLI_LABELS_DEFAULT, .width = 32, .seed = 0, .batch = 128,
                 .epochs = SSLC_ARG_AUTO, .max_steps = 0, .log_every = 20, .eval_batch = 512, .head_layer = 0,
                 .lora_rank = SSLC_ARG_AUTO, .lora_alpha = NAN, .lora_targets = "auto",
                 .prompts = SSLC_ARG_AUTO, .prompt_depth = "shallow",
                 .minutes = 0, .lr = NAN, .weight_decay = NAN, .momentum = 0.9,
                 .warmup_epochs = NAN, .cifar_stem = true, .nesterov = true};
    sslc_recipe_overrides_init(&o.aug);
    sslc_arg args[MAX_ARGS];
    size_t n_args = make_args(args, &o, supervised);
    int st = sslc_args_parse(supervised ? &help_supervised : &help_finetune, args, n_args, argc,
                             argv, NULL, 0, NULL);
    if (st == SSLC_ARGS_HELP)
        return 0;
    if (st)
        return sslc_cli_fail(cmd, st);
    const bool lora_given = o.lora_rank != SSLC_ARG_AUTO || !isnan(o.lora_alpha) ||
                            strcmp(o.lora_targets, "auto");
    if (!supervised && lora_given && strcmp(o.mode, "lora"))
        return sslc_cli_fail(cmd, sslc_error(SSLC_ERR_INVALID, "--lora-rank, --lora-alpha and "
                                                               "--lora-targets need --mode lora"));
    const bool prompt_given = o.prompts != SSLC_ARG_AUTO || strcmp(o.prompt_depth, "shallow");
    if (!supervised && prompt_given && strcmp(o.mode, "prompt"))
        return sslc_cli_fail(cmd, sslc_error(SSLC_ERR_INVALID, "--prompts and --prompt-depth need "
                                                               "--mode prompt"));
    sslc_set_threads((int)o.threads);
    sslc_dataset *train = NULL, *test = NULL;
    sslc_encoder enc = {0};
    sslc_lora lora = {0};
    sslc_mlp head = {0};
    sslc_subset subset = {0};
    sslc_metrics met = {0};
    float *scores = NULL;
    int64_t *labels = NULL;
    char *config_text = NULL;
    char method[64];
    const double start = sslc_now();

    sslc_cli_encoder_args ea = {supervised ? "random" : o.ckpt, o.arch, o.width, o.cifar_stem,
                                (uint64_t)o.seed, NULL, o.patch == SSLC_ARG_AUTO ? 0 : o.patch,
                                o.pos_embed, 0};
    int64_t size;
    if ((st = sslc_cli_setup(&train, &test, &enc, &size, method, sizeof method, &o.labels, &ea)))
        goto done;
    sslc_peft_mode mode = SSLC_PEFT_FULL;
    if (!supervised && (st = sslc_peft_mode_parse(&mode, o.mode)))
        goto done;
    // bn-head trains the batch norms: a ViT has none.
    if (enc.kind == SSLC_ENCODER_VIT && mode == SSLC_PEFT_BN_HEAD) {
        st = sslc_error(SSLC_ERR_INVALID, "--mode bn-head works on a ResNet's batch norms; this "
                                          "encoder is a ViT (%s): use --mode full, linear, bias, "
                                          "lora or prompt",
                        sslc_encoder_arch(&enc));
        goto done;
    }
    // The base's identity, before training changes it (adapter.h5).
    const uint64_t base_hash = sslc_adapter_base_hash(enc.params);
    if (mode == SSLC_PEFT_LORA) {
        if (o.lora_rank == SSLC_ARG_AUTO)
            o.lora_rank = 4;
        if (isnan(o.lora_alpha)) // scale 1: B A moves like a full-weight update
            o.lora_alpha = (double)o.lora_rank;
        if (!strcmp(o.lora_targets, "auto"))
            o.lora_targets = "all";
        if ((st = sslc_lora_create(&lora, enc.params, o.lora_rank, o.lora_alpha, o.lora_targets)))
            goto done;
        sslc_lora_init(&lora, (uint64_t)o.seed + 2);
    }
    if (mode == SSLC_PEFT_PROMPT) { // refused for a ResNet, with the reason
        if ((st = sslc_encoder_add_prompts(&enc, o.prompts == SSLC_ARG_AUTO ? 10 : o.prompts,
                                           !strcmp(o.prompt_depth, "deep"))))
            goto done;
        sslc_vit_init_prompts(&enc.net.vit, (uint64_t)o.seed + 3);
    }
    const int channels = sslc_dataset_channels(train);
    const int64_t classes = sslc_dataset_num_classes(train);
    if ((st = classifier_create(&head, &enc, supervised ? "" : o.ckpt, (int)o.head_layer, classes,
                                (uint64_t)o.seed + 1, !supervised && !strcmp(o.head_init, "zero"))))
        goto done;
    sslc_recipe recipe, eval_recipe;
    if ((st = sslc_cli_supervised_recipe(&recipe, size, channels)) ||
        (st = sslc_recipe_overrides_apply(&recipe, &o.aug)) ||
        (st = sslc_cli_eval_recipe(&eval_recipe, size, channels)))
        goto done;
    sslc_recipe_overrides_resolve(&o.aug, &recipe);
    memcpy(eval_recipe.mean, recipe.mean, sizeof recipe.mean);
    memcpy(eval_recipe.std, recipe.std, sizeof recipe.std);
    if ((o.out[0] && (st = sslc_make_dir(o.out, "output folder"))) ||
        (st = sslc_cli_subset(&subset, train, &o.labels, (uint64_t)o.seed, o.out)))
        goto done;
    // ---- resolve "auto" ----
    if (o.epochs == SSLC_ARG_AUTO) {
        int64_t e = (150000 + subset.n - 1) / subset.n;
        o.epochs = e < 15 ? 15 : (e > 200 ? 200 : e);
    }
    if (isnan(o.lr))
        o.lr = supervised ? 0.1 : 0.05;
    if (isnan(o.weight_decay))
        o.weight_decay = supervised ? 5e-4 : 0.0;
    if (isnan(o.warmup_epochs))
        o.warmup_epochs = supervised ? 0.05 * (double)o.epochs : 0.0;
    sslc_lr_scaling scaling;
    if ((st = sslc_lr_scaling_parse(&scaling, o.lr_scaling)))
        goto done;
    if (!(config_text = sslc_args_format(args, n_args))) {
        st = SSLC_ERR_NOMEM;
        goto done;
    }
    sslc_args_print_verbose(cmd, config_text);
    if (o.out[0] && (st = sslc_write_text(o.out, "config.txt", config_text)))
        goto done;
    char shape[64];
    sslc_info("%s: %s encoder (%s, %s), %lld labelled images, %lld classes, %lld epochs",
              cmd, method, sslc_encoder_arch(&enc), sslc_cli_encoder_shape(shape, sizeof shape, &enc),
              (long long)subset.n, (long long)classes, (long long)o.epochs);

    sslc_finetune_config fc = {
        .mode = mode, .lora = mode == SSLC_PEFT_LORA ? &lora : NULL, .batch = o.batch,
        .epochs = o.epochs, .minutes = o.minutes, .max_steps = o.max_steps,
        .lr = sslc_schedule_scale_lr(o.lr, o.batch < subset.n ? o.batch : subset.n, scaling),
        .warmup_epochs = o.warmup_epochs, .momentum = o.momentum, .nesterov = o.nesterov,
        .weight_decay = o.weight_decay, .seed = (uint64_t)o.seed, .log_every = o.log_every};
    sslc_finetune_result res;
    if ((st = sslc_finetune(&fc, &enc, &head, train, subset.indices, subset.n, &recipe, &res)))
        goto done;
    sslc_info("%s: %lld steps (%lld epochs) in %.1f s, %.0f images/s, loss %.4f -> %.4f, "
              "train top-1 %.2f%%",
              cmd, (long long)res.steps, (long long)res.epochs, res.seconds, res.images_per_s,
              res.first_loss, res.last_loss, 100.0 * res.last_train_top1);
    const double rss = sslc_peak_rss_mib();
    const sslc_params *prompts = sslc_encoder_prompts(&enc);
    sslc_info("%s: mode %s, %lld trainable parameters (encoder %lld, adapters %lld, head %lld), "
              "peak RSS %.0f MiB",
              cmd, sslc_peft_mode_name(mode), (long long)res.trainable,
              (long long)sslc_peft_trainable(mode, enc.params),
              (long long)(sslc_peft_trainable(SSLC_PEFT_FULL, &lora.params) +
                          (prompts ? prompts->n_values : 0)),
              (long long)sslc_peft_trainable(SSLC_PEFT_FULL, &head.params), rss);
    int64_t count, test_skipped;
    if ((st = sslc_classifier_scores(&scores, &labels, &count, &test_skipped, &enc, &head, test,
                                     &eval_recipe, o.eval_batch)) ||
        (st = sslc_cli_check_rows(cmd, subset.n - res.skipped, count)) ||
        (st = sslc_metrics_compute(&met, scores, labels, count, classes)))
        goto done;
    const char *names[1024] = {0};
    for (int64_t c = 0; c < classes && c < 1024; c++)
        names[c] = sslc_dataset_class_name(test, c);
    sslc_metrics_print(stdout, &met, names);
    double seconds = sslc_now() - start;
    char what[64];
    snprintf(what, sizeof what, "%s%s%s", supervised ? "supervised" : "finetune",
             mode == SSLC_PEFT_FULL ? "" : "-",
             mode == SSLC_PEFT_FULL ? "" : sslc_peft_mode_name(mode));
    char excluded[256];
    const int64_t ex_train = sslc_dataset_skipped(train) + res.skipped;
    const int64_t ex_test = sslc_dataset_skipped(test) + test_skipped;
    sslc_cli_excluded_text(excluded, sizeof excluded, ex_train, ex_test);
    printf("%s %s: top-1 %.2f%% top-5 %.2f%% with %lld labels, %lld steps%s, in %.1f s\n", what,
           method, 100.0 * met.top1, 100.0 * met.top5, (long long)(subset.n - res.skipped),
           (long long)res.steps, excluded, seconds);
    char json[1536];
    snprintf(json, sizeof json,
             "{\"command\": \"%s\", \"name\": \"%s\", \"encoder\": \"%s\", \"ckpt\": \"%s\", "
             "\"label_fraction\": %g, \"per_class\": %lld, \"labels\": %lld, \"test\": %lld, "
             "\"excluded_train\": %lld, \"excluded_test\": %lld, \"top1\": %.4f, "
             "\"top5\": %.4f, \"steps\": %lld, \"epochs\": %lld, \"train_seconds\": %.1f, "
             "\"seconds\": %.1f, \"images_per_s\": %.1f, \"from_head_layer\": %lld, "
             "\"mode\": \"%s\", \"trainable_params\": %lld, \"peak_rss_mib\": %.1f}",
             what, o.name, method, supervised ? "" : o.ckpt, o.labels.fraction, (long long)o.labels.per_class,
             (long long)(subset.n - res.skipped), (long long)count, (long long)ex_train,
             (long long)ex_test, met.top1, met.top5, (long long)res.steps,
             (long long)res.epochs, res.seconds, seconds, res.images_per_s, (long long)o.head_layer,
             sslc_peft_mode_name(mode), (long long)res.trainable, rss);
    if (o.results[0] && (st = sslc_cli_append_json(o.results, json)))
        goto done;
    if (o.out[0]) {
        char path[4200];
        snprintf(path, sizeof path, "%s/model.h5", o.out);
        if ((st = sslc_encoder_save(path, &enc, &head, supervised ? "supervised" : "finetune",
                                    config_text, size, (uint64_t)o.seed, res.steps, res.epochs)))
            goto done;
        sslc_adapter adapter = {mode, o.ckpt, base_hash, mode == SSLC_PEFT_LORA ? &lora : NULL};
        snprintf(path, sizeof path, "%s/adapter.h5", o.out);
        if (mode != SSLC_PEFT_FULL &&
            (st = sslc_adapter_save(path, &adapter, &enc, &head, config_text, size, res.steps,
                                    res.epochs)))
            goto done;
        if ((st = sslc_cli_write_results(o.out, &met, names, json)))
            goto done;
    }
done:
    sslc_dataset_destroy(train);
    sslc_dataset_destroy(test);
    sslc_encoder_destroy(&enc);
    sslc_lora_destroy(&lora);
    sslc_mlp_destroy(&head);
    sslc_subset_free(&subset);
    sslc_metrics_free(&met);
    free(scores);
    free(labels);
    free(config_text);
    return st ? sslc_cli_fail(cmd, st) : 0;
}

int sslc_cmd_finetune(int argc, char **argv)
{
    return sslc_cli_train_classifier(argc, argv, false);
}
