"""pipe_reader_right.py - a pipe reader that waits (see pipe_reader_wrong.py).

BlockingIOError means "nothing now": wait until the pipe is readable and
read on. The data ends when os.read returns b"" (every writer has closed).
Passes under every built-in scenario.
"""

import os
import selectors

import peers

data = peers.payload(10000)
read_end, write_end = os.pipe()
os.set_blocking(read_end, False)
# kind to the reader: the writer is done before it starts
peers.write_in_background(write_end, data).join()

selector = selectors.DefaultSelector()
selector.register(read_end, selectors.EVENT_READ)
chunks = []
while True:
    try:
        chunk = os.read(read_end, 4096)
    except BlockingIOError:
        selector.select()
        continue
    if not chunk:
        break
    chunks.append(chunk)

peers.check("pipe", b"".join(chunks), data)
