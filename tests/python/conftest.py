"""tests/python - the Python package and its pytest plugin, as a user gets
them: `pip install --no-build-isolation --target` into a temporary directory
(nothing on the system changes), then real interpreters and real pytest
runs of small projects written per test.

WB_BUILD names the build directory whose libwouldblock.so is bundled (make
passes it); WB_PRELOAD_PREFIX (make sanitize) is a sanitizer runtime that
must stay first in LD_PRELOAD. --tap prints TAP for tests/tap-run after
pytest's own summary.
"""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("WB_BUILD") or os.path.join(ROOT, "build"))
PRELOAD_PREFIX = os.environ.get("WB_PRELOAD_PREFIX", "").replace(":", " ").split()
RUN_TIMEOUT = 120  # a hang guard, not a timing check


def pytest_addoption(parser):
    parser.addoption("--tap", action="store_true", help="print TAP after the summary")


def base_env(site):
    """The environment of a user's shell: no library, no WOULDBLOCK_*,
    the package importable."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WOULDBLOCK_") and k not in ("LD_PRELOAD", "PYTEST_ADDOPTS",
                                                            "PYTEST_XDIST_WORKER")}
    env["PYTHONPATH"] = site
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if PRELOAD_PREFIX:
        # a sanitized library: its runtime first, Python's leaks ignored
        env["LD_PRELOAD"] = ":".join(PRELOAD_PREFIX)
        env["ASAN_OPTIONS"] = "detect_leaks=0:verify_asan_link_order=0"
    return env


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The package, installed as README says, bundling this build's library."""
    lib = os.path.join(BUILD, "libwouldblock.so")
    if not os.path.isfile(lib):
        pytest.fail("%s is missing: run make first" % lib)
    base = tmp_path_factory.mktemp("pip")
    target = str(base / "site")
    env = dict(os.environ, WOULDBLOCK_LIBRARY=lib, WOULDBLOCK_PY_BUILD=str(base / "build"))
    pip_install(target, env)
    return target


def pip_install(target, env):
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps",
         "--no-index", "--disable-pip-version-check", "--target", target,
         os.path.join(ROOT, "python")],
        env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "pip install failed:\n%s\n%s" % (r.stdout, r.stderr)


class Run:
    def __init__(self, argv, proc):
        self.argv = argv
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __str__(self):
        return "$ %s\nexit %s\n--- stdout\n%s--- stderr\n%s" % (
            " ".join(self.argv), self.rc, self.out[-6000:], self.err[-3000:])


class Project:
    """A directory of test files, and pytest run in it by a user."""

    def __init__(self, path, site):
        self.path = path
        self.site = site
        self.env = base_env(site)

    def write(self, name, text):
        p = os.path.join(self.path, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(textwrap.dedent(text))
        return p

    def run(self, *argv, env=None, timeout=RUN_TIMEOUT):
        e = dict(self.env)
        e.update(env or {})
        argv = [str(a) for a in argv]
        proc = subprocess.run(argv, cwd=self.path, env=e, capture_output=True, text=True,
                              timeout=timeout)
        return Run(argv, proc)

    def pytest(self, *args, env=None):
        return self.run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, env=env)

    def python(self, code, env=None):
        return self.run(sys.executable, "-c", textwrap.dedent(code), env=env)


@pytest.fixture
def project(tmp_path, site):
    return Project(str(tmp_path), site)


@pytest.fixture
def lib(site):
    """The bundled library, as installed."""
    return os.path.join(site, "wouldblock", "libwouldblock.so")


# ---- TAP for tests/tap-run ----

_results = []


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            _results.append((report.nodeid, "skip", reason))
        elif report.when == "call" or report.failed:
            _results.append((report.nodeid, report.outcome, ""))


def pytest_terminal_summary(terminalreporter, config):
    if not config.getoption("--tap"):
        return
    terminalreporter.write_line("1..%d" % len(_results))
    for i, (name, outcome, why) in enumerate(_results, 1):
        if outcome == "skip":
            terminalreporter.write_line("ok %d - %s # SKIP %s" % (i, name, why))
        else:
            terminalreporter.write_line("%s %d - %s" % ("ok" if outcome == "passed" else "not ok", i, name))
