/**
 * Time-simulated drills: renew on its schedule with --now, hosts deployed from
 * each run, and real mTLS handshakes between them judged at the same instant
 * (the probe runs under libfaketime). A planned intermediate rotation and a
 * root rotation must cost zero failed handshakes across every phase.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { MINUTE, RUN_HOUR, plus } from './helpers/clock.js';
import { DAY, HOUR, allowedPairs, at, deployment, probeAt, type Host, type ProbeResult } from './helpers/drill.js';

const SERVICES: [string, string][] = [
  ['us-east-1', 'api'],
  ['us-east-1', 'web'],
  ['global', 'control'],
  ['eu-west-1', 'api'],
];
const SPEC = { global: ['control'], 'us-east-1': ['api', 'web'], 'eu-west-1': ['api'] };

interface Tick {
  t: Date;
  renew: string;
  hosts: Host[];
}

/** Runs renew every 12 hours from `start` to `end`, calling `offline` first at the instants it names. */
async function drill(
  m: FakeMesh,
  start: Date,
  end: Date,
  offline: Map<number, (t: Date) => Promise<void>>,
  scratch: string,
): Promise<Tick[]> {
  const ticks: Tick[] = [];
  const outs: string[] = [];
  for (let t = start; t <= end; t = new Date(t.getTime() + 12 * HOUR)) {
    await offline.get(t.getTime())?.(t);
    const out = path.join(scratch, `out-${t.getTime()}`);
    const r = await m.ci(['renew', '--now', at(t), '--now-ahead', '--out', out]);
    expect(r.code, `renew at ${at(t)}: ${r.stderr}`).toBe(0);
    outs.push(out);
    ticks.push({ t, renew: r.stdout, hosts: deployment(m, SERVICES, outs) });
  }
  return ticks;
}

/** Fast hosts run the deploy of this tick; slow hosts are one tick (12 h) behind. Every allowed pair, both ways. */
async function handshakesThroughout(
  ticks: Tick[],
  scratch: string,
): Promise<{ total: number; failures: (ProbeResult & { at: string })[] }> {
  let total = 0;
  const failures: (ProbeResult & { at: string })[] = [];
  for (let i = 0; i < ticks.length; i++) {
    const slow = ticks[Math.max(0, i - 1)]!.hosts.map((h) => ({
      ...h,
      party: { ...h.party, name: `${h.party.name} (slow)` },
    }));
    const pairs = allowedPairs([...ticks[i]!.hosts, ...slow]);
    const results = await probeAt(new Date(ticks[i]!.t.getTime() + 60_000), pairs, scratch);
    total += results.length;
    failures.push(...results.filter((r) => !r.ok).map((r) => ({ ...r, at: at(ticks[i]!.t) })));
  }
  return { total, failures };
}

describe('drill: planned intermediate rotation', () => {
  const T0 = RUN_HOUR;
  let m: FakeMesh;
  let ticks: Tick[];
  let scratch: string;
  beforeAll(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-drill-'));
    m = await FakeMesh.create({ scopes: SPEC, now: at(T0), leaves: false });
    const rotateAt = new Date(T0.getTime() + 2 * DAY);
    ticks = await drill(
      m,
      T0,
      new Date(T0.getTime() + 11 * DAY),
      new Map([
        [
          rotateAt.getTime(),
          async (t) => {
            const r = await m.root(['rotate', 'intermediate', 'us-east-1', '--now', at(t), '--now-ahead']);
            expect(r.code, r.stderr).toBe(0);
          },
        ],
      ]),
      scratch,
    );
  }, 240_000);

  it('CI runs the phases in order when their gates open: publish (offline) → switch after 24 h → retire after the longest leaf TTL', () => {
    const steps = ticks.flatMap((k) => [...k.renew.matchAll(/^phase us-east-1: (\w+)/gm)].map((x) => [x[1], at(k.t)]));
    expect(steps).toEqual([
      ['switch', at(T0, 3 * DAY)],
      ['retire', at(T0, 10 * DAY)],
    ]);
    const switchTick = ticks.find((k) => at(k.t) === at(T0, 3 * DAY))!;
    expect(switchTick.renew).toContain('mint us-east-1/api (issuer-changed)');
    expect(switchTick.renew).toContain('mint us-east-1/web (issuer-changed)');
    expect(m.read('bundles/us-east-1/state.yaml')).toMatch(/^phase: steady/);
    expect(fs.existsSync(m.path('bundles/us-east-1/intermediate.previous.key.age'))).toBe(false);
  });

  it('zero failed handshakes across every phase, with half the hosts a deploy behind', async () => {
    const { total, failures } = await handshakesThroughout(ticks, scratch);
    expect(total).toBeGreaterThan(500);
    expect(failures).toEqual([]);
  }, 240_000);

  it('control: the harness does fail a host that never got the publish bundle', async () => {
    const before = ticks
      .find((k) => at(k.t) === at(T0, 1.5 * DAY))!
      .hosts.find((h) => h.service === 'web' && h.scope === 'us-east-1')!;
    const after = ticks
      .find((k) => at(k.t) === at(T0, 3 * DAY))!
      .hosts.find((h) => h.service === 'api' && h.scope === 'us-east-1')!;
    const [r] = await probeAt(plus(T0, 3 * DAY + MINUTE), [{ client: after.party, server: before.party }], scratch);
    expect(r!.ok).toBe(false);
    expect(r!.error).toMatch(/server: UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
  }, 60_000);

  it('verify is clean after the drill, and the evidence records every phase', async () => {
    expect((await m.ci(['verify', '--now', at(ticks.at(-1)!.t), '--now-ahead'])).code).toBe(0);
    const dir = m.path('bundles/us-east-1/evidence');
    const json = fs.readdirSync(dir).find((f) => f.endsWith('.json'))!;
    const e = JSON.parse(fs.readFileSync(path.join(dir, json), 'utf8'));
    expect(e.status).toBe('completed');
    expect(e.steps.map((s: { step: string }) => s.step)).toEqual(['publish', 'switch', 'remint', 'retire']);
    expect(e.old[0].fingerprint).not.toBe(e.new[0].fingerprint);
    expect(e.affected.every((a: { newSerial?: string }) => a.newSerial)).toBe(true);
    expect(fs.existsSync(path.join(dir, json.replace('.json', '.md')))).toBe(true);
  });
});

