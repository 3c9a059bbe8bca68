/** The consumer configuration `trellis-ci bundle` prints works in the real consumers, as printed. */
import { createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyId, parseCertificate, sha256Hex } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { freePort, request, waitForPort, type Client } from './helpers/servers.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bundle-'));
let m: FakeMesh;
const release = path.join(root, 'release');
const stops: (() => void)[] = [];

function client(scope: string, service: string): Client {
  const f = (x: string) => fs.readFileSync(m.out(scope, service, x), 'utf8');
  return {
    name: `${scope}/${service}`,
    key: f('key.pem'),
    chain: f('chain.pem'),
    ca: m.read('bundles/global/trust.openssl.pem'),
  };
}

beforeAll(async () => {
  m = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api', 'web'], 'eu-west-1': ['api'] } });
  m.writeScope('us-east-1', [{ api: { deploy: [{ type: 'dir', path: release }] } }, 'web']);
  await m.allow({ dir: { paths: [root] } });
  expect((await m.ci(['deploy'])).code).toBe(0);
});
afterAll(() => stops.forEach((s) => s()));

describe('nginx, configured by exactly what bundle --format nginx prints', () => {
  it('accepts the scope and global, refuses another region', async () => {
    const out = await m.ci([
      'bundle',
      'us-east-1',
      '--format',
      'nginx',
      '--release-dir',
      release,
      '--upstream',
      'global/control',
    ]);
    expect(out.code, out.stderr).toBe(0);
    const directives = out.stdout.split('\n').filter((l) => l && !l.startsWith('#') && !l.startsWith('proxy_'));
    expect(out.stdout).toMatch(/proxy_ssl_name +control\.global\.mesh\.example;/);
    const port = freePort();
    const prefix = path.join(root, 'nginx');
    fs.mkdirSync(path.join(prefix, 'logs'), { recursive: true });
    fs.writeFileSync(
      path.join(prefix, 'nginx.conf'),
      `pid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log;\nevents {}\nhttp { access_log off; server ` +
        `{ listen 127.0.0.1:${port} ssl;\n${directives.join('\n')}\nlocation / { return 200 "ok"; } } }\n`,
    );
    await execa('nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf')]);
    stops.push(
      () => void execa('nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-s', 'stop'], { reject: false }),
    );
    await waitForPort(port);
    expect(await request(port, 'api.us-east-1.mesh.example', client('us-east-1', 'web'))).toBe(200);
    expect(await request(port, 'api.us-east-1.mesh.example', client('global', 'control'))).toBe(200);
    expect(await request(port, 'api.us-east-1.mesh.example', client('eu-west-1', 'api'))).toBe(400);
  });
  it('refuses an upstream the boundary forbids', async () => {
    const r = await m.ci(['bundle', 'us-east-1', '--format', 'nginx', '--upstream', 'eu-west-1/api']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/us-east-1 does not trust eu-west-1/);
  });
});

describe('bundle --format nginx --server-block', () => {
  const cur = (f: string) => path.join(release, 'current', f);
  it('without the flag, prints the directives exactly as before', async () => {
    const out = await m.ci(['bundle', 'us-east-1', '--format', 'nginx', '--release-dir', release]);
    expect(out.stdout).toBe(
      [
        "# trellis: mTLS for scope us-east-1 (server block). A client outside the scope's trust gets 400.",
        `ssl_certificate         ${cur('chain.pem')};`,
        `ssl_certificate_key     ${cur('key.pem')};`,
        'ssl_verify_client       on;',
        'ssl_verify_depth        2;',
        `ssl_trusted_certificate ${cur('trust.openssl.pem')};`,
        '# names only (its key was discarded): a plain copy of an intermediate here would shadow the trusted one',
        `ssl_client_certificate  ${cur('client-ca-names.pem')};`,
        '# leaf CRLs and anchor CRLs of every trusted scope: ssl_crl checks the whole chain',
        `ssl_crl                 ${cur('crl.pem')};`,
      ].join('\n'),
    ); // execa drops the final newline
  });
  it('prints a whole server block that an unmodified main config includes: the scope and global get through, another region does not', async () => {
    const port = freePort();
    const out = await m.ci([
      'bundle',
      'us-east-1',
      '--format',
      'nginx',
      '--server-block',
      '--release-dir',
      release,
      '--listen',
      `127.0.0.1:${port}`,
    ]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`^server \\{\n {4}listen +127\\.0\\.0\\.1:${port} ssl;\n`));
    expect(out.stdout).toMatch(/ssl_verify_client +on;[\s\S]*ssl_crl +\S+crl\.pem;[\s\S]*location \/ \{[\s\S]*\n\}$/);
    const prefix = path.join(root, 'nginx-block');
    fs.mkdirSync(path.join(prefix, 'conf.d'), { recursive: true });
    fs.writeFileSync(path.join(prefix, 'conf.d', 'trellis-api.conf'), `${out.stdout}\n`);
    // Debian's nginx.conf, reduced to what matters here: it includes conf.d/*.conf inside http.
    fs.writeFileSync(
      path.join(prefix, 'nginx.conf'),
      `pid ${prefix}/nginx.pid;\nerror_log ${prefix}/error.log;\nevents {}\nhttp { access_log off; include ` +
        `${prefix}/conf.d/*.conf; }\n`,
    );
    const nginx = (...a: string[]) =>
      execa(
        'nginx',
        ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-e', path.join(prefix, 'error.log'), ...a],
        { reject: false },
      );
    expect((await nginx('-t')).exitCode).toBe(0);
    await nginx();
    stops.push(() => void nginx('-s', 'stop'));
    await waitForPort(port);
    expect(await request(port, 'api.us-east-1.mesh.example', client('us-east-1', 'web'))).toBe(200);
    expect(await request(port, 'api.us-east-1.mesh.example', client('global', 'control'))).toBe(200);
    expect(await request(port, 'api.us-east-1.mesh.example', client('eu-west-1', 'api'))).toBe(400);
  });
  it('refuses --server-block for another format and a listen that is not PORT or ADDRESS:PORT (exit 2)', async () => {
    const h = await m.ci(['bundle', 'us-east-1', '--format', 'haproxy', '--server-block']);
    expect([h.code, h.stderr]).toEqual([2, expect.stringMatching(/--server-block is for --format nginx/)]);
    const l = await m.ci([
      'bundle',
      'us-east-1',
      '--format',
      'nginx',
      '--server-block',
      '--listen',
      '8443; include /etc/passwd',
    ]);
    expect([l.code, l.stderr]).toEqual([2, expect.stringMatching(/--listen .* is not PORT or ADDRESS:PORT/)]);
  });
});

