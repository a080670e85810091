#include "src/eval/encoder.h"

#include <string.h>

#include "src/io/checkpoint.h"

// One part of a checkpoint into a table of the shapes it should have.
static sslc_status load_part(const char *path, const char *name, sslc_params *params)
{
    sslc_ckpt_part part = {name, params};
    sslc_ckpt c = {.parts = &part, .n_parts = 1};
    return sslc_ckpt_load(path, &c);
}

// The ViT of a checkpoint's /model attributes (docs/vit.md).
static sslc_status vit_config_read(sslc_vit_config *v, const sslc_ckpt_info *ci, const char *path)
{
    static const char *const keys[] = {"image_size", "patch", "layers", "heads", "hidden", "mlp_dim"};
    int64_t *fields[] = {&v->image_size, &v->patch, &v->layers, &v->heads, &v->hidden, &v->mlp_dim};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const sslc_ckpt_attr *a = sslc_ckpt_info_attr(ci, keys[i]);
        if (!a || a->type != SSLC_CKPT_ATTR_INT)
            return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: a ViT encoder without the model "
                                               "attribute %s (docs/vit.md lists them)",
                              path, keys[i]);
        *fields[i] = a->i;
    }
    const sslc_ckpt_attr *pos = sslc_ckpt_info_attr(ci, "pos_embedding");
    const char *kind = pos && pos->type == SSLC_CKPT_ATTR_STRING ? pos->s : "learned";
    if (strcmp(kind, "learned") && strcmp(kind, "sincos"))
        return sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: pos_embedding '%s' is neither "
                                           "learned nor sincos",
                          path, kind);
    v->pos = strcmp(kind, "sincos") ? SSLC_VIT_POS_LEARNED : SSLC_VIT_POS_SINCOS;
    return SSLC_OK;
}

sslc_status sslc_encoder_load(sslc_encoder *net, sslc_encoder_info *info, const char *path,
                              int64_t in_channels)
{
    memset(net, 0, sizeof *net);
    memset(info, 0, sizeof *info);
    sslc_ckpt_info ci = {0};
    sslc_status st = sslc_ckpt_read_info(path, &ci);
    if (st)
        return st;
    const sslc_ckpt_attr *arch = sslc_ckpt_info_attr(&ci, "arch");
    const sslc_ckpt_attr *ch = sslc_ckpt_info_attr(&ci, "in_channels");
    const sslc_ckpt_attr *width = sslc_ckpt_info_attr(&ci, "width");
    const sslc_ckpt_attr *stem = sslc_ckpt_info_attr(&ci, "cifar_stem");
    const sslc_ckpt_attr *size = sslc_ckpt_info_attr(&ci, "image_size");
    sslc_encoder_config cfg = {0};
    const bool vit = arch && arch->type == SSLC_CKPT_ATTR_STRING && sslc_encoder_arch_is_vit(arch->s);
    if (!arch || arch->type != SSLC_CKPT_ATTR_STRING || !ch || (!vit && (!width || !stem))) {
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: no encoder description (model "
                                         "attributes arch, in_channels, width, cifar_stem)",
                        path);
        goto done;
    }
    if (vit) {
        cfg.kind = SSLC_ENCODER_VIT;
        if ((st = vit_config_read(&cfg.vit, &ci, path)))
            goto done;
        cfg.vit.in_channels = ch->i;
    } else {
        if ((st = sslc_encoder_parse_arch(&cfg, arch->s))) {
            st = sslc_error_prefix(st, "checkpoint %s", path);
            goto done;
        }
        cfg.resnet.in_channels = ch->i;
        cfg.resnet.width = width->i;
        cfg.resnet.cifar_stem = stem->i != 0;
    }
    if (in_channels > 0 && in_channels != ch->i) {
        st = sslc_error(SSLC_ERR_INVALID, "checkpoint %s: the encoder takes %lld-channel images, "
                                          "the data has %lld channels",
                        path, (long long)ch->i, (long long)in_channels);
        goto done;
    }
    if ((st = sslc_encoder_create(net, &cfg)) || (st = load_part(path, "encoder", net->params)))
        goto done;
    info->image_size = size ? size->i : 0;
    snprintf(info->method, sizeof info->method, "%s", ci.method);
    info->step = ci.step;
    info->epoch = ci.epoch;
done:
    if (st)
        sslc_encoder_destroy(net);
    sslc_ckpt_info_free(&ci);
    return st;
}

