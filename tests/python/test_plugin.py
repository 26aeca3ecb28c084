"""The pytest plugin (SPEC §10), through real pytest runs of small projects:
options and ini twins, markers, the fixture, the restart under the library,
xdist, per-test seeds, the rerun line, the summary."""
import os
import re
import shlex
import subprocess
import sys

from conftest import PRELOAD_PREFIX

# Tests that read what the library did to them: a non-blocking socketpair,
# one byte per recv; each test writes its pattern ("." data, "E" EAGAIN)
# to $PATTERNS/<test name>.
PATTERN_TESTS = """
    import os, socket, pytest

    def pattern(n=48):
        a, b = socket.socketpair()
        a.setblocking(False)
        out = ""
        for _ in range(n):
            b.send(b"x")
            try:
                a.recv(1)
                out += "."
            except BlockingIOError:
                out += "E"
                a.setblocking(True)
                a.recv(1)
                a.setblocking(False)
        return out

    def record(request, text):
        d = os.environ.get("PATTERNS")
        if d:
            with open(os.path.join(d, request.node.name), "w") as f:
                f.write(text)

    @pytest.mark.parametrize("i", range(4))
    def test_prob(request, i):
        record(request, pattern() + "|" + pattern())
"""

FIRST_READ_TESTS = """
    import socket, pytest

    def pair():
        a, b = socket.socketpair()
        a.setblocking(False)
        return a, b

    def test_wrong():
        a, b = pair()
        b.send(b"hello")
        assert a.recv(10) == b"hello"    # one recv is not always enough

    def test_right():
        a, b = pair()
        b.send(b"hello")
        while True:
            try:
                assert a.recv(10) == b"hello"
                break
            except BlockingIOError:
                pass
"""


def outcomes(run):
    """{test name: PASSED|FAILED|ERROR|SKIPPED} from -rA or -v output"""
    found = {}
    for m in re.finditer(r"^(?:\[gw\d+\] \[ *\d+%\] )?(PASSED|FAILED|ERROR|SKIPPED)\s+(\S+)", run.out, re.M):
        found[m.group(2)] = m.group(1)
    for m in re.finditer(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED)", run.out, re.M):
        found[m.group(1)] = m.group(2)
    return {k.split("::")[-1].split(" ")[0]: v for k, v in found.items()}


def header(run):
    lines = [l for l in run.out.splitlines() if l.startswith("wouldblock: ") and ("libwouldblock" in l or "not loaded" in l)]
    assert lines, str(run)
    return lines[-1]  # after a restart at collection: the second run's


def test_the_plugin_is_registered_by_its_entry_point(project):
    r = project.pytest("--help")
    assert r.rc == 0, str(r)
    for opt in ("--wouldblock-scenario", "--wouldblock-rules", "--wouldblock-seed"):
        assert opt in r.out
    for ini in ("wouldblock_scenario", "wouldblock_rules", "wouldblock_seed"):
        assert ini in r.out
    r = project.pytest("--markers")
    assert "@pytest.mark.wouldblock(rules=None, scenario=None)" in r.out
    assert "@pytest.mark.no_wouldblock" in r.out
    r = project.pytest("--fixtures")
    assert re.search(r"^wouldblock\b", r.out, re.M), str(r)


def test_nothing_asked_nothing_loaded(project):
    project.write("test_x.py", "def test_x():\n    import wouldblock\n    assert not wouldblock.loaded()\n")
    r = project.pytest("-v")
    assert r.rc == 0, str(r)
    assert "not loaded" in header(r)
    assert "started again" not in r.out


def test_scenario_option_restarts_pytest_under_the_library_once(project, lib):
    project.write("test_a.py", FIRST_READ_TESTS + """
    def test_children_inherit_it():
        import subprocess, sys
        code = "import wouldblock as w, os; print(w.loaded(), os.environ['WOULDBLOCK_SCENARIO'])"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
        assert out.split() == ["True", "first-read"]

    def test_started_once():
        import os
        assert os.environ["WOULDBLOCK_PYTEST_REEXEC"] == os.environ.get("WB_ORIGINAL_PRELOAD", "")
    """)
    r = project.pytest("-rA", "--wouldblock-scenario", "first-read",
                       env={"WB_ORIGINAL_PRELOAD": ":".join(PRELOAD_PREFIX)})
    h = header(r)
    assert lib in h and "pytest started again under it" in h and "scenario first-read" in h
    assert "seed 1" in h
    assert r.out.count("test session starts") == 1  # the first start printed nothing
    got = outcomes(r)
    assert got == {"test_wrong": "FAILED", "test_right": "PASSED",
                   "test_children_inherit_it": "PASSED", "test_started_once": "PASSED"}, str(r)


