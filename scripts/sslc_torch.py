#!/usr/bin/python3
"""Load sslc checkpoints into torchvision ResNets and VisionTransformers
(Debian python3-torch, python3-torchvision, python3-h5py).

From Python (scripts/ on sys.path):

    from sslc_torch import load_encoder
    model = load_encoder("runs/x/last.h5")   # torchvision ResNet, fc = Identity, eval mode
    feats = model(images)                    # (N, C_out) pooled features

The model is built from torchvision.models.resnet.ResNet, BasicBlock and
Bottleneck with the architecture, input channels, base width and stem
recorded in the checkpoint's /model attributes, so its state_dict keys are
torchvision's, and the weights load by name with strict=True. Replace
`model.fc` with an nn.Linear to fine-tune.

A ViT checkpoint (arch vit-tiny, vit-small, vit-base or vit; /model attributes
image_size, patch, layers, heads, hidden, mlp_dim, in_channels,
pos_embedding) loads into torchvision.models.VisionTransformer(image_size,
patch, layers, heads, hidden, mlp_dim) with `heads` replaced by Identity, so
the output is the class token after encoder.ln (sslc's feature) and the
state_dict has no heads.* keys; strict=True. For in_channels other than 3,
conv_proj is rebuilt as nn.Conv2d(in_channels, hidden, patch, stride=patch)
under the same name. A fixed sin-cos position embedding (MoCo v3) loads as the
same parameter with requires_grad False. Replace `model.heads` with an
nn.Linear to fine-tune.

Command line:

    sslc_torch.py info CKPT                  model options and tensor count
    sslc_torch.py features CKPT IMAGE...     pooled features, one line per image
    sslc_torch.py embed-check CKPT FEAT.h5   recomputes the features of a file written by
                                             `sslc embed` (image files of the view size)
                                             with torchvision; exits 1 when they differ
                                             beyond --atol/--rtol
    sslc_torch.py compare CKPT REF.h5        REF holds `images` (N,C,H,W) float32 as
                                             sslc fed them to its encoder and `features`
                                             (N,D) as sslc computed them; exits 1 when
                                             they differ beyond --atol/--rtol
"""
import argparse
import sys

import h5py
import numpy as np
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.models.vision_transformer import VisionTransformer

FORMAT_VERSION = 1

ARCHS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


class CheckpointError(Exception):
    """A file that is not a loadable sslc checkpoint; the message says why."""


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def read_meta(path):
    """Header and model options of a checkpoint, as a plain dict."""
    with h5py.File(path, "r") as f:
        if "format_version" not in f.attrs:
            raise CheckpointError(f"{path}: not an sslc checkpoint (no format_version)")
        version = int(f.attrs["format_version"])
        if version != FORMAT_VERSION:
            raise CheckpointError(f"{path}: format version {version}, this loader reads {FORMAT_VERSION}")
        meta = {k: _text(v) for k, v in f.attrs.items()}
        meta["model"] = {k: _text(v) for k, v in f["model"].attrs.items()} if "model" in f else {}
        meta["parts"] = [k for k in f.keys() if k not in ("model", "optimizer", "state")]
    return meta


def build_resnet(arch="resnet18", in_channels=3, width=64, cifar_stem=False):
    """A torchvision ResNet with base width `width` (layers of width, 2w, 4w, 8w
    planes; torchvision's standard is 64), `in_channels` input channels, and for
    cifar_stem a 3x3 stride-1 first convolution without max pool. fc is Identity:
    the output is the pooled feature vector."""
    if arch not in ARCHS:
        raise CheckpointError(f"unknown arch '{arch}' (known: {', '.join(ARCHS)})")
    block, layers = ARCHS[arch]
    model = ResNet(block, layers)
    # torchvision's ResNet hard-codes 64 channels; rebuild every module that
    # depends on it with its own _make_layer, so names and block types stay
    # torchvision's.
    model.inplanes = width
    model.dilation = 1
    if cifar_stem:
        model.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    else:
        model.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = model._norm_layer(width)
    model.layer1 = model._make_layer(block, width, layers[0])
    model.layer2 = model._make_layer(block, 2 * width, layers[1], stride=2)
    model.layer3 = model._make_layer(block, 4 * width, layers[2], stride=2)
    model.layer4 = model._make_layer(block, 8 * width, layers[3], stride=2)
    model.fc = nn.Identity()
    # The initialisation torchvision gives a fresh model, for use without a checkpoint.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    return model


