#include "src/eval/adapter.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/core/hash.h"
#include "src/eval/encoder.h"
#include "src/io/checkpoint.h"

uint64_t sslc_adapter_base_hash(const sslc_params *enc)
{
    uint64_t h = SSLC_HASH64_INIT;
    for (int64_t i = 0; i < enc->count; i++) {
        const sslc_tensor *t = &enc->tensors[i];
        h = sslc_hash64(h, t->name, strlen(t->name) + 1);
        h = sslc_hash64(h, t->shape, (size_t)t->ndim * sizeof t->shape[0]);
        h = sslc_hash64(h, sslc_params_data(enc, t), (size_t)t->numel * sizeof(float));
    }
    return h;
}

// A table of the encoder tensors that mode changes, declared as in enc
// (same names, kinds, flags and shapes, same order); with copy, holding
// their values.
static sslc_status changed_table(sslc_params *dst, sslc_peft_mode mode, const sslc_params *enc,
                                 bool copy)
{
    sslc_params_init(dst);
    sslc_status st = SSLC_OK;
    for (int64_t i = 0; i < enc->count && !st; i++) {
        const sslc_tensor *t = &enc->tensors[i];
        if (sslc_peft_changes(mode, t))
            st = sslc_params_add(dst, t->name, t->kind, t->flags, t->ndim, t->shape, NULL);
    }
    if (!st)
        st = sslc_params_alloc(dst);
    for (int64_t i = 0, k = 0; i < enc->count && !st && copy; i++) {
        const sslc_tensor *t = &enc->tensors[i];
        if (sslc_peft_changes(mode, t))
            memcpy(sslc_params_data(dst, &dst->tensors[k++]), sslc_params_data(enc, t),
                   (size_t)t->numel * sizeof(float));
    }
    if (st)
        sslc_params_free(dst);
    return st;
}

sslc_status sslc_adapter_save(const char *path, const sslc_adapter *a, const sslc_encoder *enc,
                              const sslc_mlp *head, const char *config, int64_t image_size,
                              int64_t step, int64_t epoch)
{
    if (a->mode == SSLC_PEFT_FULL)
        return sslc_error(SSLC_ERR_INVALID, "adapter %s: full fine-tuning changes every weight; "
                                            "its model.h5 is the whole model", path);
    if ((a->mode == SSLC_PEFT_LORA) != (a->lora != NULL))
        return sslc_error(SSLC_ERR_INVALID, "adapter %s: LoRA adapters go with mode lora", path);
    sslc_ckpt_attr model[SSLC_ENCODER_ATTRS + 8];
    size_t n = sslc_encoder_attrs(model, enc, image_size);
    char hash[32], spec[512];
    snprintf(hash, sizeof hash, "%016" PRIx64, a->base_hash);
    model[n++] = (sslc_ckpt_attr){"adapter_mode", SSLC_CKPT_ATTR_STRING, 0, 0,
                                  sslc_peft_mode_name(a->mode)};
    model[n++] = (sslc_ckpt_attr){"base_checkpoint", SSLC_CKPT_ATTR_STRING, 0, 0, a->base_path};
    model[n++] = (sslc_ckpt_attr){"base_hash", SSLC_CKPT_ATTR_STRING, 0, 0, hash};
    if (a->lora) {
        model[n++] = (sslc_ckpt_attr){"lora_rank", SSLC_CKPT_ATTR_INT, a->lora->rank, 0, NULL};
        model[n++] = (sslc_ckpt_attr){"lora_alpha", SSLC_CKPT_ATTR_FLOAT, 0, a->lora->alpha, NULL};
        model[n++] = (sslc_ckpt_attr){"lora_targets", SSLC_CKPT_ATTR_STRING, 0, 0,
                                      a->lora->targets};
    }
    sslc_params *prompts = sslc_encoder_prompts((sslc_encoder *)enc);
    if ((a->mode == SSLC_PEFT_PROMPT) != (prompts != NULL))
        return sslc_error(SSLC_ERR_INVALID, "adapter %s: visual prompts go with mode prompt", path);
    if (prompts) {
        model[n++] = (sslc_ckpt_attr){"prompt_count", SSLC_CKPT_ATTR_INT, enc->net.vit.prompts, 0,
                                      NULL};
        model[n++] = (sslc_ckpt_attr){"prompt_depth", SSLC_CKPT_ATTR_STRING, 0, 0,
                                      enc->net.vit.deep_prompts ? "deep" : "shallow"};
    }
    sslc_status st;
    if (head) {
        if ((st = sslc_mlp_spec(spec, sizeof spec, head, head->n_layers)))
            return st;
        model[n++] = (sslc_ckpt_attr){"num_classes", SSLC_CKPT_ATTR_INT, head->out_dim, 0, NULL};
        model[n++] = (sslc_ckpt_attr){"classifier", SSLC_CKPT_ATTR_STRING, 0, 0, spec};
    }
    sslc_params changed;
    if ((st = changed_table(&changed, a->mode, enc->params, true)))
        return st;
    sslc_ckpt_part parts[4];
    size_t n_parts = 0;
    if (changed.count)
        parts[n_parts++] = (sslc_ckpt_part){"encoder_changed", &changed};
    if (a->lora)
        parts[n_parts++] = (sslc_ckpt_part){"lora", (sslc_params *)&a->lora->params};
    if (prompts)
        parts[n_parts++] = (sslc_ckpt_part){"prompts", prompts};
    if (head)
        parts[n_parts++] = (sslc_ckpt_part){"classifier", (sslc_params *)&head->params};
    sslc_ckpt c = {.method = "adapter", .config = config ? config : "", .epoch = epoch,
                   .step = step, .model = model, .n_model = n, .parts = parts,
                   .n_parts = n_parts};
    st = sslc_ckpt_save(path, &c);
    sslc_params_free(&changed);
    return st;
}

