/**
 * Post-quantum at rest: init --pq generates ML-KEM-768 + X25519 hybrid
 * identities for both postures; the library round-trips them through the
 * lifecycle (ceremony, renew, verify), and the real age CLI on this machine
 * cannot read them (its own error), which is what the docs claim.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { armor } from 'age-encryption';
import { describe, expect, it } from 'vitest';
import { expectRefused, trellisCi, trellisRoot, tool } from './helpers/cli.js';

/** The recipient stanza types in an armored age file's header (needs no secret). */
const stanzaTypes = (file: string): string[] =>
  Buffer.from(armor.decode(fs.readFileSync(file, 'utf8')))
    .toString('latin1')
    .split('\n---')[0]!
    .split('\n')
    .filter((l) => l.startsWith('-> '))
    .map((l) => l.split(' ')[1]!);

describe('post-quantum at rest (init --pq)', () => {
  it('both postures get hybrid identities; a ceremony, renew and both verifies run on them; the age CLI cannot read them', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-pq-'));
    const store = path.join(base, 'store');
    const rootId = path.join(base, 'root.identity');
    const ciId = path.join(base, 'ci.identity');
    const init = await trellisRoot([
      'init',
      '--store',
      store,
      '--mesh',
      'prod',
      '--trust-domain',
      'mesh.example',
      '--ci-identity-out',
      ciId,
      '--pq',
    ]);
    expect(init.code, init.stderr).toBe(0);
    fs.writeFileSync(rootId, init.stdout, { mode: 0o600 });
    expect(init.stdout).toMatch(/^AGE-SECRET-KEY-PQ-1[0-9A-Z]+$/m);
    expect(fs.readFileSync(ciId, 'utf8')).toMatch(/^AGE-SECRET-KEY-PQ-1[0-9A-Z]+$/m);
    const config = fs.readFileSync(path.join(store, 'trellis.yaml'), 'utf8');
    expect(config).toMatch(/offline:\n\s+- age1pq1[0-9a-z]+\n/);
    expect(config).toMatch(/ci: age1pq1[0-9a-z]+\n/);
    expect(stanzaTypes(path.join(store, 'bundles/root/root.key.age'))).toEqual(['mlkem768x25519']);

    fs.writeFileSync(path.join(store, 'scopes/us-east-1.yaml'), 'kind: region\nservices:\n  api: {}\n');
    const mint = await trellisRoot(['intermediate', '--pending'], {
      cwd: store,
      env: { TRELLIS_ROOT_IDENTITY_FILE: rootId },
    });
    expect(mint.code, mint.stderr).toBe(0);
    const intermediateKey = path.join(store, 'bundles/us-east-1/intermediate.key.age');
    expect(stanzaTypes(intermediateKey)).toEqual(['mlkem768x25519']);
    const renew = await trellisCi(['renew'], { cwd: store, env: { TRELLIS_CI_IDENTITY_FILE: ciId } });
    expect(renew.code, renew.stderr).toBe(0);
    // renew opened the intermediate key with the hybrid CI identity and signed a leaf with it.
    expect(renew.stdout).toMatch(/mint us-east-1\/api \(new\)/);
    expect(renew.stdout).toMatch(/minted 1 leaf/);
    const v = await trellisCi(['verify'], { cwd: store, env: { TRELLIS_CI_IDENTITY_FILE: ciId } });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    const rv = await trellisRoot(['verify'], { cwd: store, env: { TRELLIS_ROOT_IDENTITY_FILE: rootId } });
    expect(rv.code, rv.stdout + rv.stderr).toBe(0);

    // The docs' claim: the age CLI here (1.1.x) cannot read hybrid identities, and says so itself.
    for (const [id, key] of [
      [rootId, path.join(store, 'bundles/root/root.key.age')],
      [ciId, intermediateKey],
    ]) {
      const r = await tool('age', ['-d', '-i', id!, key!]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/age: error: .*unknown identity type/);
      expect(r.stderr).not.toMatch(/AGE-SECRET-KEY/);
    }
  });

  it('--pq with a classic recipient is refused (exit 3, nothing created)', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-pq-'));
    const r = await trellisRoot([
      'init',
      '--store',
      path.join(base, 'store'),
      '--mesh',
      'prod',
      '--trust-domain',
      'mesh.example',
      '--ci-recipient',
      'age107a3fjz7jecs7adv37xdyjjkpxq6gjy8mtspz0jgrp5xxd6khytqv3ft42',
      '--pq',
    ]);
    expectRefused(r, 'custody-recipients');
    expect(r.stderr, 'names the flag').toMatch(/--ci-recipient: /);
    expect(fs.readdirSync(base)).toEqual([]);
  });

  it('--pq and --shares together: the hybrid identity split 2-of-3 runs a ceremony', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-pq-'));
    const store = path.join(base, 'store');
    const init = await trellisRoot([
      'init',
      '--store',
      store,
      '--mesh',
      'prod',
      '--trust-domain',
      'mesh.example',
      '--ci-identity-out',
      path.join(base, 'ci.identity'),
      '--pq',
      '--shares',
      '2-of-3',
    ]);
    expect(init.code, init.stderr).toBe(0);
    const blocks = init.stdout.split(/\n(?=# trellis offline root identity, share )/);
    const files = blocks.slice(1).map((b, i) => {
      const f = path.join(base, `share-${i}`);
      fs.writeFileSync(f, `${b}\n`);
      return f;
    });
    const r = await trellisRoot(['crl', '--shares-from', ...files], { cwd: store });
    expect(r.code, r.stderr).toBe(0);
  });
});
