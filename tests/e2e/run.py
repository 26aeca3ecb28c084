#!/usr/bin/env python3
"""run.py - the end-to-end suite: real programs under LD_PRELOAD=libwouldblock.so.

Runs small C programs (wbprobe.c, plain and fortified) and Python scripts
(pyprobe.py) under the library with WOULDBLOCK_* settings, and checks what
they observe: return values, errno, the bytes that moved, the log and the
JSON report. The probes judge nothing; every expectation is here, so each
check can be seen to fail by running without the rule it needs
(--no-inject drops every rule and scenario: the cases that depend on an
injection must then fail).

Prints TAP: "ok N - name", "not ok N - name" with "# " diagnostics, skips as
"ok N - name # SKIP why". Exits 1 if any case failed.

    run.py --build DIR [-v] [--no-inject] [--musl] [REGEX...]

DIR holds libwouldblock.so and e2e/wbprobe{,-fortify} (mk/e2e.mk passes it).
--musl: DIR is a musl build (make test-musl): only the C programs, linked
with musl too, can load its library; the other cases skip, saying why.
REGEX (or E2E_FILTER) selects cases by name. WB_PRELOAD_PREFIX (make
sanitize) goes in front of the library in LD_PRELOAD. Standard library only.
"""
import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = os.path.join(HERE, "..", "..", "conf", "wouldblock.conf")
MSG = b"the quick brown fox!"
ALPHABET = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
HANG_GUARD = 60  # seconds a single program may run before it counts as hung
LOG_RE = re.compile(
    r"^wouldblock\[(?P<pid>\d+)\]: (?P<call>\w+)\(fd=(?P<fd>\d+)(?:, (?P<size>\d+))?\) = "
    r"(?P<ret>-?\d+)(?: (?P<err>E[A-Z0-9]+)| short)? "
    r"\[(?P<scenario>[^:\]]+):(?P<line>\d+) call (?P<callno>\d+) (?:on fd (?P<scope_fd>\d+)|in process)\]$"
)


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def equal(actual, expected, what):
    if actual != expected:
        raise Fail("%s: expected %r, got %r" % (what, expected, actual))


# ---- running a program ----


class Result:
    """What one run left behind: exit status, output as key -> value, the
    log lines and the report."""

    def __init__(self, argv, env_shown, proc, log_lines, report_dir):
        self.argv = argv
        self.env_shown = env_shown
        self.rc = proc.returncode
        self.stdout = proc.stdout.decode("utf-8", "replace")
        self.stderr = proc.stderr.decode("utf-8", "replace")
        self.log = log_lines
        self.report_dir = report_dir
        self.kv = {}
        for line in self.stdout.splitlines():
            key, _, value = line.partition(" ")
            self.kv[key] = value

    def __getitem__(self, key):
        if key not in self.kv:
            raise Fail("the program printed no %r\n%s" % (key, self.describe()))
        return self.kv[key]

    def get(self, key, default=None):
        return self.kv.get(key, default)

    def bytes(self, key):
        """a value printed by put_bytes, as bytes"""
        return unescape(self[key])

    def report(self):
        """the one JSON report this run wrote"""
        files = os.listdir(self.report_dir) if self.report_dir else []
        check(len(files) == 1, "expected one report file, found %r" % files)
        path = os.path.join(self.report_dir, files[0])
        with open(path, "rb") as f:
            raw = f.read()
        try:
            return files[0], json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise Fail("report %s is not valid UTF-8 JSON: %s\n%r" % (path, e, raw[:2000]))

    def describe(self):
        lines = ["repro: %s %s" % (self.env_shown, " ".join(shlex.quote(a) for a in self.argv))]
        lines.append("exit status %s" % self.rc)
        lines += ["stdout: " + l for l in self.stdout.splitlines()[-40:]]
        lines += ["stderr: " + l for l in self.stderr.splitlines()[-20:]]
        lines += ["log: " + l for l in self.log[-20:]]
        return "\n".join(lines)

    def ok(self):
        """the program ran to completion; anything else is a failure"""
        if (self.rc == 4 and "loopback of family" in self.stderr) or (
                self.rc == 5 and "C library has no" in self.stderr):
            raise Skip(self.stderr.strip().splitlines()[-1])
        check(self.rc == 0, "the program failed (%s)\n%s" % (self.rc, self.describe()))
        return self


def unescape(text):
    """wbprobe's \\xNN escapes back to bytes"""
    out = bytearray()
    i = 0
    while i < len(text):
        if text.startswith("\\x", i):
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            out += text[i].encode("latin-1")
            i += 1
    return bytes(out)


class Suite:
    def __init__(self, build, verbose, no_inject, musl=False):
        self.build = os.path.abspath(build)
        self.lib = os.path.join(self.build, "libwouldblock.so")
        self.probe = os.path.join(self.build, "e2e", "wbprobe")
        self.fortified = os.path.join(self.build, "e2e", "wbprobe-fortify")
        self.pyprobe = os.path.join(HERE, "pyprobe.py")
        self.python = sys.executable
        self.verbose = verbose
        self.no_inject = no_inject
        self.tmp = tempfile.mkdtemp(prefix="wb-e2e-")
        self.runs = 0
        self.musl = musl
        for path in (self.lib, self.probe) + (() if musl else (self.fortified,)):
            if not os.path.exists(path):
                sys.exit("run.py: %s is missing: run make first" % path)
        # a sanitizer runtime must come first in LD_PRELOAD: the Makefile's
        # sanitize target names it, else it is found beside the library
        prefix = os.environ.get("WB_PRELOAD_PREFIX", "").replace(":", " ").split()
        self.preload = (prefix or self.sanitizer_runtimes()) + [self.lib]
        self.base_env = {
            k: v for k, v in os.environ.items() if not k.startswith("WOULDBLOCK_") and k != "LD_PRELOAD"
        }
        self.base_env["PYTHONDONTWRITEBYTECODE"] = "1"
        if len(self.preload) > 1:
            # Python leaks by design; the probes are not linked in ASan's order
            self.base_env["ASAN_OPTIONS"] = (
                os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0:verify_asan_link_order=0"
            ).lstrip(":")

    def sanitizer_runtimes(self):
        """A library built with -fsanitize needs its runtime first in
        LD_PRELOAD for programs that were not (Python)."""
        try:
            out = subprocess.run(["ldd", self.lib], capture_output=True, timeout=30).stdout.decode()
        except (OSError, subprocess.TimeoutExpired):
            return []
        found = re.findall(r"(lib(?:asan|ubsan|tsan|lsan)\.so[^ ]*) => (\S+)", out)
        return [path for _, path in found]

    def newdir(self, name):
        self.runs += 1
        d = os.path.join(self.tmp, "%d-%s" % (self.runs, name))
        os.mkdir(d)
        return d

    def run(
        self,
        argv,
        rules=None,
        scenario=None,
        env=None,
        preload=True,
        log=True,
        report=False,
        executable=None,
        timeout=HANG_GUARD,
        pass_fds=(),
    ):
        """Run argv with the library (unless preload=False). rules/scenario
        become WOULDBLOCK_RULES/SCENARIO; env adds variables. The log goes to
        a file of this run (log=True) and comes back as result.log."""
        if self.no_inject:
            rules = scenario = None
        if self.musl and preload:
            self.musl_only(executable or argv[0])
        e = dict(self.base_env)
        shown = {}
        if preload:
            shown["LD_PRELOAD"] = ":".join(self.preload)
        if rules is not None:
            shown["WOULDBLOCK_RULES"] = rules
        if scenario is not None:
            shown["WOULDBLOCK_SCENARIO"] = scenario
        logdir = self.newdir("log") if log and preload else None
        if logdir:
            shown["WOULDBLOCK_LOG"] = os.path.join(logdir, "log.%p")
        report_dir = None
        if report and preload:
            report_dir = self.newdir("report")
            shown["WOULDBLOCK_REPORT"] = os.path.join(report_dir, "report.%p.json")
        shown.update(env or {})
        e.update(shown)
        env_shown = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in shown.items())
        try:
            proc = subprocess.run(
                argv, env=e, capture_output=True, timeout=timeout, executable=executable, cwd=self.tmp,
                pass_fds=pass_fds,
            )
        except subprocess.TimeoutExpired as t:
            raise Fail(
                "hung: killed after %ss (hang guard)\nrepro: %s %s\nstdout: %s"
                % (timeout, env_shown, " ".join(map(shlex.quote, map(str, argv))), t.stdout)
            )
        log_lines = []
        if logdir:
            for name in sorted(os.listdir(logdir)):
                with open(os.path.join(logdir, name), encoding="utf-8", errors="replace") as f:
                    log_lines += f.read().splitlines()
        shown_argv = [a.decode("latin-1") if isinstance(a, bytes) else a for a in argv]
        r = Result(shown_argv, env_shown, proc, log_lines, report_dir)
        if self.verbose:
            print("# " + r.describe().replace("\n", "\n# "))
        return r

    def musl_only(self, program):
        """Under --musl only the programs built here with musl can load the
        library: skip the rest, saying why."""
        if program == self.fortified:
            raise Skip("musl build: musl has no fortified _chk entry points")
        if not os.fsdecode(program).startswith(self.build + os.sep):
            raise Skip("musl build: %s is linked with glibc, which cannot load the musl-built library"
                       % os.path.basename(os.fsdecode(program)))

    def c(self, *args, fortified=False, **kw):
        return self.run([self.fortified if fortified else self.probe] + list(args), **kw)

    def py(self, *args, **kw):
        return self.run([self.python, self.pyprobe] + list(args), **kw)


