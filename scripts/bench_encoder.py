#!/usr/bin/python3
"""Encoder speed, sslc against PyTorch on the same work, in one run.

Times a training step (forward + backward through the encoder, batch
statistics) and an eval-mode forward of torchvision's ResNet (CIFAR stem by
default) at the given batch, alternating sslc and PyTorch rounds so both see
the same machine load, and prints medians, images/s and the sslc/PyTorch
ratio. PyTorch runs in its best configuration on this machine (see
shared BENCHMARKING.md): 2 threads, AVX-512 kernels, no malloc trimming,
channels_last for training, NCHW for the eval forward.

  /usr/bin/python3 scripts/bench_encoder.py [--batch 512] [--rounds 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BEST_ENV = {"ATEN_CPU_CAPABILITY": "avx512", "MALLOC_MMAP_MAX_": "0",
            "MALLOC_TRIM_THRESHOLD_": "100000000000"}


def torch_worker(args):
    """Runs in a child with the best environment; prints JSON timings."""
    import torch
    import torch.nn as nn
    import torchvision
    torch.set_num_threads(args.threads)
    depth = {"resnet18": 18, "resnet34": 34, "resnet50": 50}[args.arch]
    net = getattr(torchvision.models, args.arch)()
    if args.width != 64 or args.cifar_stem or args.in_channels != 3:
        block = torchvision.models.resnet.BasicBlock if depth < 50 else torchvision.models.resnet.Bottleneck
        stages = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3]}[depth]
        w = args.width
        net.inplanes = w
        net.conv1 = (nn.Conv2d(args.in_channels, w, 3, 1, 1, bias=False) if args.cifar_stem
                     else nn.Conv2d(args.in_channels, w, 7, 2, 3, bias=False))
        net.bn1 = nn.BatchNorm2d(w)
        if args.cifar_stem:
            net.maxpool = nn.Identity()
        net.layer1 = net._make_layer(block, w, stages[0])
        net.layer2 = net._make_layer(block, 2 * w, stages[1], stride=2)
        net.layer3 = net._make_layer(block, 4 * w, stages[2], stride=2)
        net.layer4 = net._make_layer(block, 8 * w, stages[3], stride=2)
    net.fc = nn.Identity()
    x = torch.randn(args.batch, args.in_channels, args.size, args.size)
    train_t, eval_t = [], []
    net_cl = net.to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    net_cl.train()
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        net_cl.zero_grad(set_to_none=True)
        y = net_cl(x_cl)
        y.backward(torch.randn_like(y) * 1e-3)
        if i >= args.warmup:
            train_t.append(time.perf_counter() - t0)
    net_nchw = net.to(memory_format=torch.contiguous_format)
    net_nchw.eval()
    with torch.no_grad():
        for i in range(args.warmup + args.steps):
            t0 = time.perf_counter()
            net_nchw(x)
            if i >= args.warmup:
                eval_t.append(time.perf_counter() - t0)
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"train_step_s": statistics.median(train_t), "eval_s": statistics.median(eval_t),
                      "peak_rss_mib": rss}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--no-cifar-stem", dest="cifar_stem", action="store_false")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2, help="alternating sslc/PyTorch rounds")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sslc", default=os.path.join(HERE, "..", "build", "src", "cli", "sslc"))
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    common = ["--arch", args.arch, "--width", str(args.width), "--in-channels", str(args.in_channels),
              "--size", str(args.size), "--batch", str(args.batch), "--steps", str(args.steps),
              "--warmup", str(args.warmup), "--threads", str(args.threads)]
    sslc_cmd = [args.sslc, "bench", "--json"] + common + ([] if args.cifar_stem else ["--no-cifar-stem"])
    torch_cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker"] + common[:-2] + \
        ["--threads", str(args.threads)] + ([] if args.cifar_stem else ["--no-cifar-stem"])
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    s_runs, t_runs = [], []
    for r in range(args.rounds):
        s_runs.append(json.loads(subprocess.check_output(sslc_cmd, env=env)))
        t_runs.append(json.loads(subprocess.check_output(torch_cmd, env=dict(env, **BEST_ENV))))
        print(f"round {r + 1}: sslc train {s_runs[-1]['train_step_s']:.3f} s eval {s_runs[-1]['eval_s']:.3f} s | "
              f"torch train {t_runs[-1]['train_step_s']:.3f} s eval {t_runs[-1]['eval_s']:.3f} s", flush=True)
    med = lambda runs, k: statistics.median(x[k] for x in runs)
    b = args.batch
    st, se = med(s_runs, "train_step_s"), med(s_runs, "eval_s")
    tt, te = med(t_runs, "train_step_s"), med(t_runs, "eval_s")
    stem = "CIFAR stem" if args.cifar_stem else "ImageNet stem"
    print(f"\n{args.arch} width {args.width} ({stem}), {args.in_channels}x{args.size}x{args.size}, batch {b}, "
          f"{args.threads} threads, medians of {args.rounds}x{args.steps} steps")
    print(f"{'':24}{'sslc':>12}{'PyTorch':>12}{'ratio':>8}")
    print(f"{'train fwd+bwd images/s':24}{b / st:12.1f}{b / tt:12.1f}{tt / st:8.2f}")
    print(f"{'eval forward images/s':24}{b / se:12.1f}{b / te:12.1f}{te / se:8.2f}")
    print(f"{'train GFLOP/s':24}{s_runs[0]['train_gflops'] * s_runs[0]['train_step_s'] / st:12.0f}")
    print(f"{'peak RSS MiB':24}{max(x['peak_rss_mib'] for x in s_runs):12.0f}"
          f"{max(x['peak_rss_mib'] for x in t_runs):12.0f}")


if __name__ == "__main__":
    main()
