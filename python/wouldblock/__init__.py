"""wouldblock - would-block fault injection for Python (SPEC §10).

The library, libwouldblock.so, must be loaded when the interpreter starts
(LD_PRELOAD): it interposes read, recv, send... as the interpreter binds them.
This module then talks to the copy already in the process through the C API
of wouldblock.h (ctypes.CDLL(None) looks symbols up in the process's global
scope; loading the bundled file a second time would give a second library,
with its own rules, that no wrapper consults).

    import wouldblock
    with wouldblock.rules("input when=1"):
        ...                       # the first read on each non-blocking fd fails
    wouldblock.injected("recv")   # injections so far in this process

    subprocess.run(cmd, env=wouldblock.environ(scenario="flaky-net"))

The pytest plugin (wouldblock.pytest_plugin) starts pytest again under the
library by itself.
"""
import ctypes
import os
import re

__all__ = [
    "WouldblockError",
    "loaded",
    "library_path",
    "bundled_library",
    "rules",
    "scenario",
    "paused",
    "thread_paused",
    "injected",
    "set_seed",
    "environ",
    "use",
    "active",
    "scenario_rules",
]
__version__ = "0.1.0"

LIB_NAME = "libwouldblock.so"
_HERE = os.path.dirname(os.path.abspath(__file__))
# A sanitizer runtime must stay first in LD_PRELOAD (as the runner does).
_SANITIZER = re.compile(r"^lib(?:asan|hwasan|tsan|ubsan|lsan|msan|clang_rt\.)")


class WouldblockError(Exception):
    """Rules or a scenario the library rejected (the message is the
    library's `api:COL: message`), or the library is not loaded."""


# ---- the library in this process ----

_api = None


def _mapped_library():
    """The path of the libwouldblock mapped into this process, or None."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split(None, 5)
                if len(fields) == 6 and os.path.basename(fields[5].strip()).startswith("libwouldblock"):
                    return fields[5].strip()
    except OSError:
        pass
    return None


def _bind():
    """The C API of the copy already loaded, or None."""
    global _api
    if _api is None:
        process = ctypes.CDLL(None)
        if not hasattr(process, "wouldblock_set_rules"):
            return None
        api = process
        for name, args, res in (
            ("wouldblock_set_rules", [ctypes.c_char_p], ctypes.c_int),
            ("wouldblock_use_scenario", [ctypes.c_char_p], ctypes.c_int),
            ("wouldblock_pause", [], None),
            ("wouldblock_resume", [], None),
            ("wouldblock_pause_thread", [ctypes.c_int], ctypes.c_int),
            ("wouldblock_injected", [ctypes.c_char_p], ctypes.c_ulong),
            ("wouldblock_last_error", [], ctypes.c_char_p),
            ("wouldblock_set_seed", [ctypes.c_ulonglong], ctypes.c_int),
        ):
            fn = getattr(api, name)
            fn.argtypes = args
            fn.restype = res
        _api = api
    return _api


def loaded():
    """Is libwouldblock loaded in this process (preloaded or linked)?"""
    return _bind() is not None


def bundled_library():
    """The libwouldblock.so shipped in this package."""
    return os.path.join(_HERE, LIB_NAME)


def library_path():
    """The library this process runs under, else the bundled one: the file
    to put in LD_PRELOAD."""
    return (_mapped_library() if loaded() else None) or bundled_library()


def _need():
    api = _bind()
    if api is None:
        raise WouldblockError(
            "%s is not loaded in this process: start Python under it, e.g. "
            "LD_PRELOAD=%s python3 ... (the library must be there from the start: it "
            "interposes calls as the interpreter binds them); use wouldblock.environ() "
            "for a child process, or run pytest with --wouldblock-scenario/--wouldblock-rules, "
            "which starts itself again under it" % (LIB_NAME, bundled_library())
        )
    return api


def _check(rc):
    if rc != 0:
        raise WouldblockError(_need().wouldblock_last_error().decode("utf-8", "replace"))


# ---- what is active ----
#
# The C API can replace the rules but not read them back, so the module
# keeps what it (or the environment, at start-up) made active, and restores
# from that. Code that calls the C API directly bypasses this record.


class _State:
    def __init__(self, scenario, rules_text, is_paused):
        self.scenario = scenario or None
        self.rules = rules_text or None
        self.paused = is_paused

    def copy(self):
        return _State(self.scenario, self.rules, self.paused)


_active = _State(os.environ.get("WOULDBLOCK_SCENARIO"), os.environ.get("WOULDBLOCK_RULES"), False)


def _config_path():
    """The scenario file the library reads: WOULDBLOCK_CONFIG, else the copy
    of the built-in library bundled beside it."""
    return os.environ.get("WOULDBLOCK_CONFIG") or os.path.join(_HERE, "wouldblock.conf")


def scenario_rules(names, path=None):
    """The rule lines of scenarios (comma-separated names) in a scenario file:
    what the library would install for them. Unknown names raise
    WouldblockError."""
    path = path or _config_path()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise WouldblockError("%s: cannot open: %s" % (path, e.strerror))
    found, current = {}, None
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r"^\[([^\]]+)\]$", line)
        if m:
            current = found.setdefault(m.group(1).strip(), [])
        elif line and current is not None and not re.match(r"^description\s*=", line):
            current.append(line)
    out = []
    for name in (n.strip() for n in names.split(",")):
        if name not in found:
            raise WouldblockError("unknown scenario '%s' (%s has: %s)" % (name, path, ", ".join(found)))
        out += found[name]
    return out


def _install(state):
    """Make state active in the library."""
    api = _need()
    if state.scenario and state.rules:
        # one rule set from both: the API installs one or the other
        text = ";".join(scenario_rules(state.scenario) + [state.rules])
        _check(api.wouldblock_set_rules(text.encode()))
    elif state.scenario:
        names = [n.strip() for n in state.scenario.split(",") if n.strip()]
        if len(names) == 1:
            _check(api.wouldblock_use_scenario(names[0].encode()))
        else:
            _check(api.wouldblock_set_rules(";".join(scenario_rules(state.scenario)).encode()))
    else:
        _check(api.wouldblock_set_rules(state.rules.encode() if state.rules else None))
    _apply_pause(api, state)


# A pause of the caller's own (the pytest plugin holds injection outside the
# tests), kept apart from the one that paused() restores.
_held = False


def _apply_pause(api, state):
    if state.paused or _held:
        api.wouldblock_pause()
    else:
        api.wouldblock_resume()


def hold(flag):
    """Hold injection (True) or let it go on (False) whatever paused() says:
    the pytest plugin holds it outside the tests, so pytest's own I/O is
    never hit, even by rules with blocking=any or type=file."""
    global _held
    _held = bool(flag)
    _apply_pause(_need(), _active)


class _Undone:
    """A change made at once; as a context manager, undone (restore()) at
    the end of the with block."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.restore()
        return False


