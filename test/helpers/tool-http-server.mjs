// A loopback HTTP tool server: each path is one tool. /image answers a PNG, /svg an SVG with a script, /redirect a 302, /empty a 204, /json echoes the
// input, /fail answers 500, /gate waits until the test releases it (to observe pending/running), /hang never answers.
import http from 'node:http';
import { png } from './media-fixtures.mjs';

export async function startToolServer() {
  const received = [];
  let release;
  const gate = new Promise((resolve) => (release = resolve));
  let gateReached;
  const gateEntered = new Promise((resolve) => (gateReached = resolve));
  const server = http.createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    received.push({ path: req.url, headers: req.headers, body: body ? JSON.parse(body) : undefined });
    if (req.url === '/image') {
      res.writeHead(200, { 'content-type': 'image/png' }).end(png);
    } else if (req.url === '/svg') {
      res.writeHead(200, { 'content-type': 'image/svg+xml' }).end('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>');
    } else if (req.url === '/redirect') {
      res.writeHead(302, { location: '/image' }).end();
    } else if (req.url === '/empty') {
      res.writeHead(204).end();
    } else if (req.url === '/json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ echoed: JSON.parse(body), auth: req.headers.authorization ?? null }));
    } else if (req.url === '/fail') {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('render farm on fire');
    } else if (req.url === '/hang') {
      // Never answers: the tool's timeout must fire (the connection is dropped at close).
    } else if (req.url === '/gate') {
      gateReached();
      await gate;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ done: true }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    received,
    release: () => release(),
    gateEntered,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}
