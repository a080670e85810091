#!/usr/bin/python3
"""Augmentation throughput: sslc's pipeline vs torchvision's, same recipe,
same images, same 2 cores, in one run (see /work/shared/BENCHMARKING.md).

Two workloads from the issue:
  small  SimCLR CIFAR recipe (crop 32, flip, jitter s=0.5 p 0.8, grayscale
         0.2, no blur) on 32x32 RGB images held in memory (torchvision: a
         uint8 array -> PIL, as torchvision.datasets.CIFAR10; sslc: the
         same array as an uncompressed IDX file).
  large  SimCLR ImageNet recipe at 224 (crop, flip, jitter s=1 p 0.8,
         grayscale 0.2, blur kernel 23 p 0.5) from ~500x375 JPEGs decoded
         every time (torchvision: PIL loader as ImageFolder; sslc: folder:).
torchvision: DataLoader(num_workers=2, persistent, batch B, two views per
image); sslc: 2 OpenMP workers, views made synchronously so only
production is timed. Median batch time after warm-up -> views/s.
Peak RSS: sslc's process; torch's main process and the largest worker.

Run: flock /tmp/sslc-cpu.lock /usr/bin/python3 scripts/bench_augment.py [--quick]
"""
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BENCH = os.environ.get("SSLC_BENCH_EXE", os.path.join(ROOT, "build", "tests", "augment",
                                                       "sslc_bench_augment"))
QUICK = "--quick" in sys.argv


def synth_image(rng, h, w):
    """A natural-looking image: smooth low-frequency colour field, a few
    filled shapes, mild noise (JPEG-compressible like photos)."""
    from PIL import Image, ImageDraw
    small = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.BICUBIC)
    d = ImageDraw.Draw(img)
    for _ in range(rng.integers(3, 9)):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        x1, y1 = x0 + rng.integers(10, w // 2), y0 + rng.integers(10, h // 2)
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        (d.ellipse if rng.uniform() < 0.5 else d.rectangle)([x0, y0, x1, y1], fill=col)
    a = np.asarray(img).astype(np.int16) + rng.normal(0, 6, (h, w, 3)).astype(np.int16)
    return np.clip(a, 0, 255).astype(np.uint8)


def write_idx(path, arr):
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, arr.ndim]))
        for d in arr.shape:
            f.write(int(d).to_bytes(4, "big"))
        f.write(arr.tobytes())


def run_sslc(args):
    out = subprocess.run([BENCH] + [str(a) for a in args], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="2", OMP_PROC_BIND="false"))
    if out.returncode != 0:
        raise SystemExit("sslc bench failed: " + out.stderr)
    return dict(kv.split("=") for kv in out.stdout.split())


def torch_bench(dataset, batch, warmup, timed):
    import torch
    torch.set_num_threads(1)  # workers do the work; each is one process
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=2,
                                         persistent_workers=True, prefetch_factor=4,
                                         drop_last=True)
    times = []
    it = iter(loader)
    n = 0
    t0 = time.perf_counter()
    while n < warmup + timed:
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
            continue
        t1 = time.perf_counter()
        if n >= warmup:
            times.append(t1 - t0)
        t0 = t1
        n += 1
    del it, loader
    med = float(np.median(times))
    return 2 * batch / med, med


class Pairs:
    """Two independent views of each image, as SimCLR's data loaders."""

    def __init__(self, load, n, transform):
        self.load, self.n, self.t = load, n, transform

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        img = self.load(i)
        return self.t(img), self.t(img)


def rss_mb():
    """Peak RSS of this process, and the largest child (the DataLoader
    workers; measured before any sslc run, which are children too)."""
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return me, kids


def main():
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx512")
    import torch
    import torchvision.transforms as T
    from PIL import Image
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    tmp = tempfile.mkdtemp(prefix="sslc-bench-aug-")
    results = []

    # ---- small: 32x32 SimCLR (CIFAR setup)
    n_small = 5120
    arr = np.stack([synth_image(rng, 32, 32) for _ in range(n_small)])
    idx = os.path.join(tmp, "small.idx")
    write_idx(idx, arr)
    B = 256
    warm, timed = (2, 5) if QUICK else (4, 12)
    s = 0.5
    small_t = T.Compose([
        T.RandomResizedCrop(32), T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
        T.RandomGrayscale(p=0.2), T.ToTensor(),
        T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    tv, tv_med = torch_bench(Pairs(lambda i: Image.fromarray(arr[i]), n_small, small_t), B,
                             warm, timed)
    sl = run_sslc([f"idx:{idx}", "simclr", 32, B, 2, warm, timed])
    results.append(("SimCLR 32x32 (in memory), batch %d pairs" % B, tv, sl, None))

    # ---- large: 224 from ~500x375 JPEGs
    n_large = 96 if QUICK else 320
    jdir = os.path.join(tmp, "jpegs")
    os.makedirs(jdir)
    for i in range(n_large):
        h, w = (375, 500) if i % 4 else (500, 375)
        h += int(rng.integers(-20, 20))
        w += int(rng.integers(-20, 20))
        Image.fromarray(synth_image(rng, h, w)).save(os.path.join(jdir, f"{i:05d}.jpg"),
                                                     quality=90)
    files = sorted(os.listdir(jdir))
    B = 32
    warm, timed = (1, 3) if QUICK else (2, 12)

    def pil_load(i):
        with open(os.path.join(jdir, files[i]), "rb") as f:
            return Image.open(f).convert("RGB")

    large_t = T.Compose([
        T.RandomResizedCrop(224), T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(23, sigma=(0.1, 2.0))], p=0.5),
        T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    tv2, _ = torch_bench(Pairs(pil_load, len(files), large_t), B, warm, timed)
    me, kids = rss_mb()
    warm_s, timed_s = (2, 5) if QUICK else (3, 16)
    sl2 = run_sslc([f"folder:{jdir}", "simclr", 224, B, 2, warm_s, timed_s])
    sl3 = run_sslc([f"folder:{jdir}", "simclr", 224, B, 2, warm_s, timed_s, "scaled"])
    cache = os.path.join(tmp, "cache.bin")
    # The cache fills during the first epoch; time later epochs.
    steps = len(files) // B
    sl4 = run_sslc([f"folder:{jdir}", "simclr", 224, B, 2, steps + 1, timed_s, f"cache={cache}"])
    results.append(("SimCLR 224 from ~500x375 JPEG, blur 23, batch %d pairs" % B, tv2, sl2,
                    {"scaled": sl3, "cache": sl4}))

    print("\n## Augmentation throughput (views/s, median batch, 2 cores)\n")
    print("| workload | torchvision 0.14 | sslc | ratio | sslc peak RSS |")
    print("|---|---|---|---|---|")
    for name, tvv, s_, extra in results:
        v = float(s_["views_per_s"])
        print(f"| {name} | {tvv:,.0f} | {v:,.0f} | {v / tvv:.1f}x | {float(s_['peak_rss_mb']):.0f} MB |")
        for k, e in (extra or {}).items():
            ve = float(e["views_per_s"])
            print(f"| ... sslc with {k} | | {ve:,.0f} | {ve / tvv:.1f}x | {float(e['peak_rss_mb']):.0f} MB |")
    print(f"\ntorch peak RSS: main process {me:.0f} MB, largest DataLoader worker {kids:.0f} MB")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
