#!/usr/bin/python3
"""A full contrastive training step, sslc against PyTorch in one run; with
--mpi, sslc on 2 MPI ranks x 1 thread against 1 rank x 2 threads.

The step. SimCLR: ResNet-18 (CIFAR stem) on 3x32x32 views, projection head
512-2048-128 (Linear-BN-ReLU-Linear), NT-Xent (tau 0.5) over 256 pairs (512
images), SGD with momentum. MoCo v2: the same encoder, head 512-512-128,
InfoNCE (tau 0.2) against a queue of K=4096 keys, momentum encoder m=0.99,
shuffle-BN in 8 groups. 2 threads. (--width scales the encoder, whose
features are 8 x width wide; --batch is the global batch of pairs.)

--arch vit-tiny (issue 17's bar: ratio 1.0): sslc's ViT (`--arch vit-tiny
--patch 4 --pos-embed learned`) against torchvision's VisionTransformer(32,
patch 4, 12 layers, 3 heads, D 192, MLP 768) with heads = Identity, AdamW
(lr 1e-3, weight decay 0.05), no channels_last. Heads are sslc's own for a
192-wide feature, one spec string built for both sides (step_setup):
SimCLR 192-192-128 (Linear-BN-ReLU-Linear); MoCo v3 (--method mocov3)
projector 192-384-384-256 and predictor 256-384-256 (Linear-BN-ReLU blocks,
then Linear-BN without affine, no biases), tau 0.2, m 0.99, no queue; both
views as one query batch of 2B and each view's keys on its own without
gradients (2 query + 2 key passes). --method both is simclr + moco for
resnet18 and simclr + mocov3 for a ViT; the report adds the bar's verdict
on the augmentation-excluded ratio.

How sslc is timed: `sslc pretrain --log-every 1` on a folder of generated
32x32 PNGs writes each step's pairs/s to the run's metrics.jsonl
(`pairs_per_s`: time in the step itself, data wait, forward, backward and
update, without checkpoint saves); the first --warmup steps are dropped and
the median of the rest is the run's step time. Under mpirun the file is
rank 0's; its pairs count every rank's (the global batch), and `comm` is
the share of the step rank 0 spent waiting in collectives.

Default mode, per round (--rounds, default 3): sslc with its augmentation
pipeline feeding every step (augmentation included), sslc on one fixed
batch (`--fixed-batch`: excluded), then PyTorch in its best configuration
(scripts/bench_common.py, ../shared/BENCHMARKING.md) on a fixed batch,
channels_last. Prints each round's step times and sslc/PyTorch ratios,
then pairs/s (median of the rounds), the ratios' median (min-max over
rounds), and peak RSS.

--profile adds where the step's time goes: sslc's fixed-batch run with
`--profile` (seconds per step of each phase, the first step left out) and
PyTorch's step cut at the same points (momentum update, key forward,
forward, loss, backward, optimizer; each phase's median over the timed
steps), side by side with their ratio, medians over the rounds.

--mpi (issue 15's speed bar), per round and method, alternating:
  1 x 2:  OMP_NUM_THREADS=2 sslc pretrain ... --threads 2 --fixed-batch
  2 x 1:  mpirun --oversubscribe -np 2 -x OMP_NUM_THREADS=1 \\
              sslc pretrain ... --threads 1 --fixed-batch
          (as root with OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
on the same global batch; per-rank batch norm (sslc's default); prints the
pairs/s of each and 2x1 / 1x2 against the bar, 0.85. PyTorch is not run.

Every report starts with the header of scripts/bench_common.py (CPU, ISA,
PyTorch's BLAS and GEMM GFLOP/s, the rival's GEMM check).

  flock /tmp/sslc-cpu.lock /usr/bin/python3 scripts/bench_step.py --method both --rounds 3
  flock /tmp/sslc-cpu.lock /usr/bin/python3 scripts/bench_step.py --mpi --rounds 3
  flock /tmp/sslc-cpu.lock /usr/bin/python3 scripts/bench_step.py --arch vit-tiny --method both --rounds 3
  # a smoke test (seconds, figures meaningless):
  flock /tmp/sslc-cpu.lock nice -n 10 /usr/bin/python3 scripts/bench_step.py --method both \\
      --batch 16 --width 8 --queue 256 --steps 2 --rounds 2
  nice -n 10 /usr/bin/python3 scripts/bench_step.py --arch vit-tiny --method mocov3 \\
      --batch 8 --steps 2 --rounds 1
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import bench_common as bc

MPI_BAR = 0.85
VIT_BAR = 1.0  # issue 17: a ViT-Tiny step at least as fast as PyTorch's best


def make_images(folder, n):
    """n 32x32 PNGs: 4x4 blocks of colour plus noise."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        base = rng.random((4, 4, 3))
        img = np.kron(base, np.ones((8, 8, 1))) * 200 + rng.random((32, 32, 3)) * 55
        Image.fromarray(img.astype(np.uint8)).save(os.path.join(folder, f"{i:05d}.png"))


