/**
 * The fleet gate for real: six nginx and haproxy endpoints on 127.0.0.1 in two scopes, one of which misses the publish
 * deploy. With `--gate fleet` the switch holds and names it, opens once it is deployed, and the rotation completes with
 * every handshake of the matrix accepted after every step. The control, `--gate time`, switches anyway and the lagging
 * endpoint refuses the new leaves: the gate is what prevents the outage.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { importSigningKey, nodeCryptoSeam, serializeProbeRun } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { haproxyFor, nginxFor, request, waitForPort, type Client, type Terminator } from './helpers/servers.js';
import { hashTree } from './helpers/store-hash.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-fleet-'));
const TD = 'mesh.example';
const SERVICES: [scope: string, service: string][] = [
  ['global', 'g1'],
  ['global', 'g2'],
  ['global', 'g3'],
  ['us-east-1', 'a1'],
  ['us-east-1', 'a2'],
  ['us-east-1', 'a3'],
];
/** The endpoint that misses the publish deploy. */
const LAGGING = 'a1';
const servers = new Map<string, Terminator>();
let pristine: FakeMesh;

const rel = (svc: string) => path.join(root, `release-${svc}`);
const current = (svc: string) => fs.readlinkSync(path.join(rel(svc), 'current'));

/** Every service a dir target served by its own server, every server a confirmed probe endpoint. */
beforeAll(async () => {
  const m = await FakeMesh.create({
    // c1 is a client-only service: no endpoint, so no probe can prove it.
    scopes: { global: ['g1', 'g2', 'g3'], 'us-east-1': ['a1', 'a2', 'a3', 'c1'] },
    trustDomain: TD,
  });
  const reload: Record<string, string> = {};
  const probe: Record<string, unknown> = {};
  for (const [scope, svc] of SERVICES) {
    const t = svc.endsWith('3') ? haproxyFor(root, svc, rel(svc)) : nginxFor(root, svc, rel(svc));
    servers.set(svc, t);
    reload[svc] = t.reload;
    probe[svc] = { address: `127.0.0.1:${t.port}`, path: '/', spiffe: `spiffe://${scope}.${TD}/${svc}` };
  }
  for (const scope of ['global', 'us-east-1'])
    m.writeScope(scope, [
      ...SERVICES.filter(([s]) => s === scope).map(([, svc]) => ({
        [svc]: { deploy: [{ type: 'dir', path: rel(svc), reload: svc, check: svc }] },
      })),
      ...(scope === 'us-east-1' ? ['c1'] : []),
    ]);
  await m.allow({ dir: { paths: [root] }, reload, probe });
  const d = await m.ci(['deploy']);
  expect(d.code, d.stdout + d.stderr).toBe(0);
  for (const t of servers.values()) await waitForPort(t.port);
  pristine = m;
}, 240_000);

afterAll(() => {
  for (const t of servers.values()) t.stop();
});

function client(m: FakeMesh, scope: string, svc: string): Client {
  const f = (x: string) => fs.readFileSync(m.out(scope, svc, x), 'utf8');
  return { name: svc, key: f('key.pem'), chain: f('chain.pem'), ca: m.read('bundles/global/trust.openssl.pem') };
}

/** Every service calls every server its scope may reach (the boundary rule); the ones refused, as `from→to`. */
async function failedHandshakes(m: FakeMesh): Promise<string[]> {
  const failed: string[] = [];
  for (const [fromScope, from] of SERVICES)
    for (const [toScope, to] of SERVICES) {
      if (fromScope !== toScope && fromScope !== 'global' && toScope !== 'global') continue;
      const r = await request(servers.get(to)!.port, `${to}.${toScope}.${TD}`, client(m, fromScope, from));
      if (r !== 200) failed.push(`${from}→${to}`);
    }
  return failed;
}

/**
 * Live traffic: every service calls every server its scope may reach, over and over, as its host would: with the
 * leaf, key and trust bundle of the release its server holds, read at the last `use` (after each deploy).
 */
