/**
 * A name two owners claim: every DNS name, SPIFFE ID, deploy directory and
 * Kubernetes object belongs to one service in the whole mesh. One pure rule
 * (core/src/trust/uniqueness.ts), checked here broadly against a naive oracle, and
 * through the real commands: verify names both owners (exit 1), renew mints
 * every other service and exits 2, deploy ships nothing to either and exits 2.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DeploySelection } from '../packages/core/src/config/config.js';
import {
  heldServices,
  ownershipCollisions,
  type Collision,
  type OwnershipInput,
} from '../packages/core/src/trust/uniqueness.js';
import { stringify } from 'yaml';
import { FakeMesh } from './helpers/fake-mesh.js';
import { MemoryMesh } from './helpers/memory-mesh.js';
import { hashTree } from './helpers/store-hash.js';
import { at, RUN_NOW } from './helpers/clock.js';

const TD = 'mesh.example';
const RUNS = Number(process.env.TRELLIS_FUZZ_RUNS ?? 6);

type Svc = { name: string; dns?: string[]; deploy?: DeploySelection[] };
const mesh = (scopes: Record<string, Svc[]>, ssh?: OwnershipInput['ssh']): OwnershipInput => ({
  trustDomain: TD,
  ssh,
  scopes: Object.entries(scopes).map(([name, services]) => ({
    name,
    services: services.map((s) => ({ name: s.name, dns: s.dns ?? [], deploy: s.deploy ?? [] })),
  })),
});
const owners = (c: Collision) => c.owners.map((o) => `${o.scope}/${o.service} ${o.field}`);
const dir = (p: string): DeploySelection => ({ type: 'dir', path: p });
const k8s = (name: string, namespace = 'mesh', context?: string): DeploySelection => ({
  type: 'kubernetes',
  name,
  namespace,
  ...(context ? { context } : {}),
});

describe('the rule (pure)', () => {
  it("an extra SAN equal to another scope's service DNS name: one collision naming both, only the claimant held", () => {
    const c = ownershipCollisions(
      mesh({ 'us-east-1': [{ name: 'api' }], 'eu-west-1': [{ name: 'web', dns: ['API.us-east-1.mesh.example.'] }] }),
    );
    expect(c).toHaveLength(1);
    expect(c[0]!.kind).toBe('dns');
    expect(c[0]!.value).toBe('api.us-east-1.mesh.example');
    expect(owners(c[0]!)).toEqual(['us-east-1/api services.api', 'eu-west-1/web services.web.dns[0]']);
    // The derived name's owner is not in doubt: a claim on it cannot stop it.
    expect([...heldServices(c).keys()]).toEqual(['eu-west-1/web']);
  });

  it('two services sharing an extra SAN: both held', () => {
    const c = ownershipCollisions(
      mesh({
        s: [
          { name: 'a', dns: ['edge.s.mesh.example'] },
          { name: 'b', dns: ['Edge.s.mesh.example'] },
        ],
      }),
    );
    expect(c.map(owners)).toEqual([['s/a services.a.dns[0]', 's/b services.b.dns[0]']]);
    expect([...heldServices(c).keys()]).toEqual(['s/a', 's/b']);
  });

  it.each([
    ['one path', '/srv/tls/a', '/srv/tls/a', true],
    ['a trailing slash', '/srv/tls/a', '/srv/tls/a/', true],
    ['a ..', '/srv/tls/a', '/srv/tls/x/../a', true],
    ['a . and a doubled slash', '/srv/tls/a', '/srv/./tls//a', true],
    ['one under the other', '/srv/tls/a', '/srv/tls/a/b', true],
    ['one at the root', '/', '/srv/tls/b', true],
    ['siblings sharing a prefix', '/srv/tls/a', '/srv/tls/ab', false],
    ['siblings', '/srv/tls/a', '/srv/tls/b', false],
  ])('two dir targets, %s: collide %s', (_, p, q, collide) => {
    const c = ownershipCollisions(mesh({ s: [{ name: 'a', deploy: [dir(p)] }], t: [{ name: 'b', deploy: [dir(q)] }] }));
    expect(c.length).toBe(collide ? 1 : 0);
    if (collide) expect(c[0]!.kind).toBe('directory');
  });

  it('a resolver the shell gives (deploy: links on the runner) decides local directories; the owners keep the path as written', () => {
    const input = mesh({
      s: [
        { name: 'a', deploy: [dir('/srv/real/x')] },
        { name: 'b', deploy: [dir('/srv/link/x')] },
      ],
    });
    expect(ownershipCollisions(input)).toEqual([]);
    const c = ownershipCollisions({ ...input, localDir: (p) => p.replace('/srv/link', '/srv/real') });
    expect(c.map((x) => [x.value, x.owners.map((o) => o.value)])).toEqual([
      ['local:/srv/real/x', ['/srv/real/x', '/srv/link/x']],
    ]);
  });

  it('ssh directories are compared on the machine the entry connects to, not by entry name', () => {
    const ssh = {
      h1: { host: 'Web.internal', port: 22 },
      h2: { host: 'web.internal', port: 22 },
      h3: { host: 'web.internal', port: 2222 },
    };
    const two = (x: string, y: string) =>
      ownershipCollisions(
        mesh(
          {
            s: [
              { name: 'a', deploy: [{ type: 'ssh', host: x, path: '/srv/a' }] },
              { name: 'b', deploy: [{ type: 'ssh', host: y, path: '/srv/a' }] },
            ],
          },
          ssh,
        ),
      );
    expect(two('h1', 'h2')).toHaveLength(1);
    expect(two('h1', 'h3')).toHaveLength(0);
    // A dir target is on the CI runner: not the ssh host's directory.
    expect(
      ownershipCollisions(
        mesh(
          {
            s: [
              { name: 'a', deploy: [dir('/srv/a')] },
              { name: 'b', deploy: [{ type: 'ssh', host: 'h1', path: '/srv/a' }] },
            ],
          },
          ssh,
        ),
      ),
    ).toHaveLength(0);
  });

  it('Kubernetes objects by namespace/kind/name, in any context; the manifest file too', () => {
    const c = ownershipCollisions(
      mesh({
        s: [{ name: 'a', deploy: [k8s('tls', 'mesh', 'prod-1')] }],
        t: [{ name: 'b', deploy: [k8s('tls', 'mesh', 'prod-2')] }],
      }),
    );
    expect(c.map((x) => x.value)).toEqual(['mesh/Secret/tls', 'mesh/ConfigMap/tls-trust']);
    expect(
      ownershipCollisions(
        mesh({ s: [{ name: 'a', deploy: [k8s('tls', 'mesh')] }], t: [{ name: 'b', deploy: [k8s('tls', 'default')] }] }),
      ),
    ).toEqual([]);
    // A Secret named x-trust is not the ConfigMap x-trust.
    expect(
      ownershipCollisions(
        mesh({
          s: [
            { name: 'a', deploy: [k8s('x-trust')] },
            { name: 'b', deploy: [k8s('x')] },
          ],
        }),
      ),
    ).toEqual([]);
    // a + b-c and a-b + c both write <scope>/a-b-c.yaml.
    expect(
      ownershipCollisions(
        mesh({
          s: [
            { name: 'a', deploy: [k8s('b-c')] },
            { name: 'a-b', deploy: [k8s('c')] },
          ],
        }),
      ).map((x) => x.value),
    ).toEqual(['manifest s/a-b-c.yaml']);
  });

  it('one service claiming a thing twice is one owner, not a collision', () => {
    expect(
      ownershipCollisions(
        mesh({
          s: [
            {
              name: 'a',
              dns: ['a.s.mesh.example', 'x.s.mesh.example', 'x.s.mesh.example'],
              deploy: [dir('/srv/a'), dir('/srv/a/b'), k8s('t'), k8s('t')],
            },
          ],
        }),
      ),
    ).toEqual([]);
  });
});

// ---- the property: the rule against a naive pairwise oracle, over meshes drawn from small pools so collisions happen.

const SCOPES = ['global', 'us-east-1', 'eu-west-1'];
const SERVICES = ['api', 'web', 'a', 'a-b'];
const EXTRA = ['edge', 'api', 'web', 'x.api'];
const PATHS = ['/srv/a', '/srv/a/', '/srv/x/../a', '/srv/a/b', '/srv/ab', '/srv//b', '/'];
const SSH = {
  h1: { host: '10.0.0.1', port: 22 },
  h2: { host: '10.0.0.1', port: 22 },
  h3: { host: '10.0.0.2', port: 22 },
};

const target: fc.Arbitrary<DeploySelection> = fc.oneof(
  fc.constantFrom(...PATHS).map(dir),
  fc
    .record({ host: fc.constantFrom('h1', 'h2', 'h3'), path: fc.constantFrom(...PATHS) })
    .map(({ host, path: p }) => ({ type: 'ssh' as const, host, path: p })),
  fc
    .record({
      name: fc.constantFrom('tls', 'b-c', 'c', 'tls-trust'),
      ns: fc.constantFrom('mesh', 'default'),
      ctx: fc.constantFrom(undefined, 'p1', 'p2'),
    })
    .map(({ name, ns, ctx }) => k8s(name, ns, ctx)),
  fc.constant<DeploySelection>({ type: 'sealed', host: 'h1' }),
);
const dnsName = fc
  .record({
    label: fc.constantFrom(...EXTRA),
    scope: fc.constantFrom(...SCOPES),
    upper: fc.boolean(),
    dot: fc.boolean(),
  })
  .map(({ label, scope, upper, dot }) => {
    const n = `${label}.${scope}.${TD}${dot ? '.' : ''}`;
    return upper ? n.toUpperCase() : n;
  });
const meshArb: fc.Arbitrary<OwnershipInput> = fc
  .uniqueArray(fc.constantFrom(...SCOPES), { minLength: 1 })
  .chain((scopes) =>
    fc
      .tuple(
        ...scopes.map(() =>
          fc.uniqueArray(
            fc.record({
              name: fc.constantFrom(...SERVICES),
              dns: fc.array(dnsName, { maxLength: 2 }),
              deploy: fc.array(target, { maxLength: 2 }),
            }),
            { selector: (s) => s.name, maxLength: 3 },
          ),
        ),
      )
      .map((svcs) => ({ trustDomain: TD, ssh: SSH, scopes: scopes.map((name, i) => ({ name, services: svcs[i]! })) })),
  );

/** Path segments resolved by hand (not posix.resolve, which the rule uses). */
function naivePath(p: string): string[] {
  const out: string[] = [];
  for (const s of p.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') out.pop();
    else out.push(s);
  }
  return out;
}

