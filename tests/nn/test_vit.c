// The Vision Transformer: its layers (layer norm, GELU, self-attention,
// patch embedding) and whole models against PyTorch fixtures
// (scripts/gen_nn_fixtures.py), the attention fast path against its double
// reference, tensor names and initialisation against torchvision, and a
// saved encoder loaded into torchvision's VisionTransformer with
// strict=True giving the same features (torch group; skipped, with the
// reason, where torch is not importable). Finite differences of each
// layer and of a whole ViT: tests/gradcheck/.
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/core/rng.h"
#include "src/io/checkpoint.h"
#include "src/models/encoder.h"
#include "src/models/vit.h"
#include "src/nn/layers.h"
#include "tests/harness.h"

static const char *LAYERS = "nn_layers.h5";
static const char *MODELS = "nn_models.h5";

static float *load(const char *file, const char *group, const char *name, size_t *n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", group, name);
    return sslc_fixture_floats(file, path, n);
}

// The fixture's array `name` against mine, with the tolerances given.
static void check(const char *file, const char *group, const char *name, const float *mine,
                  size_t n, double atol, double rtol)
{
    size_t m;
    float *ref = load(file, group, name, &m);
    assert_int_equal(m, n);
    char what[128];
    snprintf(what, sizeof what, "%s %s vs torch", group, name);
    sslc_assert_close(what, mine, ref, n, atol, rtol);
    free(ref);
}

// ---- layers against PyTorch --------------------------------------------------------

static void layernorm_gelu_match_pytorch(void **state)
{
    (void)state;
    size_t n, C;
    float *x = load(LAYERS, "layernorm", "x", &n), *dy = load(LAYERS, "layernorm", "dy", &n);
    float *gamma = load(LAYERS, "layernorm", "gamma", &C);
    float *beta = load(LAYERS, "layernorm", "beta", &C);
    const int64_t rows = (int64_t)(n / C);
    float *y = malloc(n * 4), *dx = malloc(n * 4), *mean = malloc((size_t)rows * 4);
    float *rstd = malloc((size_t)rows * 4), *dg = calloc(C, 4), *db = calloc(C, 4);
    sslc_layernorm_forward(y, mean, rstd, x, gamma, beta, rows, (int64_t)C, 1e-6f);
    sslc_layernorm_backward(dx, dg, db, dy, x, mean, rstd, gamma, rows, (int64_t)C);
    check(LAYERS, "layernorm", "y", y, n, 1e-5, 1e-5);
    check(LAYERS, "layernorm", "dx", dx, n, 1e-5, 1e-4);
    check(LAYERS, "layernorm", "dgamma", dg, C, 1e-5, 1e-4);
    check(LAYERS, "layernorm", "dbeta", db, C, 1e-5, 1e-5);
    free(x), free(dy), free(gamma), free(beta), free(y), free(dx), free(mean), free(rstd);
    free(dg), free(db);

    x = load(LAYERS, "gelu", "x", &n), dy = load(LAYERS, "gelu", "dy", &n);
    y = malloc(n * 4), dx = malloc(n * 4);
    sslc_gelu_forward(y, x, (int64_t)n);
    sslc_gelu_backward(dx, dy, x, (int64_t)n);
    check(LAYERS, "gelu", "y", y, n, 1e-6, 1e-5);
    check(LAYERS, "gelu", "dx", dx, n, 1e-6, 1e-5);
    sslc_gelu_backward(dy, dy, x, (int64_t)n); // in place, as the header allows
    assert_memory_equal(dy, dx, n * 4);
    free(x), free(dy), free(y), free(dx);
}

