/**
 * The GitHub workflow templates (scripts/ci/github/): checked by a workflow
 * validator from npm (@action-validator/cli), then the scheduled renew run
 * here as GitHub would run it: the scopes job, the shard matrix (one job per
 * scope, concurrently, each on its own clone), the merge of the shards, the
 * compose matrix (one job per scope, each with its scope's identity only),
 * then publish, against a local bare origin. The local runner (tests/helpers/workflow.ts) stands in for
 * actions/checkout with a clone and for the repository's action (`uses: ./`)
 * with trellis-ci and the same args.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { execa } from 'execa';
import { newIdentity } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { REPO, baseEnv, tool, trellisCi, AGENT_BIN } from './helpers/cli.js';
import { git, mustGit, publishAsOrigin } from './helpers/git.js';
import { matrixOf, runJob, type Context, type JobResult, type Workflow } from './helpers/workflow.js';

const TEMPLATES = path.join(REPO, 'scripts/ci/github');
const VALIDATOR = path.join(REPO, 'node_modules/.bin/action-validator');
const load = (f: string) =>
  parse(fs.readFileSync(path.join(TEMPLATES, f), 'utf8')) as Workflow & {
    on: Record<string, unknown>;
    permissions: Record<string, string>;
  };

/** Runs one `run:` step of renew.yml in bash in `cwd`, as the runner would (GITHUB_OUTPUT a file). */
async function runStep(job: string, name: string, cwd: string): Promise<{ code: number; out: string; output: string }> {
  const step = load('renew.yml').jobs[job]!.steps.find((s) => s.name === name || s.id === name)!;
  const output = path.join(cwd, '.github-output');
  fs.writeFileSync(output, '');
  const r = await execa('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', step.run!], {
    cwd,
    reject: false,
    env: { PATH: process.env.PATH!, GITHUB_OUTPUT: output },
    extendEnv: false,
  });
  return { code: r.exitCode ?? -1, out: `${r.stdout}${r.stderr}`, output: fs.readFileSync(output, 'utf8') };
}

describe('renew.yml guards what a pull request names', () => {
  it('a scope file whose name is not one whole scope name (a newline inside) stops the scopes job: no matrix entry, no secret name chosen', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-wf-names-'));
    fs.mkdirSync(path.join(dir, 'scopes'));
    fs.writeFileSync(path.join(dir, 'scopes/us-east-1.yaml'), 'kind: region\n');
    const fine = await runStep('scopes', 'list', dir);
    expect(fine.code, fine.out).toBe(0);
    expect(fine.output).toContain('{"scope":"us-east-1","secret":"TRELLIS_CI_IDENTITY_US_EAST_1"}');
    for (const bad of ['ok\nx","secret":"TRELLIS_CI_IDENTITY"}', '-lead', 'UPPER']) {
      const f = path.join(dir, 'scopes', `${bad}.yaml`);
      fs.writeFileSync(f, 'kind: region\n');
      const r = await runStep('scopes', 'list', dir);
      expect(r.code, `${JSON.stringify(bad)}: ${r.out}`).toBe(1);
      expect(r.out).toMatch(/a scope file is not named for a scope/);
      expect(r.output).toBe('');
      fs.rmSync(f);
    }
  });

  it('a commit that tracks anything under .trellis/ (a symlink rerouting keys) stops every shard before trellis-ci runs', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-wf-work-'));
    await mustGit(dir, ['init', '-q']);
    const clean = await runStep('shard', 'refuse a tracked work area', dir);
    expect(clean.code, clean.out).toBe(0);
    fs.mkdirSync(path.join(dir, '.trellis/out'), { recursive: true });
    fs.symlinkSync('../../bundles/us-east-1', path.join(dir, '.trellis/out/us-east-1'));
    await mustGit(dir, ['add', '-f', '.trellis/out/us-east-1']);
    const r = await runStep('shard', 'refuse a tracked work area', dir);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/files under \.trellis\/ are tracked/);
  });
});

