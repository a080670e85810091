// Parameter-efficient fine-tuning (src/models/peft.h, src/models/lora.h,
// src/eval/adapter.h, src/train/finetune.h): trainable counts of a tiny
// ResNet-18 computed by hand, LoRA's B = 0 start computing exactly what the
// frozen model does, adapter files round-tripping and refusing another
// base, every frozen tensor bit-identical after training in the linear,
// bias and lora modes, and the CLI end to end (finetune --mode, --adapter,
// export --merge). LoRA's gradients: tests/gradcheck/ (lora_conv).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>
#include <hdf5_hl.h>

#include "data/subset.h"
#include "src/core/rng.h"
#include "src/core/threads.h"
#include "src/eval/adapter.h"
#include "src/eval/encoder.h"
#include "src/eval/features.h"
#include "src/train/finetune.h"
#include "tests/eval/classes.h"
#include "tests/harness.h"

// ResNet-18, width 4, one input channel, CIFAR stem; non-trivial running
// statistics so "unchanged" means something.
static void make_encoder(sslc_encoder *enc, uint64_t seed)
{
    sslc_encoder_config cfg = {.resnet = {.depth = 18, .in_channels = 1, .width = 4, .cifar_stem = true}};
    assert_int_equal(sslc_encoder_create(enc, &cfg), SSLC_OK);
    sslc_encoder_init(enc, seed);
    sslc_rng r = sslc_rng_make(seed, 1, 0, 0, 0);
    for (int64_t i = 0; i < enc->params->n_buffers; i++)
        enc->params->buffers[i] += (float)(0.1 * sslc_rng_uniform(&r));
}

// By hand for that encoder (in 1, widths 4, 8, 16, 32) and a linear:3 head.
// Convolutions: conv1 4*1*9 = 36; layer1 4 x 4*4*9 = 576; layer2 8*4*9 +
// 3 x 8*8*9 + 8*4 (downsample) = 2048; layer3 16*8*9 + 3 x 16*16*9 + 16*8 =
// 8192; layer4 32*16*9 + 3 x 32*32*9 + 32*16 = 32768: 43620. Batch-norm
// channels 4 + 4*4 + 5*8 + 5*16 + 5*32 = 300, gamma and beta 600. Head
// 32*3 + 3 = 99. LoRA rank 2 on a (K, C, k, k) convolution: 2 C k^2 + 2 K:
// conv1 26, layer1 4 x 80 = 320, layer2 88 + 3 x 160 + 24 = 592, layer3
// 176 + 3 x 320 + 48 = 1184, layer4 352 + 3 x 640 + 96 = 2368: 4490, of
// which the three 1x1 downsamples 24 + 48 + 96 = 168.
enum { HEAD = 99, CONVS = 43620, BN_AFFINE = 600, BN_BIAS = 300, LORA_ALL = 4490 };

static void recipes(sslc_recipe *eval, sslc_recipe *train)
{
    assert_int_equal(sslc_recipe_defaults(eval, "eval", 16, 1), SSLC_OK);
    eval->eval_resize = 16;
    assert_int_equal(sslc_recipe_finalize(eval), SSLC_OK);
    assert_int_equal(sslc_recipe_defaults(train, "simclr", 16, 1), SSLC_OK);
    train->crop_scale_min = 0.5;
    train->jitter_p = train->jitter_strength = train->gray_p = train->blur_p = 0;
    assert_int_equal(sslc_recipe_finalize(train), SSLC_OK);
}

static int64_t lora_count(const sslc_encoder *enc, const char *targets)
{
    sslc_lora l;
    assert_int_equal(sslc_lora_create(&l, enc->params, 2, 2.0, targets), SSLC_OK);
    // Elements, not l.params.n_values: the table pads tensors to 16 floats.
    int64_t n = sslc_peft_trainable(SSLC_PEFT_FULL, &l.params);
    sslc_lora_destroy(&l);
    return n;
}