static void attention_matches_pytorch(void **state)
{
    (void)state;
    int64_t s[4];
    sslc_fixture_attr_ints(LAYERS, "attention", "shape", s, 4);
    const sslc_attention_desc d = {s[0], s[1], s[2], s[3]};
    const char *g = "attention";
    size_t nx, n3, nd, n;
    float *x = load(LAYERS, g, "x", &nx), *dy = load(LAYERS, g, "dy", &n);
    float *w_in = load(LAYERS, g, "w_in", &n3), *b_in = load(LAYERS, g, "b_in", &n);
    float *w_out = load(LAYERS, g, "w_out", &nd), *b_out = load(LAYERS, g, "b_out", &n);
    const size_t D = (size_t)d.D;
    float *y = malloc(nx * 4), *qkv = malloc(3 * nx * 4), *ctx = malloc(nx * 4);
    float *probs = malloc((size_t)(d.N * d.heads * d.S * d.S) * 4);
    float *work = malloc(sslc_attention_workspace_size(&d) * 4), *dx = malloc(nx * 4);
    float *dw_in = calloc(n3, 4), *db_in = calloc(3 * D, 4), *dw_out = calloc(nd, 4);
    float *db_out = calloc(D, 4);
    sslc_attention_forward(y, qkv, probs, ctx, x, w_in, b_in, w_out, b_out, &d);
    sslc_attention_backward(dx, dw_in, db_in, dw_out, db_out, dy, x, qkv, probs, ctx, w_in, w_out,
                            &d, work);
    check(LAYERS, g, "y", y, nx, 1e-5, 1e-4);
    check(LAYERS, g, "dx", dx, nx, 1e-5, 1e-4);
    check(LAYERS, g, "dw_in", dw_in, n3, 1e-5, 1e-4);
    check(LAYERS, g, "db_in", db_in, 3 * D, 1e-5, 1e-4);
    check(LAYERS, g, "dw_out", dw_out, nd, 1e-5, 1e-4);
    check(LAYERS, g, "db_out", db_out, D, 1e-5, 1e-4);
    // The reference, from the same fixture.
    double *rw = malloc(sslc_attention_ref_workspace_size(&d) * sizeof(double));
    memset(dw_in, 0, n3 * 4), memset(db_in, 0, 3 * D * 4), memset(dw_out, 0, nd * 4);
    memset(db_out, 0, D * 4);
    sslc_attention_forward_ref(y, x, w_in, b_in, w_out, b_out, &d, rw);
    sslc_attention_backward_ref(dx, dw_in, db_in, dw_out, db_out, dy, x, w_in, b_in, w_out, b_out,
                                &d, rw);
    check(LAYERS, g, "y", y, nx, 1e-5, 1e-4);
    check(LAYERS, g, "dx", dx, nx, 1e-5, 1e-4);
    check(LAYERS, g, "dw_in", dw_in, n3, 1e-5, 1e-4);
    check(LAYERS, g, "dw_out", dw_out, nd, 1e-5, 1e-4);
    free(x), free(dy), free(w_in), free(b_in), free(w_out), free(b_out), free(y), free(qkv);
    free(ctx), free(probs), free(work), free(dx), free(dw_in), free(db_in), free(dw_out);
    free(db_out), free(rw);
}

static void patch_embed_matches_pytorch(void **state)
{
    (void)state;
    int64_t s[6]; // N H W C D patch
    sslc_fixture_attr_ints(LAYERS, "patch_embed", "shape", s, 6);
    const char *g = "patch_embed";
    size_t nx, nw, nb, ny, n;
    float *x = load(LAYERS, g, "x", &nx), *w = load(LAYERS, g, "w", &nw);
    float *b = load(LAYERS, g, "b", &nb), *dy = load(LAYERS, g, "dy", &ny);
    float *ref_y = load(LAYERS, g, "y", &n);
    sslc_patch_embed pe;
    assert_int_equal(sslc_patch_embed_create(&pe, s[0], s[1], s[2], s[3], s[4], s[5]), SSLC_OK);
    assert_int_equal((int64_t)ny, s[0] * (s[1] / s[5]) * (s[2] / s[5]) * s[4]);
    size_t wn = sslc_patch_embed_workspace_size(&pe);
    float *ws = wn ? malloc(wn * 4) : NULL;
    float *y = malloc(ny * 4), *dx = malloc(nx * 4), *dw = calloc(nw, 4), *db = calloc(nb, 4);
    sslc_patch_embed_prepare(&pe, w, ws);
    sslc_patch_embed_forward(&pe, y, x, b, ws);
    sslc_patch_embed_backward(&pe, dx, dw, db, dy, x, ws);
    check(LAYERS, g, "y", y, ny, 1e-5, 1e-4);
    check(LAYERS, g, "dx", dx, nx, 1e-5, 1e-4);
    check(LAYERS, g, "dw", dw, nw, 1e-5, 1e-4);
    check(LAYERS, g, "db", db, nb, 1e-5, 1e-4);
    // The reference: the reference convolution, then the bias.
    sslc_conv2d_forward_ref(y, x, w, &pe.d);
    sslc_bias_forward(y, b, (int64_t)ny / s[4], s[4]);
    sslc_assert_close("patch_embed reference y vs torch", y, ref_y, ny, 1e-5, 1e-4);
    sslc_patch_embed_destroy(&pe);
    free(x), free(w), free(b), free(dy), free(ref_y), free(ws), free(y), free(dx), free(dw);
    free(db);
}

// ---- whole models against torchvision ------------------------------------------------

static void load_params(sslc_params *p, const char *group)
{
    for (int64_t i = 0; i < p->count; i++) {
        const sslc_tensor *t = &p->tensors[i];
        char path[256];
        snprintf(path, sizeof path, "%s/params/%s", group, t->name);
        size_t n;
        float *v = sslc_fixture_floats(MODELS, path, &n);
        if ((int64_t)n != t->numel)
            fail_msg("%s: %zu values, the table has %lld", path, n, (long long)t->numel);
        memcpy(sslc_params_data(p, t), v, n * 4);
        free(v);
    }
}