/** Every unordered pair of distinct services that claim one thing, compared pair by pair. */
function naivePairs(m: OwnershipInput): Set<string> {
  type Owned = {
    id: string;
    dns: string[];
    spiffe: string[];
    dirs: { machine: string; segs: string[] }[];
    k8s: string[];
  };
  const all: Owned[] = m.scopes.flatMap((s) =>
    s.services.map((v) => ({
      id: `${s.name}/${v.name}`,
      dns: [`${v.name}.${s.name}.${TD}`, ...v.dns].map((n) => n.toLowerCase().replace(/\.$/, '')),
      spiffe: [`spiffe://${s.name}.${TD}/${v.name}`],
      dirs: v.deploy.flatMap((t) =>
        t.type === 'dir'
          ? [{ machine: 'runner', segs: naivePath(t.path) }]
          : t.type === 'ssh'
            ? [
                {
                  machine: `${SSH[t.host as keyof typeof SSH].host}:${SSH[t.host as keyof typeof SSH].port}`,
                  segs: naivePath(t.path),
                },
              ]
            : [],
      ),
      k8s: v.deploy.flatMap((t) =>
        t.type === 'kubernetes'
          ? [
              `${t.namespace} Secret ${t.name}`,
              `${t.namespace} ConfigMap ${t.name}-trust`,
              `file ${s.name}/${v.name}-${t.name}`,
            ]
          : [],
      ),
    })),
  );
  const shares = (x: string[], y: string[]) => x.some((e) => y.includes(e));
  const within = (a: string[], b: string[]) => a.length <= b.length && a.every((s, i) => b[i] === s);
  const pairs = new Set<string>();
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) {
      const [a, b] = [all[i]!, all[j]!];
      const dirs = a.dirs.some((x) =>
        b.dirs.some((y) => x.machine === y.machine && (within(x.segs, y.segs) || within(y.segs, x.segs))),
      );
      if (shares(a.dns, b.dns) || shares(a.spiffe, b.spiffe) || shares(a.k8s, b.k8s) || dirs)
        pairs.add([a.id, b.id].sort().join(' '));
    }
  }
  return pairs;
}