// The adapter's description, checked against enc: its mode, and the
// refusal of another base (architecture or weights).
static sslc_status read_header(const char *path, const sslc_encoder *enc, sslc_ckpt_info *ci,
                               sslc_peft_mode *mode)
{
    sslc_status st = sslc_ckpt_read_info(path, ci);
    if (st)
        return st;
    const sslc_ckpt_attr *m = sslc_ckpt_info_attr(ci, "adapter_mode");
    const sslc_ckpt_attr *base = sslc_ckpt_info_attr(ci, "base_checkpoint");
    const sslc_ckpt_attr *hash = sslc_ckpt_info_attr(ci, "base_hash");
    if (!m || m->type != SSLC_CKPT_ATTR_STRING || !hash || hash->type != SSLC_CKPT_ATTR_STRING ||
        !base || base->type != SSLC_CKPT_ATTR_STRING)
        return sslc_error(SSLC_ERR_FORMAT, "%s is not an adapter file (no adapter_mode, "
                                           "base_checkpoint and base_hash in /model)", path);
    if ((st = sslc_peft_mode_parse(mode, m->s)))
        return sslc_error_prefix(st, "adapter %s", path);
    char have[32];
    snprintf(have, sizeof have, "%016" PRIx64, sslc_adapter_base_hash(enc->params));
    if (strcmp(have, hash->s))
        return sslc_error(SSLC_ERR_INVALID,
                          "adapter %s was trained on the encoder of %s (weights hash %s); this "
                          "encoder's weights hash is %s: give that checkpoint as the base",
                          path, base->s, hash->s, have);
    return SSLC_OK;
}

