#!/usr/bin/env python3
"""run.py - `make bench`: what wouldblock costs, beside strace and libfiu.

  run.py [--build DIR] [--iterations N] [--runs R] [--startup-runs S]
         [--only SECTION[,SECTION...]]   # ping, inject, startup, rss
  run.py --smoke [--build DIR]      # TAP: the machinery works (tiny counts, no timing)

Measures, interleaving the configurations across the R repetitions so that a
burst of noise from a neighbour is spread over all of them, and prints the
medians as markdown tables:

  1. a 1-byte ping on a non-blocking pipe (write+read) and on a non-blocking
     AF_UNIX socketpair (send+recv): plain, under the floor (tests/bench/
     floor.c: a preload that only forwards, alone and touching K pages after
     each call), preloaded with no rules, armed (a rule that counts every
     call and never fires), under strace's inject with a trigger that never
     fires, under libfiu's fiu-run -x; then the floor and the passthrough
     paired in one process (blocks through the preload alternating with
     blocks straight into libc: the host's noise hits both alike); then what
     the floor rows imply: what any preload costs here, what a page costs,
     and what our passthrough's page count predicts for it (derived,
     labelled so);
  2. the cost of one injected call (read/recv on an empty fd, every call
     injected) beside the real EAGAIN the kernel gives on the same fd;
  3. start-up of /bin/true, plain and with the whole scenario library parsed;
  4. resident memory of a small program with and without the preload.

Timing never fails the run: the targets are printed with met / not met. A
broken measurement does: a ping that moved the wrong byte, a preload that is
not in the process, an armed rule whose report did not count every call or
injected something. Those rows say "invalid: why" and the exit status is 1.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# A rule that names every call and passes every filter on a non-blocking
# pipe or socket, so the whole counting path runs, and whose trigger never
# fires within any run.
ARMED_RULES = "all when=1000000000000"
# The same with site= naming the program itself: every call passes it, so
# the place of each call is looked up (SPEC §3).
ARMED_SITE_RULES = "all site=ping when=1000000000000"
# What `wouldblock explore` runs: one rule naming one point (call, site with
# offset, fd filters) and a hit number. The point is taken from a recorded
# run of the ping (WOULDBLOCK_RECORD): its read (pipe) or recv (socket).
EXPLORE_CALL = {"pipe": "read", "socket": "recv"}
EXPLORE_WHEN = "per=process when=1000000000000"
# Every read/recv is injected: nothing reaches the kernel.
INJECT_RULES = "input"
# strace 6.1 accepts call numbers up to 65535 in when=, and counts per
# syscall and per process; a run of at most this many iterations makes
# 1.1 * N + the loader's few reads < 65535 of each, so the trigger never fires.
STRACE_WHEN = 65535
STRACE_MAX_ITERATIONS = 10000
STRACE_SYSCALLS = "read,write,sendto,recvfrom"

# The floor rows: tests/bench/floor.c forwards each call with a tail jump;
# with FLOOR_PAGES=K it calls the real function, returns through its own
# code and touches K pages of its own. 0 first (the call and the return
# alone), then pages enough to stand out of a shared machine's noise.
FLOOR_TOUCH_PAGES = (0, 4, 16)
# Distinct pages of the preload between two system calls (after one call,
# before the next), as `make bench-instructions` counts them: the floor's
# code and data page, with FLOOR_PAGES=0 too; FLOOR_PAGES=K adds K. Our
# passthrough's with a report (as it runs here), counted on the library as
# of this commit (2 before the call: code and .data; 2 after: code and the
# status's first page): update them with the library.
FLOOR_PAGES_BETWEEN = 2
PASSTHROUGH_PAGES = {"before": 2, "after": 2, "between": 3}
# ping --paired runs blocks of this many round trips each way, and a
# quarter of the iterations of the other rows (each way: half their time).
PAIR_BLOCK = 500

# From the issue: printed beside the figures, never asserted.
TARGETS = {
    "passthrough": ("ratio", 1.02),
    "armed": ("ratio", 1.05),
    "armed-site": ("ratio", 1.05),
    "armed-explore": ("ratio", 1.05),
    "injected": ("ns", 25.0),
    "startup": ("ms", 0.30),
}

HANG_GUARD_S = 300


class Broken(Exception):
    """The measurement itself is wrong: its row is invalid."""


class Unavailable(Exception):
    """The tool for a row is not here: its row says n/a and why."""


# ---- running things ----


def clean_env():
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "LD_PRELOAD" and not k.startswith(("WOULDBLOCK_", "FIU_", "FLOOR_"))
    }
    return env


def parse_line(out):
    """The last key=value line a helper printed, as a dict."""
    lines = [l for l in out.splitlines() if "=" in l]
    if not lines:
        raise Broken("no result line in %r" % out[-200:])
    fields = {}
    for item in lines[-1].split():
        key, _, value = item.partition("=")
        fields[key] = value
    return fields


def run(argv, env, what):
    try:
        p = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=HANG_GUARD_S
        )
    except subprocess.TimeoutExpired:
        raise Broken("%s: still running after %d s" % (what, HANG_GUARD_S))
    if p.returncode != 0:
        err = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise Broken("%s exited %d: %s" % (what, p.returncode, err))
    return p.stdout


class Bench:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.lib = os.path.join(self.build, "libwouldblock.so")
        self.floor = os.path.join(self.build, "bench", "libfloor.so")
        self.ping = os.path.join(self.build, "bench", "ping")
        self.spawn = os.path.join(self.build, "bench", "spawn")
        self.tmp = tempfile.mkdtemp(prefix="wouldblock-bench.")
        self._strace = None
        self._fiu = None

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def report_path(self):
        return os.path.join(self.tmp, "report.json")

    def read_report(self):
        try:
            with open(self.report_path()) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise Broken("no readable JSON report: %s" % e)

    # -- the tools of the comparison rows, probed once --

    def strace_problem(self):
        if self._strace is None:
            self._strace = ""
            if not shutil.which("strace"):
                self._strace = "n/a (install strace)"
            else:
                p = subprocess.run(
                    ["strace", "-f", "-qq", "-o", "/dev/null", "/bin/true"],
                    env=clean_env(),
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                if p.returncode != 0:
                    why = (p.stderr.strip().splitlines() or ["?"])[-1]
                    self._strace = "n/a (strace cannot trace here: %s)" % why
        return self._strace

    def fiu_problem(self):
        if self._fiu is None:
            self._fiu = ""
            if not shutil.which("fiu-run"):
                self._fiu = "n/a (install fiu-utils)"
            else:
                # ld.so only warns when a preload cannot be loaded: ask the
                # ping whether libfiu's POSIX library is really in it
                p = subprocess.run(
                    ["fiu-run", "-x", "-f", "", self.ping, "rss", "1"],
                    env=clean_env(),
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                if p.returncode != 0 or "fiu_mapped=1" not in p.stdout:
                    why = (p.stderr.strip().splitlines() or ["its library is not loaded"])[-1]
                    self._fiu = "n/a (fiu-run -x fails here: %s)" % why
        return self._fiu

    # -- the scenario library --

    def scenario_names(self):
        """Every scenario of the built-in library: the runner's --list when
        it is built, else the [names] of conf/wouldblock.conf."""
        runner = os.path.join(self.build, "wouldblock")
        if os.access(runner, os.X_OK):
            p = subprocess.run(
                [runner, "--list"], capture_output=True, text=True, env=clean_env()
            )
            names = [l.split()[0] for l in p.stdout.splitlines() if l.strip()]
            if p.returncode == 0 and names:
                return names
        names = []
        with open(os.path.join(ROOT, "conf", "wouldblock.conf")) as f:
            for line in f:
                line = line.strip()
                if line.startswith("[") and "]" in line:
                    names.append(line[1 : line.index("]")].strip())
        if not names:
            raise Broken("no scenario found in conf/wouldblock.conf")
        return names

    def library_env(self):
        env = clean_env()
        env["LD_PRELOAD"] = self.lib
        env["WOULDBLOCK_SCENARIO"] = ",".join(self.scenario_names())
        return env


# ---- configurations of the ping ----
#
# Each returns (argv prefix, env, iterations to use, check) where check(bench,
# result fields) raises Broken when the run does not show what it claims.


def check_mapped(fields, wouldblock, fiu=False, traced=False, floor=False):
    want = {
        "wouldblock_mapped": wouldblock,
        "fiu_mapped": fiu,
        "floor_mapped": floor,
        "traced": traced,
    }
    for key, value in want.items():
        if fields.get(key) != str(int(value)):
            raise Broken("%s=%s, expected %d" % (key, fields.get(key), int(value)))


def call_totals(report):
    seen = sum(c["seen"] for c in report["calls"].values())
    injected = sum(c["injected"] for c in report["calls"].values())
    return seen, injected


def cfg_plain(bench, n, mode):
    def check(b, f):
        check_mapped(f, wouldblock=False)

    return [], clean_env(), n, check


def cfg_floor(pages):
    """The floor preload, touching pages pages after each call (None: it
    only forwards, with a tail jump: FLOOR_PAGES is left unset)."""

    def cfg(bench, n, mode):
        env = clean_env()
        env["LD_PRELOAD"] = bench.floor
        if pages is not None:
            env["FLOOR_PAGES"] = str(pages)

        def check(b, f):
            check_mapped(f, wouldblock=False, floor=True)

        return [], env, n, check

    return cfg


def cfg_passthrough(bench, n, mode):
    env = clean_env()
    env["LD_PRELOAD"] = bench.lib
    env["WOULDBLOCK_REPORT"] = bench.report_path()

    def check(b, f):
        check_mapped(f, wouldblock=True)
        r = b.read_report()
        seen, injected = call_totals(r)
        if r["rules"] or seen != int(f["calls"]) or injected:
            raise Broken(
                "report: %d rules, %d calls seen (ping made %s), %d injected"
                % (len(r["rules"]), seen, f["calls"], injected)
            )

    return [], env, n, check


def rule_check(counted_all, injected_all):
    """A check that the report's only rule counted every call the ping made
    and injected none (armed) or all (injecting) of them."""

    def check(b, f):
        check_mapped(f, wouldblock=True)
        r = b.read_report()
        calls = int(f["calls"])
        if len(r["rules"]) != 1:
            raise Broken("report has %d rules, expected 1" % len(r["rules"]))
        rule = r["rules"][0]
        want_injected = calls if injected_all else 0
        if rule["counted"] != calls or rule["injected"] != want_injected:
            raise Broken(
                "report: rule %r counted %d and injected %d of the %d calls made"
                % (rule["text"], rule["counted"], rule["injected"], calls)
            )

    return check


def armed_env(bench, rules):
    """The preload with rules and a report to check them by."""
    env = clean_env()
    env["LD_PRELOAD"] = bench.lib
    env["WOULDBLOCK_RULES"] = rules
    env["WOULDBLOCK_REPORT"] = bench.report_path()
    return env


def cfg_armed_by(rules):
    """A configuration armed with rules that count every call and never fire."""
    def cfg(bench, n, mode):
        return [], armed_env(bench, rules), n, rule_check(True, False)
    return cfg


def explore_rule(bench, mode):
    """The rule explore would run for the ping's read/recv point."""
    call = EXPLORE_CALL[mode]
    record = os.path.join(bench.tmp, "record.txt")
    env = clean_env()
    env["LD_PRELOAD"] = bench.lib
    env["WOULDBLOCK_RECORD"] = record
    try:
        os.unlink(record)
    except FileNotFoundError:
        pass
    run([bench.ping, mode, "20"], env, "ping %s, recorded" % mode)
    with open(record) as f:
        for line in f:
            words = line.split(" ", 3)
            if words[0] == "point" and words[2] == call and "site=ping+" in words[3]:
                return "%s %s %s" % (call, words[3].strip(), EXPLORE_WHEN)
    raise Broken("the recording of the ping has no %s point from ping" % call)