class Traffic {
  private clients = new Map<string, Client>();
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  readonly failures: string[] = [];
  requests = 0;
  use(): void {
    const held = (svc: string, f: string) => fs.readFileSync(path.join(rel(svc), 'current', f), 'utf8');
    this.clients = new Map(
      SERVICES.map(([, svc]) => [
        svc,
        { name: svc, key: held(svc, 'key.pem'), chain: held(svc, 'chain.pem'), ca: held(svc, 'trust.openssl.pem') },
      ]),
    );
  }
  start(): void {
    this.use();
    this.loop = (async () => {
      while (!this.stopped)
        for (const [fromScope, from] of SERVICES)
          for (const [toScope, to] of SERVICES) {
            if (fromScope !== toScope && fromScope !== 'global' && toScope !== 'global') continue;
            const r = await request(servers.get(to)!.port, `${to}.${toScope}.${TD}`, this.clients.get(from)!);
            this.requests++;
            if (r !== 200) this.failures.push(`${from}→${to}: ${r}`);
            // Steady, not flat out: the loop shares this process and the cores with the CLIs it waits on.
            await new Promise((ok) => setTimeout(ok, 10));
          }
    })();
  }
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

/** Deploys everything, then puts the lagging endpoint back on the release it had: it missed this deploy. */
async function deployAllBut(m: FakeMesh, lagging?: string): Promise<void> {
  const before = lagging ? current(lagging) : undefined;
  const d = await m.ci(['deploy']);
  expect(d.code, d.stdout + d.stderr).toBe(0);
  if (lagging && before) {
    const link = path.join(rel(lagging), 'current');
    fs.rmSync(link);
    fs.symlinkSync(before, link);
    const t = servers.get(lagging)!;
    const r = await import('execa').then((x) => x.execa('sh', ['-c', t.reload], { reject: false }));
    expect(r.exitCode).toBe(0);
  }
}

const phase = (m: FakeMesh, scope: string) => parse(m.read(`bundles/${scope}/state.yaml`)).phase as string;

async function probeAll(m: FakeMesh, keys: string) {
  const c = await m.ci(['probe', 'certify', '--out', keys]);
  expect(c.code, c.stderr).toBe(0);
  const noId = { TRELLIS_CI_IDENTITY_FILE: undefined };
  return {
    global: await m.ci(['probe', 'handshake', '--keys', keys, '--scope', 'global'], noId),
    region: await m.ci(['probe', 'handshake', '--keys', keys, '--scope', 'us-east-1'], noId),
  };
}

describe('a rotation gated by the fleet', () => {
  it('control (--gate time): the switch comes on time and the endpoint that missed the publish deploy refuses the new leaves', async () => {
    const m = pristine.clone();
    const traffic = new Traffic();
    traffic.start();
    expect((await m.root(['rotate', 'intermediate', 'us-east-1', '--propagation', '1s'])).code).toBe(0);
    await deployAllBut(m, LAGGING);
    traffic.use();
    await new Promise((r) => setTimeout(r, 1100));
    const r = await m.ci(['renew']);
    expect(r.code, r.stderr).toBe(0);
    expect(phase(m, 'us-east-1')).toBe('switch');
    await deployAllBut(m, LAGGING);
    traffic.use();
    await new Promise((r) => setTimeout(r, 1500));
    await traffic.stop();
    // Under live traffic the outage shows: calls to the lagging endpoint fail once the others present new leaves.
    expect(traffic.failures.some((f) => f.includes(`→${LAGGING}:`))).toBe(true);
    const failed = await failedHandshakes(m);
    // Every client of the new intermediate is refused by the lagging endpoint, and only there.
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((f) => f.endsWith(`→${LAGGING}`))).toBe(true);
    // The probe after the switch sees it, and check goes critical pointing to the abort.
    const p = await probeAll(m, path.join(root, 'keys-control'));
    expect(p.region.code).toBe(1);
    expect(p.region.stdout).toMatch(new RegExp(`^${LAGGING} .*NOT ready`, 'm'));
    const ck = await m.ci(['check']);
    expect(ck.code).toBe(2);
    expect(ck.stdout).toMatch(
      new RegExp(`CRITICAL[\\s\\S]*rotate intermediate us-east-1 --abort[^\\n]*refusing: ${LAGGING} `),
    );
    const st = await m.ci(['status']);
    expect(st.stdout).toMatch(new RegExp(`REFUSING clients of the new intermediate: ${LAGGING} `));
  }, 240_000);

  it('--gate fleet: the switch holds and names the lagging endpoint, opens once it is deployed, and no handshake fails', async () => {
    const m = pristine.clone();
    await deployAllBut(m); // the control left the servers on its releases
    expect(await failedHandshakes(m)).toEqual([]);
    const traffic = new Traffic();
    traffic.start();
    const rot = await m.root(['rotate', 'intermediate', 'us-east-1', '--propagation', '1s', '--gate', 'fleet']);
    expect(rot.code, rot.stderr).toBe(0);
    expect(parse(m.read('bundles/us-east-1/state.yaml')).rotation.gate).toBe('fleet');
    await deployAllBut(m, LAGGING);
    traffic.use();
    expect(await failedHandshakes(m)).toEqual([]);
    await new Promise((r) => setTimeout(r, 1100));

    const keys = path.join(root, 'keys-fleet');
    const p1 = await probeAll(m, keys);
    expect(p1.global.code, p1.global.stdout + p1.global.stderr).toBe(0);
    expect(p1.region.code).toBe(1);
    expect(p1.region.stderr).toMatch(/peer-failed/);
    const held = await m.ci(['renew']);
    expect(held.code, held.stderr).toBe(0);
    expect(phase(m, 'us-east-1')).toBe('publish');
    const st = await m.ci(['status']);
    expect(st.stdout).toMatch(new RegExp(`us-east-1[\\s\\S]*held by the fleet[\\s\\S]*${LAGGING}`));
    expect(st.stdout).toMatch(/not proven by a probe \(time gates only\): us-east-1\/c1$/m);
    const ck = await m.ci(['check']);
    expect(ck.stdout + ck.stderr).toMatch(new RegExp(`WARN[^\\n]*us-east-1[^\\n]*${LAGGING}`));

    await deployAllBut(m); // the lagging endpoint catches up
    traffic.use();
    const p2 = await probeAll(m, keys);
    expect(p2.region.code, p2.region.stdout).toBe(0);
    const sw = await m.ci(['renew']);
    expect(sw.code, sw.stderr).toBe(0);
    expect(phase(m, 'us-east-1')).toBe('switch');
    const entry = m
      .read('bundles/us-east-1/ledger.jsonl')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .at(-1);
    expect(entry.details.phase).toBe('switch');
    expect(entry.details.fleet.length).toBeGreaterThan(0);
    // The rotation's evidence names the runs its switch rests on.
    const evidence = fs.readdirSync(m.path('bundles/us-east-1/evidence')).find((f) => f.endsWith('rotation.json'))!;
    const steps = JSON.parse(m.read(`bundles/us-east-1/evidence/${evidence}`)).steps;
    expect(steps.map((x: { note: string }) => x.note).join('\n')).toContain(
      `the fleet ready by probe runs ${entry.details.fleet.join(', ')}`,
    );
    await deployAllBut(m);
    traffic.use(); // the services now present the leaves the switch minted
    expect(await failedHandshakes(m)).toEqual([]);
    const v = await m.ci(['verify']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    // verify judges the switch again on what it cites: a cited run re-signed (with a real probe key) to say an
    // endpoint refused the next intermediate's clients is named, though its signature holds.
    const forged = m.clone();
    const citedId = (entry.details.fleet as string[]).find((id) =>
      fs.existsSync(forged.path(`bundles/us-east-1/probes/${id}.json`)),
    )!;
    const citedFile = forged.path(`bundles/us-east-1/probes/${citedId}.json`);
    const signed = JSON.parse(fs.readFileSync(citedFile, 'utf8'));
    for (const o of signed.run.outcomes) o.accepted = false;
    const firstCert = (pem: string) => pem.slice(0, pem.indexOf('-----END CERTIFICATE-----') + 26);
    const probeKey = fs
      .readdirSync(keys)
      .filter((f) => f.endsWith('.chain.pem'))
      .find((f) => firstCert(fs.readFileSync(path.join(keys, f), 'utf8')) === signed.signer)!;
    expect(probeKey).toBeDefined();
    const k = await importSigningKey(
      fs.readFileSync(path.join(keys, probeKey.replace('.chain.pem', '.key.pem')), 'utf8'),
    );
    fs.writeFileSync(citedFile, serializeProbeRun(signed.run, signed.signer, k, nodeCryptoSeam));
    const fv = await forged.ci(['verify']);
    expect(fv.code).toBe(1);
    expect(fv.stdout).toMatch(/its fleet gate cites runs that do not show the fleet ready/);
    await new Promise((r) => setTimeout(r, 2000));
    await traffic.stop();
    // Zero failed handshakes under live traffic, through the publish, the held gate, the lagging deploy and the switch.
    expect(traffic.failures).toEqual([]);
    expect(traffic.requests).toBeGreaterThan(200);

    // An endpoint that cannot be reached after the switch holds the retire gate, but refuses no one: no rollback.
    servers.get('a3')!.stop();
    const p3 = await probeAll(m, keys);
    expect(p3.region.code).toBe(1);
    expect(p3.region.stderr).toMatch(/a3 \(.*ECONNREFUSED/);
    const ck3 = await m.ci(['check']);
    expect(ck3.code, ck3.stdout).toBe(1);
    expect(ck3.stdout).toMatch(/^TRELLIS WARNING - .*us-east-1: its retire gate is held by the fleet \|/m);
    expect((await m.ci(['status'])).stdout).not.toMatch(/REFUSING/);
  }, 300_000);

  it('--gate fleet where no confirmed endpoint trusts the scope is refused before the root key opens (exit 2)', async () => {
    const bare = await FakeMesh.create({ scopes: { global: [], 'us-east-1': ['api'] }, trustDomain: TD });
    const before = hashTree(bare.dir);
    const r = await bare.root(['rotate', 'intermediate', 'us-east-1', '--gate', 'fleet']);
    expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/usage: --gate fleet: no confirmed probe endpoint/)]);
    expect(hashTree(bare.dir)).toEqual(before);
  }, 120_000);

