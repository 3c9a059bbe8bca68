/**
 * Five certificate verifiers nobody here wrote, behind one call: OpenSSL's
 * CLI, Go's crypto/x509 (scripts/goverify), NSS (vfychain), GnuTLS (certtool)
 * and Node's TLS stack in a real mutual-TLS handshake on 127.0.0.1. Each is set
 * up as a deployed peer would be: the anchors of its bundle, the CRLs it is
 * shipped, and the purpose the presented leaf is used for.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { parseCertificates, pemDecodeAll, pemEncode, trustOpensslPem } from '@trellis/core';
import { REPO, goverify, tool } from './cli.js';
import { jvmArgs } from './keytool.js';

export const VERIFIERS = ['openssl', 'go', 'nss', 'gnutls', 'node', 'pkix', 'jsse', 'botan'] as const;
export type Verifier = (typeof VERIFIERS)[number];
export const VERIFIER_LABEL: Record<Verifier, string> = {
  openssl: 'OpenSSL',
  go: 'Go',
  nss: 'NSS',
  gnutls: 'GnuTLS',
  node: 'Node TLS',
  pkix: 'Java PKIX',
  jsse: 'Java JSSE',
  botan: 'Botan',
};

/** Judged by one JVM for the whole table (tests/jvm/Conformance.java): a JVM per cell would cost a second each. */
export const JVM_VERIFIERS = ['pkix', 'jsse'] as const satisfies readonly Verifier[];
const JVM_CONFORMANCE = path.join(REPO, 'tests/jvm/Conformance.java');

/** The role the presented leaf plays: a client is checked for clientAuth, a server for serverAuth. */
export type Purpose = 'client' | 'server';

/** What a peer presents: its leaf and key, and the chain it sends (leaf first, then any CAs). */
export interface Presented {
  cert: string;
  key: string;
  chain: string;
}

/** What the verifying peer holds: anchors (plain PEM certificates) and CRLs (PEM, any number each). */
export interface Trust {
  anchors: string;
  /** CRLs of leaves and of intermediates, each signed by the CA it names. */
  crls: string[];
  /**
   * trellis's anchor CRLs (see signAnchorCrl): for OpenSSL's full-chain CRL
   * checking only. NSS gets none: it keeps one CRL per issuer name, and these
   * all name the root.
   */
  anchorCrls: string[];
}

export interface Verdict {
  accepted: boolean;
  /** The verifier's own words, one line. */
  detail: string;
}

export interface Cell {
  presented: Presented;
  trust: Trust;
  purpose: Purpose;
  /** The judge's own leaf, for its side of the Node handshake (the leaf's side does not judge it). */
  peer: Presented;
}

const EKU_OID: Record<Purpose, string> = { client: '1.3.6.1.5.5.7.3.2', server: '1.3.6.1.5.5.7.3.1' };

/** Writes `text` to `dir` under a name derived from its content (so equal inputs share one file). */
function file(dir: string, ext: string, text: string): string {
  const f = path.join(dir, `${createHash('sha256').update(text).digest('hex').slice(0, 16)}.${ext}`);
  if (!fs.existsSync(f)) fs.writeFileSync(f, text);
  return f;
}

const pemEncodeCert = (der: Uint8Array) => pemEncode('CERTIFICATE', der);
const firstCert = (chain: string) => pemEncodeCert(pemDecodeAll(chain, 'CERTIFICATE')[0]!);
const caCerts = (chain: string) => pemDecodeAll(chain, 'CERTIFICATE').slice(1).map(pemEncodeCert).join('');
const lastLine = (s: string) =>
  s
    .trim()
    .split('\n')
    .filter((l) => l.trim())
    .at(-1)
    ?.trim() ?? '';

export class Verifiers {
  private nssDbs = new Map<string, Promise<string>>();

  constructor(private readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
  }

  run(v: Verifier, c: Cell): Promise<Verdict> {
    switch (v) {
      case 'openssl':
        return this.openssl(c);
      case 'go':
        return this.go(c);
      case 'nss':
        return this.nss(c);
      case 'gnutls':
        return this.gnutls(c);
      case 'node':
        return nodeHandshake(c);
      case 'botan':
        return this.botan(c);
      case 'pkix':
      case 'jsse':
        throw new Error(`${v} is judged in one JVM for every cell: call jvm()`);
    }
  }

