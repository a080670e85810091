#!/usr/bin/python3
"""Regenerates tests/fixtures/eval_logreg.h5 with PyTorch (float64).

References for src/eval and losses/xent:
  xent/    logits (N, K), labels, the mean cross-entropy and its gradient
           (torch.nn.functional.cross_entropy, reduction "mean").
  logreg/  standardised features x (n, D), labels y, l2, and the minimiser
           W* (K, D), b* (K) of  mean CE(x W^T + b, y) + l2/2 |W|^2  found by
           torch.optim.LBFGS in float64 to a max |gradient| below 1e-7, with
           the objective value there. The objective is strictly convex in W
           and (with every class present) in b up to a shift that the tests
           remove, so any solver must reach the same point.
Fixed seeds: rerunning gives the same file.

    /usr/bin/python3 scripts/gen_eval_fixtures.py
"""
import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "eval_logreg.h5")


def f32(x):
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))


def main():
    g = torch.Generator().manual_seed(7)
    with h5py.File(OUT, "w") as f:
        # cross-entropy
        n, k = 9, 6
        logits = (torch.randn(n, k, generator=g) * 3).float().double().requires_grad_()
        labels = torch.randint(0, k, (n,), generator=g)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        f.create_dataset("xent/logits", data=f32(logits.detach()))
        f.create_dataset("xent/labels", data=f32(labels))
        f.create_dataset("xent/loss", data=f32([loss.item()]))
        f.create_dataset("xent/grad", data=f32(logits.grad))

        # logistic regression: three overlapping Gaussian classes
        n, d, k, l2 = 120, 7, 3, 0.01
        centres = torch.randn(k, d, generator=g)
        y = torch.arange(n) % k
        x = centres[y] + 1.5 * torch.randn(n, d, generator=g)
        x = x.float().double()
        x = (x - x.mean(0)) / x.std(0, unbiased=False)
        x = x.float().double()  # the C test reads float32
        w = torch.zeros(k, d, dtype=torch.float64, requires_grad=True)
        b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], lr=1, max_iter=2000, tolerance_grad=1e-12,
                                tolerance_change=1e-15, history_size=20,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            obj = F.cross_entropy(x @ w.t() + b, y) + 0.5 * l2 * (w * w).sum()
            obj.backward()
            return obj

        for _ in range(5):
            opt.step(closure)
        obj = closure()
        gmax = max(w.grad.abs().max().item(), b.grad.abs().max().item())
        assert gmax < 1e-7, gmax
        f.create_dataset("logreg/x", data=f32(x))
        f.create_dataset("logreg/y", data=f32(y))
        f.create_dataset("logreg/l2", data=f32([l2]))
        f.create_dataset("logreg/w", data=f32(w.detach()))
        f.create_dataset("logreg/b", data=f32(b.detach()))
        f.create_dataset("logreg/objective", data=f32([obj.item()]))
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