# ---- the cases ----

CASES = []


def case(name):
    def register(fn):
        CASES.append((name, fn))
        return fn

    return register


def conf_rule_line(scenario, index=0):
    """line number of a scenario's index-th rule in conf/wouldblock.conf"""
    inside, seen = False, 0
    with open(CONF) as f:
        for no, line in enumerate(f, 1):
            text = line.split("#", 1)[0].strip()
            if text.startswith("["):
                inside = text == "[%s]" % scenario
            elif inside and text and not text.startswith("description"):
                if seen == index:
                    return no
                seen += 1
    raise Fail("no rule %d in [%s] of %s" % (index, scenario, CONF))


def injections(result, call=None):
    return [l for l in result.log if LOG_RE.match(l) and (call is None or LOG_RE.match(l)["call"] == call)]


def expect_injected(result, call, count=None):
    got = injections(result, call)
    if count is None:
        check(got, "no %s injection in the log\n%s" % (call, result.describe()))
    else:
        check(len(got) == count, "expected %d %s injection(s) in the log, got %d\n%s"
              % (count, call, len(got), result.describe()))


def rule_totals(result):
    """(counted, injected) of each active rule, from the run's report"""
    _, rep = result.report()
    return [(x["counted"], x["injected"]) for x in rep["rules"]]


def expect_cut(result, minimum=1):
    """the log shows short counts (so the rule really cut calls)"""
    cut = [l for l in result.log if re.search(r"\) = \d+ short ", l)]
    check(len(cut) >= minimum, "%d short injections in the log, expected at least %d\n%s"
          % (len(cut), minimum, result.describe()))


def outcome(result, key, expected):
    """result[key] == expected ("20", "-1 EAGAIN"), with the run shown on failure"""
    got = result[key]
    if got != expected:
        raise Fail("%s: expected %r, got %r\n%s" % (key, expected, got, result.describe()))


def startup_syscalls(s, env):
    """The readlink, getpid and membarrier calls of /bin/true's run under
    the library with env (strace: /bin/true itself makes none of them)."""
    if not shutil.which("strace"):
        raise Skip("strace is not installed")
    if len(s.preload) > 1 or s.musl:
        raise Skip("a sanitizer runtime or musl's loader makes calls of its own")
    out = os.path.join(s.newdir("strace"), "trace")
    argv = ["strace", "-f", "-qq", "-o", out, "-e", "trace=readlink,readlinkat,getpid,membarrier,mmap",
            "-E", "LD_PRELOAD=" + s.lib, "/bin/true"]
    r = s.run(argv, env=env, preload=False, log=False)
    if r.rc != 0 and not os.path.exists(out):
        raise Skip("strace cannot trace here: %s" % (r.stderr.strip().splitlines() or ["?"])[-1])
    check(r.rc == 0, "exit status %d\n%s" % (r.rc, r.describe()))
    calls = []
    with open(out) as f:
        for line in f:
            m = re.match(r"(?:\d+ +)?(\w+)\(([^,)]*)", line)
            if m and m.group(1) == "mmap":
                # the loader's mappings and libc's are not ours; a rule
                # set's is MAP_NORESERVE (its per-fd slots)
                if "MAP_NORESERVE" in line:
                    calls.append("mmap(MAP_NORESERVE")
            elif m:
                calls.append("%s(%s" % m.groups())  # the name and the first argument
    return calls


@case("init: start-up makes no system call that no rule needs (without rules: one membarrier)")
def _(s):
    # the executable's name (readlink) is read for process=, site= and
    # recording only, the pid for a report only, and membarrier registers
    # without a query first; without rules no rule set is mapped at all
    equal(startup_syscalls(s, {}), ["membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED"],
          "system calls")
    equal(startup_syscalls(s, {"WOULDBLOCK_SCENARIO": "first-read"}),
          ["mmap(MAP_NORESERVE", "membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED"],
          "system calls")
    got = startup_syscalls(s, {"WOULDBLOCK_RULES": "read process=true"})
    equal(got, ['readlink("/proc/self/exe"', "mmap(MAP_NORESERVE",
                "membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED"], "system calls with process=")


@case("init: with a report, a process that never had a second thread writes 2 pages of its status")
def _(s):
    # its counts are all in the only thread's shard, on the status's first
    # pages: the 64 threads' shards (49 pages) are neither copied nor summed
    code = ("import os; st = os.stat(os.environ['WOULDBLOCK_REPORT'].replace('%p', str(os.getpid()))"
            " + '.status'); print(st.st_size, st.st_blocks * 512 // 4096)")
    r = s.run([s.python, "-c", code], report=True)
    check(r.rc == 0, "exit status %d\n%s" % (r.rc, r.describe()))
    size, pages = map(int, r.stdout.split())
    if pages == 0:
        raise Skip("this file system reports no blocks for a written file (st_blocks 0)")
    check(size > 40 * 4096, "the status file is only %d bytes\n%s" % (size, r.describe()))
    check(pages <= 3, "%d pages of the status file written at start, expected 2\n%s"
          % (pages, r.describe()))
    equal(r.report()[1]["calls"]["read"]["seen"] > 0, True, "reads counted in the report")


# Python: the would-block handling of the standard library and of typical code.


@case("init: calls made before the library's constructor pass through; rules apply from main on")
def _(s):
    early = os.path.join(s.build, "e2e", "early")
    lib = os.path.join(s.build, "e2e", "libearly.so")
    # glibc runs the constructors of preloads last-loaded first, musl first-loaded
    # first: either way libearly's runs before ours
    order = [lib] + s.preload if s.musl else s.preload + [lib]
    r = s.run([early], rules="input", env={"LD_PRELOAD": ":".join(order)})
    out = r.stdout
    check(r.rc == 0, "exit status %d\n%s" % (r.rc, r.describe()))
    check("constructor data" in out, "the early constructor's pipe read failed\n" + r.describe())
    check("main EAGAIN" in out, "the rule did not apply in main\n" + r.describe())


