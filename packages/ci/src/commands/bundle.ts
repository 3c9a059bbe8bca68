import path from 'node:path';
import { createPublicKey } from 'node:crypto';
import type { CommandModule } from 'yargs';
import { PKCS12_PASSWORD_ENV, pkcs12Password } from '../pkcs12-password.js';
import {
  TrellisError,
  ledgerHead,
  scopeDef,
  scopeDomain,
  scopeTrust,
  serviceDnsName,
  trustOpensslPem,
  trustPem,
  trustedScopes,
  anchorsBy,
  type Mesh,
  jvmCrlPem,
  scopeTruststore,
  serviceKeystore,
} from '@trellis/core';
import { loadMesh, checkOutDir, writeOutFile, READ_LIMITS, readBounded } from '@trellis/core/store';
import { withStore } from '@trellis/core/shell';

const FORMATS = ['pem', 'openssl', 'spiffe', 'nginx', 'haproxy', 'pkcs12', 'crl-jvm'] as const;
interface Args {
  store?: string;
  scope: string;
  format: (typeof FORMATS)[number];
  out?: string;
  releaseDir?: string;
  upstream?: string;
  serverBlock?: boolean;
  listen: string;
  service?: string;
  from?: string;
  passwordFile?: string;
}

export const bundle: CommandModule<object, Args> = {
  command: 'bundle <scope>',
  describe: "Print a scope's trust bundle, or the nginx / haproxy configuration that enforces it",
  builder: (y) =>
    y
      .positional('scope', { type: 'string', demandOption: true })
      .option('format', {
        choices: FORMATS,
        default: 'pem' as const,
        describe:
          'pem (Go, most stacks) | openssl (TRUSTED CERTIFICATE) | spiffe (JWKS per trust domain) | nginx | ' +
          'haproxy (directives) | pkcs12 (JVM truststore, or keystore with --service) | crl-jvm (CRLs for Java PKIX)',
      })
      .option('out', {
        type: 'string',
        describe:
          'spiffe: where the bundles are written (default <store>/.trellis/bundle/<scope>); pkcs12: the FILE ' +
          'to write (required)',
      })
      .option('service', {
        type: 'string',
        describe: "pkcs12: a keystore for this service's CI-minted leaf (key, leaf, chain) instead of the truststore",
      })
      .option('from', {
        type: 'string',
        describe: 'pkcs12 --service: the directory renew wrote leaves to (its --out; default <store>/.trellis/out)',
      })
      .option('password-file', {
        type: 'string',
        describe: `pkcs12: read the store password from FILE (its first line); else from $${PKCS12_PASSWORD_ENV}`,
      })
      .option('release-dir', {
        type: 'string',
        describe:
          "nginx/haproxy (required): a dir deploy target's directory; every path printed is <dir>/current/*, " +
          'which deploy keeps up to date',
      })
      .option('upstream', {
        type: 'string',
        describe: 'nginx/haproxy: the SCOPE/SERVICE this proxy connects to, for the upstream directives',
      })
      .option('server-block', {
        type: 'boolean',
        describe: 'nginx: print a complete server { … } block (listen, the directives, a location) for a conf.d file',
      })
      .option('listen', {
        type: 'string',
        default: '443',
        describe: 'nginx --server-block: the listen address, PORT or ADDRESS:PORT',
      })
      .example('$0 bundle us-east-1 --format nginx --release-dir /etc/trellis/api', 'paste into the server block')
      .example(
        '$0 bundle us-east-1 --format nginx --server-block --release-dir /etc/trellis/api > ' +
          '/etc/nginx/conf.d/trellis-api.conf',
        'a whole server block',
      ) as never,
  handler: async (a) => {
    const mesh = await withStore(a.store, async (store) => loadMesh(store));
    const certs = scopeTrust(mesh, a.scope);
    if (!certs.length)
      throw new TrellisError('not-yet-minted', `scope ${a.scope} trusts no intermediate yet`, {
        hint: 'trellis-root intermediate --pending',
      });
    const pkcs12Only = (
      [
        ['service', '--service'],
        ['from', '--from'],
        ['passwordFile', '--password-file'],
      ] as const
    ).find(([k]) => a[k] !== undefined);
    if (pkcs12Only && a.format !== 'pkcs12')
      throw new TrellisError('usage', `${pkcs12Only[1]} is for --format pkcs12, not ${a.format}`, {
        hint: `add --format pkcs12, or drop ${pkcs12Only[1]}`,
      });
    if (a.from !== undefined && a.service === undefined)
      throw new TrellisError('usage', '--from is for a keystore: give --service too', {
        hint: '--format pkcs12 --service S --from DIR',
      });
    if (a.format === 'pem') return void process.stdout.write(trustPem(certs));
    if (a.format === 'openssl') return void process.stdout.write(trustOpensslPem(certs));
    if (a.format === 'crl-jvm') return void process.stdout.write(await jvmCrlPem(mesh, a.scope));
    if (a.format === 'pkcs12') return void process.stdout.write(writePkcs12(mesh, a));
    if (a.format === 'spiffe') {
      const out = path.resolve(a.out ?? path.join(mesh.dir, '.trellis', 'bundle', a.scope));
      checkOutDir(out, bundleOut(mesh, out), true); // no link at it, nor below it (out-path.ts)
      return void process.stdout.write(spiffeBundles(mesh, a.scope, out));
    }
    const upstream = a.upstream ? upstreamName(mesh, a.scope, a.upstream) : undefined;
    if (a.serverBlock && a.format !== 'nginx')
      throw new TrellisError('usage', `--server-block is for --format nginx, not ${a.format}`, {
        hint: 'add --format nginx, or drop --server-block',
      });
    if (a.serverBlock && !/^([0-9.]+:|\[[0-9a-fA-F:]+\]:)?[0-9]{1,5}$/.test(a.listen))
      throw new TrellisError('usage', `--listen ${JSON.stringify(a.listen)} is not PORT or ADDRESS:PORT`, {
        hint: 'e.g. --listen 8443 or --listen 127.0.0.1:8443',
      });
    // Real paths only: a copy of the trust files elsewhere would never get the CRLs deploy re-ships, and a leaf has no
    // path without a release.
    if (!a.releaseDir) {
      throw new TrellisError(
        'usage',
        `--format ${a.format} needs --release-dir: every path it prints is a file of a deploy target's release`,
        {
          field: '--release-dir',
          hint:
            `give the directory of the service's dir deploy target, e.g. trellis-ci bundle ${a.scope} --format ` +
            `${a.format} --release-dir /etc/trellis/SERVICE`,
        },
      );
    }
    const at = (f: string) => path.join(path.resolve(a.releaseDir!), 'current', f);
    const directives =
      a.format === 'nginx' ? nginxDirectives(a.scope, at, upstream) : haproxyLines(a.scope, at, upstream);
    process.stdout.write(a.serverBlock ? nginxServerBlock(a.listen, directives) : directives);
  },
};