# ---- the step both sides run --------------------------------------------------------

def head_spec(kind, hidden, out, layers):
    """sslc's head spec for a method (src/models/mlp.c sslc_mlp_head_spec):
    (layers - 1) hidden blocks, then the output layer."""
    block = "linear-nobias:{},bn,relu," if kind in ("simclr", "moco-v3") else "linear:{},relu,"
    last = "linear-nobias:{},bn-noaffine" if kind == "moco-v3" else "linear:{}"
    return block.format(hidden) * (layers - 1) + last.format(out)


def step_setup(args, method):
    """What one (arch, method) step is, for both sides: the feature width,
    the projection head and MoCo v3 predictor as sslc specs, the optimizer,
    and the sslc options that say the same."""
    vit = args.arch != "resnet18"
    feat = bc.VIT_ARCHS[args.arch][0] if vit else 8 * args.width
    s = {"feat": feat, "predictor": None, "proj_dim": 128, "optimizer": "sgd", "lr": 0.06,
         "wd": 5e-4, "tau": {"simclr": 0.5, "moco": 0.2, "mocov3": 0.2}[method]}
    encoder = (["--arch", args.arch, "--patch", "4", "--pos-embed", "learned"] if vit else
               ["--width", str(args.width)])
    if method == "mocov3":
        # sslc's v3 defaults for this feature width, spelled out: projector
        # of 3 layers, hidden 2 x feat, output min(hidden, 256); predictor
        # of the same hidden width (cmd_pretrain.c). AdamW, the paper's ViT
        # optimizer (PyTorch has no LARS, sslc's v3 default).
        hidden = 2 * feat
        out = min(hidden, 256)
        s.update(head=head_spec("moco-v3", hidden, out, 3), predictor=head_spec("moco-v3", hidden, out, 2),
                 proj_dim=out, optimizer="adamw", lr=1e-3, wd=0.05)
        s["sslc"] = encoder + ["--moco-version", "3", "--proj-hidden", str(hidden),
                               "--proj-dim", str(out), "--proj-layers", "3", "--pred-hidden",
                               str(hidden), "--tau", "0.2", "--moco-m", "0.99",
                               "--shuffle-groups", "2"]
        return s
    if vit:  # sslc's own SimCLR / MoCo v2 head for a ViT: hidden = feature width; AdamW
        s.update(head=head_spec("simclr" if method == "simclr" else "moco-v2", feat, 128, 2),
                 optimizer="adamw", lr=1e-3, wd=0.05)
    else:  # the ResNet bench's heads, as before
        s["head"] = ("linear:512,relu,linear:128" if method == "moco" else
                     "linear-nobias:2048,bn,relu,linear:128")
    s["sslc"] = encoder + ["--head", s["head"], "--queue", str(args.queue), "--moco-m", "0.99",
                           "--shuffle-groups", "8"]
    return s


# ---- PyTorch: runs in a child with the rival's environment -------------------------