def test_the_restart_keeps_an_existing_ld_preload(project, lib):
    project.write("test_a.py", """
        import os
        def test_preload():
            with open("/proc/self/maps") as f:
                maps = f.read()
            assert "libwouldblock" in maps
            entries = os.environ["LD_PRELOAD"].split(":")
            print("PRELOAD=" + os.environ["LD_PRELOAD"])
            assert entries[-2:] == [%r, "libm.so.6"]
    """ % lib)
    before = ":".join(PRELOAD_PREFIX + ["libm.so.6"])
    r = project.pytest("-rA", "-s", "--wouldblock-rules", "recv when=1", env={"LD_PRELOAD": before})
    assert r.rc == 0, str(r)
    assert "LD_PRELOAD was %s" % shlex.quote(before) in header(r)


def test_already_under_the_library_there_is_no_restart(project, lib):
    project.write("test_a.py", FIRST_READ_TESTS)
    env = {"LD_PRELOAD": ":".join(PRELOAD_PREFIX + [lib])}
    r = project.pytest("-rA", "--wouldblock-scenario", "first-read", env=env)
    assert "preloaded" in header(r) and "started again" not in header(r)
    assert outcomes(r) == {"test_wrong": "FAILED", "test_right": "PASSED"}, str(r)
    # WOULDBLOCK_SCENARIO from the environment is the suite's scenario too
    r = project.pytest("-rA", env=dict(env, WOULDBLOCK_SCENARIO="first-read"))
    assert "scenario first-read" in header(r)
    assert outcomes(r) == {"test_wrong": "FAILED", "test_right": "PASSED"}, str(r)


def test_a_restart_that_does_not_load_the_library_stops(project):
    project.write("test_a.py", "def test_x():\n    pass\n")
    r = project.pytest("--wouldblock-rules", "recv when=1", env={"WOULDBLOCK_PYTEST_REEXEC": ""})
    assert r.rc != 0 and "still not loaded" in r.err + r.out, str(r)


def test_pytest_main_in_a_program_is_not_restarted(project, lib):
    project.write("test_a.py", "def test_x():\n    pass\n")
    project.write("prog.py", "import pytest, sys\nsys.exit(pytest.main(['-p', 'no:cacheprovider', "
                             "'--wouldblock-rules', 'recv when=1', 'test_a.py']))\n")
    r = project.run(sys.executable, "prog.py")
    assert r.rc != 0 and "LD_PRELOAD=" + lib in r.err + r.out, str(r)
    assert "cannot be run again" in r.err + r.out or "can be run again" in r.err + r.out


def test_rules_option_and_ini_twins(project):
    project.write("test_a.py", FIRST_READ_TESTS)
    r = project.pytest("-rA", "--wouldblock-rules", "recv when=1")
    assert outcomes(r) == {"test_wrong": "FAILED", "test_right": "PASSED"}, str(r)
    assert "rules 'recv when=1'" in header(r)
    # the ini file, each option
    for key, value in (("wouldblock_rules", "recv when=1"), ("wouldblock_scenario", "first-read")):
        project.write("pytest.ini", "[pytest]\n%s = %s\nwouldblock_seed = 5\n" % (key, value))
        r = project.pytest("-rA")
        assert outcomes(r) == {"test_wrong": "FAILED", "test_right": "PASSED"}, str(r)
        assert value in header(r) and "seed 5" in header(r), header(r)
    # the command line wins over the ini file
    project.write("pytest.ini", "[pytest]\nwouldblock_rules = send when=1\nwouldblock_seed = 5\n")
    r = project.pytest("-rA", "--wouldblock-rules", "recv when=1", "--wouldblock-seed", "6")
    assert "rules 'recv when=1'" in header(r) and "seed 6" in header(r), header(r)
    assert outcomes(r)["test_wrong"] == "FAILED"


