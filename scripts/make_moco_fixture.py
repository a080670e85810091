#!/usr/bin/python3
"""Writes tests/fixtures/train_moco.h5: two MoCo training steps in PyTorch
(float64) on a tiny encoder, for tests/train/test_moco_step.c to compare
with sslc's own step (src/train/moco.c through the training loop).

The model is a transcription of MoCo's official builder
(facebookresearch/moco, moco/builder.py): momentum update of the key
encoder's parameters (not its buffers) before the keys are computed,
shuffle-BN, normalised keys, logits [q.k+, q.queue] / T with the positive
first, cross-entropy against label 0, enqueue after the logits. It runs on
one process the way sslc does (docs/training.md, "Shuffle-BN on one
machine"), where the official code spreads the batch over GPUs:

- the key images are permuted and run through the key encoder in
  `shuffle_groups` equal slices, each with its own batch statistics, as
  `_batch_shuffle_ddp` gives GPU g slice g; the slices run one after the
  other through one module, and its running statistics move once per step
  towards the mean of the slices' statistics, as the CIFAR demo's
  SplitBatchNorm does (and as sslc does on one process or several);
- the permutation is sslc's, drawn from its counter-based RNG (ported
  below) at (seed, 0x5b0ff1e, step), instead of torch.randperm;
- the query encoder sees the whole batch (on GPUs each slice alone).

The symmetric loss follows MoCo v3 / the CIFAR demo (moco_cifar10_demo:
contrastive_loss(im1, im2) + contrastive_loss(im2, im1), both key sets
enqueued as cat([k1, k2])) with sslc's choices where they differ: the two
losses are averaged, not summed; both views go through the query encoder
as one batch of 2B; the 2B key images share one permutation and one set of
shuffle groups. The momentum can follow MoCo v3's cosine ramp to 1
(adjust_moco_momentum, per step: m = 1 - (1 - m0) (1 + cos(pi step / T)) / 2).
The optimizer is torch.optim.SGD (momentum 0.9, weight decay on every
tensor) at sslc's learning-rate schedule (cosine per step, no warmup).

The encoder is torchvision's ResNet-18 as scripts/sslc_torch.py builds it
(width 2, one input channel, CIFAR stem), so its tensor names are sslc's;
the head is MoCo v2's (`mlp=True`: fc becomes Linear-ReLU-Linear), stored
under sslc's names ("0.weight", ... for fc.0.weight, ...). Activations are
stored NHWC (sslc's layout), weights in PyTorch's. Fixed seeds: rerunning
gives the same numbers.

    /usr/bin/python3 scripts/make_moco_fixture.py
"""
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from sslc_torch import build_resnet  # noqa: E402

OUT = os.path.join(HERE, "..", "tests", "fixtures", "train_moco.h5")

# 16x16 rather than 8x8: at 8x8, layer4 is 1x1 and each shuffle group's batch
# norm sees 2 values, so float32 and float64 part by 1e-3 after one step (in
# PyTorch alone); at 16x16 they agree to ~1e-6. Seed 16: its shuffles are
# not involutions and mix the groups (seeds 1-15 each have a step whose
# shuffle keeps the groups, or undoes itself).
CONFIG = dict(depth=18, in_channels=1, width=2, image=16, batch=4, queue=16, dim=8,
              shuffle_groups=2, tau=0.2, lr=0.5, sgd_momentum=0.9, weight_decay=5e-4,
              total_steps=4, seed=16)
STEPS = 2
MARGIN = 2e-5  # the least |ReLU input| on the query side (float32 rounding: ~1e-6)
VIEW_SEED = 20  # the views whose ReLU inputs keep farthest from 0 among seeds 1-24
CASES = {  # name: (symmetric, momentum, momentum_cosine)
    "plain": (False, 0.9, False),
    "symmetric": (True, 0.9, False),
    "cosine": (False, 0.5, True),
}

# ---- sslc's counter-based RNG (src/core/rng.c), for the shuffle-BN permutation

MASK = (1 << 64) - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


