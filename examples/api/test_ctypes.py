#!/usr/bin/env python3
"""test_ctypes.py - driving libwouldblock from a Python unittest through
ctypes: the rules change per test case, the program stays the same.

    python3 test_ctypes.py --lib build/libwouldblock.so [--tap] [unittest args]

The library must be loaded before the program starts (LD_PRELOAD): it
interposes read, recv, send... as the interpreter binds them at start-up.
Started without it, this script starts itself again with the library in
LD_PRELOAD, so the command above is all it takes. It then talks to the
copy already in the process (ctypes.CDLL(None) looks symbols up in the
process's global scope): a second dlopen of a copy of the file elsewhere
would be a second library, with its own rules, that no wrapper consults.

--tap prints TAP ("ok N - test name") for tests/tap-run instead of
unittest's dots. Standard library only.
"""
import ctypes
import os
import re
import select
import socket
import subprocess
import sys
import threading
import unittest

LIB_NAME = "libwouldblock.so"


def preloaded():
    """Is libwouldblock mapped into this process?"""
    with open("/proc/self/maps") as f:
        return any(LIB_NAME in line for line in f)


def sanitizer_runtimes(lib):
    """A library built with -fsanitize needs its runtime first in LD_PRELOAD."""
    try:
        out = subprocess.run(["ldd", lib], capture_output=True, timeout=30).stdout.decode()
    except (OSError, subprocess.TimeoutExpired):
        return []
    return re.findall(r"lib(?:asan|ubsan|tsan)\.so\S* => (\S+)", out)