def test_bad_suite_rules_or_seed_are_errors(project):
    project.write("test_a.py", "def test_x():\n    pass\n")
    r = project.pytest("--wouldblock-rules", "rcv when=1")
    assert r.rc == 4, str(r)
    assert "wouldblock: --wouldblock-rules='rcv when=1': api:1: unknown call 'rcv'" in r.err, str(r)
    r = project.pytest("--wouldblock-scenario", "no-such")
    assert r.rc == 4 and "--wouldblock-scenario=no-such: " in r.err, str(r)
    assert "unknown scenario 'no-such'" in r.err and "flaky-net" in r.err, str(r)
    r = project.pytest("--wouldblock-rules", "recv", "--wouldblock-seed", "seven")
    assert r.rc == 4 and "--wouldblock-seed: 'seven'" in r.err, str(r)


def test_markers_and_the_summary(project):
    project.write("test_a.py", """
        import socket, pytest

        def first_recv():
            a, b = socket.socketpair()
            a.setblocking(False)
            b.send(b"x")
            try:
                return a.recv(1)
            except BlockingIOError:
                return "EAGAIN"

        @pytest.mark.wouldblock("recv when=1")
        def test_marker_rules():
            assert first_recv() == "EAGAIN"

        @pytest.mark.wouldblock(scenario="first-read")
        def test_marker_scenario():
            assert first_recv() == "EAGAIN"

        @pytest.mark.wouldblock(rules="send when=1")
        def test_marker_proves_nothing():
            assert first_recv() == b"x"

        def test_unmarked():
            assert first_recv() == b"x"

        @pytest.mark.wouldblock("recv when=1")
        class TestClass:
            def test_in_class(self):
                assert first_recv() == "EAGAIN"
    """)
    # no option: the marked tests make pytest start again under the library
    r = project.pytest("-rA")
    assert r.rc == 0, str(r)
    assert "need libwouldblock.so: starting pytest again" in r.out
    assert "pytest started again under it" in header(r) and "no suite-wide rules" in header(r)
    assert re.search(r"wouldblock: 3 injection\(s\) in 3 of 5 test\(s\); base seed 1", r.out), str(r)
    assert re.search(r"1 marked test\(s\) got no injection.*\n  test_a.py::test_marker_proves_nothing",
                     r.out), str(r)


def test_no_wouldblock_exempts_a_test_from_the_suite_scenario(project):
    project.write("test_a.py", FIRST_READ_TESTS.replace(
        "    def test_wrong", "    @pytest.mark.no_wouldblock\n    def test_wrong"))
    r = project.pytest("-rA", "--wouldblock-scenario", "first-read")
    assert outcomes(r) == {"test_wrong": "PASSED", "test_right": "PASSED"}, str(r)


def test_a_marker_with_bad_rules_names_the_test(project):
    project.write("test_a.py", """
        import pytest
        @pytest.mark.wouldblock("recv whenn=1")
        def test_typo():
            pass
        def test_fine():
            pass
    """)
    r = project.pytest("-rA", "--wouldblock-rules", "send when=1")
    assert outcomes(r) == {"test_typo": "ERROR", "test_fine": "PASSED"}, str(r)
    assert re.search(r"test_a.py::test_typo: @pytest.mark.wouldblock\('recv whenn=1'\): "
                     r"api:6: unknown key 'whenn'", r.out), str(r)


def test_the_fixture(project):
    project.write("test_a.py", """
        import socket, pytest, wouldblock as wb

        def recv(a):
            try:
                return a.recv(1)
            except BlockingIOError:
                return "EAGAIN"

        def test_fixture(wouldblock):
            a, b = socket.socketpair()
            a.setblocking(False)
            b.send(b"xyz")
            with wouldblock.rules("recv when=1"):
                assert recv(a) == "EAGAIN"
            assert recv(a) == b"x"                       # the suite's rules again
            with wouldblock.scenario("first-read"):
                assert recv(a) == "EAGAIN"
                with wouldblock.paused():
                    assert recv(a) == b"y"
            assert wouldblock.injected("recv") == 2      # this test's only
            assert wouldblock.injected() == 2
            assert wouldblock.injected("input") == 2
            assert wouldblock.injected("send") == 0
            wouldblock.rules("recv when=2")              # a plain call: until the test ends
            assert recv(a) == b"z"
            assert wb.active()[1] == "recv when=2"
            with pytest.raises(wb.WouldblockError, match=r"^api:1: unknown call 'rcv'$"):
                wouldblock.rules("rcv")

        def test_after(wouldblock):
            assert wb.active() == (None, "send when=1", False)   # the suite's, back
            assert wouldblock.injected() == 0
            assert isinstance(wouldblock.seed, int)
    """)
    r = project.pytest("-rA", "--wouldblock-rules", "send when=1")
    assert outcomes(r) == {"test_fixture": "PASSED", "test_after": "PASSED"}, str(r)


