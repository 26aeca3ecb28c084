"""peers.py - the other end of the Python examples, and the check of what arrived.

None of this is the point of an example. The peers use blocking sockets and
pipes: the built-in scenarios only touch non-blocking file descriptors
(blocking=no), so the only code that meets wouldblock is the example's own.
Each example ends with check(), which prints one line, "ok: ..." or
"FAIL: ...", and exits 0 or 1.
"""

import socket
import sys
import threading

REQUEST = b"GET\n"


def payload(size):
    """size bytes of a fixed pattern (not all equal: a reordering shows)."""
    pattern = bytes((i * 131 + 7) % 256 for i in range(256))
    return (pattern * (size // 256 + 1))[:size]


def _serve_forever(listener, handle):
    while True:
        conn, _ = listener.accept()
        with conn:
            handle(conn)


def start_server(handle):
    """Listen on 127.0.0.1 (blocking); serve each connection with
    handle(conn) in a daemon thread. Returns the address."""
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_serve_forever, args=(listener, handle), daemon=True).start()
    return listener.getsockname()


def reply_server(size):
    """A server that reads a request line, answers with payload(size) and closes."""

    def handle(conn):
        request = b""
        while not request.endswith(b"\n"):
            chunk = conn.recv(1024)
            if not chunk:
                return
            request += chunk
        conn.sendall(payload(size))

    return start_server(handle)


def greeting_server(size):
    """A server that speaks first: it sends payload(size) and closes."""
    return start_server(lambda conn: conn.sendall(payload(size)))


def write_in_background(fd, data):
    """A thread writes data to fd (a blocking pipe end) and closes it."""

    def write():
        with open(fd, "wb", buffering=0, closefd=True) as pipe:
            pipe.write(data)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def fetch_in_background(address, results):
    """A blocking client thread: connect, send REQUEST, read until the
    server closes; appends the answer (or the exception) to results."""

    def fetch():
        try:
            with socket.create_connection(address) as sock:
                sock.sendall(REQUEST)
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
                results.append(b"".join(chunks))
        except OSError as e:
            results.append(e)

    thread = threading.Thread(target=fetch, daemon=True)
    thread.start()
    return thread


def check(what, got, expected):
    """Print the verdict on what arrived and exit 0 (all of it) or 1."""
    if got == expected:
        print(f"ok: {what}: all {len(expected)} bytes")
        sys.exit(0)
    if expected.startswith(got):
        lost = len(expected) - len(got)
        print(f"FAIL: {what}: got {len(got)} of {len(expected)} bytes, {lost} lost")
    else:
        print(f"FAIL: {what}: {len(got)} bytes that are not the {len(expected)} sent")
    sys.exit(1)