def torch_mlp(spec, width):
    """nn.Sequential for an sslc head spec (linear[-nobias]:N, bn, bn-noaffine, relu)."""
    import torch.nn as nn
    layers = []
    for item in spec.split(","):
        name, _, n = item.partition(":")
        if name in ("linear", "linear-nobias"):
            layers.append(nn.Linear(width, int(n), bias=name == "linear"))
            width = int(n)
        elif name in ("bn", "bn-noaffine"):
            layers.append(nn.BatchNorm1d(width, affine=name == "bn"))
        elif name == "relu":
            layers.append(nn.ReLU())
        else:
            sys.exit(f"torch_mlp: unknown layer '{item}' in '{spec}'")
    return nn.Sequential(*layers)


def torch_worker(args):
    """Times the step on one fixed batch; prints JSON (median step seconds, peak RSS)."""
    import copy
    import resource
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as sslc's CLI does (sslc_flush_denormals)
    B, s, method = args.batch, step_setup(args, args.method), args.method
    vit = args.arch != "resnet18"
    encoder = bc.torch_vit(args.arch, 32, 4) if vit else bc.torch_resnet(width=args.width)
    model = nn.Sequential(encoder, torch_mlp(s["head"], s["feat"]))
    x = torch.randn(2 * B, 3, 32, 32)
    if not vit:  # channels_last helps convolutions; a ViT's one patch convolution not
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    params = list(model.parameters())
    if s["predictor"]:
        predictor = torch_mlp(s["predictor"], s["proj_dim"])
        params += list(predictor.parameters())
    if s["optimizer"] == "sgd":
        opt = torch.optim.SGD(params, lr=s["lr"], momentum=0.9, weight_decay=s["wd"])
    else:  # sslc's AdamW decays every tensor (no exclusions), as one group here
        opt = torch.optim.AdamW(params, lr=s["lr"], weight_decay=s["wd"])
    if method != "simclr":
        k_model = copy.deepcopy(model)
        for p in k_model.parameters():
            p.requires_grad = False
    if method == "moco":
        queue = F.normalize(torch.randn(args.queue, 128), dim=1)
        ptr = 0
    tau = s["tau"]
    times, phases = [], {}
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        marks, step_phases = [t0], {}

        def mark(phase):  # the phase that ends now (sslc's names, src/core/phases.h)
            marks.append(time.perf_counter())
            step_phases[phase] = step_phases.get(phase, 0.0) + marks[-1] - marks[-2]

        opt.zero_grad(set_to_none=True)
        if method != "simclr":
            with torch.no_grad():
                for pk, pq in zip(k_model.parameters(), model.parameters()):
                    pk.mul_(0.99).add_(pq.detach(), alpha=0.01)
            mark("momentum update")
        if method == "moco":
            with torch.no_grad():  # keys with shuffle-BN in 8 groups
                idx = torch.randperm(B)
                xk = x[B:][idx]
                k = torch.cat([k_model(g) for g in xk.chunk(8)])
                k = F.normalize(k[torch.argsort(idx)], dim=1)
            mark("key forward")
            q = model(x[:B])
            mark("forward")
            q = F.normalize(q, dim=1)
            logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.t()], dim=1) / tau
            loss = F.cross_entropy(logits, torch.zeros(B, dtype=torch.long))
        elif method == "mocov3":
            # As sslc: both views through the query side as one batch of 2B;
            # the keys one view at a time (BN statistics per view), no grad.
            with torch.no_grad():
                k1 = F.normalize(k_model(x[:B]), dim=1)
                k2 = F.normalize(k_model(x[B:]), dim=1)
            mark("key forward")
            p = predictor(model(x))
            mark("forward")
            p = F.normalize(p, dim=1)
            labels = torch.arange(B)
            loss = 2 * tau * (F.cross_entropy(p[:B] @ k2.t() / tau, labels) +
                              F.cross_entropy(p[B:] @ k1.t() / tau, labels))
        else:
            z = model(x)
            mark("forward")
            z = F.normalize(z, dim=1)
            sim = z @ z.t() / tau
            sim.fill_diagonal_(float("-inf"))
            target = torch.cat([torch.arange(B, 2 * B), torch.arange(0, B)])
            loss = F.cross_entropy(sim, target)
        mark("loss")
        loss.backward()
        mark("backward")
        if method == "moco":  # the queue is in the graph: enqueued after the backward
            with torch.no_grad():
                queue[ptr:ptr + B] = k
                ptr = (ptr + B) % args.queue
            mark("loss")  # sslc enqueues in its loss phase
        opt.step()
        mark("optimizer")
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
            for name, seconds in step_phases.items():
                phases.setdefault(name, []).append(seconds)
    print(json.dumps({"step_s": statistics.median(times),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "phases": dict({k: statistics.median(v) for k, v in phases.items()},
                                     step=statistics.median(times))}))


