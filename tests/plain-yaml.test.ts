/**
 * The linear YAML reader (packages/core/src/config/plain-yaml.ts) is an accelerator:
 * whatever it accepts it must read exactly as the yaml package does, and it
 * must decline (undefined) what it does not understand, a duplicate key above
 * all, so the full parser and its checks see that text.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseDocument, stringify } from 'yaml';
import { parseScope, readPlainYaml, writePlainYaml, serializeIssuanceRecord, parseIssuanceRecord } from '@trellis/core';

/** What the yaml package reads, or undefined when it reports an error. */
function full(text: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  return doc.errors.length ? undefined : doc.toJS();
}

// Tokens chosen to sit on the subset's edges: numbers, booleans, null, colons, indicators, quotes, spaces.
const atom = fc.oneof(
  fc.constantFrom(
    'a',
    'svc-0001',
    'sha256:ab',
    'spiffe://x.mesh.example/api',
    '2026-11-22T10:00:00Z',
    '01ec8a',
    '1e5',
    '0x1f',
    '0o7',
    '.5',
    '12',
    '-3',
    '+1',
    'true',
    'False',
    'null',
    '~',
    '.inf',
    'a:',
    'a: b',
    'a #b',
    '#x',
    '-a',
    '- a',
    '&x',
    '*x',
    '!t',
    '"q"',
    "'q'",
    '"a\\"b"',
    '{}',
    '[]',
    '@x',
    '`x',
    'é',
    'a b',
    '',
    ' ',
    'x\ty',
  ),
  fc.stringMatching(/^[a-z0-9:._/-]{1,8}$/),
);
const key = fc.oneof(
  fc.constantFrom('kind', 'services', 'serial', '1', 'true', 'null', '__proto__', 'a.b', 'a:b', '-k', 'k k'),
  fc.stringMatching(/^[a-z0-9-]{1,6}$/),
);

type Tree = string | Tree[] | { [k: string]: Tree };
const tree: fc.Arbitrary<Tree> = fc.letrec<{ t: Tree }>((tie) => ({
  t: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    atom,
    fc.array(fc.oneof(atom, atom, fc.dictionary(key, tie('t'), { maxKeys: 3 })), { maxLength: 3 }),
    fc.dictionary(key, tie('t'), { maxKeys: 4 }),
  ),
})).t;

/** Emits a tree as block YAML the way a person might: any indent step, raw atoms (unquoted), optional comments. */
function emit(t: Tree, indent: number, step: number, comments: boolean): string {
  const pad = ' '.repeat(indent);
  if (typeof t === 'string') return `${pad}${t}\n`;
  if (Array.isArray(t)) {
    return t
      .map((x) => {
        if (typeof x === 'string' || Array.isArray(x) || !Object.keys(x).length)
          return `${pad}- ${typeof x === 'string' ? x : '{}'}\n`;
        // A mapping item in the compact form (a scope file's deploy targets): its first key on the dash's line, the
        // rest 2 columns in.
        return `${pad}- ${emit(x, indent + 2, step, false).slice(indent + 2)}`;
      })
      .join('');
  }
  return Object.entries(t)
    .map(([k, v]) => {
      const c = comments ? `${pad}# about ${k}\n` : '';
      if (typeof v === 'string') return `${c}${pad}${k}: ${v}\n`;
      if (Array.isArray(v) && !v.length) return `${c}${pad}${k}: []\n`;
      if (!Array.isArray(v) && !Object.keys(v).length) return `${c}${pad}${k}: {}\n`;
      return `${c}${pad}${k}:\n${emit(v, indent + step, step, comments)}`;
    })
    .join('');
}

