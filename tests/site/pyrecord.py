"""pyrecord.py - a small deterministic Python program for the recording
tests (tests/site/run.py): non-blocking send/recv over a socket pair and
reads from a non-blocking pipe, each retried after a would-block."""
import os
import select
import socket


def retry(fn, fd):
    while True:
        try:
            return fn()
        except BlockingIOError:
            select.select([fd], [fd], [], 5)


a, b = socket.socketpair()
a.setblocking(False)
b.setblocking(False)
for i in range(3):
    retry(lambda: a.send(b"ping%d" % i), a)
    select.select([b], [], [], 5)
    data = retry(lambda: b.recv(100), b)
    assert data == b"ping%d" % i, data

r, w = os.pipe()
os.set_blocking(r, False)
for i in range(2):
    os.write(w, b"x")
    select.select([r], [], [], 5)
    assert retry(lambda: os.read(r, 10), r) == b"x"
print("done")
