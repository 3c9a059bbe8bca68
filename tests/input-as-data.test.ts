/**
 * Two classes of hostile input, each closed by one mechanism and checked as a
 * property over generated inputs through the real commands:
 *
 * - Input is data, never a key into our objects: every file trellis parses
 *   becomes null-prototype records (data.ts), so a name such as `constructor`
 *   finds nothing; a name YAML reads as a number, a boolean or null is refused
 *   (exit 2) naming it, never renamed (`0x10` once became `16`).
 * - Untrusted text printed raw: every string a CLI prints passes escapeUnsafe
 *   (runMain's output guard), so a control, bidi or line-separator character
 *   in a name reaches no terminal or CI log as itself.
 */
import fs from 'node:fs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseScope } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { expectRefused, reasonOf } from './helpers/cli.js';
import { snapshotStore } from './helpers/store-hash.js';
import { dataOnly, dict, own } from '../packages/core/src/model/data.js';
import { escapeUnsafe } from '../packages/core/src/model/untrusted.js';

/** Every name Object.prototype answers to: what a lookup keyed by input must never find. */
const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype);
/** Names YAML reads as something other than a string. */
const NOT_STRINGS = ['0x10', '1e3', '010', '0o7', '.5', '-3', 'true', 'False', 'null', '~', '.inf'];
const RUNS = Number(process.env.TRELLIS_FUZZ_RUNS ?? 8);

let pristine: FakeMesh;
beforeAll(async () => {
  pristine = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api'] } });
  await pristine.allow({ dir: { paths: ['/tmp'] }, reload: { nginx: 'true' } });
});

describe('input is data, never a key into our objects', () => {
  it('parsed records have no prototype, a __proto__ key is an own key, and own() finds only own keys', () => {
    const v = dataOnly(JSON.parse('{"a":{"__proto__":{"polluted":1}},"list":[{"b":1}]}')) as Record<
      string,
      Record<string, unknown>
    >;
    expect(Object.getPrototypeOf(v)).toBeNull();
    expect(Object.getPrototypeOf(v.a)).toBeNull();
    expect(Object.hasOwn(v.a!, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf((v.list as unknown as object[])[0])).toBeNull();
    for (const name of PROTOTYPE_NAMES) {
      expect(dict<string>()[name]).toBeUndefined();
      expect(own({ keyCompromise: 1 }, name)).toBeUndefined();
    }
  });

  it("a scope file's keys are data: prototype names are ordinary names or refused, never a lookup into Object", () => {
    for (const name of PROTOTYPE_NAMES) {
      let parsed: unknown;
      try {
        parsed = parseScope(
          `kind: region\nservices:\n  api:\n    deploy:\n      - type: dir\n        path: /tmp/x\n        ` +
            `reload: ${name}\n`,
          'us-east-1',
          'mesh.example',
        );
      } catch (e) {
        expect((e as Error).message).not.toMatch(/native code|is not a function|Cannot convert/);
        continue;
      }
      expect(JSON.stringify(parsed)).not.toContain('native code');
    }
  });

  it('property: a reload named by any prototype name is refused by deploy (exit 3 at the allow-list, or 2 for a name no entry can have), runs nothing, prints no function, changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...PROTOTYPE_NAMES), async (name) => {
        const m = pristine.clone();
        m.writeScope('us-east-1', [{ api: { deploy: [{ type: 'dir', path: `${m.dir}-target`, reload: name }] } }]);
        const snap = snapshotStore(m.dir);
        const r = await m.ci(['deploy']);
        const out = r.stdout + r.stderr;
        // Not in the allow-list (a custody refusal), or a name no entry can have (bad input): never run, either way.
        expectRefused(r, reasonOf(r) === 'bad-scope' ? 'bad-scope' : 'custody-not-allowed');
        expect(out).not.toMatch(/native code|internal error|\n\s+at /);
        expect(snap.now()).toEqual(snap.before);
        expect(fs.existsSync(`${m.dir}-target`)).toBe(false);
      }),
      { numRuns: RUNS },
    );
  }, 120_000);

  it('property: a service or scope named like a number, a boolean or null is refused with exit 2 naming it, never renamed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...NOT_STRINGS), fc.boolean(), async (name, asScopeKey) => {
        const m = pristine.clone();
        if (asScopeKey)
          m.write(
            'trellis.yaml',
            `${m.read('trellis.yaml')}`.replace(/recipients:\n/, `recipients:\n  ciScopes:\n    ${name}: age1qqqq\n`),
          );
        else m.write('scopes/us-east-1.yaml', `kind: region\nservices:\n  ${name}: {}\n`);
        const snap = snapshotStore(m.dir);
        const r = await m.ci(['verify']);
        const out = r.stdout + r.stderr;
        expectRefused(r, asScopeKey ? 'bad-config' : 'bad-scope');
        expect(out).toContain(`"${name}"`);
        expect(out).toMatch(/read by YAML as/);
        expect(out).not.toMatch(/internal error|\n\s+at /);
        expect(snap.now()).toEqual(snap.before);
      }),
      { numRuns: RUNS },
    );
  }, 120_000);

  // Shrunk counterexamples, kept as fixed cases.
  it.each([['constructor'], ['toString'], ['__proto__'], ['hasOwnProperty']])(
    'deploy refuses reload %s',
    async (name) => {
      const m = pristine.clone();
      m.writeScope('us-east-1', [{ api: { deploy: [{ type: 'dir', path: `${m.dir}-target`, reload: name }] } }]);
      const r = await m.ci(['deploy']);
      expectRefused(r, reasonOf(r) === 'bad-scope' ? 'bad-scope' : 'custody-not-allowed');
      expect(r.stdout + r.stderr).not.toMatch(/native code|internal error/);
    },
  );
  it('a service named 0x10 is refused, not minted as 16', async () => {
    const m = pristine.clone();
    m.write('scopes/us-east-1.yaml', 'kind: region\nservices:\n  0x10: {}\n');
    const r = await m.ci(['renew']);
    expectRefused(r, 'bad-scope');
    expect(r.stderr, 'names the service as written').toContain('"0x10"');
    expect(fs.existsSync(m.out('us-east-1', '16', 'cert.pem'))).toBe(false);
  });
});