class Rng:
    def __init__(self, seed, a=0, b=0, c=0, d=0):
        k = mix64((seed + 0x9E3779B97F4A7C15) & MASK)
        k = mix64(k ^ ((a + 0x632BE59BD9B4E019) & MASK))
        k = mix64(k ^ ((b + (0x85157AF5 * 0x9E3779B97F4A7C15 & MASK)) & MASK))
        k = mix64(k ^ ((c + 0xD6E8FEB86659FD93) & MASK))
        k = mix64(k ^ ((d + 0xA0761D6478BD642F) & MASK))
        self.key, self.counter = k, 0

    def u64(self):
        self.counter += 1
        return mix64((self.key + self.counter * 0x9E3779B97F4A7C15) & MASK)

    def below(self, n):
        limit = MASK - MASK % n
        while True:
            x = self.u64()
            if x < limit:
                return x % n

    def permutation(self, n):
        perm = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            perm[i], perm[j] = perm[j], perm[i]
        return perm


def shuffle_permutation(seed, step, n):
    """sslc's shuffle-BN permutation at a step (src/train/moco.c, compute_keys)."""
    return Rng(seed, 0x5B0FF1E, step).permutation(n)


# ---- the model: MoCo's builder on one process ----------------------------------------


def base_encoder(num_classes):
    """torchvision's ResNet-18 at sslc's tiny configuration, fc -> num_classes."""
    c = CONFIG
    net = build_resnet("resnet18", c["in_channels"], c["width"], cifar_stem=True)
    net.fc = nn.Linear(8 * c["width"], num_classes)
    return net


class MoCo(nn.Module):
    """moco/builder.py's MoCo, with the one-process shuffle-BN described above."""

    def __init__(self, dim, K, m, T, mlp=True):
        super().__init__()
        self.K, self.m, self.T = K, m, T
        self.encoder_q = base_encoder(num_classes=dim)
        self.encoder_k = base_encoder(num_classes=dim)
        if mlp:  # hack: brute-force replacement (as the official code)
            dim_mlp = self.encoder_q.fc.weight.shape[1]
            self.encoder_q.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(),
                                              self.encoder_q.fc)
            self.encoder_k.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(),
                                              self.encoder_k.fc)
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data.copy_(param_q.data)  # initialize
            param_k.requires_grad = False  # not update by gradient
        self.register_buffer("queue", F.normalize(torch.randn(dim, K), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update_key_encoder(self):
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data = param_k.data * self.m + param_q.data * (1.0 - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys):
        batch_size = keys.shape[0]
        ptr = int(self.queue_ptr)
        assert self.K % batch_size == 0  # for simplicity
        self.queue[:, ptr:ptr + batch_size] = keys.T
        self.queue_ptr[0] = (ptr + batch_size) % self.K

    @torch.no_grad()
    def _keys(self, im_k, perm, groups):
        """_batch_shuffle_ddp, encoder_k on each GPU's slice, normalise,
        _batch_unshuffle_ddp: with the slices run in turn on one process."""
        idx_shuffle = torch.tensor(perm)
        idx_unshuffle = torch.argsort(idx_shuffle)
        x = im_k[idx_shuffle]
        slices = x.chunk(groups)
        bns = [m for m in self.encoder_k.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        start = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
                 for m in bns]
        ends, keys = [], []
        for s in slices:  # each slice from the same running statistics ...
            for m, (rm, rv, nb) in zip(bns, start):
                m.running_mean.copy_(rm), m.running_var.copy_(rv), m.num_batches_tracked.copy_(nb)
            keys.append(F.normalize(self.encoder_k(s), dim=1))
            ends.append([(m.running_mean.clone(), m.running_var.clone()) for m in bns])
        for i, (m, (rm, rv, nb)) in enumerate(zip(bns, start)):  # ... then their mean
            m.running_mean.copy_(torch.stack([e[i][0] for e in ends]).mean(0))
            m.running_var.copy_(torch.stack([e[i][1] for e in ends]).mean(0))
            m.num_batches_tracked.copy_(nb + 1)
        k = torch.cat(keys)
        return k[idx_unshuffle]

    def _logits(self, q, k):
        l_pos = torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", [q, self.queue.clone().detach()])
        return torch.cat([l_pos, l_neg], dim=1) / self.T

    def forward(self, im_q, im_k, perm, groups, symmetric):
        """Returns logits (queries x (1+K)), the mean loss, the raw queries and
        the keys (batch order), and enqueues the keys."""
        with torch.no_grad():
            self._momentum_update_key_encoder()
        if not symmetric:
            q_raw = self.encoder_q(im_q)
            q = F.normalize(q_raw, dim=1)
            k = self._keys(im_k, perm, groups)
            logits = self._logits(q, k)
            loss = F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long))
        else:
            # im_q = view 1, im_k = view 2; sslc: both views as one query batch,
            # the 2B key images under one permutation, the two losses averaged.
            B = im_q.shape[0]
            q_raw = self.encoder_q(torch.cat([im_q, im_k]))
            q = F.normalize(q_raw, dim=1)
            k = self._keys(torch.cat([im_q, im_k]), perm, groups)  # [k1, k2]
            l12 = self._logits(q[:B], k[B:])
            l21 = self._logits(q[B:], k[:B])
            zeros = torch.zeros(B, dtype=torch.long)
            loss = 0.5 * (F.cross_entropy(l12, zeros) + F.cross_entropy(l21, zeros))
            logits = torch.cat([l12, l21])
        self._dequeue_and_enqueue(k)
        return logits, loss, q_raw, k


