"""wbexamples - the examples' catalogue, and how to run one under wouldblock.

Shared by demo.py (`make demo`: the table) and suite.py (the TAP suite that
`make test` runs). Each example in examples/python and examples/c is a pair:
NAME_wrong mishandles "would block", NAME_right does not, and one scenario
makes the difference show on every run. A run is judged on what the program
says (its last line, "ok: ..." or "FAIL: ...", and its exit status), on a
Python traceback, on a timeout, and on wouldblock's JSON reports.
"""

import dataclasses
import errno
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A hang guard, not a timing check: every run here takes well under a second
# except the stuck epoll server, whose client gives up after 2 s by itself.
RUN_TIMEOUT = 20
SPIN_BUSY = 1000  # a run of would-blocks this long is a busy-wait (SPEC §5)
SPIN_WAITS = 2  # a loop that waits shows 1 or 2


@dataclasses.dataclass(frozen=True)
class Example:
    name: str
    lang: str  # "python" or "c"
    scenario: str | None  # a built-in scenario that shows the bug...
    rules: str | None  # ...or rules of its own (WOULDBLOCK_RULES)
    expect: str | None  # how the wrong version fails: crash, lost, hang, wrong, spin
    bug: str  # one line for the demo's legend
    # built-in scenarios under which the wrong version must pass: what it
    # relies on holds on Linux, and those scenarios keep Linux's behaviour
    wrong_passes: tuple = ()
    # the wrong version's failure also depends on timing: under some
    # injections it fails only if another process fell behind
    timing: bool = False

    @property
    def has_wrong(self):
        return self.expect is not None

    @property
    def shown_under(self):
        return self.scenario or f"rules '{self.rules}'"

    def source(self, variant):
        stem = f"{self.name}_{variant}" if variant else self.name
        ext = "py" if self.lang == "python" else "c"
        return f"examples/{self.lang}/{stem}.{ext}"

    def argv(self, build, variant):
        """The command that runs one version (variant "wrong"/"right", or
        None for an example that has only one)."""
        stem = f"{self.name}_{variant}" if variant else self.name
        if self.lang == "python":
            return [sys.executable, os.path.join(ROOT, self.source(variant))]
        return [os.path.join(os.path.abspath(build), "examples", stem)]


EXAMPLES = [
    Example("client", "python", "first-read", None, "crash",
            "non-blocking socket used as if it blocked"),
    Example("pipe_reader", "python", "first-read", None, "lost",
            "BlockingIOError taken for end of data"),
    Example("select_proxy", "python", "slow-connect", None, "crash",
            "would-block told by errno == EAGAIN only"),
    Example("busy_wait", "python", None, "recv when=1..3000", "spin",
            "retries recv without waiting"),
    # a short write fails it only if the reader fell behind
    Example("print_stdout", "python", None, "write when=1 until=poll inflight=any", "crash",
            "print() to a non-blocking stdout", timing=True),
    Example("epoll_echo", "c", "epoll-strict", None, "hang",
            "edge-triggered epoll, one read per event", ("short-reads",)),
    Example("short_write", "c", "short-writes", None, "lost",
            "send's short count ignored"),
    Example("connect_check", "c", "slow-connect", None, "wrong",
            "writable taken for connected"),
    Example("sendfile_server", "c", "short-writes", None, "lost",
            "partial sendfile taken for the whole file"),
]
# Right by construction: run under every built-in scenario instead.
ASYNCIO = Example("asyncio_echo", "python", None, None, None,
                  "asyncio streams: right by construction")


def builtin_scenarios():
    """The scenario names of conf/wouldblock.conf, in file order."""
    with open(os.path.join(ROOT, "conf", "wouldblock.conf")) as conf:
        return re.findall(r"^\[([^\]\s]+)\]", conf.read(), re.M)


@dataclasses.dataclass
class Run:
    argv: list
    setting: str  # scenario or rules, for messages
    returncode: int | None  # None: killed by the hang guard
    stdout: str
    stderr: str
    reports: list  # one JSON report per process

    @property
    def timed_out(self):
        return self.returncode is None

    @property
    def injected(self):
        return sum(c["injected"] for r in self.reports for c in r["calls"].values())

    @property
    def spin(self):
        return max((r["spin"]["length"] for r in self.reports), default=0)

    @property
    def verdict(self):
        """The program's own last "ok:"/"FAIL:" line, or ""."""
        lines = [l for l in self.stdout.splitlines() if l.startswith(("ok:", "FAIL:"))]
        return lines[-1] if lines else ""

    @property
    def exception(self):
        """A Python traceback's last line: (class name, errno name or "")."""
        if "Traceback (most recent call last)" not in self.stderr:
            return None
        last = self.stderr.strip().splitlines()[-1]
        m = re.match(r"(\w+)(?::\s*\[Errno (\d+)\])?", last)
        if not m:
            return (last, "")
        name = errno.errorcode.get(int(m[2]), m[2]) if m[2] else ""
        return (m[1], name)

    def transcript(self):
        """Everything about the run, for a failing test's diagnostics."""
        status = "killed by the hang guard" if self.timed_out else self.returncode
        lines = [f"command: {' '.join(self.argv)}", f"under: {self.setting}",
                 f"exit status: {status}", f"injections: {self.injected}, spin: {self.spin}"]
        lines += ["stdout: " + l for l in self.stdout.splitlines()[-10:]]
        lines += ["stderr: " + l for l in self.stderr.splitlines()[-15:]]
        return lines


