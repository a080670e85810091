#!/usr/bin/python3
"""What scripts/bench_*.py share: this CPU, PyTorch's best configuration on
it, the header every report starts with, and the PyTorch ResNet and ViT
they time.

PyTorch's best configuration (../shared/BENCHMARKING.md), set up by
`rival_env()` for the PyTorch process alone:
- Debian's OpenBLAS, OpenMP build (`libopenblas0-openmp`, installed through
  scripts/deps.sh when missing): it takes over `libblas.so.3`, which
  Debian's PyTorch calls for its Linear layers (the netlib reference BLAS,
  ~3 GFLOP/s, otherwise).
- `OPENBLAS_CORETYPE` set to the best kernel this CPU runs: SKYLAKEX with
  avx512f, HASWELL with avx2, else left as it is. The machines export
  `OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` for every process; only the
  rival's environment changes.
- `ATEN_CPU_CAPABILITY`: avx512 with AVX-512 (F, BW, VL, DQ: what ATen's
  AVX-512 kernels use), avx2 with AVX2 + FMA, else left as it is.
- `MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000`, and
  `OMP_NUM_THREADS` = the threads of the comparison.

The header (`print_header()`) says what both sides run on: the CPU model
and its ISA flags, the ISA oneDNN picks for sslc (from `ONEDNN_VERBOSE=1`
on a tiny `sslc bench`), and, from a probe run in the rival's environment:
PyTorch's version and build, the `libblas.so.3` it loaded and the OpenBLAS
kernel, one GEMM of a Linear layer checked against float64, and its fp32
and bf16 GEMM GFLOP/s at 2048^3. A failed GEMM check stops the benchmark.

Alone, it prints the header (the rival check):

  flock /tmp/sslc-cpu.lock nice -n 10 /usr/bin/python3 scripts/bench_common.py [--threads 2]
"""
import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SSLC = os.path.join(ROOT, "build", "src", "cli", "sslc")
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
GEMM_N = 2048


# ---- the machine ------------------------------------------------------------------

def cpu_info():
    """Model name, family/model numbers and flags of the first CPU in
    /proc/cpuinfo (all cores of these machines are the same)."""
    info = {"model": "unknown", "family": "?", "model_no": "?", "flags": set()}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name":
                info["model"] = value
            elif key == "cpu family":
                info["family"] = value
            elif key == "model":
                info["model_no"] = value
            elif key == "flags":
                info["flags"] = set(value.split())
                break  # the first CPU's block is complete
    return info


def rival_env(threads, base=None):
    """The environment of the PyTorch process: `base` (os.environ) with the
    best settings for this CPU. Nothing else is changed."""
    flags = cpu_info()["flags"]
    env = dict(os.environ if base is None else base, OMP_NUM_THREADS=str(threads),
               MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_="100000000000")
    if "avx512f" in flags:
        env["OPENBLAS_CORETYPE"] = "SKYLAKEX"
    elif "avx2" in flags:
        env["OPENBLAS_CORETYPE"] = "HASWELL"
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        env["ATEN_CPU_CAPABILITY"] = "avx512"
    elif {"avx2", "fma"} <= flags:
        env["ATEN_CPU_CAPABILITY"] = "avx2"
    return env


def ensure_openblas():
    """Installs libopenblas0-openmp when missing, through scripts/deps.sh
    (the one way sslc's scripts install Debian packages). A failure is
    reported, not fatal: the header then shows which BLAS PyTorch loaded."""
    deps = os.path.join(HERE, "deps.sh")
    r = subprocess.run(["bash", "-c", 'source "$1" && sslc_ensure_packages libopenblas0-openmp',
                        "bash", deps])
    if r.returncode:
        print("warning: could not install libopenblas0-openmp; PyTorch keeps the libblas.so.3 "
              "it has (see the header)", file=sys.stderr)