@case("py: socketpair recv under first-read raises BlockingIOError, select then recv gets every byte")
def _(s):
    r = s.py("first-read-socket", scenario="first-read").ok()
    outcome(r, "recv1", "BlockingIOError errno=11")
    outcome(r, "data", MSG.decode().replace(" ", "_"))
    check("spurious" not in r.kv and "select" not in r.kv, "select lied\n" + r.describe())


@case("py: os.read on a non-blocking pipe under first-read raises BlockingIOError, then every byte")
def _(s):
    r = s.py("first-read-pipe", scenario="first-read").ok()
    outcome(r, "read1", "BlockingIOError errno=11")
    outcome(r, "data", MSG.decode().replace(" ", "_"))


def py_transfer(kind, total, rules, counter, min_cuts=100):
    def body(s):
        r = s.py("transfer", kind, str(total), rules=rules).ok()
        outcome(r, "received", str(total))
        outcome(r, "equal", "1")
        check("stalled" not in r.kv, "the loop stalled\n" + r.describe())
        # the program's own count, and the log: a pipe also cuts writes by itself
        check(int(r[counter]) > 0, "%s = 0: nothing was injected\n%s" % (counter, r.describe()))
        if "short" in rules:
            expect_cut(r, min_cuts)

    return body


# local IPC: reads and writes within PIPE_BUF are not cut (SPEC 4), so
# fewer calls are
for _kind in ("socket", "pipe"):
    case("py: select loop, %s, 300 KiB byte-exact under input,output prob=0.3" % _kind)(
        py_transfer(_kind, 300 * 1024, "input,output prob=0.3", "wb_recv")
    )
    case("py: select loop, %s, 256 KiB byte-exact under input,output short=97" % _kind)(
        py_transfer(_kind, 256 * 1024, "input,output short=97", "short_send", 20)
    )


def py_sendall(kind, rules, calls):
    def body(s):
        r = s.py("sendall", kind, str(200 * 1024), rules=rules).ok()
        outcome(r, "errors", "none")
        outcome(r, "received", str(200 * 1024))
        outcome(r, "equal", "1")
        for call in calls:
            expect_injected(r, call)

    return body


# TCP: on a unix socket the reader usually drains all before the writer is
# woken, so an output EAGAIN is rarely faithful there (SPEC 4) and rarely made
case("py: sendall/recv loop with timeouts over TCP is byte-exact under input,output when=1+2")(
    py_sendall("tcp", "input,output when=1+2", ["send", "recv"])
)
# a unix socket's reads are cut only below what one write delivered (SPEC 4):
# sends cut to 101 bytes arrive as 101-byte pieces, which no read splits
case("py: sendall/recv loop with timeouts over a socketpair is byte-exact under input,output short=101")(
    py_sendall("unix", "input,output short=101", ["send"])
)
case("py: sendall/recv loop with timeouts over TCP is byte-exact under input,output short=101")(
    py_sendall("tcp", "input,output short=101", ["send", "recv"])
)


@case("py: non-blocking accept under accept when=1: BlockingIOError, the client still waits")
def _(s):
    r = s.py("accept", "nb", rules="accept when=1").ok()
    outcome(r, "accept1", "BlockingIOError errno=11")
    outcome(r, "select", "ready")
    outcome(r, "accept2", "ok")
    outcome(r, "got", "hi")
    expect_injected(r, "accept4", 1)  # socket.accept calls accept4


@case("py: accept with a timeout under accept when=1 retries by itself (accept4 injected)")
def _(s):
    r = s.py("accept", "timeout", rules="accept when=1").ok()
    outcome(r, "accept1", "ok")
    outcome(r, "got", "hi")
    expect_injected(r, "accept4", 1)


# C: every input and output call, first call would-block.

MSG_ESC = MSG.decode()

for _call, _kinds in (
    ("read", ("unix", "pipe")),
    ("readv", ("unix", "pipe")),
    ("recv", ("unix", "tcp")),
    ("recvfrom", ("unix", "udp")),
    ("recvmsg", ("unix", "dgram")),
    ("recvmmsg", ("unix", "dgram")),
):
    for _kind in _kinds:

        def _input(s, call=_call, kind=_kind):
            r = s.c("input", call, kind, rules="%s when=1" % call).ok()
            outcome(r, "call1", "-1 EAGAIN")
            outcome(r, "unread1", str(len(MSG)))  # nothing consumed
            outcome(r, "call2", str(len(MSG)))
            equal(r.bytes("data2"), MSG, "data2")

        case("c: %s on a non-blocking %s under '%s when=1': EAGAIN, nothing consumed, then all"
             % (_call, _kind, _call))(_input)

for _call, _kinds in (
    ("write", ("unix", "pipe")),
    ("writev", ("unix", "pipe")),
    ("send", ("unix", "tcp")),
    ("sendto", ("unix", "udp")),
    ("sendmsg", ("unix", "dgram")),
    ("sendmmsg", ("unix", "dgram")),
):
    for _kind in _kinds:
        # on pipes and unix sockets an output EAGAIN needs bytes in flight
        _prefill = 0 if _kind in ("tcp", "udp") else 3

        def _output(s, call=_call, kind=_kind, prefill=_prefill):
            r = s.c("output", call, kind, str(prefill), rules="%s when=1" % call).ok()
            outcome(r, "call1", "-1 EAGAIN")
            if kind not in ("tcp", "udp"):
                outcome(r, "unread1", str(prefill))  # nothing written
            outcome(r, "call2", str(len(MSG)))
            outcome(r, "call3", str(len(MSG)))
            equal(r.bytes("data"), b"P" * prefill + MSG + MSG, "what the reader got")

        case("c: %s on a non-blocking %s%s under '%s when=1': EAGAIN, nothing written, then all"
             % (_call, _kind, " with bytes in flight" if _prefill else "", _call))(_output)


def deferred(kind, rules, expect_first):
    def body(s):
        r = s.c("output", "write", kind, "0", rules=rules).ok()
        if expect_first:
            outcome(r, "call1", "-1 EAGAIN")
            outcome(r, "call2", str(len(MSG)))
        else:
            outcome(r, "call1", str(len(MSG)))  # nothing in flight: deferred
            outcome(r, "unread1", str(len(MSG)))
            outcome(r, "call2", "-1 EAGAIN")  # now bytes are in flight
        outcome(r, "call3", str(len(MSG)))
        equal(r.bytes("data"), MSG + MSG, "what the reader got")

    return body


for _kind in ("unix", "pipe"):
    case("c: write on an empty %s under 'output when=1' is deferred to the next write (SPEC 4)" % _kind)(
        deferred(_kind, "output when=1", False)
    )
    case("c: write on an empty %s under 'output when=1 inflight=any' fails at once" % _kind)(
        deferred(_kind, "output when=1 inflight=any", True)
    )
case("c: write on an empty TCP socket under 'output when=1' fails at once (no deferral)")(
    deferred("tcp", "output when=1", True)
)

# short=N: counts cut, across buffers, never a datagram.

