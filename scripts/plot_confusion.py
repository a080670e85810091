#!/usr/bin/python3
"""Draws a confusion matrix CSV (written by sslc linear-eval / finetune --out DIR)
as a PNG: rows are true classes, columns predictions, cells row-normalised.

    /usr/bin/python3 scripts/plot_confusion.py DIR/confusion.csv confusion.png
"""
import csv
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

FASHION = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Boot"]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        rows = list(csv.reader(f))
    names, counts = rows[0], np.array([[int(v) for v in r] for r in rows[1:]], dtype=float)
    if names == [str(i) for i in range(10)]:  # IDX files carry no class names
        names = FASHION
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    k = len(names)
    fig, ax = plt.subplots(figsize=(1 + 0.6 * k, 1 + 0.55 * k))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, "%d" % counts[i, j], ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(k))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = np.trace(counts) / counts.sum()
    ax.set_title("top-1 %.2f%%" % (100 * acc))
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    print("wrote", sys.argv[2])


if __name__ == "__main__":
    main()
