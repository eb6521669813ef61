#!/usr/bin/env node
// The floor for gateway overhead on this machine: the smallest useful Node proxy (node:http in,
// an undici keep-alive pool out, the body forwarded as it is, the response piped back). It
// parses nothing, checks nothing and logs nothing; what any gateway adds beyond it is its own.
// Usage: node bench/floor-proxy.mjs UPSTREAM_ORIGIN   (prints its port on stdout)
import http from 'node:http';
import { Pool } from 'undici';

const pool = new Pool(process.argv[2], { connections: 128 });
const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  try {
    const upstream = await pool.request({ method: 'POST', path: req.url, headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) });
    res.writeHead(upstream.statusCode, { 'content-type': upstream.headers['content-type'] });
    for await (const chunk of upstream.body) res.write(chunk);
    res.end();
  } catch (err) {
    res.writeHead(502).end(String(err));
  }
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
