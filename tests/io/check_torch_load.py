#!/usr/bin/python3
"""Called by test_io's torch group with checkpoints written by sslc from
tables filled with a known pattern (see fill_pattern in test_checkpoint.c).
For each file it loads the encoder with scripts/sslc_torch.py (strict=True
into a torchvision ResNet), then checks every state_dict tensor's values,
shape and dtype against the pattern, and, for width 64 with three input
channels, that the model's state_dict names and shapes are exactly those of
torchvision.models.resnetXX() without fc. It also checks the `compare` mode
of sslc_torch.py passes on matching features and fails on perturbed ones.
Exits non-zero on the first failure."""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "..", "..", "scripts")
sys.path.insert(0, SCRIPTS)
import sslc_torch  # noqa: E402


def fnv1a(name):
    h = 2166136261
    for b in name.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def pattern(name, tensor):
    h = fnv1a(name)
    if tensor.dtype == torch.int64:
        return np.array(h % 1000, dtype=np.int64)
    i = np.arange(tensor.numel(), dtype=np.uint64)
    k = (np.uint64(h) + np.uint64(7919) * i) % np.uint64(1000003)
    return (k.astype(np.float64) / 1000003.0 - 0.5).astype(np.float32).reshape(tuple(tensor.shape))


def check_file(path):
    meta = sslc_torch.read_meta(path)
    opts = sslc_torch.model_options(meta)
    model = sslc_torch.load_encoder(path)
    state = model.state_dict()
    for name, t in state.items():
        want = pattern(name, t)
        got = t.numpy()
        if got.shape != want.shape or got.dtype != want.dtype or not np.array_equal(got, want):
            raise SystemExit(f"FAIL {path}: tensor '{name}' {got.dtype}{got.shape} differs from the "
                             f"pattern {want.dtype}{want.shape}")
    if opts["width"] == 64 and opts["in_channels"] == 3:
        ref = getattr(torchvision.models, opts["arch"])().state_dict()
        ref = {k: tuple(v.shape) for k, v in ref.items() if not k.startswith("fc.")}
        if opts["cifar_stem"]:
            ref["conv1.weight"] = (64, 3, 3, 3)
        mine = {k: tuple(v.shape) for k, v in state.items()}
        if mine != ref or list(mine) != list(ref):
            diff = set(mine.items()) ^ set(ref.items())
            raise SystemExit(f"FAIL {path}: names/shapes differ from torchvision: {sorted(diff)[:5]}")
        extra = " (= torchvision's own names and shapes)"
    else:
        extra = ""
    # The forward pass runs: the stem and widths are consistent.
    with torch.no_grad():
        size = 32 if opts["cifar_stem"] else 64
        out = model(torch.zeros(2, opts["in_channels"], size, size))
    expansion = 4 if opts["arch"] == "resnet50" else 1
    assert out.shape == (2, 8 * opts["width"] * expansion), out.shape
    print(f"ok {os.path.basename(path)}: {len(state)} tensors, "
          f"{sum(v.numel() for v in state.values())} values by name{extra}")
    return opts


def check_compare(src, opts):
    """sslc_torch.py compare accepts features equal to torch's and refuses others."""
    with tempfile.TemporaryDirectory() as d:
        # The pattern has negative running variances; make a copy whose
        # forward pass is finite.
        path = os.path.join(d, "sane.h5")
        with h5py.File(src, "r") as f, h5py.File(path, "w") as g:
            for k, v in f.attrs.items():
                g.attrs[k] = v
            f.copy("model", g)
            f.copy("encoder", g)
            for name, ds in g["encoder"].items():
                if name.endswith("running_var"):
                    ds[...] = np.abs(ds[...]) + 0.5
                elif ds.ndim == 4:
                    ds[...] = ds[...] / np.sqrt(np.prod(ds.shape[1:]))
        model = sslc_torch.load_encoder(path)
        gen = torch.Generator().manual_seed(0)
        size = 32 if opts["cifar_stem"] else 64
        images = torch.randn(3, opts["in_channels"], size, size, generator=gen)
        with torch.no_grad():
            feats = model(images).numpy()
        assert np.isfinite(feats).all()
        for perturb, want_rc in ((0.0, 0), (1e-2, 1)):
            ref = os.path.join(d, "ref.h5")
            with h5py.File(ref, "w") as f:
                f["images"] = images.numpy()
                f["features"] = feats + np.float32(perturb) * (np.abs(feats) + 1)
            rc = subprocess.run([sys.executable, os.path.join(SCRIPTS, "sslc_torch.py"), "compare", path, ref],
                                stdout=subprocess.PIPE, text=True)
            print(rc.stdout.strip())
            if rc.returncode != want_rc:
                raise SystemExit(f"FAIL compare with perturbation {perturb}: exit {rc.returncode}, want {want_rc}")

        # `features` on image files: the same numbers as the model on the
        # normalised pixels.
        from PIL import Image
        pixels = np.random.default_rng(1).integers(0, 256, (size, size, 3), dtype=np.uint8)
        png = os.path.join(d, "img.png")
        mode = "L" if opts["in_channels"] == 1 else "RGB"
        Image.fromarray(pixels).convert(mode).save(png)
        rc = subprocess.run([sys.executable, os.path.join(SCRIPTS, "sslc_torch.py"), "features", path, png,
                             "--mean", ",".join(["0.5"] * opts["in_channels"]),
                             "--std", ",".join(["0.25"] * opts["in_channels"])],
                            stdout=subprocess.PIPE, text=True, check=True)
        printed = np.array([float(v) for v in rc.stdout.split()[1:]], dtype=np.float32)
        x = np.asarray(Image.open(png).convert(mode), dtype=np.float32) / 255.0
        x = torch.from_numpy(x)[None, None] if mode == "L" else torch.from_numpy(x).permute(2, 0, 1)[None]
        with torch.no_grad():
            want = model((x - 0.5) / 0.25)[0].numpy()
        if printed.shape != want.shape or np.abs(printed - want).max() > 1e-5 * (1 + np.abs(want).max()):
            raise SystemExit(f"FAIL features: printed {printed[:4]} vs model {want[:4]}")
        print(f"features of {os.path.basename(png)}: {printed.size} values, match the model")
        rc = subprocess.run([sys.executable, os.path.join(SCRIPTS, "sslc_torch.py"), "info", path],
                            stdout=subprocess.PIPE, text=True, check=True)
        print(rc.stdout.strip())


def main():
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, h5py {h5py.__version__}")
    last = None
    for path in sys.argv[1:]:
        last = (path, check_file(path))
    if last:
        check_compare(*last)
    # A wrong shape is refused with the tensor named.
    if len(sys.argv) > 1:
        path = sys.argv[1]
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "bad.h5")
            with h5py.File(path, "r") as src, h5py.File(bad, "w") as dst:
                for k, v in src.attrs.items():
                    dst.attrs[k] = v
                src.copy("model", dst)
                src.copy("encoder", dst)
                dst["model"].attrs["width"] = int(src["model"].attrs["width"]) * 2
            try:
                sslc_torch.load_encoder(bad)
                raise SystemExit("FAIL: a checkpoint with the wrong width loaded")
            except sslc_torch.CheckpointError as e:
                print(f"refused as expected: {e}")
                assert "conv1.weight" in str(e)
    print("all ok")


if __name__ == "__main__":
    main()
