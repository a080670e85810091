#!/usr/bin/python3
"""Encoder speed, sslc against PyTorch on the same work, in one run.

Times a training step (forward + backward through the encoder, batch
statistics) and an eval-mode forward of torchvision's ResNet (CIFAR stem by
default) on random images at the given batch. Each round (--rounds,
default 3) runs `sslc bench --json` and then PyTorch in its best
configuration (scripts/bench_common.py, ../shared/BENCHMARKING.md: OpenBLAS
with the best kernel for this CPU, ATen's widest kernels, no malloc
trimming, channels_last for training, NCHW for the eval forward), each
reporting medians of --steps steps after --warmup. Prints every round's
times and sslc/PyTorch ratios, then images/s (median of the rounds), the
ratios' median (min-max over rounds), sslc's GFLOP/s and peak RSS. The
report starts with the header of scripts/bench_common.py.

  flock /tmp/sslc-cpu.lock /usr/bin/python3 scripts/bench_encoder.py --rounds 3 --steps 3
  flock /tmp/sslc-cpu.lock /usr/bin/python3 scripts/bench_encoder.py --width 16 --in-channels 1 \\
      --size 28 --rounds 3 --steps 5
  # a smoke test (seconds, figures meaningless):
  flock /tmp/sslc-cpu.lock nice -n 10 /usr/bin/python3 scripts/bench_encoder.py --width 8 \\
      --batch 32 --steps 2 --rounds 2
"""
import argparse
import json
import os
import statistics
import sys
import time

import bench_common as bc


def torch_worker(args):
    """Runs in a child with the rival's environment; prints JSON timings."""
    import resource
    import torch
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as sslc's CLI does (sslc_flush_denormals)
    net = bc.torch_resnet(args.arch, args.width, args.in_channels, args.cifar_stem)
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
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"train_step_s": statistics.median(train_t), "eval_s": statistics.median(eval_t),
                      "peak_rss_mib": rss}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="resnet18", choices=["resnet18", "resnet34", "resnet50"])
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--no-cifar-stem", dest="cifar_stem", action="store_false")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--steps", type=int, default=3, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=3, help="alternating sslc/PyTorch rounds")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sslc", default=bc.SSLC)
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    common = ["--arch", args.arch, "--width", str(args.width), "--in-channels", str(args.in_channels),
              "--size", str(args.size), "--batch", str(args.batch), "--steps", str(args.steps),
              "--warmup", str(args.warmup), "--threads", str(args.threads)]
    common += [] if args.cifar_stem else ["--no-cifar-stem"]
    sslc_cmd = [args.sslc, "bench", "--json"] + common
    torch_cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker"] + common
    env = bc.rival_env(args.threads)
    bc.print_header(args.sslc, args.threads, env)
    sslc_env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    s_runs, t_runs = [], []
    for r in range(args.rounds):
        s_runs.append(bc.run_json(sslc_cmd, env=sslc_env))
        t_runs.append(bc.run_json(torch_cmd, env=env))
        s, t = s_runs[-1], t_runs[-1]
        print(f"round {r + 1}: sslc train {s['train_step_s']:.3f} s eval {s['eval_s']:.3f} s | "
              f"PyTorch train {t['train_step_s']:.3f} s eval {t['eval_s']:.3f} s | ratios train "
              f"{t['train_step_s'] / s['train_step_s']:.2f} eval {t['eval_s'] / s['eval_s']:.2f}",
              flush=True)
    b = args.batch
    stem = "CIFAR stem" if args.cifar_stem else "ImageNet stem"
    print(f"\n{args.arch} width {args.width} ({stem}), {args.in_channels}x{args.size}x{args.size}, "
          f"batch {b}, {args.threads} threads, medians of {args.steps} steps after {args.warmup} "
          f"warm-up, {args.rounds} rounds")
    print(f"{'':24}{'sslc':>12}{'PyTorch':>12}  ratio: median (min-max)")
    for key, name in [("train_step_s", "train fwd+bwd images/s"), ("eval_s", "eval forward images/s")]:
        s = [x[key] for x in s_runs]
        t = [x[key] for x in t_runs]
        ratios = [tt / ss for tt, ss in zip(t, s)]
        print(f"{name:24}{b / statistics.median(s):12.1f}{b / statistics.median(t):12.1f}  "
              f"{bc.spread(ratios)}")
    # sslc's GFLOP/s at the median step time of the rounds (the work per step is fixed)
    gflop = s_runs[0]["train_gflops"] * s_runs[0]["train_step_s"]
    print(f"{'train GFLOP/s':24}{gflop / statistics.median(x['train_step_s'] for x in s_runs):12.0f}")
    print(f"{'peak RSS MiB':24}{max(x['peak_rss_mib'] for x in s_runs):12.0f}"
          f"{max(x['peak_rss_mib'] for x in t_runs):12.0f}")


if __name__ == "__main__":
    main()