sslc_status sslc_adapter_apply(sslc_encoder *enc, const char *path)
{
    sslc_ckpt_info ci = {0};
    sslc_params changed = {0};
    sslc_lora lora = {0};
    sslc_peft_mode mode;
    bool added_prompts = false;
    sslc_status st = read_header(path, enc, &ci, &mode);
    if (st)
        goto done;
    if (mode == SSLC_PEFT_LORA) {
        const sslc_ckpt_attr *r = sslc_ckpt_info_attr(&ci, "lora_rank");
        const sslc_ckpt_attr *al = sslc_ckpt_info_attr(&ci, "lora_alpha");
        const sslc_ckpt_attr *tg = sslc_ckpt_info_attr(&ci, "lora_targets");
        if (!r || r->type != SSLC_CKPT_ATTR_INT || !al || al->type != SSLC_CKPT_ATTR_FLOAT ||
            !tg || tg->type != SSLC_CKPT_ATTR_STRING) {
            st = sslc_error(SSLC_ERR_FORMAT, "adapter %s: a LoRA adapter without lora_rank, "
                                             "lora_alpha and lora_targets",
                            path);
            goto done;
        }
        if ((st = sslc_lora_create(&lora, enc->params, r->i, al->f, tg->s))) {
            st = sslc_error_prefix(st, "adapter %s", path);
            goto done;
        }
    }
    if (mode == SSLC_PEFT_PROMPT) {
        const sslc_ckpt_attr *pc = sslc_ckpt_info_attr(&ci, "prompt_count");
        const sslc_ckpt_attr *pd = sslc_ckpt_info_attr(&ci, "prompt_depth");
        if (!pc || pc->type != SSLC_CKPT_ATTR_INT || !pd || pd->type != SSLC_CKPT_ATTR_STRING ||
            (strcmp(pd->s, "deep") && strcmp(pd->s, "shallow"))) {
            st = sslc_error(SSLC_ERR_FORMAT, "adapter %s: a prompt adapter without prompt_count "
                                             "and prompt_depth (shallow or deep)",
                            path);
            goto done;
        }
        if (sslc_encoder_prompts(enc)) {
            st = sslc_error(SSLC_ERR_INVALID, "adapter %s: this encoder has prompts already", path);
            goto done;
        }
        // Added here, and taken away again below if anything fails.
        if ((st = sslc_encoder_add_prompts(enc, pc->i, !strcmp(pd->s, "deep")))) {
            st = sslc_error_prefix(st, "adapter %s", path);
            goto done;
        }
        added_prompts = true;
    }
    if ((st = changed_table(&changed, mode, enc->params, false)))
        goto done;
    // The architecture (the first four of the encoder attributes: arch,
    // in_channels, width, cifar_stem) is checked with the tensors; the hash
    // matched, so a mismatch here means a damaged file.
    sslc_ckpt_attr model[SSLC_ENCODER_ATTRS];
    sslc_encoder_attrs(model, enc, 0);
    sslc_ckpt_part parts[3];
    size_t n_parts = 0;
    if (mode == SSLC_PEFT_PROMPT)
        parts[n_parts++] = (sslc_ckpt_part){"prompts", sslc_encoder_prompts(enc)};
    if (changed.count)
        parts[n_parts++] = (sslc_ckpt_part){"encoder_changed", &changed};
    if (mode == SSLC_PEFT_LORA)
        parts[n_parts++] = (sslc_ckpt_part){"lora", &lora.params};
    sslc_ckpt c = {.method = "adapter", .model = model, .n_model = 4, .parts = parts,
                   .n_parts = n_parts};
    if ((st = sslc_ckpt_load(path, &c)))
        goto done;
    for (int64_t i = 0, k = 0; i < enc->params->count; i++) {
        const sslc_tensor *t = &enc->params->tensors[i];
        if (sslc_peft_changes(mode, t))
            memcpy(sslc_params_data(enc->params, t),
                   sslc_params_data(&changed, &changed.tensors[k++]),
                   (size_t)t->numel * sizeof(float));
    }
    if (mode == SSLC_PEFT_LORA)
        sslc_lora_merge(&lora, enc->params);
done:
    if (st && added_prompts)
        sslc_vit_drop_prompts(&enc->net.vit);
    sslc_params_free(&changed);
    sslc_lora_destroy(&lora);
    sslc_ckpt_info_free(&ci);
    return st;
}
