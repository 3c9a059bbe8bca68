import { describe, expect, it } from 'vitest';
import type { Certificate } from '../src/x509/certificates.js';
import { parseHostState, serializeHostState, validityProblem } from '../src/trust/host-trust.js';
import { failure } from './helpers.js';

const FILE = '/etc/trellis/api/.trellis-host-state.json';
const FP = `sha256:${'ab'.repeat(32)}`;
const CRL = '-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n';

describe('host state', () => {
  it('is empty on a host that never installed a sealed release', () => {
    expect(parseHostState(undefined, FILE)).toEqual({ rootCrls: {} });
  });
  it('round-trips deterministically, roots in a stable order', () => {
    const state = {
      newestRelease: '2026-12-01T10:00:00.123Z',
      rootCrls: { [`sha256:${'ff'.repeat(32)}`]: CRL, [FP]: CRL },
    };
    const text = serializeHostState(state);
    expect(text.indexOf(FP)).toBeLessThan(text.indexOf('sha256:ff'));
    expect(text.endsWith('}\n')).toBe(true);
    expect(parseHostState(text, FILE)).toEqual(state);
    expect(serializeHostState(parseHostState(text, FILE))).toBe(text);
  });
  it.each([
    ['text that is not JSON', '{', ''],
    ['an array', '[]', ''],
    ['an unknown field', JSON.stringify({ version: 1, rootCrls: {}, newest: 'x' }), 'newest'],
    ['another version', JSON.stringify({ version: 2, rootCrls: {} }), 'version'],
    [
      'a replay mark that is not a release timestamp',
      JSON.stringify({ version: 1, newestRelease: '2026-12-01T10:00:00Z', rootCrls: {} }),
      'newestRelease',
    ],
    [
      'an impossible date',
      JSON.stringify({ version: 1, newestRelease: '2026-02-30T10:00:00.000Z', rootCrls: {} }),
      'newestRelease',
    ],
    ['CRLs that are not a mapping', JSON.stringify({ version: 1, rootCrls: [CRL] }), 'rootCrls'],
    ['a key that is not a root fingerprint', JSON.stringify({ version: 1, rootCrls: { root: CRL } }), 'rootCrls.root'],
    ['a CRL that is not PEM', JSON.stringify({ version: 1, rootCrls: { [FP]: 42 } }), `rootCrls.${FP}`],
  ])('refuses %s, naming the field and what to do (exit 2)', (_, text, field) => {
    const e = failure(() => parseHostState(text, FILE));
    expect(e.reason).toBe('bad-host-state');
    expect(e.exitCode).toBe(2);
    expect(e.place).toEqual({ file: FILE, field: field || undefined });
    expect(e.hint).toMatch(/restore it from a backup; deleting it makes this host forget/);
  });
});

describe('is a signer valid now?', () => {
  const cert = {
    notBefore: new Date('2026-12-01T10:00:00Z'),
    notAfter: new Date('2026-12-31T10:00:00Z'),
  } as Certificate;
  const skew = 5 * 60_000;
  it.each([
    ['inside its validity it is', '2026-12-10T00:00:00Z', undefined],
    ['on its last instant it still is', '2026-12-31T10:00:00Z', undefined],
    ['a moment after its notAfter it is expired', '2026-12-31T10:00:01Z', 'expired on 2026-12-31T10:00:00.000Z'],
    ['a host clock less than the skew behind its notBefore accepts it', '2026-12-01T09:56:00Z', undefined],
    ['further behind, it is not yet valid', '2026-12-01T09:54:59Z', 'not valid until 2026-12-01T10:00:00.000Z'],
  ])('%s', (_, now, want) => {
    expect(validityProblem(cert, new Date(now), skew)).toBe(want);
  });
});
