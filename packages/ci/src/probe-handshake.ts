/**
 * One probe handshake: connect to a confirmed endpoint as a client with a probe key, and judge what the endpoint
 * presents ourselves (which live intermediate signed it, its SPIFFE ID, its dates, revocation). No proxy is consulted
 * (tls.connect uses none) and no redirect followed; every connection has a timeout. With a path, one HTTP request must
 * be answered below 400: nginx completes the handshake and answers 400 to a client it does not verify.
 */
import tls from 'node:tls';
import {
  issuingIntermediate,
  parseCertificate,
  subjectAltNames,
  type Endpoint,
  type Mesh,
  type ProbeOutcome,
} from '@trellis/core';

export interface ProbeClient {
  /** Fingerprint of the intermediate that certified the key. */
  client: string;
  keyPem: string;
  /** The probe certificate and its intermediate. */
  chainPem: string;
}

const TIMEOUT_MS = 5000;
/** How long a TLS 1.3 server has to refuse our certificate after the client's Finished. */
const REFUSAL_WINDOW_MS = 300;

export function probeEndpoint(mesh: Mesh, e: Endpoint, c: ProbeClient, now: Date): Promise<ProbeOutcome> {
  const i = e.address.lastIndexOf(':');
  const [host, port] = [e.address.slice(0, i), Number(e.address.slice(i + 1))];
  // The name the endpoint's own leaf carries: spiffe://<scope domain>/<service> → <service>.<scope domain>.
  const m = /^spiffe:\/\/([^/]+)\/([^/]+)$/.exec(e.spiffe);
  const servername = m ? `${m[2]}.${m[1]}` : undefined;
  const base = { endpoint: e.name, client: c.client };
  return new Promise((resolve) => {
    const sock = tls.connect({
      host,
      port,
      ...(servername ? { servername } : {}),
      key: c.keyPem,
      cert: c.chainPem,
      // Judged below against the store's live intermediates: a handshake that fails verification would say less.
      rejectUnauthorized: false,
    });
    let presented: string | undefined;
    let problem: string | undefined;
    const done = (accepted: boolean, error?: string, refused = false) => {
      clearTimeout(timer);
      sock.destroy();
      const err = problem ?? error;
      resolve({
        ...base,
        accepted: accepted && !problem,
        ...(refused ? { refused } : {}),
        ...(presented ? { presented } : {}),
        ...(err ? { error: err } : {}),
      });
    };
    const timer = setTimeout(() => done(false, `no answer within ${TIMEOUT_MS / 1000} s`), TIMEOUT_MS);
    // A TLS alert about our certificate is the endpoint refusing the client; a dead port or a reset is not.
    sock.on('error', (err) => done(false, err.message.split('\n')[0], /alert|certificate/i.test(err.message)));
    sock.on('secureConnect', () => {
      const raw = sock.getPeerX509Certificate()?.raw;
      if (!raw) return done(false, 'the endpoint presented no certificate');
      const leaf = parseCertificate(new Uint8Array(raw));
      presented = issuingIntermediate(mesh, e.scope, leaf);
      const revoked = mesh.material.get(e.scope)?.state?.revoked ?? [];
      if (!presented) problem = `presents a leaf no live intermediate of ${e.scope} signed`;
      else if (!subjectAltNames(leaf).uris.includes(e.spiffe))
        problem = `presents ${subjectAltNames(leaf).uris.join(', ') || 'no SPIFFE ID'}, not ${e.spiffe}`;
      else if (now < leaf.notBefore || now >= leaf.notAfter) problem = 'presents a leaf outside its validity';
      else if (revoked.some((r) => r.serial.toLowerCase() === leaf.serialNumber.toLowerCase()))
        problem = 'presents a revoked leaf';
      if (!e.path)
        return setTimeout(
          () => (sock.destroyed ? done(false, 'closed the connection after the handshake', true) : done(true)),
          REFUSAL_WINDOW_MS,
        );
      let head = '';
      sock.on('data', (d: Buffer) => {
        head += d.toString('latin1');
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
        const code = Number(status?.[1]);
        // nginx answers 400 (or 495/496) to a client certificate it does not verify; 403 is a refusal by policy.
        if (status) done(code < 400, code < 400 ? undefined : `HTTP ${code}`, [400, 403, 495, 496].includes(code));
        else if (head.includes('\r\n') || head.length > 1024) done(false, 'not an HTTP answer');
      });
      sock.on('end', () => done(false, 'closed before an HTTP answer'));
      sock.write(`GET ${e.path} HTTP/1.1\r\nHost: ${servername ?? host}\r\nConnection: close\r\n\r\n`);
    });
  });
}
