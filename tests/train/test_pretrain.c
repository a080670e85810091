// src/train: SimCLR, MoCo and MoCo v3 end to end on a tiny generated image folder:
// the loss falls and the features separate two image families better than
// the same encoder at initialisation; resuming continues bit for bit; a
// SIGINT leaves a checkpoint that resumes; multi-crop trains and resumes.
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "augment/recipe.h"
#include "data/dataset.h"
#include "data/image.h"
#include "src/core/rng.h"
#include "src/eval/features.h"
#include "src/io/checkpoint.h"
#include "src/models/mlp.h"
#include "src/models/encoder.h"
#include "src/train/pretrain.h"
#include "tests/harness.h"

enum { SIDE = 16, PER_FAMILY = 48 };

// Two families a human tells apart at a glance: horizontal stripes and
// bright disks, each with random phase, period, position and noise.
static void make_folder(const char *dir) // dir: at most 4200 bytes
{
    char path[4400];
    uint8_t px[SIDE * SIDE];
    for (int fam = 0; fam < 2; fam++) {
        snprintf(path, sizeof path, "%s/%s", dir, fam ? "disks" : "stripes");
        mkdir(path, 0777);
        for (int i = 0; i < PER_FAMILY; i++) {
            sslc_rng r = sslc_rng_make(42, (uint64_t)fam, (uint64_t)i, 0, 0);
            double period = sslc_rng_range(&r, 3, 6), phase = sslc_rng_range(&r, 0, 6.3);
            double cx = sslc_rng_range(&r, 4, 12), cy = sslc_rng_range(&r, 4, 12);
            double rad = sslc_rng_range(&r, 3, 6);
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

typedef struct setup {
    char dir[4096];
    sslc_dataset *ds;
    sslc_recipe recipe, eval;
} setup;

static void setup_open(setup *s, const char *tag)
{
    snprintf(s->dir, sizeof s->dir, "%s", sslc_test_tmpdir(tag));
    char data[4200];
    snprintf(data, sizeof data, "%s/images", s->dir);
    mkdir(data, 0777);
    make_folder(data);
    char spec[4300];
    snprintf(spec, sizeof spec, "imagefolder:%s", data);
    sslc_dataset_options opt;
    sslc_dataset_options_default(&opt);
    opt.channels = 1;
    assert_int_equal(sslc_dataset_open(&s->ds, spec, &opt), SSLC_OK);
    assert_int_equal(sslc_dataset_count(s->ds), 2 * PER_FAMILY);
    assert_int_equal(sslc_recipe_defaults(&s->recipe, "simclr", SIDE, 1), SSLC_OK);
    assert_int_equal(sslc_recipe_defaults(&s->eval, "eval", SIDE, 1), SSLC_OK);
}

// method: "simclr", "moco" (v2) or "mocov3".
static sslc_pretrain_config small_config(const char *method, const char *out)
{
    static sslc_optim_config optim;
    optim = sslc_optim_defaults(SSLC_OPTIM_SGD);
    optim.weight_decay = 5e-4f;
    if (!strcmp(method, "mocov3")) { // the paper's heads (BN everywhere), the momentum ramp
        sslc_pretrain_config c = small_config("moco", out);
        c.moco_version = 3;
        c.symmetric = true;
        c.head = "linear-nobias:64,bn,relu,linear-nobias:64,bn,relu,linear-nobias:32,bn-noaffine";
        c.predictor = "linear-nobias:64,bn,relu,linear-nobias:32,bn-noaffine";
        c.lr = 0.03; // SGD: on 96 images LARS needs more steps than a test has
        c.warmup = 0.1;
        c.momentum_cosine = true;
        return c;
    }
    bool moco = !strcmp(method, "moco");
    return (sslc_pretrain_config){
        .method = method, .moco_version = 2,
        .encoder.resnet = {.depth = 18, .in_channels = 1, .width = 8, .cifar_stem = true},
        .head = moco ? "linear:64,relu,linear:32" : "linear-nobias:64,bn,relu,linear:32",
        .batch = 16, .epochs = 20, .optim = optim, .lr = moco ? 0.01 : 0.1,
        .warmup = 0.05, .tau = moco ? 0.2 : 0.5, .queue = 32, .momentum = 0.9,
        .shuffle_groups = 2, .seed = 3, .async_data = true, .out = out, .log_every = 10,
        .keep = 2, .config_text = "--test", .knn_k = 10, .knn_tau = 0.1, .image_size = SIDE};
}

// Loads a run's encoder (or builds the random one with seed when path is NULL).
static void load_encoder(sslc_encoder *net, const sslc_pretrain_config *c, const char *path)
{
    assert_int_equal(sslc_encoder_create(net, &c->encoder), SSLC_OK);
    sslc_encoder_init(net, c->seed);
    if (!path)
        return;
    sslc_ckpt_part part = {"encoder", net->params};
    sslc_ckpt ck = {.parts = &part, .n_parts = 1};
    assert_int_equal(sslc_ckpt_load(path, &ck), SSLC_OK);
}

// Mean cosine similarity to the other images of the same family minus that
// to the other family's: how far apart the features put the two families.
// (A random encoder already sorts stripes from disks by nearest neighbours;
// it maps every image to nearly the same direction, which this measures.)
static double separation(sslc_encoder *net, setup *s)
{
    sslc_features f;
    assert_int_equal(sslc_features_extract(&f, net, s->ds, &s->eval, 32, 0, 0), SSLC_OK);
    for (int64_t i = 0; i < f.n; i++) {
        double nrm = 0;
        for (int64_t d = 0; d < f.dim; d++)
            nrm += (double)f.x[i * f.dim + d] * f.x[i * f.dim + d];
        for (int64_t d = 0; d < f.dim; d++)
            f.x[i * f.dim + d] /= (float)sqrt(nrm + 1e-12);
    }
    double same = 0, other = 0;
    int64_t n_same = 0, n_other = 0;
    for (int64_t i = 0; i < f.n; i++)
        for (int64_t j = 0; j < f.n; j++) {
            if (j == i)
                continue;
            double sim = 0;
            for (int64_t d = 0; d < f.dim; d++)
                sim += (double)f.x[i * f.dim + d] * f.x[j * f.dim + d];
            if (f.labels[i] == f.labels[j]) {
                same += sim;
                n_same++;
            } else {
                other += sim;
                n_other++;
            }
        }
    sslc_features_free(&f);
    return same / (double)n_same - other / (double)n_other;
}

static void learns_on_a_tiny_folder(const char *method)
{
    setup s;
    setup_open(&s, method);
    char out[4200];
    snprintf(out, sizeof out, "%s/run", s.dir);
    sslc_pretrain_config c = small_config(method, out);
    bool moco = !strcmp(method, "moco");
    c.max_steps = moco || !strcmp(method, "mocov3") ? 120 : 60;
    sslc_pretrain_result res;
    assert_int_equal(sslc_pretrain(&c, s.ds, &s.recipe, &res), SSLC_OK);
    printf("  %s: loss %.4f -> %.4f over %lld steps\n", method, res.first_loss, res.last_loss,
           (long long)res.steps);
    assert_int_equal(res.steps, c.max_steps);
    if (moco) {
        // MoCo's loss first rises while real keys replace the queue's random
        // ones; what matters is that it ends well below chance, log(1 + K).
        printf("  moco: chance level log(1 + K) = %.4f\n", log(1.0 + (double)c.queue));
        assert_true(res.last_loss < log(1.0 + (double)c.queue) - 0.2);
    } else {
        assert_true(res.last_loss < res.first_loss - 0.05);
    }

    char last[4300];
    snprintf(last, sizeof last, "%s/last.h5", out);
    sslc_encoder random, trained;
    load_encoder(&random, &c, NULL);
    load_encoder(&trained, &c, last);
    double before = separation(&random, &s), after = separation(&trained, &s);
    printf("  %s: family separation (same - other cosine): random %.4f, trained %.4f\n",
           method, before, after);
    assert_true(after > 2 * before);
    sslc_encoder_destroy(&random);
    sslc_encoder_destroy(&trained);
    sslc_dataset_destroy(s.ds);
}

static void simclr_learns_on_a_tiny_folder(void **state)
{
    (void)state;
    learns_on_a_tiny_folder("simclr");
}

static void moco_learns_on_a_tiny_folder(void **state)
{
    (void)state;
    learns_on_a_tiny_folder("moco");
}

static void mocov3_learns_on_a_tiny_folder(void **state)
{
    (void)state;
    learns_on_a_tiny_folder("mocov3");
}

// Training N steps straight, or k steps, stop, resume, N-k steps, gives the
// same bits in every part of the state.
static void resume_is_exact(const char *method)
{
    setup s;
    setup_open(&s, method);
    char straight[4200], split[4200];
    snprintf(straight, sizeof straight, "%s/straight", s.dir);
    snprintf(split, sizeof split, "%s/split", s.dir);
    sslc_pretrain_config a = small_config(method, straight);
    a.max_steps = 9; // crosses the epoch boundary at 6 steps
    sslc_pretrain_result res;
    assert_int_equal(sslc_pretrain(&a, s.ds, &s.recipe, &res), SSLC_OK);
    sslc_pretrain_config b = small_config(method, split);
    b.max_steps = 4;
    assert_int_equal(sslc_pretrain(&b, s.ds, &s.recipe, &res), SSLC_OK);
    char path[4300];
    snprintf(path, sizeof path, "%s/last.h5", split);
    b.resume = path;
    b.max_steps = 5;
    assert_int_equal(sslc_pretrain(&b, s.ds, &s.recipe, &res), SSLC_OK);
    assert_int_equal(res.steps, 9);
    // Compare the two final checkpoints byte for byte, tensor by tensor.
    char pa[4300], pb[4300];
    snprintf(pa, sizeof pa, "%s/last.h5", straight);
    snprintf(pb, sizeof pb, "%s/last.h5", split);
    sslc_encoder ea, eb;
    load_encoder(&ea, &a, pa);
    load_encoder(&eb, &a, pb);
    assert_memory_equal(ea.params->values, eb.params->values, (size_t)ea.params->n_values * 4);
    assert_memory_equal(ea.params->buffers, eb.params->buffers, (size_t)ea.params->n_buffers * 4);
    sslc_ckpt_info ia, ib;
    assert_int_equal(sslc_ckpt_read_info(pa, &ia), SSLC_OK);
    assert_int_equal(sslc_ckpt_read_info(pb, &ib), SSLC_OK);
    assert_int_equal(ia.step, ib.step);
    assert_int_equal(ia.epoch, ib.epoch);
    assert_int_equal(ia.samples_seen, ib.samples_seen);
    assert_int_equal(ia.optimizer_step, ib.optimizer_step);
    sslc_ckpt_info_free(&ia);
    sslc_ckpt_info_free(&ib);
    // Everything else too (projector, optimizer moments, MoCo key encoder,
    // queue and pointer, schedule): the two files are the same bytes.
    uint8_t *fa, *fb;
    size_t na, nb;
    assert_int_equal(sslc_file_read(pa, &fa, &na), SSLC_OK);
    assert_int_equal(sslc_file_read(pb, &fb, &nb), SSLC_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(fa, fb, na);
    free(fa);
    free(fb);
    sslc_encoder_destroy(&ea);
    sslc_encoder_destroy(&eb);
    sslc_dataset_destroy(s.ds);
}

static void simclr_resume_is_exact(void **state)
{
    (void)state;
    resume_is_exact("simclr");
}

static void moco_resume_is_exact(void **state)
{
    (void)state;
    resume_is_exact("moco");
}

static void mocov3_resume_is_exact(void **state)
{
    (void)state;
    resume_is_exact("mocov3");
}

// The binary: SIGINT mid-run saves a checkpoint and exits non-zero with a
// message; --resume continues from it.
static void sigint_leaves_a_resumable_checkpoint(void **state)
{
    (void)state;
    setup s;
    setup_open(&s, "sigint");
    char out[4200], metrics[4300], log[4300], cmd[16384];
    snprintf(out, sizeof out, "%s/run", s.dir);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    snprintf(log, sizeof log, "%s/log.txt", s.dir);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        char data[4300];
        snprintf(data, sizeof data, "imagefolder:%s/images", s.dir);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(SSLC_EXE, SSLC_EXE, "pretrain", "--data", data, "--out", out, "--width", "4",
              "--batch", "16", "--epochs", "1000", "--log-every", "1", "--knn-bank", "none",
              "--shuffle-groups", "1", (char *)NULL);
        _exit(127);
    }
    // Wait for a few steps of metrics, then interrupt.
    for (int i = 0; i < 600; i++) {
        FILE *f = fopen(metrics, "r");
        int lines = 0;
        if (f) {
            for (int ch; (ch = fgetc(f)) != EOF;)
                lines += ch == '\n';
            fclose(f);
        }
        if (lines >= 3)
            break;
        usleep(50000);
    }
    kill(child, SIGINT);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    snprintf(cmd, sizeof cmd, "cat '%s'", log);
    assert_int_equal(system(cmd), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    char last[4300];
    snprintf(last, sizeof last, "%s/last.h5", out);
    sslc_ckpt_info info;
    assert_int_equal(sslc_ckpt_read_info(last, &info), SSLC_OK);
    assert_true(info.step >= 3);
    int64_t stopped = info.step;
    sslc_ckpt_info_free(&info);
    snprintf(cmd, sizeof cmd, "'%s' pretrain --resume '%s' --max-steps 2 > '%s' 2>&1", SSLC_EXE,
             out, log);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(sslc_ckpt_read_info(last, &info), SSLC_OK);
    assert_int_equal(info.step, stopped + 2);
    sslc_ckpt_info_free(&info);
    sslc_dataset_destroy(s.ds);
}

// Multi-crop through the binary: --local-crops 2 trains SimCLR and MoCo,
// the checkpoint's configuration records the options, and 2 + 2 resumed
// steps give the weights of 4 straight ones (so the resumed run made the
// same global and local views).
static void multicrop_trains_records_and_resumes(const char *method)
{
    setup s;
    setup_open(&s, method);
    char cmd[32768], straight[4200], split[4200], log[4300];
    snprintf(straight, sizeof straight, "%s/straight", s.dir);
    snprintf(split, sizeof split, "%s/split", s.dir);
    snprintf(log, sizeof log, "%s/log.txt", s.dir);
    const char *common = "--width 4 --batch 16 --knn-bank none --shuffle-groups 1 --queue 64 "
                         "--local-crops 2 --local-scale 0.1,0.4 --seed 5 --no-async";
    const char *runs[][2] = {{straight, "4"}, {split, "2"}};
    for (int r = 0; r < 2; r++) {
        snprintf(cmd, sizeof cmd,
                 "'%s' pretrain --method %s --data imagefolder:'%s/images' --out '%s' %s "
                 "--max-steps %s > '%s' 2>&1 || { cat '%s'; exit 1; }",
                 SSLC_EXE, method, s.dir, runs[r][0], common, runs[r][1], log, log);
        assert_int_equal(system(cmd), 0);
    }
    snprintf(cmd, sizeof cmd, "'%s' pretrain --resume '%s' --max-steps 2 > '%s' 2>&1 || "
                              "{ cat '%s'; exit 1; }",
             SSLC_EXE, split, log, log);
    assert_int_equal(system(cmd), 0);
    char pa[4300], pb[4300];
    snprintf(pa, sizeof pa, "%s/last.h5", straight);
    snprintf(pb, sizeof pb, "%s/last.h5", split);
    sslc_ckpt_info info;
    assert_int_equal(sslc_ckpt_read_info(pb, &info), SSLC_OK);
    assert_int_equal(info.step, 4);
    const char *recorded[] = {"--local-crops=2", "--local-size=8", "--local-scale=0.1,0.4",
                              "--global-crops=2"};
    for (size_t i = 0; i < sizeof recorded / sizeof recorded[0]; i++) {
        if (!strstr(info.config, recorded[i]))
            fail_msg("checkpoint config lacks %s:\n%s", recorded[i], info.config);
    }
    sslc_ckpt_info_free(&info);
    sslc_pretrain_config c = small_config(method, straight);
    c.encoder.resnet.width = 4;
    c.encoder.resnet.in_channels = 3; // the CLI reads the PNGs as RGB
    sslc_encoder ea, eb;
    load_encoder(&ea, &c, pa);
    load_encoder(&eb, &c, pb);
    assert_memory_equal(ea.params->values, eb.params->values, (size_t)ea.params->n_values * 4);
    assert_memory_equal(ea.params->buffers, eb.params->buffers, (size_t)ea.params->n_buffers * 4);
    // A different run (no local crops) ends elsewhere: the comparison can
    // fail. It also reports where its steps' time went (--profile).
    snprintf(cmd, sizeof cmd,
             "'%s' pretrain --method %s --data imagefolder:'%s/images' --out '%s/plain' "
             "--width 4 --batch 16 --knn-bank none --shuffle-groups 1 --queue 64 --seed 5 "
             "--no-async --max-steps 4 --profile",
             SSLC_EXE, method, s.dir, s.dir);
    char text[8192];
    assert_int_equal(sslc_test_run_cmd(cmd, log, text, sizeof text), 0);
    const bool moco = !strcmp(method, "moco");
    if (!strstr(text, "profile: seconds per step over 3 steps") || !strstr(text, "  backward ") ||
        !strstr(text, "  optimizer ") || !strstr(text, "  key forward ") != !moco)
        fail_msg("no per-phase profile (or the wrong phases) in:\n%s", text);
    snprintf(pb, sizeof pb, "%s/plain/last.h5", s.dir);
    sslc_encoder ep;
    load_encoder(&ep, &c, pb);
    assert_true(memcmp(ea.params->values, ep.params->values, (size_t)ea.params->n_values * 4) != 0);
    sslc_encoder_destroy(&ea);
    sslc_encoder_destroy(&eb);
    sslc_encoder_destroy(&ep);
    sslc_dataset_destroy(s.ds);
}

static void simclr_multicrop_trains_records_and_resumes(void **state)
{
    (void)state;
    multicrop_trains_records_and_resumes("simclr");
}

static void moco_multicrop_trains_records_and_resumes(void **state)
{
    (void)state;
    multicrop_trains_records_and_resumes("moco");
}

// What multi-crop does not run yet is refused before any work, saying why.
static void multicrop_refuses_batch_norm_groups(void **state)
{
    (void)state;
    setup s;
    setup_open(&s, "mc-refuse");
    char out[4200];
    snprintf(out, sizeof out, "%s/run", s.dir);
    sslc_recipe local;
    assert_int_equal(sslc_recipe_local(&local, &s.recipe, 8, 0.1, 0.4), SSLC_OK);
    sslc_pretrain_config c = small_config("simclr", out);
    c.local_crops = 2;
    c.local_recipe = &local;
    c.bn_groups = 2;
    c.max_steps = 1;
    sslc_pretrain_result res;
    assert_int_equal(sslc_pretrain(&c, s.ds, &s.recipe, &res), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "--bn-groups"));
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "'%s' pretrain --data imagefolder:'%s/images' --out '%s' --global-crops 3 "
             "--knn-bank none 2>&1 | grep -q 'only 2 global views'",
             SSLC_EXE, s.dir, out);
    assert_int_equal(system(cmd), 0);
    sslc_dataset_destroy(s.ds);
}

// MoCo v3 through the binary with its defaults (LARS, the moco-v3 heads,
// the momentum ramp): 2 + 2 resumed steps give the weights of 4 straight
// ones, the checkpoint holds the predictor and its spec, and what v3 does
// not run (multi-crop, gradient caching) is refused, saying why.
static void mocov3_cli_trains_resumes_and_refuses(void **state)
{
    (void)state;
    setup s;
    setup_open(&s, "mocov3-cli");
    char cmd[32768], straight[4200], split[4200], log[4300];
    snprintf(straight, sizeof straight, "%s/straight", s.dir);
    snprintf(split, sizeof split, "%s/split", s.dir);
    snprintf(log, sizeof log, "%s/log.txt", s.dir);
    const char *common = "--method moco --moco-version 3 --width 4 --batch 16 --knn-bank none "
                         "--seed 5 --no-async";
    const char *runs[][2] = {{straight, "4"}, {split, "2"}};
    for (int r = 0; r < 2; r++) {
        snprintf(cmd, sizeof cmd,
                 "'%s' pretrain --data imagefolder:'%s/images' --out '%s' %s --max-steps %s "
                 "> '%s' 2>&1 || { cat '%s'; exit 1; }",
                 SSLC_EXE, s.dir, runs[r][0], common, runs[r][1], log, log);
        assert_int_equal(system(cmd), 0);
    }
    snprintf(cmd, sizeof cmd, "'%s' pretrain --resume '%s' --max-steps 2 > '%s' 2>&1 || "
                              "{ cat '%s'; exit 1; }",
             SSLC_EXE, split, log, log);
    assert_int_equal(system(cmd), 0);
    char pa[4300], pb[4300];
    snprintf(pa, sizeof pa, "%s/last.h5", straight);
    snprintf(pb, sizeof pb, "%s/last.h5", split);
    sslc_ckpt_info info;
    assert_int_equal(sslc_ckpt_read_info(pb, &info), SSLC_OK);
    assert_int_equal(info.step, 4);
    const char *recorded[] = {"--moco-version=3", "--symmetric=true", "--optimizer=lars",
                              "--moco-m-cosine=true", "--shuffle-groups=2", "bn-noaffine"};
    for (size_t i = 0; i < sizeof recorded / sizeof recorded[0]; i++)
        if (!strstr(info.config, recorded[i]))
            fail_msg("checkpoint config lacks %s:\n%s", recorded[i], info.config);
    sslc_ckpt_info_free(&info);
    // The encoder and the predictor of both runs (every part's bytes: the
    // library-level resume test; the CLI's files differ in --out).
    sslc_pretrain_config c = small_config("mocov3", straight);
    c.encoder.resnet.width = 4;
    c.encoder.resnet.in_channels = 3; // the CLI reads the PNGs as RGB
    sslc_encoder ea, eb;
    load_encoder(&ea, &c, pa);
    load_encoder(&eb, &c, pb);
    assert_memory_equal(ea.params->values, eb.params->values, (size_t)ea.params->n_values * 4);
    assert_memory_equal(ea.params->buffers, eb.params->buffers, (size_t)ea.params->n_buffers * 4);
    sslc_mlp pred[2];
    const char *paths[2] = {pa, pb};
    for (int r = 0; r < 2; r++) {
        assert_int_equal(sslc_mlp_create(&pred[r], 64, "linear-nobias:64,bn,relu,"
                                                        "linear-nobias:64,bn-noaffine"),
                         SSLC_OK);
        sslc_ckpt_part part = {"predictor", &pred[r].params};
        sslc_ckpt ck = {.parts = &part, .n_parts = 1};
        assert_int_equal(sslc_ckpt_load(paths[r], &ck), SSLC_OK);
    }
    assert_memory_equal(pred[0].params.values, pred[1].params.values,
                        (size_t)pred[0].params.n_values * 4);
    assert_memory_equal(pred[0].params.buffers, pred[1].params.buffers,
                        (size_t)pred[0].params.n_buffers * 4);
    sslc_mlp_destroy(&pred[0]), sslc_mlp_destroy(&pred[1]);
    sslc_encoder_destroy(&ea), sslc_encoder_destroy(&eb);
    snprintf(cmd, sizeof cmd,
             "'%s' info '%s' | grep -q 'predictor  *10 tensors' && "
             "'%s' info '%s' | grep -q 'predictor=linear-nobias:64,bn,relu,linear-nobias:64,bn-noaffine'",
             SSLC_EXE, pa, SSLC_EXE, pa);
    assert_int_equal(system(cmd), 0);
    const char *refused[][2] = {{"--local-crops 2", "does not take --local-crops"},
                                {"--chunk 8", "drop --bn-groups and --chunk"}};
    for (int r = 0; r < 2; r++) {
        snprintf(cmd, sizeof cmd,
                 "'%s' pretrain --data imagefolder:'%s/images' --out '%s/refused' %s %s "
                 "--max-steps 1 > '%s' 2>&1; test $? -ne 0 && grep -q -- '%s' '%s'",
                 SSLC_EXE, s.dir, s.dir, common, refused[r][0], log, refused[r][1], log);
        assert_int_equal(system(cmd), 0);
    }
    sslc_dataset_destroy(s.ds);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest e2e[] = {
        cmocka_unit_test(simclr_learns_on_a_tiny_folder),
        cmocka_unit_test(moco_learns_on_a_tiny_folder),
        cmocka_unit_test(simclr_resume_is_exact),
        cmocka_unit_test(moco_resume_is_exact),
        cmocka_unit_test(mocov3_learns_on_a_tiny_folder),
        cmocka_unit_test(mocov3_resume_is_exact),
        cmocka_unit_test(mocov3_cli_trains_resumes_and_refuses),
        cmocka_unit_test(sigint_leaves_a_resumable_checkpoint),
        cmocka_unit_test(simclr_multicrop_trains_records_and_resumes),
        cmocka_unit_test(moco_multicrop_trains_records_and_resumes),
        cmocka_unit_test(multicrop_refuses_batch_norm_groups),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("e2e", e2e)};
    return sslc_test_main(argc, argv, groups, 1);
}