const bundleOut = (mesh: Mesh, out: string) => ({ flag: '--out', store: mesh.dir, anchor: out });

/**
 * `--format pkcs12`: the scope's truststore, or with --service that service's keystore; returns what it says on stdout.
 */
function writePkcs12(mesh: Mesh, a: Args): string {
  if (!a.out)
    throw new TrellisError('usage', '--format pkcs12 writes a binary file: give --out FILE', {
      field: '--out',
      hint: `trellis-ci bundle ${a.scope} --format pkcs12 --out ${a.scope}.p12`,
    });
  const password = pkcs12Password(a.passwordFile, '--password-file', '--format pkcs12');
  const file = path.resolve(a.out);
  if (!a.service) {
    writeOutFile(file, scopeTruststore(mesh, a.scope, password), { flag: '--out', store: mesh.dir });
    return `wrote ${file}: truststore of scope ${a.scope}\n`;
  }
  if (!scopeDef(mesh, a.scope).services.some((s) => s.name === a.service)) {
    throw new TrellisError('unknown-service', `scope ${a.scope} has no service ${JSON.stringify(a.service)}`, {
      field: '--service',
      hint: `trellis-ci status --scope ${a.scope}`,
    });
  }
  const dir = path.join(path.resolve(a.from ?? path.join(mesh.dir, '.trellis', 'out')), a.scope, a.service);
  const read = (name: string) => {
    try {
      return readBounded(path.join(dir, name), READ_LIMITS.small);
    } catch (e) {
      throw new TrellisError('not-yet-minted', `cannot read ${path.join(dir, name)}: ${(e as Error).message}`, {
        field: '--from',
        hint: 'a keystore is for a CI-minted key: run trellis-ci renew (with the same --out as --from) first',
      });
    }
  };
  const keystore = serviceKeystore(a.service, { keyPem: read('key.pem'), chainPem: read('chain.pem') }, password);
  writeOutFile(file, keystore, { flag: '--out', store: mesh.dir, secret: true });
  return `wrote ${file}: keystore of ${a.scope}/${a.service} (alias ${a.service})\n`;
}

