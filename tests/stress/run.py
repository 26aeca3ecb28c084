#!/usr/bin/env python3
"""run.py - the stress suite: faithful readiness and robustness, as TAP.

    run.py [--build DIR] [--only TAGS] [--list] [--env VAR=VALUE]...

Runs the programs of tests/stress/ (built by mk/stress.mk into DIR/stress)
under LD_PRELOAD with the library DIR/libwouldblock.so, each with its own
rules and a JSON report per process (WOULDBLOCK_REPORT=<tmp>/r.%p.json), and
checks the programs' own verdicts (they exit non-zero on a lost byte, a
wrong epoll_data, an unaccounted signal...) against the reports.

The environment:
  WB_BUILD                 the build directory when --build is not given
                           (default: build, relative to the repository)
  WB_PRELOAD_PREFIX        put in LD_PRELOAD before the library: a sanitizer
                           runtime (libasan, libtsan), which must come first.
                           Unset or empty: the one the library is linked
                           with, if any
  WB_ONLY                  like --only: comma-separated tags or case names
                           (tags: threaded, signals, fork, integrity, preload,
                           readiness, spin; "threaded" marks the cases worth
                           running under ThreadSanitizer: threads, and a
                           signal handler racing the main thread)
  WB_STRESS_SCALE          multiplies the iteration counts (default 1: the
                           issue's numbers; 0.1 for a slow sanitizer run)
  WB_STRESS_TIMEOUT_SCALE  multiplies the hang guards (default 1)
  WB_KEEP                  1: keep the temporary directory of reports

Timeouts are hang guards, never timing assertions: a case that runs into one
failed because something would have waited forever. --env VAR=VALUE adds a
variable to every run after the suite's own (e.g. WOULDBLOCK_DISABLE=1, to
see the cases fail when nothing is injected).
"""
import argparse
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class Failed(Exception):
    pass


