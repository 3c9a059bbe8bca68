/**
 * A fleet a deploy behind, with revocation enforced at the edge: nginx
 * (`ssl_crl`) and haproxy (`crl-file`) hosts check CRLs along the whole chain,
 * and so do their clients. Half the hosts receive each release one deploy
 * late, through publish → switch → retire of a planned intermediate rotation,
 * while every host calls every other in both directions: zero failed
 * handshakes. Before the next intermediate's leaf CRL shipped with the publish
 * release, the hosts a deploy behind refused every leaf minted at the switch
 * ("unable to get certificate CRL").
 *
 * It runs on the real clock, compressed: leaves live 45 seconds, the
 * propagation window is 8 seconds, CI's schedule (renew, then deploy) runs
 * every 4 seconds (docs/decisions.md: a libfaketime clock does not hold nginx
 * workers under load). Each step waits for the one before, so a host a deploy
 * behind always takes the publish release before the switch, however slow the
 * machine. It replaced the drill with every host current: the
 * current half of this fleet is that drill.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { REPO } from './helpers/cli.js';
import { haproxyFor, nginxFor, waitForPort, type Terminator } from './helpers/servers.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-edge-crl-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const servers: Terminator[] = [];

interface Host {
  scope: string;
  service: string;
  server: Terminator;
  /** Where deploy writes this host's release: the served directory, or for a host a deploy behind, a staging one. */
  target: string;
  behind: boolean;
}

/** A host a deploy behind takes the release staged at the previous deploy: copied in, `current` swapped, reloaded. */
async function catchUp(h: Host): Promise<void> {
  const staged = path.join(h.target, 'current');
  if (!fs.existsSync(staged)) return;
  // A fresh directory each time: copying over the release `current` names unlinks its files mid-request (cpSync's
  // force).
  fs.mkdirSync(path.join(h.server.releaseDir, 'releases'), { recursive: true });
  const dir = fs.mkdtempSync(path.join(h.server.releaseDir, 'releases', 'r-'));
  fs.cpSync(fs.realpathSync(staged), dir, { recursive: true });
  const link = `${dir}.link`;
  fs.symlinkSync(dir, link);
  fs.renameSync(link, path.join(h.server.releaseDir, 'current'));
  const r = await execa('sh', ['-c', h.server.reload], { reject: false });
  expect(r.exitCode, `reload ${h.scope}/${h.service}: ${r.stderr}`).toBe(0);
}

describe('a fleet half a deploy behind, CRLs checked along the chain at every edge', () => {
  let m: FakeMesh;
  const log: string[] = [];
  let tally: { total: number; failures: { pair: string; at: string; result: string }[] };
  let pairs: { name: string }[] = [];

  beforeAll(async () => {
    m = await FakeMesh.create({ scopes: { global: ['control', 'ops'], 'us-east-1': ['api', 'web'] }, leaves: false });
    const host = (scope: string, service: string, kind: 'nginx' | 'haproxy', behind: boolean): Host => {
      const served = path.join(root, `${scope}-${service}`);
      const server = (kind === 'nginx' ? nginxFor : haproxyFor)(root, `${scope}-${service}`, served);
      servers.push(server);
      return { scope, service, server, target: behind ? path.join(root, `stage-${scope}-${service}`) : served, behind };
    };
    // nginx and haproxy on both sides of the lag.
    const hosts = [
      host('us-east-1', 'api', 'nginx', false),
      host('global', 'control', 'haproxy', false),
      host('us-east-1', 'web', 'haproxy', true),
      host('global', 'ops', 'nginx', true),
    ];
    const current = hosts.filter((h) => !h.behind);
    await m.allow({
      dir: { paths: [root] },
      reload: Object.fromEntries(current.map((h) => [`${h.scope}-${h.service}`, h.server.reload])),
    });
    const deployOf = (h: Host) => ({
      type: 'dir',
      path: h.target,
      ...(h.behind ? {} : { reload: `${h.scope}-${h.service}` }),
    });
    for (const scope of ['global', 'us-east-1']) {
      m.writeScope(
        scope,
        hosts.filter((h) => h.scope === scope).map((h) => ({ [h.service]: { ttl: '45s', deploy: [deployOf(h)] } })),
      );
    }
    let deploys = 0;
    const step = async (label: string) => {
      // Hosts a deploy behind take what the previous deploy staged for them; then CI runs.
      for (const h of hosts.filter((x) => x.behind)) await catchUp(h);
      const r = await m.ci(['renew']);
      expect(r.code, r.stderr).toBe(0);
      const d = await m.ci(['deploy']);
      expect(d.code, `${label}: ${d.stdout}${d.stderr}`).toBe(0);
      deploys++;
      log.push(`${label}: ${r.stdout.match(/^phase .*/m)?.[0] ?? 'no phase step'}`);
    };
    await step('start');
    for (const h of hosts.filter((x) => x.behind)) await catchUp(h);
    for (const t of servers) await waitForPort(t.port);

    // Every host calls every other: both directions of every pair, each side judging the other with its own release.
    pairs = hosts.flatMap((c) =>
      hosts
        .filter((s) => s !== c)
        .map((s) => ({
          name:
            `${c.scope}/${c.service}${c.behind ? ' (behind)' : ''} → ` +
            `${s.scope}/${s.service}${s.behind ? ' (behind)' : ''} (${s.server.kind})`,
          port: s.server.port,
          servername: `${s.service}.${s.scope}.mesh.example`,
          clientDir: c.server.releaseDir,
        })),
    );
    const spec = {
      pairs,
      stopFile: path.join(root, 'stop'),
      resultFile: path.join(root, 'tally.json'),
      workers: 4,
      pauseMs: 100,
    };
    fs.writeFileSync(path.join(root, 'load.json'), JSON.stringify(spec));
    const load = execa(
      path.join(REPO, 'node_modules/.bin/tsx'),
      [path.join(REPO, 'tests/helpers/load.ts'), path.join(root, 'load.json')],
      { reject: false },
    );
    await sleep(500);

    const begin = await m.root(['rotate', 'intermediate', 'us-east-1', '--propagation', '8s']);
    expect(begin.code, begin.stderr).toBe(0);
    await step('publish');
    const deadline = Date.now() + 300_000;
    while (!log.some((l) => l.includes('phase us-east-1: retire')) && Date.now() < deadline) {
      await sleep(4_000);
      await step(`deploy ${deploys}`);
    }
    await sleep(4_000);
    await step('after retire');
    await sleep(2_000);
    fs.writeFileSync(spec.stopFile, '');
    const ended = await load;
    expect(
      fs.existsSync(spec.resultFile),
      `the load generator wrote no tally (exit ${ended.exitCode}): ${ended.stderr.slice(-2000)}`,
    ).toBe(true);
    tally = JSON.parse(fs.readFileSync(spec.resultFile, 'utf8'));
  }, 420_000);

  afterAll(() => {
    for (const t of servers) t.stop();
  });

  it('the rotation ran publish → switch → retire while half the fleet lagged a deploy', () => {
    expect(log.map((l) => l.match(/phase us-east-1: (\w+)/)?.[1]).filter(Boolean)).toEqual(['switch', 'retire']);
  });

  it('zero failed handshakes, every pair in both directions, through nginx and haproxy', () => {
    expect(pairs).toHaveLength(12);
    expect(tally.total).toBeGreaterThan(1000);
    expect(tally.failures.slice(0, 5)).toEqual([]);
  });
});
