#!/usr/bin/env python3
"""A correct asyncio echo server and its clients in one event loop: the
Python half of the scenario-library conformance suite.

    echo_asyncio.py (--tcp | --unix PATH) --payload FILE --out FILE [--clients N]

The server (asyncio.start_server / start_unix_server) echoes every byte
back and closes after the client's EOF. Client i connects, sends its slice
of the payload in chunks while reading the echo, sends EOF once the whole
echo is back, and reads until the server's EOF. (Neither end hangs up while
bytes are in flight: a read with the end of the stream queued behind it
takes all there is on Linux, so wouldblock cuts no such read.) The echoed slices, concatenated in client order, go to
--out for the caller to compare with the payload; they are checked here
too (sha256), so the script also stands on its own.

asyncio is the would-block handler under test here: its selector loop, its
transports' send/recv retry paths, its accept loop (accept4 until
BlockingIOError), sock_connect (EINPROGRESS, then SO_ERROR) and its
self-pipe (a socketpair whose wake-up send ignores EAGAIN). Under every
scenario of the library it must end with the same bytes.
"""
import argparse
import asyncio
import hashlib
import sys

CHUNK = 8192


async def serve_one(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def run_client(args, index, piece):
    if args.tcp:
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
    else:
        reader, writer = await asyncio.open_unix_connection(args.unix)

    async def send_all():
        for off in range(0, len(piece), CHUNK):
            writer.write(piece[off:off + CHUNK])
            await writer.drain()

    sender = asyncio.create_task(send_all())
    echo = bytearray()
    while len(echo) < len(piece):
        data = await reader.read(65536)
        if not data:
            raise SystemExit(f"echo_asyncio: client {index}: EOF after {len(echo)} of "
                             f"{len(piece)} bytes")
        echo += data
    await sender
    writer.write_eof()
    if await reader.read(65536):
        raise SystemExit(f"echo_asyncio: client {index}: the echo is longer than what was sent")
    writer.close()
    await writer.wait_closed()
    return bytes(echo)


async def main(args):
    payload = open(args.payload, "rb").read()
    if args.tcp:
        server = await asyncio.start_server(serve_one, "127.0.0.1", 0)
        args.port = server.sockets[0].getsockname()[1]
    else:
        server = await asyncio.start_unix_server(serve_one, args.unix)
    n = args.clients
    pieces = [payload[len(payload) * i // n:len(payload) * (i + 1) // n] for i in range(n)]
    async with server:
        echoes = await asyncio.gather(*(run_client(args, i, p) for i, p in enumerate(pieces)))
    for i, (sent, got) in enumerate(zip(pieces, echoes)):
        if sent != got:
            raise SystemExit(f"echo_asyncio: client {i}: sent {len(sent)} bytes, "
                             f"got back {len(got)} that differ")
    echoed = b"".join(echoes)
    with open(args.out, "wb") as f:
        f.write(echoed)
    want, got = hashlib.sha256(payload).hexdigest(), hashlib.sha256(echoed).hexdigest()
    if want != got:
        raise SystemExit(f"echo_asyncio: sha256 {got}, expected {want}")
    print(f"echo_asyncio: {'tcp' if args.tcp else 'unix'}: {n} clients, "
          f"{len(echoed)} bytes echoed, sha256 {got}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", action="store_true", help="listen on 127.0.0.1, a free port")
    where.add_argument("--unix", metavar="PATH", help="listen on a unix socket at PATH")
    p.add_argument("--payload", required=True, help="the bytes to send")
    p.add_argument("--out", required=True, help="where the echo goes")
    p.add_argument("--clients", type=int, default=4)
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args(sys.argv[1:])))
