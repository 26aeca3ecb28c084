// echo_node.js - node's `net` and `http`, both ends, for tests/realworld.
//
//   node echo_node.js net-server|http-server
//       listens on 127.0.0.1, an ephemeral port, prints "port N"; echoes
//       every byte of every connection (net) or every POST body (http);
//       on SIGTERM closes the listener and exits 0 (the signal reaches the
//       loop through libuv's signal pipe: a 16-byte write to a
//       non-blocking pipe, which a faithful injection never cuts).
//   node echo_node.js net-client|http-client PORT PAYLOAD OUT CLIENTS
//       CLIENTS parallel connections (requests), each sends PAYLOAD whole
//       (net: half-closes once the whole echo is back, then waits for the
//       server's end), and writes the echo it got back to OUT.K.
//
// Everything goes through libuv's non-blocking sockets and its signal
// pipe: the code paths issue 9 found unfaithful injections in.
'use strict';
const fs = require('fs');
const net = require('net');
const http = require('http');

const [mode, ...args] = process.argv.slice(2);
const die = (what) => (err) => {
  console.error(`${mode}: ${what}: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
};
function serve(server) {
  server.on('error', die('server'));
  server.listen(0, '127.0.0.1', () => console.log(`port ${server.address().port}`));
  // SIGTERM (the driver's stop, once its client is done) ends the process
  // through exit, so the library's at-exit report is written
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

if (mode === 'net-server') {
  const server = net.createServer((sock) => {
    sock.on('error', die('socket'));
    sock.pipe(sock); // end() follows the peer's end(): the half-close travels back
  });
  serve(server);
} else if (mode === 'http-server') {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('error', die('request'));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      // keep-alive: the client closes once it has the whole body, so its
      // reads meet an open connection, where TCP can return less than
      // asked (with the end of the stream queued behind the data it cannot)
      res.writeHead(200, {'Content-Type': 'application/octet-stream',
                          'Content-Length': body.length, 'Connection': 'keep-alive'});
      res.end(body);
    });
  });
  serve(server);
} else if (mode === 'net-client' || mode === 'http-client') {
  const [port, payloadPath, out, clients] = [Number(args[0]), args[1], args[2], Number(args[3])];
  const payload = fs.readFileSync(payloadPath);
  let left = clients;
  const got = (k) => (chunks) => {
    fs.writeFileSync(`${out}.${k}`, Buffer.concat(chunks));
    if (--left === 0) process.exit(0);
  };
  for (let k = 0; k < clients; k++) {
    const chunks = [];
    if (mode === 'net-client') {
      // the half-close follows the whole echo: the server then reads from
      // an open connection, where a short read is something TCP can do
      // (with the end of the stream queued behind the data it is not)
      let received = 0;
      const sock = net.connect(port, '127.0.0.1', () => sock.write(payload));
      sock.on('data', (c) => {
        chunks.push(c);
        received += c.length;
        if (received >= payload.length) sock.end();
      });
      sock.on('error', die('client socket'));
      sock.on('end', () => got(k)(chunks));
    } else {
      const req = http.request({host: '127.0.0.1', port, method: 'POST', path: `/echo/${k}`,
                                agent: false, headers: {'Content-Length': payload.length}},
                               (res) => {
        if (res.statusCode !== 200) die('response')(`status ${res.statusCode}`);
        res.on('data', (c) => chunks.push(c));
        res.on('error', die('response'));
        res.on('end', () => got(k)(chunks));
      });
      req.on('error', die('request'));
      req.end(payload);
    }
  }
} else {
  die('usage')('net-server|http-server | net-client|http-client PORT PAYLOAD OUT CLIENTS');
}