class _Change(_Undone):
    """A change of the active rules: what was active before comes back."""

    def __init__(self, new):
        global _active
        self._before = _active.copy()
        _install(new)
        _active = new

    def restore(self):
        global _active
        _install(self._before)
        _active = self._before


def rules(text):
    """Replace the active rules with TEXT (the scenario language, ';'-separated;
    None or "": none). Raises WouldblockError with the library's message if
    they are rejected (the active rules are then unchanged). As a context
    manager, restores what was active before."""
    return _Change(_State(None, text, _active.paused))


def scenario(name):
    """Replace the active rules with a scenario (or several, comma-separated)
    of the loaded scenario file. As a context manager, restores what was
    active before."""
    return _Change(_State(name, None, _active.paused))


def paused():
    """Stop injecting (counting goes on). As a context manager, injection
    resumes at the end unless it was paused before."""
    state = _active.copy()
    state.paused = True
    return _Change(state)


class thread_paused(_Undone):
    """Stop injecting into the calling thread's calls alone (counting goes
    on; other threads go on as the rules say). As a context manager, the
    thread gets back what it had at the end."""

    def __init__(self):
        self._before = _need().wouldblock_pause_thread(1)

    def restore(self):
        _need().wouldblock_pause_thread(self._before)


def use(scenario=None, rules=None):
    """Replace the active rules with scenarios and rules together (either may
    be None), unpaused. As a context manager, restores what was active."""
    return _Change(_State(scenario, rules, False))


def active():
    """(scenario, rules, paused) as this module last made them active."""
    return _active.scenario, _active.rules, _active.paused


def injected(call=None):
    """Injections so far in this process: by one call ("recv"), a group
    ("input", "output", "accept", "all"), or every call (None)."""
    return int(_need().wouldblock_injected(call.encode() if call else None))


def set_seed(seed):
    """Seed prob= decisions from now on. The active rules start counting
    again (call numbers, the order of fds), so what follows depends only on
    the seed and on the calls made from now on."""
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise WouldblockError("seed %d is not an unsigned 64-bit integer" % seed)
    _check(_need().wouldblock_set_seed(seed))


def preload_list(lib, existing):
    """LD_PRELOAD with lib in it: kept where it is if there already, else
    first, behind any sanitizer runtime (which must stay first)."""
    entries = [e for e in re.split(r"[:\s]+", existing or "") if e]
    if any(os.path.basename(e).startswith("libwouldblock") for e in entries):
        return ":".join(entries)
    head = 0
    while head < len(entries) and _SANITIZER.match(os.path.basename(entries[head])):
        head += 1
    return ":".join(entries[:head] + [lib] + entries[head:])


def environ(rules=None, scenario=None, seed=None, base=None):
    """A copy of os.environ (or base) that starts a child process under the
    library, keeping the LD_PRELOAD entries already there; rules, scenario
    and seed become WOULDBLOCK_RULES, WOULDBLOCK_SCENARIO, WOULDBLOCK_SEED
    (those not given are left as inherited)."""
    env = dict(os.environ if base is None else base)
    env["LD_PRELOAD"] = preload_list(library_path(), env.get("LD_PRELOAD"))
    for key, value in (("WOULDBLOCK_RULES", rules), ("WOULDBLOCK_SCENARIO", scenario),
                       ("WOULDBLOCK_SEED", seed)):
        if value is not None:
            env[key] = str(value)
    return env
