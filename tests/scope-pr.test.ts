/**
 * A region by pull request, end to end: `trellis-ci scope add` scaffolds and
 * validates the scope file; `verify --format markdown` is the PR comment,
 * with exactly what the ceremony will sign; `trellis-root intermediate`
 * prints the same summary and, on a real terminal, wants the names typed back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseCertificate } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { REPO, ROOT_BIN, baseEnv, tool } from './helpers/cli.js';
import { hashTree } from './helpers/store-hash.js';
import { at, compact, DAY, MINUTE, RUN_NOW, stamp } from './helpers/clock.js';

const T = at(RUN_NOW);
const PROMPT = 'type the scope name';

/** trellis-root on a real pseudo-terminal, answering its prompt with `answer`. */
async function rootOnTty(m: FakeMesh, args: string[], answer: string) {
  const env = baseEnv({ TRELLIS_ALLOW_ONLINE: '1', TRELLIS_ROOT_IDENTITY_FILE: m.rootIdentityFile });
  const r = await execa(
    'python3',
    [path.join(REPO, 'tests/helpers/on-tty.py'), answer, PROMPT, '--', 'node', ROOT_BIN, '--store', m.dir, ...args],
    { env: env as NodeJS.ProcessEnv, extendEnv: false, reject: false },
  );
  return { code: r.exitCode ?? -1, out: String(r.stdout) };
}

/** The summary block of one scope in a rendering: from its heading to the next blank line after the services. */
const block = (text: string, scope: string) =>
  /#### (\S+)\n\n(- [^\n]*\n)+/g.exec(text.slice(text.indexOf(`#### ${scope}`)).replace(/\r/g, ''))?.[0];