def cfg_armed_explore(bench, n, mode):
    env = armed_env(bench, explore_rule(bench, mode))

    def check(b, f):
        # the rule names one of the two calls of a round trip: half of them
        check_mapped(f, wouldblock=True)
        r = b.read_report()
        calls = int(f["calls"])
        rule = r["rules"][0] if len(r["rules"]) == 1 else None
        if not rule or rule["counted"] != calls // 2 or rule["injected"]:
            raise Broken("report: %r counted/injected wrong for %d calls" % (r["rules"], calls))

    return [], env, n, check


def cfg_injecting(bench, n, mode):
    env = clean_env()
    env["LD_PRELOAD"] = bench.lib
    env["WOULDBLOCK_RULES"] = INJECT_RULES
    env["WOULDBLOCK_REPORT"] = bench.report_path()
    return [], env, n, rule_check(True, True)


def strace_argv():
    return [
        "strace",
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        # injection needs the calls traced: strace 6.1 skips tampering with
        # a syscall that trace= leaves out
        "-e",
        "trace=" + STRACE_SYSCALLS,
        "-e",
        "inject=%s:error=EAGAIN:when=%d" % (STRACE_SYSCALLS, STRACE_WHEN),
        "--",
    ]


def cfg_strace(bench, n, mode):
    problem = bench.strace_problem()
    if problem:
        raise Unavailable(problem)

    def check(b, f):
        check_mapped(f, wouldblock=False, traced=True)

    return strace_argv(), clean_env(), min(n, STRACE_MAX_ITERATIONS), check


