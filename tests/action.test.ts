/**
 * The composite GitHub Action (action.yml): validated by @action-validator/cli,
 * then its steps run here as a runner would (each `run:` through bash with
 * `${{ inputs.x }}` substituted where GitHub substitutes it), against a real
 * store: renew and deploy to a dir target through the committed bundle and the
 * installer beside it, the identity only in the environment, args split
 * without expansion; and what it seals for a host, the release's
 * trellis-agent.mjs installs there. (That action/ is the build of this commit: tests/dist.test.ts.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { newIdentity } from '@trellis/core';
import { REPO } from './helpers/cli.js';
import { FakeMesh } from './helpers/fake-mesh.js';
import { buildRelease, noNodeModulesAbove } from './helpers/release.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-action-'));
const target = path.join(work, 'host', 'api');
const argvLog = path.join(work, 'node-argv.log');
let mesh: FakeMesh;
let identity: string;

interface Step {
  name?: string;
  shell?: string;
  run?: string;
  env?: Record<string, string>;
  'working-directory'?: string;
}
interface Action {
  inputs: Record<string, { required?: boolean; default?: string }>;
  runs: { using: string; steps: Step[] };
}

/** `${{ inputs.x }}` as GitHub evaluates it in the fields it evaluates (a missing input is its default, or empty). */
function expand(text: string, inputs: Record<string, string>): string {
  return text.replace(/\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}/g, (_, name: string) => inputs[name] ?? '');
}

/**
 * Runs the action's steps in order, as the runner does: bash --noprofile --norc -eo pipefail {file}; a failed step
 * stops the job.
 */
