/** Start-up, last step: the HTTP server, with timeouts that keep slow clients from holding sockets. */
import http from 'node:http';
import type { Config } from '../config';

export interface Listening {
  url: string;
  port: number;
  /** Stops accepting, closes idle keep-alive sockets; resolves once in-flight requests completed. */
  close(): Promise<void>;
}

export async function listen(handler: http.RequestListener, config: Config): Promise<Listening> {
  // Timeouts are checked every second (Node's default interval is 30 s).
  const server = http.createServer(
    {
      connectionsCheckingInterval: 1000,
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    },
    handler
  );
  server.listen(config.PORT, config.HOST);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.keepAliveTimeout = 5_000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  return {
    url: `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
