/**
 * Standby intermediates, drilled: a ceremony mints a standby per scope to the
 * break-glass recipient only; the on-call team swaps it in with
 * trellis-ci activate-standby (no root identity anywhere in the process env);
 * the burned key's leaves are then refused by real OpenSSL and a real TLS
 * handshake, the scope's new leaves accepted; the next ceremony revokes the
 * burned key in the root CRL. Every custody rule refuses with exit 3 and
 * leaves the store unchanged.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { FakeMesh } from './helpers/fake-mesh.js';
import { trellisCi, tool, type Env } from './helpers/cli.js';
import { handshake, type Party } from '../scripts/lib/mtls.js';
import { fingerprint, parseCertificates, parseCrls } from '../packages/core/dist/index.js';

const SCOPES = ['global', 'us-east-1', 'eu-west-1'];

describe('standby intermediates and break-glass activation', () => {
  let m: FakeMesh;
  let bg: string; // the break-glass identity file: the on-call security team's
  let bgRecipient: string;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-standby-'));
  // trellis-ci with exactly this environment: no identity unless the test gives one.
  const ci = (args: string[], env: Env) => trellisCi(['--store', m.dir, ...args], { env });
  const asBreakglass = () => ({ TRELLIS_BREAKGLASS_IDENTITY_FILE: bg });
  const asCi = () => ({ TRELLIS_CI_IDENTITY_FILE: m.ciIdentityFile });
  const fps = (rel: string) => parseCertificates(m.read(rel)).map(fingerprint);
  const bundleFps = () =>
    SCOPES.flatMap((s) => [...fps(`bundles/${s}/trust.pem`), ...fps(`bundles/${s}/trust.openssl.pem`)]);
  const verifyClean = async () => {
    for (const r of [await ci(['verify', '--json'], asCi()), await m.root(['verify', '--json'])]) {
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).findings.filter((f: { level: string }) => f.level === 'error')).toEqual([]);
    }
  };
  const refused = async (run: () => Promise<{ code: number; stderr: string }>, message: RegExp) => {
    const before = m.snapshot();
    const r = await run();
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/AGE-SECRET-KEY/);
    expect(m.snapshot()).toEqual(before);
  };
  const hostOf = (scope: string, service: string, dir = path.join(m.dir, '.trellis/out')): Party => {
    const f = (file: string) => fs.readFileSync(path.join(dir, scope, service, file), 'utf8');
    return {
      name: `${scope}/${service}`,
      dns: `${service}.${scope}.mesh.example`,
      key: f('key.pem'),
      chain: f('chain.pem'),
      trust: m.read(`bundles/${scope}/trust.openssl.pem`),
    };
  };
  const opensslVerify = async (leafChain: string, scope: string) => {
    const [leaf, ...inters] = leafChain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)!;
    const w = (name: string, text: string) => {
      const p = path.join(scratch, name);
      fs.writeFileSync(p, text);
      return p;
    };
    return tool('openssl', [
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-CAfile',
      w('ca.pem', m.read(`bundles/${scope}/trust.openssl.pem`)),
      '-untrusted',
      w('inter.pem', inters.join('')),
      w('leaf.pem', leaf!),
    ]);
  };

  beforeAll(async () => {
    m = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api'], 'eu-west-1': ['api'] } });
    bg = path.join(scratch, 'breakglass.identity');
    const k = await tool('age-keygen', ['-o', bg]);
    expect(k.code, k.stderr).toBe(0);
    bgRecipient = (await tool('age-keygen', ['-y', bg])).stdout.trim();
    const y = parse(m.read('trellis.yaml'));
    m.write('trellis.yaml', stringify({ ...y, recipients: { ...y.recipients, breakglass: bgRecipient } }));
  }, 60_000);

  it('a break-glass recipient that is the CI recipient is refused in trellis.yaml', async () => {
    const c = m.clone();
    const y = parse(c.read('trellis.yaml'));
    c.write('trellis.yaml', stringify({ ...y, recipients: { ...y.recipients, breakglass: y.recipients.ci } }));
    const r = await c.root(['intermediate', 'us-east-1', '--standby', '--confirm-recipients']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/recipients\.breakglass/);
  });

  it('refuses an unconfirmed break-glass recipient, then mints a standby to it alone, in no bundle', async () => {
    await refused(
      () => m.root(['intermediate', 'us-east-1', '--standby']),
      /recipients\.breakglass has never been confirmed/,
    );
    const before = bundleFps();
    const r = await m.root(['intermediate', 'us-east-1', '--standby', '--confirm-recipients']);
    expect(r.code, r.stderr).toBe(0);
    const standby = fps('bundles/us-east-1/intermediate.standby.pem')[0]!;
    expect(bundleFps()).toEqual(before);
    expect(bundleFps()).not.toContain(standby);
    // The real age CLI: the break-glass identity opens the standby key, the CI identity does not.
    const key = m.path('bundles/us-east-1/intermediate.standby.key.age');
    expect((await tool('age', ['-d', '-i', bg, key])).stdout).toMatch(/PRIVATE KEY/);
    expect((await tool('age', ['-d', '-i', m.ciIdentityFile, key])).code).not.toBe(0);
    expect((await tool('age', ['-d', '-i', m.rootIdentityFile, key])).code).not.toBe(0);
    await verifyClean();
    // verify with the break-glass identity proves the standby's custody: it opens the standby key and nothing else.
    const v = JSON.parse((await ci(['verify', '--json'], asBreakglass())).stdout);
    expect(v.findings).toContainEqual(
      expect.objectContaining({
        level: 'ok',
        scope: 'us-east-1',
        message: 'standby key opens with the break-glass identity and matches its certificate',
      }),
    );
    expect(v.findings.filter((f: { level: string }) => f.level === 'error')).toEqual([]);
    const wrong = JSON.parse(
      (await ci(['verify', '--json'], { TRELLIS_BREAKGLASS_IDENTITY_FILE: m.ciIdentityFile })).stdout,
    );
    expect(wrong.findings.map((f: { message: string }) => f.message)).toEqual(
      expect.arrayContaining([
        'the break-glass identity does not open this standby key',
        'the break-glass identity opens this key: it must open standby keys only',
      ]),
    );
  });

  it('root rotation re-signs the standby with its key kept; after finalize it still activates', async () => {
    const c = m.clone();
    const before = parseCertificates(c.read('bundles/us-east-1/intermediate.standby.pem'))[0]!;
    const standbyKey = c.read('bundles/us-east-1/intermediate.standby.key.age');
    expect((await c.root(['rotate', 'root'])).code).toBe(0);
    const after = parseCertificates(c.read('bundles/us-east-1/intermediate.standby.pem'))[0]!;
    expect(fingerprint(after)).not.toBe(fingerprint(before));
    expect(Buffer.from(after.publicKey.rawData).equals(Buffer.from(before.publicKey.rawData))).toBe(true);
    expect(c.read('bundles/us-east-1/intermediate.standby.key.age')).toBe(standbyKey);
    const w = path.join(scratch, 'rotated-standby.pem');
    fs.writeFileSync(w, c.read('bundles/us-east-1/intermediate.standby.pem'));
    const o = await tool('openssl', ['verify', '-x509_strict', '-CAfile', c.path('bundles/root/root.pem'), w]);
    expect(o.code, o.stderr).toBe(0);
    expect((await c.root(['rotate', 'root', '--finalize'])).code).toBe(0);
    const v = await trellisCi(['--store', c.dir, 'verify', '--json'], { env: asCi() });
    expect(JSON.parse(v.stdout).findings.filter((f: { level: string }) => f.level === 'error')).toEqual([]);
    const a = await trellisCi(['--store', c.dir, 'activate-standby', 'us-east-1'], { env: asBreakglass() });
    expect(a.code, a.stderr).toBe(0);
    expect(parseCertificates(c.read('bundles/us-east-1/trust.pem')).map(fingerprint)).toContain(fingerprint(after));
  }, 60_000);

  it('custody rules refuse activation without the break-glass identity alone (exit 3, store unchanged)', async () => {
    await refused(() => ci(['activate-standby', 'us-east-1'], {}), /needs the break-glass identity/);
    await refused(
      () => ci(['activate-standby', 'us-east-1'], asCi()),
      /TRELLIS_CI_IDENTITY_FILE is set: activate-standby runs with the break-glass identity alone/,
    );
    await refused(
      () => ci(['activate-standby', 'us-east-1'], { TRELLIS_BREAKGLASS_IDENTITY_FILE: m.ciIdentityFile }),
      /break-glass identity given does not open/,
    );
    await refused(
      () =>
        ci(['activate-standby', 'us-east-1'], { ...asBreakglass(), TRELLIS_ROOT_IDENTITY_FILE: m.rootIdentityFile }),
      /root identity must never reach CI/,
    );
    await refused(
      () => ci(['activate-standby', 'us-east-1'], { TRELLIS_BREAKGLASS_IDENTITY_FILE: m.rootIdentityFile }),
      /opens the root key/,
    );
    // ...and the break-glass identity is refused where it does not belong.
    await refused(
      () => ci(['renew'], { ...asCi(), ...asBreakglass() }),
      /break-glass identity has no business in trellis-ci renew/,
    );
    await refused(
      () => m.root(['intermediate', 'eu-west-1', '--standby', '--confirm-recipients'], asBreakglass()),
      /break-glass identity has no business in a root ceremony/,
    );
    // A scope without a standby has nothing to activate.
    const r = await ci(['activate-standby', 'eu-west-1'], asBreakglass());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no standby intermediate/);
  });

  it("drill: after activation the burned key's leaves are refused, the scope's new leaves accepted, without the root", async () => {
    const burned = fps('bundles/us-east-1/intermediate.pem')[0]!;
    const standby = fps('bundles/us-east-1/intermediate.standby.pem')[0]!;
    // The compromised key's leaf, as a host still presents it.
    const oldOut = path.join(scratch, 'old-out');
    fs.cpSync(path.join(m.dir, '.trellis/out'), oldOut, { recursive: true });
    const env = asBreakglass();
    expect(Object.keys(env).some((k) => k.startsWith('TRELLIS_ROOT'))).toBe(false);
    const r = await ci(['activate-standby', 'us-east-1'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(bundleFps()).not.toContain(burned);
    expect(fps('bundles/us-east-1/trust.pem')).toContain(standby);
    expect(fps('bundles/global/trust.pem')).toContain(standby);
    expect(fs.existsSync(m.path('bundles/us-east-1/intermediate.standby.pem'))).toBe(false);
    // The activated key now opens with the CI identity (and the real age CLI agrees).
    expect(
      (await tool('age', ['-d', '-i', m.ciIdentityFile, m.path('bundles/us-east-1/intermediate.key.age')])).stdout,
    ).toMatch(/PRIVATE KEY/);
    const ledger = m
      .read('bundles/us-east-1/ledger.jsonl')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .at(-1);
    expect(ledger).toMatchObject({
      op: 'activate-standby',
      details: { activated: standby, revoked: [burned] },
      signer: { fingerprint: standby },
    });
    // Verify is clean at once; it warns of the leaves still to re-mint under the standby.
    await verifyClean();
    const v = JSON.parse((await ci(['verify', '--json'], asCi())).stdout);
    expect(
      v.findings.some(
        (f: { level: string; message: string }) =>
          f.level === 'warning' && /no longer active; renew re-mints it/.test(f.message),
      ),
    ).toBe(true);

    // OpenSSL: the burned key's leaf no longer verifies under the scope's bundle.
    const old = await opensslVerify(fs.readFileSync(path.join(oldOut, 'us-east-1/api/chain.pem'), 'utf8'), 'us-east-1');
    expect(old.code, old.stdout).not.toBe(0);
    // A real handshake: global/control with the new bundle refuses the old us-east-1/api leaf.
    const control = hostOf('global', 'control');
    expect((await handshake(control, hostOf('us-east-1', 'api', oldOut))).ok).toBe(false);

    // The next renew (CI identity only) re-mints the scope's leaves under the standby.
    const n = await ci(['renew'], asCi());
    expect(n.code, n.stderr).toBe(0);
    const fresh = hostOf('us-east-1', 'api');
    expect(parseCertificates(fresh.chain).map(fingerprint)).toContain(standby);
    const ok = await opensslVerify(fresh.chain, 'us-east-1');
    expect(ok.code, ok.stderr).toBe(0);
    expect(await handshake(hostOf('global', 'control'), fresh)).toEqual({ ok: true });
    expect(await handshake(fresh, hostOf('global', 'control'))).toEqual({ ok: true });
    await verifyClean();
  }, 60_000);

  it('the next ceremony revokes the burned key in the root CRL and mints a new standby', async () => {
    const burned = JSON.parse(m.read('bundles/us-east-1/burned.json')).statement.burned as string[];
    const r = await m.root(['intermediate', 'us-east-1', '--standby']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/revoked in the root CRL/);
    const state = parse(m.read('bundles/root/state.yaml'));
    expect(state.revoked.map((x: { fingerprint: string }) => x.fingerprint)).toEqual(expect.arrayContaining(burned));
    const crl = parseCrls(m.read('bundles/root/crl.pem'))[0]!;
    expect(crl.entries.length).toBeGreaterThanOrEqual(burned.length);
    expect(fps('bundles/us-east-1/intermediate.standby.pem')[0]).not.toBe(fps('bundles/us-east-1/intermediate.pem')[0]);
    await verifyClean();
  }, 60_000);
});
