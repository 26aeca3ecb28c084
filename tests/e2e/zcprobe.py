"""zcprobe.py - Python's sendfile paths, for tests/e2e/zerocopy.py.

Run under LD_PRELOAD=libwouldblock.so. Like pyprobe.py, each subcommand does
what Python programs do and prints what it saw, one "key value" line each;
the driver judges. Standard library only.

    zcprobe.py asyncio SIZE    loop.sock_sendfile of a SIZE-byte file over TCP
    zcprobe.py os NB SIZE      os.sendfile to a TCP socket (NB: nb or block)
"""
import asyncio
import hashlib
import os
import select
import socket
import sys
import tempfile

WAIT = 5.0  # hang guard for every select


def put(key, value):
    print(key, value, flush=True)


def pattern_file(size):
    """a file of size bytes that a shift, a repeat or a gap would show in"""
    block = bytes((i * 7 + i // 251) & 0xFF for i in range(65521))  # prime length
    data = (block * (size // len(block) + 1))[:size]
    f = tempfile.TemporaryFile()
    f.write(data)
    f.flush()
    f.seek(0)
    return f, hashlib.sha256(data).hexdigest()


def tcp_pair():
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    out = socket.create_connection(lst.getsockname())
    inp, _ = lst.accept()
    lst.close()
    return out, inp


def asyncio_sendfile(size):
    """loop.sock_sendfile (os.sendfile underneath) while the same loop reads"""
    f, digest = pattern_file(int(size))
    out, inp = tcp_pair()
    # small buffers: many sendfile calls, so a prob= rule has calls to pick
    # from (with loopback's default buffers a few MB go in two calls)
    out.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
    inp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    out.setblocking(False)
    inp.setblocking(False)

    async def receive(loop):
        h, n = hashlib.sha256(), 0
        while True:
            chunk = await loop.sock_recv(inp, 65536)
            if not chunk:
                return h.hexdigest(), n
            h.update(chunk)
            n += len(chunk)

    async def main():
        loop = asyncio.get_running_loop()
        reader = asyncio.ensure_future(receive(loop))
        sent = await loop.sock_sendfile(out, f, fallback=False)
        out.shutdown(socket.SHUT_WR)
        got, n = await asyncio.wait_for(reader, 60)
        return sent, got, n

    sent, got, n = asyncio.run(main())
    put("sent", sent)
    put("received", n)
    put("match", int(got == digest))
    put("position", f.tell())


def os_sendfile(nb, size):
    """os.sendfile to a socket; on BlockingIOError wait with select, resend
    from where the file offset says"""
    size = int(size)
    f, digest = pattern_file(size)
    out, inp = tcp_pair()
    out.setblocking(nb == "block")
    put("fd", out.fileno())
    offset, first = 0, None
    h, received = hashlib.sha256(), 0
    while offset < size or received < size:
        if offset < size:
            try:
                n = os.sendfile(out.fileno(), f.fileno(), offset, size - offset)
                offset += n
                first = first or str(n)
            except BlockingIOError as e:
                first = first or "BlockingIOError errno=%d" % e.errno
                select.select([inp], [out], [], WAIT)
        r, _, _ = select.select([inp], [], [], 0 if offset < size else WAIT)
        if r:
            chunk = inp.recv(1 << 20)
            if not chunk:
                break
            h.update(chunk)
            received += len(chunk)
    put("first", first)
    put("sent", offset)
    put("match", int(h.hexdigest() == digest))


COMMANDS = {"asyncio": asyncio_sendfile, "os": os_sendfile}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
