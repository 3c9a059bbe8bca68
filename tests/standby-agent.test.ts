/**
 * Hosts refuse a burned intermediate before any root CRL names it: after
 * trellis-ci activate-standby, sealed releases carry the standby's burn
 * statement; trellis-agent remembers it for that scope and refuses a release
 * the burned key signed (as a thief holding it would forge), while the root
 * CRL still does not name it. A statement speaks for its own scope only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  fingerprint,
  newIdentity,
  parseCertificate,
  sealRelease,
  tryDecrypt,
  type Release,
  caKeyFromPem,
} from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { baseEnv, tool, AGENT_BIN, CI_BIN } from './helpers/cli.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-standby-agent-'));
const at = (offset: number) => new Date(Date.now() + offset).toISOString();
let host: { identity: string; recipient: string };
let idFile: string;

async function install(bundle: string, dir: string, roots: string) {
  const r = await execa('node', [AGENT_BIN, 'install', '--bundle', bundle, '--dir', dir, '--roots', roots], {
    env: baseEnv({ TRELLIS_AGENT_IDENTITY_FILE: idFile }) as NodeJS.ProcessEnv,
    extendEnv: false,
    reject: false,
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
const snapshot = (dir: string) =>
  Object.fromEntries(
    fs
      .readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => {
        const p = path.join(e.parentPath, e.name);
        return [p, fs.readFileSync(p, 'utf8')];
      }),
  );

interface Signer {
  scope: string;
  cert: string;
  keyPem: string;
}
async function keyOf(m: FakeMesh, scope: string): Promise<Signer> {
  const ci = fs
    .readFileSync(m.ciIdentityFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('AGE-SECRET-KEY'));
  const opened = await tryDecrypt(ci, m.read(`bundles/${scope}/intermediate.key.age`));
  if (!opened.ok) throw new Error('cannot open the intermediate key');
  return { scope, cert: m.read(`bundles/${scope}/intermediate.pem`), keyPem: opened.text };
}
let n = 0;
async function forge(
  s: Signer,
  p: { scope: string; rootCrl: string; files: Release; burned?: string },
): Promise<string> {
  const file = path.join(work, `forged-${++n}.age`);
  fs.writeFileSync(
    file,
    await sealRelease(
      {
        version: 1,
        scope: p.scope,
        service: 'api',
        host: 'web-1',
        created: at(0),
        rootCrl: p.rootCrl,
        files: p.files,
        ...(p.burned ? { burned: p.burned } : {}),
      },
      host.recipient,
      { scope: s.scope, ...(await caKeyFromPem('intermediate', parseCertificate(s.cert), s.keyPem)) },
    ),
  );
  return file;
}
async function openAsHost(bundle: string): Promise<{ files: Release; burned?: string }> {
  const o = await tryDecrypt([host.identity], fs.readFileSync(bundle, 'utf8'));
  if (!o.ok) throw new Error('the host cannot open its bundle');
  return JSON.parse(o.text).release;
}

describe('hosts refuse the burned key from the first release after activate-standby', () => {
  let m: FakeMesh;
  let roots: string;
  let burned: Signer;
  let oldFiles: Release;
  let hostDir: string;
  let statement: string;
  beforeAll(async () => {
    host = await newIdentity();
    idFile = path.join(work, 'host.identity');
    fs.writeFileSync(idFile, host.identity);
    const sealed = [{ api: { deploy: [{ type: 'sealed', host: 'web-1' }] } }];
    m = await FakeMesh.create({ scopes: { global: [], 'us-east-1': sealed, 'eu-west-1': sealed } });
    await m.allow({ sealed: { 'web-1': { recipient: host.recipient } } });
    const bg = path.join(work, 'breakglass.identity');
    expect((await tool('age-keygen', ['-o', bg])).code).toBe(0);
    const y = parse(m.read('trellis.yaml'));
    m.write(
      'trellis.yaml',
      stringify({
        ...y,
        recipients: { ...y.recipients, breakglass: (await tool('age-keygen', ['-y', bg])).stdout.trim() },
      }),
    );
    expect((await m.root(['intermediate', 'us-east-1', '--standby', '--confirm-recipients'])).code).toBe(0);
    roots = path.join(work, 'roots.pem');
    fs.writeFileSync(roots, m.read('bundles/root/roots.pem'));
    const before = path.join(work, 'before');
    expect((await m.ci(['deploy', '--sealed-out', before])).code).toBe(0);
    hostDir = path.join(work, 'host');
    expect((await install(path.join(before, 'us-east-1/api/web-1.age'), hostDir, roots)).code).toBe(0);
    burned = await keyOf(m, 'us-east-1'); // the thief's copy
    oldFiles = (await openAsHost(path.join(before, 'us-east-1/api/web-1.age'))).files;
    const a = await execa('node', [CI_BIN, '--store', m.dir, 'activate-standby', 'us-east-1'], {
      env: baseEnv({ TRELLIS_BREAKGLASS_IDENTITY_FILE: bg }) as NodeJS.ProcessEnv,
      extendEnv: false,
      reject: false,
    });
    expect(a.exitCode, String(a.stderr)).toBe(0);
    expect((await m.ci(['renew'])).code).toBe(0);
    const after = path.join(work, 'after');
    expect((await m.ci(['deploy', '--sealed-out', after])).code).toBe(0);
    statement = (await openAsHost(path.join(after, 'us-east-1/api/web-1.age'))).burned!;
    expect(statement).toBe(m.read('bundles/us-east-1/burned.json'));
    const r = await install(path.join(after, 'us-east-1/api/web-1.age'), hostDir, roots);
    expect(r.code, r.stderr).toBe(0);
  }, 90_000);

  it('the host remembers the burned key for the scope, and the root CRL does not name it yet', () => {
    const state = JSON.parse(fs.readFileSync(path.join(hostDir, '.trellis-host-state.json'), 'utf8'));
    expect(state.burned).toEqual({ 'us-east-1': [fingerprint(parseCertificate(burned.cert))] });
    expect(m.read('bundles/root/state.yaml')).not.toContain(fingerprint(parseCertificate(burned.cert)));
  });

  it('refuses a release the burned key signed, with the current root CRL, and changes nothing', async () => {
    const forged = await forge(burned, {
      scope: 'us-east-1',
      rootCrl: m.read('bundles/root/crl.pem'),
      files: oldFiles,
    });
    const before = snapshot(hostDir);
    const r = await install(forged, hostDir, roots);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/was burned \(trellis-ci activate-standby\) for scope us-east-1/);
    expect(snapshot(hostDir)).toEqual(before);
  });

  it("a fresh host refuses it too once it is handed the statement, but a statement in another scope's release is refused", async () => {
    const fresh = path.join(work, 'fresh-host');
    const withStatement = await forge(burned, {
      scope: 'us-east-1',
      rootCrl: m.read('bundles/root/crl.pem'),
      files: oldFiles,
      burned: statement,
    });
    expect((await install(withStatement, fresh, roots)).stderr).toMatch(/was burned/);
    // eu-west-1's key carrying us-east-1's statement: it speaks for its own scope only.
    const eu = await keyOf(m, 'eu-west-1');
    const cross = await forge(eu, {
      scope: 'eu-west-1',
      rootCrl: m.read('bundles/root/crl.pem'),
      files: {},
      burned: statement,
    });
    const r = await install(cross, path.join(work, 'other-host'), roots);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/a statement speaks for its own scope only/);
  });
});
