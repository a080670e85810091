// Parameter-efficient fine-tuning of a Vision Transformer (issue 17): LoRA on
// the attention and MLP weights (targets attn, mlp, all, name prefixes; B = 0
// computes exactly what the frozen ViT does) and visual prompts (VPT,
// shallow and deep): trainable counts, every frozen tensor bit-identical
// after training, adapter files that give back the trained encoder's
// features. Gradients: tests/gradcheck/ (lora_linear, vit_prompt); the CLI:
// tests/train/test_vit_cli.c.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/subset.h"
#include "src/core/rng.h"
#include "src/eval/adapter.h"
#include "src/train/finetune.h"
#include "tests/eval/classes.h"
#include "tests/harness.h"

enum { SIDE = 16, D = 8, LAYERS = 2, MLP = 16, PROMPTS = 3, BATCH = 4 };

// A tiny ViT for the 16 px grayscale class folders: patch 4, width 8, two
// layers of two heads, MLP 16; learned positions and a non-zero class token.
static void make_vit(sslc_encoder *enc, uint64_t seed)
{
    sslc_encoder_config cfg = {.kind = SSLC_ENCODER_VIT,
                               .vit = {.hidden = D, .layers = LAYERS, .heads = 2, .mlp_dim = MLP,
                                       .patch = 4, .image_size = SIDE, .in_channels = 1}};
    assert_int_equal(sslc_encoder_create(enc, &cfg), SSLC_OK);
    sslc_encoder_init(enc, seed);
    sslc_test_fill_randn(enc->params->values + enc->net.vit.cls, D, seed + 1, 0.5);
}

// LoRA rank 2 on a (K, D) weight: 2 D + 2 K. Per layer: in_proj (24, 8) 64,
// out_proj (8, 8) 32, mlp.0 (16, 8) 48, mlp.3 (8, 16) 48; conv_proj
// (8, 1, 4, 4): A 32 + B 16. Head linear:3: 8 * 3 + 3.
enum { ATTN = 96, MLPS = 96, HEAD = 27 };

static int64_t lora_count(const sslc_encoder *enc, const char *targets)
{
    sslc_lora l;
    assert_int_equal(sslc_lora_create(&l, enc->params, 2, 2.0, targets), SSLC_OK);
    int64_t n = l.params.n_values;
    sslc_lora_destroy(&l);
    return n;
}

static void lora_targets_on_a_vit(void **state)
{
    (void)state;
    sslc_encoder enc;
    make_vit(&enc, 1);
    assert_int_equal(lora_count(&enc, "all"), LAYERS * (ATTN + MLPS)); // not conv_proj
    assert_int_equal(lora_count(&enc, "attn"), LAYERS * ATTN);
    assert_int_equal(lora_count(&enc, "mlp"), LAYERS * MLPS);
    assert_int_equal(lora_count(&enc, "encoder.layers.encoder_layer_1"), ATTN + MLPS);
    assert_int_equal(lora_count(&enc, "encoder.layers.encoder_layer_1.mlp,attn"),
                     MLPS + LAYERS * ATTN);
    assert_int_equal(lora_count(&enc, "conv_proj"), 48);
    sslc_lora l;
    assert_int_equal(sslc_lora_create(&l, enc.params, 2, 2.0, "attn"), SSLC_OK);
    assert_string_equal(l.params.tensors[0].name,
                        "encoder.layers.encoder_layer_0.self_attention.in_proj.lora_A");
    assert_int_equal(l.params.tensors[1].shape[0], 3 * D);
    sslc_lora_destroy(&l);
    assert_int_equal(sslc_lora_create(&l, enc.params, 2, 2.0, "3x3"), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "attn, mlp"));
    sslc_encoder_destroy(&enc);
}

static float *features(sslc_encoder *enc, const float *x)
{
    sslc_encoder_run *run;
    assert_int_equal(sslc_encoder_run_create(&run, enc, BATCH, SIDE, SIDE), SSLC_OK);
    sslc_encoder_prepare(run, enc);
    float *f = malloc((size_t)(BATCH * D) * sizeof(float));
    assert_non_null(f);
    memcpy(f, sslc_encoder_forward(run, enc, x, true), (size_t)(BATCH * D) * sizeof(float));
    sslc_encoder_run_destroy(run);
    return f;
}

