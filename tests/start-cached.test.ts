/**
 * The helpers start the test CLIs through scripts/dist/start-cached.cjs (V8's code cache), not `node BIN`. That is
 * only sound while the two are the same program: same exit code, same stdout, same stderr, for successes and
 * refusals, with a good cache, a stale one and a corrupt one, and for the ways an ES module's top level can end.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { newIdentity } from '@trellis/core';
import { scriptForm } from '../scripts/dist/build.mjs';
import { AGENT_BIN, baseEnv, CI_BIN, DRILL_BIN, nodeArgs, ROOT_BIN, type Env } from './helpers/cli.js';
import { at, RUN_NOW } from './helpers/clock.js';
import { FakeMesh } from './helpers/fake-mesh.js';

const T0 = at(RUN_NOW);

async function both(bin: string, args: string[], env: Env, cwd = os.tmpdir()) {
  const opts = {
    env: baseEnv(env) as NodeJS.ProcessEnv,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    cwd,
  } as const;
  // One after the other: most commands take the store's lock.
  const plain = await execa('node', [bin, ...args], opts);
  const cached = await execa('node', nodeArgs(bin, args), opts);
  const seen = (r: typeof plain) => ({ code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) });
  return { plain: seen(plain), cached: seen(cached) };
}

describe('a test CLI started from its code cache', () => {
  let m: FakeMesh;
  let stranger: string;
  beforeAll(async () => {
    m = await FakeMesh.create({ now: T0, scopes: { global: ['control'], 'us-east-1': ['api'] } });
    stranger = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-start-')), 'id');
    fs.writeFileSync(stranger, (await newIdentity()).identity, { mode: 0o600 }); // an identity the store does not know
  });

  it('prints what `node BIN` prints and exits as it does: commands, usage errors and refusals of every CLI', async () => {
    const ci = { CI: 'true', TRELLIS_CI_IDENTITY_FILE: m.ciIdentityFile };
    const root = { TRELLIS_ALLOW_ONLINE: '1', TRELLIS_ROOT_IDENTITY_FILE: m.rootIdentityFile };
    const cases: [string, string[], Env][] = [
      [CI_BIN, ['--store', m.dir, 'status', '--now', T0], ci],
      [CI_BIN, ['--store', m.dir, 'verify', '--now', T0], ci],
      [CI_BIN, ['--store', m.dir, 'plan', '--now', T0, '--json'], ci],
      [CI_BIN, ['--store', m.dir, 'renew', '--no-such-flag'], ci],
      [CI_BIN, ['--store', path.join(m.dir, 'missing'), 'status', '--json'], ci],
      [CI_BIN, ['--store', m.dir, 'verify', '--now', T0], { CI: 'true', TRELLIS_CI_IDENTITY_FILE: stranger }],
      [ROOT_BIN, ['--store', m.dir, 'status', '--now', T0], root],
      [ROOT_BIN, ['--store', m.dir, 'verify', '--now', T0], root],
      [ROOT_BIN, ['version'], {}],
      [AGENT_BIN, ['--help'], {}],
      [AGENT_BIN, ['install'], {}],
      [DRILL_BIN, ['--help'], {}],
    ];
    const codes = new Set<number | undefined>();
    for (const [bin, args, env] of cases) {
      const { plain, cached } = await both(bin, args, env);
      expect(cached, `${path.basename(bin)} ${args.join(' ')}`).toEqual(plain);
      codes.add(plain.code);
    }
    // The table reaches successes, usage errors and refusals, not one kind of ending.
    expect([...codes].sort()).toEqual(expect.arrayContaining([0, 1, 2]));
  });

  it('behaves the same when the cache is stale or corrupt: V8 is handed only a cache made from these bytes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-start-'));
    const bin = path.join(dir, 'trellis-ci.mjs');
    for (const f of ['trellis-ci.mjs', 'trellis-ci.script.js', 'trellis-ci.script.js.cache']) {
      fs.copyFileSync(path.join(path.dirname(CI_BIN), f), path.join(dir, f));
    }
    const cacheFile = path.join(dir, 'trellis-ci.script.js.cache');
    const good = fs.readFileSync(cacheFile);
    const args = ['--store', m.dir, 'status', '--now', T0];
    const env = { CI: 'true', TRELLIS_CI_IDENTITY_FILE: m.ciIdentityFile };
    const stale = Buffer.from(good);
    stale[0]! ^= 1; // made from other bytes
    const corrupt = Buffer.from(good);
    corrupt.fill(7, 32 + 64, 32 + 4096); // the right digest over a damaged V8 payload
    for (const cache of [good, stale, corrupt, undefined]) {
      if (cache) fs.writeFileSync(cacheFile, cache);
      else fs.rmSync(cacheFile);
      const { plain, cached } = await both(bin, args, env);
      expect(plain.code).toBe(0);
      expect(cached).toEqual(plain);
    }
  });

  it('ends as an ES module ends: a rejected top level exits 1, an unsettled one 13, an explicit exit with its code', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-start-'));
    const programs: [string, string, number][] = [
      ['meta', 'import path from "node:path";\nconsole.log(path.basename(import.meta.url), process.argv.length);', 0],
      [
        'await',
        'import { setTimeout as wait } from "node:timers/promises";\nawait wait(10);\nconsole.log("after");',
        0,
      ],
      ['throws', 'console.log("before");\nawait Promise.resolve();\nthrow new Error("thrown at the top level");', 1],
      ['unsettled', 'await new Promise(() => {});', 13],
      ['exits', 'process.exitCode = 4;\nawait new Promise(() => {});', 4],
      ['exit-zero', 'setTimeout(() => process.exit(0), 10);\nawait new Promise(() => {});', 0],
    ];
    for (const [name, body, code] of programs) {
      const bin = path.join(dir, `${name}.mjs`);
      const source = `#!/usr/bin/env node\n${body}\n`;
      fs.writeFileSync(bin, source);
      fs.writeFileSync(
        path.join(dir, `${name}.script.js`),
        scriptForm(source, (source.match(/^import /gm) ?? []).length),
      );
      const { plain, cached } = await both(bin, ['an-argument'], {});
      expect(plain.code, name).toBe(code);
      expect(cached.code, name).toBe(code);
      expect(cached.stdout, name).toBe(plain.stdout);
      if (code === 1) expect(cached.stderr, name).toMatch(/Error: thrown at the top level/);
    }
  });

  it("refuses a script form that imports anything but Node's own modules", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-start-'));
    const source = '#!/usr/bin/env node\nimport { parse } from "yaml";\nconsole.log(parse("a: 1"));\n';
    fs.writeFileSync(path.join(dir, 'x.mjs'), source);
    fs.writeFileSync(path.join(dir, 'x.script.js'), scriptForm(source, 1));
    const r = await execa('node', nodeArgs(path.join(dir, 'x.mjs'), []), { reject: false, stdin: 'ignore' });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/yaml: not one of Node's own modules/);
  });

  it('counts imports against esbuild: a line it did not make, or one it made and the form missed, fails the build', () => {
    const source = '#!/usr/bin/env node\nimport fs from "node:fs";\nconst s = `\nimport x from "node:os";\n`;\n';
    expect(() => scriptForm(source, 1)).toThrow(/2 imports matched, esbuild made 1/);
    expect(() => scriptForm('import { default as fs } from "node:fs";\n', 1)).toThrow(/a named default import/);
    // Line numbers are kept: stack traces name the bundle's own lines.
    const form = String(scriptForm('#!/usr/bin/env node\nimport fs from "node:fs";\nline3;\n', 1));
    expect(form.split('\n')[2]).toBe('line3;');
  });
});
