"""tls_echo.py CERT KEY SIZE - an asyncio TLS echo, client and server in one process.

The client sends SIZE random bytes (after an 8-byte length: TLS streams
cannot be half-closed), the server echoes exactly that many back, and the
client compares SHA-256 digests. Prints "ok: ..." or "FAIL: ..." and exits
0 or 1. Run by suite.py under wouldblock: asyncio and OpenSSL must survive
would-blocks in the middle of TLS records and handshakes.
"""

import asyncio
import hashlib
import os
import ssl
import sys

CHUNK = 16384


async def echo(reader, writer, done):
    remaining = int.from_bytes(await reader.readexactly(8), "big")
    while remaining:
        data = await reader.read(min(CHUNK, remaining))
        if not data:
            break
        remaining -= len(data)
        writer.write(data)
        await writer.drain()
    await close(writer)
    done.set_result(None)


async def close(writer):
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, ssl.SSLError):
        pass  # the other side may have gone first: nothing is lost by then


async def send(writer, data):
    writer.write(len(data).to_bytes(8, "big"))
    for start in range(0, len(data), CHUNK):
        writer.write(data[start : start + CHUNK])
        await writer.drain()


async def main(cert, key, size):
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=cert)  # verifies name and chain
    done = asyncio.get_running_loop().create_future()  # the server's side is over
    server = await asyncio.start_server(lambda r, w: echo(r, w, done), "127.0.0.1", 0,
                                        ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
    data = os.urandom(size)
    sending = asyncio.create_task(send(writer, data))
    echoed = await reader.readexactly(size)
    await sending
    await done
    await close(writer)
    server.close()
    await server.wait_closed()
    return data, echoed


sent, received = asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
if hashlib.sha256(sent).digest() == hashlib.sha256(received).digest():
    print(f"ok: TLS echo: {len(sent)} bytes, sha256 {hashlib.sha256(sent).hexdigest()[:16]}...")
    sys.exit(0)
print(f"FAIL: TLS echo: {len(received)} bytes back, not the {len(sent)} sent")
sys.exit(1)
