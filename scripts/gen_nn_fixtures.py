#!/usr/bin/python3
"""PyTorch reference fixtures for src/nn and src/models.

Writes tests/fixtures/nn_layers.h5 and tests/fixtures/nn_models.h5 with
inputs, weights, outputs and gradients computed by torch (fixed seed).
Activations are stored NHWC (sslc's layout), weights in PyTorch layout.
The Vision Transformer groups (vit_layers, vit_models) are drawn after
everything else from their own seed, so adding them left every earlier
dataset value-identical.
Run: /usr/bin/python3 scripts/gen_nn_fixtures.py [--only vit]

--only vit rewrites the ViT groups alone and leaves the rest of both files as
they are: a full run on another machine (or thread count) reproduces the
earlier groups' inputs exactly but their torch outputs only to float rounding
(up to 1e-4 of a tensor's largest value in the ResNet gradients), and committed
fixtures should change only where meant to.
"""
import argparse
import os

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures")


# Weights and gradients of weights keep PyTorch's layout; 4-d activations
# (everything else) are stored NHWC.
WEIGHTS = {"w", "dw"}


def put(g, name, t, raw=False):
    t = t.detach()
    if t.dim() == 4 and not raw and name not in WEIGHTS:
        t = t.permute(0, 2, 3, 1)
    a = t.contiguous().numpy()
    g.create_dataset(name, data=a.astype(np.float32) if a.dtype.kind == "f" else a)