static void trainable_counts_by_hand(void **state)
{
    (void)state;
    sslc_encoder enc;
    make_encoder(&enc, 1);
    sslc_mlp head;
    assert_int_equal(sslc_mlp_create(&head, enc.feature_dim, "linear:3"), SSLC_OK);
    assert_int_equal(sslc_finetune_trainable(SSLC_PEFT_FULL, &enc, &head, NULL),
                     CONVS + BN_AFFINE + HEAD);
    assert_int_equal(sslc_finetune_trainable(SSLC_PEFT_LINEAR, &enc, &head, NULL), HEAD);
    assert_int_equal(sslc_finetune_trainable(SSLC_PEFT_BN_HEAD, &enc, &head, NULL),
                     BN_AFFINE + HEAD);
    assert_int_equal(sslc_finetune_trainable(SSLC_PEFT_BIAS, &enc, &head, NULL), BN_BIAS + HEAD);
    sslc_lora l;
    assert_int_equal(sslc_lora_create(&l, enc.params, 2, 2.0, "all"), SSLC_OK);
    assert_int_equal(sslc_finetune_trainable(SSLC_PEFT_LORA, &enc, &head, &l), LORA_ALL + HEAD);
    assert_int_equal(l.n_sites, 20); // conv1, layer1 4, layers 2-4 5 each (a downsample)
    sslc_lora_destroy(&l);
    assert_int_equal(lora_count(&enc, "1x1"), 168);
    assert_int_equal(lora_count(&enc, "3x3"), LORA_ALL - 168);
    assert_int_equal(lora_count(&enc, "layer4"), 2368);
    assert_int_equal(lora_count(&enc, "layer4,1x1"), 2368 + 24 + 48); // union
    assert_int_equal(lora_count(&enc, "conv1"), 26);
    // Targets that match nothing are refused by name.
    assert_int_equal(sslc_lora_create(&l, enc.params, 2, 2.0, "layer5"), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "'layer5' matches no"));
    assert_int_equal(sslc_lora_create(&l, enc.params, 2, 2.0, "layer"), SSLC_ERR_INVALID);
    assert_int_equal(sslc_lora_create(&l, enc.params, 2, 2.0, "5x5"), SSLC_ERR_INVALID);
    assert_int_equal(sslc_lora_create(&l, enc.params, 2, 2.0, "all,"), SSLC_ERR_INVALID);
    assert_int_equal(sslc_lora_create(&l, enc.params, 0, 2.0, "all"), SSLC_ERR_INVALID);
    sslc_mlp_destroy(&head);
    sslc_encoder_destroy(&enc);
}

// Features of x (N, 16, 16, 1) in eval mode.
static float *features(sslc_encoder *enc, const float *x, int64_t N)
{
    sslc_encoder_run *run;
    assert_int_equal(sslc_encoder_inference_run_create(&run, enc, N, 16, 16), SSLC_OK);
    sslc_encoder_prepare(run, enc);
    const float *f = sslc_encoder_forward(run, enc, x, false);
    float *out = malloc((size_t)(N * enc->feature_dim) * sizeof(float));
    assert_non_null(out);
    memcpy(out, f, (size_t)(N * enc->feature_dim) * sizeof(float));
    sslc_encoder_run_destroy(run);
    return out;
}