def cfg_fiu(bench, n, mode):
    problem = bench.fiu_problem()
    if problem:
        raise Unavailable(problem)

    def check(b, f):
        check_mapped(f, wouldblock=False, fiu=True)

    # -f '': no remote-control fifo (and no thread reading it)
    return ["fiu-run", "-x", "-f", "", "--"], clean_env(), n, check


PING_CONFIGS = [
    ("plain", "plain (no preload)", cfg_plain),
    ("floor", "a preload that only forwards (the floor: one `jmp`)", cfg_floor(None)),
] + [
    ("floor-%d" % k,
     "the floor, returning through its own code (a call, not a jump)" if k == 0 else
     "the floor, returning through its own code, then touching %d pages" % k,
     cfg_floor(k))
    for k in FLOOR_TOUCH_PAGES
] + [
    ("passthrough", "preloaded, no rules (passthrough)", cfg_passthrough),
    ("armed", "armed: `%s` (counts, never fires)" % ARMED_RULES, cfg_armed_by(ARMED_RULES)),
    ("armed-site", "armed, site=: `%s`" % ARMED_SITE_RULES, cfg_armed_by(ARMED_SITE_RULES)),
    (
        "armed-explore",
        "armed, explore-style: `CALL site=ping+0x... type=... process=ping %s` (one point)"
        % EXPLORE_WHEN,
        cfg_armed_explore,
    ),
    (
        "strace",
        "strace -f -e inject=...:error=EAGAIN:when=%d (never fires)" % STRACE_WHEN,
        cfg_strace,
    ),
    ("fiu", "fiu-run -x, nothing enabled", cfg_fiu),
]
# Paired in one process: the method's check (plain: both sides are libc),
# the floor rows, the passthrough and the armed rows (the steadiest figure of
# what the preload adds here: the targets are judged on it too).
PAIRED_KEYS = (["plain", "floor"] + ["floor-%d" % k for k in FLOOR_TOUCH_PAGES] +
               ["passthrough", "armed", "armed-site", "armed-explore"])
PAIRED_CONFIGS = [c for c in PING_CONFIGS if c[0] in PAIRED_KEYS]
INJECT_CONFIGS = [
    ("plain", "plain: real EAGAIN from the kernel", cfg_plain),
    ("passthrough", "preloaded, no rules: real EAGAIN", cfg_passthrough),
    ("injecting", "injected: `%s` (no syscall)" % INJECT_RULES, cfg_injecting),
]
PING_MODES = [
    ("pipe", "(a) 1-byte write+read ping, non-blocking pipe"),
    ("socket", "(b) 1-byte send+recv ping, non-blocking AF_UNIX socketpair"),
]
INJECT_MODES = [
    ("read-empty", "read() of an empty non-blocking pipe"),
    ("recv-empty", "recv() of an empty non-blocking socketpair"),
]