  it('a waiver the custodian signs lets the gate stop waiting for a named endpoint; the metrics name what holds it', async () => {
    const m = pristine.clone();
    expect((await m.root(['rotate', 'intermediate', 'us-east-1', '--propagation', '1s', '--gate', 'fleet'])).code).toBe(
      0,
    );
    await deployAllBut(m, LAGGING);
    await new Promise((r) => setTimeout(r, 1100));
    await probeAll(m, path.join(root, 'keys-waiver'));
    expect((await m.ci(['renew'])).code).toBe(0);
    expect(phase(m, 'us-east-1')).toBe('publish');
    const prom = path.join(root, 'waiver.prom');
    await m.ci(['check', '--metrics', prom]);
    expect(fs.readFileSync(prom, 'utf8')).toMatch(
      new RegExp(`trellis_fleet_endpoint_not_ready\\{scope="us-east-1",endpoint="${LAGGING}",state="waiting"\\} 1`),
    );
    // Refusals first, each leaving the store as it was.
    const before = hashTree(m.dir);
    const unknown = await m.root(['rotate', 'intermediate', 'us-east-1', '--waive', 'nowhere', '--reason', 'x']);
    expect([unknown.code, unknown.stderr]).toEqual([2, expect.stringMatching(/usage: .*"nowhere" is not a confirmed/)]);
    const bare = await m.root(['rotate', 'intermediate', 'us-east-1', '--waive', LAGGING]);
    expect(bare.code).toBe(2);
    const steady = await m.root(['rotate', 'intermediate', 'global', '--waive', 'g1', '--reason', 'x']);
    expect([steady.code, steady.stderr]).toEqual([1, expect.stringMatching(/wrong-phase/)]);
    expect(hashTree(m.dir)).toEqual(before);

    const w = await m.root(['rotate', 'intermediate', 'us-east-1', '--waive', LAGGING, '--reason', 'decommissioned']);
    expect(w.code, w.stderr).toBe(0);
    expect((await m.ci(['status'])).stdout).toMatch(
      new RegExp(`waived by the custodian: ${LAGGING} \\(decommissioned\\)`),
    );
    expect((await m.ci(['renew'])).code).toBe(0);
    expect(phase(m, 'us-east-1')).toBe('switch');
    const v = await m.ci(['verify']);
    expect(v.code, v.stdout).toBe(0);
  }, 240_000);