def sslc_onednn_isa(sslc):
    """The ISA oneDNN dispatches to in sslc, from its verbose info line
    (`onednn_verbose,info,cpu,isa:Intel AVX2`), on a tiny `sslc bench`."""
    if not os.access(sslc, os.X_OK):
        sys.exit(f"no sslc binary at {sslc}: build it (meson setup build -Dtests=disabled && "
                 "ninja -C build) or pass --sslc")
    env = dict(os.environ, ONEDNN_VERBOSE="1", DNNL_VERBOSE="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sslc, "bench", "--json", "--batch", "2", "--steps", "1", "--warmup", "0",
                          "--width", "8", "--size", "8", "--threads", "1"],
                         capture_output=True, text=True, env=env)
    version = isa = None
    for line in out.stdout.splitlines():
        if ",info," in line and "oneDNN v" in line:
            version = line.split("oneDNN ", 1)[1].split()[0]
        if ",info,cpu," in line and "isa:" in line:
            isa = line.split("isa:", 1)[1].strip()
    if isa is None:
        return "unknown (no oneDNN verbose line: built with -Dblas=cblas or naive?)"
    return f"{isa} (oneDNN {version})" if version else isa


def run_json(cmd, env=None):
    """Runs a command that prints one JSON object as its last stdout line;
    exits with its stderr when it fails."""
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        how = f"signal {-r.returncode}" if r.returncode < 0 else f"exit {r.returncode}"
        if r.returncode == -4:
            how += ": an illegal instruction, an ISA this CPU lacks (OPENBLAS_CORETYPE, ATEN_CPU_CAPABILITY?)"
        sys.exit(f"failed ({how}): {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def spread(values, fmt="{:.2f}"):
    """'median (min-max)' of per-round values."""
    return (fmt.format(statistics.median(values)) + " (" + fmt.format(min(values)) + "-" +
            fmt.format(max(values)) + ")")


# ---- the probe: runs in the rival's environment ------------------------------------

def gemm_check(torch):
    """One GEMM of a Linear layer (F.linear: x @ w^T + b, the call Debian's
    PyTorch hands to libblas.so.3's sgemm) against a float64 reference made
    without BLAS (elementwise products, float64 sums). Shapes leave
    remainders for every kernel block. Any correct fp32 GEMM satisfies, per
    element, |y - y64| <= gamma_(K+1) * (|x| @ |w|^T + |b|)_ij with
    gamma_n = n u / (1 - n u), u = 2^-24 (Higham, "Accuracy and Stability
    of Numerical Algorithms", 3.5: any summation order, FMA or not; the
    inputs are exact in float64). A broken kernel misses it by orders of
    magnitude."""
    M, K, N = 300, 520, 260
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(M, K, generator=g), torch.randn(N, K, generator=g),
               torch.randn(N, generator=g))
    y = torch.nn.functional.linear(x, w, b).double()
    xd, wd, bd = x.double(), w.double(), b.double()
    worst = 0.0
    for i in range(0, M, 25):  # (25, N, K) float64 products at a time: 27 MB
        p = xd[i:i + 25, None, :] * wd[None, :, :]
        ref, mag = p.sum(2) + bd, p.abs().sum(2) + bd.abs()
        worst = max(worst, float(((y[i:i + 25] - ref).abs() / mag).max()))
    u = 2.0 ** -24
    bound = (K + 1) * u / (1 - (K + 1) * u)
    return {"shape": f"{M}x{K} @ {K}x{N}", "max_rel_err": worst, "bound": bound,
            "ok": worst <= bound}


