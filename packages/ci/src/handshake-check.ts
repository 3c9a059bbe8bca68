/**
 * The canary's handshake check: after a target reloads, connect to its TLS
 * endpoint as a client of the same service and require that the server both
 * verifies under the new bundle and presents the leaf just deployed, with the
 * SPIFFE ID its deploy.probe entry names. With an
 * https:// check, an HTTP request must also get a status below 400 (nginx
 * completes the handshake and answers 400 when it refuses a client).
 */
import https from 'node:https';
import tls from 'node:tls';
import { fingerprint, parseCertificate, type Release } from '@trellis/core';

export async function handshakeCheck(
  check: string,
  servername: string,
  release: Release,
  spiffe: string | undefined,
  timeoutMs = 5000,
): Promise<{ ok: boolean; error?: string }> {
  const address = check.replace(/^https:\/\//, '').replace(/\/.*$/, '');
  const tlsOk = await tlsCheck(address, servername, release, spiffe, timeoutMs);
  if (!tlsOk.ok || !check.startsWith('https://')) return tlsOk;
  const url = new URL(check);
  return new Promise((resolve) => {
    const req = https.request(
      {
        host: url.hostname,
        port: Number(url.port),
        path: url.pathname || '/',
        servername,
        ca: [release['trust.openssl.pem']!],
        agent: false,
        timeout: timeoutMs,
        ...(release['key.pem'] ? { key: release['key.pem'], cert: release['chain.pem'] } : {}),
      },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        resolve(status < 400 ? { ok: true } : { ok: false, error: `HTTP ${status}` });
      },
    );
    req.on('error', (e) => resolve({ ok: false, error: e.message }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function tlsCheck(
  address: string,
  servername: string,
  release: Release,
  spiffe: string | undefined,
  timeoutMs: number,
): Promise<{ ok: boolean; error?: string }> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    Number(address.slice(address.lastIndexOf(':') + 1)),
  ];
  const expected = release['cert.pem']
    ? fingerprint(parseCertificate(release['cert.pem'])).slice('sha256:'.length)
    : undefined;
  return new Promise((resolve) => {
    const sock = tls.connect({
      host,
      port,
      servername,
      ca: [release['trust.openssl.pem']!],
      ...(release['key.pem'] ? { key: release['key.pem'], cert: release['chain.pem'] } : {}),
    });
    const done = (r: { ok: boolean; error?: string }) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, error: 'timeout' }), timeoutMs);
    sock.on('secureConnect', () => {
      const presented = sock.getPeerX509Certificate();
      const got = presented ? Buffer.from(presented.fingerprint256.replace(/:/g, ''), 'hex').toString('hex') : '';
      const uris = (presented?.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('URI:'));
      if (expected && got !== expected)
        done({ ok: false, error: `the endpoint presents ${got.slice(0, 16)}…, not the leaf just deployed` });
      else if (spiffe && !uris.includes(`URI:${spiffe}`))
        done({
          ok: false,
          error: `the endpoint's leaf names ${uris.map((u) => u.slice(4)).join(', ') || 'no SPIFFE ID'}, not ${spiffe}`,
        });
      // Give the server its turn to refuse our client certificate (TLS 1.3 does so after the client's Finished).
      else setTimeout(() => done({ ok: !sock.destroyed }), 200);
    });
    sock.on('error', (e) => done({ ok: false, error: e.message }));
  });
}
