/**
 * Format stability: the example mesh committed at the repository root
 * (trellis.yaml, scopes/, bundles/) was written by an earlier trellis and its
 * identities discarded. Every version must keep verifying it, as of a time
 * inside its leaves' lives.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, goverify, tool, trellisCi } from './helpers/cli.js';

const AS_OF = '2026-11-22T12:00:00Z';

describe('the example store at the repository root', () => {
  it('verifies with no error or pending finding; its only warnings ask to re-mint the intermediates minted before the IP exclusion and say its ledgers predate signing and its bundles the one-anchor-per-file directories', async () => {
    const r = await trellisCi(['verify', '--json', '--store', REPO, '--now', AS_OF, '--now-ahead']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const notOk = JSON.parse(r.stdout).findings.filter((f: { level: string }) => f.level !== 'ok') as {
      level: string;
      file: string;
      message: string;
    }[];
    expect(notOk.map((f) => `${f.level} ${f.file}`).sort()).toEqual(
      [
        ...['eu-west-1', 'global', 'us-east-1'].map((s) => `warning bundles/${s}/intermediate.pem`),
        ...['root', 'eu-west-1', 'global', 'us-east-1'].map((s) => `warning bundles/${s}/ledger.jsonl`),
        ...['eu-west-1', 'global', 'us-east-1'].map((s) => `warning bundles/${s}/capath`),
      ].sort(),
    );
    for (const f of notOk)
      expect(f.message).toMatch(
        f.file.endsWith('ledger.jsonl')
          ? /unsigned \(legacy\) ledger.*signed from its next write/
          : f.file.endsWith('capath')
            ? /predate.*next trellis-ci renew writes them/
            : /do not exclude IP addresses.*re-mint it at the next rotation/,
      );
  });
  it('renew would mint nothing at that time (the issuance record is read as written)', async () => {
    const r = await trellisCi(['plan', '--json', '--store', REPO, '--now', AS_OF, '--now-ahead']);
    expect(JSON.parse(r.stdout)).toEqual({
      mint: [],
      pending: [],
      held: [],
      collisions: [],
      custody: [],
      phases: [],
      crls: {},
    });
  });
  it('holds public material only: no unencrypted private key anywhere in the store', () => {
    const files = fs
      .readdirSync(path.join(REPO, 'bundles'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile());
    for (const f of files) {
      const text = fs.readFileSync(path.join(f.parentPath, f.name), 'utf8');
      expect(text, f.name).not.toMatch(/PRIVATE KEY/);
    }
  });
  it('its intermediates still chain to its root for OpenSSL and Go', async () => {
    for (const s of ['global', 'us-east-1', 'eu-west-1']) {
      const inter = path.join(REPO, `bundles/${s}/intermediate.pem`);
      expect(
        (
          await tool('openssl', [
            'verify',
            '-x509_strict',
            '-attime',
            String(Date.parse(AS_OF) / 1000),
            '-CAfile',
            path.join(REPO, 'bundles/root/roots.pem'),
            inter,
          ])
        ).code,
      ).toBe(0);
      expect(
        (await goverify(['-roots', path.join(REPO, 'bundles/root/roots.pem'), '-cert', inter, '-at', AS_OF])).stdout,
      ).toBe('OK');
    }
  });
});
