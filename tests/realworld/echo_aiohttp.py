#!/usr/bin/env python3
"""echo_aiohttp.py - an aiohttp server and client, for tests/realworld.

    echo_aiohttp.py server
        listens on 127.0.0.1, an ephemeral port, prints "port N"; POST /echo
        answers the body back (streamed, in chunks), GET /blob/SIZE/SEED
        answers SIZE seeded bytes; exits 0 on SIGTERM (the driver sends it
        once the client is done: only the client knows when every byte of
        every response has arrived).
    echo_aiohttp.py client PORT PAYLOAD OUT CLIENTS
        CLIENTS concurrent POSTs of PAYLOAD (written to OUT.post.K) and
        CLIENTS concurrent GETs of len(PAYLOAD) seeded bytes (OUT.get.K).

Needs an interpreter with aiohttp (Debian's /usr/bin/python3 with
python3-aiohttp); the driver finds one.
"""
import asyncio
import random
import signal
import sys

from aiohttp import ClientSession, TCPConnector, web


def blob(size, seed):
    return random.Random(seed).randbytes(size)


async def server():
    finished = asyncio.Event()

    async def echo(request):
        resp = web.StreamResponse()
        resp.content_length = request.content_length
        await resp.prepare(request)
        async for chunk in request.content.iter_chunked(65536):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def get_blob(request):
        data = blob(int(request.match_info["size"]), int(request.match_info["seed"]))
        return web.Response(body=data, content_type="application/octet-stream")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/echo", echo)
    app.router.add_get("/blob/{size}/{seed}", get_blob)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print("port %d" % port, flush=True)
    loop = asyncio.get_running_loop()
    # SIGTERM (the driver's stop) ends through exit: the report is written
    loop.add_signal_handler(signal.SIGTERM, finished.set)
    await finished.wait()
    await runner.cleanup()


async def client(port, payload_path, out, clients):
    with open(payload_path, "rb") as f:
        payload = f.read()
    base = "http://127.0.0.1:%d" % port

    async def post(session, k):
        async with session.post(base + "/echo", data=payload) as resp:
            resp.raise_for_status()
            body = await resp.read()
        with open("%s.post.%d" % (out, k), "wb") as f:
            f.write(body)

    async def get(session, k):
        async with session.get("%s/blob/%d/%d" % (base, len(payload), k)) as resp:
            resp.raise_for_status()
            body = await resp.read()
        with open("%s.get.%d" % (out, k), "wb") as f:
            f.write(body)

    # no proxy from the environment: the requests must stay on loopback
    async with ClientSession(connector=TCPConnector(limit=clients), trust_env=False) as session:
        await asyncio.gather(*[post(session, k) for k in range(clients)],
                             *[get(session, k) for k in range(clients)])


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "server":
        asyncio.run(server())
    elif len(sys.argv) == 6 and sys.argv[1] == "client":
        asyncio.run(client(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
