/**
 * Delivery with the terminators operators run: releases deployed by
 * `trellis-ci deploy` to dir targets served by real nginx and haproxy on
 * 127.0.0.1, then the checklist an operator runs after a rotation, revocation
 * after one deploy, and a reload under load.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { forgeLeaf } from './helpers/forge.js';
import { haproxyFor, nginxFor, request, waitForPort, type Client, type Terminator } from './helpers/servers.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-delivery-'));
const rfc = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');
let m: FakeMesh;
let stranger: FakeMesh;
const servers: Record<string, Terminator> = {};
const clients: Record<string, Client> = {};

function client(mesh: FakeMesh, scope: string, service: string, dir = mesh.path('.trellis/out')): Client {
  const f = (x: string) => fs.readFileSync(path.join(dir, scope, service, x), 'utf8');
  // Every client trusts the whole mesh (global's bundle), so each refusal below is the server's own judgement.
  return {
    name: `${scope}/${service}`,
    key: f('key.pem'),
    chain: f('chain.pem'),
    ca: m.read('bundles/global/trust.openssl.pem'),
  };
}

beforeAll(async () => {
  const past = new Date(Date.now() - 20 * 86_400_000);
  m = await FakeMesh.create({
    now: rfc(past),
    scopes: { global: ['control'], 'us-east-1': ['api', 'web'], 'eu-west-1': ['api'] },
  });
  const expired = path.join(root, 'expired');
  fs.cpSync(m.path('.trellis/out'), expired, { recursive: true });
  for (const kind of ['nginx', 'haproxy'] as const) {
    for (const [scope, service] of [
      ['us-east-1', 'api'],
      ['global', 'control'],
    ] as const) {
      const make = kind === 'nginx' ? nginxFor : haproxyFor;
      servers[`${kind} ${scope}/${service}`] = make(
        root,
        `${scope}-${service}`,
        path.join(root, `${kind}-release-${scope}-${service}`),
      );
    }
  }
  const targets = (scope: string, service: string) =>
    (['nginx', 'haproxy'] as const).map((k) => {
      const t = servers[`${k} ${scope}/${service}`]!;
      return {
        type: 'dir',
        path: t.releaseDir,
        reload: reloadName(`${k} ${scope}/${service}`),
        check: reloadName(`${k} ${scope}/${service}`),
      };
    });
  // The custodian allows each terminator's reload command and the release directories; the scope files name them.
  const reloadName = (server: string) => server.replace(/[ /]/g, '-');
  await m.allow({
    dir: { paths: [root] },
    reload: Object.fromEntries(Object.entries(servers).map(([k, t]) => [reloadName(k), t.reload])),
    // The endpoint each canary check connects to, with the SPIFFE ID its leaf must carry.
    probe: Object.fromEntries(
      Object.entries(servers).map(([k, t]) => {
        const [scope, service] = k.split(' ')[1]!.split('/') as [string, string];
        return [reloadName(k), { address: `127.0.0.1:${t.port}`, spiffe: `spiffe://${scope}.mesh.example/${service}` }];
      }),
    ),
  });
  m.writeScope('us-east-1', [{ api: { deploy: targets('us-east-1', 'api') } }, 'web']);
  m.writeScope('global', [{ control: { deploy: targets('global', 'control') } }]);
  expect((await m.ci(['renew'])).code).toBe(0);
  const d = await m.ci(['deploy']);
  expect(d.code, d.stdout + d.stderr).toBe(0);
  expect(d.stdout.match(/^installed/gm)).toHaveLength(4);
  for (const t of Object.values(servers)) await waitForPort(t.port);

  stranger = await FakeMesh.fresh({ scopes: { global: [], 'us-east-1': ['web'] } });
  const forged = await forgeLeaf(m, 'us-east-1', {
    dns: ['web.eu-west-1.mesh.example'],
    uris: ['spiffe://eu-west-1.mesh.example/web'],
  });
  Object.assign(clients, {
    valid: client(m, 'us-east-1', 'web'),
    unknownCa: { ...client(stranger, 'us-east-1', 'web'), name: 'unknown CA' },
    expired: { ...client(m, 'us-east-1', 'web', expired), name: 'expired' },
    otherRegion: client(m, 'eu-west-1', 'api'),
    forged: {
      name: 'name-constraint violation',
      key: forged.key,
      chain: forged.chain,
      ca: m.read('bundles/global/trust.openssl.pem'),
    },
    global: client(m, 'global', 'control'),
  });
}, 180_000);

afterAll(() => {
  for (const t of Object.values(servers)) t.stop();
});

const accepted = (r: number | 'refused') => r === 200;

describe.each(['nginx', 'haproxy'])("%s: the operator's checklist", (kind) => {
  const api = () => servers[`${kind} us-east-1/api`]!;
  const control = () => servers[`${kind} global/control`]!;
  it.each([
    ['a valid client of the scope', 'valid', 'api', true],
    ['an unknown CA', 'unknownCa', 'api', false],
    ['an expired leaf', 'expired', 'api', false],
    ['another region', 'otherRegion', 'api', false],
    ["a name-constraint violation (a stolen regional key minting another region's name)", 'forged', 'api', false],
    ['region → global', 'valid', 'control', true],
    ['another region → global', 'otherRegion', 'control', true],
    ['global → region', 'global', 'api', true],
  ] as const)('%s', async (_, who, server, ok) => {
    const t = server === 'api' ? api() : control();
    const dns = server === 'api' ? 'api.us-east-1.mesh.example' : 'control.global.mesh.example';
    const r = await request(t.port, dns, clients[who]!);
    expect(accepted(r), `${kind} answered ${r}`).toBe(ok);
    if (!ok && kind === 'nginx') expect(r).toBe(400); // nginx finishes the handshake and answers 400
  });
});

describe('revocation at the edge', () => {
  it('a revoked leaf is refused by nginx and haproxy after one deploy; its replacement is accepted', async () => {
    const old = client(m, 'us-east-1', 'web');
    expect((await m.ci(['revoke', 'us-east-1/web', '--reason', 'keyCompromise'])).code).toBe(0);
    const d = await m.ci(['deploy']);
    expect(d.code, d.stdout).toBe(0);
    expect(d.stdout.match(/^installed/gm)).toHaveLength(4); // the CRL changed everywhere
    const fresh = client(m, 'us-east-1', 'web');
    for (const kind of ['nginx', 'haproxy']) {
      for (const s of ['us-east-1/api', 'global/control']) {
        const t = servers[`${kind} ${s}`]!;
        const dns = s === 'us-east-1/api' ? 'api.us-east-1.mesh.example' : 'control.global.mesh.example';
        expect(accepted(await request(t.port, dns, old)), `${kind} ${s} accepted the revoked leaf`).toBe(false);
        expect(accepted(await request(t.port, dns, fresh)), `${kind} ${s} refused the replacement`).toBe(true);
      }
    }
  });
});

describe('reload under load', () => {
  it('a deploy that reloads nginx and haproxy mid-traffic drops no request', async () => {
    const c = client(m, 'us-east-1', 'web');
    const targets = [servers['nginx us-east-1/api']!, servers['haproxy us-east-1/api']!];
    let stop = false;
    const results: (number | 'refused')[] = [];
    const worker = async (t: Terminator) => {
      while (!stop && results.length < 4000) results.push(await request(t.port, 'api.us-east-1.mesh.example', c));
    };
    const load = targets.flatMap((t) => [worker(t), worker(t), worker(t), worker(t)]);
    await new Promise((r) => setTimeout(r, 300));
    expect((await m.ci(['renew', '--force', '--scope', 'us-east-1'])).code).toBe(0);
    const d = await m.ci(['deploy', '--scope', 'us-east-1']);
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await Promise.all(load);
    expect(d.stdout.match(/^installed/gm), d.stdout).toHaveLength(2);
    expect(results.length).toBeGreaterThan(100);
    expect(results.filter((r) => r !== 200)).toEqual([]);
    // And the servers now present the new leaf.
    const r = await request(targets[0]!.port, 'api.us-east-1.mesh.example', c);
    expect(r).toBe(200);
  }, 60_000);
});
