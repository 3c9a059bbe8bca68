/**
 * A root key on a PKCS#11 token (SoftHSM2): generated there, never exported,
 * every root signature made there; rotation to and from a file root; a wrong
 * PIN, a missing token and a URI naming another key refused; verify proving
 * the token key is root.pem's.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { WORKSPACE_SOURCES } from '../scripts/dist/build.mjs';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO, baseEnv, expectRefused, trellisRoot, tool, type Env, type Run } from './helpers/cli.js';
import { hashTree } from './helpers/store-hash.js';

const MODULE =
  ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so'].find((p) =>
    fs.existsSync(p),
  ) ?? '/usr/lib/softhsm/libsofthsm2.so';
const PIN = '40318276';
const URI = 'pkcs11:token=trellis-root;object=root';

interface Token {
  dir: string;
  env: Env;
}

/** A fresh SoftHSM2 token in its own directory: each test its own, through SOFTHSM2_CONF. */
async function newToken(label = 'trellis-root'): Promise<Token> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-token-'));
  fs.mkdirSync(path.join(dir, 'tokens'));
  fs.writeFileSync(
    path.join(dir, 'softhsm2.conf'),
    `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  const env = { SOFTHSM2_CONF: path.join(dir, 'softhsm2.conf') };
  await execa('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', PIN, '--so-pin', '87654321'], {
    env,
  });
  return { dir, env: { ...env, TRELLIS_PKCS11_MODULE: MODULE, TRELLIS_PKCS11_PIN: PIN } };
}

/** The environment without `key` (an `undefined` value would reach the child as the string "undefined"). */
const without = (env: Env, key: string): Env => Object.fromEntries(Object.entries(env).filter(([k]) => k !== key));
const noPin = (r: Run) => expect(`${r.stdout}${r.stderr}`).not.toContain(PIN);

async function initStore(t: Token, rootKey?: string): Promise<{ store: string; identity: string }> {
  const store = path.join(t.dir, 'store');
  const r = await trellisRoot(
    [
      'init',
      '--store',
      store,
      '--mesh',
      'prod',
      '--trust-domain',
      'mesh.example',
      '--ci-identity-out',
      path.join(t.dir, 'ci.identity'),
      ...(rootKey ? ['--root-key', rootKey] : []),
    ],
    { env: t.env },
  );
  expect(r.code, r.stderr).toBe(0);
  noPin(r);
  const identity = path.join(t.dir, 'offline.identity');
  fs.writeFileSync(identity, r.stdout, { mode: 0o600 });
  fs.writeFileSync(path.join(store, 'scopes/us-east-1.yaml'), 'kind: region\nservices:\n  api: {}\n');
  return { store, identity };
}

const pkcs11Objects = (t: Token) =>
  execa('pkcs11-tool', ['--module', MODULE, '--login', '--pin', PIN, '-O'], { env: t.env, reject: false }).then((r) =>
    String(r.stdout),
  );
const opensslVerify = (ca: string, cert: string) => tool('openssl', ['verify', '-x509_strict', '-CAfile', ca, cert]);
const rootFiles = (store: string) =>
  fs
    .readdirSync(path.join(store, 'bundles/root'))
    .filter((f) => f.startsWith('root.'))
    .sort();

describe('a root key on a PKCS#11 token', () => {
  it('init generates it on the token, sensitive and never extractable; the store records only its URI', async () => {
    const t = await newToken();
    const { store } = await initStore(t, URI);
    expect(rootFiles(store)).toEqual(['root.key.uri', 'root.pem']);
    expect(fs.readFileSync(path.join(store, 'bundles/root/root.key.uri'), 'utf8')).toBe(`${URI}\n`);
    const objects = await pkcs11Objects(t);
    expect(objects).toMatch(
      new RegExp(
        /Private Key Object; EC[\s\S]*label:\s+root[\s\S]*Access:\s+sensitive, always sensitive, never /.source +
          /extractable, local/.source,
      ),
    );
    expect(objects).toMatch(/Usage:\s+sign\n/); // a signing key only
    // The init ledger entry and root CRL were signed on the token: OpenSSL checks the CRL with root.pem.
    const crl = await tool('openssl', [
      'crl',
      '-in',
      path.join(store, 'bundles/root/crl.pem'),
      '-CAfile',
      path.join(store, 'bundles/root/root.pem'),
      '-noout',
    ]);
    expect(crl.stderr).toMatch(/verify OK/);
    const v = await trellisRoot(['verify', '--store', store], { env: t.env });
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(
      /ok\s+custody\s+the token key signs a fresh challenge that bundles\/root\/root.pem's public key verifies/,
    );
    noPin(v);
  });

  it('a ceremony signs on the token: OpenSSL -x509_strict verifies its intermediates against root.pem; the PIN may come from --pin-file', async () => {
    const t = await newToken();
    const { store } = await initStore(t, URI);
    const pinFile = path.join(t.dir, 'pin');
    fs.writeFileSync(pinFile, `${PIN}\n`, { mode: 0o600 });
    const r = await trellisRoot(['intermediate', '--pending', '--yes', '--store', store, '--pin-file', pinFile], {
      env: without(t.env, 'TRELLIS_PKCS11_PIN'),
    });
    expect(r.code, r.stderr).toBe(0);
    noPin(r);
    for (const scope of ['global', 'us-east-1']) {
      const o = await opensslVerify(
        path.join(store, 'bundles/root/root.pem'),
        path.join(store, `bundles/${scope}/intermediate.pem`),
      );
      expect(o.stdout, o.stderr).toMatch(/: OK$/);
    }
    const v = await trellisRoot(['verify', '--store', store], { env: t.env });
    expect(v.code, v.stdout).toBe(0);
  });

  it('a wrong PIN is refused: exit 3, the store unchanged, the PIN in no output', async () => {
    const t = await newToken();
    const { store } = await initStore(t, URI);
    const before = hashTree(store);
    const wrong = '11992288';
    const r = await trellisRoot(['intermediate', '--pending', '--yes', '--store', store], {
      env: { ...t.env, TRELLIS_PKCS11_PIN: wrong },
    });
    expectRefused(r, 'custody-token');
    // custody-token covers every way a token fails: which one is the case, in the message.
    expect(r.stderr).toMatch(/bundles\/root\/root.key.uri: the token refused the login: the PIN is wrong/);
    expect(`${r.stdout}${r.stderr}`).not.toContain(wrong);
    expect(hashTree(store)).toEqual(before);
    const none = await trellisRoot(['crl', '--store', store], { env: without(t.env, 'TRELLIS_PKCS11_PIN') });
    expectRefused(none, 'custody-token');
    expect(none.stderr).toMatch(/no token PIN/);
    expect(hashTree(store)).toEqual(before);
  });

  it('a missing token or a URI naming no key is refused (exit 3) and creates or changes nothing', async () => {
    const t = await newToken();
    const missing = await trellisRoot(
      [
        'init',
        '--store',
        path.join(t.dir, 'nostore'),
        '--mesh',
        'prod',
        '--trust-domain',
        'mesh.example',
        '--ci-recipient',
        'age1exg28r0eulu2ny5jpu8xysvnmv5urlvzv87mkceylr5qt0nty54qln73qu',
        '--root-key',
        'pkcs11:token=absent;object=root',
      ],
      { env: t.env },
    );
    expectRefused(missing, 'custody-token');
    expect(missing.stderr).toMatch(/no token matching pkcs11:token=absent;object=root is present/);
    expect(fs.existsSync(path.join(t.dir, 'nostore'))).toBe(false);
    const pinInUri = await trellisRoot(
      [
        'init',
        '--store',
        path.join(t.dir, 'nostore'),
        '--mesh',
        'prod',
        '--trust-domain',
        'mesh.example',
        '--ci-recipient',
        'age1exg28r0eulu2ny5jpu8xysvnmv5urlvzv87mkceylr5qt0nty54qln73qu',
        '--root-key',
        `${URI}?pin-value=${PIN}`,
      ],
      { env: t.env },
    );
    expectRefused(pinInUri, 'usage');
    expect(pinInUri.stderr, 'names the flag').toMatch(/--root-key: /);
    noPin(pinInUri);

    const { store } = await initStore(t, URI);
    fs.writeFileSync(path.join(store, 'bundles/root/root.key.uri'), 'pkcs11:token=trellis-root;object=nothing\n');
    const before = hashTree(store);
    const r = await trellisRoot(['crl', '--store', store], { env: t.env });
    expectRefused(r, 'custody-token');
    expect(r.stderr).toMatch(/the token holds no private key matching pkcs11:token=trellis-root;object=nothing/);
    expect(hashTree(store)).toEqual(before);
    // With the module unloadable, too.
    fs.writeFileSync(path.join(store, 'bundles/root/root.key.uri'), `${URI}\n`);
    const noModule = await trellisRoot(['crl', '--store', store], {
      env: { ...t.env, TRELLIS_PKCS11_MODULE: path.join(t.dir, 'absent.so') },
    });
    expectRefused(noModule, 'custody-token');
    expect(noModule.stderr).toMatch(/cannot load the PKCS#11 module/);
  });

  it("verify refuses a URI that names another key on the token: the token key must be root.pem's", async () => {
    const t = await newToken();
    const { store } = await initStore(t, URI);
    const gen = await execa(
      'pkcs11-tool',
      [
        '--module',
        MODULE,
        '--login',
        '--pin',
        PIN,
        '--keypairgen',
        '--key-type',
        'EC:prime256v1',
        '--label',
        'other',
        '--id',
        '0a0b',
      ],
      { env: t.env, reject: false },
    );
    expect(gen.exitCode, String(gen.stderr)).toBe(0);
    fs.writeFileSync(path.join(store, 'bundles/root/root.key.uri'), 'pkcs11:token=trellis-root;object=other\n');
    const v = await trellisRoot(['verify', '--store', store], { env: t.env });
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(
      new RegExp(
        /error\s+custody\s+the token does not prove this root key: bundles\/root\/root.pem: the token key /.source +
          /pkcs11:token=trellis-root;object=other does not match bundles\/root\/root.pem/.source,
      ),
    );
    const before = hashTree(store);
    const crl = await trellisRoot(['crl', '--store', store], { env: t.env });
    expectRefused(crl, 'key-mismatch');
    expect(crl.stderr, 'names the file').toMatch(/key-mismatch: bundles\/root\/root.pem: /);
    expect(hashTree(store)).toEqual(before);
  });

  it('root rotation from a file root to a token root and back', async () => {
    const t = await newToken();
    const { store, identity } = await initStore(t);
    const env = { ...t.env, TRELLIS_ROOT_IDENTITY_FILE: identity };
    expect((await trellisRoot(['intermediate', '--pending', '--yes', '--store', store], { env })).code).toBe(0);
    const fileRoot = path.join(t.dir, 'file-root.pem');
    fs.copyFileSync(path.join(store, 'bundles/root/root.pem'), fileRoot);

    const toToken = await trellisRoot(
      ['rotate', 'root', '--store', store, '--root-key', 'pkcs11:token=trellis-root;object=root-2027'],
      { env },
    );
    expect(toToken.code, toToken.stderr).toBe(0);
    expect(rootFiles(store)).toEqual(['root.key.uri', 'root.pem', 'root.previous.key.age', 'root.previous.pem']);
    // The link certificate (old root signs the token root's name and key) and the re-signed intermediates (the token
    // signs).
    expect((await opensslVerify(fileRoot, path.join(store, 'bundles/root/link.pem'))).stdout).toMatch(/: OK$/);
    expect(
      (
        await opensslVerify(
          path.join(store, 'bundles/root/root.pem'),
          path.join(store, 'bundles/us-east-1/intermediate.pem'),
        )
      ).stdout,
    ).toMatch(/: OK$/);
    let v = await trellisRoot(['verify', '--store', store], { env });
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(
      /root key opens with the offline identity and matches its certificate\s+\(bundles\/root\/root.previous.key.age\)/,
    );
    expect(v.stdout).toMatch(/the token key signs a fresh challenge/);
    // During the overlap the root CRL is signed by both: the token and the file root.
    const crl = await trellisRoot(['crl', '--store', store], { env });
    expect(crl.code, crl.stderr).toBe(0);
    expect(crl.stdout).toMatch(/re-signed by 2 root\(s\)/);
    expect((await trellisRoot(['rotate', 'root', '--finalize', '--store', store], { env })).code).toBe(0);
    expect(rootFiles(store)).toEqual(['root.key.uri', 'root.pem']);
    const tokenRoot = path.join(t.dir, 'token-root.pem');
    fs.copyFileSync(path.join(store, 'bundles/root/root.pem'), tokenRoot);

    // Back to a file root: the token signs the link; the new key is encrypted to the offline recipients.
    const toFile = await trellisRoot(['rotate', 'root', '--store', store], { env: t.env });
    expect(toFile.code, toFile.stderr).toBe(0);
    expect(rootFiles(store)).toEqual(['root.key.age', 'root.pem', 'root.previous.key.uri', 'root.previous.pem']);
    expect((await opensslVerify(tokenRoot, path.join(store, 'bundles/root/link.pem'))).stdout).toMatch(/: OK$/);
    expect((await trellisRoot(['rotate', 'root', '--finalize', '--store', store], { env })).code).toBe(0);
    expect(rootFiles(store)).toEqual(['root.key.age', 'root.pem']);
    v = await trellisRoot(['verify', '--store', store], { env });
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(
      /root key opens with the offline identity and matches its certificate\s+\(bundles\/root\/root.key.age\)/,
    );
    noPin(v);
  });

  it('a token root is ECDSA P-256 or P-384: an ed25519 one is refused before the token is touched', async () => {
    const t = await newToken();
    const r = await trellisRoot(
      [
        'init',
        '--store',
        path.join(t.dir, 's'),
        '--mesh',
        'prod',
        '--trust-domain',
        'mesh.example',
        '--ci-recipient',
        'age1exg28r0eulu2ny5jpu8xysvnmv5urlvzv87mkceylr5qt0nty54qln73qu',
        '--algorithm',
        'ed25519',
        '--root-key',
        URI,
      ],
      { env: t.env },
    );
    expectRefused(r, 'usage');
    expect(r.stderr, 'names the flag').toMatch(/--algorithm: /);
    expect(fs.existsSync(path.join(t.dir, 's'))).toBe(false);
    expect(await pkcs11Objects(t)).not.toMatch(/Private Key Object/);
  });
});

describe('the single-file build and the optional addon', () => {
  it('without pkcs11js beside the bundle a token root is refused clearly; with it beside, the bundle signs on the token', async () => {
    const t = await newToken();
    const { store } = await initStore(t, URI);
    // The bundle as scripts/dist/build.mjs makes it (its banner and aliases), into a directory with no node_modules.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bundle-'));
    const outfile = path.join(dir, 'trellis-root.mjs');
    await build({
      absWorkingDir: REPO,
      entryPoints: ['packages/offline/src/main.ts'],
      outfile,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20.19',
      logLevel: 'warning',
      banner: {
        js:
          "import { createRequire as __trellisCreateRequire } from 'node:module';\nconst require = " +
          '__trellisCreateRequire(import.meta.url);',
      },
      define: { TRELLIS_BUILD: JSON.stringify({ commit: 'test', version: '0.0.0' }) },
      alias: WORKSPACE_SOURCES,
    });
    const env = baseEnv({ TRELLIS_ALLOW_ONLINE: '1', ...t.env }) as NodeJS.ProcessEnv;
    const runBundle = (args: string[]) =>
      execa('node', [outfile, ...args], { env, extendEnv: false, reject: false, cwd: dir });
    const before = hashTree(store);
    const missing = await runBundle(['crl', '--store', store]);
    expectRefused(
      { code: missing.exitCode ?? -1, stdout: String(missing.stdout), stderr: String(missing.stderr) },
      'custody-token',
    );
    expect(String(missing.stderr)).toMatch(/the PKCS#11 binding \(pkcs11js\) is not installed beside trellis-root/);
    expect(hashTree(store)).toEqual(before);
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(
      path.dirname(createRequire(path.join(REPO, 'packages/offline/package.json')).resolve('pkcs11js/package.json')),
      path.join(dir, 'node_modules/pkcs11js'),
    );
    const beside = await runBundle(['crl', '--store', store]);
    expect(beside.exitCode, String(beside.stderr)).toBe(0);
    const crl = await tool('openssl', [
      'crl',
      '-in',
      path.join(store, 'bundles/root/crl.pem'),
      '-CAfile',
      path.join(store, 'bundles/root/root.pem'),
      '-noout',
    ]);
    expect(crl.stderr).toMatch(/verify OK/);
  });
});