def gemm_gflops(torch, dtype, n, reps):
    """torch.matmul of two n x n matrices: GFLOP/s of the median of `reps`
    timed calls after one untimed."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.matmul(a, b)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t0)
    return 2.0 * n ** 3 / statistics.median(times) / 1e9


def loaded_blas():
    """The BLAS libraries mapped into this process, with OpenBLAS's own
    account of its build and the kernel it runs."""
    with open("/proc/self/maps") as f:
        paths = sorted({line.split()[-1] for line in f
                        if "/" in line and "blas" in line.split("/")[-1]})
    found = []
    for path in paths:
        entry = {"path": path}
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            entry["openblas_core"] = lib.openblas_get_corename().decode()
            entry["openblas_config"] = lib.openblas_get_config().decode().strip()
        except (OSError, AttributeError):
            pass
        found.append(entry)
    return found


def probe_main(threads):
    """Prints one JSON object: what the rival runs on and how fast its GEMMs are."""
    import torch
    torch.set_num_threads(threads)
    config = torch.__config__.show()
    keep = ("MKL-DNN", "CPU capability", "BLAS_INFO")
    build = []
    for line in config.splitlines():
        line = line.strip(" -")
        if line.startswith("Build settings:"):
            build += [s.strip() for s in line.split(":", 1)[1].split(",")
                      if s.strip().startswith(("BLAS_INFO", "LAPACK_INFO", "USE_MKLDNN", "USE_OPENMP"))]
        elif line.startswith(keep):
            build.append(line)
    check = gemm_check(torch)  # also makes PyTorch load its BLAS
    blas = loaded_blas()
    fp32 = gemm_gflops(torch, torch.float32, GEMM_N, 5)
    flags = cpu_info()["flags"]
    native = [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
    if native:
        bf16 = {"native": native, "gflops": gemm_gflops(torch, torch.bfloat16, GEMM_N, 3), "n": GEMM_N}
    else:  # emulated: a 2048^3 product could take minutes
        bf16 = {"native": [], "gflops": gemm_gflops(torch, torch.bfloat16, 512, 1), "n": 512}
    print(json.dumps({"version": torch.__version__, "build": build, "threads": torch.get_num_threads(),
                      "check": check, "blas": blas, "fp32_gflops": fp32, "bf16": bf16}))


# ---- the header --------------------------------------------------------------------

def print_header(sslc, threads, env, note=None):
    """Prints what sslc and PyTorch run on. `env` is the rival's environment
    (rival_env). Exits when the rival's GEMM check fails."""
    ensure_openblas()
    cpu = cpu_info()
    isa = sslc_onednn_isa(sslc)
    probe = run_json([sys.executable, os.path.abspath(__file__), "--probe", "--threads", str(threads)],
                     env=env)
    yes = lambda f: f"{f} {'yes' if f in cpu['flags'] else 'no'}"
    print(f"CPU: {cpu['model']} (family {cpu['family']}, model {cpu['model_no']}), "
          f"{os.cpu_count()} cores online; " + ", ".join(yes(f) for f in ISA_FLAGS))
    print(f"sslc: oneDNN ISA {isa}")
    set_vars = " ".join(f"{k}={env[k]}" for k in ("OMP_NUM_THREADS", "ATEN_CPU_CAPABILITY",
                                                  "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                  "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")
                        if k in env)
    print(f"PyTorch {probe['version']}, {probe['threads']} threads; " + "; ".join(probe["build"]))
    print(f"  its environment: {set_vars}")
    openblas = [b for b in probe["blas"] if "openblas_core" in b]
    described = {}  # OpenBLAS maps as libblas.so.3 and libopenblasp-*.so: one line
    for b in probe["blas"]:
        extra = (f" ({b['openblas_config']}; kernel {b['openblas_core']})" if "openblas_core" in b
                 else "")
        described.setdefault(extra, []).append(b["path"])
    for extra, paths in described.items():
        print(f"  BLAS loaded: {', '.join(paths)}{extra}")
    if not probe["blas"]:
        print("  BLAS loaded: none found in /proc/self/maps")
    if not openblas:
        print("  WARNING: PyTorch's Linear layers do not run on OpenBLAS: a handicapped rival")
    c = probe["check"]
    print(f"  GEMM check: F.linear {c['shape']} fp32 against float64, max |err| / (|x||w|^T+|b|) "
          f"{c['max_rel_err']:.2e}, bound (K+1)u = {c['bound']:.2e}: {'ok' if c['ok'] else 'FAILED'}")
    print(f"  fp32 GEMM {GEMM_N}^3: {probe['fp32_gflops']:.1f} GFLOP/s (median of 5)")
    bf = probe["bf16"]
    if not bf["native"]:
        print(f"  bf16 GEMM: not supported by this CPU (no avx512_bf16, no amx_bf16; "
              f"emulated {bf['n']}^3: {bf['gflops']:.1f} GFLOP/s)")
    elif bf["gflops"] < probe["fp32_gflops"]:
        print(f"  bf16 GEMM {bf['n']}^3: {bf['gflops']:.1f} GFLOP/s: slow emulation "
              f"(below fp32, although the CPU has {', '.join(bf['native'])})")
    else:
        print(f"  bf16 GEMM {bf['n']}^3: {bf['gflops']:.1f} GFLOP/s ({', '.join(bf['native'])}, "
              "median of 3)")
    if note:
        print(note)
    print(flush=True)
    if not c["ok"]:
        sys.exit("the rival's GEMM is wrong under this OPENBLAS_CORETYPE: fix the environment "
                 "(scripts/bench_common.py rival_env) before timing anything")
    return probe


# ---- the PyTorch encoders the benchmarks time ---------------------------------------

def torch_resnet(arch="resnet18", width=64, in_channels=3, cifar_stem=True):
    """torchvision's ResNet without its classifier (fc = Identity): base
    width `width`, a 3x3 stride-1 stem without max pool when `cifar_stem`
    (as sslc's --cifar-stem)."""
    import torch.nn as nn
    import torchvision
    net = getattr(torchvision.models, arch)()
    if width != 64 or cifar_stem or in_channels != 3:
        deep = arch == "resnet50"
        block = torchvision.models.resnet.Bottleneck if deep else torchvision.models.resnet.BasicBlock
        stages = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3], "resnet50": [3, 4, 6, 3]}[arch]
        net.inplanes = width
        net.conv1 = (nn.Conv2d(in_channels, width, 3, 1, 1, bias=False) if cifar_stem
                     else nn.Conv2d(in_channels, width, 7, 2, 3, bias=False))
        net.bn1 = nn.BatchNorm2d(width)
        if cifar_stem:
            net.maxpool = nn.Identity()
        net.layer1 = net._make_layer(block, width, stages[0])
        net.layer2 = net._make_layer(block, 2 * width, stages[1], stride=2)
        net.layer3 = net._make_layer(block, 4 * width, stages[2], stride=2)
        net.layer4 = net._make_layer(block, 8 * width, stages[3], stride=2)
    net.fc = nn.Identity()
    return net


VIT_ARCHS = {  # hidden D, layers, heads, MLP dim M: sslc's --arch table (docs/vit.md)
    "vit-tiny": (192, 12, 3, 768),
    "vit-small": (384, 12, 6, 1536),
    "vit-base": (768, 12, 12, 3072),
}


def torch_vit(arch="vit-tiny", image_size=32, patch=4):
    """torchvision's VisionTransformer without its classifier (heads =
    Identity): the model sslc's ViT encoder is (docs/vit.md); features are
    the class token after the final layer norm, D wide."""
    import torch.nn as nn
    import torchvision
    hidden, layers, heads, mlp_dim = VIT_ARCHS[arch]
    net = torchvision.models.VisionTransformer(image_size=image_size, patch_size=patch,
                                               num_layers=layers, num_heads=heads,
                                               hidden_dim=hidden, mlp_dim=mlp_dim)
    net.heads = nn.Identity()
    return net


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sslc", default=SSLC)
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.probe:
        return probe_main(args.threads)
    print_header(args.sslc, args.threads, rival_env(args.threads))


if __name__ == "__main__":
    main()