def torch_run(args, method, env):
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", "--method", method,
           "--arch", args.arch, "--batch", str(args.batch), "--width", str(args.width),
           "--queue", str(args.queue), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--threads", str(args.threads)]
    return bc.run_json(cmd, env=env)


# ---- sslc -----------------------------------------------------------------------------

def mpi_prefix(ranks):
    """mpirun for `ranks` ranks of 1 thread each, and the environment it needs."""
    env = {}
    if os.geteuid() == 0:
        env = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    return ["mpirun", "--oversubscribe", "-np", str(ranks), "-x", "OMP_NUM_THREADS=1"], env


def check_mpi(args):
    """Exits unless mpirun exists and sslc was built with MPI."""
    if not shutil.which("mpirun"):
        sys.exit("--mpi: no mpirun (apt-get install openmpi-bin libopenmpi-dev, then rebuild sslc)")
    prefix, env = mpi_prefix(2)
    out = subprocess.run(prefix + [args.sslc, "version"], capture_output=True, text=True,
                         env=dict(os.environ, **env))
    if out.returncode or "2 ranks" not in out.stdout:
        sys.exit(f"--mpi: `mpirun -np 2 sslc version` does not show 2 ranks (sslc built with "
                 f"-Dmpi=disabled?):\n{out.stdout}{out.stderr[-2000:]}")


def sslc_run(args, method, folder, fixed, ranks=1, threads=None):
    """One `sslc pretrain` run; returns its step time (median after warm-up),
    global pairs/s and peak RSS (rank 0's under mpirun)."""
    threads = threads or args.threads
    out = tempfile.mkdtemp(prefix="sslc-bench-")
    s = step_setup(args, method)
    cmd = [args.sslc, "pretrain", "--method", "moco" if method == "mocov3" else method,
           "--data", f"folder:{folder}", "--size", "32", "--batch", str(args.batch),
           "--optimizer", s["optimizer"], "--lr", str(s["lr"]), "--lr-scaling", "none",
           "--weight-decay", str(s["wd"]), "--max-steps", str(args.warmup + args.steps),
           "--epochs", "100", "--log-every", "1", "--knn-bank", "none", "--threads", str(threads),
           "--out", out] + s["sslc"]
    if fixed:
        cmd.append("--fixed-batch")
    if fixed and args.profile:
        cmd.append("--profile")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if ranks > 1:
        prefix, mpi_env = mpi_prefix(ranks)
        cmd, env = prefix + cmd, dict(env, **mpi_env)
    try:
        log = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if log.returncode:
            sys.exit(f"sslc failed: {' '.join(cmd)}\n{log.stderr[-2000:]}")
        with open(os.path.join(out, "metrics.jsonl")) as f:
            rows = [json.loads(line) for line in f if '"pairs_per_s"' in line]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if len(rows) <= args.warmup:
        sys.exit(f"sslc logged {len(rows)} steps, not more than --warmup {args.warmup}")
    rss = float(log.stdout.split("peak RSS ")[1].split()[0])
    step_s = statistics.median(args.batch / r["pairs_per_s"] for r in rows[args.warmup:])
    comm = statistics.median(r.get("comm_wait", 0.0) for r in rows[args.warmup:])
    # --profile's lines: "sslc:   key forward  0.1234 s  12.3%"
    phases = {m[1]: float(m[2]) for m in re.finditer(r"^sslc:   (\S.*?) +([0-9.]+) s", log.stderr,
                                                         re.MULTILINE)}
    return {"step_s": step_s, "pairs_per_s": args.batch / step_s, "peak_rss_mib": rss,
            "comm_wait": comm, "phases": phases}


