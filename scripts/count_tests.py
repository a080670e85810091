#!/usr/bin/python3
"""Totals over meson test logs: each cmocka case counts once; a test binary
that failed without a cmocka verdict (a crash, a sanitizer abort, a timeout)
counts as one failure. Skipped cases are counted too, and each must say why:
a skip is explained when the test printed a line

    SKIP-REASON: <why>        (tests/harness.h: sslc_test_skip)

between cmocka's "[ RUN      ] <test>" and "[  SKIPPED ] <test>" on stdout.
With the environment variable CI set, an unexplained skip counts as a
failure; elsewhere it is listed as a warning. Prints the failures and the
skips, then "N passed, N failed, N skipped" last. Exits non-zero when
anything failed.

Usage: count_tests.py [--check NAME=passed|failed ...] TESTLOG.json ..."""
import json
import os
import re
import sys

RUN = re.compile(r"^\[ RUN      \] (.+)$")
SKIPPED = re.compile(r"^\[  SKIPPED \] (.+)$")
SKIPPED_TOTAL = re.compile(r"^\d+ test\(s\)")
REASON = re.compile(r"^\s*SKIP-REASON: (.*\S)")


def skips(stdout):
    """[(test, reason or None)] for each cmocka case skipped in one log."""
    out, current, reason = [], None, None
    for line in stdout.splitlines():
        m = RUN.match(line)
        if m:
            current, reason = m.group(1), None
            continue
        m = REASON.match(line)
        if m and current is not None:
            reason = m.group(1)
            continue
        m = SKIPPED.match(line)
        if m and not SKIPPED_TOTAL.match(m.group(1)):
            name = m.group(1).strip()
            out.append((name, reason if name == current else None))
            current, reason = None, None
    return out


def main(args):
    ci = bool(os.environ.get("CI"))
    passed = failed = skipped = 0
    failures, skip_lines = [], []
    # --check NAME=passed|failed: a check run outside meson (the main job,
    # the fuzzers) counts as one case.
    paths = []
    while args:
        a = args.pop(0)
        if a == "--check":
            name, _, result = args.pop(0).partition("=")
            if result == "passed":
                passed += 1
            else:
                failed += 1
                failures.append(f"{name} ({result})")
        else:
            paths.append(a)
    for path in paths:
        with open(path) as f:
            for line in f:
                t = json.loads(line)
                stdout, stderr = t.get("stdout") or "", t.get("stderr") or ""
                # meson splits the streams; cmocka prints its verdict on stderr.
                out = stdout + stderr
                p = sum(int(n) for n in re.findall(r"\[  PASSED  \] (\d+) test", out))
                q = sum(int(n) for n in re.findall(r"\[  FAILED  \] (\d+) test", out))
                total = sum(int(n) for n in re.findall(r"\[  SKIPPED \] (\d+) test", out))
                named = skips(stdout)
                # A skip counted in cmocka's summary but not seen on stdout has no reason.
                named += [("(unnamed)", None)] * max(0, total - len(named))
                if t["result"] != "OK" and q == 0:
                    q = 1
                if q:
                    failures.append(f"{t['name']} ({t['result']}, {path})")
                for name, reason in named:
                    if reason is not None:
                        skipped += 1
                        skip_lines.append(f"skipped: {t['name']} {name}: {reason}")
                    elif ci:
                        q += 1
                        failures.append(f"{t['name']} {name} (skipped without a SKIP-REASON "
                                        f"line, and CI is set; {path})")
                    else:
                        skipped += 1
                        skip_lines.append(f"skipped: {t['name']} {name}: no reason given "
                                          "(a failure in CI)")
                passed += p
                failed += q
    for line in skip_lines:
        print(line)
    for name in failures:
        print("failed:", name)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
