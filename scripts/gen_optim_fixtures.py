#!/usr/bin/python3
"""Regenerates tests/fixtures/optim_steps.h5: reference optimizer updates.

A small parameter table (weights, biases, batch-norm affine parameters, a
zero-initialised tensor) is updated for several steps with fixed gradients
and a varying learning rate by
  - torch.optim.SGD (momentum, Nesterov, weight decay on all tensors or with
    biases / BN excluded through a second param group with weight_decay 0),
  - torch.optim.AdamW (decoupled decay, bias correction),
  - LARS written here in NumPy from SimCLR's definition (You et al. 2017;
    SimCLR's TF LARSOptimizer, classic momentum, exclusions),
and the warmup + cosine schedule from its formula, cross-checked against
torch.optim.lr_scheduler.CosineAnnealingLR. Fixed seeds.

    /usr/bin/python3 scripts/gen_optim_fixtures.py
"""
import math
import os

import h5py
import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "optim_steps.h5")

# name, shape, no_decay: the C test declares the same table in this order.
TENSORS = [
    ("conv.weight", (4, 3), False),
    ("conv.bias", (4,), True),
    ("bn.weight", (4,), True),
    ("bn.bias", (4,), True),
    ("fc.weight", (2, 4), False),
    ("zero.weight", (3,), False),
]
STEPS = 6


def flat(ts):
    return np.concatenate([t.detach().numpy().reshape(-1) for t in ts]).astype(np.float32)


def split(vec):
    out, at = [], 0
    for _, shape, _ in TENSORS:
        n = int(np.prod(shape))
        out.append(vec[at:at + n].reshape(shape))
        at += n
    return out


def initial(rng):
    vals = []
    for name, shape, _ in TENSORS:
        v = rng.standard_normal(shape).astype(np.float32)
        if name == "zero.weight":
            v[:] = 0.0  # LARS: |w| = 0 gives trust ratio 1
        if name == "bn.weight":
            v = (1.0 + 0.1 * v).astype(np.float32)
        vals.append(v)
    return vals


def run_torch(kind, cfg, p0, grads, lrs):
    params = [torch.nn.Parameter(torch.tensor(v)) for v in p0]
    wd = cfg["weight_decay"]
    if cfg["exclude"]:
        groups = [
            {"params": [p for p, t in zip(params, TENSORS) if not t[2]], "weight_decay": wd},
            {"params": [p for p, t in zip(params, TENSORS) if t[2]], "weight_decay": 0.0},
        ]
    else:
        groups = [{"params": params, "weight_decay": wd}]
    if kind == "sgd":
        opt = torch.optim.SGD(groups, lr=lrs[0], momentum=cfg["momentum"],
                              nesterov=cfg["nesterov"], weight_decay=wd)
    else:
        opt = torch.optim.AdamW(groups, lr=lrs[0], betas=(cfg["beta1"], cfg["beta2"]),
                                eps=cfg["eps"], weight_decay=wd)
    history = []
    for s in range(STEPS):
        for g in opt.param_groups:
            g["lr"] = lrs[s]
        for p, g in zip(params, split(grads[s])):
            p.grad = torch.tensor(g)
        opt.step()
        history.append(flat(params))
    states = []
    if kind == "sgd" and cfg["momentum"] > 0:
        states.append(flat([opt.state[p]["momentum_buffer"] for p in params]))
    if kind == "adamw":
        states.append(flat([opt.state[p]["exp_avg"] for p in params]))
        states.append(flat([opt.state[p]["exp_avg_sq"] for p in params]))
    return np.stack(history), states


def run_lars(cfg, p0, grads, lrs):
    """SimCLR LARS, float64: d = g + wd w; trust = eta |w| / |d| (1 if a norm
    is 0); v = m v + lr trust d; w -= nesterov ? m v + lr trust d : v.
    Excluded tensors: no decay, trust 1."""
    w = [v.astype(np.float64) for v in p0]
    v = [np.zeros_like(x) for x in w]
    m, eta, wd = cfg["momentum"], cfg["eta"], cfg["weight_decay"]
    history = []
    for s in range(STEPS):
        for i, (g, t) in enumerate(zip(split(grads[s]), TENSORS)):
            excluded = cfg["exclude"] and t[2]
            d = g.astype(np.float64) + (0.0 if excluded else wd) * w[i]
            trust = 1.0
            if not excluded:
                wn, gn = np.linalg.norm(w[i]), np.linalg.norm(d)
                if wn > 0 and gn > 0:
                    trust = eta * wn / gn
            scaled = lrs[s] * trust
            v[i] = m * v[i] + scaled * d
            w[i] = w[i] - (m * v[i] + scaled * d if cfg["nesterov"] else v[i])
        history.append(np.concatenate([x.reshape(-1) for x in w]))
    return np.stack(history).astype(np.float32), [
        np.concatenate([x.reshape(-1) for x in v]).astype(np.float32)]