// LoRA's A starts Kaiming-uniform and B at zero: the merged weights are
// the frozen ones, so the first forward equals the frozen model's exactly;
// a B other than zero changes it, and restoring puts the base back bit for bit.
static void lora_starts_as_the_frozen_model(void **state)
{
    (void)state;
    sslc_encoder enc;
    make_encoder(&enc, 2);
    sslc_params base;
    assert_int_equal(sslc_params_clone(&base, enc.params), SSLC_OK);
    const int64_t N = 3;
    float *x = sslc_test_randn((size_t)(N * 16 * 16), 5, 1.0);
    float *frozen = features(&enc, x, N);
    sslc_lora l;
    assert_int_equal(sslc_lora_create(&l, enc.params, 4, 4.0, "all"), SSLC_OK);
    sslc_lora_init(&l, 7);
    for (int i = 0; i < l.n_sites; i++) { // A as loralib: U(-1/sqrt(D), 1/sqrt(D)), not zero
        const sslc_lora_site *s = &l.sites[i];
        double bound = 1.0 / sqrt((double)s->D), largest = 0.0;
        for (int64_t k = 0; k < l.rank * s->D; k++)
            largest = fmax(largest, fabs(l.params.values[s->a + k]));
        assert_true(largest <= bound && largest > 0.5 * bound);
    }
    sslc_lora_merge(&l, enc.params);
    float *adapted = features(&enc, x, N);
    assert_memory_equal(frozen, adapted, (size_t)(N * enc.feature_dim) * sizeof(float));
    for (int64_t i = 0; i < enc.params->n_values; i++)
        assert_true(enc.params->values[i] == base.values[i]);
    // A B that is not zero changes the features; restore gives the base back.
    sslc_test_fill_randn(l.params.values + l.sites[0].b, (size_t)(l.sites[0].K * l.rank), 9, 0.5);
    sslc_lora_merge(&l, enc.params);
    float *moved = features(&enc, x, N);
    assert_memory_not_equal(frozen, moved, (size_t)(N * enc.feature_dim) * sizeof(float));
    sslc_lora_restore(&l, enc.params);
    assert_memory_equal(enc.params->values, base.values, (size_t)base.n_values * sizeof(float));
    free(x), free(frozen), free(adapted), free(moved);
    sslc_lora_destroy(&l);
    sslc_params_free(&base);
    sslc_encoder_destroy(&enc);
}

// Every tensor of a and b (tables of one model) holds the same bits; the
// int64 counters (num_batches_tracked) as the integers checkpoints keep.
static void assert_tables_equal(const sslc_params *a, const sslc_params *b)
{
    assert_int_equal(a->count, b->count);
    for (int64_t t = 0; t < a->count; t++) {
        const sslc_tensor *x = &a->tensors[t];
        const float *u = sslc_params_data(a, x), *v = sslc_params_data(b, &b->tensors[t]);
        for (int64_t i = 0; i < x->numel; i++) {
            bool same = x->flags & SSLC_TENSOR_INT64 ? (int64_t)u[i] == (int64_t)v[i]
                                                      : !memcmp(&u[i], &v[i], sizeof(float));
            if (!same)
                fail_msg("%s[%lld]: %.9g vs %.9g", x->name, (long long)i, u[i], v[i]);
        }
    }
}

