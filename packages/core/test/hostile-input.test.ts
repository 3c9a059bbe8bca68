/**
 * The pure rules behind the bad-input corpus (tests/bad-input.test.ts runs
 * them through the CLIs): durations, --now, YAML, SANs, signing times,
 * identities and the clock against the root ledger.
 */
import { describe, expect, it } from 'vitest';
import { generateX25519Identity } from 'age-encryption';
import { MAX_INPUT_BYTES, parseMeshConfig, parseScope, serializeMeshConfig } from '../src/config/config.js';
import {
  assertClockNotBehindLedger,
  quoteInput,
  readIdentities,
  tryDecrypt,
  withoutSecrets,
} from '../src/custody/custody.js';
import { TrellisError } from '../src/model/errors.js';
import { dnsSanRefusal } from '../src/model/names.js';
import { assertSignsAt, validityWithin } from '../src/x509/profiles.js';
import { parseDuration, parseInstant } from '../src/model/time.js';
import { failure } from './helpers.js';

async function asyncFailure(fn: () => Promise<unknown>): Promise<TrellisError> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof TrellisError) return e;
    throw e;
  }
  throw new Error('expected a TrellisError');
}

const YEAR = 31_536_000_000;

describe('durations', () => {
  it.each([
    ['a year count that overflows a date', '300000y'],
    ['a number too long to be a number', `${'9'.repeat(400)}d`],
    ['an exponent', '1e400d'],
    ['zero', '0d'],
    ['a negative', '-7d'],
    ['a fraction', '1.5d'],
    ['a bare number', '86400'],
    ['101 years', '101y'],
  ])('refuses %s', (_, text) => {
    const e = failure(() => parseDuration(text, { file: 'trellis.yaml', field: 'defaults.ttl.leaf' }));
    expect(e.reason).toBe('bad-config');
    expect(e.place).toEqual({ file: 'trellis.yaml', field: 'defaults.ttl.leaf' });
    expect(e.message.length).toBeLessThan(300);
  });
  it('accepts 100 years, the ceiling', () => expect(parseDuration('100y')).toBe(100 * YEAR));
});

describe('--now', () => {
  it.each([
    ['a word', 'yesterday'],
    ['a day that does not exist', '2026-02-30T00:00:00Z'],
    ['February 29th of a common year', '2027-02-29T00:00:00Z'],
    ['month 13', '2026-13-01T00:00:00Z'],
    ['hour 24', '2026-11-22T24:00:00Z'],
    ['a leap second', '2026-12-31T23:59:60Z'],
    ['no offset', '2026-11-22T10:00:00'],
    ['an offset out of range', '2026-11-22T10:00:00+24:00'],
    ['a date without a time', '2026-11-22'],
    ['a time before 1970', '1969-12-31T23:59:59Z'],
    ['year 10000', '10000-01-01T00:00:00Z'],
    ['a Unix timestamp', '1795000000'],
  ])('refuses %s', (_, text) => {
    const e = failure(() => parseInstant(text));
    expect(e.reason).toBe('bad-time');
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/^--now /);
  });
  it.each([
    ['UTC', '2026-11-22T10:00:00Z', '2026-11-22T10:00:00.000Z'],
    ['an offset', '2026-11-22T12:00:00+02:00', '2026-11-22T10:00:00.000Z'],
    ['February 29th of a leap year', '2028-02-29T00:00:00Z', '2028-02-29T00:00:00.000Z'],
    ['fractional seconds', '2026-11-22T10:00:00.5Z', '2026-11-22T10:00:00.500Z'],
  ])('accepts %s', (_, text, iso) => expect(parseInstant(text).toISOString()).toBe(iso));
});