# ---- the fixture ------------------------------------------------------------------------


def f32(t):
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def nhwc(t):
    return f32(t.permute(0, 2, 3, 1))


def init_model(seed):
    torch.manual_seed(seed)
    c = CONFIG
    model = MoCo(c["dim"], c["queue"], 0.0, c["tau"])
    with torch.no_grad():  # non-trivial batch-norm affine parameters; running stats fresh
        for mod in model.encoder_q.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0.0, 0.2)
        for param_q, param_k in zip(model.encoder_q.parameters(), model.encoder_k.parameters()):
            param_k.copy_(param_q)  # the key encoder starts as a copy again
    # Built in float32, so the stored values are exactly what sslc starts from;
    # the reference runs in float64.
    return model.double()


def names_attr(names):
    """A space-separated list as a fixed-length ASCII attribute (plain to read from C)."""
    return np.bytes_(" ".join(names).encode())


def put(g, name, data):
    g.create_dataset(name, data=data)


def write_part(g, module, what, link_same_as=None):
    """An encoder's tensors as flat float32 arrays in parameter order, with
    their names: encoder/values, encoder/buffers (every tensor but fc's) and
    projector/values (fc.*, under sslc's names "0.weight", ...); gradients
    instead of values when what == "grads"."""
    for part in ("encoder", "projector"):
        head = part == "projector"
        keep = lambda n, head=head: n.startswith("fc.") == head  # noqa: E731
        rename = lambda n, head=head: n[3:] if head else n  # noqa: E731
        params = [(n, p) for n, p in module.named_parameters() if keep(n)]
        values = [p.grad if what == "grads" else p for _, p in params]
        pg = g.create_group(part)
        flat = f32(torch.cat([v.detach().double().reshape(-1) for v in values]))
        same = link_same_as[part]["values"] if link_same_as is not None else None
        if same is not None and np.array_equal(flat, same[()]):
            pg["values"] = same  # a hard link
        else:
            put(pg, "grads" if what == "grads" else "values", flat)
        pg.attrs["params"] = names_attr([rename(n) for n, _ in params])
        buffers = [(n, b) for n, b in module.named_buffers() if keep(n)]
        if what != "grads" and buffers:
            put(pg, "buffers", f32(torch.cat([b.double().reshape(-1) for _, b in buffers])))
            pg.attrs["buffers"] = names_attr([rename(n) for n, _ in buffers])


