import { describe, expect, it } from 'vitest';
import { leafDue, parseIssuanceRecord, serializeIssuanceRecord, type LeafRecord } from '../src/ledger/issuance.js';

const names = { uris: ['spiffe://us-east-1.mesh.example/api'], dns: ['api.us-east-1.mesh.example'] };
const leaf: LeafRecord = {
  serial: '01ab',
  notBefore: new Date('2026-11-01T00:00:00Z'),
  notAfter: new Date('2026-11-07T00:00:00Z'),
  issuer: 'sha256:active',
  fingerprint: 'sha256:leaf',
  ...names,
};
const at = (s: string) => new Date(s);

describe('is a leaf due? (decided from the record, never from a runner)', () => {
  it.each([
    ['a service without a leaf is new', undefined, names, at('2026-11-02T00:00:00Z'), 'new'],
    ['a young leaf stands', leaf, names, at('2026-11-02T00:00:00Z'), null],
    ['a leaf with more than a third of its life left stands', leaf, names, at('2026-11-04T23:59:59Z'), null],
    ['a leaf with a third of its life left is due', leaf, names, at('2026-11-05T00:00:00Z'), 'renewal-window'],
    ['an expired leaf is due', leaf, names, at('2026-11-07T00:00:00Z'), 'expired'],
    [
      'a leaf of a retired intermediate is due',
      { ...leaf, issuer: 'sha256:old' },
      names,
      at('2026-11-02T00:00:00Z'),
      'issuer-changed',
    ],
    [
      'a leaf of the active key under a re-signed certificate stands',
      { ...leaf, issuer: 'sha256:resigned', issuerKey: 'sha256:key' },
      names,
      at('2026-11-02T00:00:00Z'),
      null,
    ],
    [
      'a leaf of another key is due even if the fingerprint list were stale',
      { ...leaf, issuerKey: 'sha256:other' },
      names,
      at('2026-11-02T00:00:00Z'),
      'issuer-changed',
    ],
    [
      'a leaf whose names changed in the scope file is due',
      leaf,
      { ...names, dns: [...names.dns, 'x.us-east-1.mesh.example'] },
      at('2026-11-02T00:00:00Z'),
      'names-changed',
    ],
  ])('%s', (_, rec, wanted, now, want) => {
    expect(leafDue(rec, wanted, { key: 'sha256:key', fingerprints: ['sha256:active'] }, now)).toBe(want);
  });
});

describe('leaves.yaml', () => {
  it('round-trips deterministically', () => {
    const text = serializeIssuanceRecord(new Map([['api', leaf]]));
    expect(serializeIssuanceRecord(parseIssuanceRecord(text, 'leaves.yaml'))).toBe(text);
    expect(text.endsWith('\n')).toBe(true);
  });
  it('refuses a malformed record, naming the service and field', () => {
    expect(() => parseIssuanceRecord('api:\n  serial: 1\n', 'bundles/x/leaves.yaml')).toThrow(
      /bundles\/x\/leaves.yaml: api.serial/,
    );
  });
});