describe('signing time: --now inside the issuer', () => {
  const issuer = {
    label: 'us-east-1 intermediate',
    notBefore: new Date('2026-11-22T10:00:00Z'),
    notAfter: new Date('2029-11-21T10:00:00Z'),
    file: 'bundles/us-east-1/intermediate.pem',
    tier: 'intermediate' as const,
  };
  it.each([
    ['before the issuer exists', '2026-11-22T09:59:59Z', 'bad-time'],
    ['at its expiry', '2029-11-21T10:00:00Z', 'issuer-expiring'],
    ['after its expiry', '2031-01-01T00:00:00Z', 'issuer-expiring'],
  ])('refuses to sign %s', (_, at, reason) => {
    const e = failure(() => assertSignsAt(issuer, new Date(at)));
    expect(e.reason).toBe(reason);
    expect(e.place.file).toBe('bundles/us-east-1/intermediate.pem');
  });
  it('signs inside its validity', () =>
    expect(() => assertSignsAt(issuer, new Date('2027-01-01T00:00:00Z'))).not.toThrow());
  it('a leaf cannot be minted before its intermediate exists', () => {
    expect(failure(() => validityWithin('leaf', new Date('2026-01-01T00:00:00Z'), 7 * 86_400_000, issuer)).reason).toBe(
      'bad-time',
    );
  });
  it('a lifetime that ends past 9999 is refused, never encoded', () => {
    expect(failure(() => validityWithin('root', new Date('2026-11-22T10:00:00Z'), 300_000 * YEAR)).reason).toBe(
      'bad-config',
    );
    expect(failure(() => validityWithin('root', new Date('9999-06-01T00:00:00Z'), YEAR)).reason).toBe('bad-config');
  });
});

describe('the clock against the root ledger', () => {
  const entries = [{ at: '2026-11-22T10:00:00Z' }, { at: '2026-12-01T10:00:00Z' }, { at: '2026-11-30T10:00:00Z' }];
  it('refuses a clock earlier than the newest entry, whatever the order (exit 3)', () => {
    const e = failure(() =>
      assertClockNotBehindLedger(new Date('2026-11-30T23:00:00Z'), entries, 'bundles/root/ledger.jsonl'),
    );
    expect(e.reason).toBe('custody-clock-behind');
    expect(e.exitCode).toBe(3);
    expect(e.message).toMatch(/2026-12-01T10:00:00/);
  });
  it.each([
    ['at the newest entry', '2026-12-01T10:00:00Z', entries],
    ['after it', '2027-01-01T00:00:00Z', entries],
    ['with an empty ledger', '2020-01-01T00:00:00Z', []],
  ])('runs %s', (_, at, list) => expect(() => assertClockNotBehindLedger(new Date(at), list, 'l')).not.toThrow());
});

describe('identities are never echoed', () => {
  it('an identity with one character wrong is refused by position, not quoted', async () => {
    const id = await generateX25519Identity();
    const bad = id.slice(0, 40) + (id[40] === 'Q' ? 'P' : 'Q') + id.slice(41);
    const e = failure(() => readIdentities('root', { TRELLIS_ROOT_IDENTITY: `${id}\n${bad}` }, () => ''));
    expect(e.reason).toBe('bad-identity');
    expect(e.message).toMatch(/identity 2 of 2/);
    expect(e.message).not.toContain(bad.slice(15, 35));
    expect(e.message).not.toMatch(/AGE-SECRET-KEY-1[0-9A-Z]/);
  });
  it('an identity age cannot read is refused by position when decrypting, not quoted', async () => {
    const id = await generateX25519Identity();
    const bad = `${id.slice(0, -1)}${id.endsWith('Q') ? 'P' : 'Q'}`;
    const e = await asyncFailure(() => tryDecrypt([bad], 'x'));
    expect(e.message).not.toContain(bad.slice(15, 35));
  });
  it('a secret pasted where a value belongs is described, not quoted', () => {
    expect(quoteInput('AGE-SECRET-KEY-1QQQQ')).not.toMatch(/QQQQ/);
    expect(quoteInput('-----BEGIN PRIVATE KEY-----\nMIIE')).not.toMatch(/MIIE/);
    expect(quoteInput('x'.repeat(5000)).length).toBeLessThan(100);
  });
  it('a parser message that shows a secret in its context is not passed on', () => {
    expect(withoutSecrets('Unexpected scalar token in YAML stream: "AGE-SECRET-KEY-1QQQQ" at line 2')).not.toMatch(
      /QQQQ/,
    );
    expect(
      withoutSecrets('Implicit keys need to be on a single line at line 1:\n\n-----BEGIN PRIVATE KEY-----\nMIGHAg'),
    ).not.toMatch(/MIGHAg/);
    expect(withoutSecrets('Unexpected "]" at line 3, column 1:\n\n]x\n^')).toBe('Unexpected "]" at line 3, column 1:');
  });
  it('a secret pasted as the CI recipient of trellis.yaml is not echoed', () => {
    const good = serializeMeshConfig({
      mesh: 'prod',
      trustDomain: 'mesh.example',
      recipients: {
        offline: ['age1az7cqtu0lwyk3dvjkd0mgsglamrhfkdxwkeelueh6vj7q256gvns7ep7qy'],
        ci: 'age1nalk8eaxw4t85ahqjlhgy46kkclt3yv6mt3zdre423jhnhqcufus48435d',
      },
    });
    const e = failure(() =>
      parseMeshConfig(good.replace(/ci: age1\w+/, 'ci: AGE-SECRET-KEY-1QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L')),
    );
    expect(e.place.field).toBe('recipients.ci');
    expect(e.message).not.toMatch(/QPZRY9X8/);
  });
});

