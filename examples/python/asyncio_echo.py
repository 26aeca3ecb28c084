"""asyncio_echo.py - an asyncio echo server and client: right by construction.

asyncio's transports and streams already do what the *_wrong.py examples
get wrong: every non-blocking call that would block is retried only after
the event loop says the fd is ready, connect's outcome is read from
SO_ERROR, partial sends are kept and finished later, and a stream ends on
EOF, not on a short read. So this passes under every built-in scenario;
the example is here to show that, and to catch a library that breaks a
program that is right.
"""

import asyncio

import peers

SIZE = 4096
CHUNK = 1024


async def echo(reader, writer):
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def send_all(writer, data):
    for start in range(0, len(data), CHUNK):
        writer.write(data[start : start + CHUNK])
        await writer.drain()
    writer.write_eof()


async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
    data = peers.payload(SIZE)
    sending = asyncio.create_task(send_all(writer, data))
    echoed = await reader.read()  # until EOF: the server closes after the echo
    await sending
    writer.close()
    server.close()
    await server.wait_closed()
    return data, echoed


sent, received = asyncio.run(main())
peers.check("echo", received, sent)
