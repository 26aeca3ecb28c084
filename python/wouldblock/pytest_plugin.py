"""The wouldblock pytest plugin (SPEC §10), registered through `pytest11`.

    pytest --wouldblock-scenario flaky-net        # every test, seeded per test
    @pytest.mark.wouldblock("input when=1")       # one test
    @pytest.mark.no_wouldblock                    # exempt one test
    def test_x(wouldblock): ...                   # .rules() .scenario() .paused() .injected()

One hook, one job:
- pytest_addoption: the options and their ini twins
- pytest_configure: the markers; the suite's rules; pytest started again
  under the library when it is not loaded and injection is asked for
- pytest_collection_modifyitems: the same when only marked tests ask for it
- pytest_runtest_setup / _teardown: the test's rules and seed, then back
- pytest_runtest_makereport: the test's injections; a failure's rerun line
- pytest_report_header / pytest_terminal_summary: what ran, what proved nothing
"""
import hashlib
import os
import random
import shlex
import sys

import pytest

import wouldblock as wb

# Set in a pytest started again under the library: the LD_PRELOAD it had
# before ("" if none). Also stops a second restart.
REEXEC_VAR = "WOULDBLOCK_PYTEST_REEXEC"
SEED_KEY = "wouldblock_seed"
# what a test's child processes inherit of its rules
CHILD_VARS = ("WOULDBLOCK_SCENARIO", "WOULDBLOCK_RULES", "WOULDBLOCK_SEED", "WOULDBLOCK_DISABLE")
# what wouldblock_injected() knows; one that this library lacks counts 0
CALLS = ("read readv recv recvfrom recvmsg recvmmsg write writev send sendto sendmsg sendmmsg "
         "accept accept4 sendfile splice tee connect").split()

settings_key = pytest.StashKey()
test_key = pytest.StashKey()


class Settings:
    """The whole run's: asked for on the command line or in the ini file."""

    def __init__(self, scenario, rules, seed, seed_random):
        self.scenario = scenario or None
        self.rules = rules or None
        self.seed = seed
        self.seed_random = seed_random
        self.worker = False
        self.outside = {}  # the WOULDBLOCK_* variables outside the tests

    @property
    def asked(self):
        return bool(self.scenario or self.rules)


class TestState:
    def __init__(self, seed, under):
        self.seed = seed
        self.under = under  # a description of the rules this test ran under, or None
        self.before = {name: wb.injected(name) for name in CALLS}
        self.before[None] = wb.injected()

    def injected(self, call=None):
        if call in self.before:
            return wb.injected(call) - self.before[call]
        # a group ("input", ...): the sum of its calls' differences is the
        # group's difference too
        return wb.injected(call) - sum(self.before[c] for c in CALLS if wb_call_in(call, c))

    def by_call(self):
        return {c: n for c in CALLS for n in [self.injected(c)] if n}


def wb_call_in(group, call):
    groups = {
        "input": "read readv recv recvfrom recvmsg recvmmsg".split(),
        "output": "write writev send sendto sendmsg sendmmsg sendfile".split(),
        "accept": ["accept", "accept4"],
        "all": CALLS,
    }
    return call in groups.get(group, [group])


# ---- options ----


def pytest_addoption(parser):
    group = parser.getgroup("wouldblock", "would-block fault injection (libwouldblock)")
    options = (
        ("scenario", "NAME[,NAME]",
         "run every test under these scenarios of the scenario library (wouldblock --list)"),
        ("rules", "RULES",
         "run every test under these rules (the scenario language, ';'-separated)"),
        ("seed", "N|random",
         "base seed of prob= rules (default 1); each test's seed comes from it and the "
         "test's node id; 'random' picks one and prints it"),
    )
    for name, metavar, text in options:
        group.addoption("--wouldblock-" + name, dest="wouldblock_" + name, metavar=metavar,
                        default=None, help=text)
        parser.addini("wouldblock_" + name, text + " (--wouldblock-%s wins)" % name, default="")


def _setting(config, name):
    value = config.getoption("wouldblock_" + name)
    return value if value is not None else (config.getini("wouldblock_" + name) or None)


def _parse_seed(text):
    if text is None:
        return 1, False
    if text.strip() == "random":
        return random.SystemRandom().randrange(1, 2**32), True
    try:
        seed = int(text, 10)
        if not 0 <= seed < 2**64:
            raise ValueError
    except ValueError:
        raise pytest.UsageError(
            "--wouldblock-seed: %r is neither an unsigned 64-bit integer nor 'random'" % text)
    return seed, False