def layers(f):
    # Convolutions: (N, C, H, W, K, kernel, stride, pad)
    for i, (n, c, h, w, k, ks, st, pad) in enumerate(
        [(2, 3, 7, 6, 4, 3, 1, 1), (2, 4, 8, 8, 5, 3, 2, 1), (2, 6, 7, 7, 4, 1, 2, 0),
         (1, 2, 11, 9, 3, 7, 2, 3), (3, 5, 5, 5, 6, 1, 1, 0)]):
        x = torch.randn(n, c, h, w, requires_grad=True)
        wt = torch.randn(k, c, ks, ks, requires_grad=True)
        y = F.conv2d(x, wt, stride=st, padding=pad)
        dy = torch.randn_like(y)
        y.backward(dy)
        g = f.create_group(f"conv{i}")
        g.attrs["shape"] = [n, h, w, c, k, ks, st, pad]
        for name, t in [("x", x), ("w", wt), ("y", y), ("dy", dy), ("dx", x.grad), ("dw", wt.grad)]:
            put(g, name, t)
    # Batch norm 2d, training then eval, with running statistics.
    for i, (n, c, h, w) in enumerate([(4, 3, 5, 5), (2, 8, 3, 4)]):
        bn = nn.BatchNorm2d(c)
        with torch.no_grad():
            bn.weight.copy_(torch.rand(c) + 0.5)
            bn.bias.copy_(torch.randn(c))
            bn.running_mean.copy_(torch.randn(c) * 0.1)
            bn.running_var.copy_(torch.rand(c) + 0.5)
        g = f.create_group(f"bn{i}")
        g.attrs["shape"] = [n, h, w, c]
        put(g, "gamma", bn.weight)
        put(g, "beta", bn.bias)
        put(g, "running_mean_in", bn.running_mean.clone())
        put(g, "running_var_in", bn.running_var.clone())
        x = (torch.randn(n, c, h, w) * 2 + 1).requires_grad_(True)
        y = bn(x)
        dy = torch.randn_like(y)
        y.backward(dy)
        for name, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad), ("dgamma", bn.weight.grad),
                        ("dbeta", bn.bias.grad), ("running_mean", bn.running_mean),
                        ("running_var", bn.running_var)]:
            put(g, name, t)
        bn.eval()
        put(g, "y_eval", bn(x))
        # BN followed by ReLU: the fused path
        bn.train()
        x2 = x.detach().clone().requires_grad_(True)
        bn.weight.grad = None
        bn.bias.grad = None
        y2 = F.relu(bn(x2))
        y2.backward(dy)
        put(g, "y_relu", y2)
        put(g, "dx_relu", x2.grad)
        put(g, "dgamma_relu", bn.weight.grad)
        put(g, "dbeta_relu", bn.bias.grad)
    # Max pool 3x3 s2 p1 and global average pool.
    x = torch.randn(2, 3, 9, 8, requires_grad=True)
    y = F.max_pool2d(x, 3, 2, 1)
    dy = torch.randn_like(y)
    y.backward(dy)
    g = f.create_group("maxpool")
    for name, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
        put(g, name, t)
    x = torch.randn(3, 4, 5, 6, requires_grad=True)
    y = x.mean(dim=(2, 3))
    dy = torch.randn_like(y)
    y.backward(dy)
    g = f.create_group("avgpool")
    for name, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
        put(g, name, t)
    # Linear with bias and L2 normalisation.
    lin = nn.Linear(7, 5)
    x = torch.randn(4, 7, requires_grad=True)
    y = lin(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    g = f.create_group("linear")
    for name, t in [("x", x), ("w", lin.weight), ("b", lin.bias), ("y", y), ("dy", dy),
                    ("dx", x.grad), ("dw", lin.weight.grad), ("db", lin.bias.grad)]:
        put(g, name, t)
    x = torch.randn(5, 6, requires_grad=True)
    y = F.normalize(x, dim=1)
    dy = torch.randn_like(y)
    y.backward(dy)
    g = f.create_group("l2norm")
    for name, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
        put(g, name, t)


def resnet(width, depth, in_ch, cifar):
    block = torchvision.models.resnet.BasicBlock if depth < 50 else torchvision.models.resnet.Bottleneck
    stages = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3]}[depth]
    net = torchvision.models.resnet.ResNet(block, stages)
    # Rebuild with a scaled width, keeping torchvision's module names.
    net.inplanes = width
    net.conv1 = nn.Conv2d(in_ch, width, 3 if cifar else 7, 1 if cifar else 2, 1 if cifar else 3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    if cifar:
        net.maxpool = nn.Identity()
    net.layer1 = net._make_layer(block, width, stages[0])
    net.layer2 = net._make_layer(block, width * 2, stages[1], stride=2)
    net.layer3 = net._make_layer(block, width * 4, stages[2], stride=2)
    net.layer4 = net._make_layer(block, width * 8, stages[3], stride=2)
    net.fc = nn.Identity()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():  # non-trivial affine and running stats
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net


def models(f):
    for tag, (width, depth, in_ch, cifar, n, hw) in {
        "resnet18_cifar": (6, 18, 3, True, 4, 16),
        "resnet50_imagenet": (2, 50, 1, False, 4, 64),
    }.items():
        net = resnet(width, depth, in_ch, cifar)
        g = f.create_group(tag)
        g.attrs["config"] = [depth, in_ch, width, int(cifar), n, hw]
        sd = {k: v.clone() for k, v in net.state_dict().items()}
        gp = g.create_group("params")
        for k, v in sd.items():
            put(gp, k, v, raw=True)
        x = torch.randn(n, in_ch, hw, hw)
        net.train()
        y = net(x)
        dy = torch.randn_like(y)
        y.backward(dy)
        put(g, "x", x)
        put(g, "features", y)
        put(g, "dfeatures", dy)
        gg = g.create_group("grads")
        for k, p in net.named_parameters():
            put(gg, k, p.grad, raw=True)
        ga = g.create_group("after")  # running statistics after the training forward
        for k, v in net.state_dict().items():
            if "running" in k or "num_batches" in k:
                put(ga, k, v)
        net.eval()
        put(g, "features_eval", net(x))
    # SimCLR projection head: Linear(no bias)-BN-ReLU-Linear
    head = nn.Sequential(nn.Linear(12, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 6))
    g = f.create_group("head")
    gp = g.create_group("params")
    for k, v in head.state_dict().items():
        put(gp, k, v)
    x = torch.randn(8, 12, requires_grad=True)
    y = head(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    for name, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
        put(g, name, t)
    gg = g.create_group("grads")
    for k, p in head.named_parameters():
        put(gg, k, p.grad)


def vit_layers(f):
    # Layer norm over the last dim (eps 1e-6, as torchvision's ViT).
    ln = nn.LayerNorm(10, eps=1e-6)
    with torch.no_grad():
        ln.weight.copy_(torch.rand(10) + 0.5)
        ln.bias.copy_(torch.randn(10))
    x = (torch.randn(6, 10) * 2 + 1).requires_grad_(True)
    y = ln(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    g = f.create_group("layernorm")
    for name, t in [("x", x), ("gamma", ln.weight), ("beta", ln.bias), ("y", y), ("dy", dy),
                    ("dx", x.grad), ("dgamma", ln.weight.grad), ("dbeta", ln.bias.grad)]:
        put(g, name, t)
    # GELU, exact erf form (nn.GELU() default).
    x = (torch.randn(64) * 2).requires_grad_(True)
    y = nn.GELU()(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    g = f.create_group("gelu")
    for name, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
        put(g, name, t)
    # Self-attention as torchvision's EncoderBlock calls it; non-zero biases.
    n, s, d, heads = 2, 5, 12, 3
    mha = nn.MultiheadAttention(d, heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_bias.normal_(0, 0.1)
        mha.out_proj.bias.normal_(0, 0.1)
    x = torch.randn(n, s, d, requires_grad=True)
    y, _ = mha(x, x, x, need_weights=False)
    dy = torch.randn_like(y)
    y.backward(dy)
    g = f.create_group("attention")
    g.attrs["shape"] = [n, s, d, heads]
    for name, t in [("x", x), ("w_in", mha.in_proj_weight), ("b_in", mha.in_proj_bias),
                    ("w_out", mha.out_proj.weight), ("b_out", mha.out_proj.bias), ("y", y),
                    ("dy", dy), ("dx", x.grad), ("dw_in", mha.in_proj_weight.grad),
                    ("db_in", mha.in_proj_bias.grad), ("dw_out", mha.out_proj.weight.grad),
                    ("db_out", mha.out_proj.bias.grad)]:
        put(g, name, t)
    # Patch embedding: conv_proj then torchvision's reshape + permute to (N, S, D);
    # a non-square image so that the patch order is checked.
    n, c, h, w, d, p = 2, 3, 8, 12, 6, 4
    conv = nn.Conv2d(c, d, kernel_size=p, stride=p)
    x = torch.randn(n, c, h, w, requires_grad=True)
    y = conv(x).reshape(n, d, (h // p) * (w // p)).permute(0, 2, 1)
    dy = torch.randn_like(y)
    y.backward(dy)
    g = f.create_group("patch_embed")
    g.attrs["shape"] = [n, h, w, c, d, p]
    for name, t in [("x", x), ("w", conv.weight), ("b", conv.bias), ("y", y), ("dy", dy),
                    ("dx", x.grad), ("dw", conv.weight.grad), ("db", conv.bias.grad)]:
        put(g, name, t)


def sincos_2d(grid, dim, temperature=10000.0):
    """MoCo v3's VisionTransformerMoCo.build_2d_sincos_position_embedding, verbatim
    but for the class-token row: (1, grid*grid + 1, dim)."""
    grid_w = torch.arange(grid, dtype=torch.float32)
    grid_h = torch.arange(grid, dtype=torch.float32)
    grid_w, grid_h = torch.meshgrid(grid_w, grid_h, indexing="ij")
    pos_dim = dim // 4
    omega = torch.arange(pos_dim, dtype=torch.float32) / pos_dim
    omega = 1. / (temperature**omega)
    out_w = torch.einsum("m,d->md", [grid_w.flatten(), omega])
    out_h = torch.einsum("m,d->md", [grid_h.flatten(), omega])
    pos_emb = torch.cat([torch.sin(out_w), torch.cos(out_w), torch.sin(out_h), torch.cos(out_h)], dim=1)[None, :, :]
    pe_token = torch.zeros([1, 1, dim], dtype=torch.float32)
    return torch.cat([pe_token, pos_emb], dim=1)


def vit(image, patch, layers, heads, hidden, mlp, in_ch):
    """torchvision's VisionTransformer as sslc's encoder: heads = Identity (the
    output is the class token after encoder.ln), conv_proj for in_ch channels."""
    net = torchvision.models.VisionTransformer(image, patch, layers, heads, hidden, mlp)
    if in_ch != 3:
        net.conv_proj = nn.Conv2d(in_ch, hidden, kernel_size=patch, stride=patch)
    net.heads = nn.Identity()
    with torch.no_grad():  # every parameter non-trivial, so that each path counts
        for k, v in net.named_parameters():
            if k.endswith("bias") or "ln" in k or k == "class_token":
                v.add_(torch.randn_like(v) * 0.2)
    return net


def vit_models(f):
    for tag, (image, patch, layers, heads, hidden, mlp, in_ch, n) in {
        "vit_a": (8, 4, 2, 2, 8, 16, 3, 3),
        "vit_b": (12, 3, 1, 4, 16, 40, 1, 2),
    }.items():
        net = vit(image, patch, layers, heads, hidden, mlp, in_ch)
        g = f.create_group(tag)
        g.attrs["config"] = [image, patch, layers, heads, hidden, mlp, in_ch, n]
        gp = g.create_group("params")
        for k, v in net.state_dict().items():
            put(gp, k, v, raw=True)
        x = torch.randn(n, in_ch, image, image)
        y = net(x)
        dy = torch.randn_like(y)
        y.backward(dy)
        put(g, "x", x)
        put(g, "features", y)
        put(g, "dfeatures", dy)
        gg = g.create_group("grads")
        for k, p in net.named_parameters():
            put(gg, k, p.grad, raw=True)
    g = f.create_group("vit_sincos")
    for grid, dim in [(4, 8), (7, 16)]:
        put(g, f"g{grid}_d{dim}", sincos_2d(grid, dim), raw=True)


VIT_GROUPS = {"nn_layers.h5": ["layernorm", "gelu", "attention", "patch_embed"],
              "nn_models.h5": ["vit_a", "vit_b", "vit_sincos"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["vit"], help="rewrite only these groups")
    a = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    if not a.only:
        torch.manual_seed(0)
        with h5py.File(os.path.join(OUT, "nn_layers.h5"), "w") as f:
            layers(f)
        with h5py.File(os.path.join(OUT, "nn_models.h5"), "w") as f:
            models(f)
    torch.manual_seed(17)
    for name, write in (("nn_layers.h5", vit_layers), ("nn_models.h5", vit_models)):
        with h5py.File(os.path.join(OUT, name), "a") as f:
            for group in VIT_GROUPS[name]:
                if group in f:
                    del f[group]
            write(f)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
