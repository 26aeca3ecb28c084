"""pyapisite.py - a site= rule installed through the C API in a process
that started with no rule (tests/site/run.py): the place table is built
then, with every object loaded so far in it.

    pyapisite.py LIBSITEDL RULE

Loads LIBSITEDL (a siteprobe library) first, then reads a non-blocking
pipe that holds data from that library and from Python itself, before and
after wouldblock_set_rules(RULE). Prints "WHEN WHERE RET" or
"WHEN WHERE -1 ENAME"."""
import ctypes
import errno
import os
import sys

dl = ctypes.CDLL(sys.argv[1], use_errno=True)
wb = ctypes.CDLL(None)
r, w = os.pipe()
os.set_blocking(r, False)
os.write(w, b"0123456789")


def lib_read():
    buf = ctypes.create_string_buffer(4)
    n = dl.siteprobe_lib_read(r, buf, 4)
    return str(n) if n >= 0 else "-1 " + errno.errorcode[ctypes.get_errno()]


def py_read():
    try:
        return str(len(os.read(r, 1)))
    except BlockingIOError:
        return "-1 EAGAIN"


for when in ("before", "after"):
    if when == "after" and wb.wouldblock_set_rules(sys.argv[2].encode()) != 0:
        sys.exit("wouldblock_set_rules failed")
    print(when, "dl", lib_read())
    print(when, "py", py_read())
