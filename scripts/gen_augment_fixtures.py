#!/usr/bin/python3
"""Reference outputs of torchvision 0.14 augmentation ops (PIL path) and of
PIL's decoders, for tests/augment and tests/data.

Every op is called on fixed, explicit parameters (no torch RNG), so the C
ops can be compared pixel for pixel. Writes:
  tests/fixtures/augment_ops.h5    inputs, parameters and outputs (float32)
  tests/fixtures/decode/*.png|jpg  small images in awkward formats
  tests/fixtures/decode_ref.h5     PIL's decoding of each, as float32 HWC
Run: /usr/bin/python3 scripts/gen_augment_fixtures.py
"""
import io
import os

import h5py
import numpy as np
import torch
from PIL import Image
import torchvision.transforms.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIX = os.path.join(ROOT, "tests", "fixtures")


def smooth_image(rng, h, w, c):
    """Natural-looking test image: smooth gradients, a few hard edges,
    some saturated pixels, so rounding and clipping paths are exercised."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, c))
    for ch in range(c):
        a, b, p = rng.uniform(0.05, 0.4, 3)
        img[..., ch] = 128 + 100 * np.sin(a * x + b * y + p * 6) + rng.normal(0, 12, (h, w))
    # a rectangle with a flat colour and a saturated corner
    img[h // 4: h // 2, w // 3: w // 2] = rng.uniform(0, 255, c)
    img[:3, :3] = 255
    img[-2:, -3:] = 0
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def pil(a):
    return Image.fromarray(a if a.shape[2] == 3 else a[..., 0], "RGB" if a.shape[2] == 3 else "L")


def arr(im):
    a = np.asarray(im)
    return a[..., None] if a.ndim == 2 else a


def put(f, name, a):
    # Pixels are stored as uint8 (HDF5 converts to float on read), the rest
    # as float32.
    a = np.asarray(a)
    dtype = np.uint8 if a.dtype == np.uint8 else np.float32
    f.create_dataset(name, data=a.astype(dtype))


def ops_fixture():
    rng = np.random.default_rng(1234)
    rgb = smooth_image(rng, 29, 41, 3)
    gray = smooth_image(rng, 28, 28, 1)
    with h5py.File(os.path.join(FIX, "augment_ops.h5"), "w", libver="latest") as f:
        for tag, src in (("rgb", rgb), ("gray", gray)):
            put(f, f"{tag}/input", src)
            im = pil(src)
            H, W = src.shape[:2]
            # resized crop: (top, left, h, w, out_h, out_w): shrink, grow, both, identity
            crops = [(3, 5, 20, 22, 16, 16), (0, 0, H, W, 16, 16), (7, 2, 10, 9, 32, 24),
                     (1, 1, 25, 13, 20, 20), (0, 0, H, W, H, W), (2, 3, 17, 11, 8, 5)]
            for k, (t, l, h, w, oh, ow) in enumerate(crops):
                out = F.resized_crop(im, t, l, h, w, [oh, ow], F.InterpolationMode.BILINEAR)
                put(f, f"{tag}/crop{k}/params", [t, l, h, w, oh, ow])
                put(f, f"{tag}/crop{k}/output", arr(out))
            put(f, f"{tag}/hflip", arr(F.hflip(im)))
            for k, v in enumerate([0.0, 0.37, 1.0, 1.29, 1.8]):
                put(f, f"{tag}/brightness{k}/factor", [v])
                put(f, f"{tag}/brightness{k}/output", arr(F.adjust_brightness(im, v)))
                put(f, f"{tag}/contrast{k}/factor", [v])
                put(f, f"{tag}/contrast{k}/output", arr(F.adjust_contrast(im, v)))
                put(f, f"{tag}/saturation{k}/factor", [v])
                put(f, f"{tag}/saturation{k}/output", arr(F.adjust_saturation(im, v)))
            for k, v in enumerate([-0.5, -0.37, -0.1, 0.0, 0.05, 0.23, 0.5]):
                put(f, f"{tag}/hue{k}/factor", [v])
                put(f, f"{tag}/hue{k}/output", arr(F.adjust_hue(im, v)))
            nc = src.shape[2]
            put(f, f"{tag}/grayscale", arr(F.rgb_to_grayscale(im, num_output_channels=nc)))
            for k, (ks, sg) in enumerate([(3, 0.1), (3, 1.7), (5, 0.8), (9, 2.0), (7, 1.234)]):
                put(f, f"{tag}/blur{k}/params", [ks, sg])
                put(f, f"{tag}/blur{k}/output", arr(F.gaussian_blur(im, [ks, ks], [sg, sg])))
            for k, th in enumerate([0, 128, 200]):
                put(f, f"{tag}/solarize{k}/threshold", [th])
                put(f, f"{tag}/solarize{k}/output", arr(F.solarize(im, th)))
            mean = [0.485, 0.456, 0.406][:nc] if nc == 3 else [0.2860]
            std = [0.229, 0.224, 0.225][:nc] if nc == 3 else [0.3530]
            t = F.normalize(F.to_tensor(im), mean, std)
            put(f, f"{tag}/normalize/mean", mean)
            put(f, f"{tag}/normalize/std", std)
            put(f, f"{tag}/normalize/output", t.permute(1, 2, 0).numpy())
            # A whole view with explicit draws, in SimCLR's order:
            # crop -> flip -> jitter (order b, h, c, s chosen) -> grayscale -> blur.
            t_, l_, h_, w_ = 2, 4, 22, 23
            v = F.resized_crop(im, t_, l_, h_, w_, [24, 24], F.InterpolationMode.BILINEAR)
            v = F.hflip(v)
            v = F.adjust_brightness(v, 1.3)
            v = F.adjust_hue(v, -0.08)
            v = F.adjust_contrast(v, 0.7)
            v = F.adjust_saturation(v, 1.5)
            v = F.gaussian_blur(v, [3, 3], [0.9, 0.9])
            put(f, f"{tag}/chain/output", arr(v))
            # The same with grayscale instead of blur.
            w2 = F.rgb_to_grayscale(F.adjust_contrast(F.hflip(F.resized_crop(
                im, t_, l_, h_, w_, [24, 24], F.InterpolationMode.BILINEAR)), 1.4),
                num_output_channels=nc)
            put(f, f"{tag}/chain_gray/output", arr(w2))


def hue_noise_fixture():
    """Hue on uniformly random colours: every branch of Pillow's HSV code."""
    rng = np.random.default_rng(77)
    src = rng.integers(0, 256, (48, 64, 3)).astype(np.uint8)
    src[0, :16] = [[v, v, v] for v in range(0, 256, 16)]  # grays: s == 0
    with h5py.File(os.path.join(FIX, "augment_ops.h5"), "a") as f:
        put(f, "noise/input", src)
        for k, v in enumerate([-0.45, -0.2, 0.013, 0.31, 0.5]):
            put(f, f"noise/hue{k}/factor", [v])
            put(f, f"noise/hue{k}/output", arr(F.adjust_hue(pil(src), v)))


