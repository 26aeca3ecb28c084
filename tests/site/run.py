#!/usr/bin/env python3
"""run.py - site=, recording mode (WOULDBLOCK_RECORD) and the status file
that keeps a killed process's counts, end to end.

siteprobe (siteprobe.c) makes the same read(2) from its executable, from a
library it links, from one it dlopen()s and from a forked child; pyrecord.py
is a small Python program. The cases check which of those calls a site=
rule hits, what the recording lists, and the invariant the runner relies
on: replaying a recorded point's rule with when=K injects at exactly that
hit again.

Prints TAP like tests/e2e/run.py, whose Suite runs the programs.

    run.py --build DIR [-v] [REGEX...]
"""
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import run as e2e  # noqa: E402  (the e2e suite's runner and checks)

from run import Fail, Skip, check, equal  # noqa: E402

CASES = []


def case(name):
    def register(fn):
        CASES.append((name, fn))
        return fn

    return register


# ---- running and reading recordings ----


class Recording:
    """The files one run recorded, one per process, each parsed into
    pid, name, points {id: (call, filters)}, injects [(id, k, action)],
    hits {id: (n, blocking)}."""

    def __init__(self, directory):
        self.procs = []
        for name in sorted(os.listdir(directory)):
            with open(os.path.join(directory, name)) as f:
                self.procs.append(self.parse(f.read(), name))

    @staticmethod
    def parse(text, name):
        p = {"pid": None, "name": None, "points": {}, "injects": [], "hits": {}, "lines": []}
        for line in text.splitlines():
            p["lines"].append(line)
            word, _, rest = line.partition(" ")
            if word == "process":
                check(p["pid"] is None, "%s: a second process line: %r" % (name, line))
                pid, _, p["name"] = rest.partition(" ")
                p["pid"] = int(pid)
            elif word == "point":
                pid, call, filters = rest.split(" ", 2)
                p["points"][int(pid)] = (call, filters)
            elif word == "inject":
                pid, k, action = rest.split(" ")
                p["injects"].append((int(pid), int(k), action))
            elif word == "hits":
                pid, n, blocking = rest.split(" ")
                p["hits"][int(pid)] = (int(n), int(blocking))
            else:
                raise Fail("%s: unknown line %r" % (name, line))
        check(p["lines"] and p["lines"][0].startswith("process "),
              "%s: the first line is not the process line: %r" % (name, p["lines"][:1]))
        return p

    def only(self):
        check(len(self.procs) == 1, "expected one process, got %d" % len(self.procs))
        return self.procs[0]

    def with_point(self, filters):
        """the process whose recording lists a point with these filters"""
        found = [p for p in self.procs if any(f == filters for _, f in p["points"].values())]
        check(len(found) == 1, "%d processes have a point %r" % (len(found), filters))
        return found[0]

    def describe(self):
        return "\n".join("%s: %s" % (p["pid"], l) for p in self.procs for l in p["lines"])


def recorded(s, argv, rules=None, **kw):
    """run argv recording; (result, Recording)"""
    d = s.newdir("rec")
    env = dict(kw.pop("env", {}))
    env["WOULDBLOCK_RECORD"] = os.path.join(d, "rec.%p")
    r = s.run(argv, rules=rules, env=env, **kw)
    return r, Recording(d)


def probe(s):
    return os.path.join(s.build, "site", "siteprobe")


def own_sites(s):
    """Skip a case that expects the program's own call sites when a
    sanitizer runtime is preloaded in front of the library: its
    interceptors call read() for the program, so the place the library
    sees is in the sanitizer (README, site=)."""
    if len(s.preload) > 1:
        raise Skip("%s intercepts the calls in front of the library"
                   % os.path.basename(s.preload[0]))


def lines_of(result, where):
    """the outcomes a siteprobe run printed for WHERE, in order"""
    return [l.split(" ", 1)[1] for l in result.stdout.splitlines() if l.split(" ", 1)[0] == where]


def expect_outcomes(result, expected):
    """expected: where -> list of outcomes ("4", "-1 EAGAIN")"""
    for where, outs in expected.items():
        got = lines_of(result, where)
        if got != outs:
            raise Fail("%s: expected %r, got %r\n%s" % (where, outs, got, result.describe()))


def addr2line_function(binary, offset):
    """the function holding the address at offset in binary (addr2line -f)"""
    if not shutil.which("addr2line"):
        raise Skip("addr2line (binutils) is not installed")
    # the return address is just past the call: the call itself is one byte before
    out = subprocess.run(["addr2line", "-f", "-e", binary, "0x%x" % (offset - 1)],
                         capture_output=True, text=True, timeout=30).stdout
    return out.splitlines()[0] if out else ""