def run_under(argv, scenario=None, rules=None, seed=1, timeout=RUN_TIMEOUT, build=None):
    """Run argv under wouldblock and collect what it did.

    The one place that knows how a program is put under the library: today
    LD_PRELOAD and the WOULDBLOCK_* variables; it can become the runner
    (`wouldblock -s SCENARIO -r RULES --seed N --report PATH -- argv`)
    without any caller changing. The program runs in its own session so the
    hang guard kills its children too; each process writes its own report.
    """
    build = build or os.path.join(ROOT, "build")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WOULDBLOCK_") and k != "LD_PRELOAD"}
    with tempfile.TemporaryDirectory(prefix="wb-example-") as tmp:
        env.update({
            # a sanitizer runtime (make sanitize) must come first
            "LD_PRELOAD": " ".join(filter(None, [
                os.environ.get("WB_PRELOAD_PREFIX", ""),
                os.path.join(os.path.abspath(build), "libwouldblock.so")])),
            "WOULDBLOCK_SEED": str(seed),
            "WOULDBLOCK_REPORT": os.path.join(tmp, "report.%p.json"),
            "WOULDBLOCK_LOG": os.path.join(tmp, "log.%p"),
            "PYTHONDONTWRITEBYTECODE": "1",  # keep examples/python clean
        })
        if scenario:
            env["WOULDBLOCK_SCENARIO"] = scenario
        if rules:
            env["WOULDBLOCK_RULES"] = rules
        try:
            proc = subprocess.Popen(argv, cwd=tmp, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    errors="replace", start_new_session=True)
        except OSError as e:  # not built: a failure to report, not a crash
            return Run(argv, "nothing", 127, "", f"cannot run: {e}", [])
        try:
            out, err = proc.communicate(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # and whatever it started
            except ProcessLookupError:
                pass
        if code is None:
            out, err = proc.communicate()
        reports = []
        for path in sorted(glob.glob(os.path.join(tmp, "report.*.json"))):
            with open(path) as f:
                try:
                    reports.append(json.load(f))
                except ValueError:
                    pass  # cut short by the hang guard
    setting = " + ".join(filter(None, [scenario, rules and f"rules '{rules}'"])) or "nothing"
    return Run(argv, setting, code, out, err, reports)


def outcome(run):
    """(kind, text): what a run came to. kind is one of ok, crash, lost,
    hang, wrong, spin, error."""
    if run.timed_out:
        return "hang", f"hang: killed after {RUN_TIMEOUT} s"
    if run.returncode == 125:
        return "error", "wouldblock configuration error: " + run.stderr.strip()[:120]
    exc = run.exception
    if exc:
        return "crash", f"crash: {exc[0]}" + (f" ({exc[1]})" if exc[1] else "")
    v = run.verdict
    if run.returncode == 0 and v.startswith("ok:"):
        if run.spin >= SPIN_BUSY:
            return "spin", f"busy-wait: spin {run.spin}"
        return "ok", "ok"
    m = re.search(r"got (\d+) of (\d+) bytes, (\d+) lost", v)
    if m and "stuck" in v:
        return "hang", f"hang: echoed {m[1]} of {m[2]} bytes (2 s guard)"
    if m:
        return "lost", f"lost {m[3]} of {m[2]} bytes"
    if v.startswith("FAIL:"):
        return "wrong", "wrong: " + v[len("FAIL:"):].strip()
    return "error", f"exit status {run.returncode}, no verdict"


def judge_wrong(example, run):
    """None when the wrong version failed the way it should, else why not."""
    kind, text = outcome(run)
    if example.expect == "spin":
        if run.spin < SPIN_BUSY:
            return f"spin {run.spin} < {SPIN_BUSY}: no busy-wait seen ({text})"
        if kind not in ("ok", "spin"):
            return f"expected a busy-wait that gets its data, got {text}"
    elif kind != example.expect:
        return f"expected {example.expect}, got {text}"
    if not run.timed_out and run.injected == 0:
        return "no injection in its reports: it failed for another reason"
    return None


def judge_right(example, run, own_scenario=True):
    """None when the right version passed, else why not. Under its own
    scenario it must also have met injections (a pass without any proves
    nothing) and, for the busy-wait pair, show a spin of a loop that waits."""
    kind, text = outcome(run)
    if example.expect == "spin" and own_scenario:
        if kind not in ("ok", "spin"):
            return text
        if run.spin > SPIN_WAITS:
            return f"spin {run.spin} > {SPIN_WAITS}: it waits, but the report says it spun"
    elif kind != "ok":
        return text
    if own_scenario and run.injected == 0:
        return "passed, but nothing was injected: that proves nothing"
    return None


def describe(example, run):
    """The table's cell for a run."""
    kind, text = outcome(run)
    if kind == "spin" or (example.expect == "spin" and kind == "ok"):
        text = f"{'busy-wait: ' if run.spin >= SPIN_BUSY else 'ok, '}spin {run.spin}"
    if not run.timed_out:
        text += f" [{run.injected} injected]"
    return text


def describe_short(run, kind, text):
    """A passing test's comment: what happened, with injections and spin."""
    return f"{text} ({run.injected} injected, spin {run.spin})"
