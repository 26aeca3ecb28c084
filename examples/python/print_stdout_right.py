"""print_stdout_right.py - print() that survives a non-blocking stdout (see
print_stdout_wrong.py).

stdout is rebuilt over a raw writer that, when the pipe says "not now",
waits until it is writable and writes on; the buffered layer above takes
care of short writes. Setting the pipe back to blocking would also work,
but the flag is shared with the parent that set it on purpose.
Passes under every built-in scenario.
"""
import io
import os
import selectors
import subprocess
import sys

LINES = 3000


class PatientWriter(io.RawIOBase):
    """A raw stream over an fd whose writes wait instead of failing."""

    def __init__(self, fd):
        self.fd = fd
        self.selector = selectors.DefaultSelector()
        self.selector.register(fd, selectors.EVENT_WRITE)

    def writable(self):
        return True

    def write(self, data):
        while True:
            try:
                return os.write(self.fd, data)  # may be short: BufferedWriter writes on
            except BlockingIOError:
                self.selector.select()


def patient_stdout():
    sys.stdout.flush()
    raw = PatientWriter(sys.stdout.fileno())
    return io.TextIOWrapper(io.BufferedWriter(raw), encoding=sys.stdout.encoding,
                            line_buffering=sys.stdout.line_buffering)


def child():
    sys.stdout = patient_stdout()
    for i in range(LINES):
        print("line %05d %s" % (i, "x" * 60))
    sys.stdout.flush()


def parent():
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # as the supervisor does
    # block-buffered, as stdout on a pipe is by default
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen([sys.executable, __file__, "child"], stdout=write_end, env=env)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        lines = f.read().decode().splitlines()
    if proc.wait() != 0:
        sys.exit(1)  # its traceback is on stderr
    expected = ["line %05d %s" % (i, "x" * 60) for i in range(LINES)]
    if lines != expected:
        print("FAIL: %d of %d lines arrived intact" % (sum(a == b for a, b in zip(lines, expected)),
                                                       LINES))
        sys.exit(1)
    print("ok: all %d lines arrived" % LINES)


if __name__ == "__main__":
    child() if sys.argv[1:] == ["child"] else parent()
