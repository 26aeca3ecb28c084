"""pipe_reader_wrong.py - a pipe reader that takes "nothing now" for "nothing more".

The bug: the read end of a pipe is non-blocking, and the reader stops at
the first BlockingIOError as if the data had ended. EAGAIN only says that
nothing is there right now; the end of the data is os.read returning b""
once every writer has closed its end.
Exposed by: first-read (the first read on every non-blocking fd would
block), as if the writer were late: the reader stops before its first byte
and loses everything, on every run. Without wouldblock the bug hides here:
the writer has finished before the reader starts, so every read finds data.
The fix (pipe_reader_right.py): on BlockingIOError wait until the pipe is
readable (selectors) and read on; stop on b"".
"""

import os

import peers

data = peers.payload(10000)
read_end, write_end = os.pipe()
os.set_blocking(read_end, False)
# kind to the reader: the writer is done before it starts
peers.write_in_background(write_end, data).join()

chunks = []
while True:
    try:
        chunk = os.read(read_end, 4096)
    except BlockingIOError:
        break  # BUG: the writer may just not have written yet
    if not chunk:
        break
    chunks.append(chunk)

peers.check("pipe", b"".join(chunks), data)
