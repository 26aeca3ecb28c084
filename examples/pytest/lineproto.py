"""lineproto.py - a tiny line protocol over non-blocking sockets: the code
under test in this example project.

Every reader here treats BlockingIOError as "not now": it waits until the
socket is readable (selectors) and reads on.
"""
import selectors


class LineReader:
    """Lines ("\\n"-terminated) from a non-blocking socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ)

    def _fill(self):
        while True:
            try:
                chunk = self.sock.recv(4096)
            except BlockingIOError:
                self.selector.select(5)  # not now: wait, then read on
                continue
            if not chunk:
                raise EOFError("connection closed in the middle of a line")
            self.buf += chunk
            return

    def line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def send_all(sock, data):
    """send until every byte is gone, waiting whenever the socket is full."""
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_WRITE)
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            selector.select(5)