describe('scope add', () => {
  let m: FakeMesh;
  beforeAll(async () => {
    m = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api'] }, now: T });
  });

  it('scaffolds scopes/NAME.yaml that the store parses, and verify reports it pending, not broken', async () => {
    const c = m.clone();
    const r = await c.ci(['scope', 'add', 'ap-south-1', '--service', 'api', '--service', 'web']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('wrote scopes/ap-south-1.yaml: region ap-south-1, services api, web');
    expect(c.read('scopes/ap-south-1.yaml')).toBe('kind: region\nservices:\n  api: {}\n  web: {}\n');
    const v = await c.ci(['verify', '--json', '--now', T, '--now-ahead']);
    expect(v.code).toBe(0);
    expect(
      JSON.parse(v.stdout)
        .findings.filter((f: { level: string }) => f.level === 'pending')
        .map((f: { scope: string }) => f.scope),
    ).toEqual(['ap-south-1']);
    const bare = await c.ci(['scope', 'add', 'sa-east-1']);
    expect(bare.code).toBe(0);
    expect(c.read('scopes/sa-east-1.yaml')).toBe('kind: region\nservices: {}\n');
  });

  it.each([
    ['a bad scope name', ['scope', 'add', 'Ap_South'], 2, /scopes\/Ap_South\.yaml: "Ap_South" is not a scope name/],
    [
      'an existing scope',
      ['scope', 'add', 'us-east-1'],
      2,
      /scopes\/us-east-1\.yaml: already exists: scope us-east-1 is declared/,
    ],
    ['the global scope', ['scope', 'add', 'global'], 2, /scopes\/global\.yaml: already exists/],
    [
      'a bad service name',
      ['scope', 'add', 'ap-south-1', '--service', 'Web'],
      2,
      /scopes\/ap-south-1\.yaml: services\.Web: "Web" is not a service name/,
    ],
    [
      'a service named twice',
      ['scope', 'add', 'ap-south-1', '--service', 'api', '--service', 'api'],
      2,
      /--service "api" is given twice/,
    ],
    [
      'a name too long for its DNS names',
      ['scope', 'add', 'ap-south-1', '--service', 'a'.repeat(45)],
      2,
      /longer than 64 characters/,
    ],
  ])('refuses %s (exit 2), the store unchanged', async (_, args, code, says) => {
    expect(code).toBe(2);
    const before = hashTree(m.dir);
    const r = await m.ci(args as string[]);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(says);
    expect(r.stderr).not.toContain('    at ');
    expect(hashTree(m.dir)).toEqual(before);
  });

  it('refuses the name of a retired region (its record stays in bundles/)', async () => {
    const c = m.clone();
    fs.rmSync(c.path('scopes/us-east-1.yaml'));
    expect((await c.root(['retire', 'us-east-1', '--now', T, '--now-ahead'])).code).toBe(0);
    const before = hashTree(c.dir);
    const r = await c.ci(['scope', 'add', 'us-east-1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bundles\/us-east-1: .*record of a scope of that name/);
    expect(hashTree(c.dir)).toEqual(before);
  });
});

describe('the pull-request comment and the ceremony summary', () => {
  let m: FakeMesh;
  beforeAll(async () => {
    m = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api'] }, now: T });
    expect((await m.ci(['scope', 'add', 'ap-south-1', '--service', 'api'])).code).toBe(0);
  });

  it('verify --format markdown names what is pending and exactly what the ceremony will sign, and the ceremony signs that', async () => {
    const v = await m.ci(['verify', '--format', 'markdown', '--now', T, '--now-ahead']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^### ⏳ trellis verify: 0 error\(s\), 0 warning\(s\), 1 pending$/m);
    expect(v.stdout).toContain('**Pending the offline ceremony**: `ap-south-1`');
    const recipient = /ci: (age1\w+)/.exec(m.read('trellis.yaml'))![1]!;
    const summary = block(v.stdout, 'ap-south-1')!;
    expect(summary).toContain(`- subject: \`O=test, OU=ap-south-1, CN=ap-south-1 intermediate ${compact(T)}\``);
    expect(summary).toContain(
      `- validity: ${at(T, -MINUTE)} → ${at(T, 3 * 365 * DAY)} (3y from the ceremony; shown as of this run), ` +
        `CA pathLen 0, key ecdsa-p256`,
    );
    expect(summary).toContain(
      'permitted DNS `ap-south-1.mesh.example`, URI host `ap-south-1.mesh.example`; excluded IP `0.0.0.0/0`, `::/0`',
    );
    expect(summary).toContain(`- key encrypted to the CI recipient only: \`${recipient}\``);
    expect((await m.ci(['verify', '--json', '--format', 'markdown'])).code).toBe(2);

    // The ceremony at the same instant prints the very same block, then mints exactly that certificate.
    const c = m.clone();
    const r = await c.root(['intermediate', '--pending', '--now', T, '--now-ahead']);
    expect(r.code, r.stderr).toBe(0);
    expect(block(r.stdout, 'ap-south-1')).toBe(summary);
    const cert = parseCertificate(c.read('bundles/ap-south-1/intermediate.pem'));
    expect(cert.subject).toBe(`O=test, OU=ap-south-1, CN=ap-south-1 intermediate ${compact(T)}`);
    expect(stamp(cert.notAfter)).toBe(at(T, 3 * 365 * DAY));
    const text = (
      await tool('openssl', ['x509', '-noout', '-text', '-in', c.path('bundles/ap-south-1/intermediate.pem')])
    ).stdout;
    expect(text).toMatch(
      new RegExp(
        /X509v3 Name Constraints: critical/.source +
          /\s+Permitted:\s+DNS:ap-south-1\.mesh\.example\s+URI:ap-south-1\.mesh\.example/.source +
          /\s+Excluded:\s+IP:0\.0\.0\.0\/0\.0\.0\.0\s+IP:0:0:0:0:0:0:0:0\/0:0:0:0:0:0:0:0/.source,
      ),
    );
  });

  it('on a terminal, the ceremony signs only once the pending names are typed back', async () => {
    const c = m.clone();
    const r = await rootOnTty(c, ['intermediate', '--pending', '--now', T, '--now-ahead'], 'ap-south-1');
    expect(r.out).toContain('[answered]');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/minted ap-south-1 intermediate sha256:/);
    expect(fs.existsSync(c.path('bundles/ap-south-1/intermediate.pem'))).toBe(true);
  });

  it.each([
    ['a wrong name', 'ap-south-2'],
    ['nothing', ''],
    ['an extra name', 'ap-south-1 us-east-1'],
  ])('on a terminal, typing back %s aborts (exit 3) with the store unchanged', async (_, answer) => {
    const c = m.clone();
    const before = hashTree(c.dir);
    const r = await rootOnTty(c, ['intermediate', '--pending', '--now', T, '--now-ahead'], answer);
    expect(r.out).toContain('[answered]');
    expect(r.code, r.out).toBe(3);
    expect(r.out).toContain('#### ap-south-1'); // the summary came first
    expect(r.out).toMatch(/are not the scopes this ceremony signs \(ap-south-1\): nothing was signed/);
    expect(r.out).not.toContain('minted');
    expect(hashTree(c.dir)).toEqual(before);
  });

  it('--yes on a terminal signs without asking; without a terminal the ceremony proceeds as before (scripted ceremonies)', async () => {
    const c = m.clone();
    const r = await rootOnTty(c, ['intermediate', 'ap-south-1', '--yes', '--now', T, '--now-ahead'], 'unused');
    expect(r.out).toContain('[no prompt]');
    expect(r.code, r.out).toBe(0);
    const d = m.clone();
    const piped = await d.root(['intermediate', '--pending', '--now', T, '--now-ahead']);
    expect(piped.code).toBe(0);
    expect(piped.stdout).not.toContain(PROMPT);
    expect(piped.stderr).not.toContain(PROMPT);
  });
});
