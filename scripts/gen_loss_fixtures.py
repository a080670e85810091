#!/usr/bin/python3
"""Regenerates tests/fixtures/losses_{ntxent,infonce,mocov3,distill}.h5 with PyTorch.

The references are the plain PyTorch formulations of NT-Xent (SimCLR), its
multi-positive form for multi-crop (groups multi*: M views per image),
InfoNCE (MoCo), MoCo v3's symmetric loss and the distillation loss (SimCLRv2 eq. 2), evaluated in
float64 from float32 inputs; the C tests load the inputs, run sslc's losses
and compare loss and gradient. Fixed seeds: rerunning gives the same files.

    /usr/bin/python3 scripts/gen_loss_fixtures.py [ntxent] [infonce] [mocov3] [distill]

(no names: all four).
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures")
TAUS = [0.05, 0.1, 0.5]


def ntxent(z, tau):
    """SimCLR NT-Xent over 2N rows; positive of row i is row (i+N) mod 2N."""
    two_n = z.shape[0]
    n = two_n // 2
    zn = F.normalize(z, dim=1)
    logits = zn @ zn.t() / tau
    eye = torch.eye(two_n, dtype=torch.bool)
    logits = logits.masked_fill(eye, float("-inf"))
    target = (torch.arange(two_n) + n) % two_n
    loss = F.cross_entropy(logits, target)
    acc = (logits.argmax(dim=1) == target).double().mean()
    return loss, acc


def ntxent_multi(z, views, tau):
    """Multi-positive NT-Xent (SupCon's L_out with the image as the label)
    over M*N rows, view-major: row v*N + k is view v of image k; each row's
    positives are the M-1 other views of its image, its loss the mean over
    them of -log softmax over every other row."""
    rows = z.shape[0]
    n = rows // views
    zn = F.normalize(z, dim=1)
    logits = zn @ zn.t() / tau
    eye = torch.eye(rows, dtype=torch.bool)
    logits = logits.masked_fill(eye, float("-inf"))
    log_prob = (logits - torch.logsumexp(logits, dim=1, keepdim=True)).masked_fill(eye, 0.0)
    image = torch.arange(rows) % n
    positive = (image[:, None] == image[None, :]) & ~eye
    loss = (-(log_prob * positive).sum(dim=1) / positive.sum(dim=1)).mean()
    acc = positive[torch.arange(rows), logits.argmax(dim=1)].double().mean()
    return loss, acc


def infonce(q, k, queue, tau):
    """MoCo InfoNCE: logits [q.k+, q.queue^T] / tau, target index 0."""
    qn = F.normalize(q, dim=1)
    kn = F.normalize(k, dim=1).detach()
    l_pos = (qn * kn).sum(dim=1, keepdim=True)
    l_neg = qn @ queue.t()
    logits = torch.cat([l_pos, l_neg], dim=1) / tau
    target = torch.zeros(q.shape[0], dtype=torch.long)
    loss = F.cross_entropy(logits, target)
    acc = (logits.argmax(dim=1) == 0).double().mean()
    return loss, acc, kn


def f32(x):
    return np.ascontiguousarray(x.detach().numpy().astype(np.float32))


def put(f, name, x):
    f.create_dataset(name, data=np.asarray(x, dtype=np.float32))


def gen_ntxent(path):
    g = torch.Generator().manual_seed(1234)
    with h5py.File(path, "w") as f:
        case = 0
        for n, d in [(2, 4), (4, 8), (16, 32)]:
            for tau in TAUS:
                # Correlated views (view 2 = view 1 + noise) so that positives
                # are usually nearest, plus varied row scales: the loss is
                # scale-invariant, its gradient is not.
                base = torch.randn(n, d, generator=g, dtype=torch.float64)
                noise = torch.randn(2 * n, d, generator=g, dtype=torch.float64)
                z = torch.cat([base, base]) + 0.7 * noise
                z = z * (0.5 + 2.0 * torch.rand(2 * n, 1, generator=g, dtype=torch.float64))
                z = torch.tensor(f32(z), dtype=torch.float64, requires_grad=True)
                loss, acc = ntxent(z, tau)
                loss.backward()
                grp = f"case{case}"
                put(f, f"{grp}/z", f32(z))
                put(f, f"{grp}/grad", f32(z.grad))
                put(f, f"{grp}/loss", [loss.item()])
                put(f, f"{grp}/accuracy", [acc.item()])
                put(f, f"{grp}/tau", [tau])
                put(f, f"{grp}/shape", [2 * n, d])
                case += 1
        put(f, "cases", [case])

        # Multi-crop: M views per image (own generator, so the cases above
        # stay as they were). M = 2 checks the form reduces to the above.
        g = torch.Generator().manual_seed(5678)
        case = 0
        for views, n, d in [(2, 4, 8), (3, 2, 4), (4, 4, 8), (6, 8, 16)]:
            for tau in TAUS:
                base = torch.randn(n, d, generator=g, dtype=torch.float64)
                noise = torch.randn(views * n, d, generator=g, dtype=torch.float64)
                z = base.repeat(views, 1) + 0.7 * noise
                z = z * (0.5 + 2.0 * torch.rand(views * n, 1, generator=g, dtype=torch.float64))
                z = torch.tensor(f32(z), dtype=torch.float64, requires_grad=True)
                loss, acc = ntxent_multi(z, views, tau)
                loss.backward()
                grp = f"multi{case}"
                put(f, f"{grp}/z", f32(z))
                put(f, f"{grp}/grad", f32(z.grad))
                put(f, f"{grp}/loss", [loss.item()])
                put(f, f"{grp}/accuracy", [acc.item()])
                put(f, f"{grp}/tau", [tau])
                put(f, f"{grp}/shape", [views, n, d])
                if views == 2:  # the same loss by the 2-view formula
                    ref, _ = ntxent(z.detach(), tau)
                    assert abs(ref.item() - loss.item()) < 1e-12
                case += 1
        put(f, "multi_cases", [case])


def gen_infonce(path):
    g = torch.Generator().manual_seed(4321)
    with h5py.File(path, "w") as f:
        case = 0
        for n, d, kq in [(2, 4, 5), (4, 8, 16), (8, 16, 64)]:
            for tau in TAUS:
                k = torch.randn(n, d, generator=g, dtype=torch.float64)
                q = k + 0.8 * torch.randn(n, d, generator=g, dtype=torch.float64)
                q = q * (0.5 + 2.0 * torch.rand(n, 1, generator=g, dtype=torch.float64))
                queue = F.normalize(torch.randn(kq, d, generator=g, dtype=torch.float64), dim=1)
                queue = torch.tensor(f32(queue), dtype=torch.float64)
                k = torch.tensor(f32(k), dtype=torch.float64)
                q = torch.tensor(f32(q), dtype=torch.float64, requires_grad=True)
                loss, acc, _ = infonce(q, k, queue, tau)
                loss.backward()
                grp = f"case{case}"
                put(f, f"{grp}/q", f32(q))
                put(f, f"{grp}/k", f32(k))
                put(f, f"{grp}/queue", f32(queue))
                put(f, f"{grp}/grad", f32(q.grad))
                put(f, f"{grp}/loss", [loss.item()])
                put(f, f"{grp}/accuracy", [acc.item()])
                put(f, f"{grp}/tau", [tau])
                put(f, f"{grp}/shape", [n, d, kq])
                case += 1
        put(f, "cases", [case])

        # The queue evolving over several steps, MoCo order: logits against
        # the current queue, then enqueue this batch's normalised keys. The
        # batch (3) does not divide K (10), so the pointer wraps mid-batch.
        n, d, kq, steps, tau = 3, 6, 10, 7, 0.2
        queue = F.normalize(torch.randn(kq, d, generator=g, dtype=torch.float64), dim=1)
        queue = torch.tensor(f32(queue), dtype=torch.float64)
        put(f, "steps/queue0", f32(queue))
        put(f, "steps/shape", [n, d, kq, steps])
        put(f, "steps/tau", [tau])
        ptr = 0
        for s in range(steps):
            k = torch.tensor(f32(torch.randn(n, d, generator=g, dtype=torch.float64)),
                             dtype=torch.float64)
            q = k + 0.8 * torch.randn(n, d, generator=g, dtype=torch.float64)
            q = torch.tensor(f32(q), dtype=torch.float64, requires_grad=True)
            loss, _, kn = infonce(q, k, queue.clone(), tau)
            loss.backward()
            put(f, f"steps/q{s}", f32(q))
            put(f, f"steps/k{s}", f32(k))
            put(f, f"steps/loss{s}", [loss.item()])
            put(f, f"steps/grad{s}", f32(q.grad))
            # Stored as float32 in the C queue: round like it does.
            kn32 = torch.tensor(f32(kn), dtype=torch.float64)
            for i in range(n):
                queue[(ptr + i) % kq] = kn32[i]
            ptr = (ptr + n) % kq
            put(f, f"steps/queue{s + 1}", f32(queue))
        put(f, "steps/ptr", [ptr])


def mocov3_ctr(q, k, rank, tau):
    """MoCo v3's ctr (the official moco/builder.py): q the N queries of one
    process, k the keys of every process (gathered, no gradient); query i's
    positive is key rank * N + i; cross-entropy scaled by 2 tau."""
    n = q.shape[0]
    qn = F.normalize(q, dim=1)
    kn = F.normalize(k, dim=1).detach()
    logits = qn @ kn.t() / tau
    labels = torch.arange(n) + n * rank
    loss = F.cross_entropy(logits, labels) * (2 * tau)
    acc = (logits.argmax(dim=1) == labels).double().mean()
    return loss, acc


def gen_mocov3(path):
    """Cases of the symmetric loss ctr(q1, k2) + ctr(q2, k1) on one process
    (rank r of R): q1, q2 (N, D); k1, k2 (R N, D); grads of q1 and q2."""
    g = torch.Generator().manual_seed(8642)
    with h5py.File(path, "w") as f:
        case = 0
        for n, d, ranks, rank in [(2, 4, 1, 0), (4, 8, 1, 0), (3, 6, 2, 1), (8, 16, 4, 2)]:
            for tau in [0.1, 0.2, 1.0]:
                m = ranks * n
                # Keys of two views of the same images, queries near their
                # positives, varied row scales (the loss is scale-invariant,
                # its gradient is not).
                base = torch.randn(m, d, generator=g, dtype=torch.float64)
                k1 = base + 0.5 * torch.randn(m, d, generator=g, dtype=torch.float64)
                k2 = base + 0.5 * torch.randn(m, d, generator=g, dtype=torch.float64)
                mine = base[rank * n:(rank + 1) * n]
                qs = []
                for _ in range(2):
                    q = mine + 0.8 * torch.randn(n, d, generator=g, dtype=torch.float64)
                    q = q * (0.5 + 2.0 * torch.rand(n, 1, generator=g, dtype=torch.float64))
                    qs.append(torch.tensor(f32(q), dtype=torch.float64, requires_grad=True))
                k1 = torch.tensor(f32(k1), dtype=torch.float64)
                k2 = torch.tensor(f32(k2), dtype=torch.float64)
                l1, a1 = mocov3_ctr(qs[0], k2, rank, tau)
                l2, a2 = mocov3_ctr(qs[1], k1, rank, tau)
                (l1 + l2).backward()
                grp = f"case{case}"
                put(f, f"{grp}/q1", f32(qs[0]))
                put(f, f"{grp}/q2", f32(qs[1]))
                put(f, f"{grp}/k1", f32(k1))
                put(f, f"{grp}/k2", f32(k2))
                put(f, f"{grp}/grad1", f32(qs[0].grad))
                put(f, f"{grp}/grad2", f32(qs[1].grad))
                put(f, f"{grp}/loss", [(l1 + l2).item()])
                put(f, f"{grp}/loss1", [l1.item()])
                put(f, f"{grp}/accuracy1", [a1.item()])
                put(f, f"{grp}/accuracy2", [a2.item()])
                put(f, f"{grp}/tau", [tau])
                put(f, f"{grp}/shape", [n, d, ranks, rank])
                case += 1
        put(f, "cases", [case])


def distill(student, teacher, tau):
    """SimCLRv2 eq. 2 (no tau^2): soft cross-entropy, mean over the batch;
    the teacher's probabilities are constants."""
    targets = F.softmax(teacher.detach() / tau, dim=1)
    loss = F.cross_entropy(student / tau, targets)  # probability targets (torch >= 1.10)
    by_hand = -(targets * F.log_softmax(student / tau, dim=1)).sum(dim=1).mean()
    assert torch.allclose(loss, by_hand, rtol=1e-12, atol=1e-12)
    agree = (student.argmax(dim=1) == targets.argmax(dim=1)).sum()
    return loss, agree


def gen_distill(path):
    g = torch.Generator().manual_seed(2468)
    with h5py.File(path, "w") as f:
        case = 0
        for n, k in [(1, 2), (4, 10), (16, 7)]:
            for tau in [0.1, 1.0, 4.0]:
                # A student that half agrees with its teacher, at logit scales
                # where tau matters (confident teacher rows and flat ones).
                teacher = torch.randn(n, k, generator=g, dtype=torch.float64)
                teacher = teacher * (0.2 + 4.0 * torch.rand(n, 1, generator=g, dtype=torch.float64))
                student = 0.5 * teacher + torch.randn(n, k, generator=g, dtype=torch.float64)
                teacher = torch.tensor(f32(teacher), dtype=torch.float64)
                student = torch.tensor(f32(student), dtype=torch.float64, requires_grad=True)
                loss, agree = distill(student, teacher, tau)
                loss.backward()
                grp = f"case{case}"
                put(f, f"{grp}/student", f32(student))
                put(f, f"{grp}/teacher", f32(teacher))
                put(f, f"{grp}/grad", f32(student.grad))
                put(f, f"{grp}/loss", [loss.item()])
                put(f, f"{grp}/agree", [agree.item()])
                put(f, f"{grp}/tau", [tau])
                put(f, f"{grp}/shape", [n, k])
                case += 1
        put(f, "cases", [case])


GENERATORS = {"ntxent": gen_ntxent, "infonce": gen_infonce, "mocov3": gen_mocov3,
              "distill": gen_distill}


def main():
    names = sys.argv[1:] or list(GENERATORS)
    unknown = [n for n in names if n not in GENERATORS]
    if unknown:
        sys.exit(f"unknown fixture {unknown[0]!r} (one of {', '.join(GENERATORS)})")
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    for name in names:
        path = os.path.join(OUT, f"losses_{name}.h5")
        GENERATORS[name](path)
        print("wrote", path)


if __name__ == "__main__":
    main()
