#!/usr/bin/python3
"""Plots a pretraining run's metrics.jsonl: loss, learning rate, throughput
and data wait against the step, and the kNN accuracy when monitored.

  /usr/bin/python3 scripts/plot_run.py RUN_FOLDER [--out curves.png]
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run folder (or its metrics.jsonl)")
    p.add_argument("--out", help="PNG to write (default: RUN/curves.png)")
    a = p.parse_args()
    path = a.run if a.run.endswith(".jsonl") else os.path.join(a.run, "metrics.jsonl")
    rows = [json.loads(line) for line in open(path) if line.strip()]
    steps = [r for r in rows if "loss" in r]
    knn = [r for r in rows if "knn_top1" in r]
    if not steps:
        raise SystemExit(f"{path}: no step records")
    fig, ax = plt.subplots(2, 2, figsize=(10, 7))
    x = [r["step"] for r in steps]
    ax[0][0].plot(x, [r["loss"] for r in steps])
    ax[0][0].set_title("contrastive loss")
    ax[0][1].plot(x, [r["lr"] for r in steps])
    ax[0][1].set_title("learning rate")
    ax[1][0].plot(x, [r["pairs_per_s"] for r in steps], label="pairs/s")
    ax[1][0].set_title("throughput (pairs/s)")
    ax2 = ax[1][0].twinx()
    ax2.plot(x, [100 * r["data_wait"] for r in steps], color="tab:red")
    ax2.set_ylabel("waiting for data (%)", color="tab:red")
    if knn:
        ax[1][1].plot([r["step"] for r in knn], [100 * r["knn_top1"] for r in knn], marker="o")
    ax[1][1].set_title("kNN top-1 (%)")
    for a_ in ax.flat:
        a_.set_xlabel("step")
    fig.tight_layout()
    out = a.out or os.path.join(os.path.dirname(path), "curves.png")
    fig.savefig(out, dpi=100)
    print("wrote", out)


if __name__ == "__main__":
    main()
