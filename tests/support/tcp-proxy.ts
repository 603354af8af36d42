/**
 * A loopback TCP proxy the tests control: stop it to make a service's database or Redis
 * unreachable, start it again to bring it back, or add a delay to each chunk to make
 * the backend slow.
 */
import net from 'node:net';

export class TcpProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  /** Connections whose traffic is dropped without closing them (silenceOpen). */
  private readonly silenced = new Set<net.Socket>();
  delayMs = 0;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number
  ) {}

  async start(): Promise<number> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      const pipe = (from: net.Socket, to: net.Socket) =>
        from.on('data', (chunk) => {
          if (this.silenced.has(from)) {
            return;
          }
          if (this.delayMs > 0) {
            setTimeout(() => to.write(chunk), this.delayMs);
          } else {
            to.write(chunk);
          }
        });
      pipe(client, upstream);
      pipe(upstream, client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  /**
   * The open connections go silent — whatever is sent on them is dropped, and neither end is
   * told (a peer lost without FIN or RST) — while new connections pass as before.
   */
  silenceOpen(): void {
    for (const s of this.sockets) {
      this.silenced.add(s);
      s.once('close', () => this.silenced.delete(s));
    }
  }

  /** Refuses new connections and cuts the open ones. */
  async stop(): Promise<void> {
    for (const s of this.sockets) {
      s.destroy();
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }
}