CASES = {
    "sgd": ("sgd", dict(momentum=0.9, nesterov=False, weight_decay=0.05, exclude=False), 1.0),
    "sgd_nesterov_excl": ("sgd", dict(momentum=0.9, nesterov=True, weight_decay=0.05,
                                      exclude=True), 1.0),
    "sgd_plain": ("sgd", dict(momentum=0.0, nesterov=False, weight_decay=0.01, exclude=False), 1.0),
    "lars": ("lars", dict(momentum=0.9, nesterov=False, weight_decay=0.05, exclude=True,
                          eta=0.001), 40.0),
    "lars_nesterov_all": ("lars", dict(momentum=0.9, nesterov=True, weight_decay=0.05,
                                       exclude=False, eta=0.001), 40.0),
    "adamw": ("adamw", dict(weight_decay=0.1, exclude=False, beta1=0.9, beta2=0.999, eps=1e-8),
              0.05),
    "adamw_excl": ("adamw", dict(weight_decay=0.1, exclude=True, beta1=0.8, beta2=0.99, eps=1e-6),
                   0.05),
}


def schedule(f):
    peak, final, warmup, total = 1.2, 0.01, 5, 40
    steps = np.arange(0, total + 6)
    lr = []
    for s in steps:
        if s < warmup:
            lr.append(peak * s / warmup)
        else:
            t = min(s - warmup, total - warmup)
            lr.append(final + (peak - final) * 0.5 * (1 + math.cos(math.pi * t / (total - warmup))))
    # torch's cosine for the decay part (its recursive form, T_max = T - W).
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=peak)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=final)
    torch_lr = []
    for _ in range(total - warmup + 1):
        torch_lr.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert np.allclose(torch_lr, lr[warmup:total + 1], rtol=1e-9, atol=1e-12), "formula != torch"
    f.create_dataset("schedule/config", data=np.array([peak, final, warmup, total], np.float64))
    f.create_dataset("schedule/lr", data=np.array(lr, np.float32))
    f.create_dataset("schedule/torch_lr", data=np.array(torch_lr, np.float32))


def main():
    rng = np.random.default_rng(2024)
    p0 = initial(rng)
    n = sum(int(np.prod(s)) for _, s, _ in TENSORS)
    grads = rng.standard_normal((STEPS, n)).astype(np.float32)
    base_lrs = np.array([0.1, 0.2, 0.15, 0.05, 0.3, 0.08])
    with h5py.File(OUT, "w") as f:
        f.create_dataset("params0", data=np.concatenate([v.reshape(-1) for v in p0]))
        f.create_dataset("grads", data=grads)
        for name, (kind, cfg, lr_scale) in CASES.items():
            lrs = (base_lrs * lr_scale).astype(np.float32).astype(np.float64)
            if kind == "lars":
                history, states = run_lars(cfg, p0, grads, lrs)
            else:
                history, states = run_torch(kind, cfg, p0, grads, lrs)
            f.create_dataset(f"{name}/values", data=history)
            f.create_dataset(f"{name}/lrs", data=lrs.astype(np.float32))
            for i, s in enumerate(states):
                f.create_dataset(f"{name}/state{i}", data=s)
            conf = [cfg.get("momentum", 0.0), float(cfg.get("nesterov", False)),
                    cfg["weight_decay"], float(cfg["exclude"]), cfg.get("eta", 0.0),
                    cfg.get("beta1", 0.0), cfg.get("beta2", 0.0), cfg.get("eps", 0.0)]
            f.create_dataset(f"{name}/config", data=np.array(conf, np.float64))
        schedule(f)
    print("wrote", OUT)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