describe('untrusted text is never printed raw', () => {
  const UNSAFE = ['\u202e', '\u2066', '\u2028', '\u2029', '\u200f', '\u0085', '\u001b[2K', '\r', '\u0007', '\ufeff'];

  it('escapeUnsafe escapes each unsafe character, keeps newline, tab and ordinary text', () => {
    fc.assert(
      fc.property(fc.string(), fc.constantFrom(...UNSAFE), fc.string(), (a, bad, b) => {
        const out = escapeUnsafe(`${a}${bad}${b}`);
        for (const c of UNSAFE) expect(out.includes(c.charAt(0))).toBe(false);
        expect(out).toContain(`\\u${bad.charCodeAt(0).toString(16).padStart(4, '0')}`);
      }),
    );
    expect(escapeUnsafe('line\n\ttab Ünïcode')).toBe('line\n\ttab Ünïcode');
  });

  it("property: an unsafe character in a scope file's name, a service or a reload reaches stdout and stderr escaped", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...UNSAFE), fc.constantFrom('service', 'reload', 'file'), async (bad, where) => {
        const m = pristine.clone();
        if (where === 'service') m.write('scopes/us-east-1.yaml', `kind: region\nservices:\n  "api${bad}x": {}\n`);
        else if (where === 'reload')
          m.write(
            'scopes/us-east-1.yaml',
            `kind: region\nservices:\n  api:\n    deploy:\n      - type: dir\n        path: /tmp/x\n        ` +
              `reload: "n${bad}x"\n`,
          );
        else m.write(`scopes/eu${bad}x.yaml`, 'kind: region\nservices:\n  api: {}\n');
        for (const r of [await m.ci(['verify']), await m.ci(['deploy']), await m.root(['confirm', '--dry-run'])]) {
          const out = r.stdout + r.stderr;
          for (const c of UNSAFE) expect(out.includes(c.charAt(0)), `${JSON.stringify(out)}`).toBe(false);
          expect(out).not.toMatch(/internal error/);
        }
      }),
      { numRuns: RUNS },
    );
  }, 180_000);
});