static void vit_matches_torchvision(const char *group)
{
    int64_t c[8]; // image patch layers heads hidden mlp in_channels N
    sslc_fixture_attr_ints(MODELS, group, "config", c, 8);
    sslc_vit_config vc = {.image_size = c[0], .patch = c[1], .layers = c[2], .heads = c[3],
                          .hidden = c[4], .mlp_dim = c[5], .in_channels = c[6]};
    const int64_t N = c[7], D = c[4];
    sslc_vit net;
    assert_int_equal(sslc_vit_create(&net, &vc), SSLC_OK);
    load_params(&net.params, group); // every tensor, by torchvision's name and size
    sslc_vit_run *run;
    assert_int_equal(sslc_vit_run_create(&run, &net, N), SSLC_OK);
    size_t nx, nf;
    float *x = load(MODELS, group, "x", &nx), *df = load(MODELS, group, "dfeatures", &nf);
    assert_int_equal((int64_t)nf, N * D);
    sslc_vit_prepare(run, &net);
    const float *f = sslc_vit_forward(run, &net, x, true);
    check(MODELS, group, "features", f, nf, 1e-5, 1e-4);
    sslc_params_zero_grad(&net.params);
    sslc_vit_backward(run, &net, df);
    for (int64_t i = 0; i < net.params.count; i++) {
        const sslc_tensor *t = &net.params.tensors[i];
        char path[256];
        snprintf(path, sizeof path, "%s/grads/%s", group, t->name);
        size_t n;
        float *ref = sslc_fixture_floats(MODELS, path, &n);
        double scale = 1e-3;
        for (size_t k = 0; k < n; k++)
            scale = fmax(scale, fabs(ref[k]));
        char what[160];
        snprintf(what, sizeof what, "%s grad %s", group, t->name);
        sslc_assert_close(what, sslc_params_grad(&net.params, t), ref, n, 1e-4 * scale, 1e-3);
        free(ref);
    }
    // Eval mode computes the same numbers.
    float *train = malloc(nf * 4);
    memcpy(train, f, nf * 4);
    assert_memory_equal(sslc_vit_forward(run, &net, x, false), train, nf * 4);
    free(train), free(x), free(df);
    sslc_vit_run_destroy(run);
    sslc_vit_destroy(&net);
}

static void vit_3ch_two_layers_matches_torchvision(void **state)
{
    (void)state;
    vit_matches_torchvision("vit_a");
}

static void vit_1ch_four_heads_matches_torchvision(void **state)
{
    (void)state;
    vit_matches_torchvision("vit_b");
}

// MoCo v3's fixed table, as its build_2d_sincos_position_embedding computes it.
static void sincos_matches_moco_v3(void **state)
{
    (void)state;
    const int64_t cases[][2] = {{4, 8}, {7, 16}}; // grid, D
    for (size_t i = 0; i < 2; i++) {
        sslc_vit_config vc = {.image_size = 4 * cases[i][0], .patch = 4, .layers = 1, .heads = 2,
                              .hidden = cases[i][1], .mlp_dim = 8, .in_channels = 1,
                              .pos = SSLC_VIT_POS_SINCOS};
        sslc_vit net;
        assert_int_equal(sslc_vit_create(&net, &vc), SSLC_OK);
        sslc_vit_init(&net, 3); // init leaves the fixed table alone
        const sslc_tensor *t = sslc_params_find(&net.params, "encoder.pos_embedding");
        assert_non_null(t);
        assert_int_equal(t->kind, SSLC_TENSOR_BUFFER);
        char name[32];
        snprintf(name, sizeof name, "g%lld_d%lld", (long long)cases[i][0], (long long)cases[i][1]);
        check(MODELS, "vit_sincos", name, sslc_params_data(&net.params, t), (size_t)t->numel,
              1e-6, 1e-5);
        sslc_vit_destroy(&net);
    }
}

// ---- unit ------------------------------------------------------------------------------

