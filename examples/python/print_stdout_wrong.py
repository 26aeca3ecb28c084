"""print_stdout_wrong.py - print() to a stdout that a parent made non-blocking.

The bug: a parent (a Node.js or Rust supervisor, a terminal multiplexer, a
CI runner) set O_NONBLOCK on the pipe it gave as stdout. The flag belongs
to the shared pipe, so this program's stdout is non-blocking too, and the
moment the pipe is full print() raises
    BlockingIOError: [Errno 11] write could not complete without blocking
(as reported against rich, httpie and honcho). Without wouldblock it shows
only when the parent falls behind, now and then. Exposed on every run by
rules 'write when=1 until=poll inflight=any' (a slow reader: the first
write on each non-blocking fd would block, and so does every write after it
until the program waits for the fd): print() never waits, so it fails.
The fix (print_stdout_right.py): a stdout whose raw writes wait for the
pipe to be writable when it says "not now".

    python3 print_stdout_wrong.py          # the parent: checks every line arrived
"""
import os
import subprocess
import sys

LINES = 3000


def child():
    for i in range(LINES):
        print("line %05d %s" % (i, "x" * 60))  # BUG: stdout may be non-blocking
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