  it('a fleet gate a pull request removes from state.yaml is named by verify', async () => {
    const m = pristine.clone();
    expect((await m.root(['rotate', 'intermediate', 'us-east-1', '--gate', 'fleet'])).code).toBe(0);
    const state = parse(m.read('bundles/us-east-1/state.yaml'));
    delete state.rotation.gate;
    m.write('bundles/us-east-1/state.yaml', stringify(state));
    const v = await m.ci(['verify']);
    expect(v.code).toBe(1);
    expect(v.stdout + v.stderr).toMatch(/rotation\.gate/);
  }, 120_000);
});

describe('what the probe refuses', () => {
  it('an endpoint a pull request adds to deploy.probe is connected to by nobody: exit 3, store unchanged', async () => {
    const m = pristine.clone();
    let connections = 0;
    const trap = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const port = (trap.address() as net.AddressInfo).port;
    const config = parse(m.read('trellis.yaml'));
    config.deploy.probe.mine = { address: `127.0.0.1:${port}`, spiffe: `spiffe://us-east-1.${TD}/a1` };
    m.write('trellis.yaml', stringify(config));
    const before = hashTree(m.dir);
    const keys = path.join(root, 'keys-attack');
    const c = await m.ci(['probe', 'certify', '--out', keys]);
    expect(c.code).toBe(3);
    expect(c.stderr).toMatch(/custody-allow-list-unconfirmed/);
    const h = await m.ci(['probe', 'handshake', '--keys', keys, '--scope', 'us-east-1'], {
      TRELLIS_CI_IDENTITY_FILE: undefined,
    });
    expect(h.code).toBe(3);
    trap.close();
    expect(connections).toBe(0);
    expect(hashTree(m.dir)).toEqual(before);
  });

  it('property: whatever endpoint a pull request adds, edits or points elsewhere, probe and deploy connect nowhere (exit 3, store unchanged)', async () => {
    let connections = 0;
    const trap = net.createServer((sock) => {
      connections++;
      sock.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const trapAt = `127.0.0.1:${(trap.address() as net.AddressInfo).port}`;
    const keys = path.join(root, 'keys-property');
    expect((await pristine.clone().ci(['probe', 'certify', '--out', keys])).code).toBe(0);
    const edit = fc.oneof(
      // a new entry, under any name, claiming any service's SPIFFE ID
      fc.record({
        kind: fc.constant('add' as const),
        name: fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/),
        svc: fc.constantFrom(...SERVICES.map(([sc, sv]) => `${sc}/${sv}`)),
        path: fc.option(fc.constantFrom('/', '/healthz', '/a?b=c'), { nil: undefined }),
      }),
      // a confirmed entry moved to another address, or given another identity
      fc.record({
        kind: fc.constant('move' as const),
        svc: fc.constantFrom(...SERVICES.map(([, sv]) => sv)),
        spiffe: fc.boolean(),
      }),
    );
    await fc.assert(
      fc.asyncProperty(edit, async (e) => {
        const m = pristine.clone();
        const config = parse(m.read('trellis.yaml'));
        if (e.kind === 'add') {
          const [scope, svc] = e.svc.split('/');
          config.deploy.probe[`x-${e.name}`] = {
            address: trapAt,
            spiffe: `spiffe://${scope}.${TD}/${svc}`,
            ...(e.path ? { path: e.path } : {}),
          };
        } else {
          config.deploy.probe[e.svc].address = trapAt;
          if (e.spiffe) config.deploy.probe[e.svc].spiffe = `spiffe://us-east-1.${TD}/someone-else`;
        }
        m.write('trellis.yaml', stringify(config));
        const before = hashTree(m.dir);
        const noId = { TRELLIS_CI_IDENTITY_FILE: undefined };
        for (const r of [
          await m.ci(['probe', 'certify', '--out', path.join(root, 'keys-property-refused')]),
          await m.ci(['probe', 'handshake', '--keys', keys, '--scope', 'us-east-1'], noId),
          await m.ci(['probe', 'handshake', '--keys', keys, '--scope', 'global'], noId),
          await m.ci(['deploy', '--canary', '1']),
        ]) {
          // Unconfirmed (exit 3), or not even a valid entry (exit 2): either way nothing is reached.
          expect([2, 3], r.stdout + r.stderr).toContain(r.code);
          expect(r.stderr).toMatch(
            r.code === 3 ? /custody-allow-list-unconfirmed/ : /bad-config: trellis.yaml: deploy.probe/,
          );
        }
        expect(hashTree(m.dir)).toEqual(before);
        expect(connections).toBe(0);
      }),
      {
        numRuns: Number(process.env.TRELLIS_FUZZ_RUNS ?? 6),
        endOnFailure: true,
        // shrunk counterexample: a name the allow-list's parser refuses (exit 2 before anything connects)
        examples: [[{ kind: 'add', name: 'zu-', svc: 'global/g2', path: '/healthz' }]],
      },
    );
    trap.close();
  }, 300_000);

  it('probe keys live minutes: a handshake 20 minutes after certify refuses them (exit 2), the store unchanged', async () => {
    const m = pristine.clone();
    const keys = path.join(root, 'keys-expired');
    expect((await m.ci(['probe', 'certify', '--out', keys])).code).toBe(0);
    const before = hashTree(m.dir);
    const later = new Date(Date.now() + 20 * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const h = await m.ci(
      ['probe', 'handshake', '--keys', keys, '--scope', 'us-east-1', '--now', later, '--now-ahead'],
      {
        TRELLIS_CI_IDENTITY_FILE: undefined,
      },
    );
    expect([h.code, h.stderr]).toEqual([2, expect.stringMatching(/usage: .*probe key of .* expired at/)]);
    expect(hashTree(m.dir)).toEqual(before);
  });

  it('the handshake step holds no identity: with one set it refuses before connecting (exit 3)', async () => {
    const m = pristine.clone();
    const keys = path.join(root, 'keys-posture');
    expect((await m.ci(['probe', 'certify', '--out', keys])).code).toBe(0);
    const before = hashTree(m.dir);
    const h = await m.ci(['probe', 'handshake', '--keys', keys, '--scope', 'us-east-1']);
    expect(h.code).toBe(3);
    expect(h.stderr).toMatch(/custody-identity-in-probe: TRELLIS_CI_IDENTITY_FILE is set/);
    expect(hashTree(m.dir)).toEqual(before);
  });

  it('a probe run a pull request forges (outcomes edited after signing) is not evidence: verify names it', async () => {
    const m = pristine.clone();
    const keys = path.join(root, 'keys-forge');
    await probeAll(m, keys);
    const dir = m.path('bundles/us-east-1/probes');
    const file = path.join(dir, fs.readdirSync(dir)[0]!);
    const run = JSON.parse(fs.readFileSync(file, 'utf8'));
    run.run.outcomes[0].accepted = !run.run.outcomes[0].accepted;
    fs.writeFileSync(file, JSON.stringify(run));
    const v = await m.ci(['verify']);
    expect(v.code).toBe(1);
    expect(v.stdout + v.stderr).toMatch(/signature does not verify.*bundles\/us-east-1\/probes\//);
  });
});