// The fast attention against the double reference on shapes the fixture
// does not cover (one head, many heads, a long sequence); backward must
// accumulate into the parameter gradients.
static void attention_fast_matches_reference(void **state)
{
    (void)state;
    const int64_t shapes[][4] = {{3, 4, 8, 1}, {2, 17, 24, 6}, {1, 65, 16, 2}, {4, 1, 6, 3}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const sslc_attention_desc d = {shapes[t][0], shapes[t][1], shapes[t][2], shapes[t][3]};
        const size_t D = (size_t)d.D, nx = (size_t)(d.N * d.S) * D;
        float *x = sslc_test_randn(nx, 10 + t, 1.0), *dy = sslc_test_randn(nx, 20 + t, 1.0);
        float *w_in = sslc_test_randn(3 * D * D, 30 + t, 1.0 / sqrt((double)D));
        float *b_in = sslc_test_randn(3 * D, 40 + t, 0.1);
        float *w_out = sslc_test_randn(D * D, 50 + t, 1.0 / sqrt((double)D));
        float *b_out = sslc_test_randn(D, 60 + t, 0.1);
        float *y = malloc(nx * 4), *yr = malloc(nx * 4), *qkv = malloc(3 * nx * 4);
        float *ctx = malloc(nx * 4), *probs = malloc((size_t)(d.N * d.heads * d.S * d.S) * 4);
        float *work = malloc(sslc_attention_workspace_size(&d) * 4);
        double *rw = malloc(sslc_attention_ref_workspace_size(&d) * sizeof(double));
        float *dx = malloc(nx * 4), *dxr = malloc(nx * 4);
        float *g[4], *gr[4];
        const size_t sizes[4] = {3 * D * D, 3 * D, D * D, D};
        for (int k = 0; k < 4; k++) {
            g[k] = malloc(sizes[k] * 4), gr[k] = malloc(sizes[k] * 4);
            for (size_t i = 0; i < sizes[k]; i++)
                g[k][i] = gr[k][i] = 0.25f; // backward accumulates
        }
        sslc_attention_forward(y, qkv, probs, ctx, x, w_in, b_in, w_out, b_out, &d);
        sslc_attention_backward(dx, g[0], g[1], g[2], g[3], dy, x, qkv, probs, ctx, w_in, w_out,
                                &d, work);
        sslc_attention_forward_ref(yr, x, w_in, b_in, w_out, b_out, &d, rw);
        sslc_attention_backward_ref(dxr, gr[0], gr[1], gr[2], gr[3], dy, x, w_in, b_in, w_out,
                                    b_out, &d, rw);
        char what[96];
        static const char *names[4] = {"dw_in", "db_in", "dw_out", "db_out"};
        snprintf(what, sizeof what, "attention case %zu y", t);
        sslc_assert_close(what, y, yr, nx, 1e-5, 1e-4);
        snprintf(what, sizeof what, "attention case %zu dx", t);
        sslc_assert_close(what, dx, dxr, nx, 1e-5, 1e-4);
        for (int k = 0; k < 4; k++) {
            snprintf(what, sizeof what, "attention case %zu %s", t, names[k]);
            sslc_assert_close(what, g[k], gr[k], sizes[k], 1e-4, 1e-4);
            free(g[k]), free(gr[k]);
        }
        // Each row of each head's softmax sums to 1.
        for (int64_t r = 0; r < d.N * d.heads * d.S; r++) {
            double s = 0.0;
            for (int64_t j = 0; j < d.S; j++)
                s += probs[r * d.S + j];
            assert_true(fabs(s - 1.0) < 1e-5);
        }
        free(x), free(dy), free(w_in), free(b_in), free(w_out), free(b_out), free(y), free(yr);
        free(qkv), free(ctx), free(probs), free(work), free(rw), free(dx), free(dxr);
    }
}

// Population statistics of a tensor: mean and standard deviation.
static void moments(const sslc_params *p, const char *name, double *mean, double *std)
{
    const sslc_tensor *t = sslc_params_find(p, name);
    assert_non_null(t);
    const float *v = sslc_params_data(p, t);
    double s = 0.0, ss = 0.0;
    for (int64_t k = 0; k < t->numel; k++)
        s += v[k], ss += (double)v[k] * v[k];
    *mean = s / (double)t->numel;
    *std = sqrt(fmax(ss / (double)t->numel - *mean * *mean, 0.0));
}