# on TCP: a pipe or unix socket is not cut within one small write (below)
for _call, _kinds in (
    ("read", ("tcp",)),
    ("readv", ("tcp",)),
    ("recv", ("tcp",)),
    ("recvfrom", ("tcp",)),
    ("recvmsg", ("tcp",)),
    ("recvmmsg", ("tcp",)),
):
    for _kind in _kinds:

        def _shortr(s, call=_call, kind=_kind):
            r = s.c("shortr", call, kind, "3", "20", rules="input short=5").ok()
            outcome(r, "ret", "5")
            outcome(r, "bufs", "abc|de.|...")  # cut across the iovecs
            equal(r.bytes("rest"), ALPHABET[5:20], "the bytes left for the next read")

        case("c: %s on %s under 'input short=5' into 3+3+3 bytes: 5, first buffer full, second 2"
             % (_call, _kind))(_shortr)

for _call, _kinds in (
    ("write", ("tcp",)),
    ("writev", ("tcp",)),
    ("send", ("tcp",)),
    ("sendto", ("tcp",)),
    ("sendmsg", ("tcp",)),
    ("sendmmsg", ("tcp",)),
):
    for _kind in _kinds:

        def _shortw(s, call=_call, kind=_kind):
            r = s.c("shortw", call, kind, "3", rules="output short=5").ok()
            outcome(r, "ret", "5")
            equal(r.bytes("got"), ALPHABET[:5], "what the reader got")

        case("c: %s on %s under 'output short=5' of 3+3+3 bytes: exactly the first 5 arrive"
             % (_call, _kind))(_shortw)

for _call, _kind in (("recv", "dgram"), ("recvfrom", "udp"), ("recvmsg", "seqpacket"), ("recvmmsg", "dgram"),
                     ("read", "udp")):

    def _dgram_in(s, call=_call, kind=_kind):
        r = s.c("shortr", call, kind, "10", "20", rules="input short=5", report=True).ok()
        outcome(r, "ret", "20")
        outcome(r, "bufs", "abcdefghij|klmnopqrst|..........")
        equal(rule_totals(r), [(1, 0)], "the rule's (counted, injected)")

    case("c: %s on a %s socket under 'input short=5': a datagram is never cut" % (_call, _kind))(_dgram_in)

for _call, _kind in (("send", "dgram"), ("sendto", "udp"), ("sendmsg", "seqpacket"), ("sendmmsg", "udp"),
                     ("writev", "dgram")):

    def _dgram_out(s, call=_call, kind=_kind):
        r = s.c("shortw", call, kind, "10", rules="output short=5", report=True).ok()
        outcome(r, "ret", "30")
        equal(r.bytes("got"), ALPHABET[:30], "what the reader got")
        equal(rule_totals(r), [(1, 0)], "the rule's (counted, injected)")

    case("c: %s on a %s socket under 'output short=5': a datagram is never cut" % (_call, _kind))(_dgram_out)


def stream(kind, total, rules, counter, min_cuts=100):
    def body(s):
        r = s.c("stream", kind, str(total), rules=rules).ok()
        check("stalled" not in r.kv, "the transfer stalled\n" + r.describe())
        outcome(r, "sent", str(total))
        outcome(r, "received", str(total))
        outcome(r, "bad_at", "-1")  # no byte lost, duplicated or moved
        check(int(r[counter]) > 0, "%s = 0: nothing was injected\n%s" % (counter, r.describe()))
        if "short" in rules:
            expect_cut(r, min_cuts)

    return body


for _kind in ("unix", "tcp", "pipe"):
    case("c: 300 KiB through a %s with every call and iovec shape under short=7 is byte-exact" % _kind)(
        stream(_kind, 300 * 1024, "input,output short=7", "short_w", 100 if _kind == "tcp" else 20)
    )
case("c: 50 KiB through a TCP socket under 'input,output short=1' is byte-exact")(
    stream("tcp", 50 * 1024, "input,output short=1", "short_w")
)
case("c: 300 KiB through a unix socket under prob=0.3 would-blocks is byte-exact")(
    stream("unix", 300 * 1024, "input,output prob=0.3", "eagain_r")
)

# Faithful injections (SPEC 4): an injection only produces what Linux can
# produce for that call on that fd at that moment.


def et_case(kind, direction, rules, reported):
    def body(s):
        r = s.c("et", kind, direction, rules=rules).ok()
        outcome(r, "wait1", "1")
        expect_injected(r, "read" if direction == "in" else "write", 1)
        outcome(r, "wait2", "1" if reported else "0")
        if reported:
            outcome(r, "event2", ("IN" if direction == "in" else "OUT") + " data=1234")

    return body


for _kind in ("tcp", "unix", "pipe"):
    for _dir, _rule in (("in", "input short=1"), ("out", "output short=5")):
        case("edge: an injected short %s on an edge-triggered %s is reported again (edge=owed)"
             % ("read" if _dir == "in" else "write", _kind))(et_case(_kind, _dir, _rule, True))
        case("edge: with edge=none, no event follows a short %s on an edge-triggered %s (epoll(7))"
             % ("read" if _dir == "in" else "write", _kind))(
            et_case(_kind, _dir, _rule + " edge=none", False))


def hup_case(kind, how, total, ask):
    def body(s):
        r = s.c("hup", kind, how, str(total), str(ask), rules="input short=1").ok()
        cut = 1 if kind == "tcp" else 4096
        outcome(r, "read1", str(cut))
        expect_injected(r, "read", 1)
        # bytes left behind: no hang-up yet, whatever the kernel says
        outcome(r, "wait2", "IN")
        # the writer hung up: everything is there, nothing is cut any more
        outcome(r, "read2", str(min(ask, total - cut)))
        left = total - cut - min(ask, total - cut)
        if left:
            outcome(r, "wait3", "IN")
            outcome(r, "read3", str(left))
        last = 3 if not left else 4
        outcome(r, "wait%d" % last, "HUP" if kind == "pipe" else "INRDHUP")
        outcome(r, "read%d" % last, "0")

    return body


for _kind, _total, _ask in (("tcp", 100, 64), ("unix", 10000, 8192), ("pipe", 10000, 8192)):
    for _how in ("poll", "epoll"):
        case("hangup: after a short read on a %s, %s reports no hang-up while its bytes remain"
             % (_kind, _how))(hup_case(_kind, _how, _total, _ask))


def hup_et_case(kind, total, ask):
    def body(s):
        r = s.c("hup", kind, "epollet", str(total), str(ask), rules="input short=1").ok()
        cut = 1 if kind == "tcp" else 4096
        outcome(r, "read1", str(cut))
        outcome(r, "wait2", "IN")  # held back while bytes remain
        outcome(r, "read2", str(total - cut))  # read as nginx does, until n < asked
        # its edge came while it was held: owed now that the bytes are gone
        outcome(r, "wait3", "HUP" if kind == "pipe" else "INRDHUP")
        outcome(r, "read3", "0")

    return body


for _kind, _total, _ask in (("tcp", 100, 64), ("unix", 10000, 8192), ("pipe", 10000, 8192)):
    case("hangup: an edge-triggered %s gets the hang-up it was kept from once the bytes are read"
         % _kind)(hup_et_case(_kind, _total, _ask))


def once(kind, call, avail, ask, rules, ret, *options, cut=None):
    """one input call; ret expected; cut: the injection is in the log (or not)"""

    def body(s):
        r = s.c("once", kind, call, str(avail), str(ask), *options, rules=rules, report=True).ok()
        outcome(r, "ret", str(ret))
        injected = rule_totals(r)[0][1]
        equal(injected, 1 if cut else 0, "injections (ret %s of %s asked, %s waiting)" % (ret, ask, avail))

    return body