async function runAction(given: Record<string, string>, actionPath = REPO) {
  const action = parse(fs.readFileSync(path.join(actionPath, 'action.yml'), 'utf8')) as Action;
  const inputs = Object.fromEntries(Object.entries(action.inputs).map(([k, v]) => [k, given[k] ?? v.default ?? '']));
  const workspace = path.dirname(mesh.dir);
  // A node on PATH that logs its command line, so the test sees what a `ps` on the runner would.
  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(
    path.join(bin, 'node'),
    `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nexec '${process.execPath}' "$@"\n`,
    { mode: 0o755 },
  );
  let stdout = '';
  let stderr = '';
  for (const [i, step] of action.runs.steps.entries()) {
    expect(step.shell, `step ${i}`).toBe('bash');
    const script = path.join(work, `step-${i}.sh`);
    fs.writeFileSync(script, step.run!);
    const env: Record<string, string> = {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: work,
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: workspace,
      GITHUB_ACTION_PATH: actionPath,
      RUNNER_TEMP: work,
      ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase().replace(/ /g, '_')}`, v])),
      ...Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, expand(v, inputs)])),
    };
    const cwd = path.resolve(workspace, expand(step['working-directory'] ?? '.', inputs));
    const r = await execa('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], {
      cwd,
      env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
    });
    stdout += String(r.stdout);
    stderr += String(r.stderr);
    if (r.exitCode !== 0) return { code: r.exitCode ?? -1, step: i, stdout, stderr };
  }
  return { code: 0, step: -1, stdout, stderr };
}

let host: { identity: string; recipient: string };

beforeAll(async () => {
  host = await newIdentity();
  mesh = await FakeMesh.create({
    scopes: {
      global: [],
      'us-east-1': [
        { api: { deploy: [{ type: 'dir', path: target }] } },
        { web: { deploy: [{ type: 'sealed', host: 'web-1' }] } },
      ],
    },
  });
  await mesh.allow({ dir: { paths: [path.join(work, 'host')] }, sealed: { 'web-1': { recipient: host.recipient } } });
  identity = fs.readFileSync(mesh.ciIdentityFile, 'utf8');
});

describe('action.yml', () => {
  it('is a valid composite action (@action-validator/cli), and the validator does refuse a broken one', async () => {
    const ok = await execa(path.join(REPO, 'node_modules/.bin/action-validator'), [path.join(REPO, 'action.yml')], {
      reject: false,
    });
    expect(ok.exitCode, String(ok.stdout) + String(ok.stderr)).toBe(0);
    const broken = path.join(work, 'broken-action.yml');
    fs.writeFileSync(
      broken,
      fs.readFileSync(path.join(REPO, 'action.yml'), 'utf8').replace('using: composite', 'using: kompozit'),
    );
    expect(
      (await execa(path.join(REPO, 'node_modules/.bin/action-validator'), [broken], { reject: false })).exitCode,
    ).not.toBe(0);
  });

  it('never splices an input into a script: inputs reach the steps only through env and working-directory', () => {
    const action = parse(fs.readFileSync(path.join(REPO, 'action.yml'), 'utf8')) as Action;
    expect(action.runs.using).toBe('composite');
    for (const step of action.runs.steps) expect(step.run).not.toMatch(/\$\{\{/);
    expect(action.inputs['ci-identity']).toMatchObject({ required: false, default: '' });
  });

  it('renews and deploys through the committed bundle (installer.sh beside it), the identity only in the environment', async () => {
    fs.rmSync(argvLog, { force: true });
    const renew = await runAction({ args: 'renew --force', 'ci-identity': identity, 'working-directory': 'store' });
    expect(renew.code, renew.stderr).toBe(0);
    expect(renew.stdout).toMatch(/minted 2 lea(f|ves)/);
    const deploy = await runAction({
      args: `deploy --scope us-east-1 --sealed-out '${path.join(work, 'sealed')}'`,
      'ci-identity': identity,
      'working-directory': 'store',
    });
    expect(deploy.code, deploy.stderr).toBe(0);
    expect(deploy.stdout).toMatch(/installed/);
    expect(fs.readlinkSync(path.join(target, 'current'))).toMatch(/^releases\//);
    expect(fs.readFileSync(path.join(target, 'current', 'cert.pem'), 'utf8')).toBe(
      fs.readFileSync(mesh.out('us-east-1', 'api', 'cert.pem'), 'utf8'),
    );

    const log = fs.readFileSync(argvLog, 'utf8');
    expect(log).toContain(
      `${path.join(REPO, 'action/trellis-ci.mjs')} deploy --scope us-east-1 --sealed-out ${path.join(work, 'sealed')}`,
    );
    const secret = identity.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'))!;
    for (const text of [log, renew.stdout, renew.stderr, deploy.stdout, deploy.stderr])
      expect(text).not.toContain(secret);
  });

  it("what it sealed for a host, the release's trellis-agent.mjs installs there, run by node alone with installer.sh beside it", async () => {
    const bin = path.join(work, 'host-bin');
    fs.mkdirSync(bin);
    buildRelease(path.join(work, 'release'));
    for (const f of ['trellis-agent.mjs', 'installer.sh'])
      fs.copyFileSync(path.join(work, 'release', f), path.join(bin, f));
    expect(noNodeModulesAbove(bin)).toBe(true);
    const idFile = path.join(work, 'host.identity');
    fs.writeFileSync(idFile, host.identity, { mode: 0o600 });
    fs.writeFileSync(path.join(work, 'roots.pem'), mesh.read('bundles/root/roots.pem'));
    const dir = path.join(work, 'host', 'web');
    const r = await execa(
      'node',
      [
        path.join(bin, 'trellis-agent.mjs'),
        'install',
        '--bundle',
        path.join(work, 'sealed/us-east-1/web/web-1.age'),
        '--dir',
        dir,
        '--roots',
        path.join(work, 'roots.pem'),
        '--expect',
        'us-east-1/web',
      ],
      {
        cwd: bin,
        env: { PATH: process.env.PATH!, TRELLIS_AGENT_IDENTITY_FILE: idFile },
        extendEnv: false,
        reject: false,
        stdin: 'ignore',
      },
    );
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/us-east-1\/web .*installed releases\//);
    expect(fs.readFileSync(path.join(dir, 'current', 'key.pem'), 'utf8')).toBe(
      fs.readFileSync(mesh.out('us-east-1', 'web', 'key.pem'), 'utf8'),
    );
  });

  it('without ci-identity trellis-ci runs without one (verify still checks everything that needs no secret)', async () => {
    const r = await runAction({ args: 'verify', 'working-directory': 'store' });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/0 error\(s\)/);
  });

  it('splits args like shell words (quotes group) but expands nothing: no command substitution, no variables', async () => {
    const plan = await runAction({ args: `plan --scope 'us-east-1' --json`, 'working-directory': 'store' });
    expect(plan.code, plan.stderr).toBe(0);
    expect(() => JSON.parse(plan.stdout)).not.toThrow();
    const marker = path.join(work, 'pwned');
    const injected = await runAction({
      args: `status "$(touch ${marker})" \`touch ${marker}\` $HOME`,
      'working-directory': 'store',
    });
    expect(injected.code).toBe(2); // trellis-ci saw the literal words, as unknown arguments
    expect(injected.stderr).toContain('$(touch');
    expect(fs.existsSync(marker)).toBe(false);
  });

  it.each([
    ['empty args', '', /the args input is empty/],
    ['an unmatched quote', 'renew --scope "us-east-1', /unmatched quote/],
  ])('refuses %s with exit 2 before trellis-ci runs', async (_name, args, why) => {
    fs.rmSync(argvLog, { force: true });
    const r = await runAction({ args, 'ci-identity': identity, 'working-directory': 'store' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(why);
    expect(fs.readFileSync(argvLog, 'utf8')).not.toContain('trellis-ci.mjs');
  });

  it('stops at its first step when the checked-out bundle differs from its manifest', async () => {
    const copy = path.join(work, 'action-copy');
    fs.mkdirSync(path.join(copy, 'action'), { recursive: true });
    fs.copyFileSync(path.join(REPO, 'action.yml'), path.join(copy, 'action.yml'));
    for (const f of fs.readdirSync(path.join(REPO, 'action')))
      fs.copyFileSync(path.join(REPO, 'action', f), path.join(copy, 'action', f));
    fs.appendFileSync(path.join(copy, 'action', 'trellis-ci.mjs'), '\n');
    const r = await runAction({ args: 'verify', 'working-directory': 'store' }, copy);
    expect(r.code).not.toBe(0);
    expect(r.step).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/trellis-ci\.mjs: FAILED/);
  });
});