describe('drill: root rotation', () => {
  const T0 = RUN_HOUR;
  let m: FakeMesh;
  let ticks: Tick[];
  let scratch: string;
  let overlap: Record<string, string> = {};
  beforeAll(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-drill-'));
    m = await FakeMesh.create({ scopes: SPEC, now: at(T0), leaves: false });
    const begin = new Date(T0.getTime() + DAY);
    const finalize = new Date(T0.getTime() + 3 * DAY);
    ticks = await drill(
      m,
      T0,
      new Date(T0.getTime() + 5 * DAY),
      new Map([
        [
          begin.getTime(),
          async (t) => {
            const r = await m.root(['rotate', 'root', '--now', at(t), '--now-ahead']);
            expect(r.code, r.stderr).toBe(0);
            overlap = Object.fromEntries(
              [
                'bundles/root/roots.pem',
                'bundles/root/root.previous.pem',
                'bundles/root/root.pem',
                'bundles/root/link.pem',
                'bundles/us-east-1/intermediate.pem',
                'bundles/us-east-1/intermediate.old-root.pem',
              ].map((f) => [f, m.read(f)]),
            );
          },
        ],
        [
          finalize.getTime(),
          async (t) => {
            const r = await m.root(['rotate', 'root', '--finalize', '--now', at(t), '--now-ahead']);
            expect(r.code, r.stderr).toBe(0);
          },
        ],
      ]),
      scratch,
    );
  }, 240_000);

  it('re-signing keeps the intermediate keys: no leaf is re-minted for the root rotation', () => {
    const during = ticks.filter((k) => k.t >= new Date(T0.getTime() + DAY) && k.t < new Date(T0.getTime() + 3 * DAY));
    expect(during.map((k) => k.renew).join()).not.toMatch(/issuer-changed/);
  });

  it('zero failed handshakes before, during and after the overlap', async () => {
    const { total, failures } = await handshakesThroughout(ticks, scratch);
    expect(total).toBeGreaterThan(200);
    expect(failures).toEqual([]);
  }, 240_000);

  it('after finalize only the new root remains and verify is clean', async () => {
    expect(m.read('bundles/root/roots.pem').match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    expect(m.read('bundles/root/roots.pem')).toBe(m.read('bundles/root/root.pem'));
    expect(m.read('bundles/root/roots.pem')).toBe(overlap['bundles/root/root.pem']);
    for (const gone of [
      'bundles/root/root.previous.pem',
      'bundles/root/root.previous.key.age',
      'bundles/root/link.pem',
      'bundles/us-east-1/intermediate.old-root.pem',
    ]) {
      expect(fs.existsSync(m.path(gone)), gone).toBe(false);
    }
    expect((await m.root(['verify', '--now', at(ticks.at(-1)!.t), '--now-ahead'])).code).toBe(0);
    expect((await m.ci(['verify', '--now', at(ticks.at(-1)!.t), '--now-ahead'])).code).toBe(0);
  });

  it('the overlap material was in place: {old, new} roots and a link', () => {
    expect(overlap['bundles/root/roots.pem']!.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(overlap['bundles/root/link.pem']).toMatch(/BEGIN CERTIFICATE/);
  });
});