SITE_RE = re.compile(r"site=(?P<module>\S+?)\+0x(?P<offset>[0-9a-f]+) ")


# ---- site= ----

ALL2 = ["all", "2"]


@case("site=: the executable's module hits its calls (parent and child), not the libraries'")
def _(s):
    own_sites(s)
    r = s.run([probe(s)] + ALL2, rules="read site=siteprobe").ok()
    expect_outcomes(r, {"exe": ["-1 EAGAIN"] * 2, "lib": ["4", "4"], "dl": ["4", "4"],
                        "child": ["-1 EAGAIN"] * 2})


@case("site=: a linked library's module hits its calls only")
def _(s):
    own_sites(s)
    r = s.run([probe(s)] + ALL2, rules="read site=libsiteprobe.so").ok()
    expect_outcomes(r, {"exe": ["4", "4"], "lib": ["-1 EAGAIN"] * 2, "dl": ["4", "4"],
                        "child": ["4", "4"]})


@case("site=: a library dlopen()ed by path is in the table once loaded")
def _(s):
    own_sites(s)
    r = s.run([probe(s)] + ALL2, rules="read site=libsitedl.so").ok()
    expect_outcomes(r, {"exe": ["4", "4"], "lib": ["4", "4"], "dl": ["-1 EAGAIN"] * 2,
                        "child": ["4", "4"]})


@case("site=: the executable answers to argv[0]'s basename too")
def _(s):
    own_sites(s)
    r = s.run([probe(s)] + ALL2, rules="read site=other-name", executable=probe(s))
    # argv[0] stays the path: nothing named other-name, nothing injected
    expect_outcomes(r.ok(), {"exe": ["4", "4"]})
    link = os.path.join(s.newdir("link"), "other-name")
    os.symlink(probe(s), link)
    r = s.run([link] + ALL2, rules="read site=other-name").ok()
    expect_outcomes(r, {"exe": ["-1 EAGAIN"] * 2, "lib": ["4", "4"]})


@case("site=: a rule set through the API in a process started without one builds the table")
def _(s):
    own_sites(s)
    # the table is built when the first rule needing it is installed, not
    # at start: then with the objects loaded before it, here libsitedl.so
    dl = os.path.join(s.build, "site", "libsitedl.so")
    r = s.run([s.python, os.path.join(HERE, "pyapisite.py"), dl, "read site=libsitedl.so"]).ok()
    equal(r.stdout.splitlines(), ["before dl 4", "before py 1", "after dl -1 EAGAIN", "after py 1"],
          "outcomes")


@case("site=MODULE+0xOFFSET: the offset the recording prints hits that call and no other")
def _(s):
    own_sites(s)
    _, rec = recorded(s, [probe(s)] + ALL2)
    parent = rec.with_point(next(f for c, f in rec.procs[0]["points"].values()
                                 if "site=siteprobe+" in f))
    exe_filters = [f for c, f in parent["points"].values() if "site=siteprobe+" in f]
    check(len(exe_filters) == 1, "one executable point in the parent: %r" % exe_filters)
    m = SITE_RE.search(exe_filters[0] + " ")
    site = "siteprobe+0x" + m["offset"]
    r = s.run([probe(s)] + ALL2, rules="read site=" + site).ok()
    # the child reads from another place of the executable
    expect_outcomes(r, {"exe": ["-1 EAGAIN"] * 2, "lib": ["4", "4"], "dl": ["4", "4"],
                        "child": ["4", "4"]})
    r = s.run([probe(s)] + ALL2, rules="read site=siteprobe+0x%x" % (int(m["offset"], 16) + 1)).ok()
    expect_outcomes(r, {"exe": ["4", "4"], "child": ["4", "4"]})


@case("site=: recorded offsets fall in the functions that call read (addr2line)")
def _(s):
    own_sites(s)
    _, rec = recorded(s, [probe(s)] + ALL2)
    where = {}
    for p in rec.procs:
        for call, filters in p["points"].values():
            m = SITE_RE.search(filters + " ")
            where[(m["module"], int(m["offset"], 16))] = True
    d = os.path.join(s.build, "site")
    funcs = sorted(addr2line_function(os.path.join(d, mod), off) for mod, off in where)
    equal(funcs, sorted(["exe_read", "child_read", "siteprobe_lib_read", "siteprobe_lib_read"]),
          "functions of the recorded sites")