/** An upstream this scope's services may call: the boundary rule decides, not the operator's typing. */
function upstreamName(mesh: Mesh, scope: string, target: string): string {
  const [s, service] = target.split('/');
  const def = scopeDef(mesh, s!);
  if (!service || !def.services.some((x) => x.name === service))
    throw new TrellisError('usage', `--upstream ${target}: no such service`, { hint: 'write it SCOPE/SERVICE' });
  if (
    !trustedScopes(
      scopeDef(mesh, scope),
      mesh.scopes.map((x) => x.name),
    ).includes(s!)
  ) {
    throw new TrellisError('usage', `--upstream ${target}: ${scope} does not trust ${s}: the handshake would fail`, {
      hint: 'a region reaches its own and the global scope only',
    });
  }
  return serviceDnsName(s!, service, mesh.config.trustDomain);
}

function nginxDirectives(scope: string, at: (f: string) => string, upstream?: string): string {
  const lines = [
    `# trellis: mTLS for scope ${scope} (server block). A client outside the scope's trust gets 400.`,
    `ssl_certificate         ${at('chain.pem')};`,
    `ssl_certificate_key     ${at('key.pem')};`,
    'ssl_verify_client       on;',
    'ssl_verify_depth        2;',
    `ssl_trusted_certificate ${at('trust.openssl.pem')};`,
    '# names only (its key was discarded): a plain copy of an intermediate here would shadow the trusted one',
    `ssl_client_certificate  ${at('client-ca-names.pem')};`,
    '# leaf CRLs and anchor CRLs of every trusted scope: ssl_crl checks the whole chain',
    `ssl_crl                 ${at('crl.pem')};`,
  ];
  if (upstream) {
    lines.push(
      `# upstream ${upstream} (location block with proxy_pass https://…)`,
      `proxy_ssl_certificate         ${at('chain.pem')};`,
      `proxy_ssl_certificate_key     ${at('key.pem')};`,
      `proxy_ssl_trusted_certificate ${at('trust.openssl.pem')};`,
      `proxy_ssl_crl                 ${at('crl.pem')};`,
      'proxy_ssl_verify              on;',
      'proxy_ssl_verify_depth        2;',
      `proxy_ssl_name                ${upstream};`,
      'proxy_ssl_server_name         on;',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The directives inside a whole server block, for a conf.d file an unmodified nginx.conf includes. */
function nginxServerBlock(listen: string, directives: string): string {
  const body = directives
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`);
  return [
    'server {',
    `    listen                  ${listen} ssl;`,
    ...body,
    '    location / {',
    '        # your application here, e.g. proxy_pass http://127.0.0.1:8080;',
    '        return 200 "mTLS ok: $ssl_client_s_dn\\n";',
    '    }',
    '}',
    '',
  ].join('\n');
}

function haproxyLines(scope: string, at: (f: string) => string, upstream?: string): string {
  const tls = `ca-file ${at('trust.openssl.pem')} crl-file ${at('crl.pem')} verify required`;
  const lines = [
    `# trellis: mTLS for scope ${scope}; append to your bind line (a client outside the scope's trust fails ` +
      `the handshake)`,
    `bind <address>:<port> ssl crt ${at('chain-and-key.pem')} ${tls}`,
  ];
  if (upstream)
    lines.push(
      `# upstream ${upstream}`,
      `server ${upstream.split('.')[0]} ${upstream}:<port> ssl crt ${at('chain-and-key.pem')} ${tls} ` +
        `verifyhost ${upstream} sni str(${upstream})`,
    );
  return `${lines.join('\n')}\n`;
}

/**
 * SPIFFE trust bundles (the SPIFFE Trust Domain and Bundle spec): one JWKS per
 * trust domain this scope trusts, each key an `x509-svid` authority with its
 * certificate in x5c. Written to <out>/<trust domain>.json, printed as a map.
 */
function spiffeBundles(mesh: Mesh, scope: string, out: string): string {
  const trusted = trustedScopes(
    scopeDef(mesh, scope),
    mesh.scopes.map((s) => s.name),
  );
  const of = anchorsBy(mesh);
  const map: Record<string, unknown> = {};
  for (const s of trusted) {
    const certs = of(s);
    if (!certs.length) continue;
    const domain = scopeDomain(s, mesh.config.trustDomain);
    const bundle = {
      keys: certs.map((c) => ({
        use: 'x509-svid',
        ...createPublicKey({ key: Buffer.from(c.publicKey.rawData), format: 'der', type: 'spki' }).export({
          format: 'jwk',
        }),
        x5c: [Buffer.from(c.rawData).toString('base64')],
      })),
      // Grows with every operation on the scope, so a consumer can tell a newer bundle from an older one.
      spiffe_sequence: ledgerHead(mesh.material.get(s)!.ledger)?.seq ?? 0,
      spiffe_refresh_hint: 3600,
    };
    writeOutFile(path.join(out, `${domain}.json`), `${JSON.stringify(bundle, null, 2)}\n`, bundleOut(mesh, out));
    map[`spiffe://${domain}`] = bundle;
  }
  return `${JSON.stringify(map, null, 2)}\n`;
}
