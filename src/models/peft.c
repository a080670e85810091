#include "src/models/peft.h"

#include <string.h>

static const char *const NAMES[] = {"full", "linear", "bn-head", "bias", "lora", "prompt"};

sslc_status sslc_peft_mode_parse(sslc_peft_mode *mode, const char *name)
{
    for (int m = 0; m < (int)(sizeof NAMES / sizeof NAMES[0]); m++)
        if (!strcmp(name, NAMES[m])) {
            *mode = (sslc_peft_mode)m;
            return SSLC_OK;
        }
    return sslc_error(SSLC_ERR_INVALID,
                      "unknown fine-tuning mode '%s' (full, linear, bn-head, bias, lora or prompt)", name);
}

const char *sslc_peft_mode_name(sslc_peft_mode mode)
{
    return (unsigned)mode < sizeof NAMES / sizeof NAMES[0] ? NAMES[mode] : "?";
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

bool sslc_peft_trains(sslc_peft_mode mode, const sslc_tensor *t)
{
    if (t->kind != SSLC_TENSOR_PARAM)
        return false;
    switch (mode) {
    case SSLC_PEFT_FULL: return true;
    case SSLC_PEFT_BN_HEAD: return (t->flags & SSLC_TENSOR_NO_DECAY) != 0;
    // ".bias", and the ViT attention's in_proj_bias (torchvision's name)
    case SSLC_PEFT_BIAS: return ends_with(t->name, ".bias") || ends_with(t->name, "_bias");
    case SSLC_PEFT_LINEAR:
    case SSLC_PEFT_LORA:
    case SSLC_PEFT_PROMPT: return false;
    }
    return false;
}

bool sslc_peft_encoder_trains(sslc_peft_mode mode) { return mode != SSLC_PEFT_LINEAR; }

bool sslc_peft_changes(sslc_peft_mode mode, const sslc_tensor *t)
{
    if (t->kind == SSLC_TENSOR_BUFFER)
        return sslc_peft_encoder_trains(mode);
    return sslc_peft_trains(mode, t);
}

int64_t sslc_peft_trainable(sslc_peft_mode mode, const sslc_params *p)
{
    int64_t n = 0;
    for (int64_t i = 0; i < p->count; i++)
        if (sslc_peft_trains(mode, &p->tensors[i]))
            n += p->tensors[i].numel;
    return n;
}