# ---- configuration, and pytest again under the library ----


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "wouldblock(rules=None, scenario=None): run this test under these wouldblock rules "
        "and/or scenario instead of the suite's")
    config.addinivalue_line("markers", "no_wouldblock: run this test with no wouldblock injection")

    workerinput = getattr(config, "workerinput", None)
    seed, seed_random = _parse_seed(_setting(config, "seed"))
    if workerinput is not None and SEED_KEY in workerinput:
        seed, seed_random = workerinput[SEED_KEY], False  # the controller's choice
    st = Settings(_setting(config, "scenario"), _setting(config, "rules"), seed, seed_random)
    st.worker = workerinput is not None
    config.stash[settings_key] = st
    if config.pluginmanager.hasplugin("xdist") and not st.worker:
        config.pluginmanager.register(XdistHooks(st), "wouldblock-xdist")

    if not wb.loaded():
        if st.asked and not st.worker:
            restart(config, "injection is asked for")
        return
    # Loaded (started under it, by us or by the user). pytest's own I/O
    # (collection, reports, xdist's channel, capture files) happens outside
    # the tests' phases: held from here on, never injected.
    wb.hold(True)
    if st.worker:
        pause_channel_receiver(config)
    # The asked rules become the suite's through the API: the restart and
    # xdist's workers start with none in their environment, so that rules
    # that hit anything (blocking=any, type=file) cannot break the
    # interpreter's own start-up. Each test's children get its rules.
    if st.asked and (st.scenario, st.rules) != wb.active()[:2]:
        try:
            wb.use(st.scenario, st.rules)
        except wb.WouldblockError as e:
            asked = " ".join(["--wouldblock-scenario=%s" % st.scenario] * bool(st.scenario) +
                             ["--wouldblock-rules=%s" % shlex.quote(st.rules)] * bool(st.rules))
            raise pytest.UsageError("wouldblock: %s: %s" % (asked, e))
    # the suite's rules as they are now: what each test starts from
    st.scenario, st.rules = wb.active()[:2]
    st.outside = {v: os.environ.get(v) for v in CHILD_VARS}


def pause_channel_receiver(config):
    """An xdist worker's channel is read by a thread of execnet's own, at any
    time, during the tests' phases too, where the process-wide hold is
    lifted. That thread pauses itself at its first read from here on (the
    read it is blocked in began before any rules were installed); its calls
    are then counted but never injected, while the tests' threads are."""
    for plugin in config.pluginmanager.get_plugins():
        gateway = getattr(getattr(plugin, "channel", None), "gateway", None)
        io = getattr(gateway, "_io", None)  # execnet's Popen2IO or SocketIO
        if callable(getattr(io, "read", None)):
            break
    else:  # tests/python/test_plugin.py would fail on such an execnet
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            "wouldblock: cannot find this xdist worker's channel (has execnet changed?): "
            "rules with blocking=any may hit its reads during a test and end the worker"),
            stacklevel=2)
        return
    read = io.read

    def read_paused(numbytes):
        wb.thread_paused()  # for the rest of the thread's life: not restored
        return read(numbytes)

    io.read = read_paused


class XdistHooks:
    """Workers take the controller's seed ('random' is picked once)."""

    def __init__(self, st):
        self.st = st

    def pytest_configure_node(self, node):
        node.workerinput[SEED_KEY] = self.st.seed


def restart(config, why):
    """exec the same interpreter with the same arguments under the library
    (once), keeping the LD_PRELOAD entries that were there."""
    lib = wb.bundled_library()
    if REEXEC_VAR in os.environ:
        raise pytest.UsageError(
            "wouldblock: pytest was started again under LD_PRELOAD=%s, but %s is still not "
            "loaded" % (os.environ.get("LD_PRELOAD", ""), wb.LIB_NAME))
    argv = list(getattr(sys, "orig_argv", []))
    if not argv or tuple(config.invocation_params.args) != tuple(sys.argv[1:]):
        raise pytest.UsageError(
            "wouldblock: %s, but %s is not loaded, and pytest was not started from a command "
            "line that can be run again (pytest.main() in a program?): start the program under "
            "LD_PRELOAD=%s" % (why, wb.LIB_NAME, lib))
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.stop_global_capturing()  # the real stdout/stderr back, its files closed
    env = wb.environ()
    env[REEXEC_VAR] = os.environ.get("LD_PRELOAD", "")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    st = config.stash[settings_key]
    if st.worker or wb.loaded():
        return
    need = [i for i in items if i.get_closest_marker("wouldblock") or
            "wouldblock" in getattr(i, "fixturenames", ())]
    if need:
        tr = config.pluginmanager.getplugin("terminalreporter")
        if tr is not None:
            tr.write_line("wouldblock: %d test(s) need %s: starting pytest again under it"
                          % (len(need), wb.LIB_NAME))
        restart(config, "%s uses wouldblock" % need[0].nodeid)


