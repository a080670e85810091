#!/usr/bin/python3
"""A full contrastive training step, sslc against PyTorch, in one run.

SimCLR: ResNet-18 (CIFAR stem) on 3x32x32 views, projection head
512-2048-128 (Linear-BN-ReLU-Linear), NT-Xent (tau 0.5) over 256 pairs (512
images), SGD with momentum. MoCo v2: the same encoder, head 512-512-128,
InfoNCE (tau 0.2) against a queue of K=4096 keys, momentum encoder m=0.99,
shuffle-BN in 8 groups. Both on 2 threads.

sslc is timed twice through `sslc pretrain` on a folder of generated 32x32
PNGs: with its augmentation pipeline feeding every step (augmentation
included) and on one fixed batch (--fixed-batch: excluded). PyTorch runs the
same step in its best configuration (BENCHMARKING.md) on a fixed batch
(augmentation excluded). Prints medians of pairs/s and the ratios.

  /usr/bin/python3 scripts/bench_step.py [--method simclr|moco] [--steps 6]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BEST_ENV = {"ATEN_CPU_CAPABILITY": "avx512", "MALLOC_MMAP_MAX_": "0",
            "MALLOC_TRIM_THRESHOLD_": "100000000000"}


def make_images(folder, n):
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        base = rng.random((4, 4, 3))
        img = np.kron(base, np.ones((8, 8, 1))) * 200 + rng.random((32, 32, 3)) * 55
        Image.fromarray(img.astype(np.uint8)).save(os.path.join(folder, f"{i:05d}.png"))


def torch_worker(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision
    torch.set_num_threads(args.threads)
    block = torchvision.models.resnet.BasicBlock

    def encoder():
        net = torchvision.models.resnet.ResNet(block, [2, 2, 2, 2])
        net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        return net

    B = args.batch
    moco = args.method == "moco"
    q_enc = encoder()
    head = (nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128)) if moco else
            nn.Sequential(nn.Linear(512, 2048, bias=False), nn.BatchNorm1d(2048), nn.ReLU(),
                          nn.Linear(2048, 128)))
    model = nn.Sequential(q_enc, head).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.06, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(2 * B, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    if moco:
        import copy
        k_model = copy.deepcopy(model)
        for p in k_model.parameters():
            p.requires_grad = False
        queue = F.normalize(torch.randn(args.queue, 128), dim=1)
        ptr = 0
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if moco:
            with torch.no_grad():  # momentum update, then keys with shuffle-BN in 8 groups
                for pk, pq in zip(k_model.parameters(), model.parameters()):
                    pk.mul_(0.99).add_(pq.detach(), alpha=0.01)
                idx = torch.randperm(B)
                xk = x[B:][idx]
                k = torch.cat([k_model(g) for g in xk.chunk(8)])
                k = F.normalize(k[torch.argsort(idx)], dim=1)
            q = F.normalize(model(x[:B]), dim=1)
            logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.t()], dim=1) / 0.2
            loss = F.cross_entropy(logits, torch.zeros(B, dtype=torch.long))
        else:
            z = F.normalize(model(x), dim=1)
            sim = z @ z.t() / 0.5
            sim.fill_diagonal_(float("-inf"))
            target = torch.cat([torch.arange(B, 2 * B), torch.arange(0, B)])
            loss = F.cross_entropy(sim, target)
        loss.backward()
        opt.step()
        if moco:
            with torch.no_grad():
                queue[ptr:ptr + B] = k
                ptr = (ptr + B) % args.queue
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    import resource
    print(json.dumps({"step_s": statistics.median(times),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def sslc_run(args, folder, fixed):
    out = tempfile.mkdtemp(prefix="sslc-bench-")
    moco = args.method == "moco"
    head = "linear:512,relu,linear:128" if moco else "linear-nobias:2048,bn,relu,linear:128"
    cmd = [args.sslc, "pretrain", "--method", args.method, "--data", f"folder:{folder}",
           "--size", "32", "--width", "64", "--batch", str(args.batch), "--head", head,
           "--optimizer", "sgd", "--lr", "0.06", "--lr-scaling", "none", "--weight-decay", "5e-4",
           "--max-steps", str(args.warmup + args.steps), "--epochs", "100", "--log-every", "1",
           "--knn-bank", "none", "--threads", str(args.threads), "--out", out,
           "--queue", str(args.queue), "--moco-m", "0.99", "--shuffle-groups", "8"]
    if fixed:
        cmd.append("--fixed-batch")
    t = time.perf_counter()
    log = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(args.threads)))
    if log.returncode:
        sys.exit(f"sslc failed:\n{log.stderr[-2000:]}")
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f if '"loss"' in line]
    rss = [float(w) for w in log.stdout.split("peak RSS ")[1].split()[:1]][0]
    # pairs/s of each logged window (one step each), after warm-up
    steps = [args.batch / r["pairs_per_s"] for r in rows[args.warmup:]]
    return {"step_s": statistics.median(steps), "peak_rss_mib": rss}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=["simclr", "moco"], default="simclr")
    p.add_argument("--batch", type=int, default=256, help="pairs per step")
    p.add_argument("--queue", type=int, default=4096)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sslc", default=os.path.join(HERE, "..", "build", "src", "cli", "sslc"))
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    folder = os.path.join(tempfile.gettempdir(), "sslc-bench-32px")
    if not os.path.isdir(folder) or len(os.listdir(folder)) < 4 * args.batch:
        make_images(folder, 4 * args.batch)
    torch_cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", "--method", args.method,
                 "--batch", str(args.batch), "--queue", str(args.queue), "--steps", str(args.steps),
                 "--warmup", str(args.warmup), "--threads", str(args.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), **BEST_ENV)
    inc, exc, tor = [], [], []
    for r in range(args.rounds):
        inc.append(sslc_run(args, folder, fixed=False))
        exc.append(sslc_run(args, folder, fixed=True))
        tor.append(json.loads(subprocess.check_output(torch_cmd, env=env)))
        print(f"round {r + 1}: sslc {inc[-1]['step_s']:.3f} s (augmentation included), "
              f"{exc[-1]['step_s']:.3f} s (excluded) | PyTorch {tor[-1]['step_s']:.3f} s (excluded)", flush=True)
    med = lambda runs: statistics.median(x["step_s"] for x in runs)
    B = args.batch
    t = med(tor)
    print(f"\n{args.method} step, ResNet-18 CIFAR stem, 3x32x32, {B} pairs, {args.threads} threads, "
          f"medians of {args.rounds}x{args.steps} steps")
    print(f"{'':40}{'pairs/s':>9}{'vs PyTorch':>12}{'peak RSS MiB':>14}")
    for name, runs in [("sslc, augmentation included", inc), ("sslc, augmentation excluded", exc),
                       ("PyTorch best, augmentation excluded", tor)]:
        s = med(runs)
        print(f"{name:40}{B / s:9.1f}{t / s:12.2f}{max(x['peak_rss_mib'] for x in runs):14.0f}")


if __name__ == "__main__":
    main()
