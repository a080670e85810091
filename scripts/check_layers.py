#!/usr/bin/env python3
"""Refuses an #include that runs up the layers (docs/architecture.md).

Usage: check_layers.py SOURCE_ROOT [STAMP]. Scans every .c and .h file of
the library folders; exits 1, naming each file, line and the folder it may
not use, when one includes a header of a folder its library may not link.
The same table is in the folders' meson.build files as link dependencies.
"""
import os
import re
import sys

# folder -> folders whose headers it may include (its own included).
ALLOWED = {
    "src/core": [],
    "data": ["src/core"],
    "augment": ["src/core", "data"],
    "losses": ["src/core"],
    "src/nn": ["src/core"],
    "src/models": ["src/core", "src/nn"],
    "src/optim": ["src/core", "src/nn"],
    "src/io": ["src/core", "src/nn"],
    "src/dist": ["src/core"],
    "src/eval": ["src/core", "data", "augment", "losses", "src/nn", "src/models", "src/optim",
                 "src/io", "src/dist"],
    "src/train": ["src/core", "data", "augment", "losses", "src/nn", "src/models", "src/optim",
                  "src/io", "src/dist", "src/eval"],
    "src/cli": None,  # everything
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def main():
    root = sys.argv[1]
    bad = []
    for folder, allowed in ALLOWED.items():
        path = os.path.join(root, folder)
        if not os.path.isdir(path) or allowed is None:
            continue
        ok = set(allowed) | {folder}
        for name in sorted(os.listdir(path)):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(path, name), encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = os.path.dirname(m.group(1))
                    if target and target not in ok:
                        bad.append(f"{folder}/{name}:{lineno}: includes \"{m.group(1)}\", but "
                                   f"{folder} may only use {', '.join(sorted(ok))}")
    if bad:
        print("layering: an include runs up the layers (docs/architecture.md):", file=sys.stderr)
        for b in bad:
            print("  " + b, file=sys.stderr)
        return 1
    if len(sys.argv) > 2:
        open(sys.argv[2], "w").close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
