#!/usr/bin/env python3
"""instructions.py - `make bench-instructions`: what the preload costs per
call in instructions and locked instructions, from valgrind's callgrind.

  instructions.py [--build DIR]

Wall-clock figures move with the machine's load; instruction counts do not.
Each configuration runs the bench's ping twice under callgrind (N and N +
DELTA iterations) and prints the difference per iteration, so start-up and
exit cancel out. Locked: instructions with a lock prefix (or an xchg with
memory) executed in libwouldblock.so, found by address in the disassembly.
Under valgrind the kernel's membarrier(2) is not available, so the reader
bracket takes its fenced form (one mfence, not a locked instruction, not
counted here).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

N, DELTA = 2000, 10000
WARM = 1.1  # the ping warms up with n/10 more iterations

CONFIGS = [
    # label, ping mode, rules (None: no preload), calls per iteration
    ("plain", "pipe", None, 2),
    ("passthrough", "pipe", "", 2),
    ("armed: all when=1000000000000", "pipe", "all when=1000000000000", 2),
    ("armed: all site=ping when=1000000000000", "pipe", "all site=ping when=1000000000000", 2),
    ("armed: explore-style point (one rule)", "pipe", "explore", 2),
    ("plain", "read-empty", None, 1),
    ("injected: read", "read-empty", "read", 1),
    ("plain", "recv-empty", None, 1),
    ("injected: input", "recv-empty", "input", 1),
]


def locked_offsets(lib):
    dis = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", lib], capture_output=True, text=True, check=True
    ).stdout
    found = set()
    for line in dis.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(.*)", line)
        if m and (m.group(2).startswith("lock") or (m.group(2).startswith("xchg") and "(" in m.group(2))):
            found.add(int(m.group(1), 16))
    return found


def env_for(lib, rules):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("WOULDBLOCK_")}
    if rules is not None:
        env["LD_PRELOAD"] = lib
        if rules:
            env["WOULDBLOCK_RULES"] = rules
    return env


def measure(ping, lib, locked, mode, rules, n):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg")
        p = subprocess.run(
            ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--compress-pos=no",
             "--compress-strings=no", "--callgrind-out-file=" + out, ping, mode, str(n), "--no-pin"],
            env=env_for(lib, rules), capture_output=True, text=True,
        )
        if p.returncode != 0:
            sys.exit("ping %s under callgrind failed: %s" % (mode, p.stderr[-400:]))
        total = lk = 0
        ob, after_calls = "", False
        with open(out) as f:
            for line in f:
                if line.startswith("summary:"):
                    total = int(line.split()[1])
                elif line.startswith("ob="):
                    ob = line.strip()
                elif line.startswith("calls="):
                    after_calls = True  # the next cost line is the callee's, inclusive
                elif line.startswith("0x"):
                    if after_calls:
                        after_calls = False
                        continue
                    parts = line.split()
                    if ob.endswith("/libwouldblock.so") and len(parts) >= 3 and int(parts[0], 16) in locked:
                        lk += int(parts[2])
        return total, lk


def explore_rule(ping, lib, mode):
    """The rule explore would run for the ping's read point, from a recording."""
    with tempfile.TemporaryDirectory() as d:
        rec = os.path.join(d, "rec")
        env = env_for(lib, "")
        env["WOULDBLOCK_RECORD"] = rec
        subprocess.run([ping, mode, "20", "--no-pin"], env=env, capture_output=True, check=True)
        with open(rec) as f:
            for line in f:
                w = line.split(" ", 3)
                if w[0] == "point" and w[2] == "read" and "site=ping+" in w[3]:
                    return "read %s per=process when=1000000000000" % w[3].strip()
    sys.exit("no read point from ping in the recording")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    a = ap.parse_args()
    for tool in ("valgrind", "objdump"):
        if not shutil.which(tool):
            sys.exit("bench-instructions needs %s (apt-get install %s)"
                     % (tool, "valgrind" if tool == "valgrind" else "binutils"))
    lib = os.path.abspath(os.path.join(a.build, "libwouldblock.so"))
    ping = os.path.join(a.build, "bench", "ping")
    locked = locked_offsets(lib)
    plain = {}
    print("| ping | configuration | instructions/call | over plain | locked/call |")
    print("|---|---|---:|---:|---:|")
    for label, mode, rules, per in CONFIGS:
        if rules == "explore":
            rules = explore_rule(ping, lib, mode)
        t0, l0 = measure(ping, lib, locked, mode, rules, N)
        t1, l1 = measure(ping, lib, locked, mode, rules, N + DELTA)
        calls = DELTA * WARM * per
        ir, lk = (t1 - t0) / calls, (l1 - l0) / calls
        if rules is None:
            plain[mode] = ir
        over = "" if rules is None else "%.0f" % (ir - plain[mode])
        print("| %s | %s | %.1f | %s | %.2f |" % (mode, label, ir, over, lk))


if __name__ == "__main__":
    main()