# ---- the two reports --------------------------------------------------------------

def describe(args):
    enc = (f"{args.arch}, patch 4, learned position embedding" if args.arch != "resnet18" else
           f"ResNet-18 CIFAR stem width {args.width}")
    return (f"{enc}, 3x32x32, {args.batch} pairs, "
            f"medians of {args.steps} steps after {args.warmup} warm-up, {args.rounds} rounds")


def bench_vs_torch(args, method, folder, env):
    rows = {"inc": [], "exc": [], "torch": []}
    for r in range(args.rounds):
        rows["inc"].append(sslc_run(args, method, folder, fixed=False))
        rows["exc"].append(sslc_run(args, method, folder, fixed=True))
        rows["torch"].append(torch_run(args, method, env))
        t = rows["torch"][-1]["step_s"]
        print(f"{method} round {r + 1}: sslc {rows['inc'][-1]['step_s']:.3f} s/step (augmentation "
              f"included), {rows['exc'][-1]['step_s']:.3f} s (excluded) | PyTorch {t:.3f} s | "
              f"ratios {t / rows['inc'][-1]['step_s']:.2f} / {t / rows['exc'][-1]['step_s']:.2f}",
              flush=True)
    print(f"\n{method} step, {describe(args)}, {args.threads} threads")
    print(f"{'':38}{'pairs/s':>9}  {'vs PyTorch: median (min-max)':<30}{'peak RSS MiB':>12}")
    torch_s = [x["step_s"] for x in rows["torch"]]
    for key, name in [("inc", "sslc, augmentation included"), ("exc", "sslc, augmentation excluded"),
                      ("torch", "PyTorch best, augmentation excluded")]:
        s = [x["step_s"] for x in rows[key]]
        ratios = [t / own for t, own in zip(torch_s, s)]
        print(f"{name:38}{args.batch / statistics.median(s):9.1f}  "
              f"{bc.spread(ratios) if key != 'torch' else '':<30}"
              f"{max(x['peak_rss_mib'] for x in rows[key]):12.0f}")
    if args.profile:
        print_profile(rows["exc"], rows["torch"])
    if args.arch == "vit-tiny":
        ratio = statistics.median(t / x["step_s"] for t, x in zip(torch_s, rows["exc"]))
        print(f"bar (issue 17): sslc / PyTorch {VIT_BAR} on the same fixed batch: "
              f"{ratio:.2f}, {'met' if ratio >= VIT_BAR else 'MISSED'}")
    print(flush=True)


def print_profile(own, rival):
    """Seconds per step of each phase, sslc (fixed batch) beside PyTorch, medians of rounds."""
    print(f"\nwhere the step goes (fixed batch; s/step, median of the rounds)")
    print(f"{'':18}{'sslc':>9}{'PyTorch':>9}{'PyTorch/sslc':>14}")
    names = list(own[0]["phases"]) + [k for k in rival[0]["phases"] if k not in own[0]["phases"]]
    for name in names:
        a = [x["phases"].get(name, 0.0) for x in own]
        b = [x["phases"].get(name, 0.0) for x in rival]
        ma, mb = statistics.median(a), statistics.median(b)
        ratio = f"{mb / ma:.2f}" if ma > 0 and mb > 0 else ""
        print(f"{name:18}{ma:9.3f}{mb:9.3f}{ratio:>14}")


