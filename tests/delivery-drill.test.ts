/**
 * Across a planned intermediate rotation, deploy at every step to real nginx
 * and haproxy while traffic runs between the hosts: zero failed requests.
 * It runs on the real clock, compressed: leaves live 90 seconds, the
 * propagation window is 20 seconds, and CI's schedule (renew, then deploy)
 * runs every 10 seconds, so publish → switch → retire takes about two
 * minutes. (A simulated clock does not work here: nginx workers do not
 * follow a libfaketime clock file under load.)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { REPO } from './helpers/cli.js';
import { haproxyFor, nginxFor, waitForPort, type Terminator } from './helpers/servers.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-ddrill-'));
const env = {};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const servers: Terminator[] = [];

describe('drill: deploy at every phase of a planned intermediate rotation, traffic running', () => {
  let m: FakeMesh;
  const log: string[] = [];
  let tally: { total: number; failures: { pair: string; at: string; result: string }[] };

  beforeAll(async () => {
    m = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api', 'web'] }, leaves: false });
    const serve = (scope: string, service: string) => {
      const made = [nginxFor(root, `${scope}-${service}`, path.join(root, `n-${scope}-${service}`)), haproxyFor(root, `${scope}-${service}`, path.join(root, `h-${scope}-${service}`))];
      servers.push(...made);
      return made;
    };
    const api = serve('us-east-1', 'api');
    const control = serve('global', 'control');
    const clientDir = (s: string) => path.join(root, `client-${s}`);
    // The custodian allows each terminator's reload (named after its release directory) and the directories under root.
    await m.allow({ dir: { paths: [root] }, reload: Object.fromEntries(servers.map((t) => [path.basename(t.releaseDir), t.reload])) });
    const dirTargets = (ts: Terminator[]) => ts.map((t) => ({ type: 'dir', path: t.releaseDir, reload: path.basename(t.releaseDir) }));
    m.writeScope('us-east-1', [{ api: { ttl: '90s', deploy: dirTargets(api) } }, { web: { ttl: '90s', deploy: [{ type: 'dir', path: clientDir('web') }] } }]);
    m.writeScope('global', [{ control: { ttl: '90s', deploy: [...dirTargets(control), { type: 'dir', path: clientDir('control') }] } }]);
    const step = async (label: string) => {
      const r = await m.ci(['renew'], env);
      expect(r.code, r.stderr).toBe(0);
      const d = await m.ci(['deploy'], env);
      expect(d.code, `${label}: ${d.stdout}`).toBe(0);
      log.push(`${label}: ${r.stdout.match(/^phase .*/m)?.[0] ?? 'no phase step'}; ${d.stdout.trim().split('\n').at(-1)}`);
    };
    const startedAt = Date.now();
    await step('start');
    for (const t of servers) await waitForPort(t.port);

    const pairs = [
      ...api.map((t) => ({ name: `web → api (${t.kind})`, port: t.port, servername: 'api.us-east-1.mesh.example', clientDir: clientDir('web') })),
      ...control.map((t) => ({ name: `web → control (${t.kind})`, port: t.port, servername: 'control.global.mesh.example', clientDir: clientDir('web') })),
      ...api.map((t) => ({ name: `control → api (${t.kind})`, port: t.port, servername: 'api.us-east-1.mesh.example', clientDir: clientDir('control') })),
    ];
    const spec = { pairs, stopFile: path.join(root, 'stop'), resultFile: path.join(root, 'tally.json'), workers: 4 };
    fs.writeFileSync(path.join(root, 'load.json'), JSON.stringify(spec));
    const load = execa(path.join(REPO, 'node_modules/.bin/tsx'), [path.join(REPO, 'tests/helpers/load.ts'), path.join(root, 'load.json')], { env: { ...process.env, ...env }, reject: false });
    await new Promise((r) => setTimeout(r, 500));

    const begin = await m.root(['rotate', 'intermediate', 'us-east-1', '--propagation', '20s'], env);
    expect(begin.code, begin.stderr).toBe(0);
    await step('publish');
    const deadline = Date.now() + 300_000;
    while (!log.some((l) => l.includes('phase us-east-1: retire')) && Date.now() < deadline) {
      await sleep(10_000);
      await step(`+${Math.round((Date.now() - startedAt) / 1000)}s`);
    }
    await sleep(10_000);
    await step('after retire');
    fs.writeFileSync(spec.stopFile, '');
    await load;
    tally = JSON.parse(fs.readFileSync(spec.resultFile, 'utf8'));
  }, 420_000);

  afterAll(() => {
    for (const t of servers) t.stop();
  });

  it('the rotation ran its phases while deploys went out', () => {
    const phases = log.map((l) => l.match(/phase us-east-1: (\w+)/)?.[1]).filter(Boolean);
    expect(phases).toEqual(['switch', 'retire']);
  });
  it('zero failed requests between hosts, through nginx and haproxy, across every phase', () => {
    expect(tally.total).toBeGreaterThan(1000);
    expect(tally.failures).toEqual([]);
  });
});