def decode_fixture():
    """Small images in each awkward format, and PIL's RGB / L decoding."""
    rng = np.random.default_rng(99)
    base = smooth_image(rng, 19, 23, 3)
    d = os.path.join(FIX, "decode")
    os.makedirs(d, exist_ok=True)
    files = {}
    im = Image.fromarray(base, "RGB")
    im.save(os.path.join(d, "rgb.png"))
    files["rgb.png"] = im
    pal = im.quantize(colors=37)
    pal.save(os.path.join(d, "palette.png"))
    files["palette.png"] = pal
    la = Image.merge("LA", (im.convert("L"), Image.fromarray(base[..., 0])))
    la.save(os.path.join(d, "gray_alpha.png"))
    files["gray_alpha.png"] = la
    rgba = Image.merge("RGBA", (*im.split(), Image.fromarray(base[..., 1])))
    rgba.save(os.path.join(d, "rgba_interlaced.png"), interlace=1)
    files["rgba_interlaced.png"] = rgba
    # 16-bit RGB PNG: PIL cannot write it, so build it with zlib by hand.
    import struct, zlib
    hi = base.astype(np.uint16) * 257 + rng.integers(0, 200, base.shape).astype(np.uint16)
    raw = b"".join(b"\x00" + hi[y].astype(">u2").tobytes() for y in range(hi.shape[0]))
    def chunk(t, data):
        c = struct.pack(">I", len(data)) + t + data
        return c + struct.pack(">I", zlib.crc32(t + data) & 0xffffffff)
    png16 = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 23, 19, 16, 2, 0, 0, 0))
             + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    open(os.path.join(d, "rgb16.png"), "wb").write(png16)
    files["rgb16.png"] = Image.open(io.BytesIO(png16))
    im.save(os.path.join(d, "baseline.jpg"), quality=90)
    im.save(os.path.join(d, "progressive.jpg"), quality=85, progressive=True)
    im.convert("L").save(os.path.join(d, "gray.jpg"), quality=90)
    im.convert("CMYK").save(os.path.join(d, "cmyk.jpg"), quality=95)
    for n in ("baseline.jpg", "progressive.jpg", "gray.jpg", "cmyk.jpg"):
        files[n] = Image.open(os.path.join(d, n))
    with h5py.File(os.path.join(FIX, "decode_ref.h5"), "w", libver="latest") as f:
        for n, img in files.items():
            put(f, n + "/rgb", arr(img.convert("RGB")))
            put(f, n + "/gray", arr(img.convert("L")))
    # A larger JPEG for DCT-scaled decoding (1/2, 1/4 sizes from libjpeg via PIL draft).
    big = smooth_image(np.random.default_rng(5), 96, 128, 3)
    Image.fromarray(big).save(os.path.join(d, "big.jpg"), quality=90)
    with h5py.File(os.path.join(FIX, "decode_ref.h5"), "a") as f:
        for scale in (1, 2, 4, 8):
            j = Image.open(os.path.join(d, "big.jpg"))
            j.draft("RGB", (128 // scale, 96 // scale))
            put(f, f"big.jpg/scale{scale}", arr(j.convert("RGB")))


if __name__ == "__main__":
    torch.manual_seed(0)
    ops_fixture()
    hue_noise_fixture()
    decode_fixture()
    for n in ("augment_ops.h5", "decode_ref.h5"):
        print(n, os.path.getsize(os.path.join(FIX, n)), "bytes")