def bench_mpi(args, methods, folder):
    ranks = args.threads
    runs = {m: {"1x": [], "Nx1": []} for m in methods}
    for r in range(args.rounds):
        for m in methods:
            one = sslc_run(args, m, folder, fixed=True, ranks=1, threads=args.threads)
            many = sslc_run(args, m, folder, fixed=True, ranks=ranks, threads=1)
            runs[m]["1x"].append(one)
            runs[m]["Nx1"].append(many)
            print(f"{m} round {r + 1}: 1 rank x {args.threads} threads {one['pairs_per_s']:.1f} pairs/s, "
                  f"{ranks} ranks x 1 thread {many['pairs_per_s']:.1f} pairs/s "
                  f"({100 * many['comm_wait']:.0f}% of the step in collectives), "
                  f"ratio {many['pairs_per_s'] / one['pairs_per_s']:.2f}", flush=True)
    print(f"\nMPI: {ranks} ranks x 1 thread against 1 rank x {args.threads} threads, the same "
          f"global batch, fixed batch (augmentation excluded); bar {MPI_BAR}")
    print(f"{'':8}{'1x' + str(args.threads) + ' pairs/s':>15}{str(ranks) + 'x1 pairs/s':>15}"
          f"{'comm':>7}  {'ratio: median (min-max)':<26}{'bar':>7}{'peak RSS MiB 1x / rank 0':>26}")
    for m in methods:
        one = [x["pairs_per_s"] for x in runs[m]["1x"]]
        many = [x["pairs_per_s"] for x in runs[m]["Nx1"]]
        ratios = [b / a for a, b in zip(one, many)]
        ok = "met" if statistics.median(ratios) >= MPI_BAR else "MISSED"
        rss = (f"{max(x['peak_rss_mib'] for x in runs[m]['1x']):.0f} / "
               f"{max(x['peak_rss_mib'] for x in runs[m]['Nx1']):.0f}")
        comm = statistics.median(x["comm_wait"] for x in runs[m]["Nx1"])
        print(f"{m:8}{statistics.median(one):15.1f}{statistics.median(many):15.1f}"
              f"{100 * comm:6.0f}%  {bc.spread(ratios):<26}{ok:>7}{rss:>26}")
    print(f"(each: {describe(args)})", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=["resnet18"] + list(bc.VIT_ARCHS), default="resnet18",
                   help="encoder (vit-*: patch 4, learned position embedding)")
    p.add_argument("--method", choices=["simclr", "moco", "mocov3", "both"], default="both",
                   help="moco: MoCo v2; both: simclr and moco (ResNet), simclr and mocov3 (ViT)")
    p.add_argument("--mpi", action="store_true",
                   help="sslc on THREADS ranks x 1 thread against 1 rank x THREADS threads")
    p.add_argument("--batch", type=int, default=256, help="pairs per step (global)")
    p.add_argument("--width", type=int, default=64, help="encoder base width")
    p.add_argument("--queue", type=int, default=4096, help="MoCo keys")
    p.add_argument("--steps", type=int, default=5, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--profile", action="store_true",
                   help="also the seconds per step of each phase, sslc beside PyTorch")
    p.add_argument("--sslc", default=bc.SSLC)
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    if args.method != "both":
        methods = [args.method]
    else:
        methods = ["simclr", "moco" if args.arch == "resnet18" else "mocov3"]
    env = bc.rival_env(args.threads)
    bc.print_header(args.sslc, args.threads, env,
                    note="(--mpi: sslc against itself; PyTorch is not timed)" if args.mpi else None)
    if args.mpi:
        check_mpi(args)
    folder = os.path.join(tempfile.gettempdir(), "sslc-bench-32px")
    if not os.path.isdir(folder) or len(os.listdir(folder)) < 4 * args.batch:
        make_images(folder, 4 * args.batch)
    if args.mpi:
        return bench_mpi(args, methods, folder)
    for m in methods:
        bench_vs_torch(args, m, folder, env)


if __name__ == "__main__":
    main()