class Skipped(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failed(message)


CASES = []


def case(name, *tags, timeout=120):
    def register(fn):
        CASES.append((name, set(tags), timeout, fn))
        return fn

    return register


class Run:
    """One program run: its output as key=value pairs, and its reports."""

    def __init__(self, argv, stdout, report_dir):
        self.argv = argv
        self.values = {}
        for line in stdout.splitlines():
            key, eq, value = line.partition("=")
            if eq and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                self.values[key] = value  # the last one wins: a parent prints last
        self.reports = {}
        for path in glob.glob(os.path.join(report_dir, "r.*.json")):
            with open(path) as f:
                text = f.read()
            try:
                report = json.loads(text)
            except ValueError as e:
                raise Failed("report %s is not JSON (%s): %r" % (path, e, text[:300]))
            self.reports[report["pid"]] = report

    def int(self, key):
        check(key in self.values, "%s printed no %s=" % (self.argv[0], key))
        return int(self.values[key])

    def report(self, pid=None):
        """The report of process pid (default: the only one)."""
        if pid is None:
            check(len(self.reports) == 1,
                  "expected one report, got %d (pids %s)" % (len(self.reports),
                                                             sorted(self.reports)))
            return next(iter(self.reports.values()))
        check(int(pid) in self.reports, "no report for pid %s (have %s)" % (pid,
                                                                          sorted(self.reports)))
        return self.reports[int(pid)]


def calls(report, name):
    return report["calls"][name]


def rule(report, i=0):
    return report["rules"][i]


class Suite:
    def __init__(self, build, extra_env):
        self.build = os.path.abspath(build)
        self.lib = os.path.join(self.build, "libwouldblock.so")
        self.bin = os.path.join(self.build, "stress")
        self.prefix = (os.environ.get("WB_PRELOAD_PREFIX", "").strip() or
                       sanitizer_runtime(self.lib))
        self.scale = float(os.environ.get("WB_STRESS_SCALE", "1") or 1)
        self.timeout_scale = float(os.environ.get("WB_STRESS_TIMEOUT_SCALE", "1") or 1)
        self.extra_env = extra_env
        self.tmp = tempfile.mkdtemp(prefix="wb-stress-")
        self.case_dir = None
        self.timeout = 120
        self.runs = 0

    def count(self, n, least=1):
        return max(least, int(n * self.scale))

    def prog(self, name):
        return os.path.join(self.bin, name)

    def preload(self, *libs):
        """LD_PRELOAD: the sanitizer runtime first, then libs (default: ours)."""
        return " ".join(([self.prefix] if self.prefix else []) + list(libs or [self.lib]))

    def run(self, argv, rules=None, env=None, preload=None):
        """Run argv under the library; fail unless it exits with status 0."""
        self.runs += 1
        report_dir = os.path.join(self.case_dir, "run%d" % self.runs)
        os.makedirs(report_dir)
        e = {k: v for k, v in os.environ.items() if not k.startswith("WOULDBLOCK_")}
        e["LD_PRELOAD"] = preload if preload is not None else self.preload()
        e["WOULDBLOCK_REPORT"] = os.path.join(report_dir, "r.%p.json")
        if rules is not None:
            e["WOULDBLOCK_RULES"] = rules
        e.update(env or {})
        e.update(self.extra_env)
        timeout = self.timeout * self.timeout_scale
        proc = subprocess.Popen(argv, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the run's own process group only
            out, err = proc.communicate()
            raise Failed("hung: %s did not finish within %.0f s (hang guard)\n%s" %
                         (shlex.join(argv), timeout, tail(err)))
        if proc.returncode != 0:
            raise Failed("%s exited with %s (rules %r)\n%s%s" % (
                shlex.join(argv), status(proc.returncode), rules, tail(out), tail(err)))
        return Run(argv, out, report_dir)


def sanitizer_runtime(lib):
    """The sanitizer runtime lib was linked with, which must come first in
    LD_PRELOAD ("" for none): for when WB_PRELOAD_PREFIX is not set at all."""
    try:
        out = subprocess.run(["ldd", lib], capture_output=True, text=True).stdout
    except OSError:
        return ""
    found = re.search(r"=>\s*(\S*/lib(?:asan|tsan|hwasan)\.so[.0-9]*)\s", out)
    return found.group(1) if found else ""


def status(rc):
    if rc < 0:
        return "signal %s" % signal.Signals(-rc).name
    return str(rc)


def tail(text, lines=15):
    text = text or ""
    rows = text.rstrip("\n").splitlines()
    if not rows:
        return ""
    return "\n".join(rows[-lines:]) + "\n"


# ---- 1. threads -------------------------------------------------------------


def sends_and_recvs_seen(r, rep, least):
    """The report's send and recv entries, once it is checked that the threads
    program made at least `least` of each and the report saw every one."""
    send, recv = calls(rep, "send"), calls(rep, "recv")
    check(r.int("send_calls") >= least and r.int("recv_calls") >= least,
          "fewer calls than asked: %s" % r.values)
    for name, entry in (("send", send), ("recv", recv)):
        check(entry["seen"] == r.int(name + "_calls"), "report saw %d %ss, the program made %d"
              % (entry["seen"], name, r.int(name + "_calls")))
    return send, recv


@case("threads: 8 threads x 1000000 wrapped calls under prob=0.5, every byte in order",
      "threaded", timeout=900)
def threads(s):
    n = s.count(1000000)
    r = s.run([s.prog("threads"), "4", str(n)], rules="all prob=0.5")
    rep = r.report()
    send, recv = sends_and_recvs_seen(r, rep, 4 * n)
    check(send["injected"] > 0 and recv["injected"] > 0, "nothing injected: %s %s" % (send, recv))
    check(r.int("send_eagain") >= send["injected"] and r.int("recv_eagain") >= recv["injected"],
          "injections the program never saw: %s vs %s %s" % (r.values, send, recv))
    check(rule(rep)["counted"] == send["seen"] + recv["seen"],
          "rule counted %d, calls seen %d" % (rule(rep)["counted"], send["seen"] + recv["seen"]))
    check(rule(rep)["injected"] == send["injected"] + recv["injected"],
          "rule injected %d, calls injected %d" % (rule(rep)["injected"],
                                                   send["injected"] + recv["injected"]))
    return "%d bytes, %d of %d calls injected" % (r.int("bytes"), rule(rep)["injected"],
                                                  rule(rep)["counted"])


@case("threads: passed-through calls counted exactly by 3 waves of 80 threads (more than "
      "the 64 shards)", "threaded", timeout=600)
def threads_passthrough(s):
    n = s.count(20000, least=200)
    # a rule naming neither send nor recv: both pass straight through
    r = s.run([s.prog("threads"), "40", str(n), "3"], rules="connect")
    rep = r.report()
    send, recv = sends_and_recvs_seen(r, rep, 120 * n)
    check(send["injected"] == 0 and recv["injected"] == 0, "injected: %s %s" % (send, recv))
    return "%d threads, %d calls" % (r.int("threads"), send["seen"] + recv["seen"])


# ---- 2. signals -------------------------------------------------------------


def signal_run(s, mode, rules="all prob=0.5"):
    ms = s.count(3000, least=200)
    r = s.run([s.prog("signals"), mode, str(ms), "200"], rules=rules)
    rep = r.report()
    check(r.int("signals") > 0, "no signal handled")
    check(r.int("signals") == r.int("bytes_read") + r.int("handler_eagain"),
          "signals unaccounted for: %s" % r.values)
    check(calls(rep, "write")["seen"] == r.int("signals"),
          "the handler wrote %d times, the report saw %d writes" % (
              r.int("signals"), calls(rep, "write")["seen"]))
    check(r.int("handler_eagain") >= calls(rep, "write")["injected"],
          "the handler saw fewer EAGAINs than were injected")
    if rules != "connect":
        check(calls(rep, "read")["injected"] > 0, "no read was injected: %s" % calls(rep, "read"))
    return r, rep


@case("signals: 5 kHz SIGALRM writing a self-pipe inside wrapped calls, every signal "
      "accounted for", "signals", "threaded", timeout=120)
def signals_self_pipe(s):
    r, rep = signal_run(s, "self-pipe")
    for name in ("recv", "send"):
        check(calls(rep, name)["injected"] > 0, "no %s was injected: %s" % (name,
                                                                             calls(rep, name)))
    return "%d signals, %d handler EAGAINs (%d injected), %d reads injected" % (
        r.int("signals"), r.int("handler_eagain"), calls(rep, "write")["injected"],
        calls(rep, "read")["injected"])


@case("signals: 5 kHz SIGALRM writing a self-pipe inside passed-through calls, every write "
      "counted", "signals", "threaded", timeout=120)
def signals_self_pipe_passthrough(s):
    # no rule names the calls: the handler's writes land inside pass-through
    # wrappers (in the middle of a count, too) and must each count once
    r, rep = signal_run(s, "self-pipe", rules="connect")
    for name in ("write", "read", "recv", "send"):
        check(calls(rep, name)["injected"] == 0, "%s injected: %s" % (name, calls(rep, name)))
    check(calls(rep, "send")["seen"] > 0 and calls(rep, "recv")["seen"] > 0,
          "no stream traffic: %s %s" % (calls(rep, "send"), calls(rep, "recv")))
    return "%d signals, %d handler EAGAINs, %d writes seen" % (
        r.int("signals"), r.int("handler_eagain"), calls(rep, "write")["seen"])


@case("signals: a handler writes to an fd while the main thread re-registers it with "
      "EPOLL_CTL_MOD", "signals", "threaded", timeout=120)
def signals_epoll_mod(s):
    r, rep = signal_run(s, "epoll-mod")
    check(calls(rep, "write")["injected"] > 0, "no write was injected in the handler")
    return "%d signals during %d EPOLL_CTL_MODs, %d handler EAGAINs (%d injected)" % (
        r.int("signals"), r.int("mods"), r.int("handler_eagain"),
        calls(rep, "write")["injected"])


# ---- 3. fork, vfork, posix_spawn, exec ---------------------------------------

RECV_WHEN_1 = "recv when=1"


def child_report(r, pid, k, what):
    rep = r.report(pid)
    want_injected = 1 if k else 0  # recv when=1: the first call on its one fd
    check(rule(rep)["counted"] == k and rule(rep)["injected"] == want_injected,
          "%s (pid %s): counted %d injected %d, expected %d and %d (its own calls only)" % (
              what, pid, rule(rep)["counted"], rule(rep)["injected"], k, want_injected))
    check(calls(rep, "recv")["seen"] == k, "%s: calls.recv.seen %d, expected %d" % (
        what, calls(rep, "recv")["seen"], k))
    return rep


def own_report(r, what):
    rep = r.report(r.int("pid"))
    check(rule(rep)["counted"] == r.int("recv_calls"),
          "%s: counted %d, the process made %d recv calls" % (what, rule(rep)["counted"],
                                                              r.int("recv_calls")))
    check(rule(rep)["injected"] == r.int("recv_fds"),
          "%s: injected %d, expected one per fd (%d)" % (what, rule(rep)["injected"],
                                                         r.int("recv_fds")))
    return rep


@case("fork: children of a threaded parent (exit and _exit) count from zero, one report "
      "each", "fork", "threaded")
def fork_threaded(s):
    k = 7
    r = s.run([s.prog("forks"), "fork-threaded", str(k)], rules=RECV_WHEN_1)
    own_report(r, "parent")
    child_report(r, r.int("child_exit"), k, "child ending with exit()")
    child_report(r, r.int("child__exit"), k, "child ending with _exit()")
    check(len(r.reports) == 3, "expected 3 reports, got pids %s" % sorted(r.reports))
    return "parent: %d recv calls; children: %d each" % (r.int("recv_calls"), k)


@case("fork: vfork+exec, posix_spawn and a vfork child that _exits leave the parent's "
      "report alone", "fork")
def fork_spawn(s):
    k = 6
    r = s.run([s.prog("forks"), "spawn", str(k)], rules=RECV_WHEN_1)
    own_report(r, "parent")
    child_report(r, r.int("child_vfork_exec"), k, "vfork+exec child")
    child_report(r, r.int("child_spawn"), k, "posix_spawn child")
    if r.int("vfork_shared"):
        check(r.int("child_vfork_exit") not in r.reports,
              "the vfork child that never exec'd wrote a report of the parent's memory")
        check(len(r.reports) == 3, "expected 3 reports, got pids %s" % sorted(r.reports))
    else:
        # vfork is a fork here (ThreadSanitizer makes it one): that child is a
        # process of its own, which made no call
        child_report(r, r.int("child_vfork_exit"), 0, "vfork child (a fork here) that _exits")
        check(len(r.reports) == 4, "expected 4 reports, got pids %s" % sorted(r.reports))


@case("fork: O_NONBLOCK cleared and set again by a child on a shared fd: no EAGAIN on a "
      "blocking call, injections again once non-blocking", "fork")
def shared_flags(s):
    r = s.run([s.prog("forks"), "shared-flags"], rules="recv")
    rep = r.report(r.int("pid"))
    # recv 1: non-blocking, injected; recv 2: blocking (the program checked it
    # got its byte), not counted; recv 3: non-blocking again, injected
    check(r.int("last_recv") == -1, "the recv on the fd made non-blocking again was not "
          "injected (returned %d): the library still takes it for blocking" % r.int("last_recv"))
    check(rule(rep)["counted"] == 2 and rule(rep)["injected"] == 2,
          "counted %d injected %d, expected 2 and 2 (the non-blocking calls only)" % (
              rule(rep)["counted"], rule(rep)["injected"]))


@case("fork: a process that ends with _exit writes its report", "fork")
def exit_underscore(s):
    k = 5
    r = s.run([s.prog("forks"), "recv", str(k), "_exit"], rules=RECV_WHEN_1)
    child_report(r, r.int("pid"), k, "process ending with _exit")


@case("fork: exec chains, one report per process image that exits", "fork")
def exec_chains(s):
    k = 4
    forks = s.prog("forks")
    r = s.run([forks, "exec-self", str(k)], rules=RECV_WHEN_1)
    check(len(r.reports) == 1, "exec-self: expected one report, got %d" % len(r.reports))
    child_report(r, r.int("pid"), k, "the image exec'd by forks exec-self")
    r = s.run(["sh", "-c", "exec %s recv %d" % (shlex.quote(forks), k)], rules=RECV_WHEN_1)
    check(len(r.reports) == 1, "sh -c 'exec ...': expected one report, got %d" % len(r.reports))
    rep = child_report(r, r.int("pid"), k, "sh -c 'exec forks recv'")
    check(os.path.basename(rep["program"]) == "forks", "program is %r" % rep["program"])
    r = s.run(["sh", "-c", "%s recv %d; true" % (shlex.quote(forks), k)], rules=RECV_WHEN_1)
    check(len(r.reports) == 2, "sh -c 'prog; true': expected reports of sh and prog, got %d" %
          len(r.reports))
    child_report(r, r.int("pid"), k, "forks run by sh")


@case("fork: Python's subprocess and make start children that count on their own", "fork")
def tool_children(s):
    k = 3
    forks = s.prog("forks")
    done = []
    if shutil.which("python3"):
        # python3's own allocations at exit are not ours to report
        asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "detect_leaks=0"]))
        r = s.run(["python3", "-c",
                   "import subprocess, sys; subprocess.run(sys.argv[1:], check=True)",
                   forks, "recv", str(k)], rules=RECV_WHEN_1, env={"ASAN_OPTIONS": asan})
        check(len(r.reports) == 2, "python3: expected 2 reports, got %d" % len(r.reports))
        child_report(r, r.int("pid"), k, "child of python3's subprocess")
        done.append("python3")
    if shutil.which("make"):
        makefile = os.path.join(s.case_dir, "Makefile")
        with open(makefile, "w") as f:
            f.write("all:\n\t@%s recv %d\n" % (forks, k))
        # not the jobserver of a make this suite may run under
        quiet = {"MAKEFLAGS": "", "MFLAGS": "", "MAKELEVEL": ""}
        r = s.run(["make", "-s", "-f", makefile], rules=RECV_WHEN_1, env=quiet)
        child_report(r, r.int("pid"), k, "child of make")
        done.append("make")
    if not done:
        raise Skipped("neither python3 nor make is installed")
    return ", ".join(done)