// With B = 0 the merged ViT computes bit for bit what the frozen one does;
// with B != 0 it does not.
static void lora_b_zero_is_the_frozen_vit(void **state)
{
    (void)state;
    sslc_encoder enc;
    make_vit(&enc, 2);
    float *x = malloc((size_t)(BATCH * SIDE * SIDE) * sizeof(float));
    assert_non_null(x);
    sslc_test_fill_randn(x, (size_t)(BATCH * SIDE * SIDE), 3, 1.0);
    float *frozen = features(&enc, x);
    sslc_lora l;
    assert_int_equal(sslc_lora_create(&l, enc.params, 4, 4.0, "all"), SSLC_OK);
    sslc_lora_init(&l, 7);
    sslc_lora_merge(&l, enc.params);
    float *merged = features(&enc, x);
    assert_memory_equal(frozen, merged, (size_t)(BATCH * D) * sizeof(float));
    free(merged);
    l.params.values[l.sites[0].b] = 0.5f;
    sslc_lora_merge(&l, enc.params);
    merged = features(&enc, x);
    assert_memory_not_equal(frozen, merged, (size_t)(BATCH * D) * sizeof(float));
    free(merged), free(frozen), free(x);
    sslc_lora_destroy(&l);
    sslc_encoder_destroy(&enc);
}

static void recipe(sslc_recipe *train)
{
    assert_int_equal(sslc_recipe_defaults(train, "simclr", SIDE, 1), SSLC_OK);
    train->crop_scale_min = 0.5;
    train->jitter_p = train->jitter_strength = train->gray_p = train->blur_p = 0;
    assert_int_equal(sslc_recipe_finalize(train), SSLC_OK);
}