describe('hostile YAML', () => {
  const scope = (text: string) => failure(() => parseScope(text, 'us-east-1', 'mesh.example'));
  it.each([
    [
      'a billion laughs',
      'kind: region\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nservices: {}\n',
      'a',
    ],
    ['a single alias', 'kind: region\nservices:\n  api: &api {}\n  web: *api\n', 'services.api'],
    ['a tag', 'kind: !!js/function "function () {}"\nservices: {}\n', 'kind'],
    ['a local tag', 'kind: region\nservices:\n  api: !service {}\n', 'services.api'],
    ['a duplicate service', 'kind: region\nservices:\n  api: {}\n  web: {}\n  api: {}\n', 'services.api'],
    ['a duplicate top-level key', 'kind: region\nkind: global\nservices: {}\n', 'kind'],
    ['deep nesting', `kind: region\nservices:\n  api:\n    dns: ${'['.repeat(40)}${']'.repeat(40)}\n`, undefined],
  ])('refuses %s, naming the file and the field', (_, text, field) => {
    const e = scope(text);
    expect(e.reason).toBe('bad-scope');
    expect(e.place.file).toBe('scopes/us-east-1.yaml');
    if (field) expect(e.place.field).toBe(field);
    expect(e.hint).toBeTruthy();
  });
  it('refuses nesting that would exhaust the parser, without a crash', () => {
    expect(scope(`kind: region\nservices: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`).message).toMatch(
      /not valid YAML/,
    );
  });
  it.each([
    ['a list', '- kind: region\n'],
    ['a string', 'region\n'],
    ['a number', '42\n'],
  ])('refuses a top level that is %s', (_, text) => expect(scope(text).message).toMatch(/must be a mapping/));
  it('refuses binary junk', () =>
    expect(scope('\u0000\u0001\u0002kind: region\n').message).toMatch(/control characters/));
  it('refuses a file over the size limit before parsing it', () => {
    const e = scope(`kind: region\nservices: {}\n${'#'.repeat(MAX_INPUT_BYTES)}\n`);
    expect(e.message).toMatch(/over the limit of 4194304/);
  });
  it('parses a 60,000-service scope (under the limit) in seconds, not minutes', () => {
    let text = 'kind: region\nservices:\n';
    for (let i = 0; i < 60_000; i++) text += `  svc-${i}: {}\n`;
    expect(Buffer.byteLength(text)).toBeLessThan(MAX_INPUT_BYTES);
    const t0 = Date.now();
    expect(parseScope(text, 'us-east-1', 'example').services).toHaveLength(60_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
  it('still finds a duplicate among 60,000 services', () => {
    let text = 'kind: region\nservices:\n';
    for (let i = 0; i < 60_000; i++) text += `  svc-${i}: {}\n`;
    expect(scope(`${text}  svc-17: {}\n`).place.field).toBe('services.svc-17');
  });
});

describe('extra DNS SANs', () => {
  it.each([
    ['a wildcard', '*.api.us-east-1.mesh.example', /wildcard/],
    ['an IPv4 address', '10.0.0.1', /IP address/],
    ['an IPv6 address', 'fd00::1', /IP address/],
    ['upper case', 'API.us-east-1.mesh.example', /lower-case DNS name/],
    ['a name outside the scope', 'api.eu-west-1.mesh.example', /outside the scope's name constraints/],
    ['a path', '../../etc/passwd', /lower-case DNS name/],
  ])('refuses %s', (_, name, why) => expect(dnsSanRefusal(name, 'us-east-1.mesh.example')?.detail).toMatch(why));
  it('accepts a name under the scope', () =>
    expect(dnsSanRefusal('api.internal.us-east-1.mesh.example', 'us-east-1.mesh.example')).toBeUndefined());
});