# ---- 4. data integrity ------------------------------------------------------

INTEGRITY_RULES = "input,output prob=0.3; input short=7 prob=0.3; output short=5 prob=0.3"
INTEGRITY_CALLS = {
    "socketpair": ("send", "recv", "writev", "readv", "sendmsg", "recvmsg"),
    "pipe": ("write", "read", "writev", "readv"),
}


def integrity(s, transport, wait):
    mib = s.count(64)
    r = s.run([s.prog("integrity"), transport, wait, str(mib)], rules=INTEGRITY_RULES)
    rep = r.report()
    check(r.int("bytes") == mib << 20, "only %d bytes" % r.int("bytes"))
    check(r.values["checksum"] == r.values["writer_checksum"], "checksums differ")
    eagains, in_short, out_short = (rule(rep, i)["injected"] for i in range(3))
    check(eagains > 0, "no EAGAIN was injected")
    check(in_short > 0 and out_short > 0, "short counts injected: input %d, output %d" % (
        in_short, out_short))
    check(r.int("eagain") >= eagains, "the program saw %d EAGAINs, %d were injected" % (
        r.int("eagain"), eagains))
    for name in INTEGRITY_CALLS[transport]:
        check(calls(rep, name)["injected"] > 0, "no %s was injected: %s" % (name,
                                                                             calls(rep, name)))
    return "%d MiB, checksum %s, %d EAGAINs and %d short counts injected" % (
        mib, r.values["checksum"], eagains, in_short + out_short)