static void vit_names_shapes_and_init(void **state)
{
    (void)state;
    sslc_vit_config vc = {.image_size = 32, .patch = 4, .in_channels = 3};
    assert_int_equal(sslc_vit_parse_arch(&vc, "vit-tiny"), SSLC_OK);
    assert_string_equal(sslc_vit_arch(&vc), "vit-tiny");
    sslc_vit net;
    assert_int_equal(sslc_vit_create(&net, &vc), SSLC_OK);
    // torchvision.models.VisionTransformer(32, 4, 12, 3, 192, 768) without
    // heads: 150 tensors, 5,360,832 values (checked with torchvision 0.14).
    assert_int_equal(net.params.count, 150);
    assert_int_equal(net.params.n_buffers, 0); // all trained (learned position embedding)
    int64_t total = 0;
    for (int64_t i = 0; i < net.params.count; i++)
        total += net.params.tensors[i].numel;
    assert_int_equal(total, 5360832);
    assert_string_equal(net.params.tensors[0].name, "class_token");
    assert_string_equal(net.params.tensors[149].name, "encoder.ln.bias");
    const sslc_tensor *t = sslc_params_find(&net.params, "encoder.pos_embedding");
    assert_int_equal(t->ndim, 3);
    assert_int_equal(t->shape[1], 65);
    assert_int_equal(t->kind, SSLC_TENSOR_PARAM);
    t = sslc_params_find(&net.params, "encoder.layers.encoder_layer_11.self_attention.in_proj_weight");
    assert_non_null(t);
    assert_int_equal(t->shape[0], 576);
    assert_int_equal(t->shape[1], 192);
    t = sslc_params_find(&net.params, "encoder.layers.encoder_layer_3.mlp.3.weight");
    assert_int_equal(t->shape[0], 192);
    assert_int_equal(t->shape[1], 768);
    assert_true(sslc_params_find(&net.params, "encoder.layers.encoder_layer_0.ln_1.weight")->flags &
                SSLC_TENSOR_NO_DECAY);
    assert_false(sslc_params_find(&net.params, "conv_proj.weight")->flags & SSLC_TENSOR_NO_DECAY);
    assert_int_equal(net.feature_dim, 192);
    // torchvision's initialisation, by moments.
    sslc_vit_init(&net, 11);
    double m, s;
    moments(&net.params, "conv_proj.weight", &m, &s);
    assert_true(fabs(s - sqrt(1.0 / 48)) < 0.03 * sqrt(1.0 / 48));
    moments(&net.params, "encoder.pos_embedding", &m, &s);
    assert_true(fabs(s - 0.02) < 0.03 * 0.02);
    moments(&net.params, "encoder.layers.encoder_layer_0.self_attention.in_proj_weight", &m, &s);
    double want = sqrt(6.0 / (4 * 192)) / sqrt(3.0); // uniform(+-b): std b / sqrt 3
    assert_true(fabs(s - want) < 0.03 * want);
    moments(&net.params, "encoder.layers.encoder_layer_0.self_attention.out_proj.weight", &m, &s);
    want = 1.0 / sqrt(192.0) / sqrt(3.0);
    assert_true(fabs(s - want) < 0.03 * want);
    moments(&net.params, "encoder.layers.encoder_layer_5.mlp.0.weight", &m, &s);
    want = sqrt(6.0 / (192 + 768)) / sqrt(3.0);
    assert_true(fabs(s - want) < 0.03 * want);
    moments(&net.params, "encoder.layers.encoder_layer_5.mlp.0.bias", &m, &s);
    assert_true(s > 0 && s < 2e-6);
    moments(&net.params, "encoder.layers.encoder_layer_5.ln_2.weight", &m, &s);
    assert_true(m == 1.0 && s == 0.0);
    moments(&net.params, "class_token", &m, &s);
    assert_true(m == 0.0 && s == 0.0);
    sslc_vit_destroy(&net);
    // The other presets, and a fixed position embedding as a buffer.
    assert_int_equal(sslc_vit_parse_arch(&vc, "vit-base"), SSLC_OK);
    assert_int_equal(vc.hidden, 768);
    assert_int_equal(vc.heads, 12);
    assert_int_equal(vc.mlp_dim, 3072);
    assert_string_equal(sslc_vit_arch(&vc), "vit-base");
    assert_int_equal(sslc_vit_parse_arch(&vc, "vit-small"), SSLC_OK);
    vc.pos = SSLC_VIT_POS_SINCOS;
    vc.layers = 2; // a depth override: no preset's name
    assert_string_equal(sslc_vit_arch(&vc), "vit");
    assert_int_equal(sslc_vit_create(&net, &vc), SSLC_OK);
    t = sslc_params_find(&net.params, "encoder.pos_embedding");
    assert_int_equal(t->kind, SSLC_TENSOR_BUFFER);
    assert_null(sslc_params_grad(&net.params, t));
    assert_int_equal(net.params.n_buffers, 65 * 384);
    sslc_vit_destroy(&net);
}