  /**
   * Java 17's PKIX CertPathValidator and a JSSE handshake on every cell, in one JVM. The CRLs are the ones
   * `bundle --format crl-jvm` ships: no anchor CRLs (docs/jvm.md).
   */
  async jvm(cells: Cell[]): Promise<Record<(typeof JVM_VERIFIERS)[number], Verdict>[]> {
    const lines = cells.map((c, i) =>
      [
        i,
        c.purpose,
        file(this.dir, 'pem', c.presented.chain),
        file(this.dir, 'key', c.presented.key),
        file(this.dir, 'pem', c.trust.anchors),
        c.trust.crls.length ? file(this.dir, 'crl', c.trust.crls.join('')) : '-',
        file(this.dir, 'pem', c.peer.chain),
        file(this.dir, 'key', c.peer.key),
      ].join('\t'),
    );
    const r = await tool('java', jvmArgs('java', [JVM_CONFORMANCE, file(this.dir, 'cases', `${lines.join('\n')}\n`)]));
    if (r.code !== 0) throw new Error(`java Conformance.java: ${r.stderr}`);
    const out = cells.map(() => ({}) as Record<(typeof JVM_VERIFIERS)[number], Verdict>);
    for (const line of r.stdout.trim().split('\n')) {
      const [i, v, verdict, detail] = line.split('\t') as [string, 'pkix' | 'jsse', string, string];
      out[Number(i)]![v] = { accepted: verdict === 'accepted', detail };
    }
    return out;
  }

  /**
   * `botan cert_verify leaf CAs…`: Botan 2's path validation with the anchors and the sent CAs as its store (the CLI
   * takes no CRL or purpose, and trusts every CA it is given). It exits 0 either way; its one line says.
   */
  private async botan(c: Cell): Promise<Verdict> {
    // One certificate per file: the CLI reads the first of each.
    const each = (pem: string) =>
      pemDecodeAll(pem, 'CERTIFICATE').map((der) => file(this.dir, 'pem', pemEncodeCert(der)));
    const r = await tool('botan', [
      'cert_verify',
      file(this.dir, 'pem', firstCert(c.presented.chain)),
      ...each(c.trust.anchors),
      ...each(caCerts(c.presented.chain)),
    ]);
    const said = lastLine(r.stdout + r.stderr);
    return { accepted: r.code === 0 && /^Certificate passes validation checks/.test(said), detail: said };
  }

  /** `openssl verify -x509_strict` on TRUSTED CERTIFICATE anchors, leaf CRL checking. */
  private async openssl(c: Cell): Promise<Verdict> {
    const inters = caCerts(c.presented.chain);
    const args = [
      'verify',
      '-x509_strict',
      '-purpose',
      c.purpose === 'client' ? 'sslclient' : 'sslserver',
      '-CAfile',
      file(this.dir, 'pem', trustOpensslPem(parseCertificates(c.trust.anchors))),
    ];
    if (c.trust.crls.length)
      args.push('-crl_check', '-CRLfile', file(this.dir, 'crl', [...c.trust.crls, ...c.trust.anchorCrls].join('')));
    if (inters) args.push('-untrusted', file(this.dir, 'pem', inters));
    const r = await tool('openssl', [...args, file(this.dir, 'pem', firstCert(c.presented.chain))]);
    return {
      accepted: r.code === 0,
      detail: r.code === 0 ? 'OK' : (r.stderr.match(/error \d+ at \d+ depth lookup: .*/)?.[0] ?? lastLine(r.stderr)),
    };
  }

  /** crypto/x509 Verify with the bundle as Roots and the sent CAs as Intermediates; it takes no CRL. */
  private async go(c: Cell): Promise<Verdict> {
    const inters = caCerts(c.presented.chain);
    const r = await goverify([
      '-roots',
      file(this.dir, 'pem', c.trust.anchors),
      '-cert',
      file(this.dir, 'pem', firstCert(c.presented.chain)),
      '-eku',
      c.purpose,
      ...(inters ? ['-intermediates', file(this.dir, 'pem', inters)] : []),
    ]);
    return { accepted: r.code === 0 && r.stdout.trim() === 'OK', detail: r.stdout.trim() || lastLine(r.stderr) };
  }

  /** A throwaway NSS database per trust: every anchor trusted `CT,C,C`, every CRL imported. */
  private nssDb(t: Trust): Promise<string> {
    const key = createHash('sha256').update(t.anchors).update(t.crls.join('')).digest('hex').slice(0, 16);
    let db = this.nssDbs.get(key);
    if (!db) {
      db = (async () => {
        const d = path.join(this.dir, `nss-${key}`);
        fs.mkdirSync(d);
        const must = async (args: string[], cmd = 'certutil') => {
          const r = await tool(cmd, args);
          if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
        };
        await must(['-N', '--empty-password', '-d', `sql:${d}`]);
        const anchors = pemDecodeAll(t.anchors, 'CERTIFICATE');
        for (const [i, der] of anchors.entries())
          await must([
            '-A',
            '-d',
            `sql:${d}`,
            '-n',
            `anchor-${i}`,
            '-t',
            'CT,C,C',
            '-a',
            '-i',
            file(this.dir, 'pem', pemEncodeCert(der)),
          ]);
        // crlutil reads DER (its PEM reader does not take OpenSSL's "X509 CRL" label); -B skips its import-time issuer
        // lookup, a forged CA is not in the database. NSS checks the signature when it uses the CRL.
        for (const der of t.crls.flatMap((p) => pemDecodeAll(p, 'X509 CRL'))) {
          const f = path.join(this.dir, `${createHash('sha256').update(der).digest('hex').slice(0, 16)}.crl.der`);
          fs.writeFileSync(f, der);
          await must(['-I', '-B', '-d', `sql:${d}`, '-t', '1', '-i', f], 'crlutil');
        }
        return d;
      })();
      this.nssDbs.set(key, db);
    }
    return db;
  }

