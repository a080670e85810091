#!/usr/bin/python3
"""Writes docs/results.md and a PNG plot from scripts/fashion_mnist_table.sh's runs.tsv.

Each line of runs.tsv: row, label fraction ("-" for pretraining), subset seed
("-" when none), wall seconds, the result JSON file the command wrote with
--results ("-" if none), the command, and the hash of the checkpoints it read.
(Lines of the older five-column form, without seed and hash, are read as seed
0.) The markdown holds one table (top-1 % on the 10k test images; mean ±
standard deviation over the subset seeds where there are several), the
compute each figure cost, and under them every figure with the command that
made it and its wall time.

    /usr/bin/python3 scripts/plot_results.py --runs runs/table/runs.tsv \
        --doc docs/results.md --png docs/results.png --budget 30
"""
import argparse
import json
import math
import os

ANCHORS = [
    ("raw pixels, logistic regression", "77.9", "82.7", "84.7"),
    ("random-init ResNet-18 (CIFAR stem, half width), linear probe", "—", "78.4", "81.1"),
    ("PyTorch SimCLR, same encoder, 30-minute 2-core budget (3.3 epochs), linear probe",
     "78.2", "84.2", "86.4"),
    ("supervised from scratch, same encoder (4 / 8 / 12 minutes)", "80.9", "90.1", "90.8"),
]


def fmt_frac(f):
    return "%g%%" % (100 * float(f))