@case("site=: a dlopen by bare name still searches the caller's RUNPATH (tail call)")
def _(s):
    own_sites(s)
    r = s.run([probe(s), "dlbare", "1"], rules="read site=?").ok()
    # found through siteprobe's RUNPATH only; its calls are outside the table
    # until the next refresh, so they are the unknown place '?'
    expect_outcomes(r, {"dl": ["-1 EAGAIN"]})


@case("site=: a dlopen by bare name from an object without RUNPATH is in the table at once")
def _(s):
    own_sites(s)
    # found through LD_LIBRARY_PATH, whoever the caller is
    env = {"LD_LIBRARY_PATH": os.path.join(s.build, "site")}
    r = s.run([probe(s), "dllib", "2"], rules="read site=libsitedl.so", env=env).ok()
    expect_outcomes(r, {"dl": ["-1 EAGAIN"] * 2})


@case("site=: lookups stay right while another thread dlopens and dlcloses (the latch)")
def _(s):
    own_sites(s)
    n = 20000
    r = s.run([probe(s), "churn", str(n)], rules="read site=libsiteprobe.so", log=False).ok()
    equal((r["churn_exe_failed"], r["churn_lib_failed"]), ("0", str(n)), "failed reads (exe, lib)")
    check(int(r["churn_loads"]) >= 10, "only %s dlopen/dlclose cycles ran meanwhile" % r["churn_loads"])


# ---- recording ----


@case("record: siteprobe's points, one file per process, hits and no injection")
def _(s):
    own_sites(s)
    r, rec = recorded(s, [probe(s)] + ALL2)
    r.ok()
    check(len(rec.procs) == 2, "two processes recorded\n" + rec.describe())
    parent, child = sorted(rec.procs, key=lambda p: len(p["points"]), reverse=True)
    for p in (parent, child):
        equal(p["name"], "siteprobe", "process name")
        equal(p["injects"], [], "inject lines")
    calls = [c for c, _ in parent["points"].values()]
    equal(calls, ["read"] * 3, "parent's calls")
    modules = [SITE_RE.search(f + " ")["module"] for _, f in parent["points"].values()]
    equal(modules, ["siteprobe", "libsiteprobe.so", "libsitedl.so"], "parent's modules, in order")
    for _, f in parent["points"].values():
        check(re.fullmatch(r"site=\S+\+0x[1-9a-f][0-9a-f]* type=pipe process=siteprobe", f),
              "filters %r" % f)
    equal(parent["hits"], {1: (2, 0), 2: (2, 0), 3: (2, 0)}, "parent's hits")
    equal(list(child["points"]), [1], "child's point numbers")
    equal(child["hits"], {1: (2, 0)}, "child's hits")
    check(child["points"][1] != parent["points"][1], "the child reads from its own place")


@case("record: calls on a blocking pipe count in BLOCKING_N only")
def _(s):
    _, rec = recorded(s, [probe(s), "blocking", "3"])
    p = rec.only()
    equal(p["hits"], {1: (0, 3)}, "hits")


@case("record: an injection is listed with its point, hit number and action")
def _(s):
    own_sites(s)
    # errno=, not short=: a 4-byte read of a pipe holding 4 bytes is never
    # cut (one small write arrives whole, SPEC 4)
    r, rec = recorded(s, [probe(s)] + ALL2,
                      rules="read site=libsiteprobe.so per=process when=2 errno=EINTR")
    expect_outcomes(r.ok(), {"lib": ["4", "-1 EINTR"]})
    parent = rec.with_point(next(f for p in rec.procs for _, f in p["points"].values()
                                 if "libsiteprobe.so" in f))
    equal(parent["injects"], [(2, 2, "errno=EINTR")], "inject lines")


def deferrable(call, filters):
    """An output EAGAIN on a pipe or unix socket waits for bytes in flight
    (SPEC 4): its rule fires at hit K or at the first later hit where that
    is faithful, if any."""
    return call in ("write", "writev", "send", "sendto", "sendmsg", "sendmmsg") and (
        "type=pipe" in filters or "family=unix" in filters)