def test_the_fixture_without_the_library_says_how_to_load_it(project):
    # under xdist a worker cannot start again: the fixture says why
    project.write("test_a.py", """
        import pytest, wouldblock as wb
        def test_fixture(wouldblock):
            with pytest.raises(wb.WouldblockError, match="not loaded"):
                wouldblock.rules("recv when=1")
    """)
    r = project.pytest("-rA", "-n", "1")
    assert outcomes(r) == {"test_fixture": "PASSED"}, str(r)


def read_patterns(d):
    return {name: open(os.path.join(d, name)).read() for name in sorted(os.listdir(d))}


def test_seeds_do_not_depend_on_order_or_worker(project, tmp_path):
    project.write("test_p.py", PATTERN_TESTS)
    ids = ["test_p.py::test_prob[%d]" % i for i in range(4)]
    seen = {}
    runs = {
        "in order": ids,
        "reversed": ids[::-1],
        "xdist": ["-n", "2"] + ids,
        "other fds": ids,  # with extra inherited fds: see below
    }
    for name, args in runs.items():
        d = tmp_path / name.replace(" ", "-")
        d.mkdir()
        argv = ["-p", "no:randomly", "--wouldblock-rules", "recv prob=0.5",
                "--wouldblock-seed", "11"] + args
        if name == "other fds":
            spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(7)]
            try:
                e = dict(project.env, PATTERNS=str(d))
                p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"] + argv,
                                   cwd=project.path, env=e, capture_output=True, text=True,
                                   pass_fds=spare, timeout=120)
                assert p.returncode == 0, p.stdout + p.stderr
            finally:
                for fd in spare:
                    os.close(fd)
        else:
            r = project.pytest(*argv, env={"PATTERNS": str(d)})
            assert r.rc == 0, str(r)
        seen[name] = read_patterns(str(d))
    # alone, one by one
    d = tmp_path / "alone"
    d.mkdir()
    for i in ids:
        r = project.pytest("--wouldblock-rules", "recv prob=0.5", "--wouldblock-seed", "11", i,
                           env={"PATTERNS": str(d)})
        assert r.rc == 0, str(r)
    seen["alone"] = read_patterns(str(d))
    first = seen["in order"]
    assert len(first) == 4 and all("E" in p and "." in p for p in first.values()), first
    assert len(set(first.values())) == 4  # each test draws its own
    for name, got in seen.items():
        assert got == first, "%s: %r\nin order: %r" % (name, got, first)
    # another base seed, other faults
    d = tmp_path / "seed12"
    d.mkdir()
    r = project.pytest("--wouldblock-rules", "recv prob=0.5", "--wouldblock-seed", "12",
                       env={"PATTERNS": str(d)})
    assert read_patterns(str(d)) != first


def test_random_seed_is_printed_and_shared_with_workers(project, tmp_path):
    project.write("test_p.py", PATTERN_TESTS + """
    def test_seed_env(request):
        record(request, os.environ["WOULDBLOCK_SEED"])
    """)
    d = tmp_path / "random"
    d.mkdir()
    r = project.pytest("-n", "2", "--wouldblock-rules", "recv prob=0.5", "--wouldblock-seed", "random",
                       env={"PATTERNS": str(d)})
    assert r.rc == 0, str(r)
    m = re.search(r"seed (\d+) \(random\)", header(r))
    assert m, header(r)
    base = m.group(1)
    got = read_patterns(str(d))
    # that seed, given back, gives the same faults in every test
    d2 = tmp_path / "again"
    d2.mkdir()
    r = project.pytest("--wouldblock-rules", "recv prob=0.5", "--wouldblock-seed", base,
                       env={"PATTERNS": str(d2)})
    assert r.rc == 0, str(r)
    assert read_patterns(str(d2)) == got
    assert got["test_seed_env"] != base  # children get the test's own seed


