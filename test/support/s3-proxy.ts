import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the proxy does with one request: pass it on, or answer it itself. */
export type ProxyDecision = 'forward' | { readonly status: number; readonly body: string };

/**
 * An HTTP proxy in front of the test S3 server, for what s3rver cannot be made
 * to do: fail a listing midway, or let the test act between two requests of
 * the code under test (`decide` runs before the request is passed on, and is
 * awaited). Not a mock: every request it passes on is answered by s3rver.
 */
export async function startS3Proxy(
  target: string,
  decide: (request: IncomingMessage) => ProxyDecision | Promise<ProxyDecision>,
): Promise<{ endpoint: string; close(): Promise<void> }> {
  const to = new URL(target);
  const server: Server = createServer((req, res) => {
    void (async () => {
      const decision = await decide(req);
      if (decision !== 'forward') {
        res.writeHead(decision.status, { 'content-type': 'application/xml' });
        res.end(decision.body);
        req.resume();
        return;
      }
      const upstream = httpRequest(
        { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** An S3 error document, as the server would send it. */
export function s3ErrorBody(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}