// LoRA, shallow and deep prompts on the tiny ViT: the trainable counts
// (adapters or N D / N D layers, plus the head), every encoder tensor
// bit-identical after training (for LoRA once the frozen weights are put
// back), what trains moved, and the adapter file folding into a fresh base
// to the trained encoder's features.
static void vit_modes_train_only_what_they_add(void **state)
{
    (void)state;
    const char *dir = tc_make_folder("peft-vit", 10, 4);
    sslc_dataset *train = tc_open_ds(dir, "train");
    sslc_recipe aug;
    recipe(&aug);
    sslc_subset s;
    assert_int_equal(sslc_subset_from_dataset(&s, train, 1.0, 0, 0), SSLC_OK);
    float *x = malloc((size_t)(BATCH * SIDE * SIDE) * sizeof(float));
    assert_non_null(x);
    sslc_test_fill_randn(x, (size_t)(BATCH * SIDE * SIDE), 4, 1.0);
    const int64_t counts[] = {LAYERS * (ATTN + MLPS) + HEAD, PROMPTS * D + HEAD,
                              PROMPTS * D * LAYERS + HEAD};
    for (int m = 0; m < 3; m++) {
        const sslc_peft_mode mode = m ? SSLC_PEFT_PROMPT : SSLC_PEFT_LORA;
        sslc_encoder enc;
        make_vit(&enc, 5);
        const uint64_t hash = sslc_adapter_base_hash(enc.params);
        sslc_mlp head;
        assert_int_equal(sslc_mlp_create(&head, enc.feature_dim, "linear:3"), SSLC_OK);
        sslc_mlp_init(&head, 6);
        sslc_params before;
        assert_int_equal(sslc_params_clone(&before, enc.params), SSLC_OK);
        sslc_lora l = {0};
        float *prompts0 = NULL;
        if (mode == SSLC_PEFT_LORA) {
            assert_int_equal(sslc_lora_create(&l, enc.params, 2, 2.0, "all"), SSLC_OK);
            sslc_lora_init(&l, 4);
        } else {
            assert_int_equal(sslc_encoder_add_prompts(&enc, PROMPTS, m == 2), SSLC_OK);
            sslc_vit_init_prompts(&enc.net.vit, 4);
            const sslc_params *p = sslc_encoder_prompts(&enc);
            assert_int_equal(p->tensors[0].shape[0], m == 2 ? LAYERS : 1);
            prompts0 = malloc((size_t)p->n_values * sizeof(float));
            assert_non_null(prompts0);
            memcpy(prompts0, p->values, (size_t)p->n_values * sizeof(float));
        }
        sslc_finetune_config fc = {.mode = mode, .lora = l.n_sites ? &l : NULL, .batch = 10,
                                   .epochs = 2, .lr = 0.05, .momentum = 0.9, .nesterov = true,
                                   .weight_decay = 1e-4, .seed = 1};
        sslc_finetune_result res;
        assert_int_equal(sslc_finetune(&fc, &enc, &head, train, s.indices, s.n, &aug, &res), SSLC_OK);
        assert_int_equal(res.steps, 6);
        assert_int_equal(res.trainable, counts[m]);
        printf("  %s%s: %lld trainable, loss %.3f -> %.3f\n", sslc_peft_mode_name(mode),
               m == 2 ? " (deep)" : "", (long long)res.trainable, res.first_loss, res.last_loss);
        float *trained = features(&enc, x);
        // The adapter folds into a fresh copy of the base to the same features.
        char path[1400];
        snprintf(path, sizeof path, "%s/adapter-%d.h5", dir, m);
        sslc_adapter a = {mode, "base.h5", hash, l.n_sites ? &l : NULL};
        assert_int_equal(sslc_adapter_save(path, &a, &enc, &head, "", SIDE, 6, 2), SSLC_OK);
        sslc_encoder back;
        make_vit(&back, 5);
        assert_int_equal(sslc_adapter_apply(&back, path), SSLC_OK);
        float *applied = features(&back, x);
        assert_memory_equal(applied, trained, (size_t)(BATCH * D) * sizeof(float));
        free(applied);
        sslc_encoder_destroy(&back);
        if (mode == SSLC_PEFT_LORA) {
            bool b_moved = false;
            for (int i = 0; i < l.n_sites && !b_moved; i++)
                for (int64_t k = 0; k < l.sites[i].K * l.rank; k++)
                    b_moved |= l.params.values[l.sites[i].b + k] != 0.0f;
            assert_true(b_moved);
            sslc_lora_restore(&l, enc.params);
        } else {
            const sslc_params *p = sslc_encoder_prompts(&enc);
            assert_memory_not_equal(prompts0, p->values, (size_t)p->n_values * sizeof(float));
        }
        for (int64_t t = 0; t < enc.params->count; t++) {
            const sslc_tensor *u = &enc.params->tensors[t];
            if (memcmp(sslc_params_data(&before, &before.tensors[t]),
                       sslc_params_data(enc.params, u), (size_t)u->numel * sizeof(float)))
                fail_msg("%s mode changed the frozen %s", sslc_peft_mode_name(mode), u->name);
        }
        free(trained), free(prompts0);
        sslc_params_free(&before);
        sslc_lora_destroy(&l);
        sslc_encoder_destroy(&enc);
        sslc_mlp_destroy(&head);
    }
    free(x);
    sslc_subset_free(&s);
    sslc_dataset_destroy(train);
}

// Prompts are for a ViT: a ResNet is refused with the reason.
static void prompts_refuse_a_resnet(void **state)
{
    (void)state;
    sslc_encoder enc;
    sslc_encoder_config cfg = {.resnet = {.depth = 18, .in_channels = 1, .width = 4, .cifar_stem = true}};
    assert_int_equal(sslc_encoder_create(&enc, &cfg), SSLC_OK);
    assert_int_equal(sslc_encoder_add_prompts(&enc, 4, false), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "this encoder is a ResNet"));
    assert_null(sslc_encoder_prompts(&enc));
    sslc_encoder_destroy(&enc);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(lora_targets_on_a_vit),
        cmocka_unit_test(lora_b_zero_is_the_frozen_vit),
        cmocka_unit_test(vit_modes_train_only_what_they_add),
        cmocka_unit_test(prompts_refuse_a_resnet),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("unit", unit)};
    return sslc_test_main(argc, argv, groups, 1);
}