// vit-tiny at its real size (Fashion-MNIST shape, patch 4: 50 tokens, heads
// of 64): the features are the class tokens after a freshly initialised
// layer norm (weight 1, bias 0), so each row has mean 0 and variance 1, and
// backward reaches every parameter tensor with a finite, non-zero gradient.
static void vit_tiny_runs_at_full_size(void **state)
{
    (void)state;
    sslc_vit_config vc = {.image_size = 28, .patch = 4, .in_channels = 1};
    assert_int_equal(sslc_vit_parse_arch(&vc, "vit-tiny"), SSLC_OK);
    sslc_vit net;
    assert_int_equal(sslc_vit_create(&net, &vc), SSLC_OK);
    sslc_vit_init(&net, 9);
    const int64_t N = 2, D = 192, T = 50;
    assert_int_equal(net.tokens, T);
    sslc_vit_run *run;
    assert_int_equal(sslc_vit_run_create(&run, &net, N), SSLC_OK);
    assert_int_equal(sslc_vit_run_batch(run), N);
    // docs/vit.md: about 16 T D + heads T^2 floats per layer and image
    const double per_layer = (16.0 * T * D + 3.0 * T * T) * 4.0 * N;
    const double bytes = (double)sslc_vit_run_bytes(run);
    assert_true(bytes > 12 * per_layer && bytes < 1.3 * 12 * per_layer);
    float *x = sslc_test_randn((size_t)(N * 28 * 28), 77, 1.0);
    float *df = sslc_test_randn((size_t)(N * D), 78, 1.0);
    sslc_vit_prepare(run, &net);
    const float *f = sslc_vit_forward(run, &net, x, true);
    for (int64_t n = 0; n < N; n++) {
        double s = 0.0, ss = 0.0;
        for (int64_t k = 0; k < D; k++)
            s += f[n * D + k], ss += (double)f[n * D + k] * f[n * D + k];
        const double mean = s / D, var = ss / D - mean * mean;
        assert_true(fabs(mean) < 1e-5);
        assert_true(fabs(var - 1.0) < 1e-3);
    }
    sslc_params_zero_grad(&net.params);
    sslc_vit_backward(run, &net, df);
    for (int64_t i = 0; i < net.params.count; i++) {
        const sslc_tensor *t = &net.params.tensors[i];
        const float *g = sslc_params_grad(&net.params, t);
        double ss = 0.0;
        for (int64_t k = 0; k < t->numel; k++)
            ss += (double)g[k] * g[k];
        if (!(isfinite(ss) && ss > 0.0))
            fail_msg("%s: gradient norm^2 %g", t->name, ss);
    }
    free(x), free(df);
    sslc_vit_run_destroy(run);
    sslc_vit_destroy(&net);
}

static void vit_config_errors_are_reported(void **state)
{
    (void)state;
    sslc_vit_config vc = {.image_size = 28, .patch = 4, .in_channels = 1};
    assert_int_equal(sslc_vit_parse_arch(&vc, "vit-huge"), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "vit-huge"));
    assert_int_equal(sslc_vit_parse_arch(&vc, "vit-tiny"), SSLC_OK);
    sslc_vit net;
    vc.patch = 5; // 28 px do not split into 5 px patches
    assert_int_equal(sslc_vit_create(&net, &vc), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "multiple of --patch"));
    vc.patch = 4;
    vc.heads = 5; // 192 is not a multiple of 5
    assert_int_equal(sslc_vit_create(&net, &vc), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "multiple of heads"));
    vc.heads = 2, vc.hidden = 6, vc.pos = SSLC_VIT_POS_SINCOS;
    assert_int_equal(sslc_vit_create(&net, &vc), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "multiple of 4"));
    sslc_patch_embed pe;
    assert_int_equal(sslc_patch_embed_create(&pe, 1, 28, 30, 1, 8, 4), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "28x30"));
}