for _kind in ("unix", "pipe"):
    _call = "read" if _kind == "pipe" else "recv"
    case("ipc: a %s read of 9 with 20 waiting under 'input short=5' is not cut (one small write)" % _kind)(
        once(_kind, _call, 20, 9, "input short=5", 9))
    case("ipc: a %s read of 8192 with 10000 waiting under 'input short=5' returns PIPE_BUF" % _kind)(
        once(_kind, _call, 10000, 8192, "input short=5", 4096, cut=True))
    case("ipc: a %s read of 8192 with 3000 waiting under 'input short=5' gets all 3000" % _kind)(
        once(_kind, _call, 3000, 8192, "input short=5", 3000))
case("ipc: a unix readv of 8192 with 10000 waiting under 'input short=5000' returns 5000")(
    once("unix", "readv", 10000, 8192, "input short=5000", 5000, cut=True))
case("ipc: TCP is cut anywhere: a recv of 9 with 20 waiting under 'input short=5' returns 5")(
    once("tcp", "recv", 20, 9, "input short=5", 5, cut=True))
case("flags: recv(MSG_PEEK) is never cut (a peek sees every queued byte)")(
    once("tcp", "recv", 20, 9, "input short=5", 9, "peek"))
case("flags: recv(MSG_WAITALL) on a blocking socket is never cut, even with blocking=any")(
    once("tcp", "recv", 20, 9, "input short=5 blocking=any", 9, "waitall", "block"))
case("flags: recv(MSG_WAITALL) on a non-blocking socket may be cut (Linux returns what is there)")(
    once("tcp", "recv", 20, 9, "input short=5", 5, "waitall", cut=True))


@case("flags: send(MSG_OOB) is never cut (the urgent byte stays the last one sent)")
def _(s):
    r = s.c("oncew", "tcp", "send", "20", "oob", rules="output short=5", report=True).ok()
    outcome(r, "ret", "20")
    outcome(r, "urgent_at", "19")
    equal(rule_totals(r)[0][1], 0, "injections")

case("lowat: a TCP recv with SO_RCVLOWAT 10 is never cut (poll would not report the rest)")(
    once("tcp", "recv", 20, 9, "input short=5", 9, "lowat=10"))
for _kind in ("tcp", "unix", "pipe"):
    case("halfclosed: a read on a %s whose writer hung up is never cut (all there is, is there)" % _kind)(
        once(_kind, "read", 20 if _kind == "tcp" else 6000, 9 if _kind == "tcp" else 8192, "input short=5",
             9 if _kind == "tcp" else 6000, "hup"))


def oncew(kind, call, length, rules, ret, cut):
    def body(s):
        r = s.c("oncew", kind, call, str(length), rules=rules, report=True).ok()
        outcome(r, "ret", str(ret))
        outcome(r, "unread", str(ret))
        equal(rule_totals(r)[0][1], 1 if cut else 0, "injections")

    return body


for _kind, _call in (("pipe", "write"), ("pipe", "writev"), ("unix", "send"), ("unix", "sendmsg")):
    case("pipebuf: a %s of PIPE_BUF bytes to a %s under 'output short=5' is never cut" % (_call, _kind))(
        oncew(_kind, _call, 4096, "output short=5", 4096, False))
    case("pipebuf: a %s of PIPE_BUF+1 bytes to a %s under 'output short=5' is cut" % (_call, _kind))(
        oncew(_kind, _call, 4097, "output short=5", 5, True))
case("pipebuf: a 20-byte write to TCP under 'output short=5' is cut")(
    oncew("tcp", "write", 20, "output short=5", 5, True))


for _len in (32, 5000):

    def _scm(s, length=_len):
        r = s.c("scm", str(length), rules="input,output short=1", report=True).ok()
        outcome(r, "sent", str(length))
        outcome(r, "received", str(length))
        outcome(r, "fds", "1")
        equal(rule_totals(r), [(2, 0)], "the rule's (counted, injected)")

    # 5000: beyond PIPE_BUF, only the control data keeps the message whole
    case("scm: a %d-byte sendmsg/recvmsg carrying a descriptor (SCM_RIGHTS) is never cut under short=1"
         % _len)(_scm)


for _family in ("inet", "inet6"):

    def _twice(s, family=_family):
        r = s.c("connect-twice", family, rules="connect").ok()
        outcome(r, "connect1", "-1 EINPROGRESS")
        check(r["connect2"] in ("0", "-1 EISCONN", "-1 EALREADY"),
              "second connect: %s, expected the kernel's answer\n%s" % (r["connect2"], r.describe()))
        expect_injected(r, "connect", 1)

    case("connect: only a socket's first connect is injected; a second (%s) gets the kernel's answer"
         % _family)(_twice)


@case("connect: a UDP connect under 'connect' is never in progress (a datagram connect completes)")
def _(s):
    r = s.c("connect-twice", "udp", rules="connect", report=True).ok()
    outcome(r, "connect1", "0")
    outcome(r, "connect2", "0")
    equal(rule_totals(r)[0][1], 0, "injections")


@case("connect: AF_UNIX under 'connect' (every call): EAGAIN once, the retry gets the kernel's answer")
def _(s):
    r = s.c("connect-unix", rules="connect").ok()
    outcome(r, "connect1", "-1 EAGAIN")
    outcome(r, "connect2", "0")
    outcome(r, "pending2", "0")


# blocking fds


@case("c: a blocking pipe read under 'input' is untouched (blocking=no is the default)")
def _(s):
    r = s.c("input", "read", "pipe", "block", rules="input", report=True).ok()
    outcome(r, "call1", str(len(MSG)))
    equal(r.bytes("data1"), MSG, "data1")
    equal(rule_totals(r), [(0, 0)], "the rule's (counted, injected)")


@case("c: a blocking socket recv and write under 'all' are untouched")
def _(s):
    r = s.c("input", "recv", "unix", "block", rules="all", report=True).ok()
    outcome(r, "call1", str(len(MSG)))
    equal(rule_totals(r), [(0, 0)], "the rule's (counted, injected)")
    r = s.c("output", "write", "pipe", "3", "block", rules="all", report=True).ok()
    outcome(r, "call1", str(len(MSG)))
    outcome(r, "call2", str(len(MSG)))
    equal(rule_totals(r), [(0, 0)], "the rule's (counted, injected)")


@case("c: a blocking pipe read under 'input blocking=any' is hit")
def _(s):
    r = s.c("input", "read", "pipe", "block", rules="input when=1 blocking=any").ok()
    outcome(r, "call1", "-1 EAGAIN")
    outcome(r, "call2", str(len(MSG)))


@case("c: recv with MSG_DONTWAIT on a blocking socket is counted")
def _(s):
    r = s.c("input", "recv", "unix", "dontwait", rules="recv when=1").ok()
    outcome(r, "call1", "-1 EAGAIN")
    outcome(r, "call2", str(len(MSG)))


@case("c: send with MSG_DONTWAIT on a blocking TCP socket is counted")
def _(s):
    r = s.c("output", "send", "tcp", "0", "dontwait", rules="send when=1").ok()
    outcome(r, "call1", "-1 EAGAIN")
    outcome(r, "call2", str(len(MSG)))


# errno: what is not injected is the kernel's own answer.

ERRNO_RULESETS = (
    ("no rules", None),
    ("rules that count but never fire", "all when=1000000000"),
    ("rules filtered out", "all fd=777;input,output type=other;connect port=1"),
)