for _transport, _wait in (("socketpair", "poll"), ("pipe", "select"), ("socketpair", "select"),
                          ("pipe", "poll")):
    case("integrity: 64 MiB through a %s, %s loop, EAGAIN and short= mixed" % (_transport, _wait),
         "integrity", timeout=300)(lambda s, t=_transport, w=_wait: integrity(s, t, w))

# ---- 5. preload order -------------------------------------------------------


def preload_order(s, where):
    other = os.path.join(s.bin, "libwbother.so")
    out = os.path.join(s.case_dir, "other.%s" % where)
    prog = s.prog("preload_prog")
    env = {"WB_OTHER_OUT": out}
    if where == "only":
        preload = s.preload()
    elif where == "before":
        preload = s.preload(other, s.lib)
    elif where == "after":
        preload = s.preload(s.lib, other)
    else:  # libasan in front, on a program built with -fsanitize=address
        prog = s.prog("preload_prog_asan")
        if s.prefix:
            raise Skipped("WB_PRELOAD_PREFIX is set: every case here runs behind that runtime")
        if not os.path.exists(prog):
            raise Skipped("%s was not built (a ThreadSanitizer build, or %s cannot link "
                          "-fsanitize=address)" % (prog, os.environ.get("CC", "cc")))
        cc = os.environ.get("CC", "cc")
        asan = subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True,
                              text=True).stdout.strip()
        if not os.path.isabs(asan):
            raise Skipped("%s has no libasan.so" % cc)
        preload = "%s %s" % (asan, s.lib)
        env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "detect_leaks=0")
    r = s.run([prog], rules="read prob=0.5", preload=preload, env=env)
    rep = r.report()
    read = calls(rep, "read")
    check(read["seen"] == r.int("reads"), "report saw %d reads, the program made %d" % (
        read["seen"], r.int("reads")))
    check(read["injected"] > 0, "nothing injected with LD_PRELOAD=%r" % preload)
    check(read["injected"] <= r.int("eagain"), "injections the program never saw")
    if where in ("before", "after"):
        with open(out) as f:
            seen = int(f.read().strip().split("=")[1])
        # in front it sees every read; behind, the ones the library let through
        want = r.int("reads") if where == "before" else r.int("reads") - read["injected"]
        check(seen == want, "libwbother.so %s the library saw %d reads, expected %d" % (
            where, seen, want))
    return "%d of %d reads injected" % (read["injected"], read["seen"])