def fmt_wall(s):
    s = float(s)
    return "%d:%02d" % (s // 60, s % 60) if s >= 60 else "%.0f s" % s


def load(path):
    runs = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 5:
                row, frac, wall, res, cmd = parts
                seed, digest = ("-" if frac == "-" else "0"), "-"
            elif len(parts) >= 7:
                row, frac, seed, wall, res, cmd, digest = parts[:7]
            else:
                continue
            result = None
            if res != "-" and os.path.exists(res):
                with open(res) as rf:
                    result = json.loads(rf.readline())
            runs.append({"row": row, "frac": frac, "seed": seed, "wall": float(wall),
                         "result": result, "cmd": cmd, "hash": digest})
    return runs


def mean_sd(xs):
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, None
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def pretrain_minutes(runs, row):
    """Minutes of the pretraining a row's figures stand on (0: none)."""
    method = row.split(",")[0]
    for r in runs:
        if r["frac"] == "-" and r["row"].split(" ")[0] == method:
            return r["wall"] / 60
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--doc", required=True)
    ap.add_argument("--png", required=True)
    ap.add_argument("--budget", default="30")
    ap.add_argument("--width", default="16")
    ap.add_argument("--batch", default="256")
    ap.add_argument("--encoder", default="",
                    help="the encoder as the text names it (default: ResNet-18, CIFAR stem, --width)")
    ap.add_argument("--preamble", default="", help="markdown file inserted before the table")
    ap.add_argument("--notes", default="", help="markdown file appended after the table")
    a = ap.parse_args()
    runs = load(a.runs)
    fracs = []
    rows = []
    for r in runs:
        if r["frac"] != "-" and r["frac"] not in fracs:
            fracs.append(r["frac"])
        if r["frac"] != "-" and r["row"] not in rows:
            rows.append(r["row"])
    fracs.sort(key=float)
    cell = {}  # (row, frac) -> the runs of its seeds
    for r in runs:
        if r["result"]:
            cell.setdefault((r["row"], r["frac"]), []).append(r)
    seeds = sorted({r["seed"] for r in runs if r["frac"] not in ("-", "1")})
    out = []
    out.append("# Fashion-MNIST results\n")
    if a.preamble and os.path.exists(a.preamble):
        out.append(open(a.preamble).read().rstrip() + "\n")
    out.append("Pretraining budget: **%s minutes per method** on this machine (2 cores shared), "
               "%s, batch %s. Top-1 %% on the 10k test "
               "images; class-balanced label subsets; below 100%% of the labels, mean ± standard "
               "deviation over the subset seeds %s (pretraining is one run per method).\n"
               % (a.budget, a.encoder or "ResNet-18 with the CIFAR stem at width %s" % a.width,
                  a.batch, ", ".join(seeds) or "0"))
    out.append("| method | " + " | ".join(fmt_frac(f) for f in fracs) + " |")
    out.append("|---|" + "---|" * len(fracs))
    notes = []
    cost = []
    n = 0
    for row in rows:
        cells = []
        minutes = []
        for f in fracs:
            rs = cell.get((row, f))
            if not rs:
                cells.append("—")
                minutes.append("—")
                continue
            refs = []
            for r in rs:
                n += 1
                refs.append(str(n))
                notes.append("[%d] %s, %s, seed %s: top-1 %.2f%%, top-5 %.2f%%, wall %s: `%s`" % (
                    n, row, fmt_frac(f), r["seed"], 100 * r["result"]["top1"],
                    100 * r["result"].get("top5", float("nan")), fmt_wall(r["wall"]), r["cmd"]))
            m, sd = mean_sd([100 * r["result"]["top1"] for r in rs])
            text = "%.1f" % m if sd is None else "%.1f ± %.1f" % (m, sd)
            cells.append("%s [%s]" % (text, ",".join(refs) if len(refs) < 3 else
                                      "%s-%s" % (refs[0], refs[-1])))
            # One figure's compute: its pretraining, plus the fine-tuning its
            # teacher took (distilled rows), plus its own mean wall time.
            own = sum(r["wall"] for r in rs) / len(rs) / 60
            teacher = 0.0
            if "distilled" in row:
                method = row.split(",")[0]
                t = [x for (rw, fr), xs in cell.items() for x in xs if fr == f and
                     rw.startswith(method + ", fine-tuned") and "distilled" not in rw]
                teacher = sum(x["wall"] for x in t) / len(t) / 60 if t else 0.0
            minutes.append("%.0f" % (pretrain_minutes(runs, row) + teacher + own))
        out.append("| %s | %s |" % (row, " | ".join(cells)))
        cost.append("| %s | %s |" % (row, " | ".join(minutes)))
    out.append("")
    out.append("Compute per figure, in minutes of this machine: the pretraining it stands on, "
               "the fine-tuning of the teacher (distilled rows) and its own wall time (mean over "
               "the seeds):\n")
    out.append("| method | " + " | ".join(fmt_frac(f) for f in fracs) + " |")
    out.append("|---|" + "---|" * len(fracs))
    out.extend(cost)
    out.append("")
    # Fine-tuning modes: what trains, and the memory it took (finetune's
    # results lines carry both).
    peft = [row for row in rows if any("trainable_params" in r["result"]
                                       for f in fracs for r in cell.get((row, f), []))]
    if peft:
        out.append("Fine-tuning: trainable parameters (classifier included) and peak resident "
                   "memory of the process (largest over the seeds):\n")
        out.append("| method | trainable | " +
                   " | ".join("peak RSS, %s" % fmt_frac(f) for f in fracs) + " |")
        out.append("|---|---|" + "---|" * len(fracs))
        for row in peft:
            rs = [r for f in fracs for r in cell.get((row, f), [])]
            mem = []
            for f in fracs:
                v = [r["result"]["peak_rss_mib"] for r in cell.get((row, f), [])
                     if "peak_rss_mib" in r["result"]]
                mem.append("%.0f MiB" % max(v) if v else "—")
            n_train = next(r["result"]["trainable_params"] for r in rs
                           if "trainable_params" in r["result"])
            out.append("| %s | %s | %s |" % (row, "{:,}".format(n_train), " | ".join(mem)))
        out.append("")
    out.append("Anchors measured with PyTorch on this machine, same protocol (from issue 7):\n")
    out.append("| method | 1% | 10% | 100% |")
    out.append("|---|---|---|---|")
    for anchor in ANCHORS:
        out.append("| " + " | ".join(anchor) + " |")
    out.append("")
    out.append("![accuracy against label fraction](%s)\n" % os.path.relpath(
        a.png, os.path.dirname(os.path.abspath(a.doc))))
    pre = [r for r in runs if r["frac"] == "-"]
    if pre:
        out.append("Pretraining runs (no labels):\n")
        for r in pre:
            out.append("- %s, wall %s: `%s`" % (r["row"], fmt_wall(r["wall"]), r["cmd"]))
        out.append("")
    out.append("How each figure was made (wall time includes loading and feature extraction):\n")
    out.extend("- " + x for x in notes)
    out.append("")
    if a.notes and os.path.exists(a.notes):
        out.append(open(a.notes).read().rstrip() + "\n")
    with open(a.doc, "w") as f:
        f.write("\n".join(out))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        have = [f for f in fracs if (row, f) in cell]
        stats = [mean_sd([100 * r["result"]["top1"] for r in cell[(row, f)]]) for f in have]
        ax.errorbar([100 * float(f) for f in have], [m for m, _ in stats],
                    yerr=[sd or 0.0 for _, sd in stats], marker="o", capsize=3, label=row)
    ax.set_xscale("log")
    ax.set_xlabel("labelled training images (%)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title("Fashion-MNIST, %s-minute pretraining" % a.budget)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)
    print("wrote", a.doc, "and", a.png)


if __name__ == "__main__":
    main()