@case("errno: failing calls give the kernel's result and errno, with and without rules")
def _(s):
    base = s.c("errnos", preload=False).ok()
    for label, rules in ERRNO_RULESETS:
        r = s.c("errnos", rules=rules).ok()
        if r.kv != base.kv:
            diff = ["%s: kernel %r, preloaded %r" % (k, base.kv.get(k), r.kv.get(k))
                    for k in sorted(set(base.kv) | set(r.kv)) if base.kv.get(k) != r.kv.get(k)]
            raise Fail("with %s:\n%s\n%s" % (label, "\n".join(diff), r.describe()))
        check(not r.log, "with %s something was injected\n%s" % (label, r.describe()))


for _sub in ("read_badbuf", "readv_nulliov", "recvmsg_nullmsg", "sendmsg_nullmsg", "recvmmsg_nullvec",
             "sendmmsg_nullvec", "writev_nulliov"):

    def _efault(s, sub=_sub):
        base = s.c("efault", sub, preload=False)
        if s.musl and base.rc < 0:
            raise Skip("musl's own %s dereferences the NULL it was given (signal %d without the "
                       "library): no kernel EFAULT to compare with" % (sub.split("_")[0], -base.rc))
        base.ok()
        for label, rules in ERRNO_RULESETS[:2]:
            r = s.c("efault", sub, rules=rules)
            check(r.rc == 0, "with %s the program died (status %s) where the kernel says %s\n%s"
                  % (label, r.rc, base.get(sub), r.describe()))
            equal(r.get(sub), base[sub], "%s with %s" % (sub, label))

    case("errno: %s gives the kernel's EFAULT (no crash), with no rules and with rules" % _sub)(_efault)


@case("errno: a short= rule on calls the kernel fails is no injection (errno kept, no log line)")
def _(s):
    base = s.c("errnos", preload=False).ok()
    r = s.c("errnos", rules="input,output short=1", report=True).ok()
    failing = {k: v for k, v in base.kv.items() if v.startswith("-1 ")}
    equal({k: r.get(k) for k in failing}, failing, "calls that fail for real")
    bad = [l for l in r.log if not re.search(r"\) = [1-9]\d* short ", l)]
    check(not bad, "log lines for calls that were not cut short:\n" + "\n".join(bad))
    _, rep = r.report()
    equal(sum(c["injected"] for c in rep["calls"].values()), len(r.log), "report's injected calls")


# connect


def connect_inet(family):
    def body(s):
        r = s.c("connect", family, rules="connect").ok()
        outcome(r, "connect", "-1 EINPROGRESS")
        expect_injected(r, "connect", 1)
        check(r["poll"].startswith("1 revents=OUT") and "ERR" not in r["poll"],
              "poll(POLLOUT): %s\n%s" % (r["poll"], r.describe()))
        outcome(r, "so_error", "0")
        outcome(r, "accepted", "1")  # the connection really started
        outcome(r, "send", "4")
        equal(r.bytes("peer_got"), b"ping", "what the listener got")

    return body


def refused(family):
    def body(s):
        r = s.c("refused", family, rules="connect", report=True).ok()
        counted = [c for c, _ in rule_totals(r)]
        equal(counted, [1], "connect calls the rule counted")
        check(r["connect"] in ("-1 ECONNREFUSED", "-1 EINPROGRESS"),
              "connect to a closed port: %s\n%s" % (r["connect"], r.describe()))
        if r["connect"] == "-1 EINPROGRESS":
            outcome(r, "so_error", "ECONNREFUSED")
        check(not r["send"].startswith("4"), "data 'sent' on a refused connection\n" + r.describe())

    return body


for _family in ("inet", "inet6"):
    case("connect: %s non-blocking under 'connect': EINPROGRESS, POLLOUT, SO_ERROR 0, data flows"
         % _family)(connect_inet(_family))
    case("connect: %s to a closed port under 'connect': the real ECONNREFUSED, never success"
         % _family)(refused(_family))


@case("connect: AF_UNIX under 'connect when=1': EAGAIN, no connection made, the retry connects")
def _(s):
    r = s.c("connect-unix", rules="connect when=1").ok()
    outcome(r, "connect1", "-1 EAGAIN")
    outcome(r, "pending1", "-1 EAGAIN")  # the listener got nothing
    outcome(r, "connect2", "0")
    outcome(r, "pending2", "0")
    equal(r.bytes("peer_got"), b"ping", "what the listener got")


# accept

for _call in ("accept", "accept4"):
    for _family in ("inet", "inet6"):

        def _accept(s, call=_call, family=_family):
            r = s.c("accept", call, family, rules="accept when=1").ok()
            outcome(r, "accept1", "-1 EAGAIN")
            outcome(r, "accept2", "0")  # the pending connection was still there
            equal(r.bytes("got2"), b"hi", "data on the accepted connection")
            outcome(r, "accept3", "-1 EAGAIN")
            expect_injected(r, call, 1)

        case("accept: C %s on %s under 'accept when=1': EAGAIN, the connection waits for the next"
             % (_call, _family))(_accept)


# fortified binaries


def undefined_symbols(path):
    if shutil.which("nm"):
        out = subprocess.run(["nm", "-D", "--undefined-only", path], capture_output=True, timeout=30)
        if out.returncode == 0:
            return set(re.findall(r"\bU (\S+?)(?:@\S*)?$", out.stdout.decode(), re.M))
    # no nm: the dynamic string table holds the names
    with open(path, "rb") as f:
        return set(n.decode() for n in re.findall(rb"(__\w+_chk)\x00", f.read()))


CHK = ("__read_chk", "__recv_chk", "__recvfrom_chk")


@case("fortify: the -D_FORTIFY_SOURCE=2 probe calls __read_chk, __recv_chk, __recvfrom_chk")
def _(s):
    if s.musl:
        s.musl_only(s.fortified)
    syms = undefined_symbols(s.fortified)
    missing = [c for c in CHK if c not in syms]
    check(not missing, "%s does not reference %s: the fortified test proves nothing"
          % (s.fortified, ", ".join(missing)))
    plain = [c for c in CHK if c in undefined_symbols(s.probe)]
    check(not plain, "the plain probe references %s: it is fortified too" % ", ".join(plain))


def strip_pids(lines):
    return [re.sub(r"^wouldblock\[\d+\]", "wouldblock[PID]", l) for l in lines]


def fortified_same(args, scenario=None, rules=None):
    def body(s):
        plain = s.c(*args, scenario=scenario, rules=rules).ok()
        fort = s.c(*args, scenario=scenario, rules=rules, fortified=True).ok()
        check(plain.log, "nothing injected in the plain binary\n" + plain.describe())
        equal(strip_pids(fort.log), strip_pids(plain.log), "fortified log vs plain log")
        drop = lambda kv: {k: v for k, v in kv.items() if k != "pid"}
        equal(drop(fort.kv), drop(plain.kv), "what the fortified binary saw vs the plain one")

    return body


for _call, _kind in (("read", "pipe"), ("recv", "unix"), ("recvfrom", "unix")):
    case("fortify: %s under first-read: same injections and results as the plain binary" % _call)(
        fortified_same(("input", _call, _kind), scenario="first-read")
    )
    case("fortify: %s under 'input short=5': same short counts as the plain binary" % _call)(
        fortified_same(("shortr", _call, "tcp", "3", "20"), rules="input short=5")
    )


# configuration errors: exit 125 before main, FILE:LINE:COL on stderr


def config_error(env, pattern, program="c"):
    def body(s):
        if program == "c":
            r = s.c("marker", env=env, log=False)
            marker = "wbprobe: main started"
        else:
            r = s.py("first-read-socket", env=env, log=False)
            marker = "pyprobe: main started"
        equal(r.rc, 125, "exit status\n" + r.describe())
        check(marker not in r.stdout, "main ran before the error was reported\n" + r.describe())
        lines = r.stderr.splitlines()
        check(lines and re.match(pattern, lines[0]),
              "stderr does not match %r\n%s" % (pattern, r.describe()))

    return body


