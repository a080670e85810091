#!/usr/bin/python3
"""Totals over meson test logs: each cmocka case counts once; a test binary
that failed without a cmocka verdict (a crash, a sanitizer abort, a timeout)
counts as one failure. Prints the failures, then "N passed, N failed" last.
Exits non-zero when anything failed."""
import json
import re
import sys

passed = failed = 0
failures = []
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            # meson splits the streams; cmocka prints its verdict on stderr.
            out = (t.get("stdout") or "") + (t.get("stderr") or "")
            p = sum(int(n) for n in re.findall(r"\[  PASSED  \] (\d+) test", out))
            q = sum(int(n) for n in re.findall(r"\[  FAILED  \] (\d+) test", out))
            if t["result"] != "OK" and q == 0:
                q = 1
            if q:
                failures.append(f"{t['name']} ({t['result']}, {path})")
            passed += p
            failed += q
for name in failures:
    print("failed:", name)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
