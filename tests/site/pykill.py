"""pykill.py - injections, then SIGKILL (tests/site/run.py, status cases).

    pykill.py self    five send/recv pairs on a non-blocking socket pair,
                      then the process kills itself with SIGKILL
    pykill.py exit    the same, then a normal exit
    pykill.py fork    the parent makes two pairs and exits normally; a
                      forked child makes five and kills itself
Each prints "pid PID" (and "child PID") first."""
import os
import signal
import socket
import sys


def pairs(n):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    for _ in range(n):
        try:
            a.send(b"x")
        except BlockingIOError:
            pass
        try:
            b.recv(10)
        except BlockingIOError:
            pass


mode = sys.argv[1]
print("pid", os.getpid(), flush=True)
if mode == "fork":
    pid = os.fork()
    if pid == 0:
        pairs(5)
        os.kill(os.getpid(), signal.SIGKILL)
    print("child", pid, flush=True)
    os.waitpid(pid, 0)
    pairs(2)
else:
    pairs(5)
    if mode == "self":
        os.kill(os.getpid(), signal.SIGKILL)