def write_conf(s, name, text):
    path = os.path.join(s.tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


for _rules, _pattern in (
    ("read;frobnicate", r"^wouldblock: WOULDBLOCK_RULES:6: .*frobnicate"),
    ("input when=0", r"^wouldblock: WOULDBLOCK_RULES:(7|12): "),
    ("input when=1 when=2", r"^wouldblock: WOULDBLOCK_RULES:14: .*when"),
    ("input prob=1.5", r"^wouldblock: WOULDBLOCK_RULES:(7|12): .*1\.5"),
    ("input errno=EFOO", r"^wouldblock: WOULDBLOCK_RULES:(7|13): .*EFOO"),
    ("connect short=3", r"^wouldblock: WOULDBLOCK_RULES:(1|9|15): .*short"),
    ("input colour=red", r"^wouldblock: WOULDBLOCK_RULES:7: .*colour"),
):
    case("config: WOULDBLOCK_RULES=%r exits 125 before main with WOULDBLOCK_RULES:COL:" % _rules)(
        config_error({"WOULDBLOCK_RULES": _rules}, _pattern)
    )


@case("config: a bad rule on line 3 of a scenario file: FILE:3:COL: and exit 125 before main")
def _(s):
    path = write_conf(s, "bad3.conf", "[mine]\ndescription = x\ninput when=1 bogus=2\n")
    config_error({"WOULDBLOCK_CONFIG": path, "WOULDBLOCK_SCENARIO": "mine"},
                 r"^wouldblock: %s:3:14: .*bogus" % re.escape(path))(s)


@case("config: a bad file is an error even when no scenario is chosen")
def _(s):
    path = write_conf(s, "bad2.conf", "[a]\nrecv when=1\n[b]\nfrobnicate\n")
    config_error({"WOULDBLOCK_CONFIG": path}, r"^wouldblock: %s:4:1: .*frobnicate" % re.escape(path))(s)


@case("config: an unknown scenario is named, with the scenarios the file has")
def _(s):
    pattern = r"^wouldblock: WOULDBLOCK_SCENARIO:12: .*'no-such'.*first-read.*short-io"
    config_error({"WOULDBLOCK_SCENARIO": "first-read,no-such"}, pattern)(s)


@case("config: a missing WOULDBLOCK_CONFIG file: exit 125 before main, the path named")
def _(s):
    path = os.path.join(s.tmp, "does-not-exist.conf")
    config_error({"WOULDBLOCK_CONFIG": path}, r"^wouldblock: %s(:\d+:\d+)?: " % re.escape(path))(s)


for _var, _value in (("WOULDBLOCK_SEED", "twelve"), ("WOULDBLOCK_DISABLE", "yes")):
    case("config: %s=%s exits 125 before main" % (_var, _value))(
        config_error({_var: _value}, r"^wouldblock: %s:1: " % _var)
    )

case("config: a bad WOULDBLOCK_RULES stops a Python program before its first line")(
    config_error({"WOULDBLOCK_RULES": "input when=x"}, r"^wouldblock: WOULDBLOCK_RULES:\d+: ", "py")
)


# the log


@case("log: WOULDBLOCK_LOG=stderr: the SPEC 5 line (pid, call, fd, size, errno, scenario:line, call no.)")
def _(s):
    r = s.c("input", "recv", "unix", scenario="first-read", log=False, env={"WOULDBLOCK_LOG": "stderr"}).ok()
    lines = [l for l in r.stderr.splitlines() if l.startswith("wouldblock[")]
    equal(len(lines), 1, "log lines on stderr")
    m = LOG_RE.match(lines[0])
    check(m, "log line %r does not have the SPEC 5 format" % lines[0])
    fd = r["fd"]
    expected = {"pid": r["pid"], "call": "recv", "fd": fd, "size": "64", "ret": "-1", "err": "EAGAIN",
                "scenario": "first-read", "line": str(conf_rule_line("first-read")), "callno": "1",
                "scope_fd": fd}
    equal({k: m[k] for k in expected}, expected, "fields of %r" % lines[0])


@case("log: WOULDBLOCK_LOG=FILE.%p from Python: one file per pid, the accept4 and recv lines")
def _(s):
    logdir = s.newdir("plog")
    r = s.py("accept", "nb", log=False, rules="accept when=1;recv when=1",
             env={"WOULDBLOCK_LOG": os.path.join(logdir, "wb.%p.log")}).ok()
    files = os.listdir(logdir)
    equal(files, ["wb.%s.log" % r["pid"]], "log files")
    with open(os.path.join(logdir, files[0])) as f:
        lines = f.read().splitlines()
    calls = [LOG_RE.match(l)["call"] if LOG_RE.match(l) else l for l in lines]
    equal(calls, ["accept4", "recv"], "calls logged")
    for l in lines:
        equal(LOG_RE.match(l)["pid"], r["pid"], "pid in " + l)


# the report


@case("report: WOULDBLOCK_REPORT=%p: pid, program, scenarios, seed, rules, calls, spin as the program saw")
def _(s):
    r = s.c("spin", "100", scenario="first-write", rules="recv when=1..7", report=True,
            env={"WOULDBLOCK_SEED": "42"}).ok()
    name, rep = r.report()
    equal(name, "report.%s.json" % r["pid"], "report file name")
    equal(rep["pid"], int(r["pid"]), "pid")
    equal(rep["program"], s.probe, "program")
    equal(rep["scenarios"], ["first-write"], "scenarios")
    equal(rep["seed"], 42, "seed")
    tries = int(r["tries"])
    equal(tries, 8, "recv calls the program made")  # 7 injected, the 8th got the data
    equal(rep["rules"], [
        {"text": "output when=1", "scenario": "first-write", "line": conf_rule_line("first-write"),
         "counted": 0, "injected": 0},
        {"text": "recv when=1..7", "scenario": "WOULDBLOCK_RULES", "line": 1, "counted": tries,
         "injected": tries - 1}], "rules")
    equal(rep["calls"].get("recv"), {"seen": tries, "injected": tries - 1}, "calls.recv")
    others = {k: v for k, v in rep["calls"].items() if k != "recv" and v["injected"]}
    equal(others, {}, "injections in other calls")
    equal(rep["spin"], {"length": tries - 1, "fd": int(r["fd"]), "call": "recv"}, "spin")


@case("report: a program named with quotes, a newline and bytes that are not UTF-8 still gives valid JSON")
def _(s):
    argv0 = b'/odd "dir"\\/we\nird\xff\xfe\xc3(name'
    r = s.run([argv0, "input", "recv", "unix"], executable=s.probe, rules="recv when=1", report=True).ok()
    _, rep = r.report()
    prog = rep["program"]
    check('"dir"\\/we\nird' in prog, "program %r lost the quotes, backslash or newline" % prog)
    check(prog.startswith("/odd ") and prog.endswith("(name"), "program %r" % prog)
    equal(rep["calls"]["recv"], {"seen": 2, "injected": 1}, "calls.recv")


@case("report: WOULDBLOCK_DISABLE=1 injects nothing and the report still counts")
def _(s):
    r = s.c("input", "recv", "unix", rules="recv when=1", report=True, env={"WOULDBLOCK_DISABLE": "1"}).ok()
    outcome(r, "call1", str(len(MSG)))
    check(not r.log, "something was logged\n" + r.describe())
    _, rep = r.report()
    equal(rep["calls"]["recv"], {"seen": 2, "injected": 0}, "calls.recv")
    equal([(x["counted"], x["injected"]) for x in rep["rules"]], [(2, 0)], "rules counted/injected")


# process=


def python_symlink(s):
    """a 'python3' that links to the real interpreter (python3.11, say)"""
    link = os.path.join(s.tmp, "bin", "python3")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.realpath(s.python), link)
    return link


