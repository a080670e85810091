#include "src/eval/encoder.h"

#include <stdio.h>
#include <string.h>

#include "src/io/checkpoint.h"

// One part of a checkpoint into a table of the shapes it should have.
static sslc_status load_part(const char *path, const char *name, sslc_params *params)
{
    sslc_ckpt_part part = {name, params};
    sslc_ckpt c = {.parts = &part, .n_parts = 1};
    return sslc_ckpt_load(path, &c);
}

sslc_status sslc_encoder_load(sslc_resnet *net, sslc_encoder_info *info, const char *path,
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
    sslc_resnet_config cfg = {0};
    if (!arch || arch->type != SSLC_CKPT_ATTR_STRING || !ch || !width || !stem) {
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s: no encoder description (model "
                                         "attributes arch, in_channels, width, cifar_stem)",
                        path);
        goto done;
    }
    if ((st = sslc_resnet_parse_arch(&cfg, arch->s))) {
        st = sslc_error_prefix(st, "checkpoint %s", path);
        goto done;
    }
    cfg.in_channels = ch->i;
    cfg.width = width->i;
    cfg.cifar_stem = stem->i != 0;
    if (in_channels > 0 && in_channels != cfg.in_channels) {
        st = sslc_error(SSLC_ERR_INVALID, "checkpoint %s: the encoder takes %lld-channel images, "
                                          "the data has %lld channels",
                        path, (long long)cfg.in_channels, (long long)in_channels);
        goto done;
    }
    if ((st = sslc_resnet_create(net, &cfg)) || (st = load_part(path, "encoder", &net->params)))
        goto done;
    info->image_size = size ? size->i : 0;
    snprintf(info->method, sizeof info->method, "%s", ci.method);
    info->step = ci.step;
    info->epoch = ci.epoch;
done:
    if (st)
        sslc_resnet_destroy(net);
    sslc_ckpt_info_free(&ci);
    return st;
}

sslc_status sslc_projector_load(sslc_mlp *head, const char *path, int64_t in_dim)
{
    memset(head, 0, sizeof *head);
    sslc_ckpt_info ci = {0};
    sslc_status st = sslc_ckpt_read_info(path, &ci);
    if (st)
        return st;
    const sslc_ckpt_attr *spec = sslc_ckpt_info_attr(&ci, "projector");
    if (!spec || spec->type != SSLC_CKPT_ATTR_STRING || !spec->s[0]) {
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s has no projector (only pretraining "
                                         "checkpoints do; an exported encoder does not)",
                        path);
        goto done;
    }
    if (!(st = sslc_mlp_create(head, in_dim, spec->s)))
        st = load_part(path, "projector", &head->params);
done:
    if (st)
        sslc_mlp_destroy(head);
    sslc_ckpt_info_free(&ci);
    return st;
}

sslc_status sslc_classifier_load(sslc_mlp *head, const char *path, int64_t in_dim)
{
    memset(head, 0, sizeof *head);
    sslc_ckpt_info ci = {0};
    sslc_status st = sslc_ckpt_read_info(path, &ci);
    if (st)
        return st;
    const sslc_ckpt_attr *k = sslc_ckpt_info_attr(&ci, "num_classes");
    if (!k || k->type != SSLC_CKPT_ATTR_INT || k->i < 2) {
        st = sslc_error(SSLC_ERR_FORMAT, "checkpoint %s has no classifier (the model.h5 of sslc "
                                         "finetune or sslc supervised has one; a pretraining "
                                         "checkpoint or an exported encoder does not)",
                        path);
        goto done;
    }
    char spec[32];
    snprintf(spec, sizeof spec, "linear:%lld", (long long)k->i);
    if (!(st = sslc_mlp_create(head, in_dim, spec)))
        st = load_part(path, "classifier", &head->params);
done:
    if (st)
        sslc_mlp_destroy(head);
    sslc_ckpt_info_free(&ci);
    return st;
}

size_t sslc_encoder_attrs(sslc_ckpt_attr *attrs, const sslc_resnet *enc, int64_t image_size)
{
    const sslc_resnet_config *e = &enc->config;
    size_t n = 0;
    attrs[n++] = (sslc_ckpt_attr){"arch", SSLC_CKPT_ATTR_STRING, 0, 0, sslc_resnet_arch(e)};
    attrs[n++] = (sslc_ckpt_attr){"in_channels", SSLC_CKPT_ATTR_INT, e->in_channels, 0, NULL};
    attrs[n++] = (sslc_ckpt_attr){"width", SSLC_CKPT_ATTR_INT, e->width, 0, NULL};
    attrs[n++] = (sslc_ckpt_attr){"cifar_stem", SSLC_CKPT_ATTR_INT, e->cifar_stem, 0, NULL};
    attrs[n++] = (sslc_ckpt_attr){"feature_dim", SSLC_CKPT_ATTR_INT, enc->feature_dim, 0, NULL};
    attrs[n++] = (sslc_ckpt_attr){"image_size", SSLC_CKPT_ATTR_INT, image_size, 0, NULL};
    return n;
}

sslc_status sslc_encoder_save(const char *path, sslc_resnet *enc, sslc_mlp *head,
                              const char *method, const char *config, int64_t image_size,
                              uint64_t seed, int64_t step, int64_t epoch)
{
    sslc_ckpt_attr model[SSLC_ENCODER_ATTRS + 1];
    size_t n = sslc_encoder_attrs(model, enc, image_size);
    model[n++] = (sslc_ckpt_attr){"num_classes", SSLC_CKPT_ATTR_INT, head ? head->out_dim : 0, 0, NULL};
    sslc_ckpt_part parts[2] = {{"encoder", &enc->params}, {"classifier", head ? &head->params : NULL}};
    sslc_ckpt c = {.method = method, .config = config ? config : "", .epoch = epoch,
                   .step = step, .seed = seed, .model = model,
                   .n_model = n, .parts = parts,
                   .n_parts = head ? 2 : 1};
    return sslc_ckpt_save(path, &c);
}