def test_the_rerun_line_reproduces_a_failure(project, tmp_path):
    project.write("test_r.py", PATTERN_TESTS + """
    @pytest.mark.parametrize("i", range(6))
    def test_fragile(request, i):
        p = pattern(16)
        record(request, p)
        assert p[:3] == "..."        # wrong: any of the first reads may would-block
    """)
    d = tmp_path / "first"
    d.mkdir()
    r = project.pytest("-n", "2", "--wouldblock-scenario", "flaky-net", "--wouldblock-seed", "3",
                       env={"PATTERNS": str(d)})
    assert r.rc == 1, str(r)
    failed = re.findall(r"^rerun alone with the same faults:\n  (.*)$", r.out, re.M)
    assert failed, str(r)
    patterns = read_patterns(str(d))
    for line in failed:
        m = re.search(r"(test_r.py::test_fragile\[\d\])", line)
        assert m, line
        name = m.group(1).split("::")[1]
        d2 = tmp_path / ("rerun-" + name)
        d2.mkdir()
        rerun = project.run("sh", "-c", line, env={"PATTERNS": str(d2)})
        assert rerun.rc == 1 and "1 failed" in rerun.out, str(rerun)
        assert read_patterns(str(d2)) == {name: patterns[name]}
    # the report section: injections, then the line
    assert re.search(r"-+ wouldblock -+\ninjected in this test: recv \d+ \(\d+ in all\)\n"
                     r"under: scenario flaky-net; seed \d+ \(from base seed 3 and the node id\)\n"
                     r"rerun alone with the same faults:\n  cd ", r.out), str(r)


def test_everything_under_xdist_leaves_pytest_whole(project):
    """The whole suite under `everything` in two workers: pytest's capture
    files, execnet's pipes and the terminal keep working; the tests' own
    non-blocking I/O gets the faults; captured output of a failure shows."""
    project.write("test_io.py", """
        import asyncio, os, selectors, socket, subprocess, sys, pytest

        def test_print_lots(capsys):
            for i in range(2000):
                print("line", i)
            sys.stderr.write("err\\n" * 100)
            out, err = capsys.readouterr()
            assert out.count("\\n") == 2000 and err.count("\\n") == 100

        def test_fd_capture(capfd):
            os.write(1, b"x" * 100000)
            assert len(capfd.readouterr().out) == 100000

        def test_subprocess_output():
            out = subprocess.run([sys.executable, "-c", "print('y' * 70000)"],
                                 capture_output=True, text=True).stdout
            assert len(out) == 70001

        @pytest.mark.parametrize("n", range(10))
        def test_nonblocking_echo(n):
            a, b = socket.socketpair()
            a.setblocking(False); b.setblocking(False)
            sel = selectors.DefaultSelector()
            data, got = b"z" * 200000, bytearray()
            sent = 0
            sel.register(a, selectors.EVENT_WRITE); sel.register(b, selectors.EVENT_READ)
            while len(got) < len(data):
                for key, ev in sel.select(5):
                    try:
                        if key.fileobj is a and sent < len(data):
                            sent += a.send(data[sent:sent + 65536])
                        elif key.fileobj is b:
                            got += b.recv(65536)
                    except BlockingIOError:
                        pass
            assert bytes(got) == data

        def test_asyncio_streams():
            async def main():
                async def echo(r, w):
                    w.write(await r.read(100000)); await w.drain(); w.close()
                srv = await asyncio.start_server(echo, "127.0.0.1", 0)
                port = srv.sockets[0].getsockname()[1]
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(b"q" * 50000); await w.drain(); w.write_eof()
                got = await r.read()
                srv.close()
                return got
            assert asyncio.run(main()) == b"q" * 50000

        def test_fails_with_output():
            print("visible in the report")
            assert False
    """)
    r = project.pytest("-n", "2", "-rA", "--wouldblock-scenario", "everything")
    assert r.rc == 1, str(r)
    assert re.search(r"1 failed, 14 passed", r.out), str(r)
    assert "visible in the report" in r.out
    assert "INTERNALERROR" not in r.out + r.err and "Traceback" not in r.err, str(r)
    m = re.search(r"wouldblock: (\d+) injection\(s\) in (\d+) of 15 test\(s\)", r.out)
    assert m and int(m.group(1)) > 0, str(r)