  /**
   * vfychain's default, CERT_VerifyCert: the verifier NSS's own TLS code
   * (SSL_AuthCertificate) calls; it checks the database's CRLs. (libpkix, `-pp`,
   * gives the same verdicts here but reports a name-constraint violation as
   * "invalid arguments".)
   */
  private async nss(c: Cell): Promise<Verdict> {
    const db = await this.nssDb(c.trust);
    const certs = pemDecodeAll(c.presented.chain, 'CERTIFICATE').flatMap((der) => [
      '-a',
      file(this.dir, 'pem', pemEncodeCert(der)),
    ]);
    const r = await tool('vfychain', ['-d', `sql:${db}`, '-u', c.purpose === 'client' ? '0' : '1', ...certs]);
    const out = r.stdout + r.stderr;
    return {
      accepted: r.code === 0 && /Chain is good!/.test(out),
      detail: r.code === 0 ? 'Chain is good!' : (out.match(/ERROR -?\d+: .*/)?.[0] ?? lastLine(out)),
    };
  }

  /** certtool --verify against the anchors, the purpose's EKU and the CRLs. */
  private async gnutls(c: Cell): Promise<Verdict> {
    const args = [
      '--verify',
      '--load-ca-certificate',
      file(this.dir, 'pem', c.trust.anchors),
      '--infile',
      file(this.dir, 'pem', c.presented.chain),
      '--verify-purpose',
      EKU_OID[c.purpose],
    ];
    if (c.trust.crls.length)
      args.push('--load-crl', file(this.dir, 'crl', [...c.trust.crls, ...c.trust.anchorCrls].join('')));
    const r = await tool('certtool', args);
    const out = r.stdout + r.stderr;
    const verdict = out.match(/Chain verification output: (.*)/)?.[1]?.trim() ?? lastLine(out);
    return { accepted: r.code === 0 && /^Verified\./.test(verdict), detail: verdict };
  }
}

/**
 * One mutual-TLS handshake on 127.0.0.1. A client leaf is judged by the
 * server (`requestCert`, the trust's anchors and CRLs); a server leaf by the
 * client. The other side is a good peer; host names are not checked, since
 * the other verifiers judge the chain only.
 */
async function nodeHandshake(c: Cell, timeoutMs = 5000): Promise<Verdict> {
  // Node reads only the first CRL of a PEM string: pass one CRL per string.
  const crl = [...c.trust.crls, ...c.trust.anchorCrls]
    .flatMap((p) => p.split(/(?=-----BEGIN X509 CRL-----)/))
    .filter((p) => p.includes('BEGIN X509 CRL'));
  const ca = [trustOpensslPem(parseCertificates(c.trust.anchors))];
  const judgeIsServer = c.purpose === 'client';
  const server = judgeIsServer
    ? { key: c.peer.key, cert: c.peer.chain }
    : { key: c.presented.key, cert: c.presented.chain };
  const client = judgeIsServer
    ? { key: c.presented.key, cert: c.presented.chain }
    : { key: c.peer.key, cert: c.peer.chain };
  let serverVerdict: Verdict | undefined;
  const srv = tls.createServer(
    {
      ...server,
      minVersion: 'TLSv1.2',
      ...(judgeIsServer ? { ca, crl: crl.length ? crl : undefined, requestCert: true, rejectUnauthorized: false } : {}),
    },
    (s) => {
      serverVerdict = {
        accepted: s.authorized,
        detail: s.authorized ? 'authorized' : `server: ${s.authorizationError ?? 'no client certificate'}`,
      };
      s.end('done\n');
    },
  );
  srv.on('tlsClientError', (e) => {
    serverVerdict ??= { accepted: false, detail: `server: ${e.message}` };
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  try {
    const clientVerdict = await new Promise<Verdict>((resolve) => {
      const timer = setTimeout(() => resolve({ accepted: false, detail: 'timeout' }), timeoutMs);
      const sock = tls.connect({
        host: '127.0.0.1',
        port,
        ...client,
        minVersion: 'TLSv1.2',
        ...(judgeIsServer
          ? { rejectUnauthorized: false }
          : { ca, crl: crl.length ? crl : undefined, rejectUnauthorized: true, checkServerIdentity: () => undefined }),
      });
      const done = (v: Verdict) => {
        clearTimeout(timer);
        sock.destroy();
        resolve(v);
      };
      let data = '';
      sock.on('data', (d) => {
        data += d;
        if (data.includes('done\n')) done({ accepted: true, detail: 'authorized' });
      });
      sock.on('error', (e) =>
        done({ accepted: false, detail: `client: ${(e as NodeJS.ErrnoException).code ?? e.message}` }),
      );
      sock.on('close', () => done({ accepted: false, detail: 'closed' }));
    });
    if (judgeIsServer) return serverVerdict ?? { accepted: false, detail: clientVerdict.detail };
    return clientVerdict;
  } finally {
    srv.close();
  }
}