def pytest_report_header(config):
    st = config.stash[settings_key]
    if not wb.loaded():
        return "wouldblock: not loaded (no --wouldblock-scenario or --wouldblock-rules)"
    how = "preloaded"
    if REEXEC_VAR in os.environ:
        before = os.environ[REEXEC_VAR]
        how = "pytest started again under it (LD_PRELOAD was %s)" % (
            shlex.quote(before) if before else "unset")
    what = []
    if st.scenario:
        what.append("scenario %s" % st.scenario)
    if st.rules:
        what.append("rules %s" % shlex.quote(st.rules))
    return "wouldblock: %s, %s; %s; seed %d%s" % (
        wb.library_path(), how, ", ".join(what) or "no suite-wide rules",
        st.seed, " (random)" if st.seed_random else "")


# ---- each test ----


def test_seed(base, nodeid):
    """The test's seed: from the base seed and the node id only, so neither
    the order of the tests nor the xdist worker changes it."""
    digest = hashlib.sha256(("%d\0%s" % (base, nodeid)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _marker_args(marker):
    rules = marker.kwargs.get("rules")
    if marker.args:
        rules = marker.args[0]
    unknown = set(marker.kwargs) - {"rules", "scenario"}
    if len(marker.args) > 1 or unknown:
        raise wb.WouldblockError("takes one RULES argument and/or scenario=NAME")
    return marker.kwargs.get("scenario"), rules


def start_test(item):
    """The test's rules (its marker's, or none for no_wouldblock) and seed."""
    st = item.config.stash[settings_key]
    marker = item.get_closest_marker("wouldblock")
    exempt = item.get_closest_marker("no_wouldblock")
    if not wb.loaded():
        if marker is not None:
            pytest.fail("%s: @pytest.mark.wouldblock: %s is not loaded in this process%s" % (
                item.nodeid, wb.LIB_NAME,
                " (an xdist worker cannot start itself again: pass --wouldblock-rules '' or "
                "another --wouldblock-* option so that pytest starts under the library)"
                if st.worker else ""), pytrace=False)
        return
    under = None
    scenario, rules = st.scenario, st.rules
    try:
        if exempt is not None:
            wb.paused()
        elif marker is not None:
            scenario, rules = _marker_args(marker)
            wb.use(scenario, rules)
            under = " ".join(filter(None, ["scenario %s" % scenario if scenario else None,
                                           "rules %r" % rules if rules else None])) + " (marker)"
        elif scenario or rules:
            under = " ".join(filter(None, ["scenario %s" % scenario if scenario else None,
                                           "rules %r" % rules if rules else None]))
    except wb.WouldblockError as e:
        restore(st)
        pytest.fail("%s: @pytest.mark.wouldblock(%s): %s" % (
            item.nodeid, ", ".join([repr(a) for a in marker.args] +
                                   ["%s=%r" % kv for kv in marker.kwargs.items()]), e),
            pytrace=False)
    t = TestState(test_seed(st.seed, item.nodeid), under)
    wb.set_seed(t.seed)  # and the rules count from the start again
    set_child_env({"WOULDBLOCK_SCENARIO": scenario, "WOULDBLOCK_RULES": rules,
                   "WOULDBLOCK_SEED": str(t.seed),
                   "WOULDBLOCK_DISABLE": "1" if exempt is not None else None})
    item.stash[test_key] = t


def set_child_env(values):
    for var, value in values.items():
        if value:
            os.environ[var] = value
        else:
            os.environ.pop(var, None)


def restore(st):
    """Back to the suite's rules, unpaused; the environment as it was."""
    if wb.active() != (st.scenario, st.rules, False):
        wb.use(st.scenario, st.rules)
    set_child_env(st.outside)


# Injection is on only while the test's own code runs: each phase's
# innermost wrapper lets it go and holds it again before the outer wrappers
# (capture reading its files, logging) and the reports (xdist's channel) run.


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_setup(item):
    start_test(item)  # before the fixtures: they run under the test's rules
    yield from _inject_inside(item)


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_call(item):
    yield from _inject_inside(item)


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item):
    yield from _inject_inside(item)
    if item.stash.get(test_key, None) is not None:
        restore(item.config.stash[settings_key])


def _inject_inside(item):
    on = item.stash.get(test_key, None) is not None
    if on:
        wb.hold(False)
    try:
        yield
    finally:
        if on:
            wb.hold(True)


@pytest.fixture
def wouldblock(request):
    """Change the rules within this test: .rules(TEXT), .scenario(NAME) and
    .paused() (context managers, or calls that last until the test ends);
    .injected(call=None) counts this test's injections; .seed is its seed."""
    return Fixture(request.node)


class Fixture:
    def __init__(self, item):
        self._item = item

    def _test(self):
        t = self._item.stash.get(test_key, None)
        if t is None:
            wb._need()  # raises: not loaded
        return t

    @property
    def seed(self):
        return self._test().seed

    def rules(self, text):
        self._test()
        return wb.rules(text)

    def scenario(self, name):
        self._test()
        return wb.scenario(name)

    def paused(self):
        self._test()
        return wb.paused()

    def injected(self, call=None):
        return self._test().injected(call)


# ---- reporting ----


def rerun_command(config, item_nodeid, st):
    """The command that runs this test alone with the same faults."""
    env = ""
    if os.environ.get("WOULDBLOCK_CONFIG"):
        env = "WOULDBLOCK_CONFIG=%s " % shlex.quote(os.environ["WOULDBLOCK_CONFIG"])
    argv = [sys.executable, "-m", "pytest", item_nodeid, "--wouldblock-seed=%d" % st.seed]
    if st.scenario:
        argv.append("--wouldblock-scenario=" + st.scenario)
    if st.rules:
        argv.append("--wouldblock-rules=" + st.rules)
    if not st.asked and not st.scenario and not st.rules:
        argv.append("--wouldblock-rules=")  # start under the library for the marker
    return "cd %s && %s%s" % (shlex.quote(str(config.rootpath)), env,
                              " ".join(shlex.quote(a) for a in argv))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    t = item.stash.get(test_key, None)
    if t is None:
        return
    st = item.config.stash[settings_key]
    if rep.when == "teardown":
        rep.user_properties.append(("wouldblock_injected", t.injected()))
        if item.get_closest_marker("wouldblock") is not None:
            rep.user_properties.append(("wouldblock_marked", True))
    if rep.failed and t.under:
        counts = t.by_call()
        lines = ["injected in this test: " + (
            ", ".join("%s %d" % kv for kv in counts.items()) + " (%d in all)" % sum(counts.values())
            if counts else "nothing (the failure is not an injection's doing)")]
        lines.append("under: %s; seed %d (from base seed %d and the node id)" % (
            t.under, t.seed, st.seed))
        lines.append("rerun alone with the same faults:")
        lines.append("  " + rerun_command(item.config, item.nodeid, st))
        rep.sections.append(("wouldblock", "\n".join(lines)))


def pytest_runtest_logreport(report):
    """Runs where the reports arrive: in the controller under xdist."""
    if report.when != "teardown":
        return
    for key, value in report.user_properties:
        if key == "wouldblock_injected":
            _seen[report.nodeid] = value
        elif key == "wouldblock_marked":
            _marked.add(report.nodeid)


_seen = {}  # nodeid -> this test's injections
_marked = set()


def pytest_terminal_summary(terminalreporter, config):
    st = config.stash.get(settings_key, None)
    if st is None or st.worker or not _seen:
        return
    hit = [n for n, v in _seen.items() if v]
    terminalreporter.write_sep("-", "wouldblock")
    terminalreporter.write_line("wouldblock: %d injection(s) in %d of %d test(s); base seed %d%s" % (
        sum(_seen.values()), len(hit), len(_seen), st.seed, " (random)" if st.seed_random else ""))
    none = sorted(n for n in _marked if not _seen.get(n))
    if none:
        terminalreporter.write_line(
            "wouldblock: %d marked test(s) got no injection (they proved nothing):" % len(none))
        for n in none:
            terminalreporter.write_line("  " + n)