// An adapter saved after "training" (A, B, BN biases and statistics
// changed by hand) folds into a fresh copy of the base to exactly the
// trained encoder; another base, or a file that is no adapter, is refused
// and leaves the encoder as it was.
static void adapter_round_trip_and_wrong_base(void **state)
{
    (void)state;
    const char *dir = sslc_test_tmpdir("peft-adapter");
    char path[1400], base_path[1400];
    snprintf(base_path, sizeof base_path, "%s/base.h5", dir);
    const sslc_peft_mode modes[] = {SSLC_PEFT_LORA, SSLC_PEFT_BIAS, SSLC_PEFT_BN_HEAD,
                                    SSLC_PEFT_LINEAR};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        const sslc_peft_mode mode = modes[m];
        sslc_encoder trained, back, other;
        make_encoder(&trained, 3);
        make_encoder(&back, 3);
        make_encoder(&other, 4);
        const uint64_t hash = sslc_adapter_base_hash(trained.params);
        assert_true(hash == sslc_adapter_base_hash(back.params));
        assert_true(hash != sslc_adapter_base_hash(other.params));
        sslc_lora l = {0};
        if (mode == SSLC_PEFT_LORA) {
            assert_int_equal(sslc_lora_create(&l, trained.params, 2, 3.0, "layer2,1x1"), SSLC_OK);
            sslc_test_fill_randn(l.params.values, (size_t)l.params.n_values, 11, 0.3);
            sslc_lora_merge(&l, trained.params);
        }
        // What the mode trains and the statistics its forwards update move.
        sslc_rng r = sslc_rng_make(12, 0, 0, 0, 0);
        for (int64_t t = 0; t < trained.params->count; t++) {
            const sslc_tensor *x = &trained.params->tensors[t];
            if (!sslc_peft_changes(mode, x) || (x->flags & SSLC_TENSOR_INT64))
                continue;
            float *v = sslc_params_data(trained.params, x);
            for (int64_t i = 0; i < x->numel; i++)
                v[i] += (float)(0.05 * sslc_rng_uniform(&r));
        }
        sslc_mlp head;
        assert_int_equal(sslc_mlp_create(&head, trained.feature_dim, "linear:3"), SSLC_OK);
        sslc_mlp_init(&head, 3);
        snprintf(path, sizeof path, "%s/adapter-%s.h5", dir, sslc_peft_mode_name(mode));
        sslc_adapter a = {mode, base_path, hash, mode == SSLC_PEFT_LORA ? &l : NULL};
        assert_int_equal(sslc_adapter_save(path, &a, &trained, &head, "", 16, 5, 1), SSLC_OK);

        assert_int_equal(sslc_adapter_apply(&back, path), SSLC_OK);
        assert_tables_equal(back.params, trained.params);
        sslc_mlp head_back; // the head loads from the adapter as from a model.h5
        assert_int_equal(sslc_classifier_load(&head_back, path, trained.feature_dim), SSLC_OK);
        assert_memory_equal(head_back.params.values, head.params.values,
                            (size_t)head.params.n_values * sizeof(float));
        sslc_mlp_destroy(&head_back);

        sslc_params before;
        assert_int_equal(sslc_params_clone(&before, other.params), SSLC_OK);
        assert_int_equal(sslc_adapter_apply(&other, path), SSLC_ERR_INVALID);
        assert_non_null(strstr(sslc_error_message(), "was trained on the encoder of"));
        assert_non_null(strstr(sslc_error_message(), base_path));
        assert_memory_equal(before.values, other.params->values,
                            (size_t)before.n_values * sizeof(float));
        assert_memory_equal(before.buffers, other.params->buffers,
                            (size_t)before.n_buffers * sizeof(float));
        sslc_params_free(&before);
        if (m == 0) { // a plain checkpoint is no adapter
            assert_int_equal(sslc_encoder_save(base_path, &other, NULL, "simclr", "", 16, 0, 0, 0),
                             SSLC_OK);
            assert_int_equal(sslc_adapter_apply(&other, base_path), SSLC_ERR_FORMAT);
            assert_non_null(strstr(sslc_error_message(), "is not an adapter file"));
            // And full fine-tuning has none to write.
            sslc_adapter full = {SSLC_PEFT_FULL, base_path, hash, NULL};
            assert_int_equal(sslc_adapter_save(path, &full, &trained, &head, "", 16, 5, 1),
                             SSLC_ERR_INVALID);
        }
        sslc_mlp_destroy(&head);
        sslc_lora_destroy(&l);
        sslc_encoder_destroy(&trained);
        sslc_encoder_destroy(&back);
        sslc_encoder_destroy(&other);
    }
}