describe('the rule, as a property', () => {
  it('reports a collision iff two services claim one thing; every service of a colliding pair is named, and at least one of each pair held', () => {
    fc.assert(
      fc.property(meshArb, (m) => {
        const found = ownershipCollisions(m);
        const pairs = naivePairs(m);
        expect(found.length > 0).toBe(pairs.size > 0);
        const named = (c: Collision) => new Set(c.owners.map((o) => `${o.scope}/${o.service}`));
        for (const c of found) expect(named(c).size).toBeGreaterThanOrEqual(2);
        const inPairs = new Set([...pairs].flatMap((p) => p.split(' ')));
        expect(new Set(found.flatMap((c) => [...named(c)]))).toEqual(inPairs);
        const held = heldServices(found);
        for (const p of pairs) {
          const [a, b] = p.split(' ') as [string, string];
          // Directories group under the outermost claim: a pair may be named inside a larger group, never apart.
          expect(found.some((c) => named(c).has(a) && named(c).has(b))).toBe(true);
          expect(held.has(a) || held.has(b)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  // Shrunk counterexamples, kept as fixed cases.
  it('a directory under the root of another is one collision', () => {
    expect(
      ownershipCollisions(
        mesh({
          s: [
            { name: 'a', deploy: [dir('/')] },
            { name: 'b', deploy: [dir('/srv//b')] },
          ],
        }),
      ),
    ).toHaveLength(1);
  });
});

// ---- through the real commands.

describe('through the real commands', () => {
  const T = at(RUN_NOW);
  let pristine: FakeMesh;
  /** The same store in memory, for the property. */
  let memory: MemoryMesh;
  let targets: string;
  beforeAll(async () => {
    targets = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-uniq-'));
    pristine = await FakeMesh.create({
      scopes: { global: ['control'], 'us-east-1': ['api', 'web', 'db'], 'eu-west-1': ['api'] },
      now: T,
    });
    await pristine.allow({ dir: { paths: [targets] } });
    memory = MemoryMesh.of(pristine);
  });

  const findings = async (m: FakeMesh) => {
    const v = await m.ci(['verify', '--json', '--now', T]);
    return {
      code: v.code,
      findings: JSON.parse(v.stdout).findings as { level: string; check: string; message: string; file?: string }[],
    };
  };
  const serials = (m: FakeMesh, scope: string) =>
    Object.fromEntries(
      [...m.read(`bundles/${scope}/leaves.yaml`).matchAll(/^(\S+):\n\s+serial: (\S+)/gm)].map((x) => [x[1], x[2]]),
    );

  it('an extra SAN inside another scope is refused before anything runs: the name constraints already close it (exit 2)', async () => {
    const m = pristine.clone();
    m.writeScope('eu-west-1', [{ api: { dns: ['api.us-east-1.mesh.example'] } }]);
    const before = hashTree(m.dir);
    for (const args of [['verify'], ['renew', '--now', T]]) {
      const r = await m.ci(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('scopes/eu-west-1.yaml: services.api.dns[0]');
      expect(r.stderr).toContain("outside the scope's name constraints");
    }
    expect(hashTree(m.dir)).toEqual(before);
  });

  it("an extra SAN that is another service's DNS name: verify names both (exit 1); renew mints every other service, not the claimant, and exits 2", async () => {
    const m = pristine.clone();
    m.writeScope('us-east-1', ['api', { web: { dns: ['api.us-east-1.mesh.example'] } }, 'db']);
    const v = await findings(m);
    expect(v.code).toBe(1);
    const own = v.findings.filter((f) => f.check === 'ownership');
    expect(own).toHaveLength(1);
    expect(own[0]!.message).toContain(
      'DNS name "api.us-east-1.mesh.example" is claimed by us-east-1/api (scopes/us-east-1.yaml services.api) ' +
        'and us-east-1/web (scopes/us-east-1.yaml services.web.dns[0])',
    );
    expect(v.findings.filter((f) => f.level === 'error' && f.check !== 'ownership')).toEqual([]);

    const dry = await m.ci(['renew', '--force', '--dry-run', '--now', T]);
    expect(dry.code).toBe(2);
    expect(dry.stdout).toContain('hold us-east-1/web: DNS name');
    const plan = await m.ci(['plan', '--now', T]);
    expect(plan.code).toBe(2);
    expect(plan.stderr).toContain('renew would hold the claimants of 1 collision');

    const before = serials(m, 'us-east-1');
    const webCert = fs.readFileSync(m.out('us-east-1', 'web', 'cert.pem'), 'utf8');
    const r = await m.ci(['renew', '--force', '--now', T]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('renew held the claimants of 1 collision');
    expect(r.stderr).toContain('us-east-1/api');
    expect(r.stderr).toContain('us-east-1/web');
    expect(r.stdout).toMatch(/mint us-east-1\/api \(forced\)/);
    expect(r.stdout).not.toMatch(/mint us-east-1\/web/);
    const after = serials(m, 'us-east-1');
    expect(after.web).toBe(before.web);
    expect(after.api).not.toBe(before.api);
    expect(after.db).not.toBe(before.db);
    expect(serials(m, 'eu-west-1').api).not.toBe(undefined);
    expect(fs.readFileSync(m.out('us-east-1', 'web', 'cert.pem'), 'utf8')).toBe(webCert);
    // The store is consistent: the collision is verify's only error.
    const again = await findings(m);
    expect(again.findings.filter((f) => f.level === 'error').map((f) => f.check)).toEqual(['ownership']);
  });

  it('two services sharing an extra SAN: renew mints neither, every other service as usual, exit 2', async () => {
    const m = pristine.clone();
    m.writeScope('us-east-1', [
      'api',
      { web: { dns: ['edge.us-east-1.mesh.example'] } },
      { db: { dns: ['edge.us-east-1.mesh.example'] } },
    ]);
    const v = await findings(m);
    expect(v.code).toBe(1);
    expect(v.findings.find((f) => f.check === 'ownership')?.message).toMatch(
      new RegExp(
        /"edge\.us-east-1\.mesh\.example" is claimed by us-east-1\/db \(scopes\/us-east-1\.yaml /.source +
          /services\.db\.dns\[0\]\) and us-east-1\/web \(scopes\/us-east-1\.yaml services\.web\.dns\[0\]\)/.source,
      ),
    );
    const before = serials(m, 'us-east-1');
    const r = await m.ci(['renew', '--force', '--now', T]);
    expect(r.code).toBe(2);
    const after = serials(m, 'us-east-1');
    expect([after.web, after.db]).toEqual([before.web, before.db]);
    expect(after.api).not.toBe(before.api);
    expect(r.stdout).toMatch(/minted 3 leaves/); // control, us-east-1/api, eu-west-1/api
  });

  it.each([
    ['one directory', 'shared', 'shared'],
    ['one directory inside the other', 'outer', 'outer/inner'],
  ])(
    'two dir targets in %s: verify names both; deploy writes neither and exits 2, the others deploy',
    async (_, p, q) => {
      const m = pristine.clone();
      const base = fs.mkdtempSync(path.join(targets, 'case-'));
      m.writeScope('us-east-1', [
        { api: { deploy: [{ type: 'dir', path: `${base}/api` }] } },
        { web: { deploy: [{ type: 'dir', path: `${base}/${p}` }] } },
        { db: { deploy: [{ type: 'dir', path: `${base}/${q}` }] } },
      ]);
      const v = await findings(m);
      expect(v.code).toBe(1);
      const msg = v.findings.find((f) => f.check === 'ownership')!.message;
      expect(msg).toContain(
        `deploy directory "local:${base}/${p}" is claimed by us-east-1/db (scopes/us-east-1.yaml ` +
          `services.db.deploy[0].path "${base}/${q}") and us-east-1/web (scopes/us-east-1.yaml ` +
          `services.web.deploy[0].path "${base}/${p}")`,
      );

      const r = await m.ci(['renew', '--now', T]);
      expect(r.code).toBe(2);
      const d = await m.ci(['deploy', '--now', T]);
      expect(d.code, d.stderr).toBe(2);
      expect(d.stderr).toContain('deploy held the claimants of 1 collision');
      expect(d.stdout).toMatch(/held\s+us-east-1\/web/);
      expect(d.stdout).toMatch(/held\s+us-east-1\/db/);
      expect(d.stdout).toMatch(/installed\s+us-east-1\/api/);
      expect(fs.existsSync(`${base}/api/current/cert.pem`)).toBe(true);
      expect(fs.existsSync(`${base}/${p}`)).toBe(false);
      expect(fs.existsSync(`${base}/${q}`)).toBe(false);
      // Held targets are recorded in the scope's ledger as held.
      expect(m.read('bundles/us-east-1/ledger.jsonl')).toMatch(/"status":"held"/);
    },
  );

  it('two dir targets that are one directory through a symbolic link on the runner: deploy holds both (exit 2); verify, which sees no runner, cannot', async () => {
    const m = pristine.clone();
    const base = fs.mkdtempSync(path.join(targets, 'link-'));
    fs.mkdirSync(`${base}/real`);
    fs.symlinkSync(`${base}/real`, `${base}/link`);
    m.writeScope('us-east-1', [
      { api: { deploy: [{ type: 'dir', path: `${base}/api` }] } },
      { web: { deploy: [{ type: 'dir', path: `${base}/real/tls` }] } },
      { db: { deploy: [{ type: 'dir', path: `${base}/link/tls` }] } },
    ]);
    expect((await findings(m)).code).toBe(0);
    const d = await m.ci(['deploy', '--now', T]);
    expect(d.code, d.stdout + d.stderr).toBe(2);
    expect(d.stderr).toContain(
      `deploy directory "local:${base}/real/tls" is claimed by us-east-1/db (scopes/us-east-1.yaml ` +
        `services.db.deploy[0].path "${base}/link/tls")`,
    );
    expect(d.stdout).toMatch(/installed\s+us-east-1\/api/);
    expect(fs.readdirSync(`${base}/real`)).toEqual([]);
  });

  it('a directory written with .. or a trailing slash is refused by its pattern before any comparison (exit 2, naming the field)', async () => {
    for (const variant of [`${targets}/x/../shared`, `${targets}/shared/`]) {
      const m = pristine.clone();
      m.writeScope('us-east-1', [
        { api: { deploy: [{ type: 'dir', path: `${targets}/shared` }] } },
        { web: { deploy: [{ type: 'dir', path: variant }] } },
        'db',
      ]);
      const r = await m.ci(['verify']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('scopes/us-east-1.yaml: services.web.deploy[0].path');
    }
  });

  it('two Kubernetes targets in two scopes with one Secret: verify names both, renew holds both, deploy writes neither manifest (exit 2)', async () => {
    const m = pristine.clone();
    m.writeScope('us-east-1', [
      'api',
      { web: { deploy: [{ type: 'kubernetes', name: 'mesh-tls', namespace: 'mesh' }] } },
      'db',
    ]);
    m.writeScope('eu-west-1', [{ api: { deploy: [{ type: 'kubernetes', name: 'mesh-tls', namespace: 'mesh' }] } }]);
    const v = await findings(m);
    expect(v.code).toBe(1);
    const msgs = v.findings.filter((f) => f.check === 'ownership').map((f) => f.message);
    expect(msgs).toEqual([
      expect.stringContaining(
        'Kubernetes object "mesh/Secret/mesh-tls" is claimed by eu-west-1/api (scopes/eu-west-1.yaml ' +
          'services.api.deploy[0].name) and us-east-1/web (scopes/us-east-1.yaml services.web.deploy[0].name)',
      ),
      expect.stringContaining('Kubernetes object "mesh/ConfigMap/mesh-tls-trust"'),
    ]);
    const before = { us: serials(m, 'us-east-1'), eu: serials(m, 'eu-west-1') };
    const r = await m.ci(['renew', '--force', '--now', T]);
    expect(r.code).toBe(2);
    expect(serials(m, 'us-east-1').web).toBe(before.us.web);
    expect(serials(m, 'eu-west-1').api).toBe(before.eu.api);
    expect(serials(m, 'us-east-1').db).not.toBe(before.us.db);
    const d = await m.ci(['deploy', '--now', T]);
    expect(d.code).toBe(2);
    expect(fs.existsSync(m.path('.trellis/k8s/us-east-1/web-mesh-tls.yaml'))).toBe(false);
    expect(fs.existsSync(m.path('.trellis/k8s/eu-west-1/api-mesh-tls.yaml'))).toBe(false);
  });

  it("renew --scope of a scope without a collision is not held by another scope's", async () => {
    const m = pristine.clone();
    m.writeScope('us-east-1', [
      'api',
      { web: { dns: ['edge.us-east-1.mesh.example'] } },
      { db: { dns: ['edge.us-east-1.mesh.example'] } },
    ]);
    const r = await m.ci(['renew', '--force', '--scope', 'eu-west-1', '--now', T]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('property (in-process, MemoryMesh): verify reports an ownership error iff the naive oracle finds two services claiming one thing', async () => {
    const svc = fc.record({ dns: fc.subarray(['edge', 'api', 'web']), dirs: fc.subarray(['a', 'a/b', 'c']) });
    await fc.assert(
      fc.asyncProperty(fc.tuple(svc, svc, svc), async (specs) => {
        const m = memory.clone();
        const names = ['api', 'web', 'db'];
        const services = Object.fromEntries(
          specs.map((s, i) => [
            names[i]!,
            {
              dns: s.dns.map((d) => `${d}.us-east-1.mesh.example`),
              deploy: s.dirs.map((d) => ({ type: 'dir', path: `${targets}/p/${d}` })),
            },
          ]),
        );
        m.write('scopes/us-east-1.yaml', stringify({ kind: 'region', services }));
        const input = mesh({
          'us-east-1': specs.map((s, i) => ({
            name: names[i]!,
            dns: s.dns.map((d) => `${d}.us-east-1.mesh.example`),
            deploy: s.dirs.map((d) => dir(`${targets}/p/${d}`)),
          })),
          global: [{ name: 'control' }],
          'eu-west-1': [{ name: 'api' }],
        });
        const expected = naivePairs(input).size > 0;
        const v = await m.verify(new Date(T), 'ci');
        expect(v.some((f) => f.check === 'ownership')).toBe(expected);
        expect(v.some((f) => f.level === 'error')).toBe(expected);
      }),
      { numRuns: 10 * RUNS },
    );
  }, 180_000);
});
