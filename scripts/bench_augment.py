#!/usr/bin/python3
"""Augmentation throughput: sslc's pipeline vs torchvision's, same recipe,
same images, same 2 cores, in one run (see ../shared/BENCHMARKING.md).

Two workloads:
  small  SimCLR CIFAR recipe (crop 32, flip, jitter s=0.5 p 0.8, grayscale
         0.2, no blur) on 32x32 RGB images held in memory (torchvision: a
         uint8 array -> PIL, as torchvision.datasets.CIFAR10; sslc: the
         same array as an uncompressed IDX file).
  large  SimCLR ImageNet recipe at 224 (crop, flip, jitter s=1 p 0.8,
         grayscale 0.2, blur kernel 23 p 0.5) from ~500x375 JPEGs decoded
         every time (torchvision: PIL loader as ImageFolder; sslc: folder:).
torchvision: DataLoader(num_workers=2, persistent, batch B, two views per
image), in a child process with PyTorch's best environment for this CPU
(scripts/bench_common.py: ATen's widest kernels, no malloc trimming; its
BLAS settings do not matter here, augmentation calls no GEMM); sslc: the
sslc_bench_augment driver (built with -Dtests=enabled), 2 OpenMP workers,
views made synchronously so only production is timed. Median batch time
after warm-up -> views/s. Peak RSS: sslc's process; torch's main process
and the largest worker. The report starts with the header of
scripts/bench_common.py.

  flock /tmp/sslc-cpu.lock /usr/bin/python3 scripts/bench_augment.py
  # a smoke test (fewer images and batches, figures meaningless):
  flock /tmp/sslc-cpu.lock nice -n 10 /usr/bin/python3 scripts/bench_augment.py --quick
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

import bench_common as bc

BENCH = os.environ.get("SSLC_BENCH_EXE", os.path.join(bc.ROOT, "build", "tests", "augment",
                                                       "sslc_bench_augment"))


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
    if not os.access(BENCH, os.X_OK):
        sys.exit(f"no {BENCH}: build with -Dtests=enabled (or set SSLC_BENCH_EXE)")
    out = subprocess.run([BENCH] + [str(a) for a in args], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="2", OMP_PROC_BIND="false"))
    if out.returncode != 0:
        raise SystemExit("sslc bench failed: " + out.stderr)
    return dict(kv.split("=") for kv in out.stdout.split())


# ---- torchvision: runs in a child with the rival's environment ---------------------

class Pairs:
    """Two independent views of each image, as SimCLR's data loaders."""

    def __init__(self, load, n, transform):
        self.load, self.n, self.t = load, n, transform

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        img = self.load(i)
        return self.t(img), self.t(img)