for _where, _what in (("only", "the only preload"), ("before", "behind another preload"),
                      ("after", "in front of another preload"),
                      ("asan", "behind libasan")):
    case("preload: injections happen with the library %s" % _what, "preload")(
        lambda s, w=_where: preload_order(s, w))

# ---- 6. readiness -----------------------------------------------------------


def reader_rounds(s, kind, wait):
    rounds = s.count(2000)
    r = s.run([s.prog("readiness"), kind, wait, str(rounds)], rules="input prob=0.5")
    if "skip" in r.values:
        raise Skipped(r.values["skip"])
    rep = r.report()
    check(r.int("injected_with_data") > 0, "no EAGAIN was injected with data left")
    check(r.int("reported_after_injection") == r.int("injected_with_data"),
          "not every injected EAGAIN was followed by a report: %s" % r.values)
    check(calls(rep, "read")["injected"] + calls(rep, "recv")["injected"] >=
          r.int("injected_with_data"), "the report shows fewer injections than the program saw")
    how = "owed edges delivered" if kind == "et" else "reported again by the kernel"
    return "%d EAGAINs injected with data left, %d %s" % (
        r.int("injected_with_data"), r.int("reported_after_injection"), how)


for _wait in ("epoll_wait", "epoll_pwait", "epoll_pwait2"):
    case("readiness: edge-triggered %s reader finishes, the fd is reported again with its own "
         "epoll_data" % _wait, "readiness")(lambda s, w=_wait: reader_rounds(s, "et", w))