def process_filter(target):
    def body(s):
        py = python_symlink(s)
        exe = os.path.basename(os.path.realpath(s.python))
        name = {"python3": "python3", "exe": exe, "wbprobe": "wbprobe"}[target]
        r = s.run([py, s.pyprobe, "spawn", s.probe, "input", "recv", "unix"],
                  rules="recv when=1 process=%s" % name).ok()
        outcome(r, "child.rc", "0")
        if target == "wbprobe":
            outcome(r, "recv1", str(len(MSG)))
            outcome(r, "child.call1", "-1 EAGAIN")
        else:
            outcome(r, "recv1", "BlockingIOError errno=11")
            outcome(r, "child.call1", str(len(MSG)))

    return body


case("process: 'process=python3' hits the Python parent (a python3 link), not its C child")(
    process_filter("python3"))
case("process: 'process=<interpreter file name>' (e.g. python3.11) hits Python through its python3 link")(
    process_filter("exe"))
case("process: 'process=wbprobe' hits the C child, not the Python parent")(process_filter("wbprobe"))


# counting scopes


def reuse(how, rules, expected):
    def body(s):
        r = s.c("reuse", how, rules=rules).ok()
        outcome(r, "same_number", "1")
        for key, value in expected.items():
            outcome(r, key, value)

    return body


N = str(len(MSG))
PER_FD = {"r1": "-1 EAGAIN", "r2": N, "r3": "-1 EAGAIN", "r4": N}
case("scope: without a close, the count goes on (control: r3 is call 3, not injected)")(
    reuse("none", "recv when=1", {"r1": "-1 EAGAIN", "r2": N, "r3": N, "r4": "-1 EAGAIN"}))
for _how in ("close", "closerange", "dup2", "dup3"):
    case("scope: an fd number ended by %s and reused counts from 1 again (when=1 fires again)" % _how)(
        reuse(_how, "recv when=1", PER_FD))
case("scope: an fd number closed inside libc (fclose) and reused counts from 1 again")(
    reuse("fclose", "recv when=1", PER_FD))
case("scope: per=process counts across fds: 'when=1' fires once in the process")(
    reuse("close", "recv when=1 per=process", {"r1": "-1 EAGAIN", "r2": N, "r3": N}))
case("scope: per=process counts across fds: 'when=3' fires on the new fd's first call")(
    reuse("close", "recv when=3 per=process", {"r1": N, "r2": "-1 EAGAIN", "r3": "-1 EAGAIN", "r4": N}))


# type=


@case("type: the default types leave a regular file alone")
def _(s):
    r = s.c("file", rules="input", report=True).ok()
    outcome(r, "read1", N)
    equal(rule_totals(r), [(0, 0)], "the rule's (counted, injected)")


def stale(how, expected):
    def body(s):
        r = s.c("stale", how, rules="input").ok()
        outcome(r, "same_number", "1")
        expect_injected(r, "recv", 1)  # the library knew the socket
        outcome(r, "read1", expected)

    return body


case("type: a file fopen()ed on the number of a socket fclose()d (both inside libc) is left alone")(
    stale("fopen", N))
case("type: an eventfd on the number of a socket fclose()d inside libc is left alone")(stale("eventfd", "8"))


@case("blocking: O_NONBLOCK cleared by another process sharing the file makes the fd blocking here too")
def _(s):
    r = s.c("shared-flag", rules="input").ok()
    outcome(r, "nonblocking_now", "0")
    check(r.log and "read(fd=" in r.log[0], "the first, non-blocking read was not hit\n" + r.describe())
    outcome(r, "read_blocking", N)


@case("type: 'type=file' hits a regular file")
def _(s):
    r = s.c("file", rules="input when=1 type=file").ok()
    outcome(r, "read1", "-1 EAGAIN")
    outcome(r, "read2", N)


# prob= and WOULDBLOCK_SEED


@case("prob: the same WOULDBLOCK_SEED injects on the same calls; another seed on others")
def _(s):
    runs = {}
    for key, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        r = s.c("stream", "unix", str(100 * 1024), rules="input,output prob=0.3",
                env={"WOULDBLOCK_SEED": seed}).ok()
        outcome(r, "received", str(100 * 1024))
        check(r.log, "nothing injected\n" + r.describe())
        runs[key] = strip_pids(r.log)
    equal(runs["b"], runs["a"], "log of the second run with seed 7")
    check(runs["c"] != runs["a"], "seed 8 injected on exactly the calls seed 7 did")


def fds_by_order(lines):
    """log lines with each fd number replaced by its order of first
    appearance (#1, #2, ...), and the numbers seen"""
    names = {}

    def name(m):
        return m.group(1) + "#%d" % names.setdefault(m.group(2), len(names) + 1)

    out = [re.sub(r"(fd=|on fd )(\d+)", name, l) for l in strip_pids(lines)]
    return out, sorted(names, key=int)


@case("prob: extra inherited fds shift the fd numbers, not the calls that are injected")
def _(s):
    spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(5)]
    try:
        runs = {}
        for key, inherit in (("plain", ()), ("inherited", spare)):
            r = s.c("stream", "unix", str(64 * 1024), rules="input,output prob=0.3",
                    env={"WOULDBLOCK_SEED": "7"}, pass_fds=inherit).ok()
            outcome(r, "received", str(64 * 1024))
            check(r.log, "nothing injected\n" + r.describe())
            runs[key] = fds_by_order(r.log)
    finally:
        for fd in spare:
            os.close(fd)
    check(runs["plain"][1] != runs["inherited"][1],
          "the inherited fds did not move the probe's fds: %r" % (runs["plain"][1],))
    equal(runs["inherited"][0], runs["plain"][0], "log with 5 more inherited fds (fds by order)")


# ---- main ----


def main(cases=CASES, doc=__doc__):
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("WB_BUILD", os.path.join(HERE, "..", "..", "build")))
    ap.add_argument("-v", "--verbose", action="store_true", help="show every run")
    ap.add_argument("--no-inject", action="store_true",
                    help="drop every rule and scenario: shows which checks need an injection")
    ap.add_argument("--list", action="store_true", help="list the cases")
    ap.add_argument("--musl", action="store_true", default=os.environ.get("WB_MUSL") == "1",
                    help="a musl build (or WB_MUSL=1): C programs only")
    ap.add_argument("filters", nargs="*", help="regexes on case names (or E2E_FILTER)")
    args = ap.parse_args()
    filters = args.filters or [f for f in [os.environ.get("E2E_FILTER", "")] if f]
    cases = [(n, fn) for n, fn in cases if not filters or any(re.search(f, n) for f in filters)]
    if args.list:
        for n, _ in cases:
            print(n)
        return 0
    suite = Suite(args.build, args.verbose, args.no_inject, args.musl)
    print("1..%d" % len(cases))
    failed = 0
    try:
        for i, (name, fn) in enumerate(cases, 1):
            try:
                fn(suite)
                print("ok %d - %s" % (i, name))
            except Skip as e:
                print("ok %d - %s # SKIP %s" % (i, name, e))
            except Fail as e:
                failed += 1
                print("not ok %d - %s" % (i, name))
                print("# " + str(e).replace("\n", "\n# "))
            sys.stdout.flush()
    finally:
        if not failed:
            shutil.rmtree(suite.tmp, ignore_errors=True)
        else:
            print("# files of the runs kept in %s" % suite.tmp)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