describe('workflow templates pass the validator', () => {
  it.each(['verify.yml', 'renew.yml', 'probe.yml'])('%s is a valid workflow', async (f) => {
    const r = await tool(VALIDATOR, [path.join(TEMPLATES, f)]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
  });

  it('the validator refuses a template with a mistyped event (it is not a rubber stamp)', async () => {
    const bad = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-wf-')), 'verify.yml');
    fs.writeFileSync(
      bad,
      fs.readFileSync(path.join(TEMPLATES, 'verify.yml'), 'utf8').replace('  pull_request:', '  pull_requests:'),
    );
    const r = await tool(VALIDATOR, [bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Additional property 'pull_requests' is not allowed/);
  });

  it('the pull-request workflow holds no secret and only reads; no script splices an expression', () => {
    const pr = fs.readFileSync(path.join(TEMPLATES, 'verify.yml'), 'utf8');
    expect(pr).not.toMatch(/secrets\./);
    expect(load('verify.yml').permissions).toEqual({ contents: 'read' });
    for (const f of ['verify.yml', 'renew.yml', 'probe.yml']) {
      for (const [name, job] of Object.entries(load(f).jobs)) {
        for (const s of job.steps) if (s.run) expect(s.run, `${f} ${name}: ${s.name}`).not.toMatch(/\$\{\{/);
      }
    }
    const verifyArgs = load('verify.yml')
      .jobs.verify!.steps.filter((s) => s.uses === './')
      .map((s) => s.with?.args);
    expect(verifyArgs).toEqual(['verify', 'plan']);
  });
});

describe('probe.yml keeps the identity away from the handshake', () => {
  it('secrets reach only the certify matrix, as ci-identity inputs; the probe job holds none and runs handshake', () => {
    const wf = load('probe.yml');
    const withSecrets = Object.entries(wf.jobs).filter(([, j]) => JSON.stringify(j).includes('secrets'));
    expect(withSecrets.map(([n]) => n)).toEqual(['certify']);
    for (const s of wf.jobs.certify!.steps)
      if (JSON.stringify(s).includes('secrets')) expect(Object.keys(s.with ?? {})).toContain('ci-identity');
    const probe = wf.jobs.probe!;
    expect(JSON.stringify(probe)).not.toMatch(/secrets|ci-identity/);
    expect(probe.steps.filter((s) => s.uses === './').map((s) => s.with?.args)).toEqual([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub expression, as the template writes it
      'probe handshake --scope ${{ matrix.scope }}',
    ]);
  });
});

describe('the scheduled renew, run locally as the workflow runs', () => {
  let mesh: FakeMesh;
  let work: string;
  let origin: string;
  let target: string;
  let sha: string;
  let host: { identity: string; recipient: string };
  const regions: Record<string, { identity: string; recipient: string }> = {};
  const day = 86_400_000;
  // Real time: the workflow passes no --now. The mesh was set up four days ago, us-east-1 rotated then and switched
  // two hours later, so today every 24h leaf has expired and its retire gate is open.
  const T0 = new Date(Math.floor((Date.now() - 4 * day) / 60_000) * 60_000);
  const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

  beforeAll(async () => {
    const svc = (n: string, extra: Record<string, unknown> = {}) => ({ [n]: { ttl: '24h', ...extra } });
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-wf-run-'));
    target = path.join(work, 'hosts', 'us-east-1-api');
    mesh = await FakeMesh.create({
      now: iso(T0),
      scopes: { global: [svc('control')], 'us-east-1': [svc('api')], 'eu-west-1': [svc('api')] },
    });
    mesh.writeScope('us-east-1', [svc('api', { deploy: [{ type: 'dir', path: target }] })]);
    mesh.writeScope('eu-west-1', [svc('api', { deploy: [{ type: 'sealed', host: 'web-1' }] })]);
    host = await newIdentity();
    await mesh.allow(
      { dir: { paths: [path.join(work, 'hosts')] }, sealed: { 'web-1': { recipient: host.recipient } } },
      { now: iso(T0) },
    );
    expect(
      (await mesh.root(['rotate', 'intermediate', 'us-east-1', '--propagation', '1h', '--now', iso(T0), '--now-ahead']))
        .code,
    ).toBe(0);
    expect(
      (await mesh.ci(['renew', '--now', iso(new Date(T0.getTime() + 2 * 3_600_000)), '--now-ahead'])).stdout,
    ).toContain('phase us-east-1: switch');
    // us-east-1 and eu-west-1 each get their own CI identity (confirmed, then rekeyed); global stays on the shared one.
    for (const s of ['us-east-1', 'eu-west-1']) regions[s] = await newIdentity();
    const cfg = parse(fs.readFileSync(mesh.path('trellis.yaml'), 'utf8')) as { recipients: Record<string, unknown> };
    cfg.recipients.ciScopes = {
      'us-east-1': regions['us-east-1']!.recipient,
      'eu-west-1': regions['eu-west-1']!.recipient,
    };
    mesh.write('trellis.yaml', stringify(cfg));
    expect((await mesh.root(['confirm', '--confirm-recipients'])).code).toBe(0);
    const rekey = await mesh.ci(['rekey']);
    expect(rekey.code, rekey.stderr).toBe(0);
    origin = path.join(work, 'origin.git');
    await publishAsOrigin(mesh.dir, origin);
    sha = (await mustGit(origin, ['rev-parse', 'main'])).trim();
  });

  it("no job holds more than one scope's CI identity: secrets reach only ci-identity inputs of the scope matrices", () => {
    const text = fs.readFileSync(path.join(TEMPLATES, 'renew.yml'), 'utf8');
    expect(text).not.toMatch(/TRELLIS_CI_IDENTITY_COMPOSE/);
    for (const line of text.split('\n').filter((l) => /secrets/.test(l) && !l.trim().startsWith('#'))) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the workflow's own ${{ }} expression, as GitHub reads it.
      expect(line.trim()).toBe('ci-identity: ${{ secrets[matrix.secret] || secrets.TRELLIS_CI_IDENTITY }}');
    }
    const jobs = load('renew.yml').jobs;
    const holding = Object.entries(jobs)
      .filter(([, j]) => j.steps.some((s) => s.with?.['ci-identity']))
      .map(([n]) => n);
    expect(holding.sort()).toEqual(['compose', 'shard']);
    for (const n of holding) expect(JSON.stringify(jobs[n]!.strategy?.matrix)).toContain('needs.scopes.outputs.shards');
  });

  it('scopes → a shard job per scope → renewed → a compose job per scope (concurrently, own identities) → publish: conflict-free, committed to main, verified, deployed; then a pull request verified', async () => {
    const wf = load('renew.yml');
    // Each separated region's jobs get its own secret; global's fall back to the shared one. No job gets more.
    const shared = fs.readFileSync(mesh.ciIdentityFile, 'utf8');
    const own = {
      TRELLIS_CI_IDENTITY_US_EAST_1: `${regions['us-east-1']!.identity}\n`,
      TRELLIS_CI_IDENTITY_EU_WEST_1: `${regions['eu-west-1']!.identity}\n`,
    };
    const ctx: Context = {
      github: { sha, run_id: '4242', ref_name: 'main' },
      secrets: { TRELLIS_CI_IDENTITY: shared, ...own },
      needs: {},
    };
    const identityOf: Record<string, string> = {
      global: shared,
      'us-east-1': own.TRELLIS_CI_IDENTITY_US_EAST_1,
      'eu-west-1': own.TRELLIS_CI_IDENTITY_EU_WEST_1,
    };
    /** Every identity a job's steps were given is its scope's (none for a job of no scope). */
    const heldOnly = (r: JobResult, scope?: string) => {
      const held = [...new Set(r.log.map((l) => l.identity).filter((x): x is string => x !== undefined))];
      expect(held, `${r.log[0]?.job} ${scope ?? ''}`).toEqual(scope ? [identityOf[scope]] : []);
    };
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, TRELLIS_ACTOR: 'test' };
    const artifacts = path.join(work, 'artifacts');
    const run = (name: string, c: Context, ws: string) =>
      runJob({ name, job: wf.jobs[name]!, ctx: c, workspace: path.join(work, ws), origin, artifacts, env });
    const failures = (r: JobResult) =>
      r.log.filter((l) => l.code !== 0).map((l) => `${l.job}/${l.step}: ${l.stderr}${l.stdout}`);

    const scopes = await run('scopes', ctx, 'runner-scopes');
    expect(failures(scopes)).toEqual([]);
    expect(JSON.parse(scopes.outputs.scopes!).sort()).toEqual(['eu-west-1', 'global', 'us-east-1']);

    ctx.needs.scopes = { outputs: scopes.outputs, result: scopes.result };
    const combos = matrixOf(wf.jobs.shard!, ctx);
    expect(combos.map((c) => c.scope).sort()).toEqual(['eu-west-1', 'global', 'us-east-1']);
    expect(combos.find((c) => c.scope === 'us-east-1')!.secret).toBe('TRELLIS_CI_IDENTITY_US_EAST_1');
    // A region shard whose own secret is missing falls back to the shared identity, which trellis-ci refuses (exit 3):
    // it opens global's key.
    const { TRELLIS_CI_IDENTITY_US_EAST_1: _, ...withoutOwn } = ctx.secrets;
    const fallback = await run(
      'shard',
      { ...ctx, secrets: withoutOwn, matrix: combos.find((c) => c.scope === 'us-east-1')! },
      'runner-shard-fallback',
    );
    const refused = fallback.log.find((l) => l.command?.startsWith('trellis-ci renew'))!;
    expect([fallback.result, refused.code]).toEqual(['failure', 3]);
    expect(refused.stderr).toMatch(/also opens the intermediate key of global/);
    expect(fallback.log.find((l) => l.step === "push the shard's commit to its own branch")!.kind).toBe('skipped');
    const shards = await Promise.all(combos.map((m) => run('shard', { ...ctx, matrix: m }, `runner-shard-${m.scope}`)));
    for (const s of shards) expect(failures(s)).toEqual([]);
    const renewLog = (scope: string) =>
      shards[combos.findIndex((c) => c.scope === scope)]!.log.find((l) => l.command?.startsWith('trellis-ci renew'))!;
    expect(renewLog('us-east-1').command).toBe('trellis-ci renew --scope us-east-1 --shard');
    expect(renewLog('us-east-1').stdout).toContain('phase us-east-1: retire');
    // The shard's leaf reached its host, and no plaintext key stayed on any runner.
    // Every deploy on the record: the step with the scope's identity signed each release digest, the keyless step
    // shipped exactly that.
    const usShard = shards[combos.findIndex((c) => c.scope === 'us-east-1')]!.log;
    const recorded = usShard.find((l) => l.command?.includes('--record-only'))!;
    expect([recorded.command, recorded.identity]).toEqual([
      'trellis-ci deploy --scope us-east-1 --type dir ssh kubernetes --record-only',
      identityOf['us-east-1'],
    ]);
    expect(recorded.stdout).toMatch(/^recorded +us-east-1\/api +dir:\S+ +sha256:[0-9a-f]{64}$/m);
    const deployed = usShard.find((l) => l.command?.includes('--recorded'))!;
    expect([deployed.command, deployed.identity]).toEqual([
      'trellis-ci deploy --scope us-east-1 --type dir ssh kubernetes --wipe-out --recorded',
      undefined,
    ]);
    expect(deployed.stdout).toMatch(/^installed .*dir:/m);
    expect(deployed.stdout).toContain('deploy on the record');
    for (const c of combos)
      expect(fs.existsSync(path.join(work, `runner-shard-${c.scope}`, '.trellis/out'))).toBe(false);
    const branches = (await mustGit(origin, ['for-each-ref', '--format=%(refname:short)', 'refs/heads/trellis-shard/']))
      .trim()
      .split('\n')
      .sort();
    expect(branches).toEqual([
      'trellis-shard/4242/eu-west-1',
      'trellis-shard/4242/global',
      'trellis-shard/4242/us-east-1',
    ]);
    const installedBefore = fs.readlinkSync(path.join(target, 'current'));
    // The eu-west-1 shard sealed its leaf for its host and handed it on; the host's agent installs it under the pinned
    // roots.
    const bundle = path.join(artifacts, 'sealed-eu-west-1', 'eu-west-1/api/web-1.age');
    const agent = await execa(
      'node',
      [
        AGENT_BIN,
        'install',
        '--bundle',
        bundle,
        '--dir',
        path.join(work, 'web-1/api'),
        '--roots',
        mesh.path('bundles/root/roots.pem'),
        '--expect',
        'eu-west-1/api',
      ],
      { reject: false, extendEnv: false, env: baseEnv({ TRELLIS_AGENT_IDENTITY: host.identity }) },
    );
    expect(agent.exitCode, String(agent.stderr)).toBe(0);
    expect(fs.readFileSync(path.join(work, 'web-1/api/current/cert.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');

    for (const [i, c] of combos.entries()) heldOnly(shards[i]!, c.scope);

    ctx.needs.shard = { outputs: {}, result: 'success' };
    const renewed = await run('renewed', ctx, 'runner-renewed');
    expect(failures(renewed)).toEqual([]);
    heldOnly(renewed);
    // The merged commit: one octopus merge whose parents are the three shards' commits (git fast-forwards to the
    // first).
    const parents = (await mustGit(origin, ['log', '--format=%P', '-n', '1', renewed.outputs.sha!]))
      .trim()
      .split(' ')
      .sort();
    const tips = await Promise.all(
      combos.map(async (c) =>
        (await mustGit(path.join(work, `runner-shard-${c.scope}`), ['rev-parse', 'HEAD'])).trim(),
      ),
    );
    expect(parents).toEqual(tips.sort());

    ctx.needs.renewed = { outputs: renewed.outputs, result: renewed.result };
    const composeCombos = matrixOf(wf.jobs.compose!, ctx);
    expect(composeCombos).toEqual(combos);
    // A region compose job whose own secret is missing falls back to the shared identity: refused (exit 3), nothing
    // pushed.
    const composeFallback = await run(
      'compose',
      { ...ctx, secrets: withoutOwn, matrix: combos.find((c) => c.scope === 'us-east-1')! },
      'runner-compose-fallback',
    );
    const composeRefused = composeFallback.log.find((l) => l.command?.startsWith('trellis-ci compose'))!;
    expect([composeFallback.result, composeRefused.code]).toEqual(['failure', 3]);
    expect(composeRefused.stderr).toMatch(/also opens the intermediate key of global/);
    expect(composeFallback.log.find((l) => l.step === "push the scope's composition to its own branch")!.kind).toBe(
      'skipped',
    );
    const composed = await Promise.all(
      combos.map((m) => run('compose', { ...ctx, matrix: m }, `runner-compose-${m.scope}`)),
    );
    for (const [i, c] of combos.entries()) {
      expect(failures(composed[i]!)).toEqual([]);
      heldOnly(composed[i]!, c.scope);
      // Each compose job wrote its own scope's files only.
      const files = (
        await mustGit(path.join(work, `runner-compose-${c.scope}`), [
          'diff',
          '--name-only',
          renewed.outputs.sha!,
          'HEAD',
        ])
      )
        .trim()
        .split('\n')
        .filter(Boolean);
      for (const f of files) expect(f.startsWith(`bundles/${c.scope}/`), f).toBe(true);
    }
    const composeLog = (scope: string) =>
      composed[combos.findIndex((c) => c.scope === scope)]!.log.find((l) =>
        l.command?.startsWith('trellis-ci compose'),
      )!;
    expect(composeLog('global').command).toBe('trellis-ci compose --scope global');
    expect(composeLog('global').stdout).toContain('compose bundles/global/trust.pem');
    expect(composeLog('global').stdout).not.toMatch(/bundles\/(us-east-1|eu-west-1)\//);
    // eu-west-1 trusts no intermediate that changed: its job composes nothing, re-seals nothing, pushes nothing.
    expect(composeLog('eu-west-1').stdout).toContain(
      'nothing to compose: every bundle of eu-west-1 holds what its scope trusts',
    );
    const euSteps = composed[combos.findIndex((c) => c.scope === 'eu-west-1')]!.log;
    expect(euSteps.filter((l) => l.kind === 'skipped').map((l) => l.step)).toEqual([
      "seal the scope's recomposed bundles (trust-only releases)",
      'hand the recomposed sealed releases to the delivery',
      "push the scope's composition to its own branch",
    ]);
    const branchesComposed = (
      await mustGit(origin, ['for-each-ref', '--format=%(refname:short)', 'refs/heads/trellis-compose/'])
    )
      .trim()
      .split('\n')
      .sort();
    expect(branchesComposed).toEqual(['trellis-compose/4242/global', 'trellis-compose/4242/us-east-1']);

    ctx.needs.compose = { outputs: {}, result: 'success' };
    const publish = await run('publish', ctx, 'runner-publish');
    expect(failures(publish)).toEqual([]);
    heldOnly(publish);
    // compose changed bundles, so the recomposed trust was deployed after the commit.
    const trustDeploy = publish.log.find(
      (l) => l.command === 'trellis-ci deploy --type dir ssh kubernetes --recorded',
    )!;
    expect(trustDeploy.kind).toBe('action');
    expect(trustDeploy.stdout).toMatch(/^installed .*dir:/m);
    // The recomposed trust-only release was recorded by us-east-1's compose job, signed with its identity alone.
    const composeRecord = composed[combos.findIndex((c) => c.scope === 'us-east-1')]!.log.find((l) =>
      l.command?.includes('--record-only'),
    )!;
    expect(composeRecord.stdout).toMatch(/^recorded +us-east-1\/api /m);
    expect(trustDeploy.stdout).toContain('deploy on the record');
    expect(trustDeploy.stdout).not.toMatch(/not on the record|not recorded in the ledgers/);

    // main now holds the merged, composed store; the run's branches are gone.
    for (const prefix of ['trellis-shard/', 'trellis-renewed/', 'trellis-compose/'])
      expect((await mustGit(origin, ['for-each-ref', `refs/heads/${prefix}`])).trim()).toBe('');
    // Every compose job's commit is on main, above the merged shards.
    const composeTips = (
      await Promise.all(
        combos.map(async (c) =>
          (await git(path.join(work, `runner-compose-${c.scope}`), ['log', '-1', '--format=%H %s'])).stdout.trim(),
        ),
      )
    ).filter((l) => l.includes('trellis compose --scope'));
    expect(composeTips.length).toBeGreaterThan(1);
    for (const t of composeTips)
      expect((await git(origin, ['merge-base', '--is-ancestor', t.split(' ')[0]!, 'main'])).code).toBe(0);
    const fresh = path.join(work, 'after');
    await mustGit(work, ['clone', '-q', origin, fresh]);
    const verify = await trellisCi(['--store', fresh, 'verify'], {
      env: { TRELLIS_CI_IDENTITY_FILE: mesh.ciIdentityFile },
    });
    expect(verify.code, verify.stdout).toBe(0);

    // The host's release is the one with the composed trust, and its leaf verifies against it (OpenSSL, -x509_strict).
    const current = path.join(target, 'current');
    expect(fs.readlinkSync(current)).not.toBe(installedBefore);
    expect(fs.readFileSync(path.join(current, 'trust.openssl.pem'), 'utf8')).toBe(
      fs.readFileSync(path.join(fresh, 'bundles/us-east-1/trust.openssl.pem'), 'utf8'),
    );
    const v = await tool('openssl', [
      'verify',
      '-x509_strict',
      '-purpose',
      'sslserver',
      '-CAfile',
      path.join(current, 'trust.openssl.pem'),
      path.join(current, 'cert.pem'),
    ]);
    expect(v.code, v.stderr).toBe(0);

    // A rerun of compose on main finds nothing: the next schedule's compose deploys nothing it need not.
    const again = await trellisCi(['--store', fresh, 'compose']);
    expect(again.stdout).toContain('nothing to compose');
    expect((await git(fresh, ['status', '--porcelain'])).stdout).toBe('');

    // A pull request adding a region: verify.yml's job passes and reports the scope pending its ceremony, with no
    // secret.
    const pr = path.join(work, 'contributor');
    await mustGit(work, ['clone', '-q', origin, pr]);
    fs.writeFileSync(path.join(pr, 'scopes/ap-south-1.yaml'), 'kind: region\nservices:\n  api: {}\n');
    await mustGit(pr, ['add', '-A']);
    await mustGit(pr, ['commit', '-qm', 'add ap-south-1']);
    await mustGit(pr, ['push', '-q', 'origin', 'HEAD:refs/heads/add-ap-south-1']);
    const head = (await mustGit(pr, ['rev-parse', 'HEAD'])).trim();
    const prJob = await runJob({
      name: 'verify',
      job: load('verify.yml').jobs.verify!,
      ctx: { github: { sha: head, run_id: '4243', ref_name: 'add-ap-south-1' }, secrets: {}, needs: {} },
      workspace: path.join(work, 'runner-pr'),
      origin,
      artifacts,
      env,
    });
    expect(failures(prJob)).toEqual([]);
    const [verified, planned] = prJob.log.filter((l) => l.kind === 'action');
    expect(verified!.stdout).toMatch(/… pending .*ap-south-1.*awaiting its intermediate/);
    expect(verified!.stdout).toMatch(/0 error\(s\), 0 warning\(s\), 1 pending/);
    expect(planned!.stdout).toContain('skip ap-south-1: pending its offline intermediate ceremony');
  }, 240_000); // a dozen CLI runs and git operations: slow on a loaded 2-core machine, never a timing assertion
});