def build_vit(image_size, patch, layers, heads, hidden, mlp_dim, in_channels=3,
              pos_embedding="learned"):
    """torchvision's VisionTransformer as sslc's ViT encoder: heads = Identity, so
    the output is the class token after encoder.ln; conv_proj for in_channels."""
    model = VisionTransformer(image_size, patch, layers, heads, hidden, mlp_dim)
    if in_channels != 3:
        model.conv_proj = nn.Conv2d(in_channels, hidden, kernel_size=patch, stride=patch)
        # torchvision's initialisation of the patchify stem
        nn.init.trunc_normal_(model.conv_proj.weight, std=(1.0 / (in_channels * patch * patch)) ** 0.5)
        nn.init.zeros_(model.conv_proj.bias)
    model.heads = nn.Identity()
    if pos_embedding == "sincos":
        model.encoder.pos_embedding.requires_grad = False
    return model


def read_part(path, part="encoder"):
    """Every tensor of one part as {state_dict name: torch.Tensor}, in file order."""
    with h5py.File(path, "r") as f:
        if part not in f:
            raise CheckpointError(f"{path}: has no part '{part}' (parts: {', '.join(f.keys())})")
        out = {}
        for name, ds in f[part].items():
            out[name] = torch.from_numpy(np.array(ds[()]))
    return out


VIT_KEYS = ("image_size", "patch", "layers", "heads", "hidden", "mlp_dim", "in_channels")


def model_options(meta):
    m = meta["model"]
    if str(m.get("arch", "")).startswith("vit"):
        for key in VIT_KEYS:
            if key not in m:
                raise CheckpointError(f"checkpoint has no model attribute '{key}'")
        opts = {k: int(m[k]) for k in VIT_KEYS}
        opts["arch"] = str(m["arch"])
        opts["pos_embedding"] = str(m.get("pos_embedding", "learned"))
        return opts
    for key in ("arch", "in_channels", "width", "cifar_stem"):
        if key not in m:
            raise CheckpointError(f"checkpoint has no model attribute '{key}'")
    return dict(arch=str(m["arch"]), in_channels=int(m["in_channels"]), width=int(m["width"]),
                cifar_stem=bool(int(m["cifar_stem"])))


def load_encoder(path, part="encoder"):
    """The checkpoint's encoder as a torchvision ResNet (fc = Identity) or
    VisionTransformer (heads = Identity), in eval mode."""
    meta = read_meta(path)
    opts = model_options(meta)
    if opts["arch"].startswith("vit"):
        model = build_vit(**{k: v for k, v in opts.items() if k != "arch"})
    else:
        model = build_resnet(**opts)
    state = read_part(path, part)
    expected = model.state_dict()
    for name, value in state.items():
        if name in expected and tuple(value.shape) != tuple(expected[name].shape):
            raise CheckpointError(f"{path}: {part} tensor '{name}' has shape {tuple(value.shape)}, "
                                  f"the torchvision model expects {tuple(expected[name].shape)}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def _load_image(path, in_channels):
    from PIL import Image
    img = Image.open(path).convert("L" if in_channels == 1 else "RGB")
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)
    return x[None] if in_channels == 1 else x.permute(2, 0, 1)


