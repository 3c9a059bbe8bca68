/** Standing a mesh up from nothing with the real CLIs: init, a region added by PR, the ceremony, CI renew. */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ledgerProblems, parseCertificate, subjectAltNames } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { at, DAY, HOUR, RUN_NOW } from './helpers/clock.js';

const T0 = at(RUN_NOW);

describe('a mesh stood up end to end', () => {
  let m: FakeMesh;
  beforeAll(async () => {
    m = await FakeMesh.create({
      now: T0,
      intermediates: false,
      scopes: {
        global: ['control'],
        'us-east-1': ['api', { web: { dns: ['edge.us-east-1.mesh.example'], ttl: '72h' } }],
        'eu-west-1': ['api'],
      },
    });
  });

  it('init writes the store layout, the root and a root ledger with its fingerprint', () => {
    for (const f of [
      'trellis.yaml',
      'bundles/root/root.pem',
      'bundles/root/roots.pem',
      'bundles/root/root.key.age',
      'bundles/root/ledger.jsonl',
    ]) {
      expect(fs.existsSync(m.path(f)), f).toBe(true);
    }
    expect(m.read('bundles/root/root.key.age')).toMatch(/^-----BEGIN AGE ENCRYPTED FILE-----/);
    expect(ledgerProblems(m.read('bundles/root/ledger.jsonl'))).toEqual([]);
    expect(m.read('bundles/root/ledger.jsonl')).toContain(`"op":"init"`);
    expect(fs.statSync(m.ciIdentityFile).mode & 0o777).toBe(0o600);
  });

  it('scopes declared without an intermediate are pending the ceremony, not broken', async () => {
    const v = await m.ci(['verify', '--json', '--now', T0, '--now-ahead']);
    expect(v.code).toBe(0);
    const pending = JSON.parse(v.stdout)
      .findings.filter((f: { level: string }) => f.level === 'pending')
      .map((f: { scope: string }) => f.scope);
    expect(pending.sort()).toEqual(['eu-west-1', 'global', 'us-east-1']);
    const r = await m.ci(['renew', '--now', T0, '--now-ahead']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('skip us-east-1: pending its offline intermediate ceremony');
  });

  it('the ceremony mints every pending scope; CI then mints every leaf', async () => {
    const c = await m.root(['intermediate', '--pending', '--now', T0, '--now-ahead']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout.match(/minted \S+ intermediate/g)).toHaveLength(3);
    const r = await m.ci(['renew', '--now', T0, '--now-ahead']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('minted 4 leaves');
    const key = m.out('us-east-1', 'web', 'key.pem');
    expect(fs.statSync(key).mode & 0o777).toBe(0o600);
    const chain = fs.readFileSync(m.out('us-east-1', 'web', 'chain.pem'), 'utf8');
    expect(chain).toBe(
      fs.readFileSync(m.out('us-east-1', 'web', 'cert.pem'), 'utf8') + m.read('bundles/us-east-1/intermediate.pem'),
    );
    const leaf = parseCertificate(fs.readFileSync(m.out('us-east-1', 'web', 'cert.pem'), 'utf8'));
    expect(subjectAltNames(leaf)).toEqual({
      uris: ['spiffe://us-east-1.mesh.example/web'],
      dns: ['web.us-east-1.mesh.example', 'edge.us-east-1.mesh.example'],
      other: 0,
    });
    expect(leaf.subject).toBe('CN=web.us-east-1.mesh.example');
    expect(leaf.notAfter.getTime() - leaf.notBefore.getTime()).toBe(72 * 3_600_000 + 60_000);
    // The trust bundles sit once per scope beside the leaf directories, not in each of them.
    expect(fs.readFileSync(m.path('.trellis/out/us-east-1/trust.pem'), 'utf8')).toBe(
      m.read('bundles/us-east-1/trust.pem'),
    );
    expect(fs.readFileSync(m.path('.trellis/out/us-east-1/trust.openssl.pem'), 'utf8')).toBe(
      m.read('bundles/us-east-1/trust.openssl.pem'),
    );
    expect(fs.readdirSync(path.dirname(key)).sort()).toEqual(['cert.pem', 'chain.pem', 'key.pem']);
  });

  it('verify passes, and with the CI identity proves key custody', async () => {
    const v = await m.ci(['verify', '--json', '--now', T0, '--now-ahead']);
    expect(v.code, v.stdout).toBe(0);
    const findings = JSON.parse(v.stdout).findings as { level: string; message: string }[];
    expect(findings.filter((f) => f.level !== 'ok')).toEqual([]);
    expect(findings.map((f) => f.message)).toContain('the CI identity cannot open the root key');
    expect(findings.filter((f) => /opens with the CI identity and matches/.test(f.message))).toHaveLength(3);
  });

  it('a fresh runner (empty output directory) re-mints nothing that is not due', async () => {
    fs.rmSync(m.path('.trellis/out'), { recursive: true, force: true });
    const r = await m.ci(['renew', '--now', at(T0, DAY), '--now-ahead']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('no leaf is due');
    expect(fs.existsSync(m.path('.trellis/out'))).toBe(false);
  });

  it('at a later time renew mints exactly the leaves with a third of their life left', async () => {
    // web lives 72h (due after 48h); the 7-day leaves are due after ~4.7 days.
    const plan = await m.ci(['plan', '--json', '--now', at(T0, 49 * HOUR), '--now-ahead']);
    expect(JSON.parse(plan.stdout).mint).toEqual([{ scope: 'us-east-1', service: 'web', reason: 'renewal-window' }]);
    const before = m.read('bundles/us-east-1/leaves.yaml');
    const r = await m.ci(['renew', '--now', at(T0, 49 * HOUR), '--now-ahead']);
    expect(r.stdout).toContain('minted 1 leaf');
    const after = m.read('bundles/us-east-1/leaves.yaml');
    expect(after).not.toBe(before);
    expect(after.split('web:')[0]).toBe(before.split('web:')[0]);
  });

  it('--dry-run prints the plan and writes nothing; --force and --scope mint what they name', async () => {
    const snap = m.snapshot();
    const outBefore = fs
      .readdirSync(m.path('.trellis/out'), { recursive: true })
      .map((f) => `${f}:${fs.statSync(m.path(`.trellis/out/${f}`)).mtimeMs}`)
      .sort();
    const dry = await m.ci(['renew', '--force', '--dry-run', '--now', at(T0, 50 * HOUR), '--now-ahead']);
    expect(dry.stdout.match(/^mint /gm)).toHaveLength(4);
    expect(m.snapshot()).toEqual(snap);
    expect(
      fs
        .readdirSync(m.path('.trellis/out'), { recursive: true })
        .map((f) => `${f}:${fs.statSync(m.path(`.trellis/out/${f}`)).mtimeMs}`)
        .sort(),
    ).toEqual(outBefore);
    const forced = await m.ci(['renew', '--force', '--scope', 'eu-west-1', '--now', at(T0, 50 * HOUR), '--now-ahead']);
    expect(forced.stdout).toContain('mint eu-west-1/api (forced)');
    expect(forced.stdout).toContain('minted 1 leaf');
  });

  it('every operation is one ledger entry, and every leaf in leaves.yaml is in its ledger', async () => {
    const ledger = m
      .read('bundles/us-east-1/ledger.jsonl')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(ledger.map((e) => e.op)).toEqual(['intermediate', 'renew', 'renew']);
    expect(ledgerProblems(m.read('bundles/us-east-1/ledger.jsonl'))).toEqual([]);
  });

  it('status shows the phase of each scope and when each leaf renews', async () => {
    const s = JSON.parse((await m.ci(['status', '--json', '--now', at(T0, 50 * HOUR), '--now-ahead'])).stdout);
    const us = s.scopes.find((x: { scope: string }) => x.scope === 'us-east-1');
    expect(us.intermediate.subject).toMatch(/us-east-1 intermediate/);
    expect(us.phase).toBe('steady');
    expect(s.root.phase).toBe('steady');
    expect(us.leaves.map((l: { state: string }) => l.state)).toEqual(['ok', 'ok']);
    const text = (await m.root(['status', '--now', at(T0, 50 * HOUR), '--now-ahead'])).stdout;
    expect(text).toMatch(/scope us-east-1 \(region\)/);
  });

  it('a region added by pull request is pending, then minted, then served', async () => {
    m.writeScope('ap-south-1', ['api']);
    const v = await m.ci(['verify', '--now', at(T0, 50 * HOUR), '--now-ahead']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/pending +ceremony +\[ap-south-1\]/);
    const c = await m.root(['intermediate', 'ap-south-1', '--now', at(T0, 50 * HOUR), '--now-ahead']);
    expect(c.code, c.stderr).toBe(0);
    // global trusts every scope, so its bundle now includes the new region.
    expect(m.read('bundles/global/trust.pem').match(/BEGIN CERTIFICATE/g)).toHaveLength(4);
    expect(m.read('bundles/ap-south-1/trust.pem').match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    const r = await m.ci(['renew', '--now', at(T0, 50 * HOUR), '--now-ahead']);
    expect(r.stdout).toContain('mint ap-south-1/api (new)');
    expect((await m.ci(['verify', '--now', at(T0, 50 * HOUR), '--now-ahead'])).code).toBe(0);
  });
});