def paired_iterations(n):
    return n if n < PAIR_BLOCK else max(1, n // 4 // PAIR_BLOCK) * PAIR_BLOCK


def ping_once(bench, cfg, mode, n, paired=False):
    """One run of the ping under cfg: {"wall", "cpu"} ns per iteration, and
    the iterations it ran. paired: ping --paired, and the sample is
    {"ratio": the median of its pairs' ratios, "over": ns per call through
    the preload over straight into libc, "direct": ns per call straight
    into libc}."""
    prefix, env, iterations, check = cfg(bench, n, mode)
    try:
        os.unlink(bench.report_path())
    except FileNotFoundError:
        pass
    if paired:
        iterations = paired_iterations(iterations)
    argv = prefix + [bench.ping, mode, str(iterations)] + (["--paired"] if paired else [])
    fields = parse_line(run(argv, env, "ping %s" % mode))
    if fields.get("mode") != mode or int(fields.get("iterations", -1)) != iterations:
        raise Broken("unexpected result line %r" % fields)
    check(bench, fields)
    if paired:
        if fields.get("paired") != "1":
            raise Broken("ping --paired printed no paired figures: %r" % fields)
        plt, direct = float(fields["ns_per_iter"]), float(fields["direct_ns_per_iter"])
        return {
            "ratio": float(fields["pair_ratio"]),
            "over": (plt - direct) / 2,
            "direct": direct / 2,
            "wall": plt,
            "cpu": None,
        }, iterations
    # a traced process's CPU time leaves out its tracer's: not comparable
    cpu = None if fields.get("traced") == "1" else float(fields["cpu_ns_per_iter"])
    return {"wall": float(fields["ns_per_iter"]), "cpu": cpu}, iterations


# ---- start-up and memory ----


STARTUP_LABELS = [
    ("plain", "/bin/true, plain"),
    # what any preload costs at start: the loader maps it and binds four
    # functions (tests/bench/floor.c)
    ("floor", "/bin/true, preloaded: the floor"),
    ("preload", "/bin/true, preloaded, no rules"),
    ("library", "/bin/true, preloaded, every built-in scenario parsed"),
]


def preload_envs(bench):
    """The environments of the start-up and memory rows, by key."""
    preload = clean_env()
    preload["LD_PRELOAD"] = bench.lib
    floor = clean_env()
    floor["LD_PRELOAD"] = bench.floor
    return {"plain": clean_env(), "floor": floor, "preload": preload,
            "library": bench.library_env()}


def startup_configs(bench):
    envs = preload_envs(bench)
    return [(key, label, envs[key]) for key, label in STARTUP_LABELS]


def spawn_batch(bench, env, runs):
    """runs start-ups of /bin/true with env: a list of {"wall", "cpu"} ns."""
    assigns = [
        "%s=%s" % (k, v)
        for k, v in env.items()
        if k == "LD_PRELOAD" or k.startswith("WOULDBLOCK_")
    ]
    out = run([bench.spawn, str(runs)] + assigns + ["--", "/bin/true"], clean_env(), "spawn")
    fields = parse_line(out)
    wall = [int(x) for x in fields["samples"].split(",")]
    cpu = [int(x) for x in fields["cpu_samples"].split(",")]
    if len(wall) != runs or len(cpu) != runs:
        raise Broken("spawn gave %d samples for %d runs" % (len(wall), runs))
    return [{"wall": w, "cpu": c} for w, c in zip(wall, cpu)]


def check_library_loads(bench):
    """The library configuration really parses every scenario: its report
    names them all. Returns (scenarios, rules)."""
    env = bench.library_env()
    env["WOULDBLOCK_REPORT"] = bench.report_path()
    try:
        os.unlink(bench.report_path())
    except FileNotFoundError:
        pass
    run(["/bin/true"], env, "/bin/true with every scenario")
    r = bench.read_report()
    names = bench.scenario_names()
    if r["scenarios"] != names or not r["rules"]:
        raise Broken("report names scenarios %r, %d rules" % (r["scenarios"], len(r["rules"])))
    return len(names), len(r["rules"])


RSS_LABELS = [
    ("plain", "plain"),
    ("preload", "preloaded, no rules"),
    ("library", "preloaded, every built-in scenario active (the ping polls on EAGAIN)"),
]
RSS_FIELDS = ("vm_rss_kib", "rss_anon_kib", "rss_file_kib")


def rss_configs(bench):
    envs = preload_envs(bench)
    return [(key, label, envs[key], key != "plain") for key, label in RSS_LABELS]


def rss_once(bench, env, preloaded):
    fields = parse_line(run([bench.ping, "rss", "1000"], env, "ping rss"))
    check_mapped(fields, wouldblock=preloaded)
    values = {k: int(fields[k]) for k in RSS_FIELDS}
    if values["vm_rss_kib"] <= 0:
        raise Broken("no VmRSS read")
    return values


# ---- the whole benchmark ----


def rotate(items, k):
    if not items:
        return []
    k %= len(items)
    return items[k:] + items[:k]


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %s, nproc %d, Linux %s, %s" % (
        platform.machine(),
        cpu,
        len(os.sched_getaffinity(0)),
        platform.release(),
        " ".join(platform.libc_ver()),
    )


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def tool_version(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (p.stdout.strip().splitlines() or [""])[0]
    except (OSError, subprocess.TimeoutExpired):
        return ""


class Results:
    """Samples ({"wall", "cpu"} or memory figures) per row key, and the rows
    that could not be measured, with why."""

    def __init__(self):
        self.samples = {}
        self.iterations = {}
        self.invalid = {}
        self.library = None
        self.load = []

    def attempt(self, key, fn):
        """fn() gives a list of samples; a Broken or Unavailable marks the row."""
        if key in self.invalid:
            return
        try:
            got = fn()
        except Broken as e:
            self.invalid[key] = "invalid: %s" % e
            return
        except Unavailable as e:
            self.invalid[key] = str(e)
            return
        self.samples.setdefault(key, []).extend(got)

    def add_ping(self, key, bench, cfg, mode, n):
        def one():
            sample, iterations = ping_once(bench, cfg, mode, n, paired=key[0] == "paired")
            self.iterations[key] = iterations
            return [sample]

        self.attempt(key, one)

    def median(self, key, metric="wall"):
        values = [s[metric] for s in self.samples.get(key, []) if s[metric] is not None]
        if key in self.invalid or not values:
            return None
        return statistics.median(values)

    def minimum(self, key, metric="wall"):
        values = [s[metric] for s in self.samples.get(key, []) if s[metric] is not None]
        return min(values) if values else None

    def broken(self):
        return [(k, v) for k, v in self.invalid.items() if v.startswith("invalid")]


SECTIONS = ("ping", "inject", "startup", "rss")


def measure(bench, n, runs, startup_runs, progress=True, only=SECTIONS):
    res = Results()
    res.load.append(load_average())
    jobs = []
    if "ping" in only:
        for mode, _ in PING_MODES:
            for key, _, cfg in PING_CONFIGS:
                jobs.append((("ping", mode, key), cfg, mode))
            for key, _, cfg in PAIRED_CONFIGS:
                jobs.append((("paired", mode, key), cfg, mode))
    if "inject" in only:
        for mode, _ in INJECT_MODES:
            for key, _, cfg in INJECT_CONFIGS:
                jobs.append((("inject", mode, key), cfg, mode))
    st_cfgs = startup_configs(bench) if "startup" in only else []
    rss_cfgs = rss_configs(bench) if "rss" in only else []
    batch = max(1, startup_runs // runs)

    try:
        if st_cfgs:
            res.library = check_library_loads(bench)
    except Broken as e:
        for key, _, _ in st_cfgs:
            res.invalid[("startup", key)] = "invalid: %s" % e
    for rep in range(runs):
        if progress:
            print("# repetition %d of %d" % (rep + 1, runs), file=sys.stderr, flush=True)
        # a different order each time: no configuration always follows the
        # same neighbour
        for key, cfg, mode in rotate(jobs, rep * 3):
            res.add_ping(key, bench, cfg, mode, n)
        for key, _, env in rotate(st_cfgs, rep):
            res.attempt(("startup", key), lambda env=env: spawn_batch(bench, env, batch))
        for key, _, env, pre in rotate(rss_cfgs, rep):
            res.attempt(("rss", key), lambda env=env, pre=pre: [rss_once(bench, env, pre)])
    res.load.append(load_average())
    return res


def fmt(v, digits=1):
    return "-" if v is None else "%.*f" % (digits, v)


def ratio(a, b):
    return None if a is None or not b else a / b


def target_text(kind, wall, cpu):
    """"<= 1.02: met" judged on the wall-clock figure, with the CPU-time
    figure's verdict beside it when it differs."""
    unit, limit = TARGETS[kind]
    shown = {"ratio": "%.2f" % limit, "ns": "%.0f ns" % limit, "ms": "%.2f ms" % limit}[unit]
    met = lambda v: "met" if v <= limit else "not met"
    text = "<= %s: %s" % (shown, "-" if wall is None else met(wall))
    if cpu is not None and (wall is None or met(cpu) != met(wall)):
        text += " (CPU time: %s)" % met(cpu)
    return text


def render(res, n, runs, startup_runs, only=SECTIONS):
    out = []
    p = out.append
    p("## wouldblock benchmark")
    p("")
    p("Machine: %s; load average %s at start, %s at end." % (machine(), res.load[0], res.load[-1]))
    versions = [
        v
        for v in (
            tool_version(["strace", "-V"]),
            tool_version(["dpkg-query", "-W", "-f", "fiu-utils ${Version}", "fiu-utils"]),
        )
        if v
    ]
    if versions:
        p("Tools: %s." % "; ".join(versions))
    p("")
    p(
        "Each figure is the median of %d runs, the configurations interleaved. "
        "Wall: CLOCK_MONOTONIC around the loop; CPU: the process's own CPU time over "
        "the same loop, which leaves out time other programs held the CPU (the "
        "steadier figure on a shared machine; not shown under strace, whose cost "
        "is in the tracer). Ratios are to plain on the same kind of fd. Targets are "
        "judged on wall time." % runs
    )
    for mode, title in PING_MODES if "ping" in only else []:
        p("")
        p("### %s, %d iterations" % (title, n))
        p("")
        p(
            "| configuration | ns/round trip | ns/call | ratio to plain | CPU ns/call "
            "| CPU ratio | runs, ns/round trip | target |"
        )
        p("|---|---:|---:|---:|---:|---:|---|---|")
        base = res.median(("ping", mode, "plain"))
        base_cpu = res.median(("ping", mode, "plain"), "cpu")
        for key, label, _ in PING_CONFIGS:
            k = ("ping", mode, key)
            if k in res.invalid:
                p("| %s | %s | | | | | | |" % (label, res.invalid[k]))
                continue
            m, c = res.median(k), res.median(k, "cpu")
            if m is None:
                continue
            if res.iterations.get(k, n) != n:
                label += " (%d iterations)" % res.iterations[k]
            r, rc = ratio(m, base), ratio(c, base_cpu)
            p(
                "| %s | %s | %s | %s | %s | %s | %s-%s | %s |"
                % (
                    label,
                    fmt(m),
                    fmt(m / 2),
                    fmt(r, 3),
                    fmt(c / 2 if c is not None else None),
                    fmt(rc, 3),
                    fmt(res.minimum(k), 0),
                    fmt(max(s["wall"] for s in res.samples[k]), 0),
                    target_text(key, r, rc) if key in TARGETS else "",
                )
            )
    if "ping" in only:
        render_ping_note(p)
        render_paired(p, res, n)
        render_floor(p, res)
    if "inject" in only:
        render_inject(p, res, n)
    if "startup" in only:
        render_startup(p, res, runs, startup_runs)
    if "rss" in only:
        render_rss(p, res, runs)
    return "\n".join(out)


def render_ping_note(p):
    p("")
    p(
        "Armed: the report of every armed run was checked: its rule counted every call "
        "the ping made and injected none. strace runs at most %d iterations: its when= "
        "counts to 65535 per syscall and the trigger must never fire; it traces the four "
        "calls, output to /dev/null (strace injects only into calls it traces)."
        % STRACE_MAX_ITERATIONS
    )


def render_paired(p, res, n):
    p("")
    p(
        "### (c) The same pings paired in one process, %d round trips each way "
        "(`ping --paired`)" % paired_iterations(n)
    )
    p("")
    p(
        "Blocks of %d round trips through the program's calls (the PLT: the preload, if "
        "any) alternate with blocks straight into libc's own functions, found past the "
        "preload; per run the median of the pairs' ratios and of the blocks' ns. Plain: "
        "both sides are libc, the method's own error." % PAIR_BLOCK
    )
    p("")
    p("| ping | configuration | ratio to straight into libc | ns/call over it "
      "| runs, ratio | target |")
    p("|---|---|---:|---:|---|---|")
    for mode, _ in PING_MODES:
        for key, label, _ in PAIRED_CONFIGS:
            k = ("paired", mode, key)
            if k in res.invalid:
                p("| %s | %s | %s | | | |" % (mode, label, res.invalid[k]))
                continue
            r = res.median(k, "ratio")
            if r is None:
                continue
            p(
                "| %s | %s | %s | %s | %s-%s | %s |"
                % (
                    mode,
                    label,
                    fmt(r, 4),
                    fmt(res.median(k, "over"), 1),
                    fmt(res.minimum(k, "ratio"), 3),
                    fmt(max(s["ratio"] for s in res.samples[k]), 3),
                    target_text(key, r, None) if key in TARGETS else "",
                )
            )


def floor_sources(res, mode):
    """The ways to tell what a preload adds to a call in one ping mode:
    (what, added(key): ns per call over plain or None, plain's ns per call)."""

    def separate(stat):
        def get(key):
            k = ("ping", mode, key)
            m = None if k in res.invalid else getattr(res, stat)(k, "wall")
            return None if m is None else m / 2

        plain = get("plain")
        return lambda key: None if plain is None or get(key) is None else get(key) - plain, plain

    def paired_added(key):
        k = ("paired", mode, key)
        return None if k in res.invalid else res.median(k, "over")

    pk = ("paired", mode, "plain")
    paired_base = None if pk in res.invalid else res.median(pk, "direct")
    return [
        ("paired in one process, medians",) + (paired_added, paired_base),
        ("separate runs, medians",) + separate("median"),
        ("separate runs, fastest",) + separate("minimum"),
    ]


def floor_figures(added, base):
    """The floor's ratio and ns over plain, what returning through its own
    code adds, ns per page between each two touching rows, the passthrough
    ratio its page count predicts (with the first pages' cost) and the one
    measured; None where the plain or floor figure is missing."""
    floor = added("floor")
    if not base or floor is None:
        return None
    touching = [(k, added("floor-%d" % k)) for k in FLOOR_TOUCH_PAGES]
    slopes = [
        None if a is None or b is None else (b - a) / (k2 - k1)
        for (k1, a), (k2, b) in zip(touching, touching[1:])
    ]
    calling, first = touching[0][1], slopes[0] if slopes else None
    extra = PASSTHROUGH_PAGES["between"] - FLOOR_PAGES_BETWEEN
    passthrough = added("passthrough")
    return {
        "floor_ratio": 1 + floor / base,
        "floor_ns": floor,
        "return_ns": None if calling is None else calling - floor,
        "slopes": slopes,
        "predicted": None if calling is None or first is None
        else 1 + (calling + extra * first) / base,
        "measured": None if passthrough is None else 1 + passthrough / base,
    }


def render_floor(p, res):
    k = FLOOR_TOUCH_PAGES
    extra = PASSTHROUGH_PAGES["between"] - FLOOR_PAGES_BETWEEN
    ranges = ["pages %d-%d" % (a + 1, b) for a, b in zip(k, k[1:])]
    p("")
    p(
        "Derived from the figures above, not measured directly: from the paired runs, "
        "from the medians of the separate runs, and from each row's fastest separate "
        "run (noise only adds time). The floor is the least "
        "any LD_PRELOAD shim costs (tests/bench/floor.c: each call one load and one "
        "`jmp` to the next definition; its code and data page between two system "
        "calls). Returning through its own code (a call, not a jump) keeps those 2 "
        "pages. Each page it then touches is one more distinct page between two system "
        "calls: a TLB miss each where the kernel empties the TLB on every system call "
        "(page-table isolation without PCID; here %s). ns/page: the difference between "
        "two touching rows over their difference in pages; the pages are one run of "
        "the floor's own array, and the first ones of a run may cost more than the next "
        "(a page-table walk can reuse what the one before cached). Our passthrough touches %d pages "
        "before the system call and %d after, %d distinct between two system calls "
        "(`make bench-instructions`), the floor %d: predicted = the floor returning "
        "through its code + %d pages at the cost of %s."
        % (
            tlb_flush_text(),
            PASSTHROUGH_PAGES["before"],
            PASSTHROUGH_PAGES["after"],
            PASSTHROUGH_PAGES["between"],
            FLOOR_PAGES_BETWEEN,
            extra,
            ranges[0] if ranges else "?",
        )
    )
    p("")
    p(
        "| ping | from | the floor: ratio to plain | the floor: ns/call over plain "
        "| returning through its code: ns/call over the floor | %s | passthrough predicted: ratio "
        "| passthrough measured: ratio |" % " | ".join("%s: ns/page" % r for r in ranges)
    )
    p("|---|---|" + "---:|" * (5 + len(ranges)))
    for mode, _ in PING_MODES:
        for what, added, base in floor_sources(res, mode):
            f = floor_figures(added, base)
            if f is None:
                p("| %s | %s | n/a (no valid plain and floor rows) |%s" %
                  (mode, what, " |" * (5 + len(ranges))))
                continue
            p(
                "| %s | %s | %s | %s | %s | %s | %s | %s |"
                % (
                    mode,
                    what,
                    fmt(f["floor_ratio"], 3),
                    fmt(f["floor_ns"], 1),
                    fmt(f["return_ns"], 1),
                    " | ".join(fmt(x, 1) for x in f["slopes"]),
                    fmt(f["predicted"], 3),
                    fmt(f["measured"], 3),
                )
            )


def tlb_flush_text():
    """What the kernel says of page-table isolation, and whether the CPU has
    PCID (without it, every system call empties the TLB)."""
    try:
        with open("/sys/devices/system/cpu/vulnerabilities/meltdown") as f:
            meltdown = f.read().strip()
    except OSError:
        meltdown = "?"
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return "meltdown: %s; CPU flag pcid %s" % (meltdown, "present" if "pcid" in flags else "absent")


def render_inject(p, res, n):
    p("")
    p("### One call that fails with EAGAIN, %d calls" % n)
    p("")
    p(
        "| call | configuration | ns/call | ratio to plain | CPU ns/call | CPU ratio "
        "| runs, ns/call | target |"
    )
    p("|---|---|---:|---:|---:|---:|---|---|")
    for mode, title in INJECT_MODES:
        base = res.median(("inject", mode, "plain"))
        base_cpu = res.median(("inject", mode, "plain"), "cpu")
        for key, label, _ in INJECT_CONFIGS:
            k = ("inject", mode, key)
            if k in res.invalid:
                p("| %s | %s | %s | | | | | |" % (title, label, res.invalid[k]))
                continue
            m, c = res.median(k), res.median(k, "cpu")
            if m is None:
                continue
            p(
                "| %s | %s | %s | %s | %s | %s | %s-%s | %s |"
                % (
                    title,
                    label,
                    fmt(m),
                    fmt(ratio(m, base), 3),
                    fmt(c),
                    fmt(ratio(c, base_cpu), 3),
                    fmt(res.minimum(k), 0),
                    fmt(max(s["wall"] for s in res.samples[k]), 0),
                    target_text("injected", m, c) if key == "injecting" else "",
                )
            )


def render_startup(p, res, runs, startup_runs):
    p("")
    per = max(1, startup_runs // runs) * runs
    lib = ", library: %d scenarios, %d rules" % res.library if res.library else ""
    p("### Start-up: fork + exec + wait of /bin/true, %d runs each%s" % (per, lib))
    p("")
    p(
        "| command | median ms | min ms | over plain, ms | over the floor, ms | CPU median ms "
        "| CPU over plain, ms | target |"
    )
    p("|---|---:|---:|---:|---:|---:|---:|---|")
    base = res.median(("startup", "plain"))
    base_cpu = res.median(("startup", "plain"), "cpu")
    floor = res.median(("startup", "floor"))
    for key, label in STARTUP_LABELS:
        k = ("startup", key)
        if k in res.invalid:
            p("| %s | %s | | | | | | |" % (label, res.invalid[k]))
            continue
        m, c = res.median(k), res.median(k, "cpu")
        if m is None:
            continue
        diff = None if base is None else (m - base) / 1e6
        diff_cpu = None if base_cpu is None or c is None else (c - base_cpu) / 1e6
        over_floor = None if floor is None else (m - floor) / 1e6
        p(
            "| %s | %s | %s | %s | %s | %s | %s | %s |"
            % (
                label,
                fmt(m / 1e6, 3),
                fmt(res.minimum(k) / 1e6, 3),
                "" if key == "plain" else fmt(diff, 3),
                "" if key in ("plain", "floor") else fmt(over_floor, 3),
                fmt(c / 1e6 if c is not None else None, 3),
                "" if key == "plain" else fmt(diff_cpu, 3),
                target_text("startup", diff, diff_cpu) if key == "library" else "",
            )
        )


def render_rss(p, res, runs):
    p("")
    p(
        "### Resident memory of a small program (`ping rss`: 1000 pipe pings, "
        "then /proc/self/status), median of %d" % runs
    )
    p("")
    p("| process | VmRSS KiB | RssAnon KiB | RssFile KiB | VmRSS over plain, KiB |")
    p("|---|---:|---:|---:|---:|")
    base = None
    for key, label in RSS_LABELS:
        k = ("rss", key)
        if k in res.invalid:
            p("| %s | %s | | | |" % (label, res.invalid[k]))
            continue
        s = res.samples.get(k)
        if not s:
            continue
        med = {f: statistics.median(x[f] for x in s) for f in RSS_FIELDS}
        if key == "plain":
            base = med["vm_rss_kib"]
        p(
            "| %s | %d | %d | %d | %s |"
            % (
                label,
                med["vm_rss_kib"],
                med["rss_anon_kib"],
                med["rss_file_kib"],
                "" if key == "plain" or base is None else "%+d" % (med["vm_rss_kib"] - base),
            )
        )


# ---- the smoke test: TAP, tiny counts, nothing timed is checked ----


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, why=""):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, name))
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, name))
            for line in str(why).splitlines():
                print("#   %s" % line)
        sys.stdout.flush()

    def skip(self, name, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, name, why))

    def attempt(self, name, fn):
        """ok when fn runs without Broken; a missing tool is a skip."""
        try:
            fn()
        except Unavailable as e:
            self.skip(name, e)
            return
        except Broken as e:
            self.ok(False, name, e)
            return
        self.ok(True, name)