// After a few steps in the linear, bias and lora modes, every tensor the
// mode freezes is bit-identical to the base: everything (running statistics
// too) for the linear probe, all but the biases for BitFit, and for LoRA all
// parameters once the frozen weights are put back. What trains moved.
static void frozen_tensors_stay_bit_identical(void **state)
{
    (void)state;
    const char *dir = tc_make_folder("peft-frozen", 10, 4);
    sslc_dataset *train = tc_open_ds(dir, "train");
    sslc_recipe eval, aug;
    recipes(&eval, &aug);
    sslc_subset s;
    assert_int_equal(sslc_subset_from_dataset(&s, train, 1.0, 0, 0), SSLC_OK);
    const sslc_peft_mode modes[] = {SSLC_PEFT_LINEAR, SSLC_PEFT_BIAS, SSLC_PEFT_LORA};
    const int64_t counts[] = {HEAD, BN_BIAS + HEAD, LORA_ALL + HEAD};
    for (int m = 0; m < 3; m++) {
        const sslc_peft_mode mode = modes[m];
        sslc_encoder enc;
        make_encoder(&enc, 5);
        sslc_mlp head;
        assert_int_equal(sslc_mlp_create(&head, enc.feature_dim, "linear:3"), SSLC_OK);
        sslc_mlp_init(&head, 6);
        sslc_params before;
        assert_int_equal(sslc_params_clone(&before, enc.params), SSLC_OK);
        sslc_lora l = {0};
        if (mode == SSLC_PEFT_LORA) {
            assert_int_equal(sslc_lora_create(&l, enc.params, 2, 2.0, "all"), SSLC_OK);
            sslc_lora_init(&l, 4);
        }
        sslc_finetune_config fc = {.mode = mode, .lora = l.n_sites ? &l : NULL, .batch = 10,
                                   .epochs = 2, .lr = 0.05, .momentum = 0.9, .nesterov = true,
                                   .weight_decay = 1e-4, .seed = 1};
        sslc_finetune_result res;
        assert_int_equal(sslc_finetune(&fc, &enc, &head, train, s.indices, s.n, &aug, &res), SSLC_OK);
        assert_int_equal(res.steps, 6);
        assert_int_equal(res.trainable, counts[m]);
        printf("  %s: %lld trainable, loss %.3f -> %.3f\n", sslc_peft_mode_name(mode),
               (long long)res.trainable, res.first_loss, res.last_loss);
        bool buffers_same = !memcmp(before.buffers, enc.params->buffers,
                                    (size_t)before.n_buffers * sizeof(float));
        assert_true(mode == SSLC_PEFT_LINEAR ? buffers_same : !buffers_same);
        if (mode == SSLC_PEFT_LORA) {
            // The encoder holds W + (alpha / r) B A: B trained away from zero.
            bool b_moved = false;
            for (int i = 0; i < l.n_sites && !b_moved; i++)
                for (int64_t k = 0; k < l.sites[i].K * l.rank; k++)
                    b_moved |= l.params.values[l.sites[i].b + k] != 0.0f;
            assert_true(b_moved);
            assert_memory_not_equal(before.values, enc.params->values,
                                    (size_t)before.n_values * sizeof(float));
            sslc_lora_restore(&l, enc.params);
        }
        for (int64_t t = 0; t < enc.params->count; t++) {
            const sslc_tensor *x = &enc.params->tensors[t];
            if (x->kind != SSLC_TENSOR_PARAM)
                continue;
            bool changed = memcmp(sslc_params_data(&before, &before.tensors[t]),
                                  sslc_params_data(enc.params, x),
                                  (size_t)x->numel * sizeof(float)) != 0;
            if (sslc_peft_trains(mode, x))
                assert_true(changed);
            else if (changed)
                fail_msg("%s mode changed the frozen %s", sslc_peft_mode_name(mode), x->name);
        }
        sslc_params_free(&before);
        sslc_lora_destroy(&l);
        sslc_encoder_destroy(&enc);
        sslc_mlp_destroy(&head);
    }
    sslc_subset_free(&s);
    sslc_dataset_destroy(train);
}

// ---------------------------------------------------------------- the sslc binary

static float *read_features(const char *path, size_t n)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    float *x = malloc(n * sizeof(float));
    assert_non_null(x);
    assert_true(H5LTread_dataset_float(file, "features", x) >= 0);
    H5Fclose(file);
    return x;
}

static void run_ok(const char *what, const char *cmd, const char *log, char *out, size_t cap)
{
    int rc = sslc_test_run_cmd(cmd, log, out, cap);
    if (rc != 0)
        fail_msg("%s failed (%d):\n%s", what, rc, out);
}