def replay(s, argv, call, filters, k):
    """Run argv with the point's rule at hit k; check exactly one injection
    happened, at that point's k-th hit (or, deferred, at a later one)."""
    rules = "%s %s per=process when=%d" % (call, filters, k)
    r, rec = recorded(s, argv, rules=rules)
    injected = [l for l in r.log if e2e.LOG_RE.match(l)]
    p = rec.with_point(filters)
    point = next(i for i, (c, f) in p["points"].items() if (c, f) == (call, filters))
    if deferrable(call, filters):
        check(len(injected) <= 1 and all(i == point and kk >= k for i, kk, _ in p["injects"]),
              "rules %r: a deferred injection lands at hit %d or later\n%s" % (rules, k, rec.describe()))
        return r
    check(len(injected) == 1, "rules %r: %d injections, expected 1\n%s\n%s"
          % (rules, len(injected), r.describe(), rec.describe()))
    check(len(p["injects"]) == 1, "rules %r: inject lines %r" % (rules, p["injects"]))
    got_point, got_k, action = p["injects"][0]
    equal(action, "errno=EAGAIN", "action")
    if got_point != point:
        # a call to a stable port is listed under its port= point, which
        # selects the same call with its own hit number
        c, f = p["points"][got_point]
        check(c == call and re.sub(r" port=\d+", "", f) == filters,
              "rules %r: injected at point %d %r" % (rules, got_point, f))
    else:
        equal(got_k, k, "rules %r: hit number" % rules)
    return r


@case("record: replaying each recorded hit injects exactly there (siteprobe, with a child)")
def _(s):
    own_sites(s)
    argv = [probe(s)] + ALL2
    _, rec = recorded(s, argv)
    runs = 0
    for p in rec.procs:
        child = len(p["points"]) == 1  # the parent has three
        for pid, (call, filters) in p["points"].items():
            module = SITE_RE.search(filters + " ")["module"]
            where = {"siteprobe": "child" if child else "exe", "libsiteprobe.so": "lib",
                     "libsitedl.so": "dl"}[module]
            for k in range(1, p["hits"][pid][0] + 1):
                r = replay(s, argv, call, filters, k)
                runs += 1
                # and the program saw it there: the k-th call from that place
                outs = lines_of(r, where)
                equal([i + 1 for i, o in enumerate(outs) if o == "-1 EAGAIN"], [k],
                      "rules at hit %d of %s: failing calls of %s" % (k, filters, where))
    equal(runs, 8, "replays")


@case("record: replaying each recorded hit of a Python program injects exactly there")
def _(s):
    argv = [s.python, os.path.join(HERE, "pyrecord.py")]
    r, rec = recorded(s, argv)
    r.ok()
    p = rec.only()
    ours = [(i, c, f) for i, (c, f) in p["points"].items() if p["hits"].get(i, (0, 0))[0] > 0]
    calls = sorted(set(c for _, c, _ in ours))
    check({"recv", "send", "read"} <= set(calls), "points %r\n%s" % (calls, rec.describe()))
    exact = 0
    for i, call, filters in ours:
        for k in range(1, min(p["hits"][i][0], 3) + 1):
            replay(s, argv, call, filters, k)
            exact += not deferrable(call, filters)
    check(exact >= 4, "only %d exact replays" % exact)


def ephemeral_range():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = map(int, f.read().split())
    return lo, hi


def stable_port_start():
    """where to look for a free listening port outside the ephemeral range"""
    lo, hi = ephemeral_range()
    if lo > 20200:
        return 20000 + os.getpid() % 100 * 2
    if hi < 65000:
        return hi + 100 + os.getpid() % 100 * 2
    raise Skip("the ephemeral port range %d-%d leaves no room" % (lo, hi))


@case("record: port= only for a stable peer port; a site with both kinds has both points, exact")
def _(s):
    argv = [s.python, os.path.join(HERE, "pyports.py"), str(stable_port_start())]
    r, rec = recorded(s, argv)
    r.ok()
    port = int(r["port"])
    argv[-1] = str(port)  # the replays bind the same one
    p = rec.only()
    hits = {(c, f): p["hits"][i] for i, (c, f) in p["points"].items()}
    by_call = {}
    for (c, f), (n, _) in hits.items():
        if c in ("send", "recv") and n:
            by_call.setdefault(c, []).append((f, n))
    for call in ("send", "recv"):
        got = sorted(by_call.get(call, []))
        check(len(got) == 2, "%s: two points expected\n%s" % (call, rec.describe()))
        (without, n_all), (with_port, n_port) = sorted(got, key=lambda x: "port=" in x[0])
        check(" port=%d " % port in with_port + " " and "port=" not in without,
              "%s: %r and %r" % (call, with_port, without))
        equal(with_port.replace(" port=%d" % port, ""), without, "the two points' other filters")
        # the point without port= counts every call its rule would: both sockets
        equal((n_port, n_all), (3, 6), "%s hits (port=%d, all)" % (call, port))
        for k in (1, 2, n_all):
            replay(s, argv, call, without, k)
        replay(s, argv, call, with_port, 3)