def restart_preloaded(lib):
    """exec this script again with the library in LD_PRELOAD (once)."""
    if os.environ.get("WB_CTYPES_REEXEC"):
        sys.exit("test_ctypes.py: %s is not loaded even under LD_PRELOAD=%s" %
                 (LIB_NAME, os.environ.get("LD_PRELOAD", "")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WOULDBLOCK_")}
    preload = sanitizer_runtimes(lib) + [os.path.abspath(lib)]
    if env.get("LD_PRELOAD"):
        preload.append(env["LD_PRELOAD"])
    env["LD_PRELOAD"] = ":".join(preload)
    env["WB_CTYPES_REEXEC"] = "1"
    if preload[:-1]:
        env["ASAN_OPTIONS"] = "detect_leaks=0:" + env.get("ASAN_OPTIONS", "")
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def bind_api():
    """The C API of wouldblock.h, from the library already in the process."""
    wb = ctypes.CDLL(None)
    wb.wouldblock_set_rules.argtypes = [ctypes.c_char_p]
    wb.wouldblock_set_rules.restype = ctypes.c_int
    wb.wouldblock_use_scenario.argtypes = [ctypes.c_char_p]
    wb.wouldblock_use_scenario.restype = ctypes.c_int
    wb.wouldblock_pause.argtypes = []
    wb.wouldblock_pause.restype = None
    wb.wouldblock_resume.argtypes = []
    wb.wouldblock_resume.restype = None
    wb.wouldblock_injected.argtypes = [ctypes.c_char_p]
    wb.wouldblock_injected.restype = ctypes.c_ulong
    wb.wouldblock_last_error.argtypes = []
    wb.wouldblock_last_error.restype = ctypes.c_char_p
    return wb


wb = None  # bound in main()


def set_rules(text):
    return wb.wouldblock_set_rules(None if text is None else text.encode())


def use_scenario(name):
    return wb.wouldblock_use_scenario(name.encode())


def injected(call=None):
    return wb.wouldblock_injected(None if call is None else call.encode())


def last_error():
    return wb.wouldblock_last_error().decode()


class WouldBlockCase(unittest.TestCase):
    """Each test: a fresh non-blocking socketpair, no rules, not paused."""

    def setUp(self):
        self.a, self.b = socket.socketpair()
        self.a.setblocking(False)
        self.b.setblocking(False)
        self.assertEqual(set_rules(None), 0)
        wb.wouldblock_resume()

    def tearDown(self):
        set_rules(None)
        wb.wouldblock_resume()
        self.a.close()
        self.b.close()


class TestRules(WouldBlockCase):
    def test_no_rules_changes_nothing(self):
        before = injected()
        self.b.send(b"hello")
        self.assertEqual(self.a.recv(100), b"hello")
        self.assertEqual(injected() - before, 0)

    def test_first_recv_would_block(self):
        before = injected("recv")
        self.assertEqual(set_rules("input when=1"), 0)
        self.b.send(b"hello")
        with self.assertRaises(BlockingIOError):
            self.a.recv(100)  # the data is there: the library said "not now"
        self.assertEqual(self.a.recv(100), b"hello")  # and nothing was lost
        self.assertEqual(injected("recv") - before, 1)

    def test_groups_count_their_calls(self):
        before = (injected("recv"), injected("input"), injected("output"), injected())
        self.assertEqual(set_rules("input when=1"), 0)
        self.b.send(b"x")
        with self.assertRaises(BlockingIOError):
            self.a.recv(1)
        after = (injected("recv"), injected("input"), injected("output"), injected())
        self.assertEqual([y - x for x, y in zip(before, after)], [1, 1, 0, 1])

    def test_short_reads(self):
        # over TCP: on a unix socket one small send arrives whole, and
        # wouldblock does not cut what Linux would not (SPEC 4)
        with socket.create_server(("127.0.0.1", 0)) as lst:
            b = socket.create_connection(lst.getsockname())
            a, _ = lst.accept()
        with a, b:
            a.setblocking(False)
            self.assertEqual(set_rules("input short=2"), 0)
            b.send(b"abcdef")
            select.select([a], [], [], 10)
            self.assertEqual(a.recv(100), b"ab")
            self.assertEqual(a.recv(100), b"cd")
        # the socketpair: not cut
        self.b.send(b"abcdef")
        self.assertEqual(self.a.recv(100), b"abcdef")

    def test_blocking_fds_are_left_alone(self):
        # blocking=no (the default): a blocking recv never says EAGAIN for real
        self.assertEqual(set_rules("input when=1"), 0)
        self.a.setblocking(True)
        self.b.send(b"ok")
        self.assertEqual(self.a.recv(100), b"ok")

    def test_pipe_reads(self):
        r, w = os.pipe()
        try:
            os.set_blocking(r, False)
            self.assertEqual(set_rules("read when=1 type=pipe"), 0)
            os.write(w, b"through the pipe")
            with self.assertRaises(BlockingIOError):
                os.read(r, 100)
            self.assertEqual(os.read(r, 100), b"through the pipe")
        finally:
            os.close(r)
            os.close(w)

    def test_output_eagain_waits_for_bytes_in_flight(self):
        # SPEC §4: on a unix socket a would-block write needs unread bytes
        # in flight; the first send finds none, so the trigger moves on to
        # the next send, which finds the first one's bytes unread
        self.assertEqual(set_rules("output when=1"), 0)
        before = injected("send")
        self.assertEqual(self.b.send(b"first"), 5)
        with self.assertRaises(BlockingIOError):
            self.b.send(b"second")
        self.assertEqual(injected("send") - before, 1)
        self.assertEqual(self.a.recv(100), b"first")

    def test_inflight_any_injects_regardless(self):
        self.assertEqual(set_rules("output when=1 inflight=any"), 0)
        with self.assertRaises(BlockingIOError):
            self.b.send(b"first")
        self.assertEqual(self.b.send(b"first"), 5)
        self.assertEqual(self.a.recv(100), b"first")

    def test_set_rules_replaces(self):
        self.assertEqual(set_rules("input when=1"), 0)
        self.assertEqual(set_rules("output when=1 inflight=any"), 0)
        with self.assertRaises(BlockingIOError):
            self.b.send(b"x")  # the new rules are active...
        self.b.send(b"y")
        self.assertEqual(self.a.recv(100), b"y")  # ...and the old ones are gone


class TestScenarios(WouldBlockCase):
    def test_use_scenario(self):
        self.assertEqual(use_scenario("first-read"), 0)
        self.b.send(b"hello")
        with self.assertRaises(BlockingIOError):
            self.a.recv(100)
        self.assertEqual(self.a.recv(100), b"hello")

    def test_unknown_scenario(self):
        self.assertEqual(use_scenario("no-such-scenario"), -1)
        msg = last_error()
        self.assertIn("no-such-scenario", msg)
        self.assertIn("first-read", msg)  # the message lists what the file has


class TestErrors(WouldBlockCase):
    def test_bad_rules_are_refused_and_change_nothing(self):
        self.assertEqual(set_rules("input when=1"), 0)
        self.assertEqual(set_rules("input when=banana"), -1)
        # NAME:COL: message, as WOULDBLOCK_RULES errors are reported
        self.assertRegex(last_error(), r"^[^:\s]+:\d+: \S")
        self.b.send(b"still")
        with self.assertRaises(BlockingIOError):
            self.a.recv(100)  # "input when=1" is still in force
        self.assertEqual(self.a.recv(100), b"still")

    def test_every_kind_of_mistake(self):
        for bad in ("bogus", "read when=0", "read short=0", "connect short=1",
                    "read errno=ENOSUCH", "read prob=2", "read when=1 when=2"):
            with self.subTest(rules=bad):
                self.assertEqual(set_rules(bad), -1)
                self.assertRegex(last_error(), r"^[^:\s]+:\d+: \S")


class TestPause(WouldBlockCase):
    def test_pause_stops_injecting_and_keeps_counting(self):
        self.assertEqual(set_rules("input when=1"), 0)
        wb.wouldblock_pause()
        self.b.send(b"a")
        self.assertEqual(self.a.recv(100), b"a")  # call 1, counted, not injected
        wb.wouldblock_resume()
        self.b.send(b"b")
        # call 2: had the pause stopped counting it would be call 1 and fail
        self.assertEqual(self.a.recv(100), b"b")

    def test_resume_injects_again(self):
        self.assertEqual(set_rules("input when=2+"), 0)
        wb.wouldblock_pause()
        self.b.send(b"a")
        self.assertEqual(self.a.recv(100), b"a")
        wb.wouldblock_resume()
        self.b.send(b"b")
        with self.assertRaises(BlockingIOError):
            self.a.recv(100)


class TestThreads(WouldBlockCase):
    def test_swapping_rules_while_threads_recv(self):
        """Python threads (the GIL lets one run Python at a time, but the
        wrapped calls run without it) echo through socketpairs while the
        main thread swaps rules; every byte must arrive."""
        sets = ["input when=1+2", "output short=3", "", "input,output prob=0.3",
                "input short=1 prob=0.5"]
        stop = threading.Event()
        errors = []

        def worker(n):
            a, b = socket.socketpair()
            a.setblocking(False)
            b.setblocking(False)
            try:
                i = 0
                while not stop.is_set():
                    msg = b"%d:%d;" % (n, i)
                    sent = 0
                    while sent < len(msg):
                        try:
                            sent += b.send(msg[sent:])
                        except BlockingIOError:
                            select.select([], [b], [], 10)
                    got = b""
                    while len(got) < len(msg):
                        try:
                            got += a.recv(len(msg) - len(got))
                        except BlockingIOError:
                            if not select.select([a], [], [], 10)[0]:
                                raise AssertionError("no data for 10 s")
                    if got != msg:
                        raise AssertionError("got %r, sent %r" % (got, msg))
                    i += 1
            except Exception as e:  # reported by the main thread
                errors.append("thread %d: %r" % (n, e))
            finally:
                a.close()
                b.close()

        before = injected()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for i in range(2000):
            self.assertEqual(set_rules(sets[i % len(sets)]), 0, last_error())
        stop.set()
        for t in threads:
            t.join(60)
            self.assertFalse(t.is_alive(), "a worker hangs")
        self.assertEqual(errors, [])
        self.assertGreater(injected(), before)  # the rules did meet the traffic


class TapResult(unittest.TestResult):
    """unittest's outcomes as TAP lines."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def line(self, ok, test, extra=""):
        self.n += 1
        print("%s %d - %s%s" % ("ok" if ok else "not ok", self.n, test.id().split(".", 1)[-1],
                                extra), flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self.line(True, test)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.line(True, test, " # SKIP " + reason)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.line(False, test)
        print("".join("# " + l + "\n" for l in self.failures[-1][1].splitlines()), end="")

    def addError(self, test, err):
        super().addError(test, err)
        self.line(False, test)
        print("".join("# " + l + "\n" for l in self.errors[-1][1].splitlines()), end="")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.line(False, subtest)
            print("".join("# " + l + "\n" for l in self._exc_info_to_string(err, test)
                          .splitlines()), end="")


def main():
    global wb
    argv = sys.argv[1:]
    tap = "--tap" in argv
    argv = [a for a in argv if a != "--tap"]
    lib = os.environ.get("WOULDBLOCK_LIB", LIB_NAME)
    if "--lib" in argv:
        i = argv.index("--lib")
        lib = argv[i + 1]
        del argv[i:i + 2]
    if not preloaded():
        restart_preloaded(lib)
    wb = bind_api()
    if not tap:
        unittest.main(argv=[sys.argv[0]] + argv)
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    if argv:
        suite = unittest.defaultTestLoader.loadTestsFromNames(argv, sys.modules[__name__])
    result = TapResult()
    suite.run(result)
    print("1..%d" % result.n)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