// The head stored as `part`, built from the spec in the /model attribute of
// the same name; a fine-tuned classifier written before that attribute
// existed is a Linear of num_classes outputs.
static sslc_status head_load(sslc_mlp *head, const char *path, const char *part,
                             int64_t in_dim, const char *missing)
{
    memset(head, 0, sizeof *head);
    sslc_ckpt_info ci = {0};
    sslc_status st = sslc_ckpt_read_info(path, &ci);
    if (st)
        return st;
    const sslc_ckpt_attr *spec = sslc_ckpt_info_attr(&ci, part);
    const sslc_ckpt_attr *classes = sslc_ckpt_info_attr(&ci, "num_classes");
    char linear[64] = "";
    if (!strcmp(part, "classifier") && classes && classes->type == SSLC_CKPT_ATTR_INT &&
        classes->i > 0)
        snprintf(linear, sizeof linear, "linear:%lld", (long long)classes->i);
    const char *s = spec && spec->type == SSLC_CKPT_ATTR_STRING ? spec->s : linear;
    if (!s[0]) {
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s has no %s (%s)", path, part, missing);
        goto done;
    }
    if (!(st = sslc_mlp_create(head, in_dim, s)))
        st = load_part(path, part, &head->params);
done:
    if (st)
        sslc_mlp_destroy(head);
    sslc_ckpt_info_free(&ci);
    return st;
}

sslc_status sslc_projector_load(sslc_mlp *head, const char *path, int64_t in_dim)
{
    return head_load(head, path, "projector", in_dim,
                     "only pretraining checkpoints do; an exported encoder does not");
}

sslc_status sslc_classifier_load(sslc_mlp *head, const char *path, int64_t in_dim)
{
    return head_load(head, path, "classifier", in_dim,
                     "only the models of finetune, supervised and distill do; a pretraining "
                     "checkpoint does not");
}

size_t sslc_encoder_attrs(sslc_ckpt_attr *attrs, const sslc_encoder *enc, int64_t image_size)
{
    size_t n = 0;
    attrs[n++] = (sslc_ckpt_attr){"arch", SSLC_CKPT_ATTR_STRING, 0, 0, sslc_encoder_arch(enc)};
    attrs[n++] = (sslc_ckpt_attr){"in_channels", SSLC_CKPT_ATTR_INT, enc->in_channels, 0, NULL};
    if (enc->kind == SSLC_ENCODER_VIT) { // the names scripts/sslc_torch.py reads (docs/vit.md)
        const sslc_vit_config *v = &enc->net.vit.config;
        attrs[n++] = (sslc_ckpt_attr){"patch", SSLC_CKPT_ATTR_INT, v->patch, 0, NULL};
        attrs[n++] = (sslc_ckpt_attr){"layers", SSLC_CKPT_ATTR_INT, v->layers, 0, NULL};
        attrs[n++] = (sslc_ckpt_attr){"heads", SSLC_CKPT_ATTR_INT, v->heads, 0, NULL};
        attrs[n++] = (sslc_ckpt_attr){"hidden", SSLC_CKPT_ATTR_INT, v->hidden, 0, NULL};
        attrs[n++] = (sslc_ckpt_attr){"mlp_dim", SSLC_CKPT_ATTR_INT, v->mlp_dim, 0, NULL};
        attrs[n++] = (sslc_ckpt_attr){"pos_embedding", SSLC_CKPT_ATTR_STRING, 0, 0,
                                      v->pos == SSLC_VIT_POS_SINCOS ? "sincos" : "learned"};
        image_size = v->image_size; // a ViT takes no other size
    } else {
        const sslc_resnet_config *e = &enc->net.resnet.config;
        attrs[n++] = (sslc_ckpt_attr){"width", SSLC_CKPT_ATTR_INT, e->width, 0, NULL};
        attrs[n++] = (sslc_ckpt_attr){"cifar_stem", SSLC_CKPT_ATTR_INT, e->cifar_stem, 0, NULL};
    }
    attrs[n++] = (sslc_ckpt_attr){"feature_dim", SSLC_CKPT_ATTR_INT, enc->feature_dim, 0, NULL};
    attrs[n++] = (sslc_ckpt_attr){"image_size", SSLC_CKPT_ATTR_INT, image_size, 0, NULL};
    return n;
}

sslc_status sslc_encoder_save(const char *path, sslc_encoder *enc, sslc_mlp *head,
                              const char *method, const char *config, int64_t image_size,
                              uint64_t seed, int64_t step, int64_t epoch)
{
    sslc_ckpt_attr model[SSLC_ENCODER_ATTRS + 2];
    size_t n = sslc_encoder_attrs(model, enc, image_size);
    model[n++] = (sslc_ckpt_attr){"num_classes", SSLC_CKPT_ATTR_INT, head ? head->out_dim : 0, 0, NULL};
    char spec[512];
    if (head) {
        sslc_status st = sslc_mlp_spec(spec, sizeof spec, head, head->n_layers);
        if (st)
            return st;
        model[n++] = (sslc_ckpt_attr){"classifier", SSLC_CKPT_ATTR_STRING, 0, 0, spec};
    }
    sslc_ckpt_part parts[2] = {{"encoder", enc->params}, {"classifier", head ? &head->params : NULL}};
    sslc_ckpt c = {.method = method, .config = config ? config : "", .epoch = epoch,
                   .step = step, .seed = seed, .model = model,
                   .n_model = n, .parts = parts,
                   .n_parts = head ? 2 : 1};
    return sslc_ckpt_save(path, &c);
}
