// The machine's floor for the bench's "floor" section: a bare Node `http` server that reads
// each request body and answers one fixed JSON body of FLOOR_BODY_BYTES bytes. Nothing a
// cached ruleperf answer could skip is left out (keep-alive, reading the POST body,
// Content-Type and Content-Length), and nothing else is done, so what ruleperf costs beyond it
// is its own work. Plain JavaScript run by `node` itself, without the tsx loader.
import http from 'node:http';

const size = Number(process.env.FLOOR_BODY_BYTES ?? 4096);
const head = '{"results":{"A":{"frames":[]}},"pad":"';
const tail = '"}';
const body = Buffer.from(head + 'x'.repeat(Math.max(0, size - head.length - tail.length)) + tail);
const headers = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length };

const server = http.createServer((req, res) => {
  req.on('data', () => undefined);
  req.on('end', () => {
    res.writeHead(200, headers);
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  console.log(`floor server ready at http://127.0.0.1:${port} (${body.length} bytes per answer)`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
