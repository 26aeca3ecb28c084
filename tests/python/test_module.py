"""The module `wouldblock` (SPEC §10): without the library, under the
preload, environ() for a child, and the install itself."""
import json
import os
import subprocess
import sys

from conftest import PRELOAD_PREFIX, ROOT, pip_install


def preloaded(project, lib):
    return {"LD_PRELOAD": ":".join(PRELOAD_PREFIX + [lib])}


def last_json(run):
    assert run.rc == 0, str(run)
    return json.loads(run.out.strip().splitlines()[-1])


def test_without_the_library_each_call_says_how_to_load_it(project, lib):
    r = project.python("""
        import json, wouldblock as wb
        out = {"loaded": wb.loaded(), "path": wb.library_path()}
        for name, call in (("injected", lambda: wb.injected()), ("rules", lambda: wb.rules("input")),
                           ("scenario", lambda: wb.scenario("first-read")),
                           ("paused", lambda: wb.paused()), ("set_seed", lambda: wb.set_seed(3))):
            try:
                call()
                out[name] = None
            except wb.WouldblockError as e:
                out[name] = str(e)
        print(json.dumps(out))
    """)
    out = last_json(r)
    assert out["loaded"] is False
    assert out["path"] == lib and os.path.isfile(lib)
    for name in ("injected", "rules", "scenario", "paused", "set_seed"):
        assert out[name] and "not loaded" in out[name] and "LD_PRELOAD=" + lib in out[name], name
    # environ() needs no loaded library: it is how a parent starts a child under it
    r = project.python("import wouldblock as wb; print(wb.environ()['LD_PRELOAD'])")
    assert r.rc == 0 and r.out.strip().split(":")[-1] == lib, str(r)


# a non-blocking socket a, its peer b, and recv() that says EAGAIN
RECV_PAIR = """
    import json, socket, threading, wouldblock as wb
    a, b = socket.socketpair()
    a.setblocking(False)

    def recv():
        try:
            return a.recv(100).decode()
        except BlockingIOError:
            return "EAGAIN"
"""

MODULE_UNDER_PRELOAD = RECV_PAIR + """
    out = {"loaded": wb.loaded(), "path": wb.library_path()}

    b.send(b"one")
    with wb.rules("recv when=1") as r:
        out["in_rules"] = [recv(), recv()]
    b.send(b"two")
    out["after_rules"] = recv()
    with wb.scenario("first-read"):
        b.send(b"three")
        out["in_scenario"] = [recv(), recv()]
        with wb.paused():
            b.send(b"four")
            out["in_paused"] = recv()
        out["active_after_paused"] = list(wb.active())
    out["active_after"] = list(wb.active())
    out["injected"] = [wb.injected(), wb.injected("recv"), wb.injected("input"), wb.injected("send")]
    for bad in ("rcv when=1", "recv when=0", "recv prob=2"):
        try:
            wb.rules(bad)
            out.setdefault("errors", []).append(None)
        except wb.WouldblockError as e:
            out.setdefault("errors", []).append(str(e))
    try:
        wb.scenario("no-such-scenario")
    except wb.WouldblockError as e:
        out["unknown_scenario"] = str(e)
    print(json.dumps(out))
"""


def test_under_the_preload_rules_scenario_paused_injected(project, lib):
    out = last_json(project.python(MODULE_UNDER_PRELOAD, env=preloaded(project, lib)))
    assert out["loaded"] is True and out["path"] == lib
    assert out["in_rules"] == ["EAGAIN", "one"]
    assert out["after_rules"] == "two"  # the rules ended with the with block
    assert out["in_scenario"] == ["EAGAIN", "three"]
    assert out["in_paused"] == "four"
    assert out["active_after_paused"] == ["first-read", None, False]
    assert out["active_after"] == [None, None, False]
    assert out["injected"] == [2, 2, 2, 0]
    assert out["errors"][0] == "api:1: unknown call 'rcv'"
    assert all(e and e.startswith("api:") for e in out["errors"]), out["errors"]
    assert "no-such-scenario" in out["unknown_scenario"] and "first-read" in out["unknown_scenario"]


THREAD_PAUSED = RECV_PAIR + """
    out = {}
    wb.rules("recv")   # every call
    b.send(b"one")
    with wb.thread_paused():
        out["paused_here"] = recv()
        seen = []
        t = threading.Thread(target=lambda: seen.append(recv()))
        t.start()
        t.join()
        out["other_thread"] = seen[0]
    b.send(b"two")
    out["after"] = [recv(), wb.injected("recv")]
    print(json.dumps(out))
"""


def test_thread_paused_holds_the_calling_thread_alone(project, lib):
    out = last_json(project.python(THREAD_PAUSED, env=preloaded(project, lib)))
    assert out == {"paused_here": "one", "other_thread": "EAGAIN", "after": ["EAGAIN", 2]}, out