// sslc_encoder (src/models/encoder.h) over a ViT: the arch names of both
// families, the ViT's fields, the same features as sslc_vit's own calls,
// a clear refusal of a view size it was not built for, and no-op batch-norm
// calls.
static void encoder_interface_holds_a_vit(void **state)
{
    (void)state;
    sslc_encoder_config c = {.vit = {.in_channels = 1, .patch = 4, .image_size = 8}};
    assert_int_equal(sslc_encoder_parse_arch(&c, "resnet50"), SSLC_OK);
    assert_int_equal(c.kind, SSLC_ENCODER_RESNET);
    assert_int_equal(c.resnet.depth, 50);
    assert_int_equal(sslc_encoder_parse_arch(&c, "resnet19"), SSLC_ERR_INVALID);
    assert_non_null(strstr(sslc_error_message(), "vit-tiny"));
    assert_int_equal(sslc_encoder_parse_arch(&c, "vit-small"), SSLC_OK);
    assert_int_equal(c.kind, SSLC_ENCODER_VIT);
    assert_int_equal(c.vit.hidden, 384);
    assert_string_equal(sslc_encoder_config_arch(&c), "vit-small");
    // Test-sized: D 8, 2 layers, 2 heads, 8 x 8 one-channel images, patch 4.
    c.vit = (sslc_vit_config){.hidden = 8, .layers = 2, .heads = 2, .mlp_dim = 16, .patch = 4,
                              .image_size = 8, .in_channels = 1, .pos = SSLC_VIT_POS_LEARNED};
    sslc_encoder enc;
    sslc_vit net;
    assert_int_equal(sslc_encoder_create(&enc, &c), SSLC_OK);
    assert_int_equal(sslc_vit_create(&net, &c.vit), SSLC_OK);
    sslc_encoder_init(&enc, 7);
    sslc_vit_init(&net, 7);
    assert_string_equal(sslc_encoder_arch(&enc), "vit");
    assert_int_equal(enc.feature_dim, 8);
    assert_int_equal(enc.in_channels, 1);
    assert_ptr_equal(enc.params, &enc.net.vit.params);
    assert_memory_equal(enc.params->values, net.params.values, (size_t)net.params.n_values * 4);
    sslc_encoder_run *run;
    assert_int_equal(sslc_encoder_run_create(&run, &enc, 2, 16, 16), SSLC_ERR_INVALID);
    assert_null(run);
    assert_non_null(strstr(sslc_error_message(), "8 x 8"));
    assert_int_equal(sslc_encoder_run_create(&run, &enc, 2, 8, 8), SSLC_OK);
    sslc_vit_run *vrun;
    assert_int_equal(sslc_vit_run_create(&vrun, &net, 2), SSLC_OK);
    assert_true(sslc_encoder_run_bytes(run) > 0);
    assert_true(sslc_encoder_run_flops(run, &enc) > 0);
    sslc_encoder_run_set_bn(run, SSLC_BN_RUNNING_ACCUMULATE, NULL); // no batch norm: nothing
    float x[2 * 8 * 8];
    sslc_rng r = sslc_rng_make(3, 0, 0, 0, 0);
    for (int i = 0; i < 2 * 8 * 8; i++)
        x[i] = (float)sslc_rng_normal(&r);
    sslc_encoder_prepare(run, &enc);
    sslc_vit_prepare(vrun, &net);
    const float *fa = sslc_encoder_forward(run, &enc, x, true);
    const float *fb = sslc_vit_forward(vrun, &net, x, true);
    assert_memory_equal(fa, fb, 2 * 8 * sizeof(float));
    float df[2 * 8];
    for (int i = 0; i < 2 * 8; i++)
        df[i] = (float)sslc_rng_normal(&r);
    sslc_params_zero_grad(enc.params);
    sslc_params_zero_grad(&net.params);
    sslc_encoder_backward(run, &enc, df);
    sslc_vit_backward(vrun, &net, df);
    assert_memory_equal(enc.params->grads, net.params.grads, (size_t)net.params.n_values * 4);
    sslc_encoder_bn_apply(run, &enc, 2, NULL); // nothing either
    assert_memory_equal(enc.params->values, net.params.values, (size_t)net.params.n_values * 4);
    sslc_encoder_run_destroy(run);
    sslc_vit_run_destroy(vrun);
    sslc_encoder_destroy(&enc);
    sslc_vit_destroy(&net);
}

// ---- torch: the encoder loads into torchvision ---------------------------------------

