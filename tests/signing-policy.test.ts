/**
 * The class: a value a pull request sets that the ceremony or CI then trusts.
 * trellis.yaml's signing policy (mesh, trust domain, algorithms, lifetimes,
 * overlap, CRL lifetimes) counts only once the custodian confirmed it
 * (`trellis-root confirm`, root-signed), every value has a ceiling, and a CRL
 * never outlives its issuer. Checked as a property: any change a pull request
 * makes to the policy is named by verify and refused by renew and by the
 * ceremony (exit 3, store byte-identical) until confirmed.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseCertificate, parseCrls } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { snapshotStore } from './helpers/store-hash.js';
import { at, DAY, HOUR, RUN_NOW } from './helpers/clock.js';

const T0 = at(RUN_NOW);
let pristine: FakeMesh;

beforeAll(async () => {
  pristine = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api'] }, now: T0 });
});

/** The pull request: one policy field set to a value (a string as YAML holds it). */
function edit(m: FakeMesh, group: string, field: string, value: string): void {
  const config = parse(m.read('trellis.yaml'));
  if (group === '') config[field] = value;
  else config.defaults[group] = { ...config.defaults[group], [field]: value };
  m.write('trellis.yaml', stringify(config));
}

/** Policy edits within every ceiling, each different from the defaults init writes. */
const policyEdit = fc.oneof(
  fc.record({
    group: fc.constant('ttl'),
    field: fc.constant('leaf'),
    value: fc.constantFrom('1d', '2d', '36h', '30d'),
  }),
  fc.record({
    group: fc.constant('ttl'),
    field: fc.constant('intermediate'),
    value: fc.constantFrom('1y', '2y', '400d'),
  }),
  fc.record({
    group: fc.constant('overlap'),
    field: fc.constant('propagation'),
    value: fc.constantFrom('1h', '2d', '30d'),
  }),
  fc.record({ group: fc.constant('crl'), field: fc.constant('leaf'), value: fc.constantFrom('24h', '7d', '30d') }),
  fc.record({ group: fc.constant('crl'), field: fc.constant('root'), value: fc.constantFrom('30d', '1y') }),
  fc.record({
    group: fc.constant('algorithms'),
    field: fc.constant('leaf'),
    value: fc.constantFrom('ecdsa-p384', 'ed25519'),
  }),
  fc.record({ group: fc.constant(''), field: fc.constant('mesh'), value: fc.constantFrom('other', 'prod-2') }),
);

describe('a change to the signing policy counts only once the custodian confirmed it', () => {
  it('init records the policy: confirm has nothing to record on a fresh store', async () => {
    const r = await pristine.root(['confirm', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/nothing to record/);
  });

  it('property: verify names every unconfirmed change; renew and the ceremony refuse it (exit 3, store byte-identical)', async () => {
    await fc.assert(
      fc.asyncProperty(policyEdit, async ({ group, field, value }) => {
        const m = pristine.clone();
        edit(m, group, field, value);
        const name = group ? `defaults.${group}.${field}` : field;
        const verify = await m.ci(['verify', '--format', 'markdown', '--now', T0]);
        expect(verify.code, verify.stdout + verify.stderr).not.toBe(0);
        expect(verify.stdout).toContain(`${name} changed:`);
        expect(verify.stdout).toMatch(/not confirmed by the custodian/);
        const snap = snapshotStore(m.dir);
        const renew = await m.ci(['renew', '--force', '--now', T0]);
        expect(renew.code, renew.stderr).toBe(3);
        expect(renew.stderr).toContain(`trellis.yaml: ${name}: `);
        expect(renew.stderr).toMatch(/trellis-root confirm/);
        expect(snap.now(), 'renew left the store byte-identical').toEqual(snap.before);
        m.writeScope('eu-west-1', ['api']);
        const snap2 = snapshotStore(m.dir);
        const ceremony = await m.root(['intermediate', '--pending', '--now', T0]);
        expect(ceremony.code, ceremony.stderr).toBe(3);
        expect(snap2.now(), 'the store is byte-identical').toEqual(snap2.before);
      }),
      { numRuns: 4, seed: 1906 },
    );
  });

  it('after confirm --dry-run names it and confirm records it, renew signs under it', async () => {
    const m = pristine.clone();
    edit(m, 'ttl', 'leaf', '1d');
    const dry = await m.root(['confirm', '--dry-run', '--now', T0]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/defaults\.ttl\.leaf changed: 1w → 1d/);
    const ok = await m.root(['confirm', '--now', T0]);
    expect(ok.code, ok.stderr).toBe(0);
    const renew = await m.ci(['renew', '--force', '--now', at(RUN_NOW, HOUR), '--now-ahead']);
    expect(renew.code, renew.stderr).toBe(0);
    const leaf = parse(m.read('bundles/us-east-1/leaves.yaml')).api;
    expect(new Date(leaf.notAfter).getTime() - new Date(leaf.notBefore).getTime()).toBeLessThanOrEqual(DAY + HOUR);
    const verify = await m.ci(['verify', '--now', at(RUN_NOW, HOUR), '--now-ahead']);
    expect(verify.stdout + verify.stderr).not.toMatch(/signing-policy/);
  });

  it('a confirmation whose recorded policy does not match its digest is a damaged ledger, not a confirmation', async () => {
    const m = pristine.clone();
    const lines = m.read('bundles/root/ledger.jsonl').trimEnd().split('\n');
    const first = JSON.parse(lines[0]!);
    expect(first.details.policyDigest, 'init records the policy digest').toMatch(/^sha256:/);
    first.details.policy.ttl.leaf = 1;
    lines[0] = JSON.stringify(first);
    m.write('bundles/root/ledger.jsonl', `${lines.join('\n')}\n`);
    const r = await m.ci(['renew', '--force', '--now', T0]);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/ledger/);
  });
});

describe('ceilings on what a pull request can set', () => {
  it('a CRL never outlives its issuer, whatever its lifetime', async () => {
    // An intermediate of 20 days under a leaf-CRL lifetime of 30 days: the CRL ends with the intermediate.
    const m = await FakeMesh.create({
      scopes: { global: [], 'us-east-1': ['api'] },
      now: T0,
      defaults: { ttl: { intermediate: '20d', leaf: '1d' }, crl: { leaf: '30d' } },
    });
    const crls = parseCrls(m.read('bundles/us-east-1/crl.pem'));
    expect(crls.length).toBeGreaterThan(0);
    const intermediate = parseCertificate(m.read('bundles/us-east-1/intermediate.pem'));
    for (const crl of crls) {
      expect(crl.nextUpdate!.getTime()).toBeLessThanOrEqual(intermediate.notAfter.getTime());
      expect(crl.nextUpdate!.getTime()).toBeGreaterThan(new Date(T0).getTime() + 19 * DAY);
    }
  });
});