def expect_broken(t, name, why, otherwise, action):
    """A smoke check that action is refused as a broken measurement whose
    message says why; otherwise: what the failure says when it is not."""
    try:
        action()
        t.ok(False, name, otherwise)
    except Broken as e:
        t.ok(why in str(e), name, e)


def smoke(bench):
    t = Tap()
    n = 300
    for mode, _ in PING_MODES:
        for key, _, cfg in PING_CONFIGS:
            t.attempt(
                "%s ping, %s: runs and checks its own result" % (mode, key),
                lambda cfg=cfg, mode=mode: ping_once(bench, cfg, mode, n),
            )
        for key, _, cfg in PAIRED_CONFIGS:
            t.attempt(
                "%s ping paired in one process, %s: runs and checks its own result" % (mode, key),
                lambda cfg=cfg, mode=mode: ping_once(bench, cfg, mode, n, paired=True),
            )
    for mode, _ in INJECT_MODES:
        for key, _, cfg in INJECT_CONFIGS:
            t.attempt(
                "%s, %s: every call gives EAGAIN, report agrees" % (mode, key),
                lambda cfg=cfg, mode=mode: ping_once(bench, cfg, mode, n),
            )

    # The checks can fail: an injected EAGAIN in the ping breaks it, and a
    # report of an armed rule that fired is refused.
    env = clean_env()
    env["LD_PRELOAD"] = bench.lib
    env["WOULDBLOCK_RULES"] = "input when=5"
    expect_broken(t, "a ping that met an injected EAGAIN is a broken measurement",
                  "broken measurement", "ping exited 0",
                  lambda: run([bench.ping, "pipe", "20"], env, "ping with an injection"))
    env = clean_env()
    env["LD_PRELOAD"] = bench.lib
    env["WOULDBLOCK_RULES"] = "all when=1000000000000;read when=3"
    env["WOULDBLOCK_REPORT"] = bench.report_path()

    def two_rules():
        fields = parse_line(run([bench.ping, "read-empty", "50"], env, "ping"))
        rule_check(True, False)(bench, fields)

    expect_broken(t, "the armed check refuses a report whose rules are not the armed one",
                  "report has 2 rules", "accepted", two_rules)

    # The floor rows refuse a run without the floor, and the floor refuses a
    # page count it cannot touch.
    fields = parse_line(run([bench.ping, "pipe", "20"], clean_env(), "plain ping"))
    expect_broken(t, "the floor's check refuses a ping without the floor mapped",
                  "floor_mapped=0", "accepted",
                  lambda: cfg_floor(None)(bench, 20, "pipe")[3](bench, fields))
    env = cfg_floor(None)(bench, 20, "pipe")[1]
    env["FLOOR_PAGES"] = "65"
    expect_broken(t, "the floor refuses more pages than it has", "FLOOR_PAGES=65",
                  "ping exited 0",
                  lambda: run([bench.ping, "pipe", "20"], env, "ping under the floor, FLOOR_PAGES=65"))

    t.attempt("every built-in scenario loads in /bin/true (report names them all)",
              lambda: check_library_loads(bench))
    for key, label, env in startup_configs(bench):
        t.attempt("start-up timer runs %s" % label, lambda env=env: spawn_batch(bench, env, 3))
    for key, label, env, preloaded in rss_configs(bench):
        t.attempt("memory of %s is read" % label, lambda env=env, pre=preloaded: rss_once(bench, env, pre))

    # The whole pipeline at its smallest: every row is present and none is invalid.
    res = measure(bench, 200, 1, 3, progress=False)
    text = render(res, 200, 1, 3)
    rows = [label for _, label, _ in PING_CONFIGS] + [label for _, label, _ in INJECT_CONFIGS]
    missing = [r for r in rows if r not in text]
    t.ok(not missing and not res.broken(), "the full table renders with every row valid",
         "missing rows: %s\nbroken: %s\n%s" % (missing, res.broken(), text))
    paired = [l for l in text.splitlines() if l.startswith(("| pipe |", "| socket |"))
              and l.count("|") == 7]
    t.ok(len(paired) == 2 * len(PAIRED_CONFIGS) and not any("invalid" in l for l in paired),
         "the paired table has every row, valid", "\n".join(paired) or text)
    derived = [l for l in text.splitlines() if l.startswith(("| pipe |", "| socket |"))
               and "| separate runs" in l or "| paired in one process" in l]
    t.ok(len(derived) == 6 and not any("n/a" in l or "| - " in l for l in derived),
         "the floor's derived figures are computed for both pings", "\n".join(derived) or text)
    res = measure(bench, 200, 1, 3, progress=False, only=("startup",))
    text = render(res, 200, 1, 3, only=("startup",))
    t.ok("### Start-up" in text and not any(label in text for _, label, _ in PING_CONFIGS)
         and not res.broken(), "--only startup measures and renders the start-up table alone",
         "broken: %s\n%s" % (res.broken(), text))
    print("1..%d" % t.n)
    return 1 if t.failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--iterations", type=int,
                    default=int(os.environ.get("BENCH_ITERATIONS", "1000000")))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "5")))
    ap.add_argument("--startup-runs", type=int,
                    default=int(os.environ.get("BENCH_STARTUP_RUNS", "200")))
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help="comma-separated sections to measure: %s (default: all)"
                    % ", ".join(SECTIONS))
    ap.add_argument("--smoke", action="store_true", help="TAP smoke test of the machinery")
    args = ap.parse_args()
    only = tuple(x.strip() for x in args.only.split(",") if x.strip())
    unknown = [x for x in only if x not in SECTIONS]
    if unknown or not only:
        ap.error("--only: unknown section %s (known: %s)"
                 % (", ".join(unknown) or "(none)", ", ".join(SECTIONS)))

    bench = Bench(args.build)
    try:
        for path in (bench.lib, bench.ping, bench.spawn, bench.floor):
            if not os.access(path, os.R_OK):
                print("run.py: %s is not built (make bench builds it)" % path, file=sys.stderr)
                return 1
        if args.smoke:
            return smoke(bench)
        if args.iterations < 1 or args.runs < 1 or args.startup_runs < 1:
            ap.error("counts must be >= 1")
        res = measure(bench, args.iterations, args.runs, args.startup_runs, only=only)
        print(render(res, args.iterations, args.runs, args.startup_runs, only=only))
        broken = res.broken()
        if broken:
            print("", file=sys.stderr)
            for key, why in broken:
                print("run.py: broken measurement %s: %s" % ("/".join(key), why), file=sys.stderr)
            return 1
        return 0
    finally:
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