// A saved ViT encoder loads into torchvision.models.VisionTransformer (heads
// replaced by Identity; conv_proj rebuilt for one channel) with strict=True
// by scripts/sslc_torch.py, and its features on the same images equal
// sslc's. Layer norms, biases and the class token are randomised so that
// every parameter matters.
static void torchvision_loads_the_encoder_with_equal_features(void **state)
{
    (void)state;
    char why[512];
    const char *py = sslc_test_torch_python(why, sizeof why);
    if (!py)
        sslc_test_skip("%s", why);
    char cmd[16384];
    const char *dir = sslc_test_tmpdir("vit-torch");
    typedef struct cfg {
        int64_t image, patch, layers, heads, hidden, mlp, in_ch, N;
        sslc_vit_pos pos;
    } cfg;
    const cfg cfgs[] = {
        {28, 4, 2, 3, 24, 96, 1, 3, SSLC_VIT_POS_LEARNED}, // Fashion-MNIST shape
        {32, 8, 3, 4, 32, 64, 3, 2, SSLC_VIT_POS_SINCOS},  // MoCo v3's fixed table
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        const cfg *c = &cfgs[i];
        sslc_vit_config vc = {.image_size = c->image, .patch = c->patch, .layers = c->layers,
                              .heads = c->heads, .hidden = c->hidden, .mlp_dim = c->mlp,
                              .in_channels = c->in_ch, .pos = c->pos};
        sslc_vit net;
        assert_int_equal(sslc_vit_create(&net, &vc), SSLC_OK);
        sslc_vit_init(&net, 40 + i);
        sslc_rng r = sslc_rng_make(50 + i, 0, 0, 0, 0);
        for (int64_t k = 0; k < net.params.count; k++) {
            const sslc_tensor *t = &net.params.tensors[k];
            if (t->kind == SSLC_TENSOR_PARAM && (t->flags & SSLC_TENSOR_NO_DECAY))
                for (int64_t j = 0; j < t->numel; j++)
                    sslc_params_data(&net.params, t)[j] += 0.2f * (float)sslc_rng_normal(&r);
        }
        const int64_t N = c->N, H = c->image, C = c->in_ch, D = c->hidden;
        float *x = malloc((size_t)(N * H * H * C) * 4), *nchw = malloc((size_t)(N * H * H * C) * 4);
        assert_true(x && nchw);
        for (int64_t k = 0; k < N * H * H * C; k++)
            x[k] = (float)sslc_rng_normal(&r);
        for (int64_t n = 0; n < N; n++) // sslc is NHWC, PyTorch NCHW
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < H; w++)
                    for (int64_t ch = 0; ch < C; ch++)
                        nchw[((n * C + ch) * H + h) * H + w] = x[((n * H + h) * H + w) * C + ch];
        sslc_vit_run *run;
        assert_int_equal(sslc_vit_run_create(&run, &net, N), SSLC_OK);
        sslc_vit_prepare(run, &net);
        const float *feats = sslc_vit_forward(run, &net, x, false);
        char ckpt[4200], ref[4200];
        snprintf(ckpt, sizeof ckpt, "%s/vit-%zu.h5", dir, i);
        snprintf(ref, sizeof ref, "%s/ref-%zu.h5", dir, i);
        // The /model attributes sslc_torch.py rebuilds the model from (docs/vit.md).
        const sslc_ckpt_attr model[] = {
            {.key = "arch", .type = SSLC_CKPT_ATTR_STRING, .s = sslc_vit_arch(&vc)},
            {.key = "in_channels", .type = SSLC_CKPT_ATTR_INT, .i = C},
            {.key = "image_size", .type = SSLC_CKPT_ATTR_INT, .i = H},
            {.key = "patch", .type = SSLC_CKPT_ATTR_INT, .i = c->patch},
            {.key = "layers", .type = SSLC_CKPT_ATTR_INT, .i = c->layers},
            {.key = "heads", .type = SSLC_CKPT_ATTR_INT, .i = c->heads},
            {.key = "hidden", .type = SSLC_CKPT_ATTR_INT, .i = D},
            {.key = "mlp_dim", .type = SSLC_CKPT_ATTR_INT, .i = c->mlp},
            {.key = "pos_embedding", .type = SSLC_CKPT_ATTR_STRING,
             .s = c->pos == SSLC_VIT_POS_SINCOS ? "sincos" : "learned"},
        };
        sslc_ckpt_part part = {"encoder", &net.params};
        sslc_ckpt ck = {.method = "simclr", .model = model,
                        .n_model = sizeof model / sizeof model[0], .parts = &part, .n_parts = 1};
        assert_int_equal(sslc_ckpt_save(ckpt, &ck), SSLC_OK);
        hid_t f = H5Fcreate(ref, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        const hsize_t idims[4] = {(hsize_t)N, (hsize_t)C, (hsize_t)H, (hsize_t)H};
        const hsize_t fdims[2] = {(hsize_t)N, (hsize_t)D};
        sslc_test_write_floats(f, "images", 4, idims, nchw);
        sslc_test_write_floats(f, "features", 2, fdims, feats);
        H5Fclose(f);
        printf("  %s %lld layers D %lld, %lldx%lldx%lld, patch %lld, %s position embedding\n",
               sslc_vit_arch(&vc), (long long)c->layers, (long long)D, (long long)C,
               (long long)H, (long long)H, (long long)c->patch,
               c->pos == SSLC_VIT_POS_SINCOS ? "sin-cos" : "learned");
        fflush(stdout);
        // Features are O(1) after the final layer norm: equal to ~1e-5.
        snprintf(cmd, sizeof cmd,
                 "%s '%s/scripts/sslc_torch.py' compare --atol 2e-5 --rtol 1e-5 '%s' '%s'", py,
                 SSLC_SOURCE_DIR, ckpt, ref);
        assert_int_equal(system(cmd), 0);
        sslc_vit_run_destroy(run);
        sslc_vit_destroy(&net);
        free(x), free(nchw);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(attention_fast_matches_reference),
        cmocka_unit_test(vit_names_shapes_and_init),
        cmocka_unit_test(vit_tiny_runs_at_full_size),
        cmocka_unit_test(vit_config_errors_are_reported),
        cmocka_unit_test(encoder_interface_holds_a_vit),
    };
    const struct CMUnitTest fixture[] = {
        cmocka_unit_test(layernorm_gelu_match_pytorch),
        cmocka_unit_test(attention_matches_pytorch),
        cmocka_unit_test(patch_embed_matches_pytorch),
        cmocka_unit_test(vit_3ch_two_layers_matches_torchvision),
        cmocka_unit_test(vit_1ch_four_heads_matches_torchvision),
        cmocka_unit_test(sincos_matches_moco_v3),
    };
    const struct CMUnitTest torch[] = {
        cmocka_unit_test(torchvision_loads_the_encoder_with_equal_features),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("unit", unit), SSLC_GROUP("fixture", fixture),
                                      SSLC_GROUP("torch", torch)};
    return sslc_test_main(argc, argv, groups, 3);
}