// finetune --mode linear|bias|lora writes adapter.h5 beside model.h5 and
// reports its trainable count and peak RSS; the adapter on its base gives
// the fine-tuned model's features (embed --adapter), export --merge writes
// an encoder with exactly those features (and torchvision loads it
// strictly, when torch is there); another base is refused.
static void cli_modes_adapters_and_merge(void **state)
{
    (void)state;
    const char *dir = tc_make_folder("peft-cli", 10, 4);
    static char out[1 << 16];
    static char cmd[16384];
    char log[1400], base[1400], other[1400], res[1400], d[3000];
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(res, sizeof res, "%s/results.jsonl", dir);
    snprintf(base, sizeof base, "%s/enc.h5", dir);
    snprintf(other, sizeof other, "%s/other.h5", dir);
    snprintf(d, sizeof d, "--train imagefolder:%s/train --test imagefolder:%s/test", dir, dir);
    sslc_encoder enc, enc2;
    make_encoder(&enc, 8);
    make_encoder(&enc2, 9);
    assert_int_equal(sslc_encoder_save(base, &enc, NULL, "simclr", "", 16, 0, 0, 0), SSLC_OK);
    assert_int_equal(sslc_encoder_save(other, &enc2, NULL, "simclr", "", 16, 0, 0, 0), SSLC_OK);
    const size_t nf = 30 * 32; // the train split's 30 images, 32 features

    const char *modes[] = {"linear", "bias", "lora"};
    const int64_t counts[] = {HEAD, BN_BIAS + HEAD, 2368 + HEAD};
    for (int m = 0; m < 3; m++) {
        char ft[1600], adapter[1700], feats[1700], merged[1700], mfeats[1700], mdl[1700];
        snprintf(ft, sizeof ft, "%s/ft-%s", dir, modes[m]);
        snprintf(adapter, sizeof adapter, "%s/adapter.h5", ft);
        snprintf(mdl, sizeof mdl, "%s/model.h5", ft);
        snprintf(feats, sizeof feats, "%s/adapted.h5", ft);
        snprintf(merged, sizeof merged, "%s/merged.h5", ft);
        snprintf(mfeats, sizeof mfeats, "%s/merged-features.h5", ft);
        snprintf(cmd, sizeof cmd, "'%s' finetune --ckpt '%s' %s --mode %s %s --max-steps 3 "
                 "--batch 10 --lr 0.5 --out '%s' --results '%s'", SSLC_EXE, base, d, modes[m],
                 m == 2 ? "--lora-rank 2 --lora-targets layer4" : "", ft, res);
        run_ok("finetune", cmd, log, out, sizeof out);
        char want[128];
        snprintf(want, sizeof want, "mode %s, %lld trainable parameters", modes[m],
                 (long long)counts[m]);
        if (!strstr(out, want))
            fail_msg("no '%s' in:\n%s", want, out);
        assert_non_null(strstr(out, "peak RSS"));
        assert_int_equal(access(mdl, R_OK), 0);
        assert_int_equal(access(adapter, R_OK), 0);

        snprintf(cmd, sizeof cmd, "'%s' embed --ckpt '%s' --adapter '%s' imagefolder:%s/train "
                 "--out '%s'", SSLC_EXE, base, adapter, dir, feats);
        run_ok("embed --adapter", cmd, log, out, sizeof out);
        snprintf(cmd, sizeof cmd, "'%s' export '%s' --merge '%s' --out '%s'", SSLC_EXE, base,
                 adapter, merged);
        run_ok("export --merge", cmd, log, out, sizeof out);
        snprintf(cmd, sizeof cmd, "'%s' embed --ckpt '%s' imagefolder:%s/train --out '%s'",
                 SSLC_EXE, merged, dir, mfeats);
        run_ok("embed of the merged export", cmd, log, out, sizeof out);
        float *a = read_features(feats, nf), *b = read_features(mfeats, nf);
        assert_memory_equal(a, b, nf * sizeof(float)); // the same weights, the same code
        // The fine-tuned model.h5 is the same encoder.
        snprintf(cmd, sizeof cmd, "'%s' embed --ckpt '%s' imagefolder:%s/train --out '%s'",
                 SSLC_EXE, mdl, dir, mfeats);
        run_ok("embed of model.h5", cmd, log, out, sizeof out);
        float *c = read_features(mfeats, nf);
        assert_memory_equal(a, c, nf * sizeof(float));
        // Against the base: the linear probe leaves the features as they were.
        snprintf(cmd, sizeof cmd, "'%s' embed --ckpt '%s' imagefolder:%s/train --out '%s'",
                 SSLC_EXE, base, dir, mfeats);
        run_ok("embed of the base", cmd, log, out, sizeof out);
        float *e = read_features(mfeats, nf);
        bool same = !memcmp(a, e, nf * sizeof(float));
        assert_true(m == 0 ? same : !same);
        free(a), free(b), free(c), free(e);

        if (m == 2) {
            snprintf(cmd, sizeof cmd, "'%s' knn --ckpt '%s' --adapter '%s' %s --k 5", SSLC_EXE,
                     base, adapter, d);
            run_ok("knn --adapter", cmd, log, out, sizeof out);
            snprintf(cmd, sizeof cmd, "'%s' linear-eval --ckpt '%s' --adapter '%s' %s", SSLC_EXE,
                     base, adapter, d);
            run_ok("linear-eval --adapter", cmd, log, out, sizeof out);
            // Another base is refused with the reason.
            snprintf(cmd, sizeof cmd, "'%s' embed --ckpt '%s' --adapter '%s' imagefolder:%s/train "
                     "--out '%s'", SSLC_EXE, other, adapter, dir, mfeats);
            assert_int_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 2);
            assert_non_null(strstr(out, "was trained on the encoder of"));
            snprintf(cmd, sizeof cmd, "'%s' export '%s' --merge '%s' --out '%s/x.h5'", SSLC_EXE,
                     other, adapter, dir);
            assert_int_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 2);
            assert_non_null(strstr(out, "was trained on the encoder of"));
            if (system("/usr/bin/python3 -c 'import torch, torchvision, h5py' > /dev/null 2>&1")) {
                printf("SKIP-REASON: torch, torchvision or h5py is not importable\n");
            } else {
                snprintf(cmd, sizeof cmd,
                         "/usr/bin/python3 '%s/scripts/sslc_torch.py' embed-check '%s' '%s'",
                         SSLC_SOURCE_DIR, merged, feats);
                int rc = sslc_test_run_cmd(cmd, log, out, sizeof out);
                printf("  %s", out);
                if (rc != 0)
                    fail_msg("torchvision's features of the merged export differ:\n%s", out);
            }
        }
    }
    // The results lines carry the mode, trainable count and peak RSS.
    FILE *f = fopen(res, "r");
    assert_non_null(f);
    char line[4096];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        char want[128];
        snprintf(want, sizeof want, "\"mode\": \"%s\", \"trainable_params\": %lld, "
                 "\"peak_rss_mib\": ", modes[lines], (long long)counts[lines]);
        if (!strstr(line, want))
            fail_msg("no '%s' in %s", want, line);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, 3);
    // LoRA options without --mode lora are refused before any work.
    snprintf(cmd, sizeof cmd, "'%s' finetune --ckpt '%s' %s --lora-rank 8", SSLC_EXE, base, d);
    assert_int_equal(sslc_test_run_cmd(cmd, log, out, sizeof out), 2);
    assert_non_null(strstr(out, "need --mode lora"));
    sslc_encoder_destroy(&enc);
    sslc_encoder_destroy(&enc2);
}

int main(int argc, char **argv)
{
    sslc_set_threads(2);
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(trainable_counts_by_hand),
        cmocka_unit_test(lora_starts_as_the_frozen_model),
        cmocka_unit_test(adapter_round_trip_and_wrong_base),
    };
    const struct CMUnitTest e2e[] = {
        cmocka_unit_test(frozen_tensors_stay_bit_identical),
        cmocka_unit_test(cli_modes_adapters_and_merge),
    };
    const sslc_test_group groups[] = {
        SSLC_GROUP("unit", unit),
        SSLC_GROUP("e2e", e2e),
    };
    return sslc_test_main(argc, argv, groups, 2);
}
