/**
 * The air gap for real: the single-file trellis-root, copied alone into a
 * directory with no node_modules above it, runs init, a ceremony and a root
 * rotation inside a network namespace that has only loopback (unshare -n), with
 * no --allow-online; in a namespace with a veth interface up, the same commands
 * are refused (exit 3) and write nothing. Both directions, every run: as root,
 * which CI is (elsewhere the file fails loudly under CI=true, else is skipped).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRelease, noNodeModulesAbove, type Manifest } from './helpers/release.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true')
  throw new Error(
    'tests/airgap.test.ts needs root (network namespaces): CI runs as root, so this is a broken CI machine',
  );

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-airgap-'));
const ws = path.join(work, 'workstation'); // the single file, alone
const store = path.join(ws, 'store');
const online = `trellis-online-${process.pid}`; // a namespace with a network interface up
const peer = `trellis-peer-${process.pid}`; // the other end of its veth pair, so the link is up (carrier)
let manifest: Manifest;

/** Only PATH and HOME: no CI, no TRELLIS_ALLOW_ONLINE, no identity unless given. */
const env = (extra: Record<string, string> = {}) => ({ PATH: process.env.PATH!, HOME: ws, ...extra });
const rootIdentity = () => ({ TRELLIS_ROOT_IDENTITY_FILE: path.join(ws, 'offline.identity') });

async function trellisRoot(where: 'offline' | 'online', args: string[], extra: Record<string, string> = {}) {
  const cmd = where === 'offline' ? ['unshare', '-n', '--'] : ['ip', 'netns', 'exec', online];
  const r = await execa(cmd[0], [...cmd.slice(1), 'node', path.join(ws, 'trellis-root.mjs'), ...args], {
    cwd: ws,
    env: env(extra),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile())
      out[path.relative(dir, path.join(e.parentPath, e.name))] = fs.readFileSync(
        path.join(e.parentPath, e.name),
        'base64',
      );
  }
  return out;
}

const rootLedger = () =>
  fs
    .readFileSync(path.join(store, 'bundles/root/ledger.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe.skipIf(!isRoot)('the single-file trellis-root on an air-gapped machine', () => {
  beforeAll(() => {
    manifest = buildRelease(path.join(work, 'release'));
    fs.mkdirSync(ws);
    fs.copyFileSync(path.join(work, 'release', 'trellis-root.mjs'), path.join(ws, 'trellis-root.mjs'));
    // The online machine: veth v1 up with an address in its own namespace, its peer up in another (no host interface
    // changes).
    ip('netns', 'add', online);
    ip('netns', 'add', peer);
    ip('link', 'add', `tv0-${process.pid}`, 'type', 'veth', 'peer', 'name', `tv1-${process.pid}`);
    ip('link', 'set', `tv0-${process.pid}`, 'netns', peer);
    ip('link', 'set', `tv1-${process.pid}`, 'netns', online);
    ip('-n', peer, 'link', 'set', `tv0-${process.pid}`, 'up');
    ip('-n', online, 'link', 'set', `tv1-${process.pid}`, 'up');
    ip('-n', online, 'addr', 'add', '192.0.2.1/30', 'dev', `tv1-${process.pid}`);
  });

  afterAll(() => {
    for (const ns of [online, peer]) {
      try {
        ip('netns', 'del', ns); // deleting a namespace deletes its end of the veth pair, and with it the other
      } catch {
        /* not created */
      }
    }
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('runs from a directory with nothing but the file, no node_modules in reach', () => {
    expect(fs.readdirSync(ws)).toEqual(['trellis-root.mjs']);
    expect(noNodeModulesAbove(ws)).toBe(true);
  });

  it('offline (loopback only): init, a ceremony (intermediate --pending) and a root rotation, without --allow-online', async () => {
    const init = await trellisRoot('offline', [
      'init',
      '--store',
      store,
      '--mesh',
      'airgap',
      '--trust-domain',
      'airgap.example',
      '--ci-identity-out',
      path.join(ws, 'ci.identity'),
    ]);
    expect(init.code, init.stderr).toBe(0);
    fs.writeFileSync(path.join(ws, 'offline.identity'), init.stdout, { mode: 0o600 });
    fs.writeFileSync(path.join(store, 'scopes/us-east-1.yaml'), 'kind: region\nservices:\n  api: {}\n');

    const ceremony = await trellisRoot('offline', ['intermediate', '--pending', '--store', store], rootIdentity());
    expect(ceremony.code, ceremony.stderr).toBe(0);
    expect(ceremony.stdout).toMatch(/minted us-east-1 intermediate/);

    const rotation = await trellisRoot('offline', ['rotate', 'root', '--store', store], rootIdentity());
    expect(rotation.code, rotation.stderr).toBe(0);
    expect(fs.existsSync(path.join(store, 'bundles/root/link.pem'))).toBe(true);

    const verify = await trellisRoot('offline', ['verify', '--store', store], rootIdentity());
    expect(verify.code, verify.stdout).toBe(0);
    // Every ceremony recorded that it ran offline: no override, no interface up.
    const ceremonies = rootLedger().filter((e) => e.details && 'allowOnline' in e.details);
    expect(ceremonies.map((e) => e.op)).toEqual(expect.arrayContaining(['init', 'rotate-root']));
    for (const e of ceremonies) expect(e.details).toMatchObject({ allowOnline: false, onlineInterfaces: [] });
  });

  it('online (a veth interface up): the same commands are refused with exit 3, naming the interface, and write nothing', async () => {
    const fresh = path.join(ws, 'online-store');
    const init = await trellisRoot('online', [
      'init',
      '--store',
      fresh,
      '--mesh',
      'airgap',
      '--trust-domain',
      'airgap.example',
      '--ci-identity-out',
      path.join(ws, 'ci2.identity'),
    ]);
    expect(init.code, init.stderr).toBe(3);
    expect(init.stderr).toContain(`network interface(s) up: tv1-${process.pid}`);
    expect(init.stdout).toBe('');
    expect(fs.existsSync(fresh)).toBe(false);
    expect(fs.existsSync(path.join(ws, 'ci2.identity'))).toBe(false);

    const before = snapshot(store);
    fs.writeFileSync(path.join(store, 'scopes/eu-west-1.yaml'), 'kind: region\nservices:\n  api: {}\n');
    const pending = snapshot(store);
    for (const args of [
      ['intermediate', '--pending'],
      ['rotate', 'root', '--finalize'],
    ]) {
      const r = await trellisRoot('online', [...args, '--store', store], rootIdentity());
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(3);
      expect(r.stderr).toMatch(/network interface\(s\) up/);
      expect(snapshot(store)).toEqual(pending);
    }
    expect(Object.keys(pending).filter((f) => !(f in before))).toEqual(['scopes/eu-west-1.yaml']);
  });

  it('control: in that same online namespace, --allow-online lets the ceremony run and its record names the interface', async () => {
    const r = await trellisRoot(
      'online',
      ['intermediate', '--pending', '--allow-online', '--store', store],
      rootIdentity(),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/minted eu-west-1 intermediate/);
    expect(rootLedger().at(-1).details).toMatchObject({ allowOnline: true, onlineInterfaces: [`tv1-${process.pid}`] });
  });

  it('version prints the commit and the SHA-256 the manifest lists for the file', async () => {
    const r = await trellisRoot('offline', ['version']);
    expect(r.code, r.stderr).toBe(0);
    const listed = manifest.artifacts.find((a) => a.file === 'trellis-root.mjs')!;
    expect(r.stdout).toContain(`commit  ${manifest.commit}`);
    expect(r.stdout).toContain(`sha256  ${listed.sha256}`);
  });
});
