#!/usr/bin/env python3
"""explore.py - `make bench`'s table for `wouldblock explore`: per example
(and curl against a local `python3 -m http.server`), the runs explore made
beside the naive count (every hit of every point, every fitting action), the
time to the first failing point, and the wall time with --jobs 2.

    python3 tests/bench/explore.py --build DIR [--only REGEX]

Prints a Markdown table; fails only on a broken measurement (explore
crashed or wrote no JSON), never on timing.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# the one built-in scenario whose contract is stricter than Linux's
STRICT = "epoll-strict"
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
import wbexamples as wb  # noqa: E402


def explore(build, argv, timeout=None, options=()):
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        out = os.path.join(tmp, "r.json")
        cmd = [os.path.join(build, "wouldblock"), "explore", "--jobs", "2", "--json", out,
               *options]
        if timeout:
            cmd += ["--timeout", timeout]
        start = time.monotonic()
        p = subprocess.run(cmd + ["--", *argv], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        wall = time.monotonic() - start
        try:
            with open(out) as f:
                return p.returncode, json.load(f), wall, p.stderr
        except (OSError, ValueError):
            return p.returncode, None, wall, p.stderr


def http_server():
    """python3 -m http.server on a free loopback port, serving a 64 KiB file."""
    root = tempfile.mkdtemp(prefix="wb-bench-www-")
    with open(os.path.join(root, "f"), "wb") as f:
        f.write(os.urandom(65536))
    proc = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1",
                             "0"], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    line = proc.stdout.readline()
    m = re.search(r"port (\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"http.server said: {line!r}")
    return proc, root, int(m[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(wb.ROOT, "build"))
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    build = os.path.abspath(args.build)

    subjects = []
    for ex in wb.EXAMPLES:
        # Explore holds a program to what Linux does. epoll-strict's
        # contract is epoll(7)'s, stricter (no edge after a short read):
        # explore takes it from -s, as a user must (README).
        options = ("-s", ex.scenario) if ex.scenario == STRICT else ()
        name = f"{ex.name}_wrong" + (f" (-s {STRICT})" if options else "")
        subjects.append((name, ex.argv(build, "wrong"), "5" if ex.expect == "spin" else None,
                         options))
    subjects.append((wb.ASYNCIO.name, wb.ASYNCIO.argv(build, None), None, ()))
    server = None
    if shutil.which("curl"):
        server, root, port = http_server()
        subjects.append(("curl vs http.server", ["curl", "-s", "-o", "/dev/null",
                                                 f"http://127.0.0.1:{port}/f"], None, ()))
    rows = [("program", "points", "runs", "naive count", "first failing point", "wall (--jobs 2)",
             "exit")]
    broken = []
    try:
        for name, argv, timeout, options in subjects:
            if not re.search(args.only, name):
                continue
            print(f"exploring {name} ...", file=sys.stderr, flush=True)
            rc, r, wall, err = explore(build, argv, timeout, options)
            if r is None:
                if rc == 4:  # the baseline fails: nothing to explore
                    rows.append((name, "-", "-", "-", "baseline fails", f"{wall:.1f} s", "4"))
                    continue
                broken.append(f"{name}: exit {rc}: {err.strip()[-300:]}")
                continue
            first = r["first_failure_seconds"]
            rows.append((name, str(r["explored_points"]), str(r["runs"]), str(r["naive"]),
                         f"{first:.1f} s" if first else "none", f"{wall:.1f} s", str(rc)))
    finally:
        if server:
            server.kill()
            server.wait()
            shutil.rmtree(root, ignore_errors=True)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for b in broken:
        print(f"explore.py: broken measurement: {b}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