for _wait in ("epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect"):
    case("readiness: level-triggered %s reports the fd ready again after an injected EAGAIN" %
         _wait, "readiness")(lambda s, w=_wait: reader_rounds(s, "lt", w))


@case("readiness: edge-triggered EPOLLOUT writer is woken after an injected EAGAIN on output",
      "readiness")
def et_writer(s):
    r = s.run([s.prog("readiness"), "et-writer", str(s.count(2000))], rules="output prob=0.5")
    check(r.int("woken") == r.int("eagain") and r.int("eagain") > 0,
          "EAGAINs and wake-ups: %s" % r.values)
    check(r.int("only_owed") > 0, "no EAGAIN was injected while the kernel called the socket "
          "writable: nothing shows the owed EPOLLOUT edge")
    check(calls(r.report(), "send")["injected"] == r.int("eagain"),
          "the report's send injections differ from the EAGAINs seen")
    return "%d EAGAINs injected on send, %d woken by an owed edge alone" % (
        r.int("eagain"), r.int("only_owed"))


@case("readiness: one fd in two epoll instances, EPOLL_CTL_MOD, EPOLL_CTL_DEL, close and reuse",
      "readiness")
def two_instances(s):
    s.run([s.prog("readiness"), "two"], rules="input prob=0.5")


