"""pyprobe.py - the Python side of the end-to-end tests.

Run under LD_PRELOAD=libwouldblock.so by tests/e2e/run.py. Like wbprobe.c,
each subcommand does some I/O the way Python programs do and prints what it
saw, one "key value" line each; run.py judges. Standard library only.
"""
import os
import select
import socket
import subprocess
import sys
import threading

MSG = b"the quick brown fox!"
WAIT = 5.0  # hang guard for every select


def put(key, value):
    print(key, value, flush=True)


def pattern(total):
    """total bytes that a shift or a repeat would not go unnoticed in"""
    block = bytes((i * 7 + i // 251) & 0xFF for i in range(65521))  # prime length
    return (block * (total // len(block) + 1))[:total]


def first_read_socket():
    """recv on a non-blocking socketpair with data waiting; select; recv the rest"""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.sendall(MSG)
    put("fd", a.fileno())
    try:
        got = a.recv(4096)
        put("recv1", len(got))
    except BlockingIOError as e:
        put("recv1", "BlockingIOError errno=%d" % e.errno)
        got = b""
    while len(got) < len(MSG):
        ready, _, _ = select.select([a], [], [], WAIT)
        if not ready:
            put("select", "timeout")
            break
        try:
            got += a.recv(4096)
        except BlockingIOError:
            put("spurious", 1)
    put("data", got.decode("latin-1").replace(" ", "_"))


def first_read_pipe():
    """os.read on a non-blocking pipe with data waiting; select; read the rest"""
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.write(w, MSG)
    put("fd", r)
    try:
        got = os.read(r, 4096)
        put("read1", len(got))
    except BlockingIOError as e:
        put("read1", "BlockingIOError errno=%d" % e.errno)
        got = b""
    while len(got) < len(MSG):
        ready, _, _ = select.select([r], [], [], WAIT)
        if not ready:
            put("select", "timeout")
            break
        try:
            got += os.read(r, 4096)
        except BlockingIOError:
            put("spurious", 1)
    put("data", got.decode("latin-1").replace(" ", "_"))


def transfer(kind, total):
    """total bytes from one end to the other in one select loop, both ends
    non-blocking, chunks of changing sizes; every would-block counted"""
    total = int(total)
    if kind == "pipe":
        rfd, wfd = os.pipe()
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)

        def send(view):
            return os.write(wfd, view)

        def recv(n):
            return os.read(rfd, n)

    else:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        rfd, wfd = b.fileno(), a.fileno()
        send = a.send

        def recv(n, i=[0]):
            i[0] += 1
            if i[0] % 2:
                return b.recv(n)
            buf = bytearray(n)
            return bytes(buf[: b.recv_into(buf, n)])

    data = pattern(total)
    view = memoryview(data)
    got = bytearray()
    sent = wb_send = wb_recv = short_send = loops = 0
    sizes = [1, 3, 7, 100, 1000, 4096, 65536]
    while len(got) < total and loops < 1000000:
        loops += 1
        rl, wl, _ = select.select([rfd], [wfd] if sent < total else [], [], WAIT)
        if not rl and not wl:
            put("stalled", loops)
            break
        if wl:
            n = min(sizes[loops % len(sizes)], total - sent)
            try:
                k = send(view[sent : sent + n])
                short_send += k < n
                sent += k
            except BlockingIOError:
                wb_send += 1
        if rl:
            try:
                chunk = recv(sizes[(loops * 3) % len(sizes)])
                if not chunk:
                    put("eof_early", len(got))
                    break
                got += chunk
            except BlockingIOError:
                wb_recv += 1
    put("sent", sent)
    put("received", len(got))
    put("equal", int(bytes(got) == data))
    put("wb_send", wb_send)
    put("wb_recv", wb_recv)
    put("short_send", short_send)


def sendall(kind, total):
    """sendall from a thread, a recv loop in the main thread, over a unix
    socketpair or a TCP connection; sockets with a timeout (non-blocking
    underneath: CPython polls and retries on EAGAIN)"""
    total = int(total)
    if kind == "tcp":
        lst = socket.create_server(("127.0.0.1", 0))
        a = socket.create_connection(lst.getsockname())
        b, _ = lst.accept()
    else:
        a, b = socket.socketpair()
    # small buffers: many sends
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    a.settimeout(30)
    b.settimeout(30)
    data = pattern(total)
    errors = []

    def sender():
        try:
            a.sendall(data)
            a.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(repr(e))

    t = threading.Thread(target=sender)
    t.start()
    got = bytearray()
    try:
        while True:
            chunk = b.recv(7919)
            if not chunk:
                break
            got += chunk
    except OSError as e:
        errors.append(repr(e))
    t.join(60)
    put("errors", "|".join(errors) or "none")
    put("received", len(got))
    put("equal", int(bytes(got) == data))


def accept(mode):
    """a client waits on a listener: accept non-blocking (BlockingIOError,
    select, accept) or with a timeout (CPython retries by itself)"""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    client = socket.create_connection(lst.getsockname(), timeout=WAIT)
    client.sendall(b"hi")
    put("fd", lst.fileno())
    if mode == "timeout":
        lst.settimeout(WAIT)
    else:
        lst.setblocking(False)
    conn = None
    try:
        conn, _ = lst.accept()
        put("accept1", "ok")
    except BlockingIOError as e:
        put("accept1", "BlockingIOError errno=%d" % e.errno)
    if conn is None:
        ready, _, _ = select.select([lst], [], [], WAIT)
        put("select", "ready" if ready else "timeout")
        try:
            conn, _ = lst.accept()
            put("accept2", "ok")
        except BlockingIOError as e:
            put("accept2", "BlockingIOError errno=%d" % e.errno)
    if conn is not None:
        conn.settimeout(WAIT)
        put("got", conn.recv(16).decode("latin-1"))


def spawn(*argv):
    """first_read_socket here, then a child program (same environment)"""
    first_read_socket()
    child = subprocess.run(list(argv), capture_output=True, timeout=60)
    for line in child.stdout.decode("latin-1").splitlines():
        put("child." + line.split(" ", 1)[0], line.split(" ", 1)[1] if " " in line else "")
    put("child.rc", child.returncode)


COMMANDS = {
    "first-read-socket": first_read_socket,
    "first-read-pipe": first_read_pipe,
    "transfer": transfer,
    "sendall": sendall,
    "accept": accept,
    "spawn": spawn,
}

if __name__ == "__main__":
    put("pyprobe:", "main started")
    put("pid", os.getpid())
    COMMANDS[sys.argv[1]](*sys.argv[2:])
