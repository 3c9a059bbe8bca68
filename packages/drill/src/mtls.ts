/**
 * Real mutual-TLS handshakes on 127.0.0.1 with Node's TLS stack (OpenSSL), each
 * side trusting only its scope's trust.openssl.pem. Used by trellis-drill, the
 * demo (through it) and the tests.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import https from 'node:https';
import tls from 'node:tls';

export interface Party {
  /** A label for the matrix, e.g. `us-east-1/api`. */
  name: string;
  /** The DNS name clients ask for. */
  dns: string;
  key: string;
  /** Leaf plus intermediate. */
  chain: string;
  /** What this party trusts: its scope's trust.openssl.pem. */
  trust: string;
  /** CRLs this party checks its peers against as a server (a release's crl.pem); none: no revocation checking. */
  crl?: string;
}

export interface Outcome {
  ok: boolean;
  error?: string;
}

/** One handshake, client → server; ok only when both sides accepted the other. */
export async function handshake(client: Party, server: Party, timeoutMs = 5000): Promise<Outcome> {
  let serverError: string | undefined;
  // The server checks the client's verification result itself, so a refusal reports OpenSSL's reason.
  // With a CRL, Node's OpenSSL checks revocation along the whole chain (CRL_CHECK_ALL), as nginx's ssl_crl does.
  // Node reads one CRL per array element, so a crl.pem of several is split into its blocks.
  const crl = server.crl
    ? { crl: server.crl.match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----\n?/g) ?? [] }
    : {};
  const srv = tls.createServer(
    {
      key: server.key,
      cert: server.chain,
      ca: [server.trust],
      ...crl,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    (s) => {
      if (s.authorized) s.end('ok\n');
      else {
        serverError = `server: ${s.authorizationError ?? 'no client certificate'}`;
        s.destroy();
      }
    },
  );
  srv.on('tlsClientError', (e) => {
    serverError = `server: ${e.message}`;
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  try {
    return await new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false, error: 'timeout' }), timeoutMs);
      const done = (o: Outcome) => {
        clearTimeout(timer);
        sock.destroy();
        resolve(o);
      };
      let data = '';
      const sock = tls.connect({
        host: '127.0.0.1',
        port,
        servername: server.dns,
        key: client.key,
        cert: client.chain,
        ca: [client.trust],
        minVersion: 'TLSv1.2',
      });
      sock.on('data', (d) => {
        data += d;
        if (data.includes('ok\n')) done({ ok: true });
      });
      sock.on('error', (e) => done({ ok: false, error: serverError ?? `client: ${e.message}` }));
      sock.on('close', () => done({ ok: false, error: serverError ?? 'closed without a reply' }));
    });
  } finally {
    srv.close();
  }
}

export interface Cell {
  client: string;
  server: string;
  expected: boolean;
  outcome: Outcome;
}

/** Runs every (client, server) pair and compares with `expect(client, server)`. */
export async function handshakeMatrix(
  clients: Party[],
  servers: Party[],
  expect: (c: Party, s: Party) => boolean,
): Promise<Cell[]> {
  const cells: Cell[] = [];
  for (const c of clients) {
    for (const s of servers)
      cells.push({ client: c.name, server: s.name, expected: expect(c, s), outcome: await handshake(c, s) });
  }
  return cells;
}

export function renderMatrix(cells: Cell[]): string {
  const servers = [...new Set(cells.map((c) => c.server))];
  const clients = [...new Set(cells.map((c) => c.client))];
  const w = Math.max(...clients.map((c) => c.length), 12);
  const col = Math.max(...servers.map((s) => s.length), 6) + 2;
  const lines = [`${'client \\ server'.padEnd(w + 2)}${servers.map((s) => s.padEnd(col)).join('')}`];
  for (const c of clients) {
    const row = servers.map((s) => {
      const cell = cells.find((x) => x.client === c && x.server === s)!;
      const mark = cell.outcome.ok ? '✓' : '✗';
      return `${mark}${cell.outcome.ok === cell.expected ? '' : ' UNEXPECTED'}`.padEnd(col);
    });
    lines.push(`${c.padEnd(w + 2)}${row.join('')}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * One HTTPS request with a client certificate: the status, or 'refused' when
 * the handshake failed. Given CRLs, the client checks the server's chain
 * against them as the edge does (every certificate of the chain).
 */
export function httpsStatus(
  port: number,
  servername: string,
  c: { key: string; chain: string; ca: string; crl?: string },
): Promise<number | 'refused'> {
  const crl = c.crl ? { crl: c.crl.match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----\n?/g) ?? [] } : {};
  return new Promise((resolve) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        servername,
        key: c.key,
        cert: c.chain,
        ca: c.ca,
        ...crl,
        agent: false,
        timeout: 5000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve('refused'));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