def test_restore_brings_back_the_environment_rules(project, lib):
    # WOULDBLOCK_SCENARIO and WOULDBLOCK_RULES together, as the process started
    r = project.python("""
        import json, socket, wouldblock as wb
        a, b = socket.socketpair()
        a.setblocking(False)
        def send():
            try:
                return b.send(b"x")
            except BlockingIOError:
                return "EAGAIN"
        out = [list(wb.active())]
        with wb.rules(None):
            out.append(send())
        out.append(list(wb.active()))
        b.setblocking(False)
        out.append(send())   # scenario first-read + rules 'send when=1': the send fails again
        print(json.dumps(out))
    """, env=dict(preloaded(project, lib), WOULDBLOCK_SCENARIO="first-read",
                  WOULDBLOCK_RULES="send when=1 blocking=any"))
    out = last_json(r)
    assert out[0] == ["first-read", "send when=1 blocking=any", False]
    assert out[1] == 1
    assert out[2] == out[0]
    assert out[3] == "EAGAIN"


PROB_PATTERN = """
    import json, socket, sys, wouldblock as wb
    def pattern(n=64):
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
                a.setblocking(True); a.recv(1); a.setblocking(False)
        return out
    wb.rules("recv prob=0.5")
    for _ in range(int(sys.argv[1])):   # history before the seed is set
        pattern(7)
    wb.set_seed(int(sys.argv[2]))
    print(json.dumps([pattern(), pattern()]))
"""


def test_set_seed_decides_what_follows_whatever_came_before(project, lib):
    script = project.write("prob.py", PROB_PATTERN)
    env = dict(project.env, **preloaded(project, lib))

    def run(history, seed):
        r = subprocess.run([sys.executable, script, str(history), str(seed)], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    first = run(0, 7)
    assert "E" in first[0] and "." in first[0]
    assert first[0] != first[1]  # the second socket is the rule's second fd
    assert run(5, 7) == first  # other calls before set_seed change nothing
    assert run(0, 8) != first


def test_environ_starts_a_child_under_the_library(project, lib):
    project.write("child.py", """
        import json, os, socket, wouldblock as wb
        a, b = socket.socketpair(); a.setblocking(False); b.send(b"x")
        try:
            a.recv(1); got = "data"
        except BlockingIOError:
            got = "EAGAIN"
        print(json.dumps([wb.loaded(), got, os.environ["LD_PRELOAD"],
                          os.environ.get("WOULDBLOCK_SEED")]))
    """)
    r = project.python("""
        import json, os, subprocess, sys, wouldblock as wb
        before = ":".join(filter(None, [os.environ.get("LD_PRELOAD"), "libm.so.6"]))
        env = wb.environ(rules="recv when=1", seed=9, base=dict(os.environ, LD_PRELOAD=before))
        out = subprocess.run([sys.executable, "child.py"], env=env, capture_output=True, text=True)
        print(json.dumps([json.loads(out.stdout), wb.loaded()]))
    """)
    child, parent_loaded = last_json(r)
    loaded, got, preload, seed = child
    assert not parent_loaded
    assert loaded and got == "EAGAIN" and seed == "9"
    # the library in front of what was there (behind a sanitizer runtime), which stays
    assert preload.split(":") == PRELOAD_PREFIX + [lib, "libm.so.6"]


def test_preload_list_keeps_a_sanitizer_runtime_first(project):
    r = project.python("""
        import json, wouldblock as wb
        print(json.dumps([
            wb.preload_list("/x/libwouldblock.so", ""),
            wb.preload_list("/x/libwouldblock.so", "libm.so.6 /a/libfoo.so"),
            wb.preload_list("/x/libwouldblock.so", "/usr/lib/libasan.so.8:/a/libfoo.so"),
            wb.preload_list("/x/libwouldblock.so", "/a/libfoo.so:/y/libwouldblock.so"),
        ]))
    """)
    assert last_json(r) == [
        "/x/libwouldblock.so",
        "/x/libwouldblock.so:libm.so.6:/a/libfoo.so",
        "/usr/lib/libasan.so.8:/x/libwouldblock.so:/a/libfoo.so",
        "/a/libfoo.so:/y/libwouldblock.so",
    ]


def test_pip_install_builds_and_bundles_the_library_by_itself(tmp_path):
    """README's command, with no WOULDBLOCK_LIBRARY: setup.py builds the
    library from ../shim and bundles it, with the pytest11 entry point."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WOULDBLOCK_")}
    env["WOULDBLOCK_PY_BUILD"] = str(tmp_path / "build")
    target = str(tmp_path / "site")
    in_tree = [os.path.join(ROOT, "python", d) for d in ("build", "wouldblock.egg-info")]
    existed = [os.path.exists(p) for p in in_tree]
    pip_install(target, env)
    lib = os.path.join(target, "wouldblock", "libwouldblock.so")
    assert os.path.isfile(lib)
    assert os.path.isfile(os.path.join(target, "wouldblock", "wouldblock.conf"))
    nm = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True)
    if nm.returncode == 0:
        assert "wouldblock_set_seed" in nm.stdout
    eps = [open(os.path.join(target, d, "entry_points.txt")).read()
           for d in os.listdir(target) if d.endswith(".dist-info")]
    assert eps and "[pytest11]" in eps[0] and "wouldblock = wouldblock.pytest_plugin" in eps[0]
    # WOULDBLOCK_PY_BUILD kept setuptools' files out of the source tree
    assert [os.path.exists(p) for p in in_tree] == existed