def write_key(f, st, encoder_k):
    """The key encoder after the step's momentum update. After the first
    step it still equals the initial weights (it starts as a copy of the
    query encoder, and m k + (1 - m) q = q): those parameters are then a
    hard link to init's, checked equal first, so the file holds them once."""
    g = st.create_group("key")
    write_part(g, encoder_k, "values", link_same_as=f["init"])


class ReluMargin:
    """The smallest |input| of any ReLU of the query encoder and head: a unit
    within float32 rounding of 0 could take the other side in sslc, and the
    gradients through it would differ wholesale. Views are drawn so it is not."""

    def __init__(self, module):
        self.least = math.inf
        for mod in module.modules():
            if isinstance(mod, nn.ReLU):
                mod.register_forward_pre_hook(self.hook)

    def hook(self, _module, inputs):
        if torch.is_grad_enabled():  # the query side (keys are computed without grad)
            self.least = min(self.least, inputs[0].detach().abs().min().item())


def main():
    c = CONFIG
    torch.use_deterministic_algorithms(True)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    gen = torch.Generator().manual_seed(VIEW_SEED)
    B, S = c["batch"], c["image"]
    views = [torch.randn(2 * B, c["in_channels"], S, S, generator=gen).float().double()
             for _ in range(STEPS)]
    with h5py.File(OUT, "w", libver="latest") as f:
        for k, v in c.items():
            f.attrs[k] = v
        f.attrs["steps"] = STEPS
        base = init_model(seed=5)
        write_part(f.create_group("init"), base.encoder_q, "values")
        put(f, "init/queue", f32(base.queue.T))  # sslc: (K, D)
        for s in range(STEPS):
            put(f, f"views/step{s}", nhwc(views[s]))  # view 1 rows, then view 2
        for case, (symmetric, m0, cosine) in CASES.items():
            model = init_model(seed=5)
            g = f.create_group(case)
            g.attrs["symmetric"] = int(symmetric)
            g.attrs["momentum"] = m0
            g.attrs["momentum_cosine"] = int(cosine)
            margin = ReluMargin(model.encoder_q)
            params = list(model.encoder_q.parameters())
            opt = torch.optim.SGD(params, lr=c["lr"], momentum=c["sgd_momentum"],
                                  weight_decay=c["weight_decay"])
            n_key = 2 * B if symmetric else B
            for s in range(STEPS):
                T = c["total_steps"]
                # sslc_moco_momentum and sslc_schedule_lr at position s of T steps
                ramp = 0.5 * (1.0 + math.cos(math.pi * s / T))
                model.m = 1.0 - (1.0 - m0) * ramp if cosine else m0
                lr = c["lr"] * 0.5 * (1.0 + math.cos(math.pi * s / T))
                for group in opt.param_groups:
                    group["lr"] = lr
                perm = shuffle_permutation(c["seed"], s, n_key)
                opt.zero_grad()
                x = views[s]
                logits, loss, q, k = model(x[:B], x[B:], perm, c["shuffle_groups"], symmetric)
                loss.backward()
                st = g.create_group(f"step{s}")
                st.attrs["momentum"] = model.m
                st.attrs["lr"] = lr
                st.attrs["perm"] = np.array(perm, dtype=np.int64)
                st.attrs["loss"] = loss.item()
                put(st, "queries", f32(q))
                put(st, "keys", f32(k))
                put(st, "logits", f32(logits))
                write_part(st.create_group("grads"), model.encoder_q, "grads")
                write_key(f, st, model.encoder_k)
                put(st, "queue", f32(model.queue.T))
                st.attrs["queue_ptr"] = int(model.queue_ptr)
                opt.step()
            losses = [round(float(g[f"step{s}"].attrs["loss"]), 4) for s in range(STEPS)]
            print(f"{case}: losses {losses}, ReLU inputs at least {margin.least:.2g} from 0")
            assert margin.least > MARGIN, "a ReLU input sits at its kink: choose other views"
            if case == "plain":  # the query encoder after the loop's second update (lr(1))
                write_part(g.create_group("final"), model.encoder_q, "values")
    print(f"wrote {OUT} ({os.path.getsize(OUT) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