def torch_worker(args):
    """Times torchvision on the workload `args.torch_worker` over `args.data`
    (an .npy array or a JPEG folder); prints JSON: views/s and peak RSS of
    this process and of its largest DataLoader worker."""
    import torch
    import torchvision.transforms as T
    from PIL import Image
    torch.set_num_threads(1)  # workers do the work; each is one process
    norm = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    if args.torch_worker == "small":
        arr = np.load(args.data)
        s = 0.5
        t = T.Compose([T.RandomResizedCrop(32), T.RandomHorizontalFlip(),
                       T.RandomApply([T.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=0.8),
                       T.RandomGrayscale(p=0.2), T.ToTensor(), norm])
        dataset = Pairs(lambda i: Image.fromarray(arr[i]), len(arr), t)
    else:
        files = sorted(os.listdir(args.data))

        def pil_load(i):
            with open(os.path.join(args.data, files[i]), "rb") as f:
                return Image.open(f).convert("RGB")

        t = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(),
                       T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
                       T.RandomGrayscale(p=0.2),
                       T.RandomApply([T.GaussianBlur(23, sigma=(0.1, 2.0))], p=0.5),
                       T.ToTensor(), norm])
        dataset = Pairs(pil_load, len(files), t)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True, num_workers=2,
                                         persistent_workers=True, prefetch_factor=4,
                                         drop_last=True)
    times = []
    it = iter(loader)
    n = 0
    t0 = time.perf_counter()
    while n < args.warmup + args.timed:
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
            continue
        t1 = time.perf_counter()
        if n >= args.warmup:
            times.append(t1 - t0)
        t0 = t1
        n += 1
    del it, loader  # the workers end, so RUSAGE_CHILDREN covers them
    print(json.dumps({"views_per_s": 2 * args.batch / float(np.median(times)),
                      "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def torch_run(workload, data, batch, warmup, timed, env):
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", workload, "--data", data,
           "--batch", str(batch), "--warmup", str(warmup), "--timed", str(timed)]
    return bc.run_json(cmd, env=env)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer images and batches (a smoke test)")
    p.add_argument("--sslc", default=bc.SSLC, help="the sslc binary (for the header's oneDNN ISA)")
    p.add_argument("--torch-worker", choices=["small", "large"], help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    p.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    p.add_argument("--timed", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    env = bc.rival_env(2)
    bc.print_header(args.sslc, 2, env)
    rng = np.random.default_rng(0)
    tmp = tempfile.mkdtemp(prefix="sslc-bench-aug-")
    results = []

    # ---- small: 32x32 SimCLR (CIFAR setup)
    n_small = 5120
    arr = np.stack([synth_image(rng, 32, 32) for _ in range(n_small)])
    idx, npy = os.path.join(tmp, "small.idx"), os.path.join(tmp, "small.npy")
    write_idx(idx, arr)
    np.save(npy, arr)
    B = 256
    warm, timed = (2, 5) if args.quick else (4, 12)
    tv = torch_run("small", npy, B, warm, timed, env)
    sl = run_sslc([f"idx:{idx}", "simclr", 32, B, 2, warm, timed])
    results.append(("SimCLR 32x32 (in memory), batch %d pairs" % B, tv, sl, None))

    # ---- large: 224 from ~500x375 JPEGs
    from PIL import Image
    n_large = 96 if args.quick else 320
    jdir = os.path.join(tmp, "jpegs")
    os.makedirs(jdir)
    for i in range(n_large):
        h, w = (375, 500) if i % 4 else (500, 375)
        h += int(rng.integers(-20, 20))
        w += int(rng.integers(-20, 20))
        Image.fromarray(synth_image(rng, h, w)).save(os.path.join(jdir, f"{i:05d}.jpg"),
                                                     quality=90)
    B = 32
    warm, timed = (1, 3) if args.quick else (2, 12)
    tv2 = torch_run("large", jdir, B, warm, timed, env)
    warm_s, timed_s = (2, 5) if args.quick else (3, 16)
    sl2 = run_sslc([f"folder:{jdir}", "simclr", 224, B, 2, warm_s, timed_s])
    sl3 = run_sslc([f"folder:{jdir}", "simclr", 224, B, 2, warm_s, timed_s, "scaled"])
    cache = os.path.join(tmp, "cache.bin")
    # The cache fills during the first epoch; time later epochs.
    steps = n_large // B
    sl4 = run_sslc([f"folder:{jdir}", "simclr", 224, B, 2, steps + 1, timed_s, f"cache={cache}"])
    results.append(("SimCLR 224 from ~500x375 JPEG, blur 23, batch %d pairs" % B, tv2, sl2,
                    {"scaled": sl3, "cache": sl4}))

    print("## Augmentation throughput (views/s, median batch, 2 cores)\n")
    print("| workload | torchvision 0.14 | sslc | ratio | sslc peak RSS |")
    print("|---|---|---|---|---|")
    for name, tvv, s_, extra in results:
        v, t = float(s_["views_per_s"]), tvv["views_per_s"]
        print(f"| {name} | {t:,.0f} | {v:,.0f} | {v / t:.1f}x | {float(s_['peak_rss_mb']):.0f} MB |")
        for k, e in (extra or {}).items():
            ve = float(e["views_per_s"])
            print(f"| ... sslc with {k} | | {ve:,.0f} | {ve / t:.1f}x | {float(e['peak_rss_mb']):.0f} MB |")
    print("\ntorch peak RSS (main process, largest DataLoader worker): " +
          ", ".join(f"{name.split(',')[0]} {r['rss_main_mb']:.0f} / {r['rss_worker_mb']:.0f} MB"
                    for name, r, _, _ in results))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
