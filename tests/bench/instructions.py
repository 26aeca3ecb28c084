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

A second table: the distinct 4 KiB pages a preload's own instructions
touch (code and data, the stack left out) in one call that reaches the
kernel (passed through, or armed: counted by a rule that does not fire), before
and after the system call, and between two system calls (after one call and
before the next: a page touched on both sides counts once; a page the real
function reads too, libc's single-threaded flag, is not counted), from valgrind's
lackey; for this library and for tests/bench/floor.c, the least any preload
touches (2 before, 0 after), and the floor with FLOOR_PAGES=0 and 4. Where the
kernel isolates page tables without PCID every system call empties the TLB,
and each page between two system calls is a TLB miss: on such a machine a
page weighs more than tens of instructions.
"""

import argparse
import collections
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

N, DELTA = 2000, 10000
WARM = 1.1  # the ping warms up with n/10 more iterations

CONFIGS = [
    # label, ping mode, rules (None: no preload; FLOOR: tests/bench/floor.c
    # preloaded instead), calls per iteration
    ("plain", "pipe", None, 2),
    ("floor: a preload that only forwards", "pipe", "FLOOR", 2),
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


def env_for(lib, rules, extra=None):
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith(("WOULDBLOCK_", "FLOOR_"))}
    if rules is not None:
        env["LD_PRELOAD"] = lib
        if rules:
            env["WOULDBLOCK_RULES"] = rules
    env.update(extra or {})
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


PAGE = 12  # log2 of the page size
STACK_FROM = 0x1000000000  # valgrind puts the client's stack above this


def symbol_offsets(lib):
    out = subprocess.run(["nm", lib], capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        p = line.split()
        if len(p) == 3:
            syms[p[2]] = int(p[0], 16)
    return syms


def mapped_size(lib):
    """The extent of the library's loaded segments, .bss included."""
    out = subprocess.run(["readelf", "-lW", lib], capture_output=True, text=True, check=True).stdout
    ends = [int(p[2], 16) + int(p[5], 16) for p in (l.split() for l in out.splitlines())
            if p and p[0] == "LOAD"]
    if not ends:
        sys.exit("readelf: no LOAD segment in %s" % lib)
    return max(ends)


# The preloads whose pages are counted: how each is found in the trace (the
# functions whose entries must all have run at the same load address: the
# ping's wrappers and one of the preload's own), and its environment.
PRELOADS = [
    # label, library (in the build directory), its own function, environment
    ("passthrough", "libwouldblock.so", "real_bind", {}),
    # as make bench runs it: the counts in a status file (a mapping of its own)
    ("passthrough, with a report", "libwouldblock.so", "real_bind", {"WOULDBLOCK_REPORT": "REPORT"}),
    # armed: every call counted by a rule that never fires, as make bench's armed rows
    ("armed `all when=1000000000000`, with a report", "libwouldblock.so", "real_bind",
     {"WOULDBLOCK_REPORT": "REPORT", "WOULDBLOCK_RULES": "all when=1000000000000"}),
    ("armed `all site=ping when=1000000000000`, with a report", "libwouldblock.so", "real_bind",
     {"WOULDBLOCK_REPORT": "REPORT", "WOULDBLOCK_RULES": "all site=ping when=1000000000000"}),
    ("floor: a preload that only forwards", "bench/libfloor.so", "floor_init", {}),
    ("floor, returning through its code (FLOOR_PAGES=0)", "bench/libfloor.so", "floor_init",
     {"FLOOR_PAGES": "0"}),
    ("floor, then touches 4 pages", "bench/libfloor.so", "floor_init", {"FLOOR_PAGES": "4"}),
]


def pages_per_call(ping, lib, mode, wrappers, anchor, extra_env):
    """(before, after, between): distinct pages the library touches in one
    passed-through call of the ping's steady state, before and after the real
    function ran, and from one call's return to the next call's system call."""
    syms = symbol_offsets(lib)
    size = mapped_size(lib)
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "lackey")
        extra_env = {k: os.path.join(d, "report.json") if v == "REPORT" else v
                     for k, v in extra_env.items()}
        p = subprocess.run(
            ["valgrind", "--tool=lackey", "--trace-mem=yes", "--log-file=" + log, ping, mode,
             "3000", "--no-pin"], env=env_for(lib, "", extra_env), capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit("ping %s under lackey failed: %s" % (mode, p.stderr[-400:]))
        with open(log) as f:
            trace = [line.split() for line in f if line[:2] in ("I ", " L", " S", " M")]
    addr = [int(t[1].split(",")[0], 16) for t in trace]
    executed = collections.Counter(a for t, a in zip(trace, addr) if t[0] == "I")
    # the library's load address: where its wrappers' and its own function's
    # entries were executed; of such places (the loader's code can line up
    # by chance), the one whose wrapper entry ran most
    bases = [x - syms[wrappers[0]] for x in executed
             if (x - syms[wrappers[0]]) % (1 << PAGE) == 0 and
             all(x - syms[wrappers[0]] + syms[n] in executed
                 for n in wrappers[1:] + [anchor])]
    base = max(bases, key=lambda b: executed[b + syms[wrappers[0]]], default=None)
    if base is None:
        sys.exit("lackey: the wrappers of %s were not found in the trace" % lib)
    entries = {base + syms[n] for n in wrappers}
    calls, cur, inside, after = [], None, False, False
    for t, a in zip(trace, addr):
        if t[0] == "I":
            if a in entries:
                cur = (set(), set(), set())
                calls.append(cur)
                after = False
            inside = base <= a < base + size
            if cur is None:
                continue
            if not inside:
                after = True  # in the real function (and the kernel)
                continue
            cur[after].add(a >> PAGE)
        elif cur is not None and a < STACK_FROM:
            if inside:
                cur[after].add(a >> PAGE)
            else:
                # the real function's own data: a page a wrapper reads before
                # it too (libc's single-threaded flag) is one miss for both
                cur[2].add(a >> PAGE)
    half = calls[len(calls) // 2:]
    steady = collections.Counter(
        (len(b - real), len(a), len(a | (nb - nreal)))
        for (b, a, real), (nb, _, nreal) in zip(half, half[1:]))
    return steady.most_common(1)[0][0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    a = ap.parse_args()
    for tool in ("valgrind", "objdump", "readelf", "nm"):
        if not shutil.which(tool):
            sys.exit("bench-instructions needs %s (apt-get install %s)"
                     % (tool, "valgrind" if tool == "valgrind" else "binutils"))
    lib = os.path.abspath(os.path.join(a.build, "libwouldblock.so"))
    ping = os.path.join(a.build, "bench", "ping")
    floor = os.path.abspath(os.path.join(a.build, "bench", "libfloor.so"))
    locked = locked_offsets(lib)
    plain = {}
    print("| ping | configuration | instructions/call | over plain | locked/call |")
    print("|---|---|---:|---:|---:|")
    for label, mode, rules, per in CONFIGS:
        preload = lib
        if rules == "explore":
            rules = explore_rule(ping, lib, mode)
        elif rules == "FLOOR":
            preload, rules = floor, ""
        t0, l0 = measure(ping, preload, locked, mode, rules, N)
        t1, l1 = measure(ping, preload, locked, mode, rules, N + DELTA)
        calls = DELTA * WARM * per
        ir, lk = (t1 - t0) / calls, (l1 - l0) / calls
        if rules is None:
            plain[mode] = ir
        over = "" if rules is None else "%.0f" % (ir - plain[mode])
        print("| %s | %s | %.1f | %s | %.2f |" % (mode, label, ir, over, lk))
    print()
    print("| ping | preload | pages/call before the system call | after "
          "| between two system calls |")
    print("|---|---|---:|---:|---:|")
    for mode, wrappers in (("pipe", ["write", "read"]), ("socket", ["send", "recv"])):
        for label, name, anchor, extra in PRELOADS:
            path = os.path.abspath(os.path.join(a.build, name))
            counts = pages_per_call(ping, path, mode, wrappers, anchor, extra)
            print("| %s | %s | %d | %d | %d |" % ((mode, label) + counts))


if __name__ == "__main__":
    main()