def test_the_example_project_catches_its_wrong_test(site):
    """examples/pytest: the marker, the fixture, the whole-suite scenario of
    its pytest.ini; its wrong test passes without faults and is caught."""
    from conftest import ROOT, Project
    example = Project(os.path.join(ROOT, "examples", "pytest"), site)
    r = example.pytest("-rA", "-n", "2")
    assert outcomes(r) == {
        "test_line": "PASSED", "test_line_one_byte_at_a_time": "PASSED",
        "test_exactly_under_several_faults": "PASSED", "test_fixture_counts_this_test": "PASSED",
        "test_greeting": "FAILED", "test_exempt_from_the_suite_scenario": "PASSED"}, str(r)
    assert "scenario first-read" in header(r)
    assert "test_lineproto.py::test_greeting --wouldblock-seed=1 --wouldblock-scenario=first-read" in r.out
    r = example.pytest("-rA", "--wouldblock-scenario", "")
    assert r.rc == 0 and outcomes(r)["test_greeting"] == "PASSED", str(r)


def test_pytest_own_io_is_never_injected(project):
    """Rules that hit everything, blocking fds and files included: pytest's
    collection, capture, reports and xdist's channel run outside the tests'
    phases, where the plugin holds injection."""
    project.write("test_a.py", """
        import pytest
        @pytest.mark.parametrize("i", range(20))
        def test_quiet(i):
            pass
        def test_hit(wouldblock):
            import os
            r, w = os.pipe()
            with pytest.raises(BlockingIOError):
                os.write(w, b"x")   # a blocking pipe, hit by blocking=any
            assert wouldblock.injected("write") == 1
    """)
    rules = ("read,readv,recv,recvfrom,recvmsg,write,writev,send,sendto,sendmsg "
             "blocking=any type=socket,pipe,tty,file,other inflight=any when=1+2")
    for extra in ([], ["-n", "2"]):
        r = project.pytest("-rA", *extra, "--wouldblock-rules", rules)
        assert r.rc == 0 and re.search(r"21 passed", r.out), str(r)
        assert "INTERNALERROR" not in r.out + r.err, str(r)


def test_xdist_channel_is_never_injected_while_a_test_runs(project):
    """An xdist worker's channel is read by a thread of execnet's own, at any
    time: the controller's next tests arrive while a test runs, with the hold
    lifted. Every read injected, blocking ones too: unless that thread is
    paused, its next read fails and the worker ends (INTERNALERROR). A
    thread a test starts is still hit."""
    project.write("test_b.py", """
        import os, threading, time, pytest
        @pytest.mark.parametrize("i", range(40))
        def test_slow(i):
            time.sleep(0.05)   # more tests reach this worker meanwhile
        def test_a_test_thread_is_hit(wouldblock):
            r, w = os.pipe()
            os.write(w, b"x")
            got = []
            def reader():
                try:
                    got.append(os.read(r, 1))
                except BlockingIOError as e:
                    got.append(e)
            t = threading.Thread(target=reader)
            t.start()
            t.join()
            assert isinstance(got[0], BlockingIOError), got
    """)
    rules = "read,readv,recv,recvfrom,recvmsg blocking=any type=socket,pipe,tty,file,other"
    r = project.pytest("-rA", "-n", "2", "--wouldblock-rules", rules)
    assert r.rc == 0 and re.search(r"41 passed", r.out), str(r)
    assert "INTERNALERROR" not in r.out + r.err, str(r)


def test_several_scenarios_and_rules_together(project):
    """--wouldblock-scenario A,B and --wouldblock-rules together: one rule
    set of all of them (the module reads the scenarios' rules from the
    scenario file the library uses)."""
    project.write("test_a.py", """
        import socket, wouldblock as wb

        def test_all_apply():
            a, b = socket.socketpair()
            a.setblocking(False); b.setblocking(False)
            # short-writes (a socketpair send within PIPE_BUF arrives whole: not cut)
            assert b.send(b"x" * 5000) == 1
            try:
                a.recv(10)                        # first-read
                raise AssertionError("recv was not injected")
            except BlockingIOError:
                pass
            assert wb.active()[:2] == ("first-read,short-writes", "accept when=1")
    """)
    r = project.pytest("-rA", "--wouldblock-scenario", "first-read,short-writes",
                       "--wouldblock-rules", "accept when=1")
    assert outcomes(r) == {"test_all_apply": "PASSED"}, str(r)
    assert "scenario first-read,short-writes, rules 'accept when=1'" in header(r)