describe('haproxy, configured by exactly what bundle --format haproxy prints', () => {
  it('accepts the scope, refuses another region at the handshake', async () => {
    const out = await m.ci(['bundle', 'us-east-1', '--format', 'haproxy', '--release-dir', release]);
    const port = freePort();
    const bind = out.stdout
      .split('\n')
      .find((l) => l.startsWith('bind '))!
      .replace('<address>:<port>', `127.0.0.1:${port}`);
    const dir = path.join(root, 'haproxy');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'haproxy.cfg'),
      `defaults\n  mode http\n  timeout connect 2s\n  timeout client 5s\n  timeout server 5s\nfrontend fe\n  ` +
        `${bind}\n  http-request return status 200 content-type text/plain string "ok"\n`,
    );
    await execa('haproxy', ['-f', path.join(dir, 'haproxy.cfg'), '-D', '-p', path.join(dir, 'pid')]);
    stops.push(() => void execa('sh', ['-c', `kill $(cat ${path.join(dir, 'pid')})`], { reject: false }));
    await waitForPort(port);
    expect(await request(port, 'api.us-east-1.mesh.example', client('us-east-1', 'web'))).toBe(200);
    expect(await request(port, 'api.us-east-1.mesh.example', client('eu-west-1', 'api'))).toBe('refused');
  });
});

describe('every path printed is real', () => {
  it.each(['nginx', 'haproxy'])(
    "%s: each file is the release directory's current/, none a placeholder",
    async (format) => {
      const out = await m.ci([
        'bundle',
        'us-east-1',
        '--format',
        format,
        '--release-dir',
        release,
        '--upstream',
        'global/control',
      ]);
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).not.toMatch(/<your release>/);
      const files = [...out.stdout.matchAll(/(\S+\.pem)\b/g)].map((x) => x[1]!);
      expect(files.length).toBeGreaterThan(3);
      for (const f of files) expect(path.dirname(f)).toBe(path.join(release, 'current'));
      // Only what trellis cannot know stays a placeholder: haproxy's address and port.
      expect(out.stdout.match(/<[^>]*>/g) ?? []).toEqual(format === 'haproxy' ? ['<address>', '<port>', '<port>'] : []);
    },
  );
  it.each(['nginx', 'haproxy'])(
    '%s without --release-dir is refused (exit 2), naming the flag and what to give',
    async (format) => {
      const r = await m.ci(['bundle', 'us-east-1', '--format', format]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(new RegExp(`--format ${format} needs --release-dir`));
      expect(r.stderr).toMatch(/→ give the directory of the service's dir deploy target/);
    },
  );
});

describe('SPIFFE trust bundles', () => {
  it('one JWKS per trusted trust domain, each key an x509-svid authority whose x5c is the intermediate', async () => {
    const r = await m.ci(['bundle', 'us-east-1', '--format', 'spiffe', '--out', path.join(root, 'spiffe')]);
    const map = JSON.parse(r.stdout);
    expect(Object.keys(map).sort()).toEqual(['spiffe://global.mesh.example', 'spiffe://us-east-1.mesh.example']);
    const b = map['spiffe://us-east-1.mesh.example'];
    expect(b.spiffe_sequence).toBeGreaterThan(0);
    expect(b.spiffe_refresh_hint).toBe(3600);
    expect(b.keys).toHaveLength(1);
    const [key] = b.keys;
    expect(key.use).toBe('x509-svid');
    const inter = parseCertificate(m.read('bundles/us-east-1/intermediate.pem'));
    expect(Buffer.from(key.x5c[0], 'base64').equals(Buffer.from(inter.rawData))).toBe(true);
    const spki = createPublicKey({ key: { kty: key.kty, crv: key.crv, x: key.x, y: key.y }, format: 'jwk' }).export({
      type: 'spki',
      format: 'der',
    });
    expect(`sha256:${sha256Hex(spki)}`).toBe(keyId(inter));
    expect(JSON.parse(fs.readFileSync(path.join(root, 'spiffe', 'us-east-1.mesh.example.json'), 'utf8'))).toEqual(b);
  });
});