@case("readiness: eight fds owed an edge at once come one by one with maxevents 1, once each; "
      "a reused epoll fd number inherits nothing", "readiness")
def many_owed(s):
    s.run([s.prog("readiness"), "many"], rules="input prob=0.5")


@case("readiness: EPOLLONESHOT stays disarmed after an injected EAGAIN until rearmed",
      "readiness")
def oneshot(s):
    r = s.run([s.prog("readiness"), "oneshot"], rules="input prob=0.5")
    return "%d rounds" % r.int("rounds")


# ---- 7. until=poll, 8. spin --------------------------------------------------

INJECTION_LINE = re.compile(r"^wouldblock\[\d+\]: [a-z0-9_]+\(fd=-?\d+")


def until_poll(s, retries, limit):
    log = os.path.join(s.case_dir, "log.%d" % retries)
    r = s.run([s.prog("spin"), "until-poll", str(retries)], rules="recv when=1 until=poll",
              env={"WOULDBLOCK_LOG": log, "WOULDBLOCK_SPIN_LIMIT": str(limit)})
    rep = r.report()
    spin = rep["spin"]
    check(spin["length"] >= retries + 1 and spin["fd"] == r.int("fd_poll") and
          spin["call"] == "recv",
          "spin %s, expected >= %d on fd %d (recv)" % (spin, retries + 1, r.int("fd_poll")))
    failed = r.int("failed_poll") + r.int("failed_select") + r.int("failed_epoll")
    check(calls(rep, "recv")["injected"] == failed, "report injected %d recvs, %d failed" % (
        calls(rep, "recv")["injected"], failed))
    with open(log) as f:
        lines = f.read().splitlines()
    injections = [l for l in lines if INJECTION_LINE.match(l)]
    others = [l for l in lines if not INJECTION_LINE.match(l)]
    check(len(injections) == failed, "log has %d injection lines, %d recvs failed" % (
        len(injections), failed))
    return spin, others


