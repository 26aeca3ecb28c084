#!/usr/bin/env python3
"""zerocopy.py - end-to-end cases for sendfile, sendfile64, splice and tee.

The same driver as run.py (its Suite, checks and TAP output), with its own
cases: wbprobe's sendfile and splice subcommands, and zcprobe.py for
Python's os.sendfile and asyncio's loop.sock_sendfile.

    zerocopy.py --build DIR [-v] [--no-inject] [--musl] [REGEX...]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402
from run import MSG, ALPHABET, check, equal, expect_cut, expect_injected, injections, outcome  # noqa: E402

CASES = []
ZCPROBE = os.path.join(run.HERE, "zcprobe.py")
ASYNCIO_SIZE = 3 * 1024 * 1024 + 12345  # a few MB, not a multiple of any buffer


def case(name):
    def register(fn):
        CASES.append((name, fn))
        return fn

    return register


def zc(s, *args, **kw):
    return s.run([s.python, ZCPROBE] + list(args), **kw)


def alphabet(n):
    return (ALPHABET * (n // len(ALPHABET) + 1))[:n]


def calls(result, name):
    _, rep = result.report()
    check(name in rep["calls"], "the report's calls have no %r: %r" % (name, sorted(rep["calls"])))
    return rep["calls"][name]


# ---- sendfile from C ----

SENDFILE_N = 30000


@case("sendfile: short=4096 sends 4096 bytes and moves the file position by exactly that")
def _(s):
    r = s.c("sendfile", "tcp", "pos", str(SENDFILE_N), rules="sendfile short=4096").ok()
    outcome(r, "first", "4096")
    outcome(r, "pos", "4096")
    outcome(r, "sent", str(SENDFILE_N))
    equal(r.bytes("data"), alphabet(SENDFILE_N), "what the reader got")
    expect_cut(r, SENDFILE_N // 4096)


@case("sendfile: short=4096 with an offset pointer moves *offset by 4096 and not the file position")
def _(s):
    r = s.c("sendfile", "tcp", "ptr", str(SENDFILE_N), rules="sendfile short=4096").ok()
    outcome(r, "first", "4096")
    outcome(r, "off", "4096")
    outcome(r, "pos", "0")
    equal(r.bytes("data"), alphabet(SENDFILE_N), "what the reader got")


@case("sendfile: first-write reaches sendfile on TCP: EAGAIN, nothing sent, the retry sends it all")
def _(s):
    r = s.c("sendfile", "tcp", "pos", str(SENDFILE_N), scenario="first-write", report=True).ok()
    outcome(r, "first", "-1 EAGAIN")
    outcome(r, "pos", "0")
    equal(r.bytes("data"), alphabet(SENDFILE_N), "what the reader got")
    expect_injected(r, "sendfile", 1)
    equal(calls(r, "sendfile")["injected"], 1, "report calls.sendfile.injected")


def scenario_reaches(scenario):
    """the built-in scenario's output rules count sendfile as they count a
    write (the probe makes no other counted call), and the bytes arrive"""

    def body(s):
        r = s.c("sendfile", "tcp", "pos", str(SENDFILE_N), scenario=scenario, report=True).ok()
        equal(r.bytes("data"), alphabet(SENDFILE_N), "what the reader got")
        seen = calls(r, "sendfile")["seen"]
        counted = sum(c for c, _ in run.rule_totals(r))
        check(seen >= 1 and counted >= seen, "%s's rules counted %d of %d sendfile calls\n%s"
              % (scenario, counted, seen, r.describe()))
        if scenario == "short-writes":
            outcome(r, "first", "1")
            expect_cut(r, SENDFILE_N - 1)

    return body


for _sc in ("first-write", "short-writes", "flaky-net", "everything"):
    case("sendfile: the built-in %s reaches sendfile as it reaches a write" % _sc)(scenario_reaches(_sc))


@case("sendfile: 'sendfile when=1' on an empty pipe is deferred (SPEC 4: nothing in flight)")
def _(s):
    r = s.c("sendfile", "pipe", "pos", str(SENDFILE_N), rules="sendfile when=1").ok()
    outcome(r, "first", str(SENDFILE_N))
    check(not injections(r), "an EAGAIN with nothing in flight was injected\n" + r.describe())


@case("sendfile: 'sendfile when=1 inflight=any' on an empty pipe fails at once")
def _(s):
    r = s.c("sendfile", "pipe", "pos", str(SENDFILE_N), rules="sendfile when=1 inflight=any").ok()
    outcome(r, "first", "-1 EAGAIN")
    equal(r.bytes("data"), alphabet(SENDFILE_N), "what the reader got")


@case("sendfile: the filters see out_fd: type=socket hits it, type=file (in_fd's type) does not")
def _(s):
    r = s.c("sendfile", "tcp", "pos", "100", rules="sendfile type=socket when=1").ok()
    outcome(r, "first", "-1 EAGAIN")
    r = s.c("sendfile", "tcp", "pos", "100", rules="sendfile type=file").ok()
    outcome(r, "first", "100")


@case("sendfile: the probes call the symbols under test (C: sendfile, Python: sendfile64)")
def _(s):
    check("sendfile" in run.undefined_symbols(s.probe), "wbprobe does not call sendfile")
    if s.musl:
        raise run.Skip("musl build: Python is linked with glibc")
    import sysconfig

    lib = os.path.join(sysconfig.get_config_var("LIBDIR") or "", sysconfig.get_config_var("LDLIBRARY") or "")
    syms = set()
    for path in (os.path.realpath(s.python), lib):
        if os.path.isfile(path):
            syms |= run.undefined_symbols(path)
    check("sendfile64" in syms or "sendfile" in syms, "Python calls neither sendfile nor sendfile64")


# ---- sendfile from Python ----


def asyncio_case(rules=None, scenario=None, cut=False):
    def body(s):
        r = zc(s, "asyncio", str(ASYNCIO_SIZE), rules=rules, scenario=scenario, report=True).ok()
        outcome(r, "match", "1")
        outcome(r, "sent", str(ASYNCIO_SIZE))
        outcome(r, "received", str(ASYNCIO_SIZE))
        c = calls(r, "sendfile")
        check(c["injected"] >= 1, "the report shows no sendfile injection: %r\n%s" % (c, r.describe()))
        if cut:
            expect_cut(r, 10)
        else:
            expect_injected(r, "sendfile")

    return body


case("py: asyncio sock_sendfile of a few MB is byte-exact under 'sendfile prob=0.5'")(
    asyncio_case(rules="sendfile prob=0.5"))
case("py: asyncio sock_sendfile of a few MB is byte-exact under 'sendfile short=4096'")(
    asyncio_case(rules="sendfile short=4096", cut=True))
case("py: asyncio sock_sendfile of a few MB is byte-exact under first-write")(
    asyncio_case(scenario="first-write"))


@case("py: os.sendfile on a non-blocking socket under first-write: BlockingIOError, then every byte")
def _(s):
    r = zc(s, "os", "nb", "300000", scenario="first-write").ok()
    outcome(r, "first", "BlockingIOError errno=11")
    outcome(r, "match", "1")
    expect_injected(r, "sendfile", 1)


@case("py: os.sendfile on a blocking socket under first-write is untouched")
def _(s):
    r = zc(s, "os", "block", "300000", scenario="first-write", report=True).ok()
    outcome(r, "first", "300000")
    outcome(r, "match", "1")
    check(not injections(r), "a blocking sendfile was injected\n" + r.describe())
    c = calls(r, "sendfile")
    check(c["seen"] >= 1 and c["injected"] == 0, "report calls.sendfile: %r" % c)


# ---- splice and tee ----

def splice_case(direction, mode, rules, expected, counted_fd=None):
    """expected: the outcomes of the three calls; data must be what moved"""

    def body(s):
        r = s.c("splice", direction, mode, rules=rules, report=True).ok()
        for i, want in enumerate(expected, 1):
            outcome(r, "call%d" % i, want)
        moved = sum(int(x) for x in expected if not x.startswith("-"))
        data = r.bytes("data")
        equal(len(data), moved, "bytes that reached the destination")
        equal(data, (MSG * 4)[:moved], "what reached the destination")
        call = "tee" if direction == "tee" else "splice"
        c = calls(r, call)
        equal(c["injected"], sum(x.startswith("-") for x in expected), "report calls.%s.injected" % call)
        counted = run.rule_totals(r)[0][0]
        if counted_fd is None:
            equal(counted, 0, "calls the rule counted")
        else:
            equal(counted, 3, "calls the rule counted")
            for line in injections(r):
                equal(run.LOG_RE.match(line)["fd"], r[counted_fd], "the fd in " + line)

    return body


N = str(len(MSG))
EAGAIN1 = ["-1 EAGAIN", N, N]
PASSED = [N, N, N]
for _dir, _fd in (("sock2pipe", "in"), ("pipe2pipe", "in")):
    case("splice: %s with SPLICE_F_NONBLOCK under 'splice when=1': EAGAIN on fd_in, then every byte" % _dir)(
        splice_case(_dir, "flag", "splice when=1", EAGAIN1, _fd))
    case("splice: %s without SPLICE_F_NONBLOCK, every fd blocking: not counted, untouched" % _dir)(
        splice_case(_dir, "none", "splice when=1", PASSED))
    case("splice: %s without the flag, the socket or written pipe O_NONBLOCK: counted, EAGAIN" % _dir)(
        splice_case(_dir, "nbsock", "splice when=1", EAGAIN1, _fd))
    case("splice: %s without the flag, the pipe read O_NONBLOCK: counted, EAGAIN" % _dir)(
        splice_case(_dir, "nbpipe", "splice when=1", EAGAIN1, _fd))
case("splice: pipe2sock (unix) under 'splice when=1': deferred until bytes are in flight (SPEC 4)")(
    splice_case("pipe2sock", "flag", "splice when=1", [N, "-1 EAGAIN", N], "out"))
case("splice: pipe2sock (unix) under 'splice when=1 inflight=any': EAGAIN at once on fd_out")(
    splice_case("pipe2sock", "flag", "splice when=1 inflight=any", EAGAIN1, "out"))
case("splice: pipe2sock without the flag, every fd blocking: not counted, untouched")(
    splice_case("pipe2sock", "none", "splice when=1 inflight=any", PASSED))
case("splice: sock2pipe under 'splice type=pipe': the socket side is counted, so nothing is")(
    splice_case("sock2pipe", "flag", "splice type=pipe", PASSED))
case("splice: site= names the program's call into splice (site=wbprobe counts it)")(
    splice_case("sock2pipe", "flag", "splice site=wbprobe when=1", EAGAIN1, "in"))
case("splice: site= of another object leaves the program's splice alone")(
    splice_case("sock2pipe", "flag", "splice site=libwouldblock.so when=1", PASSED))
case("tee: with SPLICE_F_NONBLOCK under 'tee when=1': EAGAIN on fd_in, then every byte")(
    splice_case("tee", "flag", "tee when=1", EAGAIN1, "in"))
case("tee: without the flag, both pipes blocking: not counted, untouched")(
    splice_case("tee", "none", "tee when=1", PASSED))
case("tee: without the flag, the written pipe O_NONBLOCK: counted, EAGAIN")(
    splice_case("tee", "nbsock", "tee when=1", EAGAIN1, "in"))


@case("splice: 'splice short=7' moves 7 bytes a call, in order")
def _(s):
    r = s.c("splice", "sock2pipe", "flag", rules="splice short=7").ok()
    for i in (1, 2, 3):
        outcome(r, "call%d" % i, "7")
    equal(r.bytes("data"), (MSG * 2)[:21], "what reached the pipe")
    expect_cut(r, 3)


@case("tee: 'tee short=5' duplicates 5 bytes a call")
def _(s):
    r = s.c("splice", "tee", "flag", rules="tee short=5").ok()
    for i in (1, 2, 3):
        outcome(r, "call%d" % i, "5")
    equal(r.bytes("data"), MSG[:5] * 3, "what reached the second pipe")


@case("splice: a short splice into an edge-triggered socket owes it EPOLLOUT (SPEC 4)")
def _(s):
    # counted on its fd_out, the socket it writes: the owed event is the
    # write direction's, as after a short write
    r = s.c("et", "tcp", "spliceout", rules="splice short=100").ok()
    outcome(r, "wait1", "1")
    outcome(r, "transfer", "100")
    expect_injected(r, "splice", 1)
    outcome(r, "wait2", "1")
    outcome(r, "event2", "OUT data=1234")


if __name__ == "__main__":
    sys.exit(run.main(CASES, __doc__))