describe('the plain YAML reader', () => {
  it('reads whatever it accepts exactly as the yaml package does', () => {
    let accepted = 0;
    fc.assert(
      fc.property(tree, fc.integer({ min: 1, max: 4 }), fc.boolean(), fc.nat(40), (t, step, comments, dup) => {
        const texts = [stringify(t, { lineWidth: 0, indent: 2 }), emit(t, 0, step, comments)];
        // A duplicated line: a duplicate key (or a second list item) the reader must not read past.
        const lines = texts[1]!.split('\n');
        if (lines.length > 1)
          texts.push(
            [
              ...lines.slice(0, (dup % lines.length) + 1),
              lines[dup % lines.length],
              ...lines.slice((dup % lines.length) + 1),
            ].join('\n'),
          );
        for (const text of texts) {
          const fast = readPlainYaml(text);
          if (fast !== undefined) accepted++;
          if (fast !== undefined) expect(fast, text).toEqual(full(text));
        }
      }),
      { numRuns: 2000 },
    );
    // The property is about something only if the reader accepts a fair share of the texts. Unseeded, it accepts
    // about 580 of some 5,000 (seeds 1-12: 493 to 664); 300 is far below any run's count, so this never flakes.
    expect(accepted).toBeGreaterThan(300);
  });

  it('declines a duplicate key, at any depth, so the full parser refuses it', () => {
    expect(readPlainYaml('kind: region\nservices:\n  api: {}\n  api: {}\n')).toBeUndefined();
    expect(readPlainYaml('a:\n  b:\n    c: x\n    c: y\n')).toBeUndefined();
    expect(readPlainYaml('kind: region\nkind: global\n')).toBeUndefined();
    expect(() => parseScope('kind: region\nservices:\n  api: {}\n  api: {}\n', 'us-east-1', 'mesh.example')).toThrow(
      /duplicate key "api"/,
    );
  });

  it('declines what YAML reads as other than a string, and anchors, tags, flow and tabs', () => {
    for (const text of [
      'a: 1\n',
      'a: true\n',
      'a: null\n',
      'a: 1e3\n',
      '1e3: a\n',
      'a: &x b\n',
      'a: *x\n',
      'a: !t b\n',
      'a: [b]\n',
      'a:\tb\n',
      'a: b # c\n',
      'a:\n',
      '---\na: b\n',
      'a: "b\\n"\n',
    ]) {
      expect(readPlainYaml(text), text).toBeUndefined();
    }
  });

  it('reads a sequence of compact mappings (deploy targets) as the yaml package does, and declines the shapes around it', () => {
    const scope =
      'kind: region\nservices:\n  api:\n    ttl: 72h\n    deploy:\n      - type: dir\n        path: ' +
      '/srv/tls/api\n      - type: ssh\n        host: a.example\n        path: /etc/tls\n  web: {}\n';
    expect(readPlainYaml(scope)).toEqual(full(scope));
    expect(readPlainYaml(scope)).toEqual({
      kind: 'region',
      services: {
        api: {
          ttl: '72h',
          deploy: [
            { type: 'dir', path: '/srv/tls/api' },
            { type: 'ssh', host: 'a.example', path: '/etc/tls' },
          ],
        },
        web: {},
      },
    });
    expect(readPlainYaml('a:\n  - b:\n      c: d\n  - e\n')).toEqual(full('a:\n  - b:\n      c: d\n  - e\n'));
    // A key at the dash's column, a duplicate inside the item, an empty first value with a sibling, a misaligned key:
    // the full parser's.
    for (const text of [
      'a:\n  - b: c\n  d: e\n',
      'a:\n  - b: c\n    b: d\n',
      'a:\n  - b:\n    c: d\n',
      'a:\n  - b: c\n     d: e\n',
      'a:\n  - b: c\n    - d\n',
      'a:\n  - b: 1\n',
    ]) {
      expect(readPlainYaml(text), text).toBeUndefined();
    }
  });

  it('accepts the shapes trellis reads at scale: a scope of `svc: {}` lines and leaves.yaml as trellis writes it', () => {
    const scope = `kind: region\nservices:\n${Array.from({ length: 50 }, (_, i) => `  svc-${i}: {}\n`).join('')}`;
    expect(readPlainYaml(scope)).toEqual(full(scope));
    // Services with a ttl and deploy targets, as the yaml package writes them (the benchmark's scope files).
    const targets = stringify({
      kind: 'region',
      services: {
        api: {
          ttl: '72h',
          deploy: [
            { type: 'dir', path: '/srv/tls/api' },
            { type: 'ssh', target: 'edge', path: '/etc/tls' },
          ],
        },
        web: {},
      },
    });
    expect(targets).toContain('      - type: dir\n        path: /srv/tls/api\n');
    expect(readPlainYaml(targets)).not.toBeUndefined();
    expect(readPlainYaml(targets)).toEqual(full(targets));
    for (const text of [
      'a:\n  - b: c\n   d: e\n',
      'a:\n  - b: c\n  - d\n    e: f\n',
      'a:\n  - b: c\n    b: d\n',
      'a:\n  - b:\n  - c\n',
      'a:\n  -  b: c\n',
      'a:\n  - 1: c\n',
    ]) {
      expect(readPlainYaml(text), text).toBeUndefined();
    }
    expect(readPlainYaml('a:\n  - "b: c"\n  - sha256:ab\n')).toEqual({ a: ['b: c', 'sha256:ab'] });
    const leaves = serializeIssuanceRecord(
      new Map([
        [
          'api',
          {
            serial: '01ab',
            notBefore: new Date('2026-11-22T10:00:00Z'),
            notAfter: new Date('2026-11-29T10:00:00Z'),
            issuer: 'sha256:aa',
            issuerKey: 'sha256:bb',
            fingerprint: 'sha256:cc',
            uris: ['spiffe://us-east-1.mesh.example/api'],
            dns: ['api.us-east-1.mesh.example', 'edge.us-east-1.mesh.example'],
          },
        ],
        [
          'web',
          {
            serial: '0123',
            notBefore: new Date('2026-11-22T10:00:00Z'),
            notAfter: new Date('2026-11-29T10:00:00Z'),
            issuer: 'sha256:aa',
            fingerprint: 'sha256:dd',
            uris: ['spiffe://us-east-1.mesh.example/web'],
            dns: ['web.us-east-1.mesh.example'],
          },
        ],
      ]),
    );
    // An all-digit serial is quoted by the writer and read back as a string.
    expect(leaves).toContain('serial: "0123"');
    expect(readPlainYaml(leaves)).not.toBeUndefined();
    expect(readPlainYaml(leaves)).toEqual(full(leaves));
    expect(parseIssuanceRecord(leaves, 'leaves.yaml').get('web')!.serial).toBe('0123');
  });

  it('writes, when it writes at all, the very bytes the yaml package writes', () => {
    // Mostly values the writer takes, some on its edges: it must write those exactly as the yaml package, or decline.
    const value = fc.oneof(
      { weight: 12, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9:._/@+=-]{0,9}$/) },
      { weight: 1, arbitrary: atom },
    );
    const name = fc.oneof(
      { weight: 12, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,5}$/) },
      { weight: 1, arbitrary: key },
    );
    const record: fc.Arbitrary<Tree> = fc.letrec<{ t: Tree }>((tie) => ({
      t: fc.dictionary(name, fc.oneof({ depthSize: 'small' }, value, fc.array(value, { maxLength: 3 }), tie('t')), {
        minKeys: 1,
        maxKeys: 4,
      }),
    })).t;
    let written = 0;
    fc.assert(
      fc.property(record, (t) => {
        const fast = writePlainYaml(t);
        if (fast === undefined) return;
        written++;
        expect(fast).toBe(stringify(t, { lineWidth: 0, indent: 2 }));
        expect(readPlainYaml(fast)).toEqual(t);
      }),
      { numRuns: 2000 },
    );
    expect(written).toBeGreaterThan(200);
  });

  it('serializeIssuanceRecord writes the very bytes the yaml package writes for the records, quoting included', () => {
    const text = fc.oneof(
      { weight: 8, arbitrary: fc.stringMatching(/^[0-9a-f]{1,12}$/) },
      { weight: 1, arbitrary: atom },
    );
    const date = fc.date({
      min: new Date('1999-01-01T00:00:00Z'),
      max: new Date('2100-01-01T00:00:00Z'),
      noInvalidDate: true,
    });
    const record = fc.record({
      serial: text,
      notBefore: date,
      notAfter: date,
      issuer: fc.oneof(fc.constant('sha256:aa'), text),
      issuerKey: fc.option(text, { nil: undefined }),
      fingerprint: text,
      uris: fc.array(text, { maxLength: 2 }),
      dns: fc.array(text, { maxLength: 3 }),
    });
    let plain = 0;
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.oneof(
            { weight: 8, arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,6}$/) },
            { weight: 1, arbitrary: key.filter((k) => k !== '__proto__') },
          ),
          record,
          { minKeys: 1, maxKeys: 5 },
        ),
        (recs) => {
          const map = new Map(
            Object.entries(recs).map(([k, r]) => [
              k,
              Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as never,
            ]),
          );
          const obj = Object.fromEntries(
            [...map.keys()].sort().map((k) => {
              const r = map.get(k) as Record<string, unknown>;
              const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
              return [
                k,
                {
                  serial: r.serial,
                  notBefore: iso(r.notBefore as Date),
                  notAfter: iso(r.notAfter as Date),
                  issuer: r.issuer,
                  ...(r.issuerKey ? { issuerKey: r.issuerKey } : {}),
                  fingerprint: r.fingerprint,
                  uris: r.uris,
                  dns: r.dns,
                },
              ];
            }),
          );
          const written = serializeIssuanceRecord(map);
          if (writePlainYaml(obj) !== undefined) plain++;
          expect(written).toBe(stringify(obj, { lineWidth: 0, indent: 2 }));
        },
      ),
      { numRuns: 1500 },
    );
    expect(plain).toBeGreaterThan(100);
  });

  it('writes leaves.yaml as trellis always wrote it, and leaves quoting to the yaml package', () => {
    const rec = {
      serial: '01ab',
      notBefore: '2026-11-22T10:00:00Z',
      uris: ['spiffe://us-east-1.mesh.example/api'],
      dns: [] as string[],
      x: {},
    };
    expect(writePlainYaml({ api: rec })).toBe(stringify({ api: rec }, { lineWidth: 0, indent: 2 }));
    expect(writePlainYaml({ api: { serial: '0123' } })).toBeUndefined();
    expect(writePlainYaml({ api: { n: 1 } })).toBeUndefined();
    expect(writePlainYaml({})).toBeUndefined();
  });
});