@case("until=poll: recv fails until a wait reports the fd; a retry loop spins, the log warns "
      "once", "spin")
def until_poll_spins(s):
    retries, limit = 3000, 700
    spin, others = until_poll(s, retries, limit)
    # two fds (3001 and 1501 failures) pass the limit: one warning in all
    check(len(others) == 1, "expected one warning in the log, got %r" % others)
    check(str(limit) in others[0], "the warning does not name the limit: %r" % others[0])
    spin2, others2 = until_poll(s, 600, limit)
    check(not others2, "warned though no run passed the limit: %r" % others2)
    return "spin %d on fd %d; warning: %s" % (spin["length"], spin["fd"], others[0])


for _how in ("poll", "select", "epoll"):
    @case("spin: a correct %s loop under input prob=0.5 shows a spin of 1 or 2" % _how, "spin")
    def correct_loop(s, how=_how):
        r = s.run([s.prog("spin"), "correct", how, str(s.count(1 << 20))],
                  rules="input prob=0.5")
        rep = r.report()
        spin = rep["spin"]
        check(calls(rep, "recv")["injected"] > 0, "nothing injected: %s" % calls(rep, "recv"))
        check(1 <= spin["length"] <= 2, "spin %s" % spin)
        return "spin %d over %d recv calls" % (spin["length"], r.int("recv_calls"))


@case("spin: a busy-wait shows thousands", "spin")
def busy(s):
    r = s.run([s.prog("spin"), "busy", "5000"], rules="input prob=0.5")
    spin = r.report()["spin"]
    check(spin["length"] >= 5000 and spin["fd"] == r.int("fd"), "spin %s" % spin)
    return "spin %d" % spin["length"]


# ---- the driver -------------------------------------------------------------


def selected(only):
    if not only:
        return CASES
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    return [c for c in CASES if c[1] & wanted or c[0] in wanted or c[3].__name__ in wanted]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("WB_BUILD", "build"))
    ap.add_argument("--only", default=os.environ.get("WB_ONLY", ""))
    ap.add_argument("--list", action="store_true", help="list the cases and their tags")
    ap.add_argument("--env", action="append", default=[], metavar="VAR=VALUE")
    args = ap.parse_args()
    build = args.build if os.path.isabs(args.build) else os.path.join(REPO, args.build)
    cases = selected(args.only)
    if args.list:
        for name, tags, _, _ in cases:
            print("%-12s %s" % (",".join(sorted(tags)), name))
        return 0
    extra = dict(kv.split("=", 1) for kv in args.env)
    s = Suite(build, extra)
    if not os.path.exists(s.lib):
        print("Bail out! %s is missing: run make first" % s.lib)
        return 1
    print("1..%d" % len(cases))
    print("# library %s, LD_PRELOAD prefix %r, scale %g" % (s.lib, s.prefix, s.scale))
    failed = 0
    start = time.monotonic()
    for n, (name, tags, timeout, fn) in enumerate(cases, 1):
        s.case_dir = os.path.join(s.tmp, "case%d" % n)
        os.makedirs(s.case_dir)
        s.timeout = timeout
        t0 = time.monotonic()
        try:
            note = fn(s)
            print("ok %d - %s" % (n, name))
            if note:
                print("# %s" % note)
        except Skipped as e:
            print("ok %d - %s # SKIP %s" % (n, name, e))
        except Failed as e:
            failed += 1
            print("not ok %d - %s" % (n, name))
            for line in str(e).splitlines():
                print("#   %s" % line)
        print("# %.1f s" % (time.monotonic() - t0))
        sys.stdout.flush()
    print("# %d cases in %.1f s" % (len(cases), time.monotonic() - start))
    if failed or os.environ.get("WB_KEEP") == "1":
        print("# reports and logs kept in %s" % s.tmp)
    else:
        shutil.rmtree(s.tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
