// A forward proxy on loopback that speaks CONNECT (as corporate egress proxies do): it records
// each tunnel's target (`host:port`) and pipes bytes both ways, or refuses every tunnel with
// `refuseWith` (a status), or with a 407 each one without `credentials` ('user:password', Basic).
import http from 'node:http';
import net from 'node:net';

export async function startConnectProxy({ refuseWith, credentials } = {}) {
  const tunnels = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => res.writeHead(405).end());
  server.on('connect', (req, socket, head) => {
    tunnels.push(req.url);
    const authorized = !credentials || req.headers['proxy-authorization'] === `Basic ${Buffer.from(credentials).toString('base64')}`;
    if (refuseWith || !authorized) {
      // A proxy that wants credentials (407) or forbids the target (403): it answers and closes.
      const status = refuseWith ?? 407;
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nProxy-Authenticate: Basic realm="egress"\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const [host, port] = req.url.split(':');
    const upstream = net.connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(socket).on('error', () => {});
      socket.pipe(upstream).on('error', () => {});
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Targets of the tunnels opened so far, in order. */
    tunnels,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Sets environment variables for the length of `run`, then puts the old values back. */
export async function withEnv(vars, run) {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  Object.assign(process.env, vars);
  try {
    return await run();
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}
