// The Vision Transformer through the sslc binary (issue 17's encoder
// interface): SimCLR pretraining with --arch vit-tiny on 28 px images
// (patch 7), where 1 + 1 resumed steps give the weights of 2 straight ones
// and the checkpoint describes the ViT; MoCo v3 with a ViT and the fixed
// sin-cos embedding; linear-eval and finetune on the pretrained checkpoint,
// what a ViT has no use for (--mode bn-head) refused; LoRA and visual
// prompts with their adapters and export --merge; torch group:
// scripts/sslc_torch.py loads the pretrained checkpoint and its LoRA-merged
// export strictly and gives sslc's features (skipped, with the reason,
// without torch).
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/core/rng.h"
#include "data/image.h"
#include "src/eval/adapter.h"
#include "src/eval/encoder.h"
#include "src/io/checkpoint.h"
#include "src/models/encoder.h"
#include "tests/harness.h"

enum { SIDE = 28, PER_CLASS = 8 };

// Two classes of 28 px grayscale images (stripes and disks) in class folders.
static void make_folder(const char *dir)
{
    char path[4400];
    uint8_t px[SIDE * SIDE];
    for (int fam = 0; fam < 2; fam++) {
        snprintf(path, sizeof path, "%s/%s", dir, fam ? "disks" : "stripes");
        mkdir(path, 0777);
        for (int i = 0; i < PER_CLASS; i++) {
            sslc_rng r = sslc_rng_make(17, (uint64_t)fam, (uint64_t)i, 0, 0);
            double period = sslc_rng_range(&r, 4, 8), phase = sslc_rng_range(&r, 0, 6.3);
            double cx = sslc_rng_range(&r, 8, 20), cy = sslc_rng_range(&r, 8, 20);
            double rad = sslc_rng_range(&r, 4, 9);
            for (int y = 0; y < SIDE; y++)
                for (int x = 0; x < SIDE; x++) {
                    double v = fam ? ((x - cx) * (x - cx) + (y - cy) * (y - cy) < rad * rad ? 220 : 40)
                                   : 130 + 90 * sin(6.2832 * y / period + phase);
                    v += sslc_rng_range(&r, -20, 20);
                    px[y * SIDE + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            snprintf(path, sizeof path, "%s/%s/%03d.png", dir, fam ? "disks" : "stripes", i);
            assert_int_equal(sslc_png_write(path, px, SIDE, SIDE, 1), SSLC_OK);
        }
    }
}

static char dir[1024];

// The tiny folder and a 2-step SimCLR vit-tiny run in it (once per process).
static const char *pretrained(void)
{
    static char ckpt[1200];
    if (ckpt[0])
        return ckpt;
    snprintf(dir, sizeof dir, "%.1000s", sslc_test_tmpdir("vit-cli"));
    char images[1100], cmd[16384];
    snprintf(images, sizeof images, "%s/images", dir);
    mkdir(images, 0777);
    make_folder(images);
    snprintf(cmd, sizeof cmd,
             "'%s' pretrain --data imagefolder:'%s' --out '%s/straight' --arch vit-tiny --patch 7 "
             "--batch 8 --max-steps 2 --knn-bank none --seed 3 --no-async > '%s/log.txt' 2>&1 "
             "|| { cat '%s/log.txt'; exit 1; }",
             SSLC_EXE, images, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(ckpt, sizeof ckpt, "%s/straight/last.h5", dir);
    return ckpt;
}

static void run_ok(const char *what, const char *args)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s/log.txt' 2>&1 || { cat '%s/log.txt'; exit 1; }",
             SSLC_EXE, args, dir, dir);
    if (system(cmd) != 0)
        fail_msg("%s failed", what);
}

static void assert_attr_int(const sslc_ckpt_info *ci, const char *key, int64_t want)
{
    const sslc_ckpt_attr *a = sslc_ckpt_info_attr(ci, key);
    if (!a || a->type != SSLC_CKPT_ATTR_INT || a->i != want)
        fail_msg("model attribute %s: want %lld", key, (long long)want);
}

// SimCLR with a vit-tiny: the checkpoint describes the ViT as docs/vit.md
// says, loads back into the same ViT, and 1 + 1 resumed steps give the
// bytes of 2 straight steps.
static void simclr_vit_trains_describes_and_resumes(void **state)
{
    (void)state;
    const char *straight = pretrained();
    sslc_ckpt_info ci;
    assert_int_equal(sslc_ckpt_read_info(straight, &ci), SSLC_OK);
    assert_int_equal(ci.step, 2);
    const sslc_ckpt_attr *arch = sslc_ckpt_info_attr(&ci, "arch");
    const sslc_ckpt_attr *pos = sslc_ckpt_info_attr(&ci, "pos_embedding");
    assert_non_null(arch);
    assert_string_equal(arch->s, "vit-tiny");
    assert_non_null(pos);
    assert_string_equal(pos->s, "learned");
    assert_attr_int(&ci, "patch", 7);
    assert_attr_int(&ci, "image_size", SIDE);
    assert_attr_int(&ci, "hidden", 192);
    assert_attr_int(&ci, "layers", 12);
    assert_attr_int(&ci, "heads", 3);
    assert_attr_int(&ci, "mlp_dim", 768);
    assert_attr_int(&ci, "in_channels", 3); // the CLI reads PNGs as RGB
    assert_attr_int(&ci, "feature_dim", 192);
    if (!strstr(ci.config, "--patch=7") || !strstr(ci.config, "--arch=vit-tiny"))
        fail_msg("checkpoint config lacks the ViT options:\n%s", ci.config);
    sslc_ckpt_info_free(&ci);

    char args[8192], split[1200];
    snprintf(split, sizeof split, "%s/split", dir);
    snprintf(args, sizeof args,
             "pretrain --data imagefolder:'%s/images' --out '%s' --arch vit-tiny --patch 7 "
             "--batch 8 --max-steps 1 --knn-bank none --seed 3 --no-async",
             dir, split);
    run_ok("pretrain 1 step", args);
    snprintf(args, sizeof args, "pretrain --resume '%s' --max-steps 1", split); // 1 more step
    run_ok("pretrain --resume", args);

    char pb[1300];
    snprintf(pb, sizeof pb, "%s/last.h5", split);
    sslc_encoder ea, eb;
    sslc_encoder_info ia, ib;
    assert_int_equal(sslc_encoder_load(&ea, &ia, straight, 3), SSLC_OK);
    assert_int_equal(sslc_encoder_load(&eb, &ib, pb, 3), SSLC_OK);
    assert_int_equal(ea.kind, SSLC_ENCODER_VIT);
    assert_int_equal(ea.net.vit.config.patch, 7);
    assert_int_equal(ea.net.vit.config.image_size, SIDE);
    assert_int_equal(ea.net.vit.config.pos, SSLC_VIT_POS_LEARNED);
    assert_int_equal(ib.step, 2);
    assert_int_equal(ea.params->n_values, eb.params->n_values);
    assert_memory_equal(ea.params->values, eb.params->values, (size_t)ea.params->n_values * 4);
    sslc_encoder_destroy(&ea), sslc_encoder_destroy(&eb);
}

// MoCo v3 with a ViT, MoCo v3's fixed sin-cos position embedding and its
// frozen random patch projection: two steps, a finite loss, the table
// stored as a buffer (not trained), the patch projection bit for bit the
// initialisation (seed 4) while the rest of the encoder moved; and
// --freeze-patch refused for a ResNet.
static void mocov3_vit_trains(void **state)
{
    (void)state;
    pretrained();
    char args[8192], ckpt[1200];
    snprintf(args, sizeof args,
             "pretrain --data imagefolder:'%s/images' --out '%s/mocov3' --method moco "
             "--moco-version 3 --arch vit-tiny --patch 7 --pos-embed sincos --freeze-patch "
             "--batch 8 --max-steps 2 --knn-bank none --seed 4 --no-async",
             dir, dir);
    run_ok("pretrain --method moco --moco-version 3 --arch vit-tiny", args);
    snprintf(ckpt, sizeof ckpt, "%s/mocov3/last.h5", dir);
    sslc_encoder enc;
    sslc_encoder_info info;
    assert_int_equal(sslc_encoder_load(&enc, &info, ckpt, 0), SSLC_OK);
    assert_int_equal(info.step, 2);
    assert_int_equal(enc.net.vit.config.pos, SSLC_VIT_POS_SINCOS);
    for (int64_t i = 0; i < enc.params->n_values; i++)
        if (!isfinite(enc.params->values[i]))
            fail_msg("parameter value %lld is not finite", (long long)i);
    sslc_encoder init;
    sslc_encoder_config c = sslc_encoder_config_of(&enc);
    assert_int_equal(sslc_encoder_create(&init, &c), SSLC_OK);
    sslc_encoder_init(&init, 4);
    const sslc_vit *a = &enc.net.vit, *b = &init.net.vit;
    const size_t patch_w = (size_t)(a->config.hidden * a->config.in_channels * 7 * 7);
    assert_memory_equal(a->params.values + a->conv_w, b->params.values + b->conv_w, patch_w * 4);
    assert_memory_equal(a->params.values + a->conv_b, b->params.values + b->conv_b,
                        (size_t)a->config.hidden * 4);
    assert_memory_not_equal(a->params.values + a->blocks[0].in_w,
                            b->params.values + b->blocks[0].in_w, (size_t)a->config.hidden * 4);
    sslc_encoder_destroy(&init);
    sslc_encoder_destroy(&enc);
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "grep -q 'loss' '%s/mocov3/metrics.jsonl' || grep -qi loss '%s/log.txt'",
             dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "'%s' pretrain --data imagefolder:'%s/images' --out '%s/rn-frozen' --freeze-patch "
             "--max-steps 1 > '%s/log.txt' 2>&1; test $? -ne 0 && grep -q 'needs --arch vit' "
             "'%s/log.txt'", SSLC_EXE, dir, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
}

// The evaluation commands take the ViT from the checkpoint's description.
static void linear_eval_and_finetune_take_the_vit(void **state)
{
    (void)state;
    const char *ckpt = pretrained();
    char args[8192], cmd[16384];
    snprintf(args, sizeof args,
             "linear-eval --ckpt '%s' --train imagefolder:'%s/images' --test "
             "imagefolder:'%s/images'",
             ckpt, dir, dir);
    run_ok("linear-eval", args);
    snprintf(cmd, sizeof cmd, "grep -qi 'acc' '%s/log.txt'", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args,
             "finetune --ckpt '%s' --train imagefolder:'%s/images' --test imagefolder:'%s/images' "
             "--batch 8 --max-steps 1 --out '%s/ft'",
             ckpt, dir, dir, dir);
    run_ok("finetune", args);
    snprintf(cmd, sizeof cmd, "grep -q 'vit-tiny, patch 7' '%s/log.txt'", dir);
    assert_int_equal(system(cmd), 0);
    // BitFit on a ViT: every bias, the attention's in_proj_bias included:
    // conv_proj 192 + 12 layers x (ln_1 192, in_proj 576, out_proj 192,
    // ln_2 192, mlp 768 + 192) + encoder.ln 192 = 25,728.
    snprintf(args, sizeof args,
             "finetune --ckpt '%s' --train imagefolder:'%s/images' --test imagefolder:'%s/images' "
             "--batch 8 --max-steps 1 --mode bias",
             ckpt, dir, dir);
    run_ok("finetune --mode bias", args);
    snprintf(cmd, sizeof cmd, "grep -q '(encoder 25728,' '%s/log.txt'", dir);
    assert_int_equal(system(cmd), 0);
    const char *refused[] = {"bn-head"};
    for (int r = 0; r < 1; r++) {
        snprintf(cmd, sizeof cmd,
                 "'%s' finetune --ckpt '%s' --train imagefolder:'%s/images' --test "
                 "imagefolder:'%s/images' --batch 8 --max-steps 1 --mode %s > '%s/log.txt' 2>&1; "
                 "test $? -ne 0 && grep -q 'this encoder is a ViT' '%s/log.txt'",
                 SSLC_EXE, ckpt, dir, dir, refused[r], dir, dir);
        assert_int_equal(system(cmd), 0);
    }
}

// LoRA on the ViT's attention and MLP (rank 4 on vit-tiny: 12 layers x
// (in_proj 3,072 + out_proj 1,536 + mlp 3,840 + 3,840) = 147,456), and
// export --merge folding it into plain weights that give the adapted
// features; deep prompts (2 x 192 x 12 = 4,608) stored in adapter.h5 and
// applied by knn --adapter, refused by export --merge; prompts refused for
// a ResNet.
static void lora_and_prompts_on_the_vit(void **state)
{
    (void)state;
    const char *ckpt = pretrained();
    char args[8192], cmd[16384], merged[1300], adapter[1300];
    snprintf(args, sizeof args,
             "finetune --ckpt '%s' --train imagefolder:'%s/images' --test imagefolder:'%s/images' "
             "--batch 8 --max-steps 2 --lr 0.5 --mode lora --out '%s/lora'",
             ckpt, dir, dir, dir);
    run_ok("finetune --mode lora", args);
    snprintf(cmd, sizeof cmd, "grep -q '(encoder 0, adapters 147456,' '%s/log.txt'", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(merged, sizeof merged, "%s/lora-merged.h5", dir);
    snprintf(adapter, sizeof adapter, "%s/lora/adapter.h5", dir);
    snprintf(args, sizeof args, "export '%s' --merge '%s' --out '%s'", ckpt, adapter, merged);
    run_ok("export --merge (LoRA)", args);
    sslc_encoder a, b;
    sslc_encoder_info ia, ib;
    assert_int_equal(sslc_encoder_load(&a, &ia, ckpt, 0), SSLC_OK);
    assert_int_equal(sslc_adapter_apply(&a, adapter), SSLC_OK);
    assert_int_equal(sslc_encoder_load(&b, &ib, merged, 0), SSLC_OK);
    assert_memory_equal(a.params->values, b.params->values, (size_t)a.params->n_values * 4);
    sslc_encoder base;
    assert_int_equal(sslc_encoder_load(&base, &ia, ckpt, 0), SSLC_OK);
    assert_memory_not_equal(base.params->values, b.params->values,
                            (size_t)base.params->n_values * 4);
    sslc_encoder_destroy(&a), sslc_encoder_destroy(&b), sslc_encoder_destroy(&base);

    snprintf(args, sizeof args,
             "finetune --ckpt '%s' --train imagefolder:'%s/images' --test imagefolder:'%s/images' "
             "--batch 8 --max-steps 2 --mode prompt --prompts 2 --prompt-depth deep --out "
             "'%s/prompt'",
             ckpt, dir, dir, dir);
    run_ok("finetune --mode prompt", args);
    snprintf(cmd, sizeof cmd, "grep -q '(encoder 0, adapters 4608,' '%s/log.txt'", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args,
             "knn --ckpt '%s' --adapter '%s/prompt/adapter.h5' --train imagefolder:'%s/images' "
             "--test imagefolder:'%s/images'",
             ckpt, dir, dir, dir);
    run_ok("knn --adapter (prompts)", args);
    snprintf(cmd, sizeof cmd,
             "'%s' export '%s' --merge '%s/prompt/adapter.h5' --out '%s/p.h5' > '%s/log.txt' "
             "2>&1; test $? -ne 0 && grep -q 'cannot be folded' '%s/log.txt'",
             SSLC_EXE, ckpt, dir, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "'%s' finetune --ckpt '%s' --train imagefolder:'%s/images' --test "
             "imagefolder:'%s/images' --prompts 4 > '%s/log.txt' 2>&1; test $? -ne 0 && "
             "grep -q 'need --mode prompt' '%s/log.txt'",
             SSLC_EXE, ckpt, dir, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "'%s' supervised --arch resnet18 --width 4 --train imagefolder:'%s/images' --test "
             "imagefolder:'%s/images' --batch 8 --max-steps 1 --out '%s/rn' > '%s/log.txt' 2>&1 "
             "&& '%s' finetune --ckpt '%s/rn/model.h5' --train imagefolder:'%s/images' --test "
             "imagefolder:'%s/images' --mode prompt > '%s/log.txt' 2>&1; test $? -ne 0 && "
             "grep -q 'this encoder is a ResNet' '%s/log.txt' || { cat '%s/log.txt'; exit 1; }",
             SSLC_EXE, dir, dir, dir, dir, SSLC_EXE, dir, dir, dir, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
}

// knn, embed, export and info on the ViT checkpoint; supervised training
// of a random ViT, and a ViT student distilled from that model.
static void the_other_commands_take_the_vit(void **state)
{
    (void)state;
    const char *ckpt = pretrained();
    char args[8192], cmd[16384];
    snprintf(args, sizeof args,
             "knn --ckpt '%s' --train imagefolder:'%s/images' --test imagefolder:'%s/images'",
             ckpt, dir, dir);
    run_ok("knn", args);
    snprintf(args, sizeof args, "embed --ckpt '%s' --out '%s/emb.npy' imagefolder:'%s/images'",
             ckpt, dir, dir);
    run_ok("embed", args);
    snprintf(cmd, sizeof cmd, "grep -q 'vit-tiny patch 7' '%s/log.txt'", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "export '%s' --out '%s/enc.h5'", ckpt, dir);
    run_ok("export", args);
    char exported[1300];
    snprintf(exported, sizeof exported, "%s/enc.h5", dir);
    sslc_encoder a, b;
    sslc_encoder_info ia, ib;
    assert_int_equal(sslc_encoder_load(&a, &ia, ckpt, 0), SSLC_OK);
    assert_int_equal(sslc_encoder_load(&b, &ib, exported, 0), SSLC_OK);
    assert_int_equal(b.kind, SSLC_ENCODER_VIT);
    assert_memory_equal(a.params->values, b.params->values, (size_t)a.params->n_values * 4);
    sslc_encoder_destroy(&a), sslc_encoder_destroy(&b);
    snprintf(cmd, sizeof cmd, "'%s' info '%s' | grep -q 'arch  *vit-tiny'", SSLC_EXE, exported);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args,
             "supervised --arch vit-tiny --patch 7 --train imagefolder:'%s/images' --test "
             "imagefolder:'%s/images' --batch 8 --max-steps 1 --out '%s/sup'",
             dir, dir, dir);
    run_ok("supervised --arch vit-tiny", args);
    snprintf(args, sizeof args,
             "distill --teacher '%s/sup' --unlabeled imagefolder:'%s/images' --train "
             "imagefolder:'%s/images' --test imagefolder:'%s/images' --init random --batch 8 "
             "--max-steps 1 --out '%s/dist'",
             dir, dir, dir, dir, dir);
    run_ok("distill a ViT teacher into a random ViT", args);
    snprintf(cmd, sizeof cmd, "grep -q 'student (vit-tiny, patch 7)' '%s/log.txt'", dir);
    assert_int_equal(system(cmd), 0);
}

// torchvision loads the ViT checkpoint `ckpt` (scripts/sslc_torch.py,
// strict=True) and gives sslc's features on the same images.
static void torchvision_gives_the_features_of(const char *py, const char *ckpt)
{
    char cmd[16384];
    sslc_encoder enc;
    sslc_encoder_info info;
    assert_int_equal(sslc_encoder_load(&enc, &info, ckpt, 0), SSLC_OK);
    const int64_t N = 3, H = SIDE, C = enc.in_channels, D = enc.feature_dim;
    float *x = malloc((size_t)(N * H * H * C) * 4), *nchw = malloc((size_t)(N * H * H * C) * 4);
    assert_true(x && nchw);
    sslc_rng r = sslc_rng_make(9, 0, 0, 0, 0);
    for (int64_t k = 0; k < N * H * H * C; k++)
        x[k] = (float)sslc_rng_normal(&r);
    for (int64_t n = 0; n < N; n++) // sslc is NHWC, PyTorch NCHW
        for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < H; w++)
                for (int64_t ch = 0; ch < C; ch++)
                    nchw[((n * C + ch) * H + h) * H + w] = x[((n * H + h) * H + w) * C + ch];
    sslc_encoder_run *run;
    assert_int_equal(sslc_encoder_inference_run_create(&run, &enc, N, H, H), SSLC_OK);
    sslc_encoder_prepare(run, &enc);
    const float *feats = sslc_encoder_forward(run, &enc, x, false);
    char ref[1200];
    snprintf(ref, sizeof ref, "%s/ref.h5", dir);
    hid_t f = H5Fcreate(ref, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hsize_t idims[4] = {(hsize_t)N, (hsize_t)C, (hsize_t)H, (hsize_t)H};
    const hsize_t fdims[2] = {(hsize_t)N, (hsize_t)D};
    sslc_test_write_floats(f, "images", 4, idims, nchw);
    sslc_test_write_floats(f, "features", 2, fdims, feats);
    H5Fclose(f);
    snprintf(cmd, sizeof cmd,
             "%s '%s/scripts/sslc_torch.py' compare --atol 2e-5 --rtol 1e-5 '%s' '%s'", py,
             SSLC_SOURCE_DIR, ckpt, ref);
    assert_int_equal(system(cmd), 0);
    sslc_encoder_run_destroy(run);
    sslc_encoder_destroy(&enc);
    free(x), free(nchw);
}

// The pretrained ViT, and the same ViT with LoRA (trained, so B is not
// zero) folded in by export --merge: both load into torchvision strictly
// and give sslc's features.
static void torchvision_loads_the_pretrained_and_merged_vit(void **state)
{
    (void)state;
    char why[512];
    const char *py = sslc_test_torch_python(why, sizeof why);
    if (!py)
        sslc_test_skip("%s", why);
    const char *ckpt = pretrained();
    torchvision_gives_the_features_of(py, ckpt);
    char args[8192], merged[1300];
    snprintf(args, sizeof args,
             "finetune --ckpt '%s' --train imagefolder:'%s/images' --test imagefolder:'%s/images' "
             "--batch 8 --max-steps 2 --lr 0.5 --mode lora --lora-rank 2 --out '%s/torch-lora'",
             ckpt, dir, dir, dir);
    run_ok("finetune --mode lora", args);
    snprintf(merged, sizeof merged, "%s/torch-lora-merged.h5", dir);
    snprintf(args, sizeof args, "export '%s' --merge '%s/torch-lora/adapter.h5' --out '%s'", ckpt,
             dir, merged);
    run_ok("export --merge (LoRA)", args);
    torchvision_gives_the_features_of(py, merged);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest e2e[] = {
        cmocka_unit_test(simclr_vit_trains_describes_and_resumes),
        cmocka_unit_test(mocov3_vit_trains),
        cmocka_unit_test(linear_eval_and_finetune_take_the_vit),
        cmocka_unit_test(lora_and_prompts_on_the_vit),
        cmocka_unit_test(the_other_commands_take_the_vit),
    };
    const struct CMUnitTest torch[] = {
        cmocka_unit_test(torchvision_loads_the_pretrained_and_merged_vit),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("e2e", e2e), SSLC_GROUP("torch", torch)};
    return sslc_test_main(argc, argv, groups, 2);
}