@case("record: the same points and hits on 10 runs with ASLR on")
def _(s):
    with open("/proc/sys/kernel/randomize_va_space") as f:
        if f.read().strip() == "0":
            raise Skip("address-space randomization is off on this machine")
    seen = set()
    for _ in range(10):
        _, rec = recorded(s, [probe(s)] + ALL2)
        text = "\n".join(re.sub(r"^process \d+", "process", l)
                         for p in sorted(rec.procs, key=lambda p: -len(p["points"]))
                         for l in p["lines"])
        seen.add(text)
    check(len(seen) == 1, "%d different recordings:\n%s" % (len(seen), "\n----\n".join(seen)))


@case("record: a file that cannot be opened is a configuration error (125)")
def _(s):
    r = s.run([probe(s), "blocking", "1"], env={"WOULDBLOCK_RECORD": "/nonexistent/dir/rec"})
    equal(r.rc, 125, "exit status")
    check("wouldblock: WOULDBLOCK_RECORD:1: cannot open /nonexistent/dir/rec" in r.stderr,
          "message\n" + r.describe())


# ---- counts that survive SIGKILL: R.status ----

KILL_RULES = "recv when=1+2; send when=2"


def pykill(s, mode):
    return s.run([s.python, os.path.join(HERE, "pykill.py"), mode], rules=KILL_RULES, report=True)


def convert(s, status):
    """the report status_to_report makes of a status file"""
    out = status[: -len(".status")] + ".converted"
    tool = os.path.join(s.build, "site", "status2report")
    p = subprocess.run([tool, status, out], capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, "status2report failed: %s" % p.stderr)
    with open(out) as f:
        return json.load(f)


def expect_counts(rep, pid, pairs):
    """the counts of `pairs` send/recv pairs under KILL_RULES"""
    equal(rep["pid"], pid, "pid")
    recv_injected = (pairs + 1) // 2  # when=1+2: calls 1, 3, 5
    send_injected = 1 if pairs >= 2 else 0
    equal([(r["text"], r["counted"], r["injected"]) for r in rep["rules"]],
          [("recv when=1+2", pairs, recv_injected), ("send when=2", pairs, send_injected)],
          "rules' counted and injected")
    equal(rep["calls"]["recv"], {"seen": pairs, "injected": recv_injected}, "recv")
    equal(rep["calls"]["send"], {"seen": pairs, "injected": send_injected}, "send")
    equal(rep["spin"]["length"], 1, "spin length")


@case("status: a process killed by SIGKILL leaves R.status; converted, it has the counts")
def _(s):
    r = pykill(s, "self")
    equal(r.rc, -9, "exit status (killed)")
    pid = int(r["pid"])
    files = sorted(os.listdir(r.report_dir))
    equal(files, ["report.%d.json.status" % pid], "files left")
    rep = convert(s, os.path.join(r.report_dir, files[0]))
    equal(rep["complete"], False, "complete")
    equal(rep["program"], s.python, "program")
    equal(rep["seed"], 1, "seed")
    expect_counts(rep, pid, 5)


@case("status: a normal exit writes R (complete) and removes R.status")
def _(s):
    r = pykill(s, "exit").ok()
    pid = int(r["pid"])
    equal(sorted(os.listdir(r.report_dir)), ["report.%d.json" % pid], "files left")
    _, rep = r.report()
    equal(rep["complete"], True, "complete")
    expect_counts(rep, pid, 5)


@case("status: a forked child keeps its own status; the parent's report has its own counts")
def _(s):
    r = pykill(s, "fork").ok()
    pid, child = int(r["pid"]), int(r["child"])
    equal(sorted(os.listdir(r.report_dir)),
          sorted(["report.%d.json" % pid, "report.%d.json.status" % child]), "files left")
    expect_counts(convert(s, os.path.join(r.report_dir, "report.%d.json.status" % child)), child, 5)
    with open(os.path.join(r.report_dir, "report.%d.json" % pid)) as f:
        expect_counts(json.load(f), pid, 2)


@case("status: status_to_report refuses a file that is not a status file")
def _(s):
    d = s.newdir("bad")
    bad = os.path.join(d, "x.status")
    with open(bad, "w") as f:
        f.write("{}")
    p = subprocess.run([os.path.join(s.build, "site", "status2report"), bad, bad + ".json"],
                       capture_output=True, text=True, timeout=30)
    equal(p.returncode, 1, "exit status")
    check("Invalid argument" in p.stderr, "message: %r" % p.stderr)


if __name__ == "__main__":
    sys.exit(e2e.main(CASES, __doc__))