def _floats(value):
    """"0.5" / "0.485,0.456,0.406" / a number / an array -> list of floats (None when absent)."""
    if value is None or (isinstance(value, str) and not value):
        return None
    if isinstance(value, str):
        return [float(v) for v in value.split(",")]
    return [float(v) for v in np.atleast_1d(value)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("info", help="model options and tensors")
    p.add_argument("ckpt")
    p = sub.add_parser("features", help="pooled features of images")
    p.add_argument("ckpt")
    p.add_argument("images", nargs="+")
    p.add_argument("--mean", help="per-channel mean of pixels in [0,1], e.g. 0.286 or 0.49,0.48,0.45 "
                                  "(default: model attribute input_mean, else none)")
    p.add_argument("--std", help="per-channel std (default: model attribute input_std, else none)")
    p = sub.add_parser("embed-check", help="compare torch features with sslc embed's")
    p.add_argument("ckpt")
    p.add_argument("features")
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--rtol", type=float, default=1e-3)
    p = sub.add_parser("compare", help="compare torch features with sslc's")
    p.add_argument("ckpt")
    p.add_argument("ref")
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--rtol", type=float, default=1e-3)
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    try:
        if a.cmd == "info":
            meta = read_meta(a.ckpt)
            print(f"{a.ckpt}: method {meta.get('method')}, step {meta.get('step')}, "
                  f"model {model_options(meta)}")
            model = load_encoder(a.ckpt)
            n = sum(v.numel() for v in model.state_dict().values())
            print(f"loaded into torchvision {type(model).__name__} with strict=True: "
                  f"{len(model.state_dict())} tensors, {n} values")
        elif a.cmd == "features":
            model = load_encoder(a.ckpt)
            meta = read_meta(a.ckpt)
            m = meta["model"]
            opts = model_options(meta)
            mean = _floats(a.mean) or _floats(m.get("input_mean"))
            std = _floats(a.std) or _floats(m.get("input_std"))
            x = torch.stack([_load_image(p, opts["in_channels"]) for p in a.images])
            if mean is not None:
                x = x - torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
            if std is not None:
                x = x / torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
            with torch.no_grad():
                feats = model(x)
            for path, f in zip(a.images, feats):
                print(path, " ".join(f"{v:.6g}" for v in f.tolist()))
        elif a.cmd == "embed-check":
            model = load_encoder(a.ckpt)
            opts = model_options(read_meta(a.ckpt))
            with h5py.File(a.features, "r") as f:
                ref = np.array(f["features"], dtype=np.float32)
                names = [_text(n) for n in f["names"][()]]
                mean = _floats(_text(f.attrs["input_mean"]))
                std = _floats(_text(f.attrs["input_std"]))
            x = torch.stack([_load_image(p, opts["in_channels"]) for p in names])
            x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
            with torch.no_grad():
                got = model(x).numpy()
            diff = np.abs(got - ref)
            ok = bool(np.all(diff <= a.atol + a.rtol * np.abs(ref)))
            at = np.unravel_index(np.argmax(diff), diff.shape)
            print(f"embed-check: {ref.shape[0]} images, {ref.shape[1]} features: max|diff| "
                  f"{diff.max():.3g} at {tuple(int(i) for i in at)} (torch {got[at]:.7g}, sslc "
                  f"{ref[at]:.7g}): {'ok' if ok else 'DIFFERENT'}")
            return 0 if ok else 1
        elif a.cmd == "compare":
            model = load_encoder(a.ckpt)
            with h5py.File(a.ref, "r") as f:
                images = torch.from_numpy(np.array(f["images"], dtype=np.float32))
                ref = np.array(f["features"], dtype=np.float32)
            with torch.no_grad():
                got = model(images).numpy()
            if got.shape != ref.shape:
                print(f"compare: torch features have shape {got.shape}, sslc's {ref.shape}")
                return 1
            diff = np.abs(got - ref)
            excess = diff - (a.atol + a.rtol * np.abs(ref))
            worst = excess if excess.max() > 0 else diff
            at = np.unravel_index(np.argmax(worst), diff.shape)
            print(f"compare: {ref.shape[0]} images, {ref.shape[1]} features: max|diff| {diff.max():.3g}, "
                  f"worst at {tuple(int(i) for i in at)}: torch {got[at]:.7g} vs sslc {ref[at]:.7g}")
            return 0 if excess.max() <= 0 else 1
    except (CheckpointError, OSError, KeyError, RuntimeError) as e:
        print(f"sslc_torch: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
